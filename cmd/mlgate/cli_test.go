package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// commands returns every command of the tree under cmd, cmd first, hidden
// ones left out.
func commands(cmd *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{cmd}
	for _, c := range cmd.Commands() {
		if !c.Hidden {
			out = append(out, commands(c)...)
		}
	}
	return out
}

// cli runs the command line args as main does, and returns what it wrote
// to stdout and stderr and its exit status.
func cli(t *testing.T, args ...string) (out, errOut string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	stdout, stderr = &o, &e
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	code = exitCode(run(args))
	return o.String(), e.String(), code
}

// TestHelp asks every command and group for its help in each of the three
// ways, and checks that it succeeds and shows the usage line with the
// positional arguments, and examples.
func TestHelp(t *testing.T) {
	tree := commands(newRoot())
	if len(tree) < 30 {
		t.Fatalf("the tree has %d commands; want every command of mlgate", len(tree))
	}
	for _, cmd := range tree {
		path := strings.Fields(commandName(cmd))
		if !cmd.HasParent() {
			path = nil
		}
		usage := cmd.CommandPath() + strings.TrimPrefix(cmd.Use, cmd.Name())
		if cmd.HasAvailableSubCommands() {
			usage = cmd.CommandPath() + " [command]"
		}
		if cmd.Example == "" {
			t.Errorf("%s: no example", cmd.CommandPath())
		}
		for _, args := range [][]string{
			append(path, "--help"),
			append(path, "-h"),
			append([]string{"help"}, path...),
		} {
			out, errOut, code := cli(t, args...)
			if code != 0 || errOut != "" {
				t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
				continue
			}
			about := cmd.Long
			if about == "" {
				about = cmd.Short
			}
			for _, want := range []string{about, "Usage:\n  " + usage, "Examples:\n" + cmd.Example} {
				if !strings.Contains(out, want) {
					t.Errorf("%q: want %q in\n%s", args, want, out)
				}
			}
			if cmd.HasAvailableSubCommands() && strings.Contains(out, cmd.CommandPath()+" [flags]") {
				t.Errorf("%q: a group's help offers to run it alone:\n%s", args, out)
			}
		}
	}
}

// TestUsageErrors checks that a wrong command line is reported on stderr
// with the command's name and exits 2, and that a failure to reach the
// gateway exits 1.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
		code int
	}{
		{nil, "mlgate: want a command: serve, models, features, traffic, tables, drift, version or completion\nRun 'mlgate --help' for usage.", 2},
		{[]string{"modles"}, `mlgate: unknown command "modles" (want serve, models,`, 2},
		{[]string{"modles"}, "did you mean models?", 2},
		{[]string{"models"}, "mlgate: models: want a subcommand: register, list, show or alias\nRun 'mlgate models --help' for usage.", 2},
		{[]string{"models", "frob"}, `mlgate: models: unknown subcommand "frob" (want register, list, show or alias)`, 2},
		{[]string{"models", "list", "--frob"}, "mlgate: models list: unknown flag: --frob\nRun 'mlgate models list --help' for usage.", 2},
		{[]string{"models", "list", "extra"}, `mlgate: models list: unexpected argument "extra"`, 2},
		{[]string{"models", "list", "-o", "yaml"}, `mlgate: models list: invalid argument "yaml" for "-o, --output" flag: want table or json`, 2},
		{[]string{"models", "alias", "churn", "champion"}, "mlgate: models alias: want NAME ALIAS VERSION, got 2 arguments", 2},
		{[]string{"models", "alias", "churn", "champion", "two"}, `mlgate: models alias: version "two" is not a number`, 2},
		{[]string{"traffic", "canary", "churn", "pause", "--steps", "5,100"}, "mlgate: traffic canary: --steps only apply when starting a canary", 2},
		{[]string{"completion", "tcsh"}, `mlgate: completion: unknown subcommand "tcsh" (want bash, zsh, fish or powershell)`, 2},
		{[]string{"help", "models", "frob"}, `mlgate: help: no command "models frob"`, 2},
		{[]string{"models", "list", "--server", "http://127.0.0.1:1"}, "mlgate: cannot reach the gateway at http://127.0.0.1:1", 1},
	}
	for _, tt := range tests {
		out, errOut, code := cli(t, tt.args...)
		if code != tt.code || out != "" || !strings.HasPrefix(errOut, "mlgate: ") || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr\n%s\nwant exit %d and %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
	}
}

// TestOutputAndCompletion runs list commands against a gateway with -o
// json, --json and -o table, and completes names from it.
func TestOutputAndCompletion(t *testing.T) {
	t.Setenv("MLGATE_SERVER", startTrafficGateway(t))
	mustOut := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
		return out
	}

	asJSON := mustOut("models", "list", "-o", "json")
	var list struct {
		Models []modelSummary `json:"models"`
	}
	if err := json.Unmarshal([]byte(asJSON), &list); err != nil || len(list.Models) != 1 || list.Models[0].Name != "churn" || list.Models[0].Versions != 2 {
		t.Errorf("models list -o json: %v, %+v\n%s", err, list.Models, asJSON)
	}
	for _, args := range [][]string{{"--output=json"}, {"--json"}, {"-ojson"}, {"-json"}, {"-output=json", "-server", os.Getenv("MLGATE_SERVER")}} {
		if out := mustOut(append([]string{"models", "list"}, args...)...); out != asJSON {
			t.Errorf("models list %s: %q, want what -o json prints, %q", args, out, asJSON)
		}
	}
	table := mustOut("models", "list", "-o", "table")
	wantRow(t, "models list -o table", table, "NAME", "LATEST", "VERSIONS", "ALIASES", "UPDATED")
	wantRow(t, "models list -o table", table, "churn", "2", "2")
	for _, args := range [][]string{{}, {"--json=false"}, {"--json", "-o", "table"}} {
		if out := mustOut(append([]string{"models", "list"}, args...)...); out != table {
			t.Errorf("models list %q: %q, want the table %q", args, out, table)
		}
	}

	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "models", "show", ""}, []string{"churn"}},
		{[]string{"__complete", "traffic", "history", "ch"}, []string{"churn"}},
		{[]string{"__complete", "traffic", "canary", "churn", ""}, canaryCommands},
		{[]string{"__complete", "traffic", "show", "x"}, nil},
		{[]string{"__complete", "models", "list", "-o", ""}, []string{"table", "json"}},
		{[]string{"__complete", "help", "mo"}, []string{"models\tManage the model registry of a running gateway"}},
	}
	for _, tt := range tests {
		out := mustOut(tt.args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		got := lines[:len(lines)-1] // the last is the directive
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%q: completed %q, want %q", tt.args, got, tt.want)
		}
	}
}

// TestCompletionScripts checks that each shell gets a script of its own.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash":       "# bash completion V2 for mlgate",
		"zsh":        "#compdef mlgate",
		"fish":       "complete -c mlgate",
		"powershell": "Register-ArgumentCompleter -CommandName 'mlgate'",
	} {
		out, errOut, code := cli(t, "completion", shell)
		if code != 0 || errOut != "" || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, stderr %q, want %q in a script of %d bytes", shell, code, errOut, want, len(out))
		}
	}
}
