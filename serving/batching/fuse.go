package batching

import (
	"slices"

	"github.com/mlgate/mlgate/serving/onnx"
)

// fuser concatenates the inputs of a batch's requests along their first
// dimension, into buffers it keeps from one batch to the next.
type fuser struct {
	inputs []onnx.Tensor
	bufs   []any   // per input, a slice of its element type
	shapes []int64 // the fused inputs' shapes, in one slice
}

// fuse returns the inputs of reqs, which agree on all but their first
// dimension, concatenated: rows rows in all. They are valid until release.
func (f *fuser) fuse(reqs []*request, rows int64) []onnx.Tensor {
	head := reqs[0].inputs
	f.inputs = slices.Grow(f.inputs[:0], len(head))[:len(head)]
	if len(f.bufs) < len(head) {
		f.bufs = append(f.bufs, make([]any, len(head)-len(f.bufs))...)
	}
	dims := 0
	for _, t := range head {
		dims += len(t.Shape)
	}
	f.shapes = slices.Grow(f.shapes[:0], dims)[:dims]
	shapes := f.shapes
	for i, h := range head {
		shape := shapes[:len(h.Shape):len(h.Shape)]
		shapes = shapes[len(h.Shape):]
		copy(shape, h.Shape)
		shape[0] = rows
		f.bufs[i] = concat(f.bufs[i], reqs, i, int(onnx.Elements(shape)))
		f.inputs[i] = onnx.Tensor{Name: h.Name, Type: h.Type, Shape: shape, Data: f.bufs[i]}
	}
	return f.inputs
}

// release forgets what the last fused inputs held: the strings of BYTES
// inputs, which the buffers would otherwise keep alive.
func (f *fuser) release() {
	for _, b := range f.bufs {
		if s, ok := b.([]string); ok {
			clear(s)
		}
	}
	clear(f.inputs)
}

// concat appends input i of every request to buf, emptied first, which it
// grows to n elements when it must.
func concat(buf any, reqs []*request, i, n int) any {
	switch reqs[0].inputs[i].Data.(type) {
	case []bool:
		return concatAs[bool](buf, reqs, i, n)
	case []int8:
		return concatAs[int8](buf, reqs, i, n)
	case []int16:
		return concatAs[int16](buf, reqs, i, n)
	case []int32:
		return concatAs[int32](buf, reqs, i, n)
	case []int64:
		return concatAs[int64](buf, reqs, i, n)
	case []uint8:
		return concatAs[uint8](buf, reqs, i, n)
	case []uint16:
		return concatAs[uint16](buf, reqs, i, n)
	case []uint32:
		return concatAs[uint32](buf, reqs, i, n)
	case []uint64:
		return concatAs[uint64](buf, reqs, i, n)
	case []float32:
		return concatAs[float32](buf, reqs, i, n)
	case []float64:
		return concatAs[float64](buf, reqs, i, n)
	case []string:
		return concatAs[string](buf, reqs, i, n)
	}
	panic("batching: an input of a type rowsOf refuses")
}

func concatAs[T any](buf any, reqs []*request, i, n int) any {
	dst, _ := buf.([]T)
	dst = slices.Grow(dst[:0], n)
	for _, r := range reqs {
		dst = append(dst, r.inputs[i].Data.([]T)...)
	}
	return dst
}

// slice returns data[lo:hi], its capacity cut at hi so that an append to
// one request's rows never writes into the next request's.
func slice(data any, lo, hi int64) any {
	switch d := data.(type) {
	case []bool:
		return d[lo:hi:hi]
	case []int8:
		return d[lo:hi:hi]
	case []int16:
		return d[lo:hi:hi]
	case []int32:
		return d[lo:hi:hi]
	case []int64:
		return d[lo:hi:hi]
	case []uint8:
		return d[lo:hi:hi]
	case []uint16:
		return d[lo:hi:hi]
	case []uint32:
		return d[lo:hi:hi]
	case []uint64:
		return d[lo:hi:hi]
	case []float32:
		return d[lo:hi:hi]
	case []float64:
		return d[lo:hi:hi]
	case []string:
		return d[lo:hi:hi]
	case []onnx.Map:
		return d[lo:hi:hi]
	}
	return nil
}

// length returns the number of elements of t's data when its Go type is
// the one t.Type says.
func length(t onnx.Tensor) (int, bool) {
	switch t.Type {
	case onnx.Bool:
		return lengthAs[bool](t.Data)
	case onnx.Int8:
		return lengthAs[int8](t.Data)
	case onnx.Int16:
		return lengthAs[int16](t.Data)
	case onnx.Int32:
		return lengthAs[int32](t.Data)
	case onnx.Int64:
		return lengthAs[int64](t.Data)
	case onnx.Uint8:
		return lengthAs[uint8](t.Data)
	case onnx.Uint16:
		return lengthAs[uint16](t.Data)
	case onnx.Uint32:
		return lengthAs[uint32](t.Data)
	case onnx.Uint64:
		return lengthAs[uint64](t.Data)
	case onnx.FP32:
		return lengthAs[float32](t.Data)
	case onnx.FP64:
		return lengthAs[float64](t.Data)
	case onnx.Bytes:
		return lengthAs[string](t.Data)
	}
	return 0, false
}

func lengthAs[T any](data any) (int, bool) {
	d, ok := data.([]T)
	return len(d), ok
}
