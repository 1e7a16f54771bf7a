package main

import (
	"errors"
	"fmt"
	"strings"
)

// verb is one subcommand of a command group such as `mlgate models`.
type verb struct {
	name string
	run  func(args []string) error
}

// runVerb runs the verb of group that args start with; the errors for a
// missing or unknown one list the verbs in order.
func runVerb(group string, args []string, verbs ...verb) error {
	names := make([]string, len(verbs))
	for i, v := range verbs {
		names[i] = v.name
	}
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	if len(args) == 0 {
		return errors.New(group + ": want a subcommand: " + want)
	}
	for _, v := range verbs {
		if v.name == args[0] {
			return v.run(args[1:])
		}
	}
	return fmt.Errorf("%s: unknown subcommand %q (want %s)", group, args[0], want)
}
