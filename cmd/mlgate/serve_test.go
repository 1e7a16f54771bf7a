package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
)

func testConfig(t *testing.T, dataDir string) config.Config {
	cfg := config.Defaults()
	cfg.DataDir = dataDir
	cfg.Listen = "127.0.0.1:0"
	return cfg
}

func startTest(t *testing.T, cfg config.Config) *gateway {
	t.Helper()
	g, err := start(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func stopTest(t *testing.T, g *gateway) {
	t.Helper()
	if err := g.server.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
	g.close()
}

// demoRequest is the body of the curl command registerDemo prints.
const demoRequest = `{"inputs":[{"name":"float_input","shape":[2,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}]}`

// TestDemo runs what `make run` runs: the gateway with --demo, then the curl
// it prints. A restart on the same data directory serves the same version.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	for round := range 2 {
		g := startTest(t, testConfig(t, dir))
		if err := registerDemo(t.Context(), g); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post("http://"+g.addr+"/v2/models/iris/infer", "application/json", strings.NewReader(demoRequest))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			ModelVersion string `json:"model_version"`
			Outputs      []struct {
				Name string          `json:"name"`
				Data json.RawMessage `json:"data"`
			} `json:"outputs"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 200 || out.ModelVersion != "1" || len(out.Outputs) != 2 || string(out.Outputs[0].Data) != "[0,2]" {
			t.Errorf("round %d: demo answered %d %+v", round, resp.StatusCode, out)
		}
		stopTest(t, g)
	}
}

// TestModelsCLI drives the client verbs against a running gateway.
func TestModelsCLI(t *testing.T) {
	g := startTest(t, testConfig(t, t.TempDir()))
	defer stopTest(t, g)
	server := "http://" + g.addr
	ok := [][]string{
		{"models", "register", "--server", server, "--name", "linear", "--file", modelzoo.Path(modelzoo.Linear), "--alias", "champion"},
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
	m, err := g.reg.Model(t.Context(), "linear")
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
}
