package gateway

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/testservers"
)

// TestFleetRefusesEmbeddedViews: with the control plane in PostgreSQL, a
// feature view on the embedded store (one replica's own file, which the
// others cannot read) is refused with a 400 that says why, and the views on
// Redis are kept by the fleet: a second replica on the database serves them.
func TestFleetRefusesEmbeddedViews(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.ControlPlane.Store = "postgres"
	cfg.ControlPlane.Postgres.DSN = testservers.Postgres(t)
	cfg.ControlPlane.ReplicaID = "r1"
	cfg.OnlineStore.Default = "redis"
	cfg.OnlineStore.Redis.Addr = testservers.Redis(t)[0]
	cfg.OnlineStore.Redis.KeyPrefix = "fleet-views-" + rand.Text()
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())

	put := func(g *Gateway, view, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, "http://"+g.Addr+"/v1/feature-views/"+view, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	const features = `"entities": ["user_id"], "features": [{"name": "age", "type": "double"}]`
	status, body := put(g, "local", `{`+features+`, "store": "embedded"}`)
	if status != 400 || !strings.Contains(body, `store \"embedded\" cannot be used`) || !strings.Contains(body, "one replica's own file") {
		t.Errorf("a view on the embedded store in a fleet: %d %s; want 400 saying why", status, body)
	}
	if status, body := put(g, "shared", `{`+features+`}`); status/100 != 2 {
		t.Fatalf("a view on the default store: %d %s", status, body)
	}

	cfg2 := cfg
	cfg2.DataDir, cfg2.ControlPlane.ReplicaID = t.TempDir(), "r2"
	g2, err := Start(t.Context(), cfg2, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Shutdown(context.Background())
	if v, err := g2.Features.View("shared"); err != nil || v.Store != "redis" {
		t.Errorf("the second replica's view shared: %v, %v; want it on redis", v, err)
	}
}

// TestFleetSharesThePIIKey: replicas without inference_tables.pii_key,
// starting at once, hash PII with one key, made by the first and kept in the
// control plane, so that one person's rows join across replicas.
func TestFleetSharesThePIIKey(t *testing.T) {
	dsn := testservers.Postgres(t)
	keys := make([][]byte, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			cfg := testConfig(t.TempDir())
			cfg.ControlPlane = config.ControlPlane{Store: "postgres", Postgres: config.Postgres{DSN: dsn}, ReplicaID: fmt.Sprintf("r%d", i)}
			cp := &controlPlane{}
			g := &Gateway{log: quiet()}
			defer g.closeAll()
			if errs[i] = g.openPostgres(t.Context(), cfg, cp); errs[i] != nil {
				return
			}
			keys[i], errs[i] = piiKey(t.Context(), cfg, cp)
		})
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if len(keys[i]) != 64 || string(keys[i]) != string(keys[0]) {
			t.Errorf("replica %d's PII key %q; want the 64 hex characters replica 0 has, %q", i, keys[i], keys[0])
		}
	}
}
