package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/registry"
)

// TestStockClients runs the clients users call mlgate with, unmodified from
// PyPI, against a real gateway: each script in testdata/stockclients takes
// the gateway's HTTP or gRPC address and a key, and fails on the first
// answer it does not expect. The gateway serves
//
//   - linear (FP32 x [batch,4] → FP32 y [batch,2]), versions 1 (linear.onnx)
//     and 2 (linear_v2.onnx);
//   - multi_input (FP32 a, INT64 b → FP32 sum, INT64 b_doubled);
//   - strings (BYTES text → INT64 code, BYTES echo);
//   - iris (FP32 float_input → INT64 output_label, ZipMap
//     output_probability);
//   - the endpoint scorer, whose variants v1 and v2 route to linear/1 and
//     linear/2.
func TestStockClients(t *testing.T) {
	python := testservers.Python(t)
	const key = "stock-client-key"
	sum := sha256.Sum256([]byte(key))
	cfg := testConfig(t.TempDir())
	cfg.Auth.Keys = []config.APIKey{{Name: "client", SHA256: hex.EncodeToString(sum[:]), Roles: []string{"admin"}}}
	cfg.GRPC.Listen = "127.0.0.1:0"
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	if g.GRPCAddr == "" {
		t.Fatal("the gateway serves no gRPC, though grpc.listen is set")
	}
	for _, m := range []struct{ name, file string }{
		{"linear", modelzoo.Linear},
		{"linear", modelzoo.LinearV2},
		{"multi_input", modelzoo.MultiInput},
		{"strings", modelzoo.Strings},
		{"iris", modelzoo.IrisFile},
	} {
		raw, err := os.ReadFile(modelzoo.Path(m.file))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Registry.Register(t.Context(), "test", m.name, bytes.NewReader(raw), registry.Metadata{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Catalog.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	stockClientCall(t, g.Addr, key, "PUT", "/v1/endpoints/scorer", `{"variants": [
		{"name": "v1", "model": "linear/1", "weight": 50},
		{"name": "v2", "model": "linear/2", "weight": 50}]}`)

	for _, c := range []struct{ script, addr string }{
		{"triton_http.py", g.Addr},
		{"kserve_rest.py", g.Addr},
		{"triton_grpc.py", g.GRPCAddr},
		{"kserve_grpc.py", g.GRPCAddr},
	} {
		t.Run(c.script, func(t *testing.T) {
			// A client that hangs fails the test with what it printed.
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, python, filepath.Join("testdata", "stockclients", c.script), c.addr, key).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", c.script, err, out)
			}
			t.Logf("%s", out)
		})
	}
}

// stockClientCall makes an authenticated call to the gateway's REST API and
// fails the test unless it succeeds.
func stockClientCall(t *testing.T, addr, key, method, path, body string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
}
