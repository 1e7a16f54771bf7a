package serving_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/config"
	root "github.com/mlgate/mlgate/internal/gateway"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/telemetry"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving"
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

// gateway is a real mlgate, assembled by the composition root
// (internal/gateway) as `mlgate serve` assembles it, listening on a loopback
// port, with a client for it.
type gateway struct {
	t        testing.TB
	url      string
	grpcAddr string
	dataDir  string
	reg      *registry.Registry
	catalog  *serving.Catalog
	features *featurestore.Service
	router   *router.Service
	drift    *drift.Service
	tables   *tables.Writer
	server   *serving.Server
	// authn holds the gateway's keys, for a second server over its parts.
	authn  *auth.Authenticator
	log    *slog.Logger
	client *http.Client
	apiKey string
}

type gatewayOption func(*gatewayConfig)

type gatewayConfig struct {
	cfg       config.Config
	keys      []auth.Key
	stores    []string // online stores besides the embedded one
	shadowRun func() error
	clock     clock.Clock
	// tracing and metrics, when set, trace the requests and feature reads,
	// and record the metrics served at /metrics.
	tracing *telemetry.Tracing
	metrics *telemetry.Metrics
	log     *slog.Logger
}

// withShadowRunner replaces how shadow copies run.
func withShadowRunner(run func() error) gatewayOption {
	return func(c *gatewayConfig) { c.shadowRun = run }
}

// withStore adds a real online store ("redis" or "cassandra") from the test
// servers.
func withStore(name string) gatewayOption {
	return func(c *gatewayConfig) { c.stores = append(c.stores, name) }
}

// withRoleLimit holds the callers of role to rate requests per second,
// burst at once (auth.role_limits).
func withRoleLimit(role auth.Role, rate float64, burst int) gatewayOption {
	return func(c *gatewayConfig) {
		c.cfg.Auth.RoleLimits = append(c.cfg.Auth.RoleLimits, config.RoleLimit{Role: string(role), Rate: rate, Burst: burst})
	}
}

// withConfig edits the gateway's configuration: its server, limits and
// stores.
func withConfig(edit func(*config.Config)) gatewayOption {
	return func(c *gatewayConfig) { edit(&c.cfg) }
}

// withKeys accepts keys (auth.keys) and no caller without one.
func withKeys(keys ...auth.Key) gatewayOption {
	return func(c *gatewayConfig) { c.keys = keys }
}

func withMaxModelBytes(n int64) gatewayOption {
	return func(c *gatewayConfig) { c.cfg.Registry.MaxModelBytes = config.Size(n) }
}

// withClock runs the gateway's timers on c: drift windows, webhook
// backoffs and the canary controller.
func withClock(c clock.Clock) gatewayOption {
	return func(g *gatewayConfig) { g.clock = c }
}

// withTracing traces the gateway's requests and feature reads.
func withTracing(tr *telemetry.Tracing) gatewayOption {
	return func(c *gatewayConfig) { c.tracing = tr }
}

// withMetrics records the gateway's metrics in m, served at /metrics.
func withMetrics(m *telemetry.Metrics) gatewayOption {
	return func(c *gatewayConfig) { c.metrics = m }
}

// withLog logs to log instead of nowhere.
func withLog(log *slog.Logger) gatewayOption {
	return func(c *gatewayConfig) { c.log = log }
}

// startGateway starts mlgate through the composition root on a data
// directory of its own, and shuts it down when the test ends.
func startGateway(t testing.TB, opts ...gatewayOption) *gateway {
	t.Helper()
	c := gatewayConfig{cfg: config.Defaults(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg := &c.cfg
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.GRPC.Listen = "127.0.0.1:0"
	cfg.Registry.MaxModelBytes = 64 << 20
	cfg.Server.MaxBodyBytes = 1 << 20
	cfg.Server.ReadTimeout = config.Duration(10 * time.Second)
	cfg.Server.WriteTimeout = config.Duration(10 * time.Second)
	cfg.Server.IdleTimeout = config.Duration(time.Minute)
	cfg.Tables.PIIKey = "test-key"
	for _, o := range opts {
		o(&c)
	}
	for _, k := range c.keys {
		key := config.APIKey{Name: k.Name, SHA256: k.SHA256, Rate: k.Limit.Rate, Burst: k.Limit.Burst}
		for _, r := range k.Roles {
			key.Roles = append(key.Roles, string(r))
		}
		cfg.Auth.Keys = append(cfg.Auth.Keys, key)
	}
	for _, name := range c.stores {
		useStore(t, cfg, name)
	}
	authn, err := auth.New(c.keys)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := root.Start(t.Context(), *cfg, "test", c.log, root.WithClock(c.clock), root.WithTelemetry(c.metrics, c.tracing))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gw.Shutdown(context.Background()); err != nil {
			t.Errorf("shut the gateway down: %v", err)
		}
	})
	if c.shadowRun != nil {
		gw.Server.SetShadowRunnerForTest(c.shadowRun)
	}
	return &gateway{
		t: t, url: "http://" + gw.Addr, grpcAddr: gw.GRPCAddr, dataDir: cfg.DataDir, reg: gw.Registry, catalog: gw.Catalog, features: gw.Features,
		router: gw.Router, drift: gw.Drift, tables: gw.Tables, server: gw.Server, authn: authn, log: c.log,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second},
	}
}

// useStore configures a real Redis or Cassandra from the test servers, with
// keys of its own.
func useStore(t testing.TB, cfg *config.Config, name string) {
	t.Helper()
	unique := fmt.Sprintf("servingtest%d", time.Now().UnixNano())
	switch name {
	case "redis":
		addrs := testservers.Redis(t)
		if len(addrs) == 1 {
			cfg.OnlineStore.Redis.Addr = addrs[0]
		} else {
			cfg.OnlineStore.Redis.ClusterAddrs = addrs
		}
		cfg.OnlineStore.Redis.KeyPrefix = unique
	case "cassandra":
		c := &cfg.OnlineStore.Cassandra
		c.Hosts, c.Keyspace, c.Timeout = testservers.Cassandra(t), unique, config.Duration(30*time.Second)
		t.Cleanup(func() { dropKeyspace(t, c.Hosts, unique) })
	default:
		t.Fatalf("no store %q", name)
	}
}

// dropKeyspace drops a test's keyspace from the test Cassandra, through the
// driver: what the gateway's store made there is no longer the gateway's.
func dropKeyspace(t testing.TB, hosts []string, keyspace string) {
	cluster := gocql.NewCluster(hosts...)
	cluster.Timeout = 30 * time.Second
	s, err := cluster.CreateSession()
	if err != nil {
		t.Errorf("drop the test keyspace %s: %v", keyspace, err)
		return
	}
	defer s.Close()
	if err := s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec(); err != nil {
		t.Errorf("drop the test keyspace %s: %v", keyspace, err)
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

// register uploads a model from the zoo, validated (validation_status
// PASSED, which champion requires by default, and a canary promoted into
// it), and returns its version record.
func (g *gateway) register(name, file string) registry.Version {
	g.t.Helper()
	raw, err := os.ReadFile(modelzoo.Path(file))
	if err != nil {
		g.t.Fatal(err)
	}
	r := g.upload(name, raw, validated)
	if r.status != http.StatusCreated {
		g.t.Fatalf("register %s: %d %s", file, r.status, r.body)
	}
	var v registry.Version
	r.decode(g.t, &v)
	return v
}

// validated is the registration metadata of a version that passed its
// validation.
const validated = `{"tags": {"validation_status": "PASSED"}}`

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

// tableRows waits until every prediction answered so far is recorded, and
// returns the rows of the inference table.
func (g *gateway) tableRows() []tables.Row {
	g.t.Helper()
	ctx := context.Background()
	if err := g.server.FlushRecords(ctx); err != nil {
		g.t.Fatal(err)
	}
	var rows []tables.Row
	if err := tables.Dir(g.tablesDir()).ReadRows(ctx, tables.Filter{}, func(r tables.Row) error {
		rows = append(rows, r)
		return nil
	}); err != nil {
		g.t.Fatal(err)
	}
	return rows
}
