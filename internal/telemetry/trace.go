package telemetry

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TraceOptions configure Tracing.
type TraceOptions struct {
	// ServiceName is the resource's service.name; "mlgate" when empty.
	ServiceName string
	// SampleRatio is the share of the traces started here that are
	// recorded. A caller's trace context decides for the traces it
	// continues: sampled upstream, sampled here.
	SampleRatio float64
	// OTLPEndpoint receives the spans over OTLP/HTTP: an http or https URL
	// ("http://collector:4318", to which /v1/traces is added unless it has
	// a path), or host:port, spoken to over HTTPS. Empty: no exporter.
	OTLPEndpoint string
	// Processors also receive the spans, in the process; tests pass
	// sdktrace.NewSimpleSpanProcessor(tracetest.NewInMemoryExporter()).
	Processors []sdktrace.SpanProcessor
}

// Tracing owns a TracerProvider, and the W3C trace context propagator that
// reads a caller's trace from its headers.
type Tracing struct {
	provider *sdktrace.TracerProvider
	idle     bool // no exporter and no processor: spans would go nowhere
}

// NewTracing returns tracing as opts configure it. The OTLP exporter, when
// there is one, sends batches in the background and connects lazily, so an
// unreachable collector does not stop start-up.
func NewTracing(ctx context.Context, opts TraceOptions) (*Tracing, error) {
	if opts.SampleRatio < 0 || opts.SampleRatio > 1 {
		return nil, fmt.Errorf("telemetry.sample_ratio: must be from 0 to 1, got %g", opts.SampleRatio)
	}
	name := opts.ServiceName
	if name == "" {
		name = "mlgate"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(name)))
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	popts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(opts.SampleRatio))),
	}
	if opts.OTLPEndpoint != "" {
		endpoint, err := endpointOption(opts.OTLPEndpoint)
		if err != nil {
			return nil, fmt.Errorf("telemetry.otlp_endpoint: %w", err)
		}
		exp, err := otlptracehttp.New(ctx, endpoint)
		if err != nil {
			return nil, fmt.Errorf("telemetry.otlp_endpoint: %w", err)
		}
		popts = append(popts, sdktrace.WithBatcher(exp))
	}
	for _, p := range opts.Processors {
		popts = append(popts, sdktrace.WithSpanProcessor(p))
	}
	return &Tracing{
		provider: sdktrace.NewTracerProvider(popts...),
		idle:     opts.OTLPEndpoint == "" && len(opts.Processors) == 0,
	}, nil
}

// endpointOption reads the configured endpoint: a URL, or host:port.
func endpointOption(endpoint string) (otlptracehttp.Option, error) {
	if !strings.Contains(endpoint, "://") {
		if _, _, err := net.SplitHostPort(endpoint); err != nil {
			return nil, fmt.Errorf("%q is neither a URL nor host:port", endpoint)
		}
		return otlptracehttp.WithEndpoint(endpoint), nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%q is not an http or https URL", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return otlptracehttp.WithEndpointURL(u.String()), nil
}

// Tracer returns the tracer of one part of mlgate, or nil when no span
// would leave the process (no exporter, no processor): callers skip nil
// tracers at no cost, where a tracer's spans cost allocations even when
// nobody reads them.
func (t *Tracing) Tracer(name string) trace.Tracer {
	if t.idle {
		return nil
	}
	return t.provider.Tracer("github.com/mlgate/mlgate/" + name)
}

// Propagator reads and writes W3C trace context (traceparent, tracestate).
func (t *Tracing) Propagator() propagation.TextMapPropagator {
	return propagation.TraceContext{}
}

// Shutdown exports the spans that have ended and stops the exporter. It
// gives up when ctx ends.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}
