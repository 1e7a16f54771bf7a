package serving

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mlgate/mlgate/serving/onnx"
)

func TestParseData(t *testing.T) {
	tests := []struct {
		raw  string
		typ  onnx.DataType
		n    int64
		want any
		err  string
	}{
		{`[1, 2.5, -3e2]`, onnx.FP32, 3, []float32{1, 2.5, -300}, ""},
		{`[[1], [2], [[3]]]`, onnx.FP64, 3, []float64{1, 2, 3}, ""},
		{` [ ] `, onnx.Int64, 0, []int64{}, ""},
		{`[true,false]`, onnx.Bool, 2, []bool{true, false}, ""},
		{`[255, 0]`, onnx.Uint8, 2, []uint8{255, 0}, ""},
		{`["a", "\u00e9\n", ""]`, onnx.Bytes, 3, []string{"a", "é\n", ""}, ""},
		{`[256]`, onnx.Uint8, 1, nil, "out of range for UINT8"},
		{`[-1]`, onnx.Uint32, 1, nil, "not a whole number"},
		{`[1.0]`, onnx.Int32, 1, nil, "not a whole number"},
		{`[1e40]`, onnx.FP32, 1, nil, "out of range for FP32"},
		{`[null]`, onnx.FP32, 1, nil, "is not a number"},
		{`[{"a":1}]`, onnx.FP32, 1, nil, "is not a number"},
		{`[1]`, onnx.Bool, 1, nil, "not true or false"},
		{`[1]`, onnx.Bytes, 1, nil, "not a string"},
		{`"abc"`, onnx.Bytes, 1, nil, "must be an array"},
		{`[1,2]`, onnx.FP32, 3, nil, "shape holds 3 elements, got 2"},
		{`[1,2,3,4]`, onnx.FP32, 3, nil, "more elements than the shape holds"},
	}
	for _, tt := range tests {
		got, err := parseData([]byte(tt.raw), tt.typ, tt.n, defaultLimits)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseData(%s, %s): err = %v, want %q", tt.raw, tt.typ, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseData(%s, %s) = %#v, %v; want %#v", tt.raw, tt.typ, got, err, tt.want)
		}
	}
}

func TestEncodeInferResponse(t *testing.T) {
	got := encodeInferResponse(nil, &inferResponse{
		Model: "m", Version: 3, ID: "a\"b",
		Outputs: []onnx.Tensor{
			{Name: "y", Type: onnx.FP32, Shape: []int64{1, 3}, Data: []float32{0.1, float32(1) / 3, 1e-8}},
			{Name: "p", Type: onnx.JSON, Shape: []int64{1}, Data: []onnx.Map{{Keys: []string{"0", "1"}, Values: []float32{0.25, 0.75}}}},
			{Name: "s", Type: onnx.Bytes, Shape: []int64{2}, Data: []string{"tab\there", "bad\xffbyte"}},
		},
	})
	want := `{"model_name":"m","model_version":"3","id":"a\"b","outputs":[` +
		`{"name":"y","datatype":"FP32","shape":[1,3],"data":[0.1,0.33333334,1e-08]},` +
		`{"name":"p","datatype":"JSON","shape":[1],"data":[{"0":0.25,"1":0.75}]},` +
		`{"name":"s","datatype":"BYTES","shape":[2],"data":["tab\there","bad\ufffdbyte"]}]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// FuzzAppendString checks that every string encodes as valid JSON that
// decodes back to the same string (or, for invalid UTF-8, its repaired form).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\ ctl\x01\x1f", "é中😀", "\xff\xfe", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw := appendString(nil, s)
		var back string
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: not JSON: %v", s, raw, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("appendString(%q) decodes to %q", s, back)
		}
	})
}

// FuzzDecodeInferRequest feeds arbitrary bodies to the V2 request decoder: it
// must never panic, every refusal must be the caller's error, and every
// accepted request must be consistent.
func FuzzDecodeInferRequest(f *testing.F) {
	for _, seed := range []string{
		`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`,
		`{"id":"r1","inputs":[{"name":"x","shape":[2,2],"datatype":"INT64","data":[[1,2],[3,4]]}],"outputs":[{"name":"y"}]}`,
		`{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","data":["a","\u00e9"]}],"parameters":{"k":1}}`,
		`{"inputs":[{"name":"b","shape":[1,2],"datatype":"BOOL","data":[true,false]}]}`,
		`{"inputs":[{"name":"u","shape":[3],"datatype":"UINT8","data":[0,255,256]}]}`,
		`{"inputs":[{"name":"x","shape":[1000000000000,1000000000000],"datatype":"FP32","data":[1]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[[[[[[[[[[1]]]]]]]]]]}]}`,
		`{"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[]}]}`,
		`{"inputs":[`, `null`, `[]`, `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["\"]"]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeInferRequest(body, defaultLimits)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) && !errors.Is(err, errTooLarge) {
				t.Fatalf("refusal is not ErrInvalidInput or errTooLarge: %v", err)
			}
			return
		}
		if len(req.Inputs) == 0 {
			t.Fatal("accepted a request without inputs")
		}
		for _, in := range req.Inputs {
			n := onnx.Elements(in.Shape)
			if got := reflect.ValueOf(in.Data).Len(); int64(got) != n {
				t.Fatalf("input %s: shape %v holds %d elements, data has %d", in.Name, in.Shape, n, got)
			}
			if in.Type == onnx.Invalid || in.Type == onnx.JSON {
				t.Fatalf("input %s: accepted datatype %s", in.Name, in.Type)
			}
		}
	})
}

// scanCases are V2 request bodies, each one that scanInferRequest takes
// (scan true) or one it leaves to decodeWireRequest.
var scanCases = []struct {
	body string
	scan bool
}{
	{`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, true},
	{` { "id" : "r1" , "inputs" : [ { "name" : "x" , "shape" : [ 2 , 2 ] , "datatype" : "INT64" , "data" : [ [ 1 , 2 ] , [ 3 , 4 ] ] } ] , "outputs" : [ { "name" : "y" } ] } ` + "\n", true},
	{`{"inputs":[{"data":[1.5,-2e3],"datatype":"FP64","shape":[2],"name":"x"}]}`, true},
	{`{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","data":["a","\u00e9\"\\"]}],"parameters":{"k":[1,{"n":null}],"t":true,"f":false,"s":"\n\/"}}`, true},
	{`{"inputs":[{"name":"b","shape":[],"datatype":"BOOL","data":[true],"parameters":{}}],"outputs":[{"name":"y","parameters":{"binary_data":false}}]}`, true},
	{`{"inputs":[{"name":"a","shape":[1],"datatype":"UINT8","data":[255]},{"name":"b","shape":[1,1,1,1,1],"datatype":"INT8","data":[[[[[-128]]]]]}]}`, true},
	{`{"inputs":[{"name":"z","shape":[0,3],"datatype":"FP32","data":[]}],"outputs":[]}`, true},
	{`{"inputs":[{"name":"é","shape":[1],"datatype":"FP32","data":[-0]}],"id":"ünï"}`, true},
	{`{"model_name":"m","model_version":"2","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"binary_data_output":true,"x":{}}}`, true},
	{`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8,"y":[null]}},{"name":"z","shape":[1],"datatype":"INT64","data":[3]}],"outputs":[{"name":"a","parameters":{"binary_data":true}},{"name":"b"},{"name":"c","parameters":{"binary_data":false,"k":"v"}}]}`, true},
	{`{"inputs":[{"name":"z","shape":[1],"datatype":"INT64","data":[3]},{"parameters":{"binary_data_size":0},"name":"x","shape":[0],"datatype":"FP32"}]}`, true},
	{`{"model_name":null,"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":null}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":[]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":5}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4,"binary_data_size":4}}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":-0}}]}`, false},
	{`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":4e0}}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"binary_data":null}}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"binary_data_output":1}}`, false},
	{`{"ID":"r","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, false},
	{`{"inputs":[{"Name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, false},
	{`{"\u0069nputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, false},
	{`{"id":null,"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, false},
	{`{"id":"a\"b","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, false},
	{`{"id":"a","id":"b","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, false},
	{`{"inputs":[{"name":"x` + "\xff" + `","shape":[1],"datatype":"FP32","data":[1]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}x`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[01]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[+1]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[.5]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1,]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1.0],"datatype":"FP32","data":[1]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":["a` + "\t" + `"]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"k":tru}}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]}`, false},
	{`{"inputs":[]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":""}]}`, false},
}

// TestScanInferRequest checks that the one-pass scan takes the requests it
// should, and decodes each as decodeWireRequest does.
func TestScanInferRequest(t *testing.T) {
	for _, tt := range scanCases {
		got, ok := scanInferRequest([]byte(tt.body), defaultLimits)
		if ok != tt.scan {
			t.Errorf("scanInferRequest(%s): ok = %t, want %t", tt.body, ok, tt.scan)
			continue
		}
		want, err := decodeWireRequest([]byte(tt.body), defaultLimits)
		if ok && (err != nil || !reflect.DeepEqual(got, want)) {
			t.Errorf("scanInferRequest(%s) = %+v; decodeWireRequest gives %+v, %v", tt.body, got, want, err)
		}
		if tt.scan && err != nil {
			t.Errorf("decodeWireRequest(%s): %v", tt.body, err)
		}
	}
}

// FuzzScanInferRequest checks that whatever the one-pass scan accepts,
// decodeWireRequest (the reference) accepts too and decodes the same.
func FuzzScanInferRequest(f *testing.F) {
	for _, tt := range scanCases {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanInferRequest(body, defaultLimits)
		if !ok {
			return
		}
		want, err := decodeWireRequest(body, defaultLimits)
		if err != nil {
			t.Fatalf("scan accepted %q, which decodeWireRequest refuses: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: scan gives %+v, decodeWireRequest %+v", body, got, want)
		}
	})
}

func TestInferShape(t *testing.T) {
	tests := []struct {
		raw  string
		want []int64
		err  string
	}{
		{`[1,2,3]`, []int64{3}, ""},
		{`[[1,2],[3,4],[5,6]]`, []int64{3, 2}, ""},
		{` [ [ [1] , [2] ] ] `, []int64{1, 2, 1}, ""},
		{`[]`, []int64{0}, ""},
		{`[[1,2],[3]]`, nil, "not rectangular"},
		{`[[1,2],[[3],[4]]]`, nil, "not rectangular"},
		{`[[1],2]`, nil, "not rectangular"},
		{`[1,[2]]`, nil, "not rectangular"},
		{`5`, nil, "must be an array"},
		{`[[1,2],[3,4]`, nil, "unexpected end"},
	}
	for _, tt := range tests {
		got, err := inferShape([]byte(tt.raw))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("inferShape(%s) = %v, %v; want error %q", tt.raw, got, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("inferShape(%s) = %v, %v; want %v", tt.raw, got, err, tt.want)
		}
	}
}

// FuzzDecodePredictRequest feeds arbitrary bodies to the predict decoder and
// to the raw-input shape reader: they must never panic, and every refusal
// must be the caller's error.
func FuzzDecodePredictRequest(f *testing.F) {
	for _, seed := range []string{
		`{"request_id": "r", "entities": {"user_id": ["u1", 2]}, "request": {"hour": [13, 9]}, "debug": true}`,
		`{"inputs": {"x": [[1, 2, 3, 4], [5, 6, 7, 8]]}}`,
		`{"inputs": {"x": [[1, 2], [3]]}}`,
		`{"inputs": {"x": [[[1]], [2]]}}`,
		`{"entities": {"user_id": [true]}}`,
		`{"inputs": {"x": 5}}`, `{}`, `[]`, `{"request_id": 5}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodePredictRequest(body, defaultLimits)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("refusal is not ErrInvalidInput: %v", err)
			}
			return
		}
		if _, err := entityColumns(req.Entities); err != nil && !errors.Is(err, ErrInvalidInput) {
			t.Fatalf("entity refusal is not ErrInvalidInput: %v", err)
		}
		for _, raw := range req.Inputs {
			shape, err := inferShape(raw)
			if err != nil {
				continue
			}
			if n := onnx.Elements(shape); n >= 0 && n < 1<<20 {
				if data, err := parseData(raw, onnx.FP64, n, defaultLimits); err == nil && int64(reflect.ValueOf(data).Len()) != n {
					t.Fatalf("shape %v but %d elements", shape, reflect.ValueOf(data).Len())
				}
			}
		}
	})
}

// predictScanCases are predict request bodies, each one that
// scanPredictRequest takes (scan true) or one it leaves to
// decodeWirePredict.
var predictScanCases = []struct {
	body string
	scan bool
}{
	{`{"inputs":{"x":[[1,2,3,4]]}}`, true},
	{`{"unit":"u1","inputs":{"x":[[1,2,3,4]],"z":[1]}}`, true},
	{` { "request_id" : "r" , "entities" : { "user_id" : [ "u1" , 2 , {"a":[null]} ] } , "request" : { "hour" : [ 13 , 9 ] } , "debug" : true } `, true},
	{`{"entities":{"user_id":[]},"request":{},"debug":false}`, true},
	{`{"entities":{"user_id":["\u00e9"]}}`, true},
	{`{}`, true},
	{`{"entities":{"user_id":[null]}}`, false},
	{`{"entities":{"user_id":null}}`, false},
	{`{"entities":{"user_id":["a"],"user_id":["b"]}}`, false},
	{`{"Unit":"u1","inputs":{"x":[1]}}`, false},
	{`{"inputs":{"x":[1]},"inputs":{"x":[2]}}`, false},
	{`{"inputs":{"x":[1,]}}`, false},
	{`{"request_id":5}`, false},
	{`{"debug":"yes"}`, false},
	{`{"entities":{"user_id":["u1"]}} x`, false},
	{`[]`, false},
}

// TestScanPredictRequest checks that the one-pass scan takes the predict
// requests it should, and decodes each as decodeWirePredict does.
func TestScanPredictRequest(t *testing.T) {
	for _, tt := range predictScanCases {
		got, ok := scanPredictRequest([]byte(tt.body), defaultLimits)
		if ok != tt.scan {
			t.Errorf("scanPredictRequest(%s): ok = %t, want %t", tt.body, ok, tt.scan)
			continue
		}
		want, err := decodeWirePredict([]byte(tt.body), defaultLimits)
		if ok && (err != nil || !reflect.DeepEqual(got, want)) {
			t.Errorf("scanPredictRequest(%s) = %+v; decodeWirePredict gives %+v, %v", tt.body, got, want, err)
		}
	}
	// The request keeps nothing of the body, which the server reuses.
	body := []byte(`{"request_id":"r","entities":{"user_id":["u1"]}}`)
	req, ok := scanPredictRequest(body, defaultLimits)
	clear(body)
	if !ok || req.RequestID != "r" || string(req.Entities["user_id"][0]) != `"u1"` {
		t.Errorf("scanPredictRequest's request changed with its body: %+v", req)
	}
}

// FuzzScanPredictRequest checks that whatever the one-pass scan accepts,
// decodeWirePredict (the reference) accepts too and decodes the same.
func FuzzScanPredictRequest(f *testing.F) {
	for _, tt := range predictScanCases {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanPredictRequest(body, defaultLimits)
		if !ok {
			return
		}
		want, err := decodeWirePredict(body, defaultLimits)
		if err != nil {
			t.Fatalf("scan accepted %q, which decodeWirePredict refuses: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: scan gives %+v, decodeWirePredict %+v", body, got, want)
		}
	})
}

// FuzzDecodeOnlineRequest feeds arbitrary bodies to the online-read decoder.
func FuzzDecodeOnlineRequest(f *testing.F) {
	for _, seed := range []string{
		`{"features": ["user:age", "user:income"], "entities": {"user_id": ["u1", "u2"]}}`,
		`{"features": ["user:age"], "entities": {"user_id": [1, 2.5, -3]}}`,
		`{"features": "user:age"}`, `{"entities": {"user_id": [null]}}`, `{}`, `1`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeOnlineRequest(body, defaultLimits)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("refusal is not ErrInvalidInput: %v", err)
			}
			return
		}
		cols, err := entityColumns(req.Entities)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("entity refusal is not ErrInvalidInput: %v", err)
			}
			return
		}
		for col, vals := range cols {
			if len(vals) != len(req.Entities[col]) {
				t.Fatalf("column %s lost values", col)
			}
		}
	})
}

// FuzzDecodeLabels feeds arbitrary bodies to the labels decoder.
func FuzzDecodeLabels(f *testing.F) {
	for _, seed := range []string{
		`{"labels": [{"request_id": "r1", "label": 1}, {"request_id": "r2", "label": 0.5}]}`,
		`{"labels": [{"request_id": "r1"}]}`, `{"labels": []}`, `{"labels": [{"label": 1}]}`, `[]`, `{"labels": [{"request_id": 1, "label": "x"}]}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, body []byte) {
		labels, err := decodeLabels(body, now)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("refusal is not ErrInvalidInput: %v", err)
			}
			return
		}
		for _, l := range labels {
			if l.RequestID == "" || l.Timestamp != now {
				t.Fatalf("accepted label %+v", l)
			}
		}
	})
}
