package main

import (
	"errors"
	"testing"
)

func TestRunVerb(t *testing.T) {
	var got []string
	verbs := []verb{
		{"list", func(args []string) error { got = args; return nil }},
		{"show", func([]string) error { return errors.New("shown") }},
		{"delete", func([]string) error { return nil }},
	}
	tests := []struct {
		args []string
		err  string
	}{
		{nil, "things: want a subcommand: list, show or delete"},
		{[]string{"frob"}, `things: unknown subcommand "frob" (want list, show or delete)`},
		{[]string{"show"}, "shown"},
		{[]string{"list", "-a", "b"}, ""},
	}
	for _, tt := range tests {
		err := runVerb("things", tt.args, verbs...)
		if (err == nil) != (tt.err == "") || err != nil && err.Error() != tt.err {
			t.Errorf("runVerb(%q) = %v, want %q", tt.args, err, tt.err)
		}
	}
	if len(got) != 2 || got[0] != "-a" {
		t.Errorf("list got args %q, want the rest after the verb", got)
	}
	if err := runVerb("pair", []string{"x"}, verbs[0], verbs[2]); err == nil || err.Error() != `pair: unknown subcommand "x" (want list or delete)` {
		t.Errorf("two verbs: %v", err)
	}
}
