package serving

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/mlgate/mlgate/internal/jsonerr"
	"github.com/mlgate/mlgate/serving/onnx"
)

// inferRequest is a decoded KServe V2 inference request.
type inferRequest struct {
	ID      string
	Inputs  []onnx.Tensor
	Outputs []string // requested outputs; empty means all
	// ModelName and ModelVersion are the model the body names, when it
	// names one (KServe's client does): the URL's must agree.
	ModelName, ModelVersion string
	// binarySize holds, by input, the parameters.binary_data_size of an
	// input whose data follows the JSON (the binary tensor data extension),
	// or -1; it is nil when no input's does. Such an input's Data is nil
	// until readBinary fills it.
	binarySize []int64
	// binaryOut holds, by requested output, its parameters.binary_data; nil
	// when no output gave one. binaryAll is the request's
	// parameters.binary_data_output, which an output's own overrides.
	binaryOut []choice
	binaryAll bool
}

// choice is a boolean parameter that may be left out.
type choice uint8

const (
	unset choice = iota
	no
	yes
)

// noteSize records the binary_data_size of input i (-1: none), the inputs
// before it recorded.
func (r *inferRequest) noteSize(i int, size int64) {
	if size < 0 && r.binarySize == nil {
		return
	}
	for len(r.binarySize) < i {
		r.binarySize = append(r.binarySize, -1)
	}
	r.binarySize = append(r.binarySize, size)
}

// noteOutput records the binary_data of requested output i, the outputs
// before it recorded.
func (r *inferRequest) noteOutput(i int, c choice) {
	if c == unset && r.binaryOut == nil {
		return
	}
	for len(r.binaryOut) < i {
		r.binaryOut = append(r.binaryOut, unset)
	}
	r.binaryOut = append(r.binaryOut, c)
}

// binaryOutput reports whether the answer's output i (of the requested
// ones, or of all the model's when none was requested) goes in binary.
func (r *inferRequest) binaryOutput(i int) bool {
	if i < len(r.binaryOut) && r.binaryOut[i] != unset {
		return r.binaryOut[i] == yes
	}
	return r.binaryAll
}

// wantsBinary reports whether any output of the answer may go in binary.
func (r *inferRequest) wantsBinary() bool {
	if r.binaryAll {
		return true
	}
	for _, c := range r.binaryOut {
		if c == yes {
			return true
		}
	}
	return false
}

// wireRequest is the JSON form of a V2 inference request.
type wireRequest struct {
	ID           string          `json:"id"`
	ModelName    string          `json:"model_name"`
	ModelVersion string          `json:"model_version"`
	Parameters   json.RawMessage `json:"parameters"`
	Inputs       []struct {
		Name       string          `json:"name"`
		Shape      []int64         `json:"shape"`
		Datatype   string          `json:"datatype"`
		Parameters json.RawMessage `json:"parameters"`
		Data       json.RawMessage `json:"data"`
	} `json:"inputs"`
	Outputs []struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
	} `json:"outputs"`
}

// decodeInferRequest parses a V2 inference request in JSON, holding each
// input to lim. Every error matches ErrInvalidInput and names the input or
// field at fault, except a tensor over limits.max_tensor_elements, which
// matches errTooLarge.
func decodeInferRequest(body []byte, lim limits) (*inferRequest, error) {
	return decodeInferBody(body, -1, lim)
}

// decodeInferBody parses a V2 inference request whose JSON is the first
// header bytes of body, followed by the binary data of the inputs that
// give a parameters.binary_data_size (the binary tensor data extension),
// or, when header is negative, all of body. Its errors are
// decodeInferRequest's.
//
// The JSON is read in one pass by scanInferRequest; JSON that it declines
// (any it would refuse, and the few valid ones it does not take as they
// are) is decoded by decodeWireRequest, whose answer and error messages
// are the reference: FuzzScanInferRequest checks that the two agree
// wherever the scan accepts.
func decodeInferBody(body []byte, header int, lim limits) (*inferRequest, error) {
	js, bin := body, []byte(nil)
	if header >= 0 {
		js, bin = body[:header], body[header:]
	}
	req, ok := scanInferRequest(js, lim)
	if !ok {
		var err error
		if req, err = decodeWireRequest(js, lim); err != nil {
			return nil, err
		}
	}
	if err := req.readBinary(bin, header >= 0, lim); err != nil {
		return nil, err
	}
	return req, nil
}

// decodeWireRequest decodes the JSON of a V2 inference request through
// encoding/json (wireRequest), then reads each input's data given in JSON.
func decodeWireRequest(body []byte, lim limits) (*inferRequest, error) {
	var w wireRequest
	if err := jsonerr.Decode(body, &w); err != nil {
		return nil, invalidInput("request body: %v", err)
	}
	if len(w.ID) > maxRequestIDBytes {
		return nil, invalidInput("id: %d bytes is longer than %d", len(w.ID), maxRequestIDBytes)
	}
	params, err := wireParams("parameters", w.Parameters)
	if err != nil {
		return nil, err
	}
	all, err := boolParam("parameters.binary_data_output", params["binary_data_output"])
	if err != nil {
		return nil, err
	}
	if len(w.Inputs) == 0 {
		return nil, invalidInput("inputs: at least one input is required")
	}
	req := &inferRequest{ID: w.ID, ModelName: w.ModelName, ModelVersion: w.ModelVersion, Inputs: make([]onnx.Tensor, len(w.Inputs)), binaryAll: all == yes}
	seen := make(map[string]bool, len(w.Inputs))
	for i, in := range w.Inputs {
		if in.Name == "" {
			return nil, invalidInput("inputs[%d]: name is required", i)
		}
		if seen[in.Name] {
			return nil, invalidInput("input %q: given twice", in.Name)
		}
		seen[in.Name] = true
		t := onnx.ParseDataType(in.Datatype)
		if t == onnx.Invalid {
			return nil, invalidInput("input %q: %s", in.Name, unknownDatatype(in.Datatype))
		}
		if in.Shape == nil {
			return nil, invalidInput("input %q: shape is required", in.Name)
		}
		n := onnx.Elements(in.Shape)
		if n < 0 {
			return nil, invalidInput("input %q: shape %v has a negative dimension or too many elements", in.Name, in.Shape)
		}
		if err := lim.checkShape(in.Shape, n); err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		params, err := wireParams("input "+strconv.Quote(in.Name)+": parameters", in.Parameters)
		if err != nil {
			return nil, err
		}
		size := int64(-1)
		if raw, ok := params["binary_data_size"]; ok {
			if size, ok = byteCount(raw); !ok {
				return nil, invalidInput("input %q: parameters.binary_data_size: %s is not a byte count (a whole number, at least 0)", in.Name, describeToken(raw))
			}
		}
		req.Inputs[i] = onnx.Tensor{Name: in.Name, Type: t, Shape: in.Shape}
		req.noteSize(i, size)
		switch {
		case size >= 0 && len(in.Data) != 0:
			return nil, invalidInput("input %q: gives both data and parameters.binary_data_size; send its data in one of them", in.Name)
		case size >= 0:
			continue
		case len(in.Data) == 0:
			return nil, invalidInput("input %q: data is required", in.Name)
		}
		if req.Inputs[i].Data, err = parseData(in.Data, t, n, lim); err != nil {
			return nil, invalidInput("input %q: %v", in.Name, err)
		}
	}
	for i, out := range w.Outputs {
		if out.Name == "" {
			return nil, invalidInput("outputs[%d]: name is required", i)
		}
		params, err := wireParams("output "+strconv.Quote(out.Name)+": parameters", out.Parameters)
		if err != nil {
			return nil, err
		}
		c, err := boolParam("output "+strconv.Quote(out.Name)+": parameters.binary_data", params["binary_data"])
		if err != nil {
			return nil, err
		}
		req.Outputs = append(req.Outputs, out.Name)
		req.noteOutput(i, c)
	}
	return req, nil
}

// wireParams reads a parameters object, which the protocol allows on the
// request, each input and each output; field names it in errors. Absent or
// null, it is empty. Its members are not checked: a parameter mlgate does
// not know is ignored, as the protocol says.
func wireParams(field string, raw json.RawMessage) (map[string]json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, invalidInput("%s: must be an object, not %s", field, describeToken(raw))
	}
	return m, nil
}

// boolParam reads a boolean parameter (absent: unset); field names it in
// errors.
func boolParam(field string, raw json.RawMessage) (choice, error) {
	switch string(raw) {
	case "":
		return unset, nil
	case "true":
		return yes, nil
	case "false":
		return no, nil
	}
	return unset, invalidInput("%s: must be true or false, not %s", field, describeToken(raw))
}

// byteCount reads a binary_data_size: a JSON integer, at least 0.
func byteCount(tok []byte) (int64, bool) {
	if !isJSONNumber(tok) || bytes.ContainsAny(tok, ".eE-") {
		return 0, false
	}
	n, err := strconv.ParseInt(str(tok), 10, 64)
	return n, err == nil
}

// unknownDatatype explains a datatype name that is not one mlgate serves.
func unknownDatatype(name string) string {
	const served = "BOOL, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64, FP32, FP64, BYTES"
	if name == "FP16" || name == "BF16" {
		return "datatype " + name + " is not supported (mlgate serves " + served + ")"
	}
	return "unknown datatype " + strconv.Quote(name) + " (want one of " + served + ")"
}

// scanInferRequest decodes the JSON of a V2 inference request in one pass
// over body, reading each input's data straight into its tensor. It
// declines (ok false) every request that decodeWireRequest would refuse,
// and also the valid ones it does not take as they are: a key that is
// escaped, in another case or given twice, a null, an escaped or invalid
// UTF-8 id, model name, input name or datatype, parameters nested deeper
// than maxSkipDepth. Whatever it accepts, decodeWireRequest decodes to the
// same request.
func scanInferRequest(body []byte, lim limits) (req *inferRequest, ok bool) {
	// A request of one input, the usual, takes one allocation for the
	// request, its input and a shape of up to 4 dimensions.
	one := &struct {
		req    inferRequest
		inputs [1]onnx.Tensor
		shape  [4]int64
	}{}
	req = &one.req
	req.Inputs = one.inputs[:0]
	s := scanner{b: body}
	var seen uint8
	const id, params, inputs, outputs, model, version = 1, 2, 4, 8, 16, 32
	ok = s.object(func(key []byte) bool {
		var bit uint8
		switch str(key) {
		case "id":
			bit = id
		case "parameters":
			bit = params
		case "inputs":
			bit = inputs
		case "outputs":
			bit = outputs
		case "model_name":
			bit = model
		case "model_version":
			bit = version
		}
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch bit {
		case id, model, version:
			v, ok := s.plain()
			if !ok || (bit == id && len(v) > maxRequestIDBytes) {
				return false
			}
			switch bit {
			case id:
				req.ID = string(v)
			case model:
				req.ModelName = string(v)
			default:
				req.ModelVersion = string(v)
			}
			return true
		case params:
			all, ok := s.boolParam("binary_data_output")
			req.binaryAll = all == yes
			return ok
		case inputs:
			return s.array(func() bool {
				var dims []int64
				if len(req.Inputs) == 0 {
					dims = one.shape[:0]
				}
				t, size, ok := s.input(dims, req.Inputs, lim)
				req.Inputs = append(req.Inputs, t)
				req.noteSize(len(req.Inputs)-1, size)
				return ok
			})
		}
		return s.array(func() bool {
			name, c, ok := s.output()
			req.Outputs = append(req.Outputs, name)
			req.noteOutput(len(req.Outputs)-1, c)
			return ok
		})
	})
	s.ws()
	if !ok || s.i != len(s.b) || len(req.Inputs) == 0 {
		return nil, false
	}
	return req, true
}

// boolParam scans a parameters object, skipping its members but name,
// which must be true or false, and returns name's value.
func (s *scanner) boolParam(name string) (choice, bool) {
	c := unset
	ok := s.object(func(key []byte) bool {
		if str(key) != name {
			return s.skip(1)
		}
		if c != unset {
			return false
		}
		s.ws()
		switch {
		case s.literal("true"):
			c = yes
		case s.literal("false"):
			c = no
		default:
			return false
		}
		return true
	})
	return c, ok
}

// input scans one element of a request's inputs: a tensor whose name none
// of before has, and its parameters.binary_data_size, or -1. Its shape is
// appended to dims (nil or empty), which it keeps when they fit.
func (s *scanner) input(dims []int64, before []onnx.Tensor, lim limits) (onnx.Tensor, int64, bool) {
	var (
		t      onnx.Tensor
		seen   uint8
		n      int64
		size   int64 = -1
		dataAt       = -1 // the data's offset, when it came before the shape or the datatype
	)
	const name, shape, datatype, params, data = 1, 2, 4, 8, 16
	ready := func() bool { // the shape and the datatype are known and fit
		n = onnx.Elements(t.Shape)
		return n >= 0 && lim.checkShape(t.Shape, n) == nil
	}
	ok := s.object(func(key []byte) bool {
		var bit uint8
		switch str(key) {
		case "name":
			bit = name
		case "shape":
			bit = shape
		case "datatype":
			bit = datatype
		case "parameters":
			bit = params
		case "data":
			bit = data
		}
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch bit {
		case name:
			v, ok := s.plain()
			if !ok || len(v) == 0 {
				return false
			}
			for _, b := range before {
				if b.Name == str(v) {
					return false
				}
			}
			t.Name = string(v)
			return true
		case shape:
			var ok bool
			t.Shape, ok = s.dims(dims)
			return ok
		case datatype:
			v, ok := s.plain()
			t.Type = onnx.ParseDataType(str(v))
			return ok && t.Type != onnx.Invalid
		case params:
			return s.object(func(key []byte) bool {
				if str(key) != "binary_data_size" {
					return s.skip(1)
				}
				tok, ok := s.number()
				if !ok || size >= 0 {
					return false
				}
				size, ok = byteCount(tok)
				return ok
			})
		}
		if seen&(shape|datatype) != shape|datatype {
			dataAt = s.i
			return s.skip(0)
		}
		if !ready() {
			return false
		}
		var err error
		t.Data, err = parseDataAt(s, t.Type, n, lim)
		return err == nil
	})
	if !ok || seen&(name|shape|datatype) != name|shape|datatype {
		return t, size, false
	}
	if size >= 0 {
		return t, size, seen&data == 0 && ready()
	}
	if seen&data == 0 {
		return t, size, false
	}
	if dataAt >= 0 {
		if !ready() {
			return t, size, false
		}
		var err error
		if t.Data, err = parseDataAt(&scanner{b: s.b, i: dataAt}, t.Type, n, lim); err != nil {
			return t, size, false
		}
	}
	return t, size, true
}

// output scans one element of a request's outputs and returns its name
// and parameters.binary_data.
func (s *scanner) output() (string, choice, bool) {
	var name string
	var seen uint8
	c := unset
	ok := s.object(func(key []byte) bool {
		switch {
		case str(key) == "name" && seen&1 == 0:
			seen |= 1
			v, ok := s.plain()
			name = string(v)
			return ok && len(v) > 0
		case str(key) == "parameters" && seen&2 == 0:
			seen |= 2
			var ok bool
			c, ok = s.boolParam("binary_data")
			return ok
		}
		return false
	})
	return name, c, ok && seen&1 != 0
}

// dims scans a shape, appending it to buf (nil or empty): an array of
// integers in int64's range.
func (s *scanner) dims(buf []int64) ([]int64, bool) {
	ok := s.array(func() bool {
		tok, ok := s.number()
		if !ok || bytes.ContainsAny(tok, ".eE") {
			return false
		}
		d, err := strconv.ParseInt(str(tok), 10, 64)
		buf = append(buf, d)
		return err == nil
	})
	if buf == nil {
		buf = []int64{} // as encoding/json decodes [], not nil
	}
	return buf[:len(buf):len(buf)], ok
}

// maxSkipDepth bounds how deeply the values scanInferRequest skips (its
// parameters) may nest before it declines them.
const maxSkipDepth = 64

// scanner reads JSON: the requests scanInferRequest and scanPredictRequest
// take, whose methods first skip the spaces before what they read and
// report whether they found it (on false the scan is abandoned), and the
// nested arrays of tensor data (walk, scalar), which say what is wrong.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat consumes c if it is the next byte.
func (s *scanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object scans an object, calling member with each key to read its value.
func (s *scanner) object(member func(key []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	for {
		key, ok := s.plain()
		if !ok || !s.eat(':') || !member(key) {
			return false
		}
		if !s.eat(',') {
			return s.eat('}')
		}
	}
}

// array scans an array, calling elem to read each element.
func (s *scanner) array(elem func() bool) bool {
	if !s.eat('[') {
		return false
	}
	if s.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !s.eat(',') {
			return s.eat(']')
		}
	}
}

// plain scans a string without escapes, in valid UTF-8, and returns its
// bytes, without the quotes.
func (s *scanner) plain() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start, ascii := s.i, true
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, ascii || utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// skip scans any JSON value, checking its syntax as encoding/json does.
func (s *scanner) skip(depth int) bool {
	if depth > maxSkipDepth {
		return false
	}
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case '[':
		return s.array(func() bool { return s.skip(depth + 1) })
	case '"':
		return s.skipString()
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	_, ok := s.number()
	return ok
}

func (s *scanner) literal(word string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return false
	}
	s.i += len(word)
	return true
}

// skipString scans a string at s.i, its escapes included.
func (s *scanner) skipString() bool {
	for s.i++; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.i+4 >= len(s.b) {
					return false
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return false
					}
				}
				s.i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// number scans a JSON number and returns its text.
func (s *scanner) number() ([]byte, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case !s.digits():
		return nil, false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return nil, false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

// digits scans one or more decimal digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// hasControl reports whether b holds a control character, which a JSON
// string may not hold unescaped.
func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// parseData reads a V2 "data" array (flat or nested to any depth) of n
// elements of type t; BYTES elements are held to lim. raw is valid JSON:
// encoding/json checked it.
func parseData(raw []byte, t onnx.DataType, n int64, lim limits) (any, error) {
	return parseDataAt(&scanner{b: raw}, t, n, lim)
}

// parseDataAt reads the data array that starts at p.i (after spaces), and
// leaves p.i just after it. Its elements are checked to be JSON, so p.b
// need not have been validated.
func parseDataAt(p *scanner, t onnx.DataType, n int64, lim limits) (any, error) {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '[' {
		return nil, errors.New("data: must be an array")
	}
	// Each element takes at least two bytes ("0,"), which bounds what a lying
	// shape can make us allocate.
	capHint := int(min(n, int64((len(p.b)-p.i)/2+1)))
	switch t {
	case onnx.Bool:
		return collect(p, n, capHint, parseBool)
	case onnx.Int8:
		return collect(p, n, capHint, intParser[int8](8))
	case onnx.Int16:
		return collect(p, n, capHint, intParser[int16](16))
	case onnx.Int32:
		return collect(p, n, capHint, intParser[int32](32))
	case onnx.Int64:
		return collect(p, n, capHint, intParser[int64](64))
	case onnx.Uint8:
		return collect(p, n, capHint, uintParser[uint8](8))
	case onnx.Uint16:
		return collect(p, n, capHint, uintParser[uint16](16))
	case onnx.Uint32:
		return collect(p, n, capHint, uintParser[uint32](32))
	case onnx.Uint64:
		return collect(p, n, capHint, uintParser[uint64](64))
	case onnx.FP32:
		return collect(p, n, capHint, parseFloat32)
	case onnx.FP64:
		return collect(p, n, capHint, parseFloat64)
	case onnx.Bytes:
		return collect(p, n, capHint, func(tok []byte) (string, error) {
			s, err := parseString(tok)
			if err == nil {
				err = lim.checkString(s)
			}
			return s, err
		})
	}
	return nil, errors.New("datatype " + t.String() + " cannot be an input")
}

// collect walks the nested arrays and converts each scalar with conv.
func collect[T any](p *scanner, n int64, capHint int, conv func([]byte) (T, error)) ([]T, error) {
	out := make([]T, 0, capHint)
	err := p.walk(0, func(tok []byte) error {
		if int64(len(out)) >= n {
			return errTooMany
		}
		v, err := conv(tok)
		if err != nil {
			return elementError{len(out), err}
		}
		out = append(out, v)
		return nil
	})
	if errors.Is(err, errTooMany) {
		return nil, errors.New("data: more elements than the shape holds (" + strconv.FormatInt(n, 10) + ")")
	}
	if err != nil {
		return nil, err
	}
	if int64(len(out)) != n {
		return nil, errors.New("data: shape holds " + strconv.FormatInt(n, 10) + " elements, got " + strconv.Itoa(len(out)))
	}
	return out, nil
}

var errTooMany = errors.New("too many elements")

type elementError struct {
	index int
	err   error
}

func (e elementError) Error() string {
	return "data[" + strconv.Itoa(e.index) + "] (flattened): " + e.err.Error()
}

// maxDepth bounds how deeply data arrays may nest.
const maxDepth = 32

// walk reads one array at p.i, calling fn for each scalar inside it, in order.
func (p *scanner) walk(depth int, fn func([]byte) error) error {
	if depth > maxDepth {
		return errors.New("data: arrays nested deeper than " + strconv.Itoa(maxDepth))
	}
	p.i++ // '['
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return nil
	}
	for {
		p.ws()
		if p.i >= len(p.b) {
			return errors.New("data: unexpected end")
		}
		if p.b[p.i] == '[' {
			if err := p.walk(depth+1, fn); err != nil {
				return err
			}
		} else if err := fn(p.scalar()); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) {
			return errors.New("data: unexpected end")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return errors.New("data: unexpected " + strconv.QuoteRune(rune(p.b[p.i])))
		}
	}
}

// scalar returns the token at p.i: a string with its quotes, or the bytes up
// to the next delimiter (a number, true, false, null or an object's start).
func (p *scanner) scalar() []byte {
	start := p.i
	if p.b[p.i] == '"' {
		p.i++
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case '\\':
				p.i += 2
				continue
			case '"':
				p.i++
				return p.b[start:p.i]
			}
			p.i++
		}
		p.i = len(p.b)
		return p.b[start:]
	}
	if p.b[p.i] == '{' {
		p.i = len(p.b) // an object is never a valid element; report it as such
		return p.b[start : start+1]
	}
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ',', ']', ' ', '\t', '\n', '\r':
			return p.b[start:p.i]
		}
		p.i++
	}
	return p.b[start:]
}

// str views b as a string without copying; the string must not outlive b.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func describeToken(tok []byte) string {
	if len(tok) > 32 {
		return strconv.Quote(string(tok[:32])) + "..."
	}
	return strconv.Quote(string(tok))
}

func parseBool(tok []byte) (bool, error) {
	switch str(tok) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New(describeToken(tok) + " is not true or false")
}

type signed interface {
	~int8 | ~int16 | ~int32 | ~int64
}
type unsigned interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64
}

func intParser[T signed](bits int) func([]byte) (T, error) {
	return func(tok []byte) (T, error) {
		v, err := strconv.ParseInt(str(tok), 10, bits)
		if err != nil {
			return 0, numberError(tok, "INT"+strconv.Itoa(bits), err)
		}
		if !isJSONNumber(tok) { // "+1" or "01": strconv takes them, JSON does not
			return 0, errors.New(describeToken(tok) + " is not a JSON number")
		}
		return T(v), nil
	}
}

func uintParser[T unsigned](bits int) func([]byte) (T, error) {
	return func(tok []byte) (T, error) {
		v, err := strconv.ParseUint(str(tok), 10, bits)
		if err != nil {
			return 0, numberError(tok, "UINT"+strconv.Itoa(bits), err)
		}
		if !isJSONNumber(tok) {
			return 0, errors.New(describeToken(tok) + " is not a JSON number")
		}
		return T(v), nil
	}
}

func numberError(tok []byte, typ string, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return errors.New(describeToken(tok) + " is out of range for " + typ)
	}
	return errors.New(describeToken(tok) + " is not a whole number, as " + typ + " needs")
}

func parseFloat32(tok []byte) (float32, error) {
	if !isJSONNumber(tok) {
		return 0, errors.New(describeToken(tok) + " is not a number")
	}
	v, err := strconv.ParseFloat(str(tok), 32)
	if err != nil {
		return 0, errors.New(describeToken(tok) + " is out of range for FP32")
	}
	return float32(v), nil
}

func parseFloat64(tok []byte) (float64, error) {
	if !isJSONNumber(tok) {
		return 0, errors.New(describeToken(tok) + " is not a number")
	}
	v, err := strconv.ParseFloat(str(tok), 64)
	if err != nil {
		return 0, errors.New(describeToken(tok) + " is out of range for FP64")
	}
	return v, nil
}

// isJSONNumber reports whether tok is a JSON number, refusing what strconv
// takes but JSON does not ("NaN", "Inf", hex, underscores, "+1", "01", ".5").
func isJSONNumber(tok []byte) bool {
	s := scanner{b: tok}
	_, ok := s.number()
	return ok && s.i == len(tok)
}

func parseString(tok []byte) (string, error) {
	if len(tok) < 2 || tok[0] != '"' || tok[len(tok)-1] != '"' {
		return "", errors.New(describeToken(tok) + " is not a string, as BYTES needs")
	}
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if hasControl(inner) {
			return "", errors.New(describeToken(tok) + " is not a valid JSON string")
		}
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return "", errors.New(describeToken(tok) + " is not a valid JSON string")
	}
	return s, nil
}

// inferResponse is what encodeInferResponse writes.
type inferResponse struct {
	Model   string
	Version int
	ID      string
	Outputs []onnx.Tensor
	// Routed names the endpoint and variant that chose the model, if any;
	// they are written as the response's parameters.
	Routed *routed
	// Binary, when set, is the request, which says the outputs to answer
	// in binary after the JSON (binaryOutput); an output that has no
	// binary form (a map) stays in the JSON.
	Binary *inferRequest
}

type routed struct {
	endpoint, variant string
}

// encodeInferResponse appends the V2 JSON of r to b, then the outputs
// that r.Binary asks for in binary.
func encodeInferResponse(b []byte, r *inferResponse) []byte {
	b = append(b, `{"model_name":`...)
	b = appendString(b, r.Model)
	b = append(b, `,"model_version":"`...)
	b = strconv.AppendInt(b, int64(r.Version), 10)
	b = append(b, '"')
	if r.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, r.ID)
	}
	if r.Routed != nil {
		b = append(b, `,"parameters":{"endpoint":`...)
		b = appendString(b, r.Routed.endpoint)
		b = append(b, `,"variant":`...)
		b = appendString(b, r.Routed.variant)
		b = append(b, '}')
	}
	b = append(b, `,"outputs":`...)
	b = appendTensorsAs(b, r.Outputs, r.binaryLen)
	b = append(b, '}')
	for i, t := range r.Outputs {
		if _, ok := r.binaryLen(i); ok {
			b = appendBinary(b, t.Data)
		}
	}
	return b
}

// appendTensors appends ts as a JSON array of V2 tensors, data and all.
func appendTensors(b []byte, ts []onnx.Tensor) []byte {
	return appendTensorsAs(b, ts, func(int) (int, bool) { return 0, false })
}

// appendTensorsAs appends ts as a JSON array of V2 tensors; a tensor i for
// which binary reports a size gives it as parameters.binary_data_size in
// place of its data.
func appendTensorsAs(b []byte, ts []onnx.Tensor, binary func(i int) (int, bool)) []byte {
	b = append(b, '[')
	for i, t := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, t.Name)
		b = append(b, `,"datatype":"`...)
		b = append(b, t.Type.String()...)
		b = append(b, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, ']')
		if n, ok := binary(i); ok {
			b = append(b, `,"parameters":{"binary_data_size":`...)
			b = strconv.AppendInt(b, int64(n), 10)
			b = append(b, "}}"...)
			continue
		}
		b = append(b, `,"data":`...)
		b = appendData(b, t.Data)
		b = append(b, '}')
	}
	return append(b, ']')
}

// binaryLen returns the size in binary of output i, and whether it is
// answered in binary.
func (r *inferResponse) binaryLen(i int) (int, bool) {
	if r.Binary == nil || !r.Binary.binaryOutput(i) {
		return 0, false
	}
	return binaryLen(r.Outputs[i].Data)
}

func appendData(b []byte, data any) []byte {
	switch d := data.(type) {
	case []bool:
		return appendSlice(b, d, strconv.AppendBool)
	case []int8:
		return appendSlice(b, d, appendInt)
	case []int16:
		return appendSlice(b, d, appendInt)
	case []int32:
		return appendSlice(b, d, appendInt)
	case []int64:
		return appendSlice(b, d, appendInt)
	case []uint8:
		return appendSlice(b, d, appendUint)
	case []uint16:
		return appendSlice(b, d, appendUint)
	case []uint32:
		return appendSlice(b, d, appendUint)
	case []uint64:
		return appendSlice(b, d, appendUint)
	case []float32:
		return appendSlice(b, d, appendFloat32)
	case []float64:
		return appendSlice(b, d, appendFloat64)
	case []string:
		return appendSlice(b, d, appendString)
	case []onnx.Map:
		return appendSlice(b, d, appendMap)
	}
	return append(b, "null"...)
}

func appendSlice[T any](b []byte, s []T, f func([]byte, T) []byte) []byte {
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = f(b, v)
	}
	return append(b, ']')
}

func appendInt[T signed](b []byte, v T) []byte    { return strconv.AppendInt(b, int64(v), 10) }
func appendUint[T unsigned](b []byte, v T) []byte { return strconv.AppendUint(b, uint64(v), 10) }

// appendFloat32 writes v in the fewest digits that read back as the same
// float32. JSON has no NaN or infinity; they are written as null.
func appendFloat32(b []byte, v float32) []byte {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
}

func appendFloat64(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func appendMap(b []byte, m onnx.Map) []byte {
	b = append(b, '{')
	for i, k := range m.Keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendFloat32(b, m.Values[i])
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Bytes that are not valid UTF-8 are
// written as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
