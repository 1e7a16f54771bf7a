package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/router"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(dataDir string) config.Config {
	cfg := config.Defaults()
	cfg.DataDir = dataDir
	cfg.Listen = "127.0.0.1:0"
	return cfg
}

// TestDemo runs what `make run` runs: the gateway with the demo model and
// the admin key the demo makes, then the request of the curl it prints. A
// restart on the same data directory reuses the key and serves the same
// version without registering it again.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	var firstKey string
	for round := range 2 {
		cfg := testConfig(dir)
		key, err := DemoKey(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(key) != 64 || round == 1 && key != firstKey {
			t.Fatalf("round %d: demo key %q (first %q)", round, key, firstKey)
		}
		firstKey = key
		g, err := Start(t.Context(), cfg, "test", quiet())
		if err != nil {
			t.Fatal(err)
		}
		if err := g.RegisterDemo(t.Context()); err != nil {
			t.Fatal(err)
		}
		url := "http://" + g.Addr + "/v2/models/" + DemoModel + "/infer"
		resp, err := http.Post(url, "application/json", strings.NewReader(DemoRequest))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("round %d: without the key: %s, want 401", round, resp.Status)
		}
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(DemoRequest))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(req)
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
		req, _ = http.NewRequest(http.MethodPost, "http://"+g.Addr+"/v1/endpoints/"+DemoModel+"/predict", strings.NewReader(DemoEndpointRequest))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"variant":"champion"`) {
			t.Errorf("round %d: the demo endpoint answered %d %s", round, resp.StatusCode, body)
		}
		e, _, err := g.Router.Get(DemoModel)
		if err != nil || len(e.Policy.Variants) != 1 || e.Policy.Variants[0].Model != DemoModel+"@champion" || e.Revision != 1 {
			t.Errorf("round %d: demo endpoint %+v, %v", round, e, err)
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
		{"open auth on a public gRPC address", func(c *config.Config) { c.GRPC.Listen = ":0" }, "API keys are required when grpc.listen (:0) is not a loopback address"},
		{"gRPC address taken", func(c *config.Config) { c.GRPC.Listen = taken.Addr().String() }, "listen (grpc.listen: "},
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

func call(t *testing.T, g *Gateway, method, path, contentType string, body io.Reader) string {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+g.Addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return string(raw)
}

// TestFeatureMetrics checks that feature reads show in /metrics: lookup
// latency per store, value statuses, value age, cache hits and misses, and
// defaults, per view.
func TestFeatureMetrics(t *testing.T) {
	g, err := Start(t.Context(), testConfig(t.TempDir()), "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	call(t, g, "PUT", "/v1/feature-views/user", "application/json", strings.NewReader(
		`{"entities": ["user_id"], "features": [{"name": "age", "type": "float"}, {"name": "visits", "type": "int"}], "cache_ttl": "1m"}`))
	call(t, g, "POST", "/v1/feature-views/user/rows", "application/json", strings.NewReader(`{"rows": [{"user_id": "u1", "age": 40, "visits": 2}]}`))
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("metadata", `{"feature_spec": {"entities": ["user_id"], "inputs": {"a": ["user:age", "request:x", "request:y"], "b": ["user:visits", "request:z"]}}}`)
	fw, _ := mw.CreateFormFile("model", "m.onnx")
	raw, _ := os.ReadFile(modelzoo.Path(modelzoo.MultiInput))
	fw.Write(raw)
	mw.Close()
	call(t, g, "POST", "/v1/models/scorer/versions", mw.FormDataContentType(), &body)
	for range 2 {
		call(t, g, "POST", "/v1/models/scorer/predict", "application/json", strings.NewReader(
			`{"entities": {"user_id": ["u1", "u2"]}, "request": {"x": [1, 2], "y": [3, 4], "z": [5, 6]}}`))
	}
	metrics := call(t, g, "GET", "/metrics", "", nil)
	for _, want := range []string{
		`mlgate_feature_lookup_duration_seconds_count{store="embedded"} 1`,
		`mlgate_feature_values_total{status="PRESENT",view="user"} 4`,
		`mlgate_feature_values_total{status="NOT_FOUND",view="user"} 4`,
		`mlgate_feature_cache_requests_total{result="hit",view="user"} 2`,
		`mlgate_feature_cache_requests_total{result="miss",view="user"} 2`,
		`mlgate_feature_value_age_seconds_count{view="user"} 2`,
		`mlgate_feature_defaults_total{view="user"} 4`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(metrics)
	}
}

// TestRedisViews runs a view held in the real Redis end to end: rows in,
// online read and prediction out.
func TestRedisViews(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.OnlineStore.Redis.Addr = testservers.Redis(t)[0]
	cfg.OnlineStore.Redis.KeyPrefix = fmt.Sprintf("gwtest%d", time.Now().UnixNano())
	cfg.OnlineStore.Default = "redis"
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	view := call(t, g, "PUT", "/v1/feature-views/user", "application/json", strings.NewReader(
		`{"entities": ["user_id"], "features": [{"name": "age", "type": "float"}]}`))
	if !strings.Contains(view, `"store":"redis"`) {
		t.Fatalf("view not in redis: %s", view)
	}
	call(t, g, "POST", "/v1/feature-views/user/rows", "application/json", strings.NewReader(`{"rows": [{"user_id": "u1", "age": 40.5}]}`))
	got := call(t, g, "POST", "/v1/features/online", "application/json", strings.NewReader(`{"features": ["user:age"], "entities": {"user_id": ["u1", "u2"]}}`))
	if !strings.Contains(got, `"values":[40.5],"statuses":["PRESENT"]`) || !strings.Contains(got, `"statuses":["NOT_FOUND"]`) {
		t.Errorf("online read: %s", got)
	}
	call(t, g, "DELETE", "/v1/feature-views/user", "", nil)
}

// TestCanarySurvivesRestart starts a canary, restarts the gateway on the
// same data directory, and finds the canary where it was; the endpoint's
// SRM flag shows in /metrics.
func TestCanarySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	g, err := Start(t.Context(), testConfig(dir), "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("model", "m.onnx")
	raw, _ := os.ReadFile(modelzoo.Path(modelzoo.Linear))
	fw.Write(raw)
	mw.Close()
	call(t, g, "POST", "/v1/models/linear/versions", mw.FormDataContentType(), bytes.NewReader(body.Bytes()))
	call(t, g, "POST", "/v1/models/linear/versions", mw.FormDataContentType(), bytes.NewReader(body.Bytes()))
	// Validated, as the canary's promotion into champion requires.
	call(t, g, "PUT", "/v1/models/linear/versions/2/tags/validation_status", "application/json", strings.NewReader(`{"value": "PASSED"}`))
	call(t, g, "PUT", "/v1/endpoints/churn", "application/json", strings.NewReader(`{"variants": [{"name": "control", "model": "linear/1", "weight": 100}]}`))
	call(t, g, "POST", "/v1/endpoints/churn/canary", "application/json", strings.NewReader(`{"model": "linear/2", "steps": [10, 100], "interval": "1h"}`))
	g.Shutdown(context.Background())

	g, err = Start(t.Context(), testConfig(dir), "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	var e router.Endpoint
	json.Unmarshal([]byte(call(t, g, "GET", "/v1/endpoints/churn", "", nil)), &e)
	if e.Canary == nil || e.Canary.State != "running" || e.Canary.Step != 0 || e.Revision != 2 || len(e.Policy.Variants) != 2 || e.Policy.Variants[1].Weight != 10 {
		t.Errorf("after a restart: %+v", e)
	}
	if m := call(t, g, "GET", "/metrics", "", nil); !strings.Contains(m, `mlgate_endpoint_srm{endpoint="churn"} 0`) {
		t.Errorf("/metrics lacks the SRM flag of churn")
	}
}
