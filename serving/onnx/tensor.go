package onnx

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// Tensor is a named value passed to or returned by a model. Data is a flat,
// row-major slice whose Go type matches Type: []bool, []int8 ... []uint64,
// []float32, []float64, []string for Bytes, and []Map for JSON.
type Tensor struct {
	Name  string
	Type  DataType
	Shape []int64
	Data  any
}

// Map is one element of a sequence-of-maps output: class label to score, in
// the order ONNX Runtime gives them.
type Map struct {
	Keys   []string
	Values []float32
}

// Elements returns the number of elements Shape describes, or -1 if a
// dimension is negative or the product overflows.
func Elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && n > (1<<53)/d) {
			return -1
		}
		n *= d
	}
	return n
}

// newValue makes an ONNX Runtime value of t. Numeric tensors share t.Data's
// memory; the caller keeps t alive until the value is destroyed.
func newValue(t Tensor) (ort.Value, error) {
	shape := ort.Shape(t.Shape)
	switch d := t.Data.(type) {
	case []bool:
		return ort.NewTensor(shape, d)
	case []int8:
		return ort.NewTensor(shape, d)
	case []int16:
		return ort.NewTensor(shape, d)
	case []int32:
		return ort.NewTensor(shape, d)
	case []int64:
		return ort.NewTensor(shape, d)
	case []uint8:
		return ort.NewTensor(shape, d)
	case []uint16:
		return ort.NewTensor(shape, d)
	case []uint32:
		return ort.NewTensor(shape, d)
	case []uint64:
		return ort.NewTensor(shape, d)
	case []float32:
		return ort.NewTensor(shape, d)
	case []float64:
		return ort.NewTensor(shape, d)
	case []string:
		s, err := ort.NewStringTensor(shape)
		if err != nil {
			return nil, err
		}
		if err := s.SetContents(d); err != nil {
			s.Destroy()
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("input %s: cannot feed %T", t.Name, t.Data)
}

// fromValue copies an ONNX Runtime output into a Tensor.
func fromValue(name string, v ort.Value) (Tensor, error) {
	t := Tensor{Name: name, Shape: []int64(v.GetShape())} // GetShape returns a copy
	switch v := v.(type) {
	case *ort.Tensor[bool]:
		t.Type, t.Data = Bool, v.GetData()
	case *ort.Tensor[int8]:
		t.Type, t.Data = Int8, v.GetData()
	case *ort.Tensor[int16]:
		t.Type, t.Data = Int16, v.GetData()
	case *ort.Tensor[int32]:
		t.Type, t.Data = Int32, v.GetData()
	case *ort.Tensor[int64]:
		t.Type, t.Data = Int64, v.GetData()
	case *ort.Tensor[uint8]:
		t.Type, t.Data = Uint8, v.GetData()
	case *ort.Tensor[uint16]:
		t.Type, t.Data = Uint16, v.GetData()
	case *ort.Tensor[uint32]:
		t.Type, t.Data = Uint32, v.GetData()
	case *ort.Tensor[uint64]:
		t.Type, t.Data = Uint64, v.GetData()
	case *ort.Tensor[float32]:
		t.Type, t.Data = FP32, v.GetData()
	case *ort.Tensor[float64]:
		t.Type, t.Data = FP64, v.GetData()
	case *ort.StringTensor:
		s, err := v.GetContents()
		if err != nil {
			return Tensor{}, fmt.Errorf("output %s: %w", name, err)
		}
		t.Type, t.Data = Bytes, s
	case *ort.Sequence:
		maps, err := sequenceOfMaps(name, v)
		if err != nil {
			return Tensor{}, err
		}
		t.Type, t.Data, t.Shape = JSON, maps, []int64{int64(len(maps))}
	default:
		return Tensor{}, fmt.Errorf("output %s: values of ONNX type %s are not supported", name, v.GetONNXType())
	}
	return t, nil
}

func sequenceOfMaps(name string, seq *ort.Sequence) ([]Map, error) {
	items, err := seq.GetValues()
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", name, err)
	}
	out := make([]Map, len(items))
	for i, item := range items {
		m, ok := item.(*ort.Map)
		if !ok {
			return nil, fmt.Errorf("output %s: a sequence of %s is not supported, only a sequence of maps", name, item.GetONNXType())
		}
		keys, values, err := m.GetKeysAndValues()
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		vals, ok := values.(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("output %s: maps with values of ONNX type %T are not supported", name, values)
		}
		out[i].Values = vals.GetData()
		switch k := keys.(type) {
		case *ort.Tensor[int64]:
			out[i].Keys = make([]string, len(k.GetData()))
			for j, key := range k.GetData() {
				out[i].Keys[j] = fmt.Sprint(key)
			}
		case *ort.StringTensor:
			if out[i].Keys, err = k.GetContents(); err != nil {
				return nil, fmt.Errorf("output %s: %w", name, err)
			}
		default:
			return nil, fmt.Errorf("output %s: maps with keys of type %T are not supported", name, keys)
		}
	}
	return out, nil
}
