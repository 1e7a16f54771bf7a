package serving

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/serving/onnx"
)

// binaryBody is a V2 request with binary tensor data: its JSON, then the
// parts, and the JSON's length for Inference-Header-Content-Length.
func binaryBody(js string, parts ...[]byte) ([]byte, int) {
	body := []byte(js)
	for _, p := range parts {
		body = append(body, p...)
	}
	return body, len(js)
}

// le is the binary form of values: numbers little-endian, bools as a byte,
// strings with their 4-byte length.
func le(values ...any) []byte {
	var b []byte
	for _, v := range values {
		switch v := v.(type) {
		case string:
			b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		case bool:
			if v {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		default:
			b, _ = binary.Append(b, binary.LittleEndian, v)
		}
	}
	return b
}

func TestDecodeInferBody(t *testing.T) {
	type (
		part []byte
		in   = onnx.Tensor
	)
	tests := []struct {
		name  string
		js    string
		parts []part
		want  []onnx.Tensor
	}{
		{"fp32", `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}]}`,
			[]part{le(float32(1), float32(-2.5), float32(math.MaxFloat32), float32(0))},
			[]in{{Name: "x", Type: onnx.FP32, Shape: []int64{1, 4}, Data: []float32{1, -2.5, math.MaxFloat32, 0}}}},
		{"int64 and bool", `{"inputs":[{"name":"i","shape":[2],"datatype":"INT64","parameters":{"binary_data_size":16}},
			{"name":"b","shape":[3],"datatype":"BOOL","parameters":{"binary_data_size":3}}]}`,
			[]part{le(int64(math.MinInt64), int64(7)), le(true, false, true)},
			[]in{{Name: "i", Type: onnx.Int64, Shape: []int64{2}, Data: []int64{math.MinInt64, 7}},
				{Name: "b", Type: onnx.Bool, Shape: []int64{3}, Data: []bool{true, false, true}}}},
		{"bytes", `{"inputs":[{"name":"s","shape":[3,1],"datatype":"BYTES","parameters":{"binary_data_size":20}}]}`,
			[]part{le("cat", "", "d\x00g\xff\n")},
			[]in{{Name: "s", Type: onnx.Bytes, Shape: []int64{3, 1}, Data: []string{"cat", "", "d\x00g\xff\n"}}}},
		{"every width", `{"inputs":[{"name":"a","shape":[2],"datatype":"INT8","parameters":{"binary_data_size":2}},
			{"name":"b","shape":[1],"datatype":"UINT16","parameters":{"binary_data_size":2}},
			{"name":"c","shape":[1],"datatype":"INT32","parameters":{"binary_data_size":4}},
			{"name":"d","shape":[1],"datatype":"UINT64","parameters":{"binary_data_size":8}},
			{"name":"e","shape":[1],"datatype":"FP64","parameters":{"binary_data_size":8}},
			{"name":"f","shape":[1],"datatype":"UINT8","parameters":{"binary_data_size":1}},
			{"name":"g","shape":[1],"datatype":"INT16","parameters":{"binary_data_size":2}},
			{"name":"h","shape":[1],"datatype":"UINT32","parameters":{"binary_data_size":4}}]}`,
			[]part{le(int8(-128), int8(127)), le(uint16(65535)), le(int32(-5)), le(uint64(math.MaxUint64)), le(-1e-300), le(uint8(200)), le(int16(-300)), le(uint32(1 << 31))},
			[]in{{Name: "a", Type: onnx.Int8, Shape: []int64{2}, Data: []int8{-128, 127}},
				{Name: "b", Type: onnx.Uint16, Shape: []int64{1}, Data: []uint16{65535}},
				{Name: "c", Type: onnx.Int32, Shape: []int64{1}, Data: []int32{-5}},
				{Name: "d", Type: onnx.Uint64, Shape: []int64{1}, Data: []uint64{math.MaxUint64}},
				{Name: "e", Type: onnx.FP64, Shape: []int64{1}, Data: []float64{-1e-300}},
				{Name: "f", Type: onnx.Uint8, Shape: []int64{1}, Data: []uint8{200}},
				{Name: "g", Type: onnx.Int16, Shape: []int64{1}, Data: []int16{-300}},
				{Name: "h", Type: onnx.Uint32, Shape: []int64{1}, Data: []uint32{1 << 31}}}},
		{"mixed json and binary", `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},
			{"name":"b","shape":[1,2],"datatype":"INT64","parameters":{"binary_data_size":16,"other":[1,{"x":null}]}}]}`,
			[]part{le(int64(7), int64(-9))},
			[]in{{Name: "a", Type: onnx.FP32, Shape: []int64{1, 3}, Data: []float32{1, 2, 3}},
				{Name: "b", Type: onnx.Int64, Shape: []int64{1, 2}, Data: []int64{7, -9}}}},
		{"binary first, json after, empty part", `{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":4}},
			{"name":"z","shape":[0],"datatype":"FP32","parameters":{"binary_data_size":0}},
			{"name":"a","shape":[1],"datatype":"FP32","data":[5]}]}`,
			[]part{le("")},
			[]in{{Name: "s", Type: onnx.Bytes, Shape: []int64{1}, Data: []string{""}},
				{Name: "z", Type: onnx.FP32, Shape: []int64{0}, Data: []float32{}},
				{Name: "a", Type: onnx.FP32, Shape: []int64{1}, Data: []float32{5}}}},
		{"header without binary inputs", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[5]}]}`, nil,
			[]in{{Name: "a", Type: onnx.FP32, Shape: []int64{1}, Data: []float32{5}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := make([][]byte, len(tt.parts))
			for i, p := range tt.parts {
				parts[i] = p
			}
			// Both ways of reading numbers: this machine's, and the other.
			defer func(native bool) { littleEndian = native }(littleEndian)
			for _, native := range []bool{true, false} {
				littleEndian = native
				body, header := binaryBody(tt.js, parts...)
				req, err := decodeInferBody(body, header, defaultLimits)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(req.Inputs, tt.want) {
					t.Errorf("inputs = %+v\nwant     %+v", req.Inputs, tt.want)
				}
				clear(body) // the request keeps nothing of the body, which the server reuses
				if !reflect.DeepEqual(req.Inputs, tt.want) {
					t.Errorf("inputs changed with the body: %+v", req.Inputs)
				}
			}
		})
	}
}

func TestDecodeInferBodyErrors(t *testing.T) {
	fp32 := func(size string) string {
		return `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":` + size + `}}]}`
	}
	bytesIn := func(n, size int) string {
		raw, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{
			"name": "s", "shape": []int{n}, "datatype": "BYTES", "parameters": map[string]int{"binary_data_size": size}}}})
		return string(raw)
	}
	x16 := le(float32(1), float32(2), float32(3), float32(4))
	tests := []struct {
		name   string
		js     string
		bin    []byte
		header bool // an Inference-Header-Content-Length is given
		want   string
		large  bool // errTooLarge rather than ErrInvalidInput
	}{
		{"size under shape", fp32("12"), x16[:12], true, `input "x": parameters.binary_data_size is 12 bytes, but shape [1,4] of FP32 takes 16 (4 elements of 4 bytes)`, false},
		{"size over shape", fp32("20"), append(x16, 0, 0, 0, 0), true, "is 20 bytes, but shape [1,4] of FP32 takes 16", false},
		{"size beyond the body", fp32("16"), x16[:10], true, `input "x": parameters.binary_data_size is 16 bytes, but only 10 bytes of binary data are left for it`, false},
		{"huge size", fp32("9223372036854775807"), x16, true, "is 9223372036854775807 bytes, but only 16 bytes", false},
		{"size past int64", fp32("9223372036854775808"), x16, true, `parameters.binary_data_size: "9223372036854775808" is not a byte count`, false},
		{"negative size", fp32("-16"), x16, true, `input "x": parameters.binary_data_size: "-16" is not a byte count`, false},
		{"fractional size", fp32("16.0"), x16, true, `"16.0" is not a byte count`, false},
		{"size not a number", fp32(`"16"`), x16, true, `"\"16\"" is not a byte count`, false},
		{"leftover bytes", fp32("16"), append(x16, 9), true, "binary data: 1 bytes are left over after the 16 bytes", false},
		{"bytes without a claim", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, []byte{1, 2}, true, "2 bytes follow the JSON", false},
		{"no header", fp32("16"), nil, false, `input "x": parameters.binary_data_size is given, but the request has no Inference-Header-Content-Length header`, false},
		{"data and size", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}`, le(float32(1)), true, `input "x": gives both data and parameters.binary_data_size`, false},
		{"neither data nor size", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"other":4}}]}`, nil, true, `input "x": data is required`, false},
		{"over the element limit", `{"inputs":[{"name":"x","shape":[1,100000000],"datatype":"FP32","parameters":{"binary_data_size":400000000}}]}`, x16, true, "limits.max_tensor_elements", true},
		{"bool not 0 or 1", `{"inputs":[{"name":"b","shape":[2],"datatype":"BOOL","parameters":{"binary_data_size":2}}]}`, []byte{1, 2}, true, `input "b": element 1 (flattened): byte 2 is neither 0 nor 1`, false},
		{"bytes length beyond data", bytesIn(2, 12), append(le("abc"), 0xff, 0xff, 0xff, 0x7f, 'x'), true, `input "s": element 1 (flattened): its length 2147483647 is beyond the 1 bytes left`, false},
		{"bytes too few for lengths", bytesIn(3, 8), le("", ""), true, "too few for 3 BYTES elements", false},
		{"bytes length cut", bytesIn(2, 9), append(le("abc"), 0, 0), true, "element 1 (flattened): its 4-byte length lies beyond", false},
		{"bytes extra", bytesIn(1, 9), append(le("abc"), 1, 2), true, "parameters.binary_data_size is 9 bytes, but its 1 BYTES elements take 7", false},
		{"bytes over string limit", bytesIn(1, 4+DefaultMaxStringBytes+1), le(strings.Repeat("a", DefaultMaxStringBytes+1)), true, "limits.max_string_bytes", false},
		{"fp16", `{"inputs":[{"name":"h","shape":[1],"datatype":"FP16","parameters":{"binary_data_size":2}}]}`, []byte{0, 0}, true, `input "h": datatype FP16 is not supported`, false},
		{"request parameters not an object", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":[1]}`, nil, false, `parameters: must be an object, not "[1]"`, false},
		{"input parameters not an object", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":"binary"}]}`, nil, false, `input "x": parameters: must be an object`, false},
		{"output parameters not an object", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":true}]}`, nil, false, `output "y": parameters: must be an object`, false},
		{"binary_data not a bool", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"binary_data":1}}]}`, nil, false, `output "y": parameters.binary_data: must be true or false, not "1"`, false},
		{"binary_data_output not a bool", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"binary_data_output":"yes"}}`, nil, false, `parameters.binary_data_output: must be true or false`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, header := binaryBody(tt.js, tt.bin)
			if !tt.header {
				header = -1
			}
			_, err := decodeInferBody(body, header, defaultLimits)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.large != errors.Is(err, errTooLarge) || tt.large == errors.Is(err, ErrInvalidInput) {
				t.Errorf("err = %v: errTooLarge %t, ErrInvalidInput %t", err, errors.Is(err, errTooLarge), errors.Is(err, ErrInvalidInput))
			}
		})
	}
}

func TestInferHeaderLength(t *testing.T) {
	tests := []struct {
		value string
		body  int
		want  int
		err   string
	}{
		{"", 10, -1, ""},
		{"0", 10, 0, ""},
		{"10", 10, 10, ""},
		{"11", 10, 0, "Inference-Header-Content-Length: 11 bytes is beyond the end of the 10-byte body"},
		{"-1", 10, 0, `Inference-Header-Content-Length: "-1" is not a byte count`},
		{"1e3", 10, 0, "is not a byte count"},
		{"99999999999999999999", 10, 0, "is not a byte count"},
	}
	for _, tt := range tests {
		got, err := inferHeaderLength(tt.value, tt.body)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalidInput) {
				t.Errorf("inferHeaderLength(%q, %d) = %d, %v; want error %q", tt.value, tt.body, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("inferHeaderLength(%q, %d) = %d, %v; want %d", tt.value, tt.body, got, err, tt.want)
		}
	}
}

func TestBinaryOutputChoice(t *testing.T) {
	tests := []struct {
		js   string
		want []bool // binaryOutput of outputs 0, 1, 2
	}{
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, []bool{false, false, false}},
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"binary_data_output":true}}`, []bool{true, true, true}},
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"a"},{"name":"b","parameters":{"binary_data":true}}]}`, []bool{false, true, false}},
		{`{"parameters":{"binary_data_output":true},"outputs":[{"name":"a","parameters":{"binary_data":false}},{"name":"b"}],"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, []bool{false, true, true}},
	}
	for _, tt := range tests {
		req, err := decodeInferRequest([]byte(tt.js), defaultLimits)
		if err != nil {
			t.Fatalf("%s: %v", tt.js, err)
		}
		for i, want := range tt.want {
			if got := req.binaryOutput(i); got != want {
				t.Errorf("%s: output %d in binary = %t, want %t", tt.js, i, got, want)
			}
		}
	}
}

func TestEncodeInferResponseBinary(t *testing.T) {
	req, err := decodeInferRequest([]byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"binary_data_output":true},
		"outputs":[{"name":"y"},{"name":"p"},{"name":"s"},{"name":"b"},{"name":"j","parameters":{"binary_data":false}}]}`), defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	got := encodeInferResponse(nil, &inferResponse{
		Model: "m", Version: 1, Binary: req,
		Outputs: []onnx.Tensor{
			{Name: "y", Type: onnx.FP32, Shape: []int64{1, 2}, Data: []float32{0.5, -1}},
			{Name: "p", Type: onnx.JSON, Shape: []int64{1}, Data: []onnx.Map{{Keys: []string{"0"}, Values: []float32{1}}}},
			{Name: "s", Type: onnx.Bytes, Shape: []int64{2}, Data: []string{"ab", ""}},
			{Name: "b", Type: onnx.Bool, Shape: []int64{2}, Data: []bool{true, false}},
			{Name: "j", Type: onnx.Int64, Shape: []int64{1}, Data: []int64{3}},
		},
	})
	wantJSON := `{"model_name":"m","model_version":"1","outputs":[` +
		`{"name":"y","datatype":"FP32","shape":[1,2],"parameters":{"binary_data_size":8}},` +
		`{"name":"p","datatype":"JSON","shape":[1],"data":[{"0":1}]},` +
		`{"name":"s","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":10}},` +
		`{"name":"b","datatype":"BOOL","shape":[2],"parameters":{"binary_data_size":2}},` +
		`{"name":"j","datatype":"INT64","shape":[1],"data":[3]}]}`
	want := append([]byte(wantJSON), le(float32(0.5), float32(-1), "ab", "", true, false)...)
	if string(got) != string(want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if n := jsonLength(got); n != len(wantJSON) {
		t.Errorf("jsonLength = %d, want %d", n, len(wantJSON))
	}
}

// FuzzDecodeInferBody feeds arbitrary bodies and header lengths to the
// decoder of requests with binary tensor data: it must never panic, every
// refusal must be the caller's error, and every accepted request must
// hold the data its shapes say.
func FuzzDecodeInferBody(f *testing.F) {
	seeds := []struct {
		js  string
		bin []byte
	}{
		{`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}]}`, le(float32(1), float32(2), float32(3), float32(4))},
		{`{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":9}}]}`, le("a", "")},
		{`{"inputs":[{"name":"b","shape":[2],"datatype":"BOOL","parameters":{"binary_data_size":2}},{"name":"x","shape":[1],"datatype":"INT64","data":[1]}]}`, le(true, false)},
		{`{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":9}}]}`, []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5}},
		{`{"inputs":[{"name":"x","shape":[100000000],"datatype":"UINT8","parameters":{"binary_data_size":100000000}}]}`, []byte{1}},
		{`{"model_name":"m","inputs":[{"name":"x","shape":[1],"datatype":"INT8","parameters":{"binary_data_size":1}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`, []byte{1}},
	}
	for _, s := range seeds {
		body, header := binaryBody(s.js, s.bin)
		f.Add(body, header)
	}
	f.Fuzz(func(t *testing.T, body []byte, header int) {
		if header > len(body) {
			header = len(body)
		}
		if header < -1 {
			header = -1
		}
		req, err := decodeInferBody(body, header, defaultLimits)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) && !errors.Is(err, errTooLarge) {
				t.Fatalf("refusal is not ErrInvalidInput or errTooLarge: %v", err)
			}
			return
		}
		for _, in := range req.Inputs {
			n := onnx.Elements(in.Shape)
			if got := reflect.ValueOf(in.Data).Len(); int64(got) != n {
				t.Fatalf("input %s: shape %v holds %d elements, data has %d", in.Name, in.Shape, n, got)
			}
		}
	})
}

// benchRequest is a 100x4 FP32 request, in JSON and with binary data.
func benchRequest() (js []byte, bin []byte, header int) {
	values := make([]float32, 400)
	for i := range values {
		values[i] = float32(i) * 0.37
	}
	js, _ = json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "x", "shape": []int{100, 4}, "datatype": "FP32", "data": values}}})
	bin, header = binaryBody(`{"inputs":[{"name":"x","shape":[100,4],"datatype":"FP32","parameters":{"binary_data_size":1600}}]}`, le(values))
	return js, bin, header
}

func BenchmarkDecodeInfer_FP32_100x4_JSON(b *testing.B) {
	js, _, _ := benchRequest()
	b.ReportAllocs()
	b.SetBytes(int64(len(js)))
	for b.Loop() {
		if _, err := decodeInferBody(js, -1, defaultLimits); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeInfer_FP32_100x4_Binary(b *testing.B) {
	_, bin, header := benchRequest()
	b.ReportAllocs()
	b.SetBytes(int64(len(bin)))
	for b.Loop() {
		if _, err := decodeInferBody(bin, header, defaultLimits); err != nil {
			b.Fatal(err)
		}
	}
}

// benchResponse is the answer of 100x4 FP32 outputs, in JSON or in binary.
func benchResponse(binary bool) *inferResponse {
	values := make([]float32, 400)
	for i := range values {
		values[i] = float32(i) * 0.37
	}
	r := &inferResponse{Model: "m", Version: 1, Outputs: []onnx.Tensor{{Name: "y", Type: onnx.FP32, Shape: []int64{100, 4}, Data: values}}}
	if binary {
		r.Binary = &inferRequest{binaryAll: true}
	}
	return r
}

func BenchmarkEncodeInfer_FP32_100x4_JSON(b *testing.B) {
	r, buf := benchResponse(false), make([]byte, 0, 8192)
	b.ReportAllocs()
	for b.Loop() {
		buf = encodeInferResponse(buf[:0], r)
	}
}

func BenchmarkEncodeInfer_FP32_100x4_Binary(b *testing.B) {
	r, buf := benchResponse(true), make([]byte, 0, 8192)
	b.ReportAllocs()
	for b.Loop() {
		buf = encodeInferResponse(buf[:0], r)
		if jsonLength(buf) >= len(buf) {
			b.Fatal("no binary data")
		}
	}
}
