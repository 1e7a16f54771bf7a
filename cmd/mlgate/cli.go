package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// usageError is a mistake in the command line, found before anything is
// done: an unknown command or flag, a wrong number of arguments, a missing
// or malformed flag value. It exits with status 2 and points at the
// command's help.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string {
	if !e.cmd.HasParent() {
		return e.err.Error()
	}
	return commandName(e.cmd) + ": " + e.err.Error()
}

func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a usageError of cmd.
func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}

// commandName is cmd's path without the program's name, e.g. "models
// alias".
func commandName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// exitCode reports err on stderr, prefixed "mlgate: ", and returns the exit
// status for it: 0 for none, 2 for a usageError, 1 for any other.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "mlgate:", err)
	var u *usageError
	if errors.As(err, &u) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", u.cmd.CommandPath())
		return 2
	}
	return 1
}

// group returns a command made of subcommands. Run alone, or with an
// unknown subcommand, it is a usage error that lists them.
func group(use, short, example string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    knownSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf(cmd, "want a %s: %s", subcommandNoun(cmd), subcommandList(cmd))
		},
		SuggestionsMinimumDistance: 2,
	}
	g.AddCommand(subs...)
	return g
}

// knownSubcommand is the positional-argument check of a group: a group
// takes none, so an argument is a subcommand it does not have.
func knownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown %s %q (want %s)", subcommandNoun(cmd), args[0], subcommandList(cmd))
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageErrorf(cmd, "%s", msg)
}

// subcommandNoun is "command" for the root, "subcommand" for a group below
// it.
func subcommandNoun(cmd *cobra.Command) string {
	if cmd.HasParent() {
		return "subcommand"
	}
	return "command"
}

// subcommandList lists a group's subcommands in order: "a, b or c".
func subcommandList(cmd *cobra.Command) string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// positional checks that a command has from min to max positional
// arguments (max -1: no limit). Too many for a command that takes none
// names the first; else the error says what the usage line wants.
func positional(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min && (max < 0 || len(args) <= max) {
			return nil
		}
		if max == 0 {
			return usageErrorf(cmd, "unexpected argument %q", args[0])
		}
		want := strings.TrimSpace(strings.TrimPrefix(cmd.Use, cmd.Name()))
		return usageErrorf(cmd, "want %s, got %s", want, plural(len(args), "argument", "arguments"))
	}
}

// flagError makes a flag the parser refused a usage error.
func flagError(cmd *cobra.Command, err error) error {
	return &usageError{cmd: cmd, err: err}
}

// output is the value of -o: how a command prints what it shows.
type output string

const (
	outputTable output = "table"
	outputJSON  output = "json"
)

func (o *output) String() string { return string(*o) }

func (o *output) Set(s string) error {
	switch output(s) {
	case outputTable, outputJSON:
		*o = output(s)
		return nil
	}
	return fmt.Errorf("want %s or %s", outputTable, outputJSON)
}

func (o *output) Type() string { return "format" }

// jsonOutput is --json, the older spelling of -o json (--json=false is -o
// table).
type jsonOutput struct{ o *output }

func (j jsonOutput) String() string { return strconv.FormatBool(j.o != nil && *j.o == outputJSON) }

func (j jsonOutput) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*j.o = outputTable
	if on {
		*j.o = outputJSON
	}
	return nil
}

func (j jsonOutput) Type() string { return "bool" }

// outputFlags adds -o/--output and --json to cmd, setting o; o starts as a
// table.
func outputFlags(cmd *cobra.Command, o *output) {
	*o = outputTable
	cmd.Flags().VarP(o, "output", "o", "output `format`: table or json (the gateway's answer as it is)")
	cmd.Flags().AddFlag(&pflag.Flag{Name: "json", Usage: "same as -o json", Value: jsonOutput{o}, DefValue: "false", NoOptDefVal: "true"})
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{string(outputTable), string(outputJSON)}, cobra.ShellCompDirectiveNoFileComp))
}

// print writes raw, the gateway's JSON answer, indented as o asks for json;
// for a table it decodes raw into v and calls table.
func (o output) print(cmd *cobra.Command, raw json.RawMessage, v any, table func() error) error {
	if o == outputJSON {
		return printJSON(raw)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: cannot read the gateway's answer: %w", commandName(cmd), err)
	}
	return table()
}

// get asks the gateway for path and prints its answer as o says (see
// output.print).
func (c *client) get(cmd *cobra.Command, o output, path string, v any, table func() error) error {
	var raw json.RawMessage
	if err := c.do(http.MethodGet, path, "", nil, &raw); err != nil {
		return err
	}
	return o.print(cmd, raw, v, table)
}

// helpCommand is `mlgate help [COMMAND]...`: the help of a command, or a
// usage error when there is no such command.
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]...",
		Short: "Show the help of a command",
		Example: `  mlgate help
  mlgate help models alias`,
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usageErrorf(cmd, "no command %q", strings.Join(args, " "))
			}
			return target.Help()
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			parent, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, c := range parent.Commands() {
				if c.IsAvailableCommand() && strings.HasPrefix(c.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(c.Name(), c.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
	}
}

// completionCommand is `mlgate completion SHELL`: the completion script of
// root for a shell.
func completionCommand(root *cobra.Command) *cobra.Command {
	shell := func(name, install string, write func(io.Writer) error) *cobra.Command {
		return &cobra.Command{
			Use:     name,
			Short:   "Print the completion script for " + name,
			Long:    "Print the completion script for " + name + ". To load it:\n\n" + install,
			Example: install,
			Args:    positional(0, 0),
			RunE:    func(cmd *cobra.Command, _ []string) error { return write(cmd.OutOrStdout()) },
		}
	}
	return group("completion", "Print a shell completion script",
		"  source <(mlgate completion bash)",
		shell("bash", "  source <(mlgate completion bash)            # this shell\n"+
			"  mlgate completion bash > /etc/bash_completion.d/mlgate   # every new shell (needs bash-completion)",
			func(w io.Writer) error { return root.GenBashCompletionV2(w, true) }),
		shell("zsh", "  mlgate completion zsh > \"${fpath[1]}/_mlgate\"   # then start a new shell (needs compinit)",
			func(w io.Writer) error { return root.GenZshCompletion(w) }),
		shell("fish", "  mlgate completion fish > ~/.config/fish/completions/mlgate.fish",
			func(w io.Writer) error { return root.GenFishCompletion(w, true) }),
		shell("powershell", "  mlgate completion powershell | Out-String | Invoke-Expression",
			func(w io.Writer) error { return root.GenPowerShellCompletionWithDesc(w) }),
	)
}

// completeNames completes the first positional argument with the names the
// gateway lists at path, under key: GET /v1/models lists {"models": [{"name":
// ...}]}. Nothing is completed when the gateway cannot be asked.
func (c *client) completeNames(path, key string) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		quick := *c
		quick.http = &http.Client{Timeout: completionTimeout}
		var list map[string][]struct {
			Name string `json:"name"`
		}
		if err := quick.do(http.MethodGet, path, "", nil, &list); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for _, item := range list[key] {
			if strings.HasPrefix(item.Name, toComplete) {
				names = append(names, item.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completionTimeout bounds a completion's call to the gateway, so that a
// gateway that does not answer does not hang the shell.
const completionTimeout = 2 * time.Second
