package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving/console"
)

// Options tune the HTTP server.
type Options struct {
	// MaxBodyBytes bounds request bodies other than model uploads, which the
	// registry's MaxModelBytes bounds.
	MaxBodyBytes int64
	// MaxBodyMemory bounds the bytes of request bodies held at once, read or
	// being served; a request over it is 503 with Retry-After. 0:
	// DefaultMaxBodyMemory.
	MaxBodyMemory int64
	// DataDir is where the server keeps its data; error messages name it
	// "[data_dir]", never by its path.
	DataDir      string
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// Version is reported by GET /v2.
	Version string
	// DrainDelay is how long Shutdown answers not ready before it stops
	// accepting connections.
	DrainDelay time.Duration
	// MaxRows bounds the rows of a request: the batch (first) dimension of
	// an input tensor, entity rows, rows written to a feature view.
	// MaxTensorElements bounds the elements of one input tensor and
	// MaxStringBytes one string value (a BYTES element, an entity key, a
	// string feature). 0 is the default (DefaultMaxRows, ...).
	MaxRows           int
	MaxTensorElements int
	MaxStringBytes    int
	// RequestTimeout is each request's deadline, feature store reads
	// included; X-Request-Timeout may ask for another, up to
	// MaxRequestTimeout. 0: no deadline (and no cap when MaxRequestTimeout
	// is 0).
	RequestTimeout    time.Duration
	MaxRequestTimeout time.Duration
	// Breaker configures the circuit breaker of each shadow model.
	Breaker featurestore.Breaker
}

// The default request limits, those of config.Defaults().
const (
	DefaultMaxRows           = 10000
	DefaultMaxTensorElements = 10_000_000
	DefaultMaxStringBytes    = 64 << 10
	DefaultMaxBodyMemory     = 256 << 20
)

// Deps are what the server composes.
type Deps struct {
	Registry *registry.Registry
	Catalog  *Catalog
	// Features is the feature store; nil serves models without features.
	Features *featurestore.Service
	Auth     *auth.Authenticator
	Log      *slog.Logger
	// Metrics serves /metrics; nil serves none.
	Metrics http.Handler
	// Router keeps the endpoints; nil serves none.
	Router *router.Service
	// Tables records every prediction in TablesDir; nil records none.
	Tables    Tables
	TablesDir string
	// PIIKey keys the hash that replaces PII fields in recorded rows.
	PIIKey []byte
	// Drift keeps the drift monitors; nil runs none.
	Drift *drift.Service
	// Limiter holds each caller to its request rate; nil limits none.
	Limiter *auth.Limiter
	// Tracer starts the spans of requests; nil traces none.
	Tracer trace.Tracer
	// Propagator reads the trace context callers send; nil reads W3C
	// trace context.
	Propagator propagation.TextMapPropagator
}

// Server serves the registry API, the feature store API, predictions and the
// V2 inference protocol.
type Server struct {
	app       *fiber.App
	reg       *registry.Registry
	catalog   *Catalog
	features  *featurestore.Service
	auth      *auth.Authenticator
	limiter   *auth.Limiter
	limits    limits
	log       *slog.Logger
	metrics   http.Handler
	router    *router.Service
	shadows   *shadows
	recorder  *recorder
	draining  atomic.Bool // Shutdown has begun: not ready
	tables    Tables
	tablesDir string
	piiKey    []byte
	drift     *drift.Service
	opts      Options

	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	requests   *requestMetrics // nil until RegisterMetrics
	batches    *batchMetrics   // nil until RegisterMetrics
	bodies     bodyBudget
	dataDirs   []string // the data directory's spellings, hidden in error messages
	// lastRequest is when a request last came while draining, in Unix
	// nanoseconds.
	lastRequest atomic.Int64
	// conns are the open connections, which Shutdown wakes once its grace
	// is over (see trackConn).
	conns sync.Map // net.Conn → struct{}
	// closing is set once Shutdown closes the listener.
	closing atomic.Bool
	// others stop the entry points of other protocols (gRPC); see
	// AddEntryPoint.
	others []func(context.Context)
}

// AddEntryPoint has Shutdown stop another protocol's server that serves
// from this one (see Admit): stop must stop taking calls and return once
// those in flight are answered, or once ctx ends. Shutdown calls it when
// the drain delay is over, as it closes its own listener, and before it
// waits for the recorder. Call it before Serve.
func (s *Server) AddEntryPoint(stop func(ctx context.Context)) { s.others = append(s.others, stop) }

// trackConn keeps the set of open connections. fasthttp counts a
// connection waiting for its first request as active, and its Shutdown
// waits for it until read_timeout: a client that connects ahead of need (a
// load balancer's pool, an HTTP client's spare dial) would hold a stopping
// replica, and the inference-table rows it has yet to write, that long.
func (s *Server) trackConn(c net.Conn, state fasthttp.ConnState) {
	switch state {
	case fasthttp.StateNew:
		s.conns.Store(c, struct{}{})
		if s.closing.Load() {
			c.Close()
		}
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		s.conns.Delete(c)
	}
}

// wakeConns ends the reads connections are blocked in: a connection waiting
// for a request closes, one whose handler runs still answers (its read is
// over), and then closes.
func (s *Server) wakeConns() {
	now := time.Now()
	s.conns.Range(func(c, _ any) bool {
		c.(net.Conn).SetReadDeadline(now)
		return true
	})
}

// uploadOverhead is room for the multipart framing and metadata part of an
// upload beyond the model file itself.
const uploadOverhead = 1 << 20

// New returns a Server with every route registered.
func New(opts Options, d Deps) *Server {
	s := &Server{reg: d.Registry, catalog: d.Catalog, features: d.Features, auth: d.Auth, log: d.Log, metrics: d.Metrics, router: d.Router,
		tables: d.Tables, tablesDir: d.TablesDir, piiKey: d.PIIKey, drift: d.Drift, opts: opts,
		limiter: d.Limiter, limits: limitsOf(opts)}
	s.recorder = newRecorder(s.record, d.Log)
	s.shadows = newShadows(s.runShadow, s.observe, opts.Breaker, d.Log)
	s.tracer, s.propagator = d.Tracer, d.Propagator
	if s.propagator == nil {
		s.propagator = propagation.TraceContext{}
	}
	if opts.DataDir != "" {
		s.dataDirs = []string{opts.DataDir}
		if abs, err := filepath.Abs(opts.DataDir); err == nil && abs != opts.DataDir {
			s.dataDirs = append([]string{abs}, s.dataDirs...)
		}
	}
	s.bodies.max = opts.MaxBodyMemory
	if s.bodies.max <= 0 {
		s.bodies.max = DefaultMaxBodyMemory
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "mlgate",
		DisableStartupMessage: true,
		// Bodies are read by the middlewares body and upload, after the
		// caller is authenticated (see body.go); fasthttp reads only the
		// headers and the first few KiB before the handlers run.
		// BodyLimit is what fasthttp reads ahead of a streamed body: one
		// byte, or what its read buffer already holds.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		BodyLimit:                    1,
		ReadTimeout:                  opts.ReadTimeout,
		WriteTimeout:                 opts.WriteTimeout,
		IdleTimeout:                  opts.IdleTimeout,
		ErrorHandler:                 s.handleError,
	})
	// Answers given while shutting down say Connection: close, so a client
	// never sends its next request on a connection about to close.
	s.app.Server().CloseOnShutdown = true
	s.app.Server().ConnState = s.trackConn
	s.app.Use(s.instrument) // first: it sees every other middleware's errors
	s.app.Use(s.guard)
	s.routes()
	return s
}

func (s *Server) routes() {
	app := s.app
	app.Use(s.deadline)
	anyone := s.require("")

	// The console's page and scripts need no key; the API calls it makes do.
	console.Mount(app)
	app.Get("/v2/health/live", s.live)
	app.Get("/v2/health/ready", s.ready)
	if s.metrics != nil {
		app.Get("/metrics", adaptor.HTTPHandler(s.metrics))
	}

	predict := s.require(auth.Predict)
	app.Get("/v2", predict, s.serverMetadata)
	app.Get("/v2/models/stats", predict, s.modelStatistics) // before :model, which "stats" would match
	app.Post("/v2/repository/index", predict, s.repositoryIndex)
	app.Get("/v2/models/:model", predict, s.modelMetadata)
	app.Get("/v2/models/:model/config", predict, s.modelConfigOf)
	app.Get("/v2/models/:model/stats", predict, s.modelStatistics)
	app.Get("/v2/models/:model/versions/:version/config", predict, s.modelConfigOf)
	app.Get("/v2/models/:model/versions/:version/stats", predict, s.modelStatistics)
	app.Get("/v2/models/:model/ready", predict, s.modelReady)
	app.Post("/v2/models/:model/infer", predict, s.infer)
	app.Get("/v2/models/:model/versions/:version", predict, s.modelMetadata)
	app.Get("/v2/models/:model/versions/:version/ready", predict, s.modelReady)
	app.Post("/v2/models/:model/versions/:version/infer", predict, s.infer)

	scientist, sre := s.require(auth.DataScientist), s.require(auth.SRE)
	app.Get("/v1/models", anyone, s.listModels)
	app.Get("/v1/models/:name", anyone, s.getModel)
	app.Post("/v1/models/:name/versions", s.requireUpload(auth.DataScientist), s.registerVersion)
	app.Get("/v1/models/:name/versions/:version", anyone, s.getVersion)
	app.Delete("/v1/models/:name/versions/:version", scientist, s.deleteVersion)
	app.Put("/v1/models/:name/versions/:version/tags/:key", scientist, s.setTag)
	app.Put("/v1/models/:name/aliases/:alias", sre, s.setAlias)
	app.Delete("/v1/models/:name/aliases/:alias", sre, s.deleteAlias)
	app.Get("/v1/audit", anyone, s.audit)
	app.Get("/v1/whoami", anyone, s.whoami)
	app.Get("/v1/status", anyone, s.status)

	app.Post("/v1/models/:name/predict", predict, s.predict)
	app.Post("/v1/models/:name/:version/predict", predict, s.predict)

	app.Get("/v1/feature-views", anyone, s.listViews)
	app.Get("/v1/feature-views/:view", anyone, s.getView)
	app.Put("/v1/feature-views/:view", scientist, s.putView)
	app.Delete("/v1/feature-views/:view", scientist, s.deleteView)
	app.Post("/v1/feature-views/:view/rows", scientist, s.writeRows)
	app.Post("/v1/features/online", predict, s.readOnline)

	app.Get("/v1/endpoints", anyone, s.listEndpoints)
	app.Get("/v1/endpoints/:endpoint", anyone, s.getEndpoint)
	app.Put("/v1/endpoints/:endpoint", sre, s.putEndpoint)
	app.Delete("/v1/endpoints/:endpoint", sre, s.deleteEndpoint)
	app.Patch("/v1/endpoints/:endpoint/traffic", sre, s.patchTraffic)
	app.Get("/v1/endpoints/:endpoint/history", anyone, s.endpointHistory)
	app.Post("/v1/endpoints/:endpoint/canary", sre, s.startCanary)
	app.Post("/v1/endpoints/:endpoint/canary/:command", sre, s.canaryCommand)
	app.Post("/v1/endpoints/:endpoint/predict", predict, s.endpointPredict)

	app.Get("/v1/tables", anyone, s.listTables)
	app.Post("/v1/tables/delete", scientist, s.deleteEntity)
	app.Post("/v1/labels", scientist, s.postLabels)

	app.Get("/v1/monitors", anyone, s.listMonitors)
	app.Put("/v1/monitors/:monitor", scientist, s.putMonitor)
	app.Delete("/v1/monitors/:monitor", scientist, s.deleteMonitor)
	app.Get("/v1/monitors/:monitor/report", anyone, s.getMonitorReport)
	app.Post("/v1/monitors/:monitor/run", scientist, s.runMonitor)
}

// App returns the fiber application, for tests that drive it in-process.
func (s *Server) App() *fiber.App { return s.app }

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// closeGrace is how long Shutdown lets open connections make one more
// request, answered with Connection: close, before it closes them: a
// keep-alive client then never sends a request on a connection the server
// is closing, which would leave it unsure whether it was served. The wait
// ends sooner once no request has come for closeQuiet: the connections left
// are idle ones.
const (
	closeGrace = time.Second
	closeQuiet = 100 * time.Millisecond
)

// awaitConnections waits until no connection is open, or none has had a
// request for quiet, for at most grace.
func (s *Server) awaitConnections(ctx context.Context, grace, quiet time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	s.lastRequest.Store(time.Now().UnixNano())
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.app.Server().GetOpenConnectionsCount() > 0 && time.Since(time.Unix(0, s.lastRequest.Load())) < quiet {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Shutdown stops accepting connections and waits, until ctx ends, for the
// requests in flight to finish, then for the queued shadow copies, then
// for the recorder to record every prediction answered.
func (s *Server) Shutdown(ctx context.Context) error {
	// Readiness goes false first, so that a load balancer stops sending
	// traffic during DrainDelay, while the listener still answers.
	s.draining.Store(true)
	select {
	case <-time.After(s.opts.DrainDelay):
	case <-ctx.Done():
	}
	// Every answer from now on says Connection: close (guard), so the open
	// connections close after their next answer; then the listener closes,
	// and the connections idle since are closed unasked.
	s.awaitConnections(ctx, closeGrace, closeQuiet)
	// From here on a connection that starts is one the listener accepted
	// as it closed: trackConn closes it, as the kernel resets those it had
	// not handed over yet.
	s.closing.Store(true)
	var others sync.WaitGroup
	for _, stop := range s.others {
		others.Go(func() { stop(ctx) })
	}
	closed := make(chan error, 1)
	go func() { closed <- s.app.ShutdownWithContext(ctx) }()
	var err error
	select {
	case err = <-closed:
	case <-time.After(closeQuiet):
		// A connection is still open, though none has had a request for
		// closeQuiet or the grace is over: one that never sent a request, or
		// one in the middle of one. Wake them (see trackConn).
		s.wakeConns()
		err = <-closed
	}
	// fasthttp stops counting a connection it accepted as its listener
	// closed before the connection starts: wake any such one too.
	s.wakeConns()
	others.Wait()
	wait := time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = max(time.Until(d), 0)
	}
	s.shadows.close(wait)
	return errors.Join(err, s.recorder.close(ctx))
}

// FlushRecords waits until every prediction answered so far is recorded:
// seen by the drift monitors and, when the inference tables are on, written
// to their files.
func (s *Server) FlushRecords(ctx context.Context) error {
	if err := s.recorder.flush(ctx); err != nil {
		return err
	}
	if s.tables == nil {
		return nil
	}
	return s.tables.Flush(ctx)
}

// require returns a middleware that authenticates the caller, holds it to
// its rate limit and checks that it holds role, then reads the request body
// (see body); an empty role admits any authenticated caller. Every request
// of a caller counts against its limit, those refused for their role
// included. Nothing of the body is read before the caller is admitted.
func (s *Server) require(role auth.Role) fiber.Handler { return s.admit(role, s.body) }

// requireUpload is require for a model upload, whose body the handler reads
// as a stream (see upload).
func (s *Server) requireUpload(role auth.Role) fiber.Handler { return s.admit(role, s.upload) }

func (s *Server) admit(role auth.Role, then fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := s.auth.Authenticate(c.Get(fiber.HeaderAuthorization))
		if err != nil {
			return err
		}
		if ok, wait := s.limiter.Allow(id.Name); !ok {
			return s.rateLimited(c, id.Name, wait)
		}
		if role != "" && !id.Has(role) {
			return fmt.Errorf("%w: key %q lacks the %s role this route needs", errForbidden, id.Name, role)
		}
		if sc := scopeOf(c.UserContext()); sc != nil {
			sc.caller = id
		}
		return then(c)
	}
}

// rateLimited refuses a request of the caller named name, which may try
// again after wait: 429, with Retry-After in whole seconds.
func (s *Server) rateLimited(c *fiber.Ctx, name string, wait time.Duration) error {
	c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(retryAfter(wait), 10))
	return s.overLimit(name, wait)
}

// overLimit is the error of a call refused because the caller named name
// is over its rate limit; it may try again after wait.
func (s *Server) overLimit(name string, wait time.Duration) error {
	lim, _ := s.limiter.Limit(name)
	return fmt.Errorf("%w: key %q is over its limit of %s requests per second (burst %d); retry in %d s",
		errRateLimited, name, strconv.FormatFloat(lim.Rate, 'f', -1, 64), lim.Burst, retryAfter(wait))
}

// actor is the name of the key that made c's request, for the audit trail.
func actor(c *fiber.Ctx) string { return caller(c).Name }

// caller is the key that made c's request, once admitted; without one
// (before admission), no one, holding no role.
func caller(c *fiber.Ctx) auth.Identity {
	if sc := scopeOf(c.UserContext()); sc != nil {
		return sc.caller
	}
	return auth.Identity{}
}

// handleError writes every error as {"error": "..."} with the status statusOf
// gives it.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	code := statusOf(err)
	msg := err.Error()
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe {
		case fiber.ErrRequestEntityTooLarge:
			msg = fmt.Sprintf("request body is larger than the limit of %d bytes (server.max_body_bytes)", s.opts.MaxBodyBytes)
		case fiber.ErrNotFound, fiber.ErrMethodNotAllowed:
			msg = fmt.Sprintf("no route for %s %s", c.Method(), c.Path())
		}
	}
	if code >= fiber.StatusInternalServerError && code != fiber.StatusServiceUnavailable {
		s.log.ErrorContext(c.UserContext(), "request failed", "method", c.Method(), "path", c.Path(), "status", code, "err", err)
	}
	return c.Status(code).JSON(errorBody{Error: s.hidePaths(msg)})
}

type errorBody struct {
	Error string `json:"error"`
}

// hidePaths writes the data directory as "[data_dir]" in msg, which goes
// to a caller.
func (s *Server) hidePaths(msg string) string {
	for _, dir := range s.dataDirs {
		msg = strings.ReplaceAll(msg, dir, "[data_dir]")
	}
	return msg
}
