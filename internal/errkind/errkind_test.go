package errkind

import (
	"errors"
	"fmt"
	"testing"
)

// errOwn is a sentinel of no kind; ofKind is one of a kind, as a package
// declares one whose text differs from its kind's.
var (
	errOwn = errors.New("own")
	ofKind = New(Invalid, "invalid input")
)

// multi wraps several errors at once, as a cause error does.
type multi []error

func (m multi) Error() string   { return "multi" }
func (m multi) Unwrap() []error { return m }

func TestOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Kind
		text string
	}{
		{"nil", nil, "", ""},
		{"no kind", errOwn, "", "own"},
		{"bare kind", NotFound, NotFound, "not found"},
		{"kind wrapped", fmt.Errorf("%w: column age is text", Conflict), Conflict, "conflict: column age is text"},
		{"New", New(TooLarge, "body over %d bytes", 10), TooLarge, "body over 10 bytes"},
		{"New wrapped", fmt.Errorf("load: %w", New(Unavailable, "store down")), Unavailable, "load: store down"},
		{"sentinel of a kind", New(ofKind, "shape: want 2 dimensions"), Invalid, "shape: want 2 dimensions"},
		{"New of a sentinel of no kind", New(errOwn, "busy now"), "", "busy now"},
		{"first of several", multi{errOwn, Invalid, NotFound}, Invalid, "multi"},
		{"outermost", fmt.Errorf("%w: %w", Forbidden, New(RateLimited, "slow down")), Forbidden, "forbidden: slow down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.err); got != tt.want {
				t.Errorf("Of = %q, want %q", got, tt.want)
			}
			if tt.err == nil {
				return
			}
			if got := tt.err.Error(); got != tt.text {
				t.Errorf("text = %q, want %q", got, tt.text)
			}
			if tt.want != "" && !errors.Is(tt.err, tt.want) {
				t.Errorf("errors.Is(err, %q) = false", tt.want)
			}
		})
	}
}

func TestSentinelOfAKindKeepsItsIdentity(t *testing.T) {
	err := fmt.Errorf("decode: %w", New(ofKind, "not JSON"))
	if !errors.Is(err, ofKind) || !errors.Is(err, Invalid) {
		t.Errorf("%v: want it to match both its sentinel and Invalid", err)
	}
	if errors.Is(New(Invalid, "x"), ofKind) {
		t.Error("an Invalid error matches a sentinel it was not made of")
	}
}
