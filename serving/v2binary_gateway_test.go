package serving_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving/grpcv2"
	"github.com/mlgate/mlgate/serving/onnx"
)

// binaryTensor is the binary form of a tensor's data, as the binary tensor
// data extension lays it out.
func binaryTensor(t testing.TB, data any) []byte {
	t.Helper()
	var b bytes.Buffer
	if ss, ok := data.([]string); ok {
		for _, s := range ss {
			binary.Write(&b, binary.LittleEndian, uint32(len(s)))
			b.WriteString(s)
		}
		return b.Bytes()
	}
	if err := binary.Write(&b, binary.LittleEndian, data); err != nil {
		t.Fatalf("binary form of %T: %v", data, err)
	}
	return b.Bytes()
}

// fromBinary reads a tensor's data of the V2 datatype from its binary form.
func fromBinary(t testing.TB, datatype string, b []byte) any {
	t.Helper()
	if datatype == "BYTES" {
		var out []string
		for len(b) > 0 {
			n := binary.LittleEndian.Uint32(b)
			out = append(out, string(b[4:4+n]))
			b = b[4+n:]
		}
		return out
	}
	var data any
	switch datatype {
	case "BOOL":
		data = make([]bool, len(b))
	case "INT8":
		data = make([]int8, len(b))
	case "UINT8":
		data = make([]uint8, len(b))
	case "INT16":
		data = make([]int16, len(b)/2)
	case "UINT16":
		data = make([]uint16, len(b)/2)
	case "INT32":
		data = make([]int32, len(b)/4)
	case "UINT32":
		data = make([]uint32, len(b)/4)
	case "FP32":
		data = make([]float32, len(b)/4)
	case "INT64":
		data = make([]int64, len(b)/8)
	case "UINT64":
		data = make([]uint64, len(b)/8)
	case "FP64":
		data = make([]float64, len(b)/8)
	default:
		t.Fatalf("no binary form for %s", datatype)
	}
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, data); err != nil {
		t.Fatal(err)
	}
	return data
}

// binaryAnswer is an answer to a V2 request, its binary outputs read.
type binaryAnswer struct {
	status      int
	contentType string
	header      string // Inference-Header-Content-Length
	json        []byte // the JSON, without the binary data
	outputs     []binaryOutput
}

type binaryOutput struct {
	Name       string          `json:"name"`
	Datatype   string          `json:"datatype"`
	Shape      []int64         `json:"shape"`
	Data       json.RawMessage `json:"data"`
	Parameters struct {
		BinaryDataSize *int `json:"binary_data_size"`
	} `json:"parameters"`
	binary any // the data read from the binary part, when it was there
}

// postBinary posts a V2 request whose JSON is js and whose binary part is
// bin, with header as its Inference-Header-Content-Length ("" for none)
// and the other headers given, and reads the answer as tritonclient does.
func (g *gateway) postBinary(path, js string, bin []byte, header string, headers ...string) binaryAnswer {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+path, bytes.NewReader(append([]byte(js), bin...)))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if header != "" {
		req.Header.Set("Inference-Header-Content-Length", header)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	a := binaryAnswer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), header: resp.Header.Get("Inference-Header-Content-Length"), json: body}
	rest := []byte(nil)
	if a.header != "" {
		n, err := strconv.Atoi(a.header)
		if err != nil || n > len(body) {
			g.t.Fatalf("Inference-Header-Content-Length %q of a %d-byte answer", a.header, len(body))
		}
		a.json, rest = body[:n], body[n:]
	}
	if a.status != http.StatusOK {
		return a
	}
	var v struct {
		Outputs []binaryOutput `json:"outputs"`
	}
	if err := json.Unmarshal(a.json, &v); err != nil {
		g.t.Fatalf("answer's JSON %q: %v", a.json, err)
	}
	for i, o := range v.Outputs {
		if o.Parameters.BinaryDataSize == nil {
			continue
		}
		n := *o.Parameters.BinaryDataSize
		if n > len(rest) {
			g.t.Fatalf("output %s: binary_data_size %d beyond the %d bytes left", o.Name, n, len(rest))
		}
		v.Outputs[i].binary = fromBinary(g.t, o.Datatype, rest[:n])
		rest = rest[n:]
	}
	if len(rest) > 0 {
		g.t.Fatalf("%d bytes left over after the binary outputs", len(rest))
	}
	a.outputs = v.Outputs
	return a
}

// binaryIn is an input of a test request, and whether it goes in binary.
type binaryIn struct {
	onnx.Tensor
	binary bool
}

// binaryRequest writes a V2 request: its JSON (with extra, a JSON object's
// members, at the top), and its binary part.
func binaryRequest(t testing.TB, inputs []binaryIn, extra string) (string, []byte) {
	t.Helper()
	var ins []map[string]any
	var bin []byte
	for _, in := range inputs {
		m := map[string]any{"name": in.Name, "shape": in.Shape, "datatype": in.Type.String()}
		if in.binary {
			b := binaryTensor(t, in.Data)
			m["parameters"] = map[string]any{"binary_data_size": len(b)}
			bin = append(bin, b...)
		} else {
			m["data"] = in.Data
		}
		ins = append(ins, m)
	}
	raw, err := json.Marshal(ins)
	if err != nil {
		t.Fatal(err)
	}
	return `{` + extra + `"inputs":` + string(raw) + `}`, bin
}

// TestInferBinary checks binary tensor data through the gateway, in and
// out, against ONNX Runtime called directly: FP32, INT64, BOOL, BYTES and
// the other types, mixed with JSON, and a map output, which stays in JSON.
func TestInferBinary(t *testing.T) {
	g := startGateway(t)
	for _, m := range []struct{ name, file string }{
		{"linear", modelzoo.Linear}, {"multi", modelzoo.MultiInput}, {"strings", modelzoo.Strings}, {"types", modelzoo.AllTypes}, {"iris", modelzoo.IrisFile},
	} {
		g.register(m.name, m.file)
	}
	all := `"parameters":{"binary_data_output":true},`
	types := []binaryIn{
		{onnx.Tensor{Name: "b", Type: onnx.Bool, Shape: []int64{1, 2}, Data: []bool{true, false}}, true},
		{onnx.Tensor{Name: "i8", Type: onnx.Int8, Shape: []int64{1, 2}, Data: []int8{-128, 127}}, true},
		{onnx.Tensor{Name: "i16", Type: onnx.Int16, Shape: []int64{1, 2}, Data: []int16{-32768, 32767}}, false},
		{onnx.Tensor{Name: "i32", Type: onnx.Int32, Shape: []int64{1, 2}, Data: []int32{-2147483648, 2147483647}}, true},
		{onnx.Tensor{Name: "i64", Type: onnx.Int64, Shape: []int64{1, 2}, Data: []int64{-9223372036854775808, 9223372036854775807}}, true},
		{onnx.Tensor{Name: "u8", Type: onnx.Uint8, Shape: []int64{1, 2}, Data: []uint8{0, 255}}, true},
		{onnx.Tensor{Name: "u16", Type: onnx.Uint16, Shape: []int64{1, 2}, Data: []uint16{0, 65535}}, true},
		{onnx.Tensor{Name: "u32", Type: onnx.Uint32, Shape: []int64{1, 2}, Data: []uint32{0, 4294967295}}, false},
		{onnx.Tensor{Name: "u64", Type: onnx.Uint64, Shape: []int64{1, 2}, Data: []uint64{0, 18446744073709551615}}, true},
		{onnx.Tensor{Name: "f32", Type: onnx.FP32, Shape: []int64{1, 2}, Data: []float32{-1.5, 3.4028235e38}}, true},
		{onnx.Tensor{Name: "f64", Type: onnx.FP64, Shape: []int64{1, 2}, Data: []float64{-1e-300, 1.7976931348623157e308}}, true},
		{onnx.Tensor{Name: "s", Type: onnx.Bytes, Shape: []int64{1, 2}, Data: []string{"", "ünï\x00code"}}, true},
	}
	tests := []struct {
		name   string
		model  string
		file   string
		inputs []binaryIn
		extra  string
		binary []bool // by output, whether it is answered in binary
	}{
		{"fp32 in and out", "linear", modelzoo.Linear, []binaryIn{
			{onnx.Tensor{Name: "x", Type: onnx.FP32, Shape: []int64{3, 4}, Data: []float32{1, 2, 3, 4, -5, 6.5, 7, 8, 0, 0, 0, 1e-3}}, true}}, all, []bool{true}},
		{"fp32 in, json out", "linear", modelzoo.Linear, []binaryIn{
			{onnx.Tensor{Name: "x", Type: onnx.FP32, Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}, true}}, "", []bool{false}},
		{"json in, binary out asked by name", "linear", modelzoo.Linear, []binaryIn{
			{onnx.Tensor{Name: "x", Type: onnx.FP32, Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}, false}},
			`"outputs":[{"name":"y","parameters":{"binary_data":true}}],`, []bool{true}},
		{"int64 in binary beside fp32 in json, one output of two in binary", "multi", modelzoo.MultiInput, []binaryIn{
			{onnx.Tensor{Name: "a", Type: onnx.FP32, Shape: []int64{2, 3}, Data: []float32{0.5, -1.25, 3, 1, 2, 3}}, false},
			{onnx.Tensor{Name: "b", Type: onnx.Int64, Shape: []int64{2, 2}, Data: []int64{7, -9, 1 << 40, 0}}, true}},
			`"outputs":[{"name":"sum"},{"name":"b_doubled","parameters":{"binary_data":true}}],`, []bool{false, true}},
		{"bytes in, int64 and bytes out", "strings", modelzoo.Strings, []binaryIn{
			{onnx.Tensor{Name: "text", Type: onnx.Bytes, Shape: []int64{4, 1}, Data: []string{"cat", "bird", "fish", "dög\n\"quoted\""}}, true}}, all, []bool{true, true}},
		{"every type, bool and bytes out", "types", modelzoo.AllTypes, types, all, []bool{true, true, true, true, true, true, true, true, true, true, true, true}},
		{"zipmap stays json", "iris", modelzoo.IrisFile, []binaryIn{
			{onnx.Tensor{Name: "float_input", Type: onnx.FP32, Shape: []int64{2, 4}, Data: []float32{5.1, 3.5, 1.4, 0.2, 6.9, 3.1, 5.4, 2.1}}, true}}, all, []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inputs := make([]onnx.Tensor, len(tt.inputs))
			for i, in := range tt.inputs {
				inputs[i] = in.Tensor
			}
			want := direct(t, tt.file, inputs...)
			js, bin := binaryRequest(t, tt.inputs, tt.extra)
			header := ""
			if len(bin) > 0 {
				header = strconv.Itoa(len(js))
			}
			a := g.postBinary("/v2/models/"+tt.model+"/infer", js, bin, header)
			if a.status != http.StatusOK {
				t.Fatalf("%d %s", a.status, a.json)
			}
			anyBinary := false
			for _, b := range tt.binary {
				anyBinary = anyBinary || b
			}
			if wantType := map[bool]string{true: "application/octet-stream", false: "application/json"}[anyBinary]; a.contentType != wantType || (a.header != "") != anyBinary {
				t.Errorf("Content-Type %q, Inference-Header-Content-Length %q; want %s", a.contentType, a.header, wantType)
			}
			if len(a.outputs) != len(want) || len(tt.binary) != len(want) {
				t.Fatalf("%d outputs (%d in the test), want %d: %s", len(a.outputs), len(tt.binary), len(want), a.json)
			}
			for i, w := range want {
				o := a.outputs[i]
				if o.Name != w.Name || o.Datatype != w.Type.String() || !reflect.DeepEqual(o.Shape, w.Shape) {
					t.Errorf("output %d = %s %s %v, want %s %s %v", i, o.Name, o.Datatype, o.Shape, w.Name, w.Type, w.Shape)
				}
				switch {
				case tt.binary[i] != (o.binary != nil):
					t.Errorf("output %s: in binary %t, want %t", o.Name, o.binary != nil, tt.binary[i])
				case o.binary != nil && o.Data != nil:
					t.Errorf("output %s: data %s beside its binary data", o.Name, o.Data)
				case o.binary != nil && !reflect.DeepEqual(o.binary, w.Data):
					t.Errorf("output %s = %v, want %v", o.Name, o.binary, w.Data)
				case o.binary == nil && !sameJSON(t, o.Data, dataJSON(t, w.Data)):
					t.Errorf("output %s = %s, want %s", o.Name, o.Data, dataJSON(t, w.Data))
				}
			}
		})
	}
}

func TestInferBinaryErrors(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("strings", modelzoo.Strings)
	x := func(size int) string {
		return `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":` + strconv.Itoa(size) + `}}]}`
	}
	x16 := binaryTensor(t, []float32{1, 2, 3, 4})
	text := `{"inputs":[{"name":"text","shape":[2,1],"datatype":"BYTES","parameters":{"binary_data_size":11}}]}`
	tests := []struct {
		name   string
		path   string
		js     string
		bin    []byte
		header string // "len": the JSON's length
		want   string
	}{
		{"size under the shape", "/v2/models/linear/infer", x(12), x16[:12], "len", `input "x": parameters.binary_data_size is 12 bytes, but shape [1,4] of FP32 takes 16`},
		{"size beyond the body", "/v2/models/linear/infer", x(16), x16[:8], "len", `input "x": parameters.binary_data_size is 16 bytes, but only 8 bytes of binary data are left for it`},
		{"huge size", "/v2/models/linear/infer", x(1 << 62), x16, "len", `input "x": parameters.binary_data_size is 4611686018427387904 bytes, but only 16`},
		{"negative size", "/v2/models/linear/infer", x(-16), x16, "len", `input "x": parameters.binary_data_size: "-16" is not a byte count`},
		{"leftover bytes", "/v2/models/linear/infer", x(16), append(x16, 1, 2, 3), "len", "binary data: 3 bytes are left over after the 16 bytes"},
		{"header beyond the body", "/v2/models/linear/infer", x(16), x16, "100000", "Inference-Header-Content-Length: 100000 bytes is beyond the end of the"},
		{"header not a number", "/v2/models/linear/infer", x(16), x16, "ten", `Inference-Header-Content-Length: "ten" is not a byte count`},
		{"header cuts the JSON", "/v2/models/linear/infer", x(16), x16, "20", "request body: malformed JSON"},
		{"no header", "/v2/models/linear/infer", x(16), nil, "", `input "x": parameters.binary_data_size is given, but the request has no Inference-Header-Content-Length header`},
		{"bytes length beyond the data", "/v2/models/strings/infer", text, append(binaryTensor(t, []string{"a"}), 200, 0, 0, 0, 'b', 'c'), "len", `input "text": element 1 (flattened): its length 200 is beyond the 2 bytes left`},
		{"fp16", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP16","parameters":{"binary_data_size":8}}]}`, make([]byte, 8), "len", `input "x": datatype FP16 is not supported`},
		{"wrong datatype for the model", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","parameters":{"binary_data_size":16}}]}`, x16, "len", `input "x": datatype FP64, but the model takes FP32`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := tt.header
			if header == "len" {
				header = strconv.Itoa(len(tt.js))
			}
			a := g.postBinary(tt.path, tt.js, tt.bin, header)
			if a.status != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", a.status, a.json)
			}
			r := response{status: a.status, body: a.json}
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
		})
	}
}

// TestInferClientFields checks the fields stock clients put in a request:
// model_name and model_version, which must agree with the URL, and
// parameters on the request, its inputs and its outputs.
func TestInferClientFields(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	in := `"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[0,1,2,3],"parameters":{"content_type":"np"}}]`
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		want   string // in the answer
	}{
		{"model_name and model_version", "/v2/models/linear/versions/1/infer", `{"model_name":"linear","model_version":"1",` + in + `}`, 200, `"model_name":"linear"`},
		{"model_name alone", "/v2/models/linear/infer", `{"model_name":"linear",` + in + `}`, 200, `"model_version":"1"`},
		{"nulls", "/v2/models/linear/infer", `{"model_name":null,"model_version":null,"parameters":null,` + in + `}`, 200, `"outputs"`},
		{"parameters everywhere", "/v2/models/linear/infer", `{"parameters":{"content_type":"pd","headers":{"a":[1]}},` + in + `,"outputs":[{"name":"y","parameters":{"binary_data":false,"classification":0}}]}`, 200, `"data":[1.5,7.5]`},
		{"another model_name", "/v2/models/linear/infer", `{"model_name":"iris",` + in + `}`, 400, `model_name: the body names model \"iris\", the URL \"linear\"`},
		{"another model_version", "/v2/models/linear/versions/1/infer", `{"model_version":"2",` + in + `}`, 400, `model_version: the body names version \"2\", the URL \"1\"`},
		{"model_version without one in the URL", "/v2/models/linear/infer", `{"model_version":"1",` + in + `}`, 400, `post to /v2/models/linear/versions/1/infer`},
		{"model_version a number", "/v2/models/linear/infer", `{"model_version":1,` + in + `}`, 400, `field \"model_version\"`},
		{"parameters an array", "/v2/models/linear/infer", `{"parameters":[],` + in + `}`, 400, `parameters: must be an object`},
		{"input parameters a string", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[0,1,2,3],"parameters":"np"}]}`, 400, `input \"x\": parameters: must be an object`},
		{"output parameters a number", "/v2/models/linear/infer", `{` + in + `,"outputs":[{"name":"y","parameters":1}]}`, 400, `output \"y\": parameters: must be an object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.do(http.MethodPost, tt.path, "application/json", []byte(tt.body))
			if r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
				t.Errorf("%d %s; want %d with %s", r.status, r.body, tt.status, tt.want)
			}
		})
	}
	var meta struct {
		Extensions []string `json:"extensions"`
	}
	g.do(http.MethodGet, "/v2", "", nil).decode(t, &meta)
	if !reflect.DeepEqual(meta.Extensions, grpcv2.Extensions) {
		t.Errorf("extensions = %v, want %v", meta.Extensions, grpcv2.Extensions)
	}
}

// TestInferBinaryEndpoint sends binary tensors to an endpoint, whose
// variant the caller picks and whose shadow gets a copy: the answer is the
// variant's, in binary, and names the endpoint and variant.
func TestInferBinaryEndpoint(t *testing.T) {
	g := splitGateway(t)
	g.must("PUT", "/v1/endpoints/churn", `{"variants": [
		{"name": "control", "model": "linear@champion", "weight": 90},
		{"name": "treatment", "model": "linear@challenger", "weight": 10}],
		"shadow": {"model": "linear@champion", "percent": 100}}`, 200)
	x := onnx.Tensor{Name: "x", Type: onnx.FP32, Shape: []int64{2, 4}, Data: []float32{0, 1, 2, 3, 4, 5, 6, 7}}
	js, bin := binaryRequest(t, []binaryIn{{x, true}}, `"parameters":{"binary_data_output":true},`)
	for _, variant := range []string{"control", "treatment"} {
		file := map[string]string{"control": modelzoo.Linear, "treatment": modelzoo.LinearV2}[variant]
		want := direct(t, file, x)
		a := g.postBinary("/v2/models/churn/infer", js, bin, strconv.Itoa(len(js)), "X-Mlgate-Variant", variant)
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", variant, a.status, a.json)
		}
		var params struct {
			Parameters struct{ Endpoint, Variant string } `json:"parameters"`
		}
		if err := json.Unmarshal(a.json, &params); err != nil || params.Parameters.Endpoint != "churn" || params.Parameters.Variant != variant {
			t.Errorf("%s: answer %s, %v", variant, a.json, err)
		}
		if len(a.outputs) != 1 || !reflect.DeepEqual(a.outputs[0].binary, want[0].Data) {
			t.Errorf("%s: outputs %+v, want %v", variant, a.outputs, want[0].Data)
		}
	}
}

// TestInferBinaryRecordedAsJSON: a request whose tensors came, and whose
// answer went, in binary is kept in the inference table as JSON, data and
// all, which any reader can decode; the raw bytes would not be valid text.
func TestInferBinaryRecordedAsJSON(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	in := onnx.Tensor{Name: "x", Type: onnx.FP32, Shape: []int64{2, 4}, Data: []float32{1, 2, 3, 4, 5, 6, 7, 8}}
	js, bin := binaryRequest(t, []binaryIn{{Tensor: in, binary: true}}, `"id": "bin-1", "parameters": {"binary_data_output": true},`)
	if a := g.postBinary("/v2/models/linear/infer", js, bin, strconv.Itoa(len(js))); a.status != 200 || a.header == "" {
		t.Fatalf("binary infer: %d %q %s", a.status, a.header, a.json)
	}
	rows := g.tableRows()
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rows))
	}
	var req struct {
		ID     string `json:"id"`
		Inputs []struct {
			Name string    `json:"name"`
			Data []float32 `json:"data"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal([]byte(rows[0].Request), &req); err != nil || req.ID != "bin-1" || len(req.Inputs) != 1 || len(req.Inputs[0].Data) != 8 || req.Inputs[0].Data[7] != 8 {
		t.Errorf("recorded request %q (%v): want the JSON of the request, its data included", rows[0].Request, err)
	}
	var answer struct {
		Outputs []struct {
			Data []float32 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(rows[0].Response), &answer); err != nil || len(answer.Outputs) == 0 || len(answer.Outputs[0].Data) == 0 {
		t.Errorf("recorded answer %q (%v): want the JSON of the answer, its data included", rows[0].Response, err)
	}
}
