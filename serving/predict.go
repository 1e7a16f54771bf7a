package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/jsonerr"
	"github.com/mlgate/mlgate/serving/onnx"
)

// predictRequest is what POST /v1/models/{ref}/predict takes: entity keys
// (and request values) for a model with a feature spec, or raw input tensors
// as nested arrays for a model without one.
type predictRequest struct {
	RequestID string `json:"request_id"`
	// Unit picks the variant of an endpoint (see router); it is ignored by
	// model predict.
	Unit     string                       `json:"unit"`
	Entities map[string][]json.RawMessage `json:"entities"`
	Request  map[string][]json.RawMessage `json:"request"`
	Inputs   map[string]json.RawMessage   `json:"inputs"`
	Debug    bool                         `json:"debug"`
}

// decodePredictRequest parses a predict request, holding its entity and
// request columns to lim; raw inputs are checked against lim as they are
// read (rawInputs).
//
// A request is read in one pass by scanPredictRequest; one that it
// declines is decoded by decodeWirePredict, whose answer and error messages
// are the reference (FuzzScanPredictRequest checks that the two agree).
func decodePredictRequest(body []byte, lim limits) (*predictRequest, error) {
	if req, ok := scanPredictRequest(body, lim); ok {
		return req, nil
	}
	return decodeWirePredict(body, lim)
}

// decodeWirePredict decodes a predict request through encoding/json.
func decodeWirePredict(body []byte, lim limits) (*predictRequest, error) {
	var req predictRequest
	if err := jsonerr.Decode(body, &req); err != nil {
		return nil, invalidInput("request body: %v", err)
	}
	if len(req.RequestID) > maxRequestIDBytes {
		return nil, invalidInput("request_id: %d bytes is longer than %d", len(req.RequestID), maxRequestIDBytes)
	}
	if len(req.Unit) > maxUnitBytes {
		return nil, invalidInput("unit: %d bytes is longer than %d", len(req.Unit), maxUnitBytes)
	}
	if err := lim.checkColumns("entities", req.Entities); err != nil {
		return nil, err
	}
	if err := lim.checkColumns("request", req.Request); err != nil {
		return nil, err
	}
	return &req, nil
}

// scanPredictRequest decodes a predict request in one pass over a copy of
// body, which its strings and raw values then share (the request outlives
// body: the recorder and shadow copies read it). It declines (ok false)
// every request decodeWirePredict would refuse, and the valid ones it does
// not take as they are (as scanInferRequest does, and a null anywhere);
// whatever it accepts, decodeWirePredict decodes to the same request.
func scanPredictRequest(body []byte, lim limits) (*predictRequest, bool) {
	req := &predictRequest{}
	own := bytes.Clone(body)
	s := scanner{b: own}
	var seen uint8
	// text views the scanned bytes of own, which nothing writes, as a string.
	text := func(v []byte) string { return unsafe.String(unsafe.SliceData(v), len(v)) }
	ok := s.object(func(key []byte) bool {
		var bit uint8
		switch str(key) {
		case "request_id":
			bit = 1
		case "unit":
			bit = 2
		case "entities":
			bit = 4
		case "request":
			bit = 8
		case "inputs":
			bit = 16
		case "debug":
			bit = 32
		}
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch bit {
		case 1, 2:
			v, ok := s.plain()
			if bit == 1 {
				req.RequestID = text(v)
			} else {
				req.Unit = text(v)
			}
			return ok
		case 4, 8:
			cols, ok := s.columns(text)
			if bit == 4 {
				req.Entities = cols
			} else {
				req.Request = cols
			}
			return ok
		case 16:
			req.Inputs = map[string]json.RawMessage{}
			return s.object(func(key []byte) bool {
				raw, ok := s.value()
				if _, dup := req.Inputs[text(key)]; dup || !ok {
					return false
				}
				req.Inputs[text(key)] = raw
				return true
			})
		}
		s.ws()
		switch {
		case s.literal("true"):
			req.Debug = true
		case !s.literal("false"):
			return false
		}
		return true
	})
	s.ws()
	if !ok || s.i != len(s.b) || len(req.RequestID) > maxRequestIDBytes || len(req.Unit) > maxUnitBytes ||
		lim.checkColumns("entities", req.Entities) != nil || lim.checkColumns("request", req.Request) != nil {
		return nil, false
	}
	return req, true
}

// columns scans an object of arrays: entity or request columns.
func (s *scanner) columns(text func([]byte) string) (map[string][]json.RawMessage, bool) {
	cols := map[string][]json.RawMessage{}
	ok := s.object(func(key []byte) bool {
		if _, dup := cols[text(key)]; dup {
			return false
		}
		var vals []json.RawMessage
		ok := s.array(func() bool {
			raw, ok := s.value()
			vals = append(vals, raw)
			return ok
		})
		if vals == nil {
			vals = []json.RawMessage{} // as encoding/json decodes [], not nil
		}
		cols[text(key)] = vals
		return ok
	})
	return cols, ok
}

// value scans any JSON value but null and returns its text.
func (s *scanner) value() (json.RawMessage, bool) {
	s.ws()
	start := s.i
	if s.literal("null") || !s.skip(0) {
		return nil, false
	}
	return s.b[start:s.i:s.i], true
}

// predictRef reads the model reference of a predict route: "name",
// "name@alias", or name and version as two path segments.
func predictRef(c *fiber.Ctx) (model, ref string, err error) {
	model, ref = c.Params("name"), c.Params("version")
	if m, alias, ok := strings.Cut(model, "@"); ok {
		if alias == "" || ref != "" {
			return "", "", invalidInput("model reference %q: write name, name@alias or name/version", model+"/"+ref)
		}
		return m, alias, nil
	}
	if ref != "" {
		if _, err := strconv.Atoi(ref); err != nil {
			return "", "", invalidInput("model reference %q: the part after / must be a version number (use name@alias for an alias)", model+"/"+ref)
		}
	}
	return model, ref, nil
}

func (s *Server) predict(c *fiber.Ctx) error {
	req, err := decodePredictRequest(c.Body(), s.limits)
	if err != nil {
		return err
	}
	model, ref, err := predictRef(c)
	if err != nil {
		return err
	}
	o := observationOf(c)
	o.requestID, o.mintID, o.model, o.version, o.req, o.body, o.encode = req.RequestID, true, model, ref, req, c.Body(), encodePredictAnswer
	return s.serve(c, o)
}

// featureInputs assembles the inputs of a model with a feature spec.
func (s *Server) featureInputs(ctx context.Context, l *Loaded, req *predictRequest) ([]onnx.Tensor, *featurestore.Assembly, error) {
	if l.PlanErr != nil {
		return nil, nil, notReady("model %s version %d: its feature spec no longer compiles: %v", l.Version.Name, l.Version.Version, l.PlanErr)
	}
	if req.Inputs != nil {
		return nil, nil, invalidInput("inputs: model %s version %d reads its inputs from features; send entities (and request values) instead", l.Version.Name, l.Version.Version)
	}
	fs, err := s.featureStore()
	if err != nil {
		return nil, nil, err
	}
	entities, err := entityColumns(req.Entities)
	if err != nil {
		return nil, nil, err
	}
	asm, err := fs.Assemble(ctx, l.Plan, entities, req.Request)
	if err != nil {
		return nil, nil, err
	}
	inputs := make([]onnx.Tensor, len(asm.Inputs))
	for i, in := range asm.Inputs {
		inputs[i] = onnx.Tensor{Name: in.Name, Type: onnx.ParseDataType(in.Datatype), Shape: in.Shape, Data: in.Data}
	}
	return inputs, asm, nil
}

// rawInputs reads the nested arrays of a model without a feature spec,
// holding each to lim.
func rawInputs(l *Loaded, req *predictRequest, lim limits) ([]onnx.Tensor, error) {
	if req.Entities != nil || req.Request != nil {
		return nil, invalidInput("entities: model %s version %d has no feature spec; send its inputs as {\"inputs\": {\"name\": [[...]]}}", l.Version.Name, l.Version.Version)
	}
	if len(req.Inputs) == 0 {
		return nil, invalidInput("inputs: required (the model takes %s)", ioNames(l.Inputs()))
	}
	ios := l.Inputs()
	out := make([]onnx.Tensor, len(ios))
	for name, raw := range req.Inputs {
		i, ok := l.inputIndex[name]
		if !ok {
			return nil, invalidInput("inputs.%s: model %s has no such input (it takes %s)", name, l.Version.Name, ioNames(ios))
		}
		io := ios[i]
		shape, err := inferShape(raw)
		if err != nil {
			return nil, invalidInput("inputs.%s: %v", name, err)
		}
		n := onnx.Elements(shape)
		if err := lim.checkShape(shape, n); err != nil {
			return nil, fmt.Errorf("inputs.%s: %w", name, err)
		}
		if err := fitShape(shape, io.Shape); err != nil {
			return nil, invalidInput("inputs.%s: shape %s does not fit the model's %s: %v", name, shapeString(shape), shapeString(io.Shape), err)
		}
		data, err := parseData(raw, io.Type, n, lim)
		if err != nil {
			return nil, invalidInput("inputs.%s: %v", name, err)
		}
		out[i] = onnx.Tensor{Name: name, Type: io.Type, Shape: shape, Data: data}
	}
	for i, io := range ios {
		if out[i].Data == nil {
			return nil, invalidInput("inputs.%s: missing (the model takes %s)", io.Name, ioNames(ios))
		}
	}
	return out, nil
}

// inferShape reads the shape of nested JSON arrays, which must be
// rectangular: every array at one depth has the same length, and every value
// sits at the same depth.
func inferShape(raw []byte) ([]int64, error) {
	w := shapeWalker{p: scanner{b: raw}, leaf: -1}
	w.p.ws()
	if w.p.i >= len(w.p.b) || w.p.b[w.p.i] != '[' {
		return nil, errors.New("must be an array (nested for more dimensions)")
	}
	if err := w.walk(0); err != nil {
		return nil, err
	}
	if w.leaf >= 0 && w.leaf != len(w.shape) {
		return nil, errors.New("not rectangular: values at different depths")
	}
	return w.shape, nil
}

type shapeWalker struct {
	p     scanner
	shape []int64 // length of the arrays at each depth; -1 until seen
	leaf  int     // depth of the values; -1 until seen
}

func (w *shapeWalker) walk(depth int) error {
	if depth > maxDepth {
		return errors.New("arrays nested deeper than " + strconv.Itoa(maxDepth))
	}
	if len(w.shape) == depth {
		w.shape = append(w.shape, -1)
	}
	p := &w.p
	p.i++ // '['
	n := int64(0)
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
	} else {
		for {
			p.ws()
			if p.i >= len(p.b) {
				return errors.New("unexpected end")
			}
			if p.b[p.i] == '[' {
				if err := w.walk(depth + 1); err != nil {
					return err
				}
			} else {
				if w.leaf >= 0 && w.leaf != depth+1 {
					return errors.New("not rectangular: values at different depths")
				}
				w.leaf = depth + 1
				p.scalar()
			}
			n++
			p.ws()
			if p.i >= len(p.b) {
				return errors.New("unexpected end")
			}
			if c := p.b[p.i]; c == ',' {
				p.i++
				continue
			} else if c != ']' {
				return errors.New("unexpected " + strconv.QuoteRune(rune(c)))
			}
			p.i++
			break
		}
	}
	switch w.shape[depth] {
	case -1:
		w.shape[depth] = n
	case n:
	default:
		return errors.New("not rectangular: arrays at depth " + strconv.Itoa(depth+1) + " have " + strconv.FormatInt(w.shape[depth], 10) + " and " + strconv.FormatInt(n, 10) + " elements")
	}
	return nil
}

// encodePredictAnswer appends the answer of a prediction: outputs as
// nested arrays shaped like the tensors, "degraded": true when a feature
// store could not answer (its values came from the cache or the defaults),
// and with debug, the status of every feature value per row.
func encodePredictAnswer(b []byte, o *observation) []byte {
	l, outputs, asm := o.p.Loaded, o.p.outputs, o.p.asm
	b = append(b, `{"request_id":`...)
	b = appendString(b, o.requestID)
	if o.variant != "" {
		b = append(b, `,"variant":`...)
		b = appendString(b, o.variant)
	}
	b = append(b, `,"model":{"name":`...)
	b = appendString(b, l.Version.Name)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(l.Version.Version), 10)
	b = append(b, `,"uuid":`...)
	b = appendString(b, l.Version.UUID)
	b = append(b, `},"outputs":{`...)
	for i, t := range outputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t.Name)
		b = append(b, ':')
		b = appendNested(b, t.Data, t.Shape)
	}
	b = append(b, '}')
	if asm != nil && len(asm.Degraded) > 0 {
		b = append(b, `,"degraded":true`...)
	}
	if o.req.Debug && asm != nil {
		b = append(b, `,"feature_status":[`...)
		for row, statuses := range asm.Statuses {
			if row > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			for j, st := range statuses {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendString(b, asm.Refs[j])
				b = append(b, ':')
				b = appendString(b, string(st))
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendNested writes flat row-major data as arrays nested by shape.
func appendNested(b []byte, data any, shape []int64) []byte {
	if len(shape) <= 1 {
		return appendData(b, data)
	}
	switch d := data.(type) {
	case []bool:
		return nest(b, d, shape)
	case []int8:
		return nest(b, d, shape)
	case []int16:
		return nest(b, d, shape)
	case []int32:
		return nest(b, d, shape)
	case []int64:
		return nest(b, d, shape)
	case []uint8:
		return nest(b, d, shape)
	case []uint16:
		return nest(b, d, shape)
	case []uint32:
		return nest(b, d, shape)
	case []uint64:
		return nest(b, d, shape)
	case []float32:
		return nest(b, d, shape)
	case []float64:
		return nest(b, d, shape)
	case []string:
		return nest(b, d, shape)
	}
	return appendData(b, data)
}

func nest[T any](b []byte, s []T, shape []int64) []byte {
	if len(shape) <= 1 {
		return appendData(b, s)
	}
	stride := int(onnx.Elements(shape[1:]))
	b = append(b, '[')
	for i := range int(shape[0]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = nest(b, s[i*stride:(i+1)*stride], shape[1:])
	}
	return append(b, ']')
}
