// Command mlgate is the mlgate gateway and its command-line client.
//
//	mlgate serve [--config FILE] [--demo]    run the gateway
//	mlgate models register|list|show|alias   manage the registry of a running gateway
//	mlgate features apply|ingest|import-feast  define feature views and load rows into them
//	mlgate traffic show|set|canary|history   split, canary and inspect an endpoint's traffic
//	mlgate tables list|delete                list the inference tables, delete an entity's rows
//	mlgate drift put|list|report|run|delete  watch inputs and predictions for drift
//	mlgate completion bash|zsh|fish|powershell  print a shell completion script
//	mlgate version                           print the version
//
// The commands are a github.com/spf13/cobra tree: every command and group
// has --help (-h, or `mlgate help COMMAND`) with its arguments, flags and
// examples; flags may come before or after the positional arguments, and a
// long flag may take one dash (-json) as well as two.
// Client commands talk to a running gateway (--server, --api-key, or
// $MLGATE_SERVER and $MLGATE_API_KEY); those that show a table print the
// gateway's JSON answer instead with -o json (or --json). Output goes to
// stdout; an error goes to stderr prefixed "mlgate: ", and exits with
// status 2 when the command line is wrong (unknown command or flag, wrong
// number of arguments, missing or malformed flag value), 1 otherwise.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Where the commands write; tests replace them.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

func main() {
	os.Exit(exitCode(run(os.Args[1:])))
}

func init() {
	// Subcommands are listed in the order they are added, which is the
	// order they are used in.
	cobra.EnableCommandSorting = false
}

// run runs the command line args (without the program's name).
func run(args []string) error {
	root := newRoot()
	root.SetArgs(oneDashLongFlags(root, args))
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.Execute()
}

// oneDashLongFlags returns args with each -name or -name=value, where name
// is a long flag of the command args run (or help), spelt --name: Go's flag
// package, which mlgate's commands were first written with, took long flags
// with one dash. The result is never nil, which cobra would take as "read
// os.Args".
func oneDashLongFlags(root *cobra.Command, args []string) []string {
	out := append([]string{}, args...)
	cmd, _, err := root.Find(args)
	if err != nil {
		return out
	}
	for i, a := range out {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(name) > 1 && (name == "help" || cmd.Flag(name) != nil) {
			out[i] = "-" + a
		}
	}
	return out
}

// newRoot returns the command tree of mlgate.
func newRoot() *cobra.Command {
	root := group("mlgate", "A model-serving and feature-store gateway", `  mlgate serve --demo
  mlgate models list -o json
  mlgate help traffic canary`,
		serveCommand(),
		modelsCommand(),
		featuresCommand(),
		trafficCommand(),
		tablesCommand(),
		driftCommand(),
		&cobra.Command{
			Use:     "version",
			Short:   "Print the version",
			Example: "  mlgate version",
			Args:    positional(0, 0),
			RunE: func(*cobra.Command, []string) error {
				_, err := fmt.Fprintln(stdout, version)
				return err
			},
		},
	)
	root.Long = `mlgate serves ONNX models behind a registry, feature views, traffic splits
and canaries, inference tables and drift monitors.

Client commands talk to a running gateway: --server URL (default
http://127.0.0.1:8080, or $MLGATE_SERVER) and --api-key KEY (or
$MLGATE_API_KEY).`
	root.AddCommand(completionCommand(root))
	help := helpCommand()
	root.AddCommand(help) // now rather than when cobra runs the tree, so that the tree is whole
	root.SetHelpCommand(help)
	root.CompletionOptions.DisableDefaultCmd = true
	root.SilenceErrors, root.SilenceUsage = true, true
	root.SetFlagErrorFunc(flagError)
	// A group's usage line is "mlgate models [command]" alone: it runs only
	// to say that it wants a subcommand.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	return root
}
