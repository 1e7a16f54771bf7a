package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func remoteParent(t *testing.T, sampled bool) context.Context {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	return trace.ContextWithRemoteSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true}))
}

// TestSampling checks that the ratio decides for traces started here, and
// the caller for traces it continues.
func TestSampling(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ratio  float64
		parent func(t *testing.T) context.Context
		want   bool
	}{
		{"ratio 0, no parent", 0, func(t *testing.T) context.Context { return t.Context() }, false},
		{"ratio 1, no parent", 1, func(t *testing.T) context.Context { return t.Context() }, true},
		{"ratio 0, sampled parent", 0, func(t *testing.T) context.Context { return remoteParent(t, true) }, true},
		{"ratio 1, parent not sampled", 1, func(t *testing.T) context.Context { return remoteParent(t, false) }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tr, err := NewTracing(t.Context(), TraceOptions{SampleRatio: tt.ratio, Processors: []sdktrace.SpanProcessor{sdktrace.NewSimpleSpanProcessor(exp)}})
			if err != nil {
				t.Fatal(err)
			}
			_, span := tr.Tracer("test").Start(tt.parent(t), "x")
			span.End()
			if got := len(exp.GetSpans()) == 1; got != tt.want {
				t.Errorf("recorded %v, want %v", got, tt.want)
			}
		})
	}
}

// TestIdleTracer checks that without an exporter or a processor there is
// no tracer: spans would go nowhere.
func TestIdleTracer(t *testing.T) {
	tr, err := NewTracing(t.Context(), TraceOptions{SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Tracer("test") != nil {
		t.Error("an idle Tracing gave a tracer")
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}
}

// TestOTLPExport checks that spans reach an OTLP/HTTP collector, at the
// latest when Shutdown flushes them.
func TestOTLPExport(t *testing.T) {
	var posts atomic.Int64
	var service atomic.Bool
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
			service.Store(bytes.Contains(body, []byte("mlgate-test")))
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	tr, err := NewTracing(t.Context(), TraceOptions{ServiceName: "mlgate-test", SampleRatio: 1, OTLPEndpoint: collector.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer("test").Start(t.Context(), "x")
	span.End()
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() != 1 || !service.Load() {
		t.Errorf("collector got %d exports (service name in them: %v), want 1", posts.Load(), service.Load())
	}
}

// TestLogHandler checks that a line logged with a context carries its
// request id and trace, and one without carries neither.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	ctx := context.WithValue(remoteParent(t, true), RequestIDKey{}, "req-1")
	log.InfoContext(ctx, "with")
	log.Info("without")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("log:\n%s", buf.Bytes())
	}
	var with, without map[string]any
	if err := json.Unmarshal(lines[0], &with); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lines[1], &without); err != nil {
		t.Fatal(err)
	}
	if with["request_id"] != "req-1" || with["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || with["span_id"] != "00f067aa0ba902b7" || with["component"] != "test" {
		t.Errorf("line with a context: %s", lines[0])
	}
	if _, ok := without["trace_id"]; ok {
		t.Errorf("line without a context: %s", lines[1])
	}
}

func TestEndpointErrors(t *testing.T) {
	for _, endpoint := range []string{"collector", "ftp://collector:21", "http://"} {
		if _, err := NewTracing(t.Context(), TraceOptions{OTLPEndpoint: endpoint}); err == nil {
			t.Errorf("endpoint %q accepted", endpoint)
		}
	}
}
