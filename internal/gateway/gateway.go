// Package gateway assembles a running mlgate from its configuration: the
// ONNX Runtime library, the registry's stores in the data directory, the
// catalog of loaded sessions and the HTTP server. `mlgate serve`, the
// benchmark harness and end-to-end tests all start mlgate through it, so they
// run the same thing.
package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/featurestore/cassandra"
	"github.com/mlgate/mlgate/featurestore/feast"
	"github.com/mlgate/mlgate/featurestore/redis"
	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/changes"
	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/recovery"
	"github.com/mlgate/mlgate/internal/telemetry"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/registry/mlflow"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving"
	"github.com/mlgate/mlgate/serving/grpcv2"
	"github.com/mlgate/mlgate/serving/onnx"
	"github.com/mlgate/mlgate/serving/tables"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Gateway is a running mlgate.
type Gateway struct {
	// Addr is the address the server listens on.
	Addr string
	// GRPCAddr is the address the gRPC server listens on; "" when it is
	// off (grpc.listen).
	GRPCAddr string
	Registry *registry.Registry
	Catalog  *serving.Catalog
	Features *featurestore.Service
	Router   *router.Service
	Server   *serving.Server
	// Tables writes the inference tables; nil when they are off.
	Tables *tables.Writer
	Drift  *drift.Service

	notifier *drift.Notifier
	tracing  *telemetry.Tracing
	// ownTracing: the gateway made tracing, and shuts it down.
	ownTracing bool
	auth       *auth.Authenticator
	limiter    *auth.Limiter
	listen     string // as configured at Start
	metrics    *telemetry.Metrics
	clock      clock.Clock
	closers    []func() error // the stores, in the order they were opened
	stopMirror func()         // stops the MLflow mirror; nil when there is none
	served     chan error
	log        *slog.Logger
}

// Option sets a part of the gateway that configuration does not: what
// tests and the benchmark harness give it.
type Option func(*Gateway)

// WithClock runs the gateway's timers on c: drift windows and retries,
// webhook backoffs, the canary controller and its intervals.
func WithClock(c clock.Clock) Option { return func(g *Gateway) { g.clock = clock.Or(c) } }

// WithTelemetry records the gateway's metrics in m and its spans with tr,
// instead of those the configuration makes; either may be nil. The caller
// shuts tr down.
func WithTelemetry(m *telemetry.Metrics, tr *telemetry.Tracing) Option {
	return func(g *Gateway) { g.metrics, g.tracing = m, tr }
}

// Start opens the stores, starts listening (so that liveness answers while
// models load), then loads every registered version. version is what GET /v2
// reports.
func Start(ctx context.Context, cfg config.Config, version string, log *slog.Logger, options ...Option) (_ *Gateway, err error) {
	g := &Gateway{served: make(chan error, 1), log: log, clock: clock.Real()}
	for _, o := range options {
		o(g)
	}
	defer func() {
		if err != nil {
			g.closeAll()
		}
	}()
	g.listen = cfg.Listen
	authn, limiter, err := newAuthenticator(cfg, log)
	if err != nil {
		return nil, err
	}
	lib, err := onnx.FindLibrary(cfg.ONNX.Library)
	if err != nil {
		return nil, err
	}
	if err := onnx.Init(lib); err != nil {
		return nil, err
	}
	log.Info("ONNX Runtime loaded", "version", onnx.Version(), "library", lib)

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory (data_dir): %w", err)
	}
	cp, err := g.openControlPlane(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if g.metrics == nil {
		if g.metrics, err = telemetry.New(); err != nil {
			return nil, err
		}
	}
	metrics := g.metrics
	if err := metrics.RegisterBuildInfo(version, onnx.Version()); err != nil {
		return nil, err
	}
	// Panics of the request handlers and of the jobs that follow a request
	// (recording it, copying it to a shadow, writing its table row) are
	// reported at 0 until the first.
	recovery.Known(serving.PanicSites...)
	if err := recovery.RegisterMetrics(metrics.Meter("recovery")); err != nil {
		return nil, err
	}
	if g.tracing == nil {
		g.ownTracing = true
		g.tracing, err = telemetry.NewTracing(ctx, telemetry.TraceOptions{
			ServiceName: cfg.Telemetry.ServiceName, SampleRatio: cfg.Telemetry.SampleRatio, OTLPEndpoint: cfg.Telemetry.OTLPEndpoint,
		})
		if err != nil {
			return nil, err
		}
	}
	opts := onnx.Options{IntraOpThreads: cfg.ONNX.IntraOpThreads, InterOpThreads: cfg.ONNX.InterOpThreads}
	// The change hub: each domain publishes what it commits; the catalog
	// (with its feature plans), the routes and the monitors subscribe
	// below, once they exist.
	hub := changes.New(log)
	// The registry and the feature store check each other's changes: the
	// feature store asks which versions read a view through reg, which is
	// made next.
	var reg *registry.Registry
	features, err := openFeatures(ctx, cfg, cp, metrics, g.tracing, featurestore.Options{
		Users: func(ctx context.Context) ([]featurestore.SpecUse, error) { return serving.SpecUsers(reg)(ctx) },
		Audit: func(ctx context.Context, actor, action, view string, before, after any) error {
			return reg.RecordViewAudit(ctx, actor, action, view, before, after)
		},
		Changes: hub,
	}, log)
	if err != nil {
		return nil, err
	}
	g.Features = features
	g.closers = append(g.closers, features.Close)
	// A view changed by another replica: the feature store reloads it first,
	// then the catalog compiles its plans against it.
	hub.Subscribe("features", func(ctx context.Context, e changes.Event) error { return features.Reload(ctx, e.Name) }, changes.View)
	reg = registry.New(cp.meta, cp.artifacts, onnx.Inspector{Options: opts}, int64(cfg.Registry.MaxModelBytes),
		registry.WithSpecChecker(serving.SpecChecker(features)), registry.WithBaselineChecker(serving.BaselineChecker()),
		registry.WithChanges(hub), registry.WithProtectedAliases(protectedAliases(cfg)))
	if err := reg.RegisterMetrics(metrics.Meter("registry")); err != nil {
		return nil, err
	}
	catalog := serving.NewCatalog(reg, func(path string) (*onnx.Session, error) { return onnx.LoadWarm(path, opts) },
		serving.FeaturePlanner(features), log)
	hub.Subscribe("catalog", catalog.OnChange, changes.Model, changes.View)
	g.Registry, g.Catalog = reg, catalog
	rs, err := router.NewService(ctx, cp.routes, serving.RouterModels(reg, catalog), reg.RecordAudit, log,
		append(cp.routerOptions(), router.WithClock(g.clock), router.WithChanges(hub))...)
	if err != nil {
		return nil, err
	}
	hub.Subscribe("routes", func(ctx context.Context, e changes.Event) error { return rs.Reload(ctx, e.Name) }, changes.Endpoint)
	if err := rs.RegisterMetrics(metrics.Meter("router")); err != nil {
		return nil, err
	}
	g.Router = rs
	g.auth, g.limiter = authn, limiter
	deps := serving.Deps{Registry: reg, Catalog: catalog, Features: features, Auth: authn, Log: log, Metrics: metrics.Handler(), Router: rs, Limiter: limiter}
	deps.Tracer, deps.Propagator = g.tracing.Tracer("serving"), g.tracing.Propagator()
	if cfg.Tables.Enabled {
		if deps.PIIKey, err = piiKey(ctx, cfg, cp); err != nil {
			return nil, err
		}
		t := cfg.Tables
		g.Tables, err = tables.Open(tables.Options{
			Dir: cfg.TablesDir(), Replica: cp.tablesReplica(), MaxFileBytes: int64(t.MaxFileBytes), MaxFileAge: time.Duration(t.MaxFileAge),
			FlushInterval: time.Duration(t.FlushInterval), QueueSize: t.QueueSize, Spill: t.Spill, Log: log, Clock: g.clock,
		})
		if err != nil {
			return nil, fmt.Errorf("inference tables: %w", err)
		}
		deps.Tables, deps.TablesDir = g.Tables, cfg.TablesDir()
	}
	tablesDir := cfg.TablesDir()
	g.notifier = drift.NewNotifier(drift.NotifierOptions{Log: log, Clock: g.clock})
	detected, err := metrics.Meter("drift").Int64Counter("mlgate_drift_detected",
		metric.WithDescription("Drift alerts raised, by monitor."))
	if err != nil {
		return nil, err
	}
	onAlert := func(ctx context.Context, spec drift.MonitorSpec, a *drift.Alert) {
		detected.Add(ctx, 1, metric.WithAttributes(attribute.String("monitor", spec.Name)))
		if err := reg.RecordAudit(ctx, "drift-monitor", "drift_detected", spec.Endpoint, nil, a); err != nil {
			log.Error("record drift alert", "monitor", spec.Name, "err", err)
		}
	}
	ds, err := drift.NewService(ctx, cp.monitors, serving.DriftBaselines(catalog, heaviestVariant(rs), tablesDir), g.notifier, onAlert, log,
		append(cp.driftOptions(), drift.WithClock(g.clock), drift.WithChanges(hub))...)
	if err != nil {
		return nil, err
	}
	// Each monitor's mlgate_drift_detected_total starts at 0, so that it has
	// a series before its first alert: those loaded now, and those created
	// or reloaded later (after "monitors" below has applied the change).
	zeroDetected := func(ctx context.Context, name string) {
		if _, err := ds.Get(name); err == nil {
			detected.Add(ctx, 0, metric.WithAttributes(attribute.String("monitor", name)))
		}
	}
	for _, m := range ds.List() {
		zeroDetected(ctx, m.Spec().Name)
	}
	hub.Subscribe("monitors", func(ctx context.Context, e changes.Event) error {
		switch e.Kind {
		case changes.Model:
			return ds.ModelChanged(ctx, e.Name)
		case changes.Endpoint:
			return ds.EndpointChanged(ctx, e.Name)
		}
		return ds.Reload(ctx, e.Name)
	}, changes.Model, changes.Endpoint, changes.Monitor)
	hub.Subscribe("drift-metrics", func(ctx context.Context, e changes.Event) error {
		zeroDetected(ctx, e.Name)
		return nil
	}, changes.Monitor)
	g.Drift = ds
	deps.Drift = ds
	g.Server = serving.New(serving.Options{
		MaxBodyBytes:  int64(cfg.Server.MaxBodyBytes),
		MaxBodyMemory: int64(cfg.Server.MaxBodyMemory),
		DataDir:       cfg.DataDir,
		ReadTimeout:   time.Duration(cfg.Server.ReadTimeout),
		WriteTimeout:  time.Duration(cfg.Server.WriteTimeout),
		IdleTimeout:   time.Duration(cfg.Server.IdleTimeout),
		Version:       version,
		DrainDelay:    time.Duration(cfg.Server.DrainDelay),
		// Request limits: over one is a 400 or 413 that names it.
		MaxRows:           cfg.Limits.MaxRows,
		MaxTensorElements: cfg.Limits.MaxTensorElements,
		MaxStringBytes:    cfg.Limits.MaxStringBytes,
		// Deadlines and breakers: see featurestore.Breaker and serving.Options.
		RequestTimeout:    time.Duration(cfg.Server.RequestTimeout),
		MaxRequestTimeout: time.Duration(cfg.Server.MaxRequestTimeout),
		Breaker:           breakerOptions(cfg),
	}, deps)
	if err := g.Server.RegisterMetrics(metrics.Meter("serving")); err != nil {
		return nil, err
	}

	ln, err := listen(cfg)
	if err != nil {
		return nil, err
	}
	g.Addr = ln.Addr().String()
	if cfg.GRPC.Listen != "" {
		if err := g.serveGRPC(cfg, version, log); err != nil {
			ln.Close()
			return nil, err
		}
	}
	go func() { g.served <- g.Server.Serve(ln) }()
	log.Info("mlgate listening", "addr", g.Addr, "grpc_addr", g.GRPCAddr, "data_dir", cfg.DataDir)
	// A version that does not load is logged and answered with 503; the
	// others serve.
	if err := catalog.Sync(ctx); err != nil && !errors.Is(err, serving.ErrNotAllLoaded) {
		return nil, fmt.Errorf("load registered models: %w", err)
	}
	// What needs the models starts once they have loaded: the canary
	// controller, and the drift monitors, which look for their baselines
	// (until now they were listed as starting).
	rs.Start(controllerTick)
	ds.Start(ctx, driftTick)
	// In a fleet, the changes other replicas commit apply here from now on
	// (and those committed since the stores loaded).
	cp.start(hub.Publish, log)
	if err := g.mirrorMLflow(cfg, cp); err != nil {
		return nil, err
	}
	log.Info("ready")
	return g, nil
}

// mirrorMLflow starts the mirror of registry.mlflow's models, when set. In
// a fleet the leader mirrors, and the others see its changes through the
// control plane. Shutdown stops it first.
func (g *Gateway) mirrorMLflow(cfg config.Config, cp *controlPlane) error {
	ml := cfg.Registry.MLflow
	if ml.TrackingURI == "" {
		return nil
	}
	client, err := mlflow.New(ml.TrackingURI, ml.Token)
	if err != nil {
		return fmt.Errorf("config key registry.mlflow.%w", err)
	}
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return fmt.Errorf("data directory (data_dir): %w", err)
	}
	source := mlflow.Source(ml.TrackingURI)
	m := mlflow.NewMirror(client, g.Registry, g.Registry.Mirror(source), ml.Models, int64(cfg.Registry.MaxModelBytes), tmp, g.log.With("mirror", source))
	m.Leading = cp.isLeader
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx, time.Duration(ml.Poll))
	}()
	g.stopMirror = func() {
		cancel()
		<-done
	}
	return nil
}

// Done yields the error that stopped the server if it stops on its own.
func (g *Gateway) Done() <-chan error { return g.served }

// Shutdown stops accepting requests, waits until ctx ends for those in
// flight, writes every accepted inference-table row, then closes the
// sessions and the stores.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var errs []error
	if g.stopMirror != nil {
		g.stopMirror()
	}
	if g.Router != nil {
		g.Router.Close()
	}
	if g.Drift != nil {
		g.Drift.Close()
	}
	if g.Server != nil {
		errs = append(errs, g.Server.Shutdown(ctx))
	}
	if g.Tables != nil {
		errs = append(errs, g.Tables.Close(ctx))
	}
	if g.Catalog != nil {
		g.Catalog.Close()
	}
	if g.notifier != nil {
		errs = append(errs, g.notifier.Close(ctx))
	}
	if g.ownTracing {
		errs = append(errs, g.tracing.Shutdown(ctx)) // the spans of the last requests
	}
	return errors.Join(append(errs, g.closeAll())...)
}

// grpcMaxMetadata bounds the metadata of a gRPC call, in bytes.
const grpcMaxMetadata = 64 << 10

// serveGRPC serves the V2 protocol over gRPC on grpc.listen, from the HTTP
// server's pipeline and gate; the HTTP server's Shutdown stops it.
func (g *Gateway) serveGRPC(cfg config.Config, version string, log *slog.Logger) error {
	ln, err := listenGRPC(cfg)
	if err != nil {
		return err
	}
	// A message is bounded as an HTTP body is, metadata as HTTP headers
	// are (more loosely: gRPC clients send a few of their own); an idle
	// connection closes as an idle HTTP connection does.
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(cfg.Server.MaxBodyBytes)),
		grpc.MaxHeaderListSize(grpcMaxMetadata),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: time.Duration(cfg.Server.IdleTimeout)}),
		// Calls run on long-lived workers (more start goroutines of their
		// own when these are busy), whose stacks have grown to what a call
		// needs, rather than each on a new goroutine whose stack grows
		// again: the bench's profile spent 9% of the CPU copying stacks.
		grpc.NumStreamWorkers(uint32(4 * runtime.GOMAXPROCS(0))),
	}
	if d := time.Duration(cfg.Server.ReadTimeout); d > 0 {
		opts = append(opts, grpc.ConnectionTimeout(d))
	}
	s := grpcv2.NewServer(g.Server, g.Server, version, log, opts...)
	g.GRPCAddr = ln.Addr().String()
	g.closers = append(g.closers, func() error { s.Stop(); return nil }) // a start that fails later
	g.Server.AddEntryPoint(func(ctx context.Context) {
		stopped := make(chan struct{})
		go func() { s.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.Stop()
			<-stopped
		}
	})
	go func() {
		if err := s.Serve(ln); err != nil {
			log.Error("gRPC server stopped", "err", err)
		}
	}()
	return nil
}

// closeAll closes the stores opened so far, the last first.
func (g *Gateway) closeAll() error {
	var errs []error
	for i := len(g.closers) - 1; i >= 0; i-- {
		errs = append(errs, g.closers[i]())
	}
	g.closers = nil
	return errors.Join(errs...)
}

// piiKey is the configured key for hashing PII fields, or else the fleet's
// (kept in the control plane), or else one generated once and kept in the
// data directory.
func piiKey(ctx context.Context, cfg config.Config, cp *controlPlane) ([]byte, error) {
	if cfg.Tables.PIIKey != "" {
		return []byte(cfg.Tables.PIIKey), nil
	}
	if key, ok, err := cp.sharedPIIKey(ctx); ok {
		return key, err
	}
	path := filepath.Join(cfg.DataDir, "pii.key")
	if key, err := os.ReadFile(path); err == nil {
		return key, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read the PII key: %w", err)
	}
	key, err := newPIIKey()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("write the PII key: %w", err)
	}
	return key, nil
}

// newPIIKey makes a random key for hashing PII fields.
func newPIIKey() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return []byte(hex.EncodeToString(key)), nil
}

// heaviestVariant names the model version an endpoint's drift monitors
// compare with: its heaviest variant's.
func heaviestVariant(rs *router.Service) func(string) (model, version string, ok bool) {
	return func(endpoint string) (string, string, bool) {
		r, ok := rs.Route(endpoint)
		if !ok {
			return "", "", false
		}
		best := 0
		for i := range r.Len() {
			if r.Weight(i) > r.Weight(best) {
				best = i
			}
		}
		ref := r.Model(best)
		switch {
		case ref.Alias != "":
			return ref.Name, ref.Alias, true
		case ref.Version > 0:
			return ref.Name, strconv.Itoa(ref.Version), true
		}
		return ref.Name, "", true
	}
}

// driftTick is how often drift windows are checked for their end.
const driftTick = time.Second

// leaderCloseTimeout bounds how long a leader leaving the election waits for
// its jobs before it frees the lock anyway.
const leaderCloseTimeout = 2 * time.Second

// controllerTick is how often the router judges canaries and checks for
// sample ratio mismatches.
const controllerTick = 200 * time.Millisecond

// openFeatures opens the configured online stores and the feature store over
// them and the control plane's views, with the audit, users and changes of
// wired. The embedded store is open unless the gateway is in a fleet.
func openFeatures(ctx context.Context, cfg config.Config, cp *controlPlane, metrics *telemetry.Metrics, tracing *telemetry.Tracing, wired featurestore.Options, log *slog.Logger) (*featurestore.Service, error) {
	stores := map[string]featurestore.OnlineStore{}
	unavailable := map[string]string{}
	if cp.embedded != nil {
		stores["embedded"] = cp.embedded
	} else {
		unavailable["embedded"] = "with control_plane.store postgres, every replica must serve the same features, and the embedded store is one replica's own file; use redis or cassandra"
	}
	closeAll := func() {
		for _, s := range stores {
			s.Close()
		}
	}
	if o := cfg.OnlineStore; o.RedisEnabled() {
		addrs := o.Redis.ClusterAddrs
		if o.Redis.Addr != "" {
			addrs = []string{o.Redis.Addr}
		}
		tlsConfig, err := clientTLS("online_store.redis.tls", o.Redis.TLS)
		if err != nil {
			closeAll()
			return nil, err
		}
		redis.SetLog(log)
		rs, err := redis.New(ctx, redis.Options{Addrs: addrs, Password: o.Redis.Password, DB: o.Redis.DB, KeyPrefix: o.Redis.KeyPrefix, TLS: tlsConfig})
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("online_store.redis: %w", err)
		}
		stores["redis"] = rs
		// The same server may hold what Feast materialized, in Feast's
		// layout: views of store feast-redis read it.
		fr, err := feast.New(ctx, feast.Options{Addrs: addrs, Password: o.Redis.Password, DB: o.Redis.DB, TLS: tlsConfig})
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("online_store.redis (for Feast's views): %w", err)
		}
		stores[feast.StoreName] = fr
	}
	if o := cfg.OnlineStore.Cassandra; len(o.Hosts) > 0 {
		tlsConfig, err := clientTLS("online_store.cassandra.tls", o.TLS)
		if err != nil {
			closeAll()
			return nil, err
		}
		cs, err := cassandra.New(ctx, cassandra.Options{
			Hosts: o.Hosts, Keyspace: o.Keyspace, ReplicationFactor: o.ReplicationFactor,
			Consistency: o.Consistency, Timeout: time.Duration(o.Timeout), Username: o.Username, Password: o.Password,
			TLS: tlsConfig, Log: log,
		})
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("online_store.cassandra: %w", err)
		}
		stores["cassandra"] = cs
	}
	fs, err := featurestore.NewService(ctx, cp.views, featurestore.Options{
		Stores:       stores,
		Unavailable:  unavailable,
		DefaultStore: cfg.OnlineStore.Default,
		CacheEntries: cfg.OnlineStore.CacheEntries,
		Timeout:      time.Duration(cfg.OnlineStore.Timeout),
		WriteTimeout: time.Duration(cfg.OnlineStore.WriteTimeout),
		Breaker:      breakerOptions(cfg),
		Meter:        metrics.Meter("featurestore"),
		Tracer:       tracing.Tracer("featurestore"),
		Audit:        wired.Audit,
		Users:        wired.Users,
		Changes:      wired.Changes,
		Log:          log,
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	return fs, nil
}

// breakerOptions are the settings of the circuit breaker in front of each
// online store and each shadow model.
func breakerOptions(cfg config.Config) featurestore.Breaker {
	b := cfg.OnlineStore.Breaker
	return featurestore.Breaker{Failures: b.Failures, FailureRatio: b.FailureRatio, MinRequests: b.MinRequests,
		Window: time.Duration(b.Window), OpenFor: time.Duration(b.OpenFor)}
}

// newAuthenticator builds the authenticator from auth.keys and
// auth.keys_file, and the limiter that holds each key to its rate.
func newAuthenticator(cfg config.Config, log *slog.Logger) (*auth.Authenticator, *auth.Limiter, error) {
	keys, roles, err := authKeys(cfg)
	if err != nil {
		return nil, nil, err
	}
	a, err := auth.New(keys)
	if err != nil {
		return nil, nil, fmt.Errorf("config key auth.keys: %w", err)
	}
	if a.Open() {
		log.Warn("no API keys configured (auth.keys): every caller may do everything; allowed only because the listener is on loopback")
	}
	return a, auth.NewLimiter(keys, roles), nil
}

// authKeys reads the keys of auth.keys and auth.keys_file, and the limits
// of auth.role_limits. No keys at all is refused unless the listener is on
// loopback.
func authKeys(cfg config.Config) ([]auth.Key, map[auth.Role]auth.Limit, error) {
	all, err := cfg.Auth.AllKeys()
	if err != nil {
		return nil, nil, err
	}
	keys := make([]auth.Key, len(all))
	for i, k := range all {
		keys[i] = auth.Key{Name: k.Name, SHA256: k.SHA256, Limit: auth.Limit{Rate: k.Rate, Burst: k.Burst}}
		for _, r := range k.Roles {
			role, err := auth.ParseRole(r)
			if err != nil {
				return nil, nil, fmt.Errorf("config key %s.roles: %w", keyOrigin(cfg, i), err)
			}
			keys[i].Roles = append(keys[i].Roles, role)
		}
	}
	if key, addr, public := cfg.PublicListen(); len(keys) == 0 && public {
		return nil, nil, fmt.Errorf("config key auth.keys: API keys are required when %s (%s) is not a loopback address", key, addr)
	}
	roles := make(map[auth.Role]auth.Limit, len(cfg.Auth.RoleLimits))
	for i, l := range cfg.Auth.RoleLimits {
		role, err := auth.ParseRole(l.Role)
		if err != nil {
			return nil, nil, fmt.Errorf("config key auth.role_limits[%d].role: %w", i, err)
		}
		roles[role] = auth.Limit{Rate: l.Rate, Burst: l.Burst}
	}
	return keys, roles, nil
}

// ReloadKeys replaces the API keys and rate limits with those of cfg
// (auth.keys, auth.keys_file, auth.role_limits), as `mlgate serve` does on
// SIGHUP: a revoked key is refused from the next request, a new one
// admitted, and a key whose limit is unchanged keeps the tokens it has
// left. The listener cannot change, so cfg.Listen is the one the gateway
// started with. Bad keys change nothing, and say why.
func (g *Gateway) ReloadKeys(cfg config.Config) error {
	cfg.Listen = g.listen
	keys, roles, err := authKeys(cfg)
	if err != nil {
		return err
	}
	if err := g.auth.Reload(keys); err != nil {
		return fmt.Errorf("config key auth.keys: %w", err)
	}
	g.limiter.Reload(keys, roles)
	g.log.Info("API keys reloaded", "keys", len(keys))
	return nil
}

// keyOrigin names where the i-th of cfg's keys (auth.keys, then those of
// auth.keys_file) is configured.
func keyOrigin(cfg config.Config, i int) string {
	if i < len(cfg.Auth.Keys) {
		return fmt.Sprintf("auth.keys[%d]", i)
	}
	return fmt.Sprintf("auth.keys_file (%s) [%d]", cfg.Auth.KeysFile, i-len(cfg.Auth.Keys))
}

// protectedAliases is registry.protected_aliases as the registry takes it.
func protectedAliases(cfg config.Config) map[string]registry.Status {
	out := make(map[string]registry.Status, len(cfg.Registry.ProtectedAliases))
	for alias, status := range cfg.Registry.ProtectedAliases {
		out[alias] = registry.Status(status)
	}
	return out
}

// The demo: the iris classifier bundled in the binary, and a request for it.
const (
	DemoModel   = "iris"
	DemoRequest = `{"inputs":[{"name":"float_input","shape":[2,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}]}`
	// DemoEndpointRequest calls the endpoint DemoModel as a user u1.
	DemoEndpointRequest = `{"unit":"u1","inputs":{"float_input":[[5.1,3.5,1.4,0.2]]}}`
)

// RegisterDemo registers the bundled iris classifier as the first version of
// DemoModel with alias champion, unless the model exists already, and the
// endpoint DemoModel serving its champion, unless that exists already, so
// that the console has an endpoint to show.
func (g *Gateway) RegisterDemo(ctx context.Context) error {
	_, err := g.Registry.Model(ctx, DemoModel)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		if err := g.registerDemoModel(ctx); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	_, _, err = g.Router.Get(DemoModel)
	if !errors.Is(err, router.ErrNotFound) {
		return err
	}
	policy := router.Policy{Variants: []router.Variant{{Name: registry.AliasChampion, Model: DemoModel + "@" + registry.AliasChampion, Weight: 100}}}
	_, _, err = g.Router.Put(ctx, "demo", DemoModel, policy)
	return err
}

// registerDemoModel registers the bundled iris classifier as DemoModel's
// version with alias champion.
func (g *Gateway) registerDemoModel(ctx context.Context) error {
	md := registry.Metadata{
		Description: "Logistic regression on the iris data set (scikit-learn, converted with skl2onnx); mlgate's demo model.",
		Tags:        map[string]string{registry.TagValidationStatus: string(registry.StatusPassed), "demo": "true"},
		Lineage:     registry.Lineage{Data: "sklearn.datasets.load_iris", Code: "internal/modelzoo/gen.py"},
	}
	v, err := g.Registry.Register(ctx, "demo", DemoModel, bytes.NewReader(modelzoo.Iris), md)
	if err != nil {
		return err
	}
	if err := g.Registry.SetAlias(ctx, "demo", DemoModel, registry.AliasChampion, v.Version); err != nil {
		return err
	}
	return g.Catalog.Sync(ctx)
}
