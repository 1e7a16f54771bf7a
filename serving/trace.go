package serving

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/telemetry"
	"github.com/mlgate/mlgate/router"
)

// HeaderRequestID carries a request's id: a caller may send one, and the
// answer names the id the request was logged and recorded under.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDBytes bounds a request id, from a header or a body.
const maxRequestIDBytes = 256

// The span attributes mlgate adds to the OpenTelemetry conventions.
const (
	attrEndpoint     = attribute.Key("mlgate.endpoint")
	attrVariant      = attribute.Key("mlgate.variant")
	attrModel        = attribute.Key("mlgate.model")
	attrModelVersion = attribute.Key("mlgate.model.version")
	attrRequestID    = attribute.Key("mlgate.request_id")
)

// noSpan is the span of an untraced request: it records nothing.
var noSpan = trace.SpanFromContext(context.Background())

// requestScope is the context of one request: the caller's trace continued
// by the request's span, plus what the handlers learn that the request's
// log lines and metrics carry. Only the request's own goroutine writes it.
type requestScope struct {
	context.Context
	requestID string
	labels    requestLabels
	// caller is the caller's key, once admitted.
	caller auth.Identity
	// obs is the request's observation, when it predicts: one allocation
	// for the two (see observationOf).
	obs      observation
	observed bool
}

type scopeKey struct{}

func (sc *requestScope) Value(key any) any {
	switch key.(type) {
	case scopeKey:
		return sc
	case telemetry.RequestIDKey:
		if sc.requestID != "" {
			return sc.requestID
		}
		return nil
	}
	return sc.Context.Value(key)
}

// scopeOf returns the scope of the request ctx belongs to, or nil.
func scopeOf(ctx context.Context) *requestScope {
	if ctx == nil {
		return nil
	}
	sc, _ := ctx.Value(scopeKey{}).(*requestScope)
	return sc
}

// untraced reports the paths that are neither traced nor counted: probes and
// scrapes, which would drown the requests that matter.
func untraced(path string) bool {
	return path == "/metrics" || strings.HasPrefix(path, "/v2/health/")
}

// instrument is the outermost middleware. It continues the caller's trace
// (W3C traceparent and tracestate), runs the request in a server span named
// by its route, answers an error through handleError so that it sees the
// status, then records the request's metrics and, at debug level, logs it.
func (s *Server) instrument(c *fiber.Ctx) error {
	if untraced(c.Path()) {
		return c.Next()
	}
	start := time.Now()
	self := c.Route() // the route of this middleware: still c.Route() after Next when no route matched
	sc := &requestScope{}
	if id := c.Get(HeaderRequestID); id != "" && len(id) <= maxRequestIDBytes {
		sc.requestID = strings.Clone(id) // fiber reuses the header's memory
	}
	ctx := s.propagator.Extract(c.UserContext(), (*headerCarrier)(&c.Request().Header))
	span := noSpan
	if s.tracer != nil {
		// self.Method is the method's registered name, not the request's
		// bytes, which fiber reuses once the request is answered.
		ctx, span = s.tracer.Start(ctx, self.Method, trace.WithSpanKind(trace.SpanKindServer))
	}
	sc.Context = ctx
	c.SetUserContext(sc)

	err := c.Next()
	if err != nil {
		if herr := s.handleError(c, err); herr != nil {
			c.Status(fiber.StatusInternalServerError)
		}
	}
	status := c.Response().StatusCode()
	route := "unmatched"
	if r := c.Route(); r != self && r.Path != "/" { // mlgate serves nothing at /: that is a middleware's (app.Use) route
		route = r.Path // the template, as registered: not the caller's bytes
	}
	if sc.requestID != "" {
		c.Set(HeaderRequestID, sc.requestID)
	}
	if span.IsRecording() {
		span.SetName(self.Method + " " + route)
		span.SetAttributes(semconv.HTTPRequestMethodKey.String(self.Method), semconv.HTTPRoute(route), semconv.HTTPResponseStatusCode(status))
		if sc.requestID != "" {
			span.SetAttributes(attrRequestID.String(sc.requestID))
		}
		if status >= fiber.StatusInternalServerError { // a client's mistake is no server span's error
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			span.SetStatus(codes.Error, msg)
		}
	}
	span.End()
	elapsed := time.Since(start)
	sc.labels.method, sc.labels.route, sc.labels.status = self.Method, route, status
	s.requests.record(ctx, &sc.labels, elapsed)
	if s.log.Enabled(sc, slog.LevelDebug) {
		s.log.DebugContext(sc, "request", "method", self.Method, "route", route, "status", status, "duration", elapsed)
	}
	return nil
}

// headerCarrier lets a propagator read a request's headers.
type headerCarrier fasthttp.RequestHeader

var _ propagation.TextMapCarrier = (*headerCarrier)(nil)

func (h *headerCarrier) Get(key string) string {
	return string((*fasthttp.RequestHeader)(h).Peek(key))
}

// Set completes the carrier: mlgate reads trace context from requests and
// does not call it.
func (h *headerCarrier) Set(key, value string) {
	(*fasthttp.RequestHeader)(h).Set(key, value)
}

func (h *headerCarrier) Keys() []string {
	var keys []string
	(*fasthttp.RequestHeader)(h).VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}

// startSpan starts a span of the request ctx belongs to. Without a tracer,
// or outside a traced request (a shadow copy, say), it starts nothing.
func (s *Server) startSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if s.tracer == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, noSpan
	}
	return s.tracer.Start(ctx, name)
}

// endRoute ends the span of an endpoint's choice of variant v.
func endRoute(span trace.Span, r *router.Route, v int, err error) {
	if span.IsRecording() {
		span.SetAttributes(attrEndpoint.String(r.Endpoint()))
		if err == nil {
			span.SetAttributes(attrVariant.String(r.Name(v)))
		}
		failSpan(span, err)
	}
	span.End()
}

// endInference ends the span of a model version's run.
func endInference(span trace.Span, l *Loaded, err error) {
	if span.IsRecording() {
		span.SetAttributes(attrModel.String(l.Version.Name), attrModelVersion.Int(l.Version.Version))
		failSpan(span, err)
	}
	span.End()
}

// failSpan marks a recording span failed by err, unless err is nil.
func failSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
}
