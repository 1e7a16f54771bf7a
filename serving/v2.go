package serving

import (
	"strconv"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/serving/grpcv2"
	"github.com/mlgate/mlgate/serving/onnx"
)

// platform is what V2 model metadata reports for every model mlgate serves.
const platform = "onnx_onnxv1"

func (s *Server) live(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"live": true})
}

// ready answers 503 until the catalog has loaded and while draining, and
// 200 otherwise. A gateway whose inference table cannot make rows durable
// (an I/O error, see tables.Writer.Healthy) still answers 200, so that the
// load balancer keeps routing predictions to it, but says so:
// {"ready": true, "degraded": ["inference tables: <error>"]}, as the
// metric mlgate_inference_table_errors_total does.
func (s *Server) ready(c *fiber.Ctx) error {
	if !s.catalog.Ready() || s.draining.Load() {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"ready": false})
	}
	if s.tables != nil {
		if err := s.tables.Healthy(); err != nil {
			return c.JSON(fiber.Map{"ready": true, "degraded": []string{s.hidePaths("inference tables: " + err.Error())}})
		}
	}
	return c.JSON(fiber.Map{"ready": true})
}

func (s *Server) serverMetadata(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"name": grpcv2.ServerName, "version": s.opts.Version, "extensions": grpcv2.Extensions})
}

// acquire resolves a model and a version reference (a number, an alias, or
// empty) to a loaded session, or explains why not. The caller releases it.
func (s *Server) acquire(model, version string) (*Loaded, error) {
	if !s.catalog.Ready() {
		return nil, notReady("the server is still loading models")
	}
	return s.catalog.Acquire(model, version)
}

type tensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

type modelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions"`
	Platform string           `json:"platform"`
	Inputs   []tensorMetadata `json:"inputs"`
	Outputs  []tensorMetadata `json:"outputs"`
}

func (s *Server) modelMetadata(c *fiber.Ctx) error {
	md, err := s.metadataOfModel(c.Params("model"), c.Params("version"))
	if err != nil {
		return err
	}
	return c.JSON(md)
}

// metadataOfModel is the V2 metadata of model at version (a number, an
// alias or "").
func (s *Server) metadataOfModel(model, version string) (modelMetadata, error) {
	l, err := s.acquire(model, version)
	if err != nil {
		return modelMetadata{}, err
	}
	defer l.Release()
	numbers, err := s.catalog.Versions(l.Version.Name)
	if err != nil {
		return modelMetadata{}, err
	}
	versions := make([]string, len(numbers))
	for i, n := range numbers {
		versions[i] = strconv.Itoa(n)
	}
	return modelMetadata{
		Name:     l.Version.Name,
		Versions: versions,
		Platform: platform,
		Inputs:   metadataOf(l.Inputs()),
		Outputs:  metadataOf(l.Outputs()),
	}, nil
}

func metadataOf(ios []onnx.IO) []tensorMetadata {
	out := make([]tensorMetadata, len(ios))
	for i, io := range ios {
		out[i] = tensorMetadata{Name: io.Name, Datatype: io.Type.String(), Shape: io.Shape}
	}
	return out
}

func (s *Server) modelReady(c *fiber.Ctx) error {
	l, err := s.acquire(c.Params("model"), c.Params("version"))
	if err != nil {
		return err
	}
	defer l.Release()
	return c.JSON(fiber.Map{"name": l.Version.Name, "version": strconv.Itoa(l.Version.Version), "ready": true})
}

// responseBuffers recycles the buffers inference responses are encoded into.
var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// infer serves V2 inference on a model, or on the endpoint of that name
// when there is one and no version is asked for: the variant comes from
// X-Mlgate-Variant, else X-Mlgate-Unit, else a draw by weight. A request
// may carry its tensors in binary after its JSON, and ask for its outputs
// so (see v2binary.go); such an answer is application/octet-stream, with
// the length of its JSON in Inference-Header-Content-Length.
func (s *Server) infer(c *fiber.Ctx) error {
	header, err := inferHeaderLength(c.Get(HeaderInferenceHeaderLength), len(c.Body()))
	if err != nil {
		return err
	}
	req, err := decodeInferBody(c.Body(), header, s.limits)
	if err != nil {
		return err
	}
	if err := sameModel(req, c.Params("model"), c.Params("version")); err != nil {
		return err
	}
	o := observationOf(c)
	o.requestID, o.model, o.version, o.v2, o.body, o.encode = req.ID, c.Params("model"), c.Params("version"), req, c.Body(), encodeInferAnswer
	if s.tables != nil {
		// The inference table keeps requests and answers as JSON, which
		// every reader can read: tensors sent or answered in binary are
		// written there as JSON data.
		if header >= 0 && header < len(c.Body()) {
			o.body = encodeInferRecord(req)
		}
		if req.wantsBinary() {
			o.record = encodeInferAnswerJSON
		}
	}
	if s.router != nil && o.version == "" {
		if r, ok := s.router.Route(o.model); ok {
			if o.unit, err = unitHeader(c); err != nil {
				return err
			}
			o.route, o.pin = r, c.Get(HeaderVariant)
		}
	}
	if err := s.serve(c, o); err != nil || !req.wantsBinary() {
		return err
	}
	answer := c.Response().Body()
	if n := jsonLength(answer); n < len(answer) {
		c.Set(fiber.HeaderContentType, fiber.MIMEOctetStream)
		c.Set(HeaderInferenceHeaderLength, strconv.Itoa(n))
	}
	return nil
}

// encodeInferRecord is a request as the inference table keeps it: its id
// and its inputs, their data in JSON.
func encodeInferRecord(req *inferRequest) []byte {
	b := append(make([]byte, 0, jsonSizeHint(req.Inputs)), '{')
	if req.ID != "" {
		b = append(b, `"id":`...)
		b = appendString(b, req.ID)
		b = append(b, ',')
	}
	b = append(b, `"inputs":`...)
	b = appendTensors(b, req.Inputs)
	return append(b, '}')
}

// jsonSizeHint is about the size of ts in JSON, room enough that encoding
// them seldom grows the buffer: a number takes up to 24 bytes.
func jsonSizeHint(ts []onnx.Tensor) int {
	n := 128
	for _, t := range ts {
		n += 96 + 24*int(max(onnx.Elements(t.Shape), 0))
	}
	return n
}

// sameModel checks that the model_name and model_version a request's body
// gives, when it gives them, are those of its URL.
func sameModel(req *inferRequest, model, version string) error {
	if req.ModelName != "" && req.ModelName != model {
		return invalidInput("model_name: the body names model %q, the URL %q", truncate(req.ModelName, maxAskedName), model)
	}
	switch {
	case req.ModelVersion == "" || req.ModelVersion == version:
		return nil
	case version == "":
		return invalidInput("model_version: the body names version %q, but the URL names none; post to /v2/models/%s/versions/%s/infer", truncate(req.ModelVersion, maxAskedName), model, truncate(req.ModelVersion, maxAskedName))
	}
	return invalidInput("model_version: the body names version %q, the URL %q", truncate(req.ModelVersion, maxAskedName), version)
}

// encodeInferAnswer appends the V2 answer of a served observation, its
// outputs in binary where the request asks for them so.
func encodeInferAnswer(b []byte, o *observation) []byte {
	var binary *inferRequest
	if o.v2.wantsBinary() {
		binary = o.v2
	}
	return appendInferAnswer(b, o, binary)
}

// encodeInferAnswerJSON is encodeInferAnswer with every output in JSON, as
// the inference table keeps it.
func encodeInferAnswerJSON(b []byte, o *observation) []byte { return appendInferAnswer(b, o, nil) }

// appendInferAnswer appends the V2 answer of o, the outputs binary asks
// for (none when nil) in binary.
func appendInferAnswer(b []byte, o *observation, binary *inferRequest) []byte {
	var via *routed
	if o.route != nil {
		via = &routed{endpoint: o.route.Endpoint(), variant: o.variant}
	}
	return encodeInferResponse(b, &inferResponse{
		Model:   o.p.Version.Name,
		Version: o.p.Version.Version,
		ID:      o.v2.ID,
		Outputs: o.p.outputs,
		Routed:  via,
		Binary:  binary,
	})
}

// bindInputs orders the request's inputs as the model takes them, in buf
// when it has room, and checks
// each one's name, datatype and shape against the model's signature.
func bindInputs(req *inferRequest, l *Loaded, buf []onnx.Tensor) ([]onnx.Tensor, error) {
	ios := l.Inputs()
	out := buf[:0]
	if cap(buf) < len(ios) {
		out = make([]onnx.Tensor, 0, len(ios))
	}
	out = out[:len(ios)]
	clear(out)
	for _, t := range req.Inputs {
		i, ok := l.inputIndex[t.Name]
		if !ok {
			return nil, invalidInput("input %q: model %s has no such input (it takes %s)", t.Name, l.Version.Name, ioNames(ios))
		}
		io := ios[i]
		if t.Type != io.Type {
			return nil, invalidInput("input %q: datatype %s, but the model takes %s", t.Name, t.Type, io.Type)
		}
		if err := fitShape(t.Shape, io.Shape); err != nil {
			return nil, invalidInput("input %q: shape %s does not fit the model's %s: %v", t.Name, shapeString(t.Shape), shapeString(io.Shape), err)
		}
		out[i] = t
	}
	for i, io := range ios {
		if out[i].Data == nil {
			return nil, invalidInput("input %q is missing (model %s takes %s)", io.Name, l.Version.Name, ioNames(ios))
		}
	}
	return out, nil
}

func fitShape(got, want []int64) error {
	if len(got) != len(want) {
		return invalidInput("%d dimensions, the model takes %d", len(got), len(want))
	}
	for i, d := range got {
		if d < 1 {
			return invalidInput("dimension %d is %d; every dimension must be at least 1", i, d)
		}
		if want[i] >= 0 && d != want[i] {
			return invalidInput("dimension %d must be %d", i, want[i])
		}
	}
	return nil
}

// selectOutputs returns the positions of the requested outputs, or nil for
// all of them.
func selectOutputs(names []string, ios []onnx.IO) ([]int, error) {
	if len(names) == 0 {
		return nil, nil
	}
	idx := make([]int, len(names))
	for i, name := range names {
		idx[i] = -1
		for j, io := range ios {
			if io.Name == name {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			return nil, invalidInput("output %q: the model has no such output (it gives %s)", name, ioNames(ios))
		}
	}
	return idx, nil
}

func pick(ts []onnx.Tensor, idx []int) []onnx.Tensor {
	out := make([]onnx.Tensor, len(idx))
	for i, j := range idx {
		out[i] = ts[j]
	}
	return out
}

func ioNames(ios []onnx.IO) string {
	names := make([]string, len(ios))
	for i, io := range ios {
		names[i] = strconv.Quote(io.Name)
	}
	return strings.Join(names, ", ")
}

func shapeString(shape []int64) string {
	b := []byte{'['}
	for i, d := range shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	return string(append(b, ']'))
}
