package registry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/registry"
)

func TestDecodeMetadata(t *testing.T) {
	full := registry.Metadata{
		Description: "ResNet-50 fine-tuned on the spring catalogue – ünïcode welcome",
		Tags:        map[string]string{"team": "vision", "validation_status": "PASSED", "k8s.io:zone": ""},
		Lineage:     registry.Lineage{Data: "s3://bucket/catalogue/2024-05", Code: "git@example.com:ml/resnet.git#abc123", RunID: "run-42"},
	}
	tests := []struct {
		name string
		in   string
		want registry.Metadata
	}{
		{"empty", "", registry.Metadata{}},
		{"whitespace", " \n\t", registry.Metadata{}},
		{"null", "null", registry.Metadata{}},
		{"empty object", "{}", registry.Metadata{}},
		{"full document", `{
			"description": "ResNet-50 fine-tuned on the spring catalogue – ünïcode welcome",
			"tags": {"team": "vision", "validation_status": "PASSED", "k8s.io:zone": ""},
			"lineage": {"data": "s3://bucket/catalogue/2024-05", "code": "git@example.com:ml/resnet.git#abc123", "run_id": "run-42"}
		}`, full},
		{"escapes", `{"description":"line\nbreak \u00e9 \"q\""}`, registry.Metadata{Description: "line\nbreak é \"q\""}},
		{"null members", `{"description":null,"tags":null,"lineage":null}`, registry.Metadata{}},
		{"empty tags", `{"tags":{}}`, registry.Metadata{Tags: map[string]string{}}},
		{"description at the limit", `{"description":"` + strings.Repeat("d", 16<<10) + `"}`, registry.Metadata{Description: strings.Repeat("d", 16<<10)}},
		{"trailing whitespace", "{}\n", registry.Metadata{}},
		{"batching", `{"batching":{"max_batch_size":32,"max_queue_delay":"500us"}}`,
			registry.Metadata{Batching: &registry.Batching{MaxBatchSize: 32, MaxQueueDelay: registry.Duration(500 * time.Microsecond)}}},
		{"batching at its bounds", `{"batching":{"max_batch_size":4096,"max_queue_delay":"1s"}}`,
			registry.Metadata{Batching: &registry.Batching{MaxBatchSize: 4096, MaxQueueDelay: registry.Duration(time.Second)}}},
		{"batching, smallest", `{"batching":{"max_batch_size":2,"max_queue_delay":"1ns"}}`,
			registry.Metadata{Batching: &registry.Batching{MaxBatchSize: 2, MaxQueueDelay: 1}}},
		{"batching in µs", `{"batching":{"max_batch_size":8,"max_queue_delay":"250µs"}}`,
			registry.Metadata{Batching: &registry.Batching{MaxBatchSize: 8, MaxQueueDelay: registry.Duration(250 * time.Microsecond)}}},
		{"null batching", `{"batching":null}`, registry.Metadata{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.DecodeMetadata([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeMetadata: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeMetadata = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeMetadataErrors(t *testing.T) {
	manyTags := map[string]string{}
	for i := range 129 {
		manyTags[fmt.Sprintf("t%d", i)] = "v"
	}
	tests := []struct {
		name string
		in   string
		want string // what the message must say
	}{
		{"unknown field", `{"description":"d","colour":"red"}`, `unknown field "colour"`},
		{"unknown lineage field", `{"lineage":{"commit":"abc"}}`, `unknown field "commit"`},
		{"wrong type", `{"description":42}`, `"description"`},
		{"wrong type in lineage", `{"lineage":{"run_id":7}}`, `"lineage.run_id"`},
		{"tags not an object", `{"tags":["a","b"]}`, `"tags"`},
		{"tag value not a string", `{"tags":{"epochs":10}}`, `"tags"`},
		{"not an object", `"description"`, "expected an object"},
		{"array", `[]`, "expected an object"},
		{"trailing data", `{} {}`, "unexpected data after the JSON value"},
		{"trailing garbage", `{"description":"d"}x`, "unexpected data after the JSON value"},
		{"malformed", `{"description":`, "malformed JSON"},
		{"not JSON", `description=d`, "malformed JSON"},
		{"oversized description", `{"description":"` + strings.Repeat("d", 16<<10+1) + `"}`, "metadata.description: at most 16384 bytes"},
		{"oversized lineage", `{"lineage":{"data":"` + strings.Repeat("d", 4097) + `"}}`, "metadata.lineage.data"},
		{"oversized tag value", `{"tags":{"k":"` + strings.Repeat("v", 4097) + `"}}`, "metadata.tags: k: at most 4096 bytes"},
		{"oversized tag key", `{"tags":{"` + strings.Repeat("k", 129) + `":"v"}}`, "metadata.tags: key: at most 128 characters"},
		{"too many tags", string(mustMarshal(t, map[string]any{"tags": manyTags})), "metadata.tags: at most 128 tags"},
		{"tag key with a space", `{"tags":{"my tag":"v"}}`, `metadata.tags: key "my tag": character ' ' is not allowed`},
		{"tag key with a slash", `{"tags":{"a/b":"v"}}`, `metadata.tags: key "a/b": character '/' is not allowed`},
		{"empty tag key", `{"tags":{"":"v"}}`, "metadata.tags: key: must not be empty"},
		{"invalid validation_status", `{"tags":{"validation_status":"OK"}}`, `metadata.tags: validation_status: must be one of PENDING, PASSED, FAILED, got "OK"`},
		{"lower-case validation_status", `{"tags":{"validation_status":"passed"}}`, "validation_status: must be one of"},
		{"invalid UTF-8 in description", "{\"description\":\"caf\xe9\"}", "not valid UTF-8"},
		{"invalid UTF-8 in tag value", "{\"tags\":{\"k\":\"\xc3\"}}", "not valid UTF-8"},
		{"invalid UTF-8 in lineage", "{\"lineage\":{\"code\":\"\xff\xfe\"}}", "not valid UTF-8"},
		{"empty batching", `{"batching":{}}`, "metadata.batching.max_batch_size: must be 2 to 4096, got 0"},
		{"batch of one", `{"batching":{"max_batch_size":1,"max_queue_delay":"1ms"}}`, "metadata.batching.max_batch_size: must be 2 to 4096, got 1"},
		{"batch too large", `{"batching":{"max_batch_size":4097,"max_queue_delay":"1ms"}}`, "metadata.batching.max_batch_size: must be 2 to 4096, got 4097"},
		{"no delay", `{"batching":{"max_batch_size":8}}`, "metadata.batching.max_queue_delay: must be more than 0 and at most 1s"},
		{"zero delay", `{"batching":{"max_batch_size":8,"max_queue_delay":"0s"}}`, "metadata.batching.max_queue_delay: must be more than 0"},
		{"negative delay", `{"batching":{"max_batch_size":8,"max_queue_delay":"-1ms"}}`, "got -1ms"},
		{"delay too long", `{"batching":{"max_batch_size":8,"max_queue_delay":"1.5s"}}`, "at most 1s"},
		{"delay a number", `{"batching":{"max_batch_size":8,"max_queue_delay":500}}`, `"batching.max_queue_delay"`},
		{"delay not a duration", `{"batching":{"max_batch_size":8,"max_queue_delay":"soon"}}`, `invalid duration "soon"`},
		{"batch size a string", `{"batching":{"max_batch_size":"32","max_queue_delay":"1ms"}}`, `"batching.max_batch_size"`},
		{"unknown batching field", `{"batching":{"max_batch_size":8,"max_queue_delay":"1ms","preferred_batch_size":4}}`, `unknown field "preferred_batch_size"`},
		{"batching not an object", `{"batching":true}`, `"batching"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md, err := registry.DecodeMetadata([]byte(tt.in))
			if !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("DecodeMetadata = %+v, %v; want an error matching ErrInvalid", md, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if !reflect.DeepEqual(md, registry.Metadata{}) {
				t.Errorf("DecodeMetadata returned %+v with its error; want the zero Metadata", md)
			}
		})
	}
}

func TestCheckModelName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"resnet", true},
		{"a", true},
		{"7", true},
		{"ResNet-50_v2.onnx", true},
		{"0day", true},
		{strings.Repeat("n", 128), true},
		{"", false},
		{strings.Repeat("n", 129), false},
		{".hidden", false},
		{"-flag", false},
		{"_private", false},
		{"..", false},
		{"a/b", false},
		{"a@champion", false},
		{"a b", false},
		{"a:b", false},
		{`a\b`, false},
		{"café", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		err := registry.CheckModelName(tt.name)
		if tt.ok && err != nil {
			t.Errorf("CheckModelName(%q) = %v; want nil", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("CheckModelName(%q) = %v; want ErrInvalid", tt.name, err)
		}
	}
}

func TestCheckAlias(t *testing.T) {
	tests := []struct {
		alias string
		ok    bool
	}{
		{"champion", true},
		{"c", true},
		{"Canary-2_b", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"1abc", false},
		{"2", false},
		{"_a", false},
		{"-a", false},
		{"a.b", false},
		{"a/b", false},
		{"a@b", false},
		{"a b", false},
		{"ä", false},
	}
	for _, tt := range tests {
		err := registry.CheckAlias(tt.alias)
		if tt.ok && err != nil {
			t.Errorf("CheckAlias(%q) = %v; want nil", tt.alias, err)
		}
		if !tt.ok && !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("CheckAlias(%q) = %v; want ErrInvalid", tt.alias, err)
		}
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want int // 0: an error matching ErrInvalid
	}{
		{"1", 1},
		{"42", 42},
		{"2147483648", 2147483648},
		{"", 0},
		{"0", 0},
		{"-1", 0},
		{"1.5", 0},
		{"1e3", 0},
		{"one", 0},
		{" 1", 0},
		{"1 ", 0},
		{"0x10", 0},
		{"champion", 0},
		{"99999999999999999999", 0},
	}
	for _, tt := range tests {
		got, err := registry.ParseVersion(tt.in)
		if tt.want == 0 {
			if !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("ParseVersion(%q) = %d, %v; want ErrInvalid", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseVersion(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func FuzzDecodeMetadata(f *testing.F) {
	for _, seed := range []string{
		``,
		`null`,
		`{}`,
		`{"description":"d","tags":{"team":"vision","validation_status":"PASSED"},"lineage":{"data":"s3://b/d","code":"git:abc","run_id":"r1"}}`,
		`{"tags":{}}`,
		`{"description":"\u00e9\ud800\n"}`,
		`{"Description":"case","TAGS":{"a":"b"}}`,
		`{"tags":{"validation_status":"OK"}}`,
		`{"tags":{"a b":"c"}}`,
		`{"colour":"red"}`,
		`{"description":1}`,
		`{"lineage":{"run_id":[]}}`,
		`{} {}`,
		`[{"description":"d"}]`,
		"{\"description\":\"\xff\"}",
		`{"batching":{"max_batch_size":32,"max_queue_delay":"500us"}}`,
		`{"batching":{"max_batch_size":4096,"max_queue_delay":"1s"}}`,
		`{"batching":{"max_batch_size":1,"max_queue_delay":"1ms"}}`,
		`{"batching":{"max_batch_size":8,"max_queue_delay":"1h"}}`,
		`{"batching":{"max_batch_size":8,"max_queue_delay":3}}`,
		`{"batching":{"max_batch_size":8,"max_queue_delay":"1e3ns"}}`,
		`{"batching":{}}`,
		`{"batching":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := registry.DecodeMetadata(data)
		if err != nil {
			if !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("DecodeMetadata(%q) = %v; want an error matching ErrInvalid", data, err)
			}
			return
		}
		again, err := json.Marshal(md)
		if err != nil {
			t.Fatalf("encode %+v: %v", md, err)
		}
		md2, err := registry.DecodeMetadata(again)
		if err != nil {
			t.Fatalf("DecodeMetadata(%q) accepted, but its re-encoding %q gives %v", data, again, err)
		}
		if !reflect.DeepEqual(md, md2) {
			t.Fatalf("DecodeMetadata(%q) = %+v, but after re-encoding as %q it is %+v", data, md, again, md2)
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
