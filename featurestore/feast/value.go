package feast

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mlgate/mlgate/featurestore"
)

// Field numbers of feast.types.Value (feast/protos/feast/types/Value.proto):
// one field of its oneof "val" is set.
const (
	valBytes     = 1
	valString    = 2
	valInt32     = 3
	valInt64     = 4
	valDouble    = 5
	valFloat     = 6
	valBool      = 7
	valUnixTS    = 8
	valFloatList = 16 // FloatList{repeated float val = 1}
	valNull      = 19
)

// decodeValue decodes a serialized feast.types.Value into a value of type t.
// An empty message (no field of the oneof set, or null_val) is absent, as
// Feast reads it. Numbers convert where Feast and mlgate types correspond
// (int32 and int64 to int, float and double to either); any other pairing is
// an error matching featurestore.ErrInvalid that names Feast's type: the
// view's definition is wrong, not the store.
func decodeValue(t featurestore.Type, b []byte) (featurestore.Value, error) {
	var (
		num      uint64
		payload  []byte
		field    protowire.Number
		wireType protowire.Type
	)
	for len(b) > 0 {
		f, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return featurestore.Value{}, fmt.Errorf("feast.types.Value: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch wt {
		case protowire.VarintType:
			num, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			num = uint64(v)
		case protowire.Fixed64Type:
			num, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			payload, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(f, wt, b)
		}
		if n < 0 {
			return featurestore.Value{}, fmt.Errorf("feast.types.Value field %d: %w", f, protowire.ParseError(n))
		}
		b = b[n:]
		field, wireType = f, wt // the last field of a oneof wins
	}
	if field == 0 || field == valNull {
		return featurestore.Value{}, nil
	}
	if wt, ok := wireTypes[field]; ok && wt != wireType {
		return featurestore.Value{}, fmt.Errorf("feast.types.Value field %d has wire type %d, want %d", field, wireType, wt)
	}
	switch t {
	case featurestore.Int:
		switch field {
		case valInt64:
			return featurestore.Value{Type: t, Int: int64(num)}, nil
		case valInt32:
			return featurestore.Value{Type: t, Int: int64(int32(num))}, nil
		}
	case featurestore.Float, featurestore.Double:
		switch field {
		case valDouble:
			return featurestore.Value{Type: t, Num: roundTo(t, math.Float64frombits(num))}, nil
		case valFloat:
			return featurestore.Value{Type: t, Num: float64(math.Float32frombits(uint32(num)))}, nil
		}
	case featurestore.Bool:
		if field == valBool {
			return featurestore.Value{Type: t, Int: int64(num & 1)}, nil
		}
	case featurestore.String:
		if field == valString {
			return featurestore.Value{Type: t, Str: string(payload)}, nil
		}
	case featurestore.FloatList:
		if field == valFloatList {
			l, err := floatList(payload)
			return featurestore.Value{Type: t, List: l}, err
		}
	}
	return featurestore.Value{}, featurestore.Invalid("Feast stored the value as %s, which a feature of type %s cannot hold; give the feature Feast's type", feastTypeName(field), t)
}

// wireTypes are the wire types of the fields of feast.types.Value read here.
var wireTypes = map[protowire.Number]protowire.Type{
	valBytes: protowire.BytesType, valString: protowire.BytesType, valInt32: protowire.VarintType,
	valInt64: protowire.VarintType, valDouble: protowire.Fixed64Type, valFloat: protowire.Fixed32Type,
	valBool: protowire.VarintType, valUnixTS: protowire.VarintType, valFloatList: protowire.BytesType,
}

// roundTo gives a double as a float feature holds it.
func roundTo(t featurestore.Type, f float64) float64 {
	if t == featurestore.Float {
		return float64(float32(f))
	}
	return f
}

// floatList decodes feast.types.FloatList: field 1, repeated float, packed
// (as proto3 writes it) or not.
func floatList(b []byte) ([]float32, error) {
	out := []float32{}
	for len(b) > 0 {
		f, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("feast.types.FloatList: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case f == 1 && wt == protowire.BytesType:
			p, m := protowire.ConsumeBytes(b)
			if m < 0 || len(p)%4 != 0 {
				return nil, fmt.Errorf("feast.types.FloatList: bad packed floats")
			}
			for i := 0; i < len(p); i += 4 {
				out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(p[i:])))
			}
			n = m
		case f == 1 && wt == protowire.Fixed32Type:
			v, m := protowire.ConsumeFixed32(b)
			out = append(out, math.Float32frombits(v))
			n = m
		default:
			n = protowire.ConsumeFieldValue(f, wt, b)
		}
		if n < 0 {
			return nil, fmt.Errorf("feast.types.FloatList: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return out, nil
}

// decodeTimestamp decodes a serialized google.protobuf.Timestamp (seconds =
// 1, nanos = 2), which Feast stores in the _ts:{view} field.
func decodeTimestamp(b []byte) (time.Time, error) {
	var sec, nsec int64
	for len(b) > 0 {
		f, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return time.Time{}, fmt.Errorf("google.protobuf.Timestamp: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if wt == protowire.VarintType && (f == 1 || f == 2) {
			v, m := protowire.ConsumeVarint(b)
			if f == 1 {
				sec = int64(v)
			} else {
				nsec = int64(int32(v))
			}
			n = m
		} else {
			n = protowire.ConsumeFieldValue(f, wt, b)
		}
		if n < 0 {
			return time.Time{}, fmt.Errorf("google.protobuf.Timestamp: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return time.Unix(sec, nsec).UTC(), nil
}

func feastTypeName(f protowire.Number) string {
	if n, ok := valueNames[f]; ok {
		return n
	}
	return fmt.Sprintf("feast.types.Value field %d", f)
}

// valueNames are the names of the fields of feast.types.Value.
var valueNames = map[protowire.Number]string{
	valBytes: "bytes_val", valString: "string_val", valInt32: "int32_val", valInt64: "int64_val",
	valDouble: "double_val", valFloat: "float_val", valBool: "bool_val", valUnixTS: "unix_timestamp_val",
	11: "bytes_list_val", 12: "string_list_val", 13: "int32_list_val", 14: "int64_list_val",
	15: "double_list_val", valFloatList: "float_list_val", 17: "bool_list_val", 18: "unix_timestamp_list_val",
}
