package jsondur

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	var v struct {
		D Duration `json:"d"`
	}
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{`{"d": "90s"}`, 90 * time.Second, ""},
		{`{"d": "24h"}`, 24 * time.Hour, ""},
		{`{"d": null}`, 0, ""},
		{`{"d": "-1s"}`, -time.Second, ""},
		{`{"d": "soon"}`, 0, `invalid duration "soon"`},
		{`{"d": 5}`, 0, "number"},
	}
	for _, tt := range tests {
		v.D = 0
		err := json.Unmarshal([]byte(tt.in), &v)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || time.Duration(v.D) != tt.want {
			t.Errorf("%s = %v, %v", tt.in, time.Duration(v.D), err)
		}
	}
	v.D = Duration(time.Minute)
	if out, _ := json.Marshal(v); string(out) != `{"d":"1m0s"}` {
		t.Errorf("marshal = %s", out)
	}
}
