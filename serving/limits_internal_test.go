package serving

import (
	"strings"
	"testing"
	"time"
)

// TestDecodeLimits runs each decoder of outside input over the bounds of
// small limits: over a bound is a 400 or 413 that names it, at the bound is
// accepted.
func TestDecodeLimits(t *testing.T) {
	lim := limitsOf(Options{MaxRows: 2, MaxTensorElements: 6, MaxStringBytes: 4})
	v2 := func(shape, datatype, data string) func() error {
		return func() error {
			_, err := decodeInferRequest([]byte(`{"inputs":[{"name":"x","shape":`+shape+`,"datatype":"`+datatype+`","data":`+data+`}]}`), lim)
			return err
		}
	}
	predict := func(body string) func() error {
		return func() error { _, err := decodePredictRequest([]byte(body), lim); return err }
	}
	online := func(body string) func() error {
		return func() error { _, err := decodeOnlineRequest([]byte(body), lim); return err }
	}
	tests := []struct {
		name   string
		decode func() error
		status int
		want   string
	}{
		{"v2 at the bounds", v2(`[2,3]`, "FP32", `[1,2,3,4,5,6]`), 0, ""},
		{"v2 batch", v2(`[3,1]`, "FP32", `[1,2,3]`), 400, `input "x": a batch of 3 rows (shape[0]) is more than limits.max_rows (2)`},
		{"v2 elements", v2(`[1,7]`, "FP32", `[1,2,3,4,5,6,7]`), 413, `input "x": shape [1,7] holds 7 elements, more than limits.max_tensor_elements (6)`},
		{"v2 elements of a lying shape", v2(`[2,1000000000]`, "FP32", `[1]`), 413, "limits.max_tensor_elements"},
		{"v2 string at the bound", v2(`[1]`, "BYTES", `["\u00e9\u00e9"]`), 0, ""},
		{"v2 string", v2(`[2]`, "BYTES", `["ok", "abcde"]`), 400, `input "x": data[1] (flattened): a string of 5 bytes is longer than limits.max_string_bytes (4)`},
		{"predict entities at the bounds", predict(`{"entities": {"id": ["abcd", 1234]}, "request": {"h": [1, 2]}}`), 0, ""},
		{"predict entity rows", predict(`{"entities": {"id": ["a", "b", "c"]}}`), 400, "entities.id: 3 rows is more than limits.max_rows (2)"},
		{"predict request rows", predict(`{"request": {"h": [1, 2, 3]}}`), 400, "request.h: 3 rows is more than limits.max_rows (2)"},
		{"predict entity string", predict(`{"entities": {"id": ["abcde"]}}`), 400, "entities.id[0]: a string of 5 bytes is longer than limits.max_string_bytes (4)"},
		{"predict escaped string at the bound", predict(`{"entities": {"id": ["\u00e9\u00e9"]}}`), 0, ""},
		{"predict request string", predict(`{"request": {"s": ["a", "\u00e9\u00e9\u00e9"]}}`), 400, "request.s[1]: a string of 6 bytes"},
		{"online at the bounds", online(`{"features": ["v:f"], "entities": {"id": ["a", "b"]}}`), 0, ""},
		{"online rows", online(`{"features": ["v:f"], "entities": {"id": ["a", "b", "c"]}}`), 400, "entities.id: 3 rows is more than limits.max_rows (2)"},
		{"online string", online(`{"features": ["v:f"], "entities": {"id": ["abcdef"]}}`), 400, "limits.max_string_bytes (4)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode()
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if got := statusOf(err); got != tt.status || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%d %q, want %d containing %q", got, err, tt.status, tt.want)
			}
		})
	}
}

func TestLimitsOf(t *testing.T) {
	if got := limitsOf(Options{}); got != defaultLimits {
		t.Errorf("limitsOf(zero) = %+v, want the defaults %+v", got, defaultLimits)
	}
	if got := limitsOf(Options{MaxRows: 1, MaxTensorElements: 2, MaxStringBytes: 3}); got != (limits{1, 2, 3}) {
		t.Errorf("limitsOf = %+v", got)
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		wait time.Duration
		want int64
	}{{0, 1}, {time.Nanosecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {90 * time.Second, 90}} {
		if got := retryAfter(tt.wait); got != tt.want {
			t.Errorf("retryAfter(%s) = %d, want %d", tt.wait, got, tt.want)
		}
	}
}
