package featurestore

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Value is one feature value. The field that matches Type holds it: Num for
// Float and Double, Int for Int and Bool (0 or 1), Str for String, List for
// FloatList. A Value with an empty Type is absent.
type Value struct {
	Type Type
	Num  float64
	Int  int64
	Str  string
	List []float32
}

// Present reports whether the value exists.
func (v Value) Present() bool { return v.Type != "" }

// Row is what a store holds for one entity of one view.
type Row struct {
	// Key is the entity key (see Key).
	Key string
	// Found is set by reads: false when the store holds no row for Key.
	Found   bool
	EventTS time.Time
	// Values are in the order of the view's features (or, in reads, of the
	// lookup's Features).
	Values []Value
}

// keySep separates the columns of a composite entity key. Entity values may
// not contain it.
const keySep = "\x1f"

// Key encodes the entity key of a row from its entity column values, in the
// order of the view's entities.
func Key(values []string) string { return strings.Join(values, keySep) }

// CheckEntityValue reports whether s can be an entity column value.
func CheckEntityValue(s string) error {
	if s == "" {
		return fmt.Errorf("is empty")
	}
	if len(s) > 1024 {
		return fmt.Errorf("is longer than 1024 bytes")
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("is not valid UTF-8")
	}
	if strings.Contains(s, keySep) {
		return fmt.Errorf("contains the control character U+001F")
	}
	return nil
}

// AppendValue appends the binary encoding of v (which must be present) to b:
// little-endian IEEE floats and integers, raw UTF-8 for strings, one byte for
// booleans, packed floats for lists. Stores that keep bytes (Redis, the
// embedded store) use it.
func AppendValue(b []byte, v Value) []byte {
	switch v.Type {
	case Float:
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v.Num)))
	case Double:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Num))
	case Int:
		return binary.LittleEndian.AppendUint64(b, uint64(v.Int))
	case Bool:
		return append(b, byte(v.Int&1))
	case String:
		return append(b, v.Str...)
	case FloatList:
		for _, f := range v.List {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
		return b
	}
	return b
}

// DecodeValue decodes what AppendValue wrote for a value of type t. It runs
// for every value read, so it tells the types apart once.
func DecodeValue(t Type, b []byte) (Value, error) {
	switch t {
	case Float:
		if len(b) != 4 {
			return Value{}, sizeError(t, b, 4)
		}
		return Value{Type: t, Num: float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))}, nil
	case Double:
		if len(b) != 8 {
			return Value{}, sizeError(t, b, 8)
		}
		return Value{Type: t, Num: math.Float64frombits(binary.LittleEndian.Uint64(b))}, nil
	case Int:
		if len(b) != 8 {
			return Value{}, sizeError(t, b, 8)
		}
		return Value{Type: t, Int: int64(binary.LittleEndian.Uint64(b))}, nil
	case Bool:
		if len(b) != 1 {
			return Value{}, sizeError(t, b, 1)
		}
		return Value{Type: t, Int: int64(b[0] & 1)}, nil
	case String:
		return Value{Type: t, Str: string(b)}, nil
	case FloatList:
		if len(b)%4 != 0 {
			return Value{}, fmt.Errorf("stored float_list value has %d bytes, not a multiple of 4", len(b))
		}
		v := Value{Type: t, List: make([]float32, len(b)/4)}
		for i := range v.List {
			v.List[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v, nil
	}
	return Value{}, fmt.Errorf("unknown feature type %q", t)
}

func sizeError(t Type, b []byte, want int) error {
	return fmt.Errorf("stored %s value has %d bytes, want %d", t, len(b), want)
}
