package names

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		name string
		want string // "" for accepted
	}{
		{"churn", ""},
		{"churn-inputs_v2.1", ""},
		{"9lives", ""},
		{strings.Repeat("a", MaxLen), ""},
		{"", "must not be empty"},
		{strings.Repeat("a", 300), "at most 128 characters, got 300"},
		{".hidden", "must start with a letter or digit"},
		{"..", "must start with a letter or digit"},
		{"-flag", "must start with a letter or digit"},
		{"_x", "must start with a letter or digit"},
		{"../../etc", `character '/' is not allowed`},
		{"..%2F..%2Fetc", `character '%' is not allowed`},
		{"a\x00b", `character '\x00' is not allowed`},
		{"a b", `character ' ' is not allowed`},
		{"a@b", `character '@' is not allowed`},
		{"café", `character 'é' is not allowed`},
		{"a\xffb", `character '�' is not allowed`},
	} {
		err := Check(tt.name)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Check(%q) = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid)):
			t.Errorf("Check(%q) = %v, want an ErrInvalid containing %q", tt.name, err, tt.want)
		}
	}
}
