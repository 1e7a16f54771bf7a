package featurestore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// ValueFromJSON converts one JSON value to a Value of type t. JSON null is an
// absent value. A value of another type is refused with a message saying
// what was expected; nothing is coerced except integers written as JSON
// numbers with no fraction (for int) and any JSON number (for float, double).
func ValueFromJSON(t Type, raw json.RawMessage) (Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return Value{}, nil
	}
	v := Value{Type: t}
	switch t {
	case Float, Double:
		f, err := jsonNumber(raw, t)
		if err != nil {
			return Value{}, err
		}
		if t == Float && math.Abs(f) > math.MaxFloat32 {
			return Value{}, fmt.Errorf("%s is out of range for float", raw)
		}
		v.Num = f
	case Int:
		if !isNumber(raw) {
			return Value{}, fmt.Errorf("%s is not an int", clip(raw))
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return Value{}, fmt.Errorf("%s is not an int (a whole number within 64 bits)", clip(raw))
		}
		v.Int = n
	case Bool:
		switch string(raw) {
		case "true":
			v.Int = 1
		case "false":
		default:
			return Value{}, fmt.Errorf("%s is not a bool (true or false)", clip(raw))
		}
	case String:
		if raw[0] != '"' {
			return Value{}, fmt.Errorf("%s is not a string", clip(raw))
		}
		if err := json.Unmarshal(raw, &v.Str); err != nil {
			return Value{}, fmt.Errorf("%s is not a valid string", clip(raw))
		}
	case FloatList:
		var nums []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &nums) != nil {
			return Value{}, fmt.Errorf("%s is not a float_list (an array of numbers)", clip(raw))
		}
		v.List = make([]float32, len(nums))
		for i, n := range nums {
			f, err := jsonNumber(bytes.TrimSpace(n), Float)
			if err != nil {
				return Value{}, fmt.Errorf("element %d: %w", i, err)
			}
			if math.Abs(f) > math.MaxFloat32 {
				return Value{}, fmt.Errorf("element %d: %s is out of range for float", i, n)
			}
			v.List[i] = float32(f)
		}
	default:
		return Value{}, fmt.Errorf("unknown feature type %q", t)
	}
	return v, nil
}

func jsonNumber(raw []byte, t Type) (float64, error) {
	if !isNumber(raw) {
		return 0, fmt.Errorf("%s is not a %s", clip(raw), t)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, fmt.Errorf("%s is out of range for %s", clip(raw), t)
	}
	return f, nil
}

// isNumber reports whether raw, a valid JSON value, is a number.
func isNumber(raw []byte) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

func clip(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}

// JSON returns v as a JSON-ready Go value: nil when absent.
func (v Value) JSON() any {
	switch v.Type {
	case Float:
		return float32(v.Num)
	case Double:
		return v.Num
	case Int:
		return v.Int
	case Bool:
		return v.Int != 0
	case String:
		return v.Str
	case FloatList:
		return v.List
	}
	return nil
}
