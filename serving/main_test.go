package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
	driftbolt "github.com/mlgate/mlgate/drift/bolt"
	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/featurestore/cassandra"
	"github.com/mlgate/mlgate/featurestore/embedded"
	"github.com/mlgate/mlgate/featurestore/redis"
	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/changes"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/telemetry"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/registry/bolt"
	"github.com/mlgate/mlgate/registry/localfs"
	"github.com/mlgate/mlgate/router"
	routerbolt "github.com/mlgate/mlgate/router/bolt"
	"github.com/mlgate/mlgate/serving/onnx"
	"github.com/mlgate/mlgate/serving/tables"
)

var sessionOpts = onnx.Options{IntraOpThreads: 1, InterOpThreads: 1}

func TestMain(m *testing.M) {
	lib, err := onnx.FindLibrary("")
	if err == nil {
		err = onnx.Init(lib)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "serving tests need ONNX Runtime (run them through `make test`):", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// gateway is a real mlgate stack (bbolt, disk artifacts, ONNX Runtime, fiber)
// listening on a loopback port, with a client for it.
type gateway struct {
	t        testing.TB
	url      string
	dataDir  string
	reg      *registry.Registry
	catalog  *Catalog
	features *featurestore.Service
	router   *router.Service
	drift    *drift.Service
	tables   *tables.Writer
	server   *Server
	authn    *auth.Authenticator
	log      *slog.Logger
	client   *http.Client
	apiKey   string
}

type gatewayOption func(*gatewayConfig)

type gatewayConfig struct {
	keys          []auth.Key
	maxModelBytes int64
	stores        []string // online stores besides the embedded one
	shadowRun     func(o *observation) error
	limiter       *auth.Limiter
	options       func(*Options) // edits the server's options
	// tracing, metrics and log, when set, trace the requests and feature
	// reads, record and serve the server's metrics, and log (see
	// trace_test.go).
	tracing *telemetry.Tracing
	metrics *telemetry.Metrics
	log     *slog.Logger
}

// withShadowRunner replaces how shadow copies run.
func withShadowRunner(run func(o *observation) error) gatewayOption {
	return func(c *gatewayConfig) { c.shadowRun = run }
}

// withStore adds a real online store ("redis" or "cassandra") from the test
// servers.
func withStore(name string) gatewayOption {
	return func(c *gatewayConfig) { c.stores = append(c.stores, name) }
}

// withLimiter holds callers to the rates of l.
func withLimiter(l *auth.Limiter) gatewayOption {
	return func(c *gatewayConfig) { c.limiter = l }
}

// withOptions edits the server's options.
func withOptions(edit func(*Options)) gatewayOption {
	return func(c *gatewayConfig) { c.options = edit }
}

func withKeys(keys ...auth.Key) gatewayOption {
	return func(c *gatewayConfig) { c.keys = keys }
}

func withMaxModelBytes(n int64) gatewayOption {
	return func(c *gatewayConfig) { c.maxModelBytes = n }
}

func startGateway(t testing.TB, opts ...gatewayOption) *gateway {
	t.Helper()
	cfg := gatewayConfig{maxModelBytes: 64 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	dir := t.TempDir()
	meta, err := bolt.Open(filepath.Join(dir, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	artifacts, err := localfs.New(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.log != nil {
		log = cfg.log
	}
	hub := changes.New(log)
	var reg *registry.Registry
	a, err := auth.New(cfg.keys)
	if err != nil {
		t.Fatal(err)
	}
	fstore, err := embedded.Open(filepath.Join(dir, "features.db"))
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]featurestore.OnlineStore{"embedded": fstore}
	for _, name := range cfg.stores {
		stores[name] = openStore(t, name)
	}
	features, err := featurestore.NewService(t.Context(), fstore, featurestore.Options{
		Stores: stores, DefaultStore: "embedded", CacheEntries: 1000, Tracer: cfg.tracer("featurestore"),
		Users:   func(ctx context.Context) ([]featurestore.SpecUse, error) { return SpecUsers(reg)(ctx) },
		Changes: hub})
	if err != nil {
		t.Fatal(err)
	}
	reg = registry.New(meta, artifacts, onnx.Inspector{Options: sessionOpts}, cfg.maxModelBytes,
		registry.WithSpecChecker(SpecChecker(features)), registry.WithBaselineChecker(BaselineChecker()), registry.WithChanges(hub))
	catalog := NewCatalog(reg, func(path string) (*onnx.Session, error) { return onnx.LoadWarm(path, sessionOpts) }, FeaturePlanner(features), log)
	if err := catalog.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	hub.Subscribe("catalog", catalog.OnChange, changes.Model, changes.View)
	routes, err := routerbolt.Open(filepath.Join(dir, "endpoints.db"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := router.NewService(t.Context(), routes, RouterModels(reg, catalog), reg.RecordAudit, log, router.WithChanges(hub))
	if err != nil {
		t.Fatal(err)
	}
	tablesDir := filepath.Join(dir, "inference")
	tw, err := tables.Open(tables.Options{Dir: tablesDir})
	if err != nil {
		t.Fatal(err)
	}
	monitors, err := driftbolt.Open(filepath.Join(dir, "monitors.db"))
	if err != nil {
		t.Fatal(err)
	}
	notifier := drift.NewNotifier(drift.NotifierOptions{BaseDelay: 10 * time.Millisecond, Log: log})
	heaviest := func(e string) (string, string, bool) {
		r, ok := rs.Route(e)
		if !ok {
			return "", "", false
		}
		model, version := refArgs(r.Model(0))
		return model, version, true
	}
	ds, err := drift.NewService(t.Context(), monitors, DriftBaselines(catalog, heaviest, tablesDir), notifier,
		func(ctx context.Context, spec drift.MonitorSpec, a *drift.Alert) {
			reg.RecordAudit(ctx, "drift-monitor", "drift_detected", spec.Endpoint, nil, a)
		}, log, drift.WithChanges(hub))
	if err != nil {
		t.Fatal(err)
	}
	hub.Subscribe("monitors", func(ctx context.Context, e changes.Event) error { return ds.ModelChanged(ctx, e.Name) }, changes.Model)
	srvOpts := Options{MaxBodyBytes: 1 << 20, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute, Version: "test"}
	if cfg.options != nil {
		cfg.options(&srvOpts)
	}
	srv := New(srvOpts,
		Deps{Registry: reg, Catalog: catalog, Features: features, Auth: a, Log: log, Router: rs,
			Tables: tw, TablesDir: tablesDir, PIIKey: []byte("test-key"), Drift: ds, Limiter: cfg.limiter,
			Tracer: cfg.tracer("serving"), Metrics: cfg.metricsHandler()})
	if cfg.shadowRun != nil {
		srv.shadows.close(0)
		srv.shadows = newShadows(cfg.shadowRun, srv.observe, featurestore.Breaker{}, log)
	}
	if cfg.metrics != nil {
		if err := srv.RegisterMetrics(cfg.metrics.Meter("serving")); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		rs.Close()
		ds.Close()
		srv.Shutdown(context.Background())
		tw.Close(context.Background())
		notifier.Close(context.Background())
		monitors.Close()
		routes.Close()
		catalog.Close()
		meta.Close()
		features.Close()
	})
	return &gateway{
		t: t, url: "http://" + ln.Addr().String(), dataDir: dir, reg: reg, catalog: catalog, features: features, router: rs, drift: ds, tables: tw, server: srv, authn: a, log: log,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second},
	}
}

// response is a decoded answer.
type response struct {
	status int
	body   []byte
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errorMessage returns the "error" field of an error answer.
func (r response) errorMessage(t testing.TB) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	r.decode(t, &e)
	if e.Error == "" {
		t.Fatalf("answer %d %s has no error message", r.status, r.body)
	}
	return e.Error
}

func (g *gateway) do(method, path, contentType string, body []byte) response {
	g.t.Helper()
	req, err := http.NewRequest(method, g.url+path, bytes.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if g.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+g.apiKey)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: raw}
}

func (g *gateway) json(method, path string, body any) response {
	g.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		g.t.Fatal(err)
	}
	return g.do(method, path, "application/json", raw)
}

// upload sends a registration with the given model bytes and metadata.
func (g *gateway) upload(name string, model []byte, metadata string) response {
	g.t.Helper()
	ct, body := multipartBody(model, metadata)()
	return g.do(http.MethodPost, "/v1/models/"+name+"/versions", ct, body)
}

// register uploads a model from the zoo and returns its version record.
func (g *gateway) register(name, file string) registry.Version {
	g.t.Helper()
	raw, err := os.ReadFile(modelzoo.Path(file))
	if err != nil {
		g.t.Fatal(err)
	}
	r := g.upload(name, raw, "")
	if r.status != http.StatusCreated {
		g.t.Fatalf("register %s: %d %s", file, r.status, r.body)
	}
	var v registry.Version
	r.decode(g.t, &v)
	return v
}

func (g *gateway) setAlias(name, alias string, version int) {
	g.t.Helper()
	r := g.json(http.MethodPut, "/v1/models/"+name+"/aliases/"+alias, map[string]int{"version": version})
	if r.status != http.StatusOK {
		g.t.Fatalf("set alias %s of %s to %d: %d %s", alias, name, version, r.status, r.body)
	}
}

// v2Input is one input of a V2 request.
type v2Input struct {
	Name     string  `json:"name"`
	Shape    []int64 `json:"shape"`
	Datatype string  `json:"datatype"`
	Data     any     `json:"data"`
}

type v2Output struct {
	Name     string          `json:"name"`
	Datatype string          `json:"datatype"`
	Shape    []int64         `json:"shape"`
	Data     json.RawMessage `json:"data"`
}

type v2Response struct {
	ModelName    string     `json:"model_name"`
	ModelVersion string     `json:"model_version"`
	ID           string     `json:"id"`
	Outputs      []v2Output `json:"outputs"`
}

func (g *gateway) infer(path string, inputs ...v2Input) (v2Response, response) {
	g.t.Helper()
	r := g.json(http.MethodPost, path, map[string]any{"inputs": inputs})
	var out v2Response
	if r.status == http.StatusOK {
		r.decode(g.t, &out)
	}
	return out, r
}

// direct runs a zoo model through ONNX Runtime without mlgate, for expected
// answers.
func direct(t testing.TB, file string, inputs ...onnx.Tensor) []onnx.Tensor {
	t.Helper()
	s, err := onnx.Load(modelzoo.Path(file), sessionOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(inputs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// openStore connects to a real Redis or Cassandra with keys of its own.
func openStore(t testing.TB, name string) featurestore.OnlineStore {
	t.Helper()
	unique := fmt.Sprintf("servingtest%d", time.Now().UnixNano())
	var (
		s   featurestore.OnlineStore
		err error
	)
	switch name {
	case "redis":
		s, err = redis.New(t.Context(), redis.Options{Addrs: testservers.Redis(t), KeyPrefix: unique})
	case "cassandra":
		var cs *cassandra.Store
		cs, err = cassandra.New(t.Context(), cassandra.Options{Hosts: testservers.Cassandra(t), Keyspace: unique, Timeout: 30 * time.Second})
		if err == nil {
			t.Cleanup(func() { cs.DropKeyspace(context.Background()) })
		}
		s = cs
	default:
		t.Fatalf("no store %q", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}
