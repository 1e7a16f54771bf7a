package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/config"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(dataDir string) config.Config {
	cfg := config.Defaults()
	cfg.DataDir = dataDir
	cfg.Listen = "127.0.0.1:0"
	return cfg
}

// TestDemo runs what `make run` runs: the gateway with the demo model, then
// the request of the curl it prints. A restart on the same data directory
// serves the same version without registering it again.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	for round := range 2 {
		g, err := Start(t.Context(), testConfig(dir), "test", quiet())
		if err != nil {
			t.Fatal(err)
		}
		if err := g.RegisterDemo(t.Context()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post("http://"+g.Addr+"/v2/models/"+DemoModel+"/infer", "application/json", strings.NewReader(DemoRequest))
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
		if err := g.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStartRefuses(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"open auth on a public address", func(c *config.Config) { c.Listen = "0.0.0.0:0" }, "API keys are required when listen (0.0.0.0:0) is not a loopback address"},
		{"unknown role", func(c *config.Config) {
			c.Auth.Keys = []config.APIKey{{Name: "k", SHA256: strings.Repeat("a", 64), Roles: []string{"root"}}}
		}, `auth.keys[0].roles: unknown role "root"`},
		{"missing library", func(c *config.Config) { c.ONNX.Library = "/nonexistent/libonnxruntime.so" }, "/nonexistent/libonnxruntime.so (from onnx.library)"},
		{"busy port", func(c *config.Config) { c.Listen = taken.Addr().String() }, "listen (listen: " + taken.Addr().String() + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			tt.edit(&cfg)
			g, err := Start(t.Context(), cfg, "test", quiet())
			if err == nil {
				g.Shutdown(context.Background())
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
