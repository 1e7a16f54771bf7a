package serving

import (
	"fmt"
	"math"
	"strconv"
	"unsafe"

	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
	"github.com/mlgate/mlgate/serving/onnx"
)

// decodeGRPCInfer reads a V2 gRPC inference request as the pipeline takes
// it, holding each input to lim, with errors that name the field at fault
// as the HTTP decoder's do. An input's data is in its typed contents, or
// in raw_input_contents (the same bytes as the binary tensor data
// extension): then every input's is. raw reports whether the answer goes
// in raw_output_contents: when the inputs came so, or the request asks
// with parameters.binary_data_output.
func decodeGRPCInfer(req *pb.ModelInferRequest, lim limits) (_ *inferRequest, raw bool, _ error) {
	if len(req.GetId()) > maxRequestIDBytes {
		return nil, false, invalidInput("id: %d bytes is longer than %d", len(req.GetId()), maxRequestIDBytes)
	}
	ins, rawIn := req.GetInputs(), req.GetRawInputContents()
	if len(ins) == 0 {
		return nil, false, invalidInput("inputs: at least one input is required")
	}
	if len(rawIn) > 0 && len(rawIn) != len(ins) {
		return nil, false, invalidInput("raw_input_contents: %d entries for %d inputs; give one per input, in the order of inputs, or none", len(rawIn), len(ins))
	}
	raw = len(rawIn) > 0
	if p, ok := req.GetParameters()["binary_data_output"]; ok {
		b, isBool := p.GetParameterChoice().(*pb.InferParameter_BoolParam)
		if !isBool {
			return nil, false, invalidInput("parameters.binary_data_output: must be a bool_param")
		}
		raw = raw || b.BoolParam
	}
	r := &inferRequest{ID: req.GetId(), ModelName: req.GetModelName(), ModelVersion: req.GetModelVersion(), Inputs: make([]onnx.Tensor, len(ins))}
	var seen map[string]bool // for many inputs; a few are scanned
	if len(ins) > fewInputs {
		seen = make(map[string]bool, len(ins))
	}
	for i, in := range ins {
		name := in.GetName()
		if name == "" {
			return nil, false, invalidInput("inputs[%d]: name is required", i)
		}
		if seen != nil && seen[name] || seen == nil && givenBefore(ins[:i], name) {
			return nil, false, invalidInput("input %q: given twice", name)
		}
		if seen != nil {
			seen[name] = true
		}
		t := onnx.ParseDataType(in.GetDatatype())
		if t == onnx.Invalid {
			return nil, false, invalidInput("input %q: %s", name, unknownDatatype(in.GetDatatype()))
		}
		shape := in.GetShape()
		if len(shape) == 0 {
			return nil, false, invalidInput("input %q: shape is required", name)
		}
		n := onnx.Elements(shape)
		if n < 0 {
			return nil, false, invalidInput("input %q: shape %s has a negative dimension or too many elements", name, shapeString(shape))
		}
		if err := lim.checkShape(shape, n); err != nil {
			return nil, false, fmt.Errorf("input %q: %w", name, err)
		}
		var data any
		var err error
		if raw && len(rawIn) > 0 {
			if hasContents(in.GetContents()) {
				return nil, false, invalidInput("input %q: gives both contents and raw_input_contents[%d]; send its data in one of them", name, i)
			}
			data, err = binaryData(rawIn[i], t, shape, lim, rawField(i))
		} else {
			data, err = contentsData(in.GetContents(), t, n, lim)
		}
		if err != nil {
			return nil, false, invalidInput("input %q: %v", name, err)
		}
		r.Inputs[i] = onnx.Tensor{Name: name, Type: t, Shape: shape, Data: data}
	}
	for i, out := range req.GetOutputs() {
		if out.GetName() == "" {
			return nil, false, invalidInput("outputs[%d]: name is required", i)
		}
		r.Outputs = append(r.Outputs, out.GetName())
	}
	return r, raw, nil
}

// rawFields name the first entries of raw_input_contents, made once.
var rawFields = func() (f [fewInputs]string) {
	for i := range f {
		f[i] = "raw_input_contents[" + strconv.Itoa(i) + "]"
	}
	return f
}()

// rawField names entry i of raw_input_contents, for errors.
func rawField(i int) string {
	if i < len(rawFields) {
		return rawFields[i]
	}
	return "raw_input_contents[" + strconv.Itoa(i) + "]"
}

// fewInputs is the most inputs decodeGRPCInfer checks for a name given
// twice by scanning, rather than with a map.
const fewInputs = 8

// givenBefore reports whether one of ins is named name.
func givenBefore(ins []*pb.ModelInferRequest_InferInputTensor, name string) bool {
	for _, in := range ins {
		if in.GetName() == name {
			return true
		}
	}
	return false
}

// contentsField is the field of InferTensorContents that holds each
// datatype's elements.
var contentsField = map[onnx.DataType]string{
	onnx.Bool: "bool_contents", onnx.Int8: "int_contents", onnx.Int16: "int_contents", onnx.Int32: "int_contents",
	onnx.Int64: "int64_contents", onnx.Uint8: "uint_contents", onnx.Uint16: "uint_contents", onnx.Uint32: "uint_contents",
	onnx.Uint64: "uint64_contents", onnx.FP32: "fp32_contents", onnx.FP64: "fp64_contents", onnx.Bytes: "bytes_contents",
}

// contentsCounts are the fields of InferTensorContents, each with its
// element count.
var contentsCounts = [...]struct {
	field string
	count func(*pb.InferTensorContents) int
}{
	{"bool_contents", func(c *pb.InferTensorContents) int { return len(c.GetBoolContents()) }},
	{"int_contents", func(c *pb.InferTensorContents) int { return len(c.GetIntContents()) }},
	{"int64_contents", func(c *pb.InferTensorContents) int { return len(c.GetInt64Contents()) }},
	{"uint_contents", func(c *pb.InferTensorContents) int { return len(c.GetUintContents()) }},
	{"uint64_contents", func(c *pb.InferTensorContents) int { return len(c.GetUint64Contents()) }},
	{"fp32_contents", func(c *pb.InferTensorContents) int { return len(c.GetFp32Contents()) }},
	{"fp64_contents", func(c *pb.InferTensorContents) int { return len(c.GetFp64Contents()) }},
	{"bytes_contents", func(c *pb.InferTensorContents) int { return len(c.GetBytesContents()) }},
}

// hasContents reports whether c holds any element.
func hasContents(c *pb.InferTensorContents) bool {
	for _, f := range contentsCounts {
		if f.count(c) > 0 {
			return true
		}
	}
	return false
}

// contentsData reads the n elements of a tensor of type t from c, which
// must hold them in t's field and nothing in any other.
func contentsData(c *pb.InferTensorContents, t onnx.DataType, n int64, lim limits) (any, error) {
	field, got := contentsField[t], int64(0)
	for _, f := range contentsCounts {
		switch k := f.count(c); {
		case f.field == field:
			got = int64(k)
		case k > 0:
			return nil, fmt.Errorf("contents.%s is given, but datatype %s takes its data in contents.%s", f.field, t, field)
		}
	}
	if got != n {
		if got == 0 && n > 0 {
			return nil, fmt.Errorf("data is required: contents.%s (or raw_input_contents) with %d elements", field, n)
		}
		return nil, fmt.Errorf("contents.%s has %d elements, but its shape takes %d", field, got, n)
	}
	switch t {
	case onnx.Bool:
		return c.GetBoolContents(), nil
	case onnx.Int8:
		return narrow[int8](c.GetIntContents(), field, math.MinInt8, math.MaxInt8)
	case onnx.Int16:
		return narrow[int16](c.GetIntContents(), field, math.MinInt16, math.MaxInt16)
	case onnx.Int32:
		return c.GetIntContents(), nil
	case onnx.Int64:
		return c.GetInt64Contents(), nil
	case onnx.Uint8:
		return narrow[uint8](c.GetUintContents(), field, 0, math.MaxUint8)
	case onnx.Uint16:
		return narrow[uint16](c.GetUintContents(), field, 0, math.MaxUint16)
	case onnx.Uint32:
		return c.GetUintContents(), nil
	case onnx.Uint64:
		return c.GetUint64Contents(), nil
	case onnx.FP32:
		return c.GetFp32Contents(), nil
	case onnx.FP64:
		return c.GetFp64Contents(), nil
	}
	out := make([]string, n)
	for i, b := range c.GetBytesContents() {
		if len(b) > lim.maxString {
			return nil, fmt.Errorf("contents.bytes_contents[%d]: a string of %d bytes is longer than limits.max_string_bytes (%d)", i, len(b), lim.maxString)
		}
		out[i] = string(b)
	}
	return out, nil
}

// narrow converts the elements of a wider contents field to T, each of
// which must lie in [lo, hi].
func narrow[T int8 | int16 | uint8 | uint16, W int32 | uint32](in []W, field string, lo, hi int64) ([]T, error) {
	out := make([]T, len(in))
	for i, v := range in {
		if int64(v) < lo || int64(v) > hi {
			return nil, fmt.Errorf("contents.%s[%d]: %d is out of range for the datatype (%d to %d)", field, i, v, lo, hi)
		}
		out[i] = T(v)
	}
	return out, nil
}

// grpcAnswer is the gRPC answer of a served observation: its outputs in
// raw_output_contents when raw, else in typed contents. An output that is
// not a tensor (a ZipMap's maps) goes as BYTES, each element a map in
// JSON, as no V2 datatype holds it.
func grpcAnswer(o *observation, raw bool) *pb.ModelInferResponse {
	outs := o.p.outputs
	resp := &pb.ModelInferResponse{
		ModelName: o.p.Version.Name, ModelVersion: strconv.Itoa(o.p.Version.Version), Id: o.v2.ID,
		Outputs: make([]*pb.ModelInferResponse_InferOutputTensor, len(outs)),
	}
	if o.route != nil {
		resp.Parameters = map[string]*pb.InferParameter{"endpoint": stringParam(o.route.Endpoint()), "variant": stringParam(o.variant)}
	}
	if raw {
		resp.RawOutputContents = make([][]byte, len(outs))
	}
	for i, t := range outs {
		out := &pb.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: t.Type.String(), Shape: t.Shape}
		data := t.Data
		if maps, ok := data.([]onnx.Map); ok {
			data, out.Datatype = jsonMaps(maps), onnx.Bytes.String()
		}
		if raw {
			resp.RawOutputContents[i] = rawBytes(data)
		} else {
			out.Contents = contentsOf(data)
		}
		resp.Outputs[i] = out
	}
	return resp
}

// jsonMaps is each map in JSON.
func jsonMaps(maps []onnx.Map) []string {
	out := make([]string, len(maps))
	for i, m := range maps {
		out[i] = string(appendMap(nil, m))
	}
	return out
}

// rawBytes is data in binary, as raw_output_contents holds it: on a
// little-endian machine, the bytes of a numeric slice themselves, which the
// answer then shares (the outputs are the answer's own).
func rawBytes(data any) []byte {
	if littleEndian {
		switch d := data.(type) {
		case []float32:
			return bytesOf(d)
		case []float64:
			return bytesOf(d)
		case []int64:
			return bytesOf(d)
		case []int32:
			return bytesOf(d)
		}
	}
	n, _ := binaryLen(data)
	return appendBinary(make([]byte, 0, n), data)
}

// bytesOf is the memory of s as bytes.
func bytesOf[T fixedNumber](s []T) []byte {
	if len(s) == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}

// contentsOf is data in the typed contents field of its datatype.
func contentsOf(data any) *pb.InferTensorContents {
	c := &pb.InferTensorContents{}
	switch d := data.(type) {
	case []bool:
		c.BoolContents = d
	case []int8:
		c.IntContents = widen[int32](d)
	case []int16:
		c.IntContents = widen[int32](d)
	case []int32:
		c.IntContents = d
	case []int64:
		c.Int64Contents = d
	case []uint8:
		c.UintContents = widen[uint32](d)
	case []uint16:
		c.UintContents = widen[uint32](d)
	case []uint32:
		c.UintContents = d
	case []uint64:
		c.Uint64Contents = d
	case []float32:
		c.Fp32Contents = d
	case []float64:
		c.Fp64Contents = d
	case []string:
		c.BytesContents = make([][]byte, len(d))
		for i, s := range d {
			c.BytesContents[i] = []byte(s)
		}
	}
	return c
}

func widen[W int32 | uint32, T int8 | int16 | uint8 | uint16](in []T) []W {
	out := make([]W, len(in))
	for i, v := range in {
		out[i] = W(v)
	}
	return out
}
