package serving_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving/onnx"
)

// sameJSON reports whether two JSON documents hold the same values.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// dataJSON is a tensor's data as V2 JSON answers it, flat, written by
// encoding/json: a map is an object of its keys.
func dataJSON(t testing.TB, data any) []byte {
	t.Helper()
	if maps, ok := data.([]onnx.Map); ok {
		objects := make([]map[string]float32, len(maps))
		for i, m := range maps {
			objects[i] = make(map[string]float32, len(m.Keys))
			for j, k := range m.Keys {
				objects[i][k] = m.Values[j]
			}
		}
		data = objects
	}
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// nestedJSON is a tensor's data as the predict API answers it: nested by
// its shape.
func nestedJSON(t testing.TB, data any, shape []int64) []byte {
	t.Helper()
	var flat []any
	if err := json.Unmarshal(dataJSON(t, data), &flat); err != nil {
		t.Fatal(err)
	}
	var nest func(dims []int64) any
	nest = func(dims []int64) any {
		if len(dims) == 0 {
			v := flat[0]
			flat = flat[1:]
			return v
		}
		out := make([]any, dims[0])
		for i := range out {
			out[i] = nest(dims[1:])
		}
		return out
	}
	raw, err := json.Marshal(nest(shape))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func seq[T int64 | float32](n int, scale T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = T(i) * scale
	}
	return out
}

// TestInferMatchesDirect checks that what mlgate answers equals what ONNX
// Runtime gives when called directly, for models with one and several inputs,
// FP32, INT64 and BYTES, at several batch sizes.
func TestInferMatchesDirect(t *testing.T) {
	g := startGateway(t)
	for _, m := range []struct{ name, file string }{
		{"linear", modelzoo.Linear}, {"multi", modelzoo.MultiInput}, {"strings", modelzoo.Strings}, {"iris", modelzoo.IrisFile},
	} {
		g.register(m.name, m.file)
	}
	tests := []struct {
		name   string
		model  string
		file   string
		inputs []onnx.Tensor
	}{
		{"linear batch 1", "linear", modelzoo.Linear, []onnx.Tensor{
			{Name: "x", Type: onnx.FP32, Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}}},
		{"linear batch 7", "linear", modelzoo.Linear, []onnx.Tensor{
			{Name: "x", Type: onnx.FP32, Shape: []int64{7, 4}, Data: seq[float32](28, 0.37)}}},
		{"fp32 and int64 inputs batch 1", "multi", modelzoo.MultiInput, []onnx.Tensor{
			{Name: "a", Type: onnx.FP32, Shape: []int64{1, 3}, Data: []float32{0.5, -1.25, 3}},
			{Name: "b", Type: onnx.Int64, Shape: []int64{1, 2}, Data: []int64{7, -9}}}},
		{"fp32 and int64 inputs batch 5", "multi", modelzoo.MultiInput, []onnx.Tensor{
			{Name: "a", Type: onnx.FP32, Shape: []int64{5, 3}, Data: seq[float32](15, -1.5)},
			{Name: "b", Type: onnx.Int64, Shape: []int64{5, 2}, Data: seq[int64](10, 1<<40)}}},
		{"bytes", "strings", modelzoo.Strings, []onnx.Tensor{
			{Name: "text", Type: onnx.Bytes, Shape: []int64{4, 1}, Data: []string{"cat", "bird", "fish", "dög\n\"quoted\""}}}},
		{"zipmap", "iris", modelzoo.IrisFile, []onnx.Tensor{
			{Name: "float_input", Type: onnx.FP32, Shape: []int64{3, 4}, Data: []float32{5.1, 3.5, 1.4, 0.2, 6, 2.9, 4.5, 1.5, 6.9, 3.1, 5.4, 2.1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := direct(t, tt.file, tt.inputs...)
			var in []v2Input
			// Send the inputs in reverse order: the gateway must order them.
			for i := len(tt.inputs) - 1; i >= 0; i-- {
				x := tt.inputs[i]
				in = append(in, v2Input{Name: x.Name, Shape: x.Shape, Datatype: x.Type.String(), Data: x.Data})
			}
			got, r := g.infer("/v2/models/"+tt.model+"/infer", in...)
			if r.status != http.StatusOK {
				t.Fatalf("infer: %d %s", r.status, r.body)
			}
			if got.ModelName != tt.model || got.ModelVersion != "1" {
				t.Errorf("answered by %s version %s", got.ModelName, got.ModelVersion)
			}
			if len(got.Outputs) != len(want) {
				t.Fatalf("%d outputs, want %d", len(got.Outputs), len(want))
			}
			for i, w := range want {
				o := got.Outputs[i]
				wantData := dataJSON(t, w.Data)
				if o.Name != w.Name || o.Datatype != w.Type.String() || !reflect.DeepEqual(o.Shape, w.Shape) {
					t.Errorf("output %d = %s %s %v, want %s %s %v", i, o.Name, o.Datatype, o.Shape, w.Name, w.Type, w.Shape)
				}
				if !sameJSON(t, o.Data, wantData) {
					t.Errorf("output %s = %s, want %s", o.Name, o.Data, wantData)
				}
			}
		})
	}
}

func TestInferNestedDataAndOptions(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	body := `{"id": "req-42", "parameters": {"priority": 1},
	  "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "parameters": {"binary_data": false},
	              "data": [[0, 1, 2, 3], [4, 5, 6, 7]]}],
	  "outputs": [{"name": "y", "parameters": {}}]}`
	r := g.do(http.MethodPost, "/v2/models/linear/infer", "application/json", []byte(body))
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var got v2Response
	r.decode(t, &got)
	if got.ID != "req-42" {
		t.Errorf("id = %q, want req-42", got.ID)
	}
	if len(got.Outputs) != 1 || string(got.Outputs[0].Data) != "[1.5,7.5,11.5,17.5]" {
		t.Errorf("outputs = %+v", got.Outputs)
	}
}

func TestInferAllDatatypes(t *testing.T) {
	g := startGateway(t)
	g.register("types", modelzoo.AllTypes)
	inputs := []v2Input{
		{"b", []int64{1, 2}, "BOOL", []bool{true, false}},
		{"i8", []int64{1, 2}, "INT8", []int{-128, 127}},
		{"i16", []int64{1, 2}, "INT16", []int{-32768, 32767}},
		{"i32", []int64{1, 2}, "INT32", []int{-2147483648, 2147483647}},
		{"i64", []int64{1, 2}, "INT64", []int64{-9223372036854775808, 9223372036854775807}},
		{"u8", []int64{1, 2}, "UINT8", []int{0, 255}},
		{"u16", []int64{1, 2}, "UINT16", []int{0, 65535}},
		{"u32", []int64{1, 2}, "UINT32", []int64{0, 4294967295}},
		{"u64", []int64{1, 2}, "UINT64", []uint64{0, 18446744073709551615}},
		{"f32", []int64{1, 2}, "FP32", []float32{-1.5, 3.4028235e38}},
		{"f64", []int64{1, 2}, "FP64", []float64{-1e-300, 1.7976931348623157e308}},
		{"s", []int64{1, 2}, "BYTES", []string{"", "ünïcode"}},
	}
	got, r := g.infer("/v2/models/types/infer", inputs...)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for i, in := range inputs {
		o := got.Outputs[i]
		sent, _ := json.Marshal(in.Data)
		if o.Name != in.Name+"_out" || o.Datatype != in.Datatype || !sameJSON(t, o.Data, sent) {
			t.Errorf("output %s %s %s, want %s_out %s %s", o.Name, o.Datatype, o.Data, in.Name, in.Datatype, sent)
		}
	}
}

func TestInferErrors(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("multi", modelzoo.MultiInput)
	g.register("fixed", modelzoo.FixedShape)
	x := func(shape []int64, data any) string {
		raw, _ := json.Marshal(map[string]any{"inputs": []v2Input{{"x", shape, "FP32", data}}})
		return string(raw)
	}
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		want   string // in the error message
	}{
		{"malformed JSON", "/v2/models/linear/infer", `{"inputs": [`, 400, "malformed JSON"},
		{"not an object", "/v2/models/linear/infer", `[1, 2]`, 400, "expected an object"},
		{"unknown field", "/v2/models/linear/infer", `{"inputz": []}`, 400, `unknown field "inputz"`},
		{"no inputs", "/v2/models/linear/infer", `{"inputs": []}`, 400, "at least one input"},
		{"unknown datatype", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP33","data":[1,2,3,4]}]}`, 400, `unknown datatype "FP33"`},
		{"missing shape", "/v2/models/linear/infer", `{"inputs":[{"name":"x","datatype":"FP32","data":[1,2,3,4]}]}`, 400, "shape is required"},
		{"negative dimension", "/v2/models/linear/infer", x([]int64{-1, 4}, []float32{1, 2, 3, 4}), 400, "negative dimension"},
		{"too few elements", "/v2/models/linear/infer", x([]int64{2, 4}, []float32{1, 2, 3}), 400, "shape holds 8 elements, got 3"},
		{"too many elements", "/v2/models/linear/infer", x([]int64{1, 4}, []float32{1, 2, 3, 4, 5}), 400, "more elements than the shape holds"},
		{"not a number", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,"2",3,4]}]}`, 400, `data[1] (flattened): "\"2\"" is not a number`},
		{"data not an array", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":1}]}`, 400, "data: must be an array"},
		{"unknown input", "/v2/models/linear/infer", `{"inputs":[{"name":"z","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, 400, `input "z": model linear has no such input (it takes "x")`},
		{"wrong datatype", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}`, 400, "datatype FP64, but the model takes FP32"},
		{"wrong rank", "/v2/models/linear/infer", x([]int64{4}, []float32{1, 2, 3, 4}), 400, "1 dimensions, the model takes 2"},
		{"wrong width", "/v2/models/linear/infer", x([]int64{1, 3}, []float32{1, 2, 3}), 400, "dimension 1 must be 4"},
		{"fixed batch", "/v2/models/fixed/infer", x([]int64{3, 3}, seq[float32](9, 1)), 400, "dimension 0 must be 2"},
		{"zero batch", "/v2/models/linear/infer", x([]int64{0, 4}, []float32{}), 400, "every dimension must be at least 1"},
		{"missing input", "/v2/models/multi/infer", `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, 400, `input "b" is missing`},
		{"input twice", "/v2/models/multi/infer", `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, 400, "given twice"},
		{"fraction for INT64", "/v2/models/multi/infer", `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"b","shape":[1,2],"datatype":"INT64","data":[1,2.5]}]}`, 400, "is not a whole number"},
		{"INT64 overflow", "/v2/models/multi/infer", `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"b","shape":[1,2],"datatype":"INT64","data":[1,9223372036854775808]}]}`, 400, "out of range for INT64"},
		{"unknown output", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"q"}]}`, 400, `output "q": the model has no such output`},
		{"unknown model", "/v2/models/nope/infer", x([]int64{1, 4}, []float32{1, 2, 3, 4}), 404, `model "nope" not found`},
		{"unknown version", "/v2/models/linear/versions/9/infer", x([]int64{1, 4}, []float32{1, 2, 3, 4}), 404, `model "linear" has no version 9`},
		{"unknown alias", "/v2/models/linear/versions/staging/infer", x([]int64{1, 4}, []float32{1, 2, 3, 4}), 404, `model "linear" has no alias "staging"`},
		{"bad version", "/v2/models/linear/versions/1x/infer", x([]int64{1, 4}, []float32{1, 2, 3, 4}), 400, "neither a version number nor an alias"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.do(http.MethodPost, tt.path, "application/json", []byte(tt.body))
			if r.status != tt.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tt.status)
			}
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
		})
	}
}

func TestVersionResolution(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("linear", modelzoo.LinearV2)
	in := v2Input{"x", []int64{1, 4}, "FP32", []float32{0, 1, 2, 3}}
	v1, v2 := "[1.5,7.5]", "[18.5,21]"
	check := func(path, wantVersion, wantData string) {
		t.Helper()
		got, r := g.infer(path, in)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		if got.ModelVersion != wantVersion || string(got.Outputs[0].Data) != wantData {
			t.Errorf("%s: version %s %s, want %s %s", path, got.ModelVersion, got.Outputs[0].Data, wantVersion, wantData)
		}
	}
	check("/v2/models/linear/infer", "2", v2) // no champion: the newest
	g.setAlias("linear", "champion", 1)
	check("/v2/models/linear/infer", "1", v1)
	check("/v2/models/linear/versions/2/infer", "2", v2)
	check("/v2/models/linear/versions/champion/infer", "1", v1)
	g.setAlias("linear", "challenger", 2)
	check("/v2/models/linear/versions/challenger/infer", "2", v2)

	r := g.do(http.MethodGet, "/v2/models/linear", "", nil)
	var meta struct {
		Platform string   `json:"platform"`
		Versions []string `json:"versions"`
		Inputs   []struct {
			Datatype string  `json:"datatype"`
			Shape    []int64 `json:"shape"`
		} `json:"inputs"`
	}
	r.decode(t, &meta)
	if meta.Platform != "onnx_onnxv1" || !reflect.DeepEqual(meta.Versions, []string{"1", "2"}) ||
		len(meta.Inputs) != 1 || meta.Inputs[0].Datatype != "FP32" || !reflect.DeepEqual(meta.Inputs[0].Shape, []int64{-1, 4}) {
		t.Errorf("metadata = %+v", meta)
	}
	for path, want := range map[string]int{
		"/v2/health/live":                      200,
		"/v2/health/ready":                     200,
		"/v2":                                  200,
		"/v2/models/linear/ready":              200,
		"/v2/models/linear/versions/2/ready":   200,
		"/v2/models/linear/versions/7/ready":   404,
		"/v2/models/nope/ready":                404,
		"/v2/models/linear/versions/challenge": 404,
	} {
		if r := g.do(http.MethodGet, path, "", nil); r.status != want {
			t.Errorf("GET %s: %d %s, want %d", path, r.status, r.body, want)
		}
	}
}
