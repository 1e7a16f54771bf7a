package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/gateway"
	"github.com/mlgate/mlgate/internal/testservers"
)

// TestImportFeast has Feast apply and materialize a repository, imports its
// project with `mlgate features import-feast` into a running gateway, and
// reads the imported view: its definition is Feast's, and it serves what
// Feast wrote.
func TestImportFeast(t *testing.T) {
	repo := testservers.NewFeastRepo(t, "../../featurestore/feast/testdata/feast_repo.py", 5)
	cfg := config.Defaults()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.OnlineStore.Redis.Addr = repo.Redis
	g, err := gateway.Start(t.Context(), cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(t.Context())
	server := "http://" + g.Addr
	registry := filepath.Join(repo.Dir, "registry.db")

	out, errOut, err := capture(t, "features", "import-feast", "--registry", registry, "--project", repo.Project, "--server", server)
	if err != nil {
		t.Fatalf("import-feast: %v\n%s%s", err, out, errOut)
	}
	if want := "imported feast view driver_stats of project " + repo.Project + ": 1 entity (driver_id), 6 features, ttl 168h0m0s\n"; out != want {
		t.Errorf("import-feast printed %q, want %q", out, want)
	}
	var v struct {
		Entities []string `json:"entities"`
		Features []struct{ Name, Type string }
		TTL      string `json:"ttl"`
		Store    string `json:"store"`
		Feast    struct {
			Project     string   `json:"project"`
			EntityTypes []string `json:"entity_types"`
		} `json:"feast"`
	}
	get(t, server+"/v1/feature-views/driver_stats", &v)
	if got := jsonString(v); got != `{"entities":["driver_id"],"Features":[{"Name":"trips","Type":"int"},{"Name":"rating","Type":"float"},{"Name":"score","Type":"double"},{"Name":"name","Type":"string"},{"Name":"active","Type":"bool"},{"Name":"embedding","Type":"float_list"}],"ttl":"168h0m0s","store":"feast-redis","feast":{"project":"`+repo.Project+`","entity_types":["int64"]}}` {
		t.Errorf("imported view: %s", got)
	}

	resp, err := http.Post(server+"/v1/features/online", "application/json", strings.NewReader(
		`{"features": ["driver_stats:trips", "driver_stats:name"], "entities": {"driver_id": ["3"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(raw), `"values":[-491,"driver-3-ø"],"statuses":["PRESENT","PRESENT"]`) {
		t.Errorf("online read of the imported view: %s", raw)
	}

	_, _, err = capture(t, "features", "import-feast", "--registry", registry, "--project", "elsewhere", "--server", server)
	if err == nil || !strings.Contains(err.Error(), `no project "elsewhere"`) {
		t.Errorf("import of a missing project: %v", err)
	}
}

func get(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestFeaturesApplyFeast applies a views file with a view of store
// feast-redis: its feast block reaches the PUT, and is decoded as strictly
// as the rest.
func TestFeaturesApplyFeast(t *testing.T) {
	g := newFakeGateway(t)
	const views = `views:
  - name: drivers
    entities: [driver_id]
    features: [{name: trips, type: int}]
    ttl: 168h
    store: feast-redis
    feast:
      project: rides
      view: driver_hourly_stats
      entity_types: [int64]
`
	if _, _, err := capture(t, "features", "apply", "-f", writeFile(t, "views.yaml", views), "--server", g.srv.URL); err != nil {
		t.Fatal(err)
	}
	want := `[{"entities":["driver_id"],"feast":{"entity_types":["int64"],"project":"rides","view":"driver_hourly_stats"},` +
		`"features":[{"name":"trips","type":"int"}],"name":"drivers","store":"feast-redis","ttl":"168h"}]`
	if got, _ := json.Marshal(g.puts); string(got) != want {
		t.Errorf("PUT bodies:\n got  %s\n want %s", got, want)
	}
	for _, c := range []struct{ yaml, want string }{
		{strings.Replace(views, "      view:", "      veiw:", 1), `unknown key "views[0].feast.veiw" (line 9)`},
		{strings.Replace(views, "    feast:\n      project: rides\n", "    feast:\n", 1), "feast.project"},
		{strings.Replace(views, "store: feast-redis", "store: redis", 1), `not one in store "redis"`},
	} {
		_, _, err := capture(t, "features", "apply", "-f", writeFile(t, "views.yaml", c.yaml), "--server", g.srv.URL)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want an error with %q", err, c.want)
		}
	}
}
