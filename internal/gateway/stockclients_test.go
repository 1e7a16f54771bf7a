package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/registry"
)

// TestStockClients runs the clients users call mlgate with, unmodified from
// PyPI, against a real gateway: each script in testdata/stockclients takes
// the gateway's address and a key, and fails on the first answer it does
// not expect.
func TestStockClients(t *testing.T) {
	python := testservers.Python(t)
	const key = "stock-client-key"
	sum := sha256.Sum256([]byte(key))
	cfg := testConfig(t.TempDir())
	cfg.Auth.Keys = []config.APIKey{{Name: "client", SHA256: hex.EncodeToString(sum[:]), Roles: []string{"admin"}}}
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	raw, err := os.ReadFile(modelzoo.Path(modelzoo.Linear))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Registry.Register(t.Context(), "test", "linear", bytes.NewReader(raw), registry.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if err := g.Catalog.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}

	for _, script := range []string{"triton_http.py", "kserve_rest.py"} {
		t.Run(script, func(t *testing.T) {
			out, err := exec.Command(python, filepath.Join("testdata", "stockclients", script), g.Addr, key).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", script, err, out)
			}
			t.Logf("%s", out)
		})
	}
}
