package jsonerr

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type doc struct {
		Name  string            `json:"name"`
		Count int               `json:"count"`
		Tags  map[string]string `json:"tags"`
	}
	tests := []struct {
		in, want string
	}{
		{`{"name": "a", "count": 2}`, ""},
		{`{"name": 1}`, `field "name": expected a string, got number`},
		{`{"count": "x"}`, `field "count": expected a whole number, got string`},
		{`{"tags": []}`, `field "tags": expected an object, got array`},
		{`[]`, "expected an object, got array"},
		{`{"nam": "a"}`, `unknown field "nam"`},
		{`{"name": "a"`, "unexpected end of input"},
		{`{"name": "a"} {}`, "unexpected data after the JSON value"},
		{`{"name" "a"}`, "malformed JSON at byte"},
		{``, "unexpected end of input"},
	}
	for _, tt := range tests {
		var d doc
		err := Decode([]byte(tt.in), &d)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Decode(%s) = %v, want success", tt.in, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("Decode(%s) = %v, want %q", tt.in, err, tt.want)
		}
	}
}
