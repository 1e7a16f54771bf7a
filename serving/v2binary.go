package serving

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/mlgate/mlgate/serving/onnx"
)

// The binary tensor data extension of the V2 HTTP protocol (as Triton
// defines it): a request whose Inference-Header-Content-Length header
// gives the length of its JSON carries, after the JSON, the data of each
// input whose parameters give a binary_data_size, in the order of the
// inputs, each in binary_data_size bytes. An answer does the same for the
// outputs asked for in binary (parameters.binary_data on an output, or
// parameters.binary_data_output on the request for all of them).
//
// Binary data is little-endian, row major, without padding: each element
// in its type's size, a BOOL in one byte (0 or 1), and a BYTES element as
// a 4-byte unsigned length followed by that many bytes.

// HeaderInferenceHeaderLength gives the length of the JSON that starts a
// V2 request or answer with binary tensor data.
const HeaderInferenceHeaderLength = "Inference-Header-Content-Length"

// inferHeaderLength reads a request's Inference-Header-Content-Length
// (value), which must lie within its body of n bytes: -1 when absent.
func inferHeaderLength(value string, n int) (int, error) {
	if value == "" {
		return -1, nil
	}
	h, err := strconv.ParseInt(value, 10, 64)
	if err != nil || h < 0 {
		return 0, invalidInput("%s: %s is not a byte count (a whole number, at least 0)", HeaderInferenceHeaderLength, describeToken([]byte(value)))
	}
	if h > int64(n) {
		return 0, invalidInput("%s: %d bytes is beyond the end of the %d-byte body", HeaderInferenceHeaderLength, h, n)
	}
	return int(h), nil
}

// readBinary fills, from bin (the body after the JSON), the data of the
// inputs given in binary; hasBin says whether the request had an
// Inference-Header-Content-Length. Each input's binary_data_size must
// match its shape and datatype, and together they must take all of bin.
func (r *inferRequest) readBinary(bin []byte, hasBin bool, lim limits) error {
	if r.binarySize == nil {
		if len(bin) > 0 {
			return invalidInput("binary data: %d bytes follow the JSON (as %s says), but no input gives a parameters.binary_data_size to claim them", len(bin), HeaderInferenceHeaderLength)
		}
		return nil
	}
	off := 0
	for i, size := range r.binarySize {
		if size < 0 {
			continue
		}
		t := &r.Inputs[i]
		if !hasBin {
			return invalidInput("input %q: parameters.binary_data_size is given, but the request has no %s header to say where its JSON ends and the binary data begins", t.Name, HeaderInferenceHeaderLength)
		}
		if left := len(bin) - off; size > int64(left) {
			return invalidInput("input %q: parameters.binary_data_size is %d bytes, but only %d bytes of binary data are left for it", t.Name, size, left)
		}
		data, err := binaryData(bin[off:off+int(size)], t.Type, t.Shape, lim, "parameters.binary_data_size")
		if err != nil {
			return invalidInput("input %q: %v", t.Name, err)
		}
		t.Data = data
		off += int(size)
	}
	if off < len(bin) {
		return invalidInput("binary data: %d bytes are left over after the %d bytes that the inputs' binary_data_size claim", len(bin)-off, off)
	}
	return nil
}

// width is the size in bytes of an element of t in binary, or 0 for BYTES
// and the types that have no binary form.
func width(t onnx.DataType) int {
	switch t {
	case onnx.Bool, onnx.Int8, onnx.Uint8:
		return 1
	case onnx.Int16, onnx.Uint16:
		return 2
	case onnx.Int32, onnx.Uint32, onnx.FP32:
		return 4
	case onnx.Int64, onnx.Uint64, onnx.FP64:
		return 8
	}
	return 0
}

// binaryData reads the elements of a tensor of type t and the given shape
// (already held to lim's elements) from b, the bytes field (as errors
// name it: parameters.binary_data_size, raw_input_contents[i]) gives it.
func binaryData(b []byte, t onnx.DataType, shape []int64, lim limits, field string) (any, error) {
	n := onnx.Elements(shape)
	if t == onnx.Bytes {
		return binaryStrings(b, n, lim, field)
	}
	w := int64(width(t))
	if w == 0 {
		return nil, fmt.Errorf("datatype %s has no binary form", t)
	}
	if int64(len(b)) != n*w {
		return nil, fmt.Errorf("%s is %d bytes, but shape %s of %s takes %d (%d elements of %d bytes)", field, len(b), shapeString(shape), t, n*w, n, w)
	}
	switch t {
	case onnx.Bool:
		out := make([]bool, n)
		for i, c := range b {
			if c > 1 {
				return nil, fmt.Errorf("element %d (flattened): byte %d is neither 0 nor 1, as BOOL needs", i, c)
			}
			out[i] = c == 1
		}
		return out, nil
	case onnx.Int8:
		return fixed(b, 1, func(p []byte) int8 { return int8(p[0]) }), nil
	case onnx.Uint8:
		return fixed(b, 1, func(p []byte) uint8 { return p[0] }), nil
	case onnx.Int16:
		return fixed(b, 2, func(p []byte) int16 { return int16(binary.LittleEndian.Uint16(p)) }), nil
	case onnx.Uint16:
		return fixed(b, 2, binary.LittleEndian.Uint16), nil
	case onnx.Int32:
		return fixed(b, 4, func(p []byte) int32 { return int32(binary.LittleEndian.Uint32(p)) }), nil
	case onnx.Uint32:
		return fixed(b, 4, binary.LittleEndian.Uint32), nil
	case onnx.FP32:
		return fixed(b, 4, func(p []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(p)) }), nil
	case onnx.Int64:
		return fixed(b, 8, func(p []byte) int64 { return int64(binary.LittleEndian.Uint64(p)) }), nil
	case onnx.Uint64:
		return fixed(b, 8, binary.LittleEndian.Uint64), nil
	default: // FP64
		return fixed(b, 8, func(p []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(p)) }), nil
	}
}

// littleEndian reports whether this machine stores numbers as the
// binary tensor data extension sends them.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// fixed reads the numbers of w bytes each that b holds: on a
// little-endian machine, a copy of their bytes.
func fixed[T fixedNumber](b []byte, w int, get func([]byte) T) []T {
	out := make([]T, len(b)/w)
	if littleEndian && len(out) > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), len(b)), b)
		return out
	}
	for i := range out {
		out[i] = get(b[i*w : i*w+w])
	}
	return out
}

// fixedNumber is a type whose binary form is its little-endian bytes.
type fixedNumber interface {
	signed | unsigned | ~float32 | ~float64
}

// binaryStrings reads n BYTES elements from b, each a 4-byte
// little-endian length and that many bytes.
func binaryStrings(b []byte, n int64, lim limits, field string) ([]string, error) {
	if int64(len(b)) < 4*n {
		return nil, fmt.Errorf("%s is %d bytes, too few for %d BYTES elements of a 4-byte length each", field, len(b), n)
	}
	out := make([]string, n)
	off := 0
	for i := range out {
		if len(b)-off < 4 {
			return nil, fmt.Errorf("element %d (flattened): its 4-byte length lies beyond the %d bytes of %s", i, len(b), field)
		}
		l := binary.LittleEndian.Uint32(b[off:])
		off += 4
		if left := len(b) - off; uint64(l) > uint64(left) {
			return nil, fmt.Errorf("element %d (flattened): its length %d is beyond the %d bytes left of %s", i, l, left, field)
		}
		if int64(l) > int64(lim.maxString) {
			return nil, fmt.Errorf("element %d (flattened): a string of %d bytes is longer than limits.max_string_bytes (%d)", i, l, lim.maxString)
		}
		out[i] = string(b[off : off+int(l)])
		off += int(l)
	}
	if off != len(b) {
		return nil, fmt.Errorf("%s is %d bytes, but its %d BYTES elements take %d", field, len(b), n, off)
	}
	return out, nil
}

// binaryLen returns the size of data in binary, and false for data that
// has no binary form (a map).
func binaryLen(data any) (int, bool) {
	switch d := data.(type) {
	case []bool:
		return len(d), true
	case []int8:
		return len(d), true
	case []uint8:
		return len(d), true
	case []int16:
		return 2 * len(d), true
	case []uint16:
		return 2 * len(d), true
	case []int32:
		return 4 * len(d), true
	case []uint32:
		return 4 * len(d), true
	case []float32:
		return 4 * len(d), true
	case []int64:
		return 8 * len(d), true
	case []uint64:
		return 8 * len(d), true
	case []float64:
		return 8 * len(d), true
	case []string:
		n := 4 * len(d)
		for _, s := range d {
			n += len(s)
		}
		return n, true
	}
	return 0, false
}

// appendBinary appends data in binary, which binaryLen says it has.
func appendBinary(b []byte, data any) []byte {
	le := binary.LittleEndian
	switch d := data.(type) {
	case []bool:
		for _, v := range d {
			c := byte(0)
			if v {
				c = 1
			}
			b = append(b, c)
		}
	case []int8:
		for _, v := range d {
			b = append(b, byte(v))
		}
	case []uint8:
		b = append(b, d...)
	case []int16:
		for _, v := range d {
			b = le.AppendUint16(b, uint16(v))
		}
	case []uint16:
		for _, v := range d {
			b = le.AppendUint16(b, v)
		}
	case []int32:
		for _, v := range d {
			b = le.AppendUint32(b, uint32(v))
		}
	case []uint32:
		for _, v := range d {
			b = le.AppendUint32(b, v)
		}
	case []float32:
		for _, v := range d {
			b = le.AppendUint32(b, math.Float32bits(v))
		}
	case []int64:
		for _, v := range d {
			b = le.AppendUint64(b, uint64(v))
		}
	case []uint64:
		for _, v := range d {
			b = le.AppendUint64(b, v)
		}
	case []float64:
		for _, v := range d {
			b = le.AppendUint64(b, math.Float64bits(v))
		}
	case []string:
		for _, s := range d {
			b = le.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

// jsonLength returns the length of the JSON value that starts an answer:
// all of it unless outputs in binary follow.
func jsonLength(answer []byte) int {
	s := scanner{b: answer}
	if !s.skip(0) {
		return len(answer)
	}
	return s.i
}
