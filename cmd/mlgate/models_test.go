package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/gateway"
	"github.com/mlgate/mlgate/internal/modelzoo"
)

// TestModelsCLI drives the client verbs against a running gateway.
func TestModelsCLI(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	g, err := gateway.Start(t.Context(), cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	stdout = io.Discard
	defer func() { stdout = os.Stdout }()
	server := "http://" + g.Addr
	// Validated, as champion requires.
	validated := filepath.Join(t.TempDir(), "validated.json")
	if err := os.WriteFile(validated, []byte(`{"tags": {"validation_status": "PASSED"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := [][]string{
		{"models", "register", "--server", server, "--name", "linear", "--file", modelzoo.Path(modelzoo.Linear), "--metadata", validated, "--alias", "champion"},
		{"models", "register", "--server", server, "--name", "linear", "--file", modelzoo.Path(modelzoo.LinearV2)},
		{"models", "alias", "linear", "challenger", "2", "--server", server},
		{"models", "list", "--server", server},
		{"models", "show", "linear", "--server", server},
		{"models", "show", "--json", "linear", "--server", server},
	}
	for _, args := range ok {
		if err := run(args); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
	m, err := g.Registry.Model(t.Context(), "linear")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Versions) != 2 || m.Aliases["champion"] != 1 || m.Aliases["challenger"] != 2 {
		t.Errorf("registry after the CLI: %d versions, aliases %v", len(m.Versions), m.Aliases)
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"models", "register", "--server", server, "--name", "x", "--file", modelzoo.Path(modelzoo.Garbage)}, "not a loadable ONNX model"},
		{[]string{"models", "register", "--server", server, "--name", "x"}, "--file are required"},
		{[]string{"models", "alias", "linear", "champion", "one", "--server", server}, `version "one" is not a number`},
		{[]string{"models", "alias", "linear", "champion", "9", "--server", server}, "no version 9"},
		{[]string{"models", "alias", "linear", "champion", "2", "--server", server}, `alias "champion" of model "linear" is protected`},
		{[]string{"models", "show", "nope", "--server", server}, "not found (HTTP 404)"},
		{[]string{"models", "list", "--server", "http://127.0.0.1:1"}, "cannot reach the gateway"},
		{[]string{"models", "frobnicate"}, "unknown subcommand"},
	}
	for _, b := range bad {
		err := run(b.args)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: err = %v, want %q", b.args, err, b.want)
		}
	}
	// An admin (here, open authentication) forces it.
	if err := run([]string{"models", "alias", "linear", "champion", "2", "--force", "--server", server}); err != nil {
		t.Fatalf("forced alias: %v", err)
	}
	if m, err := g.Registry.Model(t.Context(), "linear"); err != nil || m.Aliases["champion"] != 2 {
		t.Errorf("after the forced move: %v, %v", m.Aliases, err)
	}
}

// TestServeRefusesBadConfig checks that start-up stops on a bad key or value
// and names it.
func TestServeRefusesBadConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mlgate.yaml")
	tests := []struct {
		yaml, env, want string
	}{
		{"registry:\n  max_model_byte: 10\n", "", `unknown key "registry.max_model_byte" (line 2)`},
		{"log:\n  level: loud\n", "", "log.level"},
		{"", "MLGATE_ONNX_INTRA_OP_THREADS=many", "MLGATE_ONNX_INTRA_OP_THREADS (onnx.intra_op_threads)"},
		{"", "MLGATE_LISTN=127.0.0.1:1", "MLGATE_LISTN"},
	}
	for _, tt := range tests {
		if err := os.WriteFile(file, []byte(tt.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		if k, v, ok := strings.Cut(tt.env, "="); ok {
			t.Setenv(k, v)
		}
		err := run([]string{"serve", "--config", file})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %q env %q: err = %v, want %q", tt.yaml, tt.env, err, tt.want)
		}
		if k, _, ok := strings.Cut(tt.env, "="); ok {
			os.Unsetenv(k)
		}
	}
}
