package serving_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/telemetry"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/serving"
)

// inMemoryTracing records every span in the returned exporter.
func inMemoryTracing(t *testing.T) (*telemetry.Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr, err := telemetry.NewTracing(t.Context(), telemetry.TraceOptions{
		SampleRatio: 1, Processors: []sdktrace.SpanProcessor{sdktrace.NewSimpleSpanProcessor(exp)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown(t.Context()) })
	return tr, exp
}

// The trace context of a caller, as its traceparent header sends it.
const (
	callerTrace       = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan        = "00f067aa0ba902b7"
	callerTraceparent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// scorerEndpoint serves model "scorer" (multi_input, reading user features
// from the embedded store) behind endpoint "churn", with user u1's values
// stored.
func scorerEndpoint(g *gateway) {
	g.t.Helper()
	g.must("PUT", "/v1/feature-views/user", userView, 201)
	g.must("POST", "/v1/feature-views/user/rows", `{"rows": [{"user_id": "u1", "age": 41.5, "income": 1234.25, "visits": 3}]}`, 200)
	if r := g.registerWith("scorer", modelzoo.MultiInput, multiSpec); r.status != 201 {
		g.t.Fatalf("register: %d %s", r.status, r.body)
	}
	g.setAlias("scorer", "champion", 1)
	g.must("PUT", "/v1/endpoints/churn", `{"variants": [{"name": "control", "model": "scorer@champion", "weight": 100}]}`, 201)
}

const scorerRequest = `{"entities": {"user_id": ["u1"]}, "request": {"hour": [13], "count": [1]}}`

// post sends body with extra headers.
func (g *gateway) post(path, body string, headers map[string]string) (response, http.Header) {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: raw}, resp.Header
}

// TestPredictSpans follows one predict through an endpoint: the server span
// continues the caller's trace, and the variant choice, the feature read,
// the model run and the inference-table row are its children.
func TestPredictSpans(t *testing.T) {
	tr, exp := inMemoryTracing(t)
	g := startGateway(t, withTracing(tr))
	scorerEndpoint(g)
	exp.Reset()

	r, h := g.post("/v1/endpoints/churn/predict", scorerRequest, map[string]string{"traceparent": callerTraceparent, serving.HeaderRequestID: "req-trace-1"})
	if r.status != 200 {
		t.Fatalf("predict: %d %s", r.status, r.body)
	}
	var answer struct {
		RequestID string `json:"request_id"`
	}
	r.decode(t, &answer)
	if answer.RequestID != "req-trace-1" || h.Get(serving.HeaderRequestID) != "req-trace-1" {
		t.Errorf("request id: answer %q, header %q; want the caller's X-Request-Id", answer.RequestID, h.Get(serving.HeaderRequestID))
	}

	spans := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		if _, dup := spans[s.Name]; dup {
			t.Errorf("two spans named %q", s.Name)
		}
		spans[s.Name] = s
	}
	server, ok := spans["POST /v1/endpoints/:endpoint/predict"]
	if !ok {
		t.Fatalf("no server span; spans: %v", names(exp.GetSpans()))
	}
	if got := server.SpanContext.TraceID().String(); got != callerTrace {
		t.Errorf("server span trace %s, want the caller's %s", got, callerTrace)
	}
	if !server.Parent.IsRemote() || server.Parent.SpanID().String() != callerSpan {
		t.Errorf("server span parent %s (remote %v), want the caller's span %s", server.Parent.SpanID(), server.Parent.IsRemote(), callerSpan)
	}
	if server.SpanKind != trace.SpanKindServer {
		t.Errorf("server span kind %v", server.SpanKind)
	}
	wantAttrs(t, server, map[string]string{
		"http.request.method": "POST", "http.route": "/v1/endpoints/:endpoint/predict",
		"http.response.status_code": "200", "mlgate.request_id": "req-trace-1"})

	children := map[string]map[string]string{
		"route":          {"mlgate.endpoint": "churn", "mlgate.variant": "control"},
		"feature.lookup": {"mlgate.store": "embedded"},
		"inference":      {"mlgate.model": "scorer", "mlgate.model.version": "1"},
		"table.enqueue":  {},
	}
	for name, attrs := range children {
		s, ok := spans[name]
		if !ok {
			t.Errorf("no %s span; spans: %v", name, names(exp.GetSpans()))
			continue
		}
		if s.Parent.SpanID() != server.SpanContext.SpanID() || s.SpanContext.TraceID() != server.SpanContext.TraceID() {
			t.Errorf("%s span: parent %s in trace %s, want the server span %s", name, s.Parent.SpanID(), s.SpanContext.TraceID(), server.SpanContext.SpanID())
		}
		wantAttrs(t, s, attrs)
	}
	if len(spans) != 1+len(children) {
		t.Errorf("spans %v, want the server span and %d children", names(exp.GetSpans()), len(children))
	}

	// Without a caller's trace context, the request starts a trace.
	exp.Reset()
	g.must("POST", "/v1/models/scorer/predict", scorerRequest, 200)
	for _, s := range exp.GetSpans() {
		if s.Name == "POST /v1/models/:name/predict" && (s.Parent.IsValid() || s.SpanContext.TraceID().String() == callerTrace) {
			t.Errorf("model predict span has parent %v in trace %s, want a new trace", s.Parent.SpanID(), s.SpanContext.TraceID())
		}
	}
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

func wantAttrs(t *testing.T, s tracetest.SpanStub, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, a := range s.Attributes {
		got[string(a.Key)] = a.Value.Emit()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("span %s: %s = %q, want %q", s.Name, k, got[k], v)
		}
	}
}

// TestRequestMetrics checks the request series at /metrics: counted by route
// template (not path), endpoint, variant, model version and status, timed
// with the same labels; and the queue gauges.
func TestRequestMetrics(t *testing.T) {
	m, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, withMetrics(m))
	g.register("linear", modelzoo.Linear)
	g.setAlias("linear", "champion", 1)
	g.must("PUT", "/v1/endpoints/churn", `{"variants": [{"name": "control", "model": "linear@champion", "weight": 100}]}`, 201)
	for range 3 {
		g.must("POST", "/v1/endpoints/churn/predict", `{`+linearInputs+`}`, 200)
	}
	g.must("POST", "/v1/models/linear/predict", `{`+linearInputs+`}`, 200)
	g.must("POST", "/v1/models/nope/predict", `{`+linearInputs+`}`, 404)
	g.must("POST", "/v1/models/linear/predict", `{"inputs": {"x": [[1]]}}`, 400)
	g.must("GET", "/no/such/path", "", 404)

	r := g.do("GET", "/metrics", "", nil)
	if r.status != 200 {
		t.Fatalf("/metrics: %d %s", r.status, r.body)
	}
	series := parseSeries(t, r.body)
	endpoint := `{endpoint="churn",method="POST",model="linear",route="/v1/endpoints/:endpoint/predict",status="200",variant="control",version="1"}`
	model := `{endpoint="",method="POST",model="linear",route="/v1/models/:name/predict",status="200",variant="",version="1"}`
	for _, tt := range []struct{ series, value string }{
		{"mlgate_requests_total" + endpoint, "3"},
		{"mlgate_request_duration_seconds_count" + endpoint, "3"},
		{"mlgate_requests_total" + model, "1"},
		{"mlgate_request_duration_seconds_count" + model, "1"},
		{"mlgate_requests_total" + strings.Replace(model, `status="200"`, `status="400"`, 1), "1"},
		// No model served: the caller's model name is no label.
		{`mlgate_requests_total{endpoint="",method="POST",model="",route="/v1/models/:name/predict",status="404",variant="",version=""}`, "1"},
		{`mlgate_requests_total{endpoint="",method="GET",model="",route="unmatched",status="404",variant="",version=""}`, "1"},
		{"mlgate_inference_table_queue", "*"},
		{"mlgate_shadow_queue", "0"},
	} {
		got, ok := series[tt.series]
		if !ok || (tt.value != "*" && got != tt.value) {
			t.Errorf("%s = %q (present %v), want %s", tt.series, got, ok, tt.value)
		}
	}
	for s := range series {
		if strings.Contains(s, "nope") || strings.Contains(s, "/no/such") {
			t.Errorf("series %s holds a name the caller chose", s)
		}
	}
}

var labelRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// parseSeries reads the Prometheus text format into series (name and
// labels, sorted, without the OpenTelemetry scope's) and values.
func parseSeries(t *testing.T, text []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		key, value := line[:i], line[i+1:]
		if name, labels, ok := strings.Cut(key, "{"); ok {
			var kept []string
			for _, m := range labelRE.FindAllStringSubmatch(labels, -1) {
				if !strings.HasPrefix(m[1], "otel_scope_") {
					kept = append(kept, m[0])
				}
			}
			key = name + "{" + strings.Join(kept, ",") + "}"
			if len(kept) == 0 {
				key = name
			}
		}
		out[key] = value
	}
	return out
}

// syncBuffer is a JSON log the server's goroutines write while a test
// reads it.
type syncBuffer struct{ testservers.Log }

func (b *syncBuffer) lines() []map[string]any {
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestRequestLogCarriesTrace checks that a request's JSON log line names
// the request's id and the caller's trace.
func TestRequestLogCarriesTrace(t *testing.T) {
	tr, exp := inMemoryTracing(t)
	var buf syncBuffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	g := startGateway(t, withTracing(tr), withLog(log))
	g.register("linear", modelzoo.Linear)
	exp.Reset()

	r, _ := g.post("/v1/models/linear/predict", `{"request_id": "body-id", `+linearInputs+`}`, map[string]string{"traceparent": callerTraceparent})
	if r.status != 200 {
		t.Fatalf("predict: %d %s", r.status, r.body)
	}
	var server tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindServer {
			server = s
		}
	}
	var found bool
	for _, l := range buf.lines() {
		if l["msg"] != "request" || l["route"] != "/v1/models/:name/predict" {
			continue
		}
		found = true
		if l["trace_id"] != callerTrace || l["span_id"] != server.SpanContext.SpanID().String() || l["request_id"] != "body-id" || l["status"] != float64(200) {
			t.Errorf("request log line %v: want trace_id %s, span_id %s (the server span's), request_id body-id, status 200",
				l, callerTrace, server.SpanContext.SpanID())
		}
	}
	if !found {
		t.Errorf("no request log line in\n%s", buf.String())
	}
}

// BenchmarkInferTelemetry measures BenchmarkInfer's request with the
// server's metrics recorded (as mlgate always runs), and with every request
// traced as well (telemetry.sample_ratio 1, spans batched to an exporter
// that drops them).
func BenchmarkInferTelemetry(b *testing.B) {
	g := startGateway(b)
	g.register("linear", modelzoo.Linear)
	body := serving.LinearRequest(b, 1)
	for _, traced := range []bool{false, true} {
		name := "Linear_Rows1_Metrics"
		d := serving.Deps{Registry: g.reg, Catalog: g.catalog, Features: g.features, Auth: g.authn, Log: g.log}
		if traced {
			name += "_Traced"
			tr, err := telemetry.NewTracing(b.Context(), telemetry.TraceOptions{SampleRatio: 1,
				Processors: []sdktrace.SpanProcessor{sdktrace.NewBatchSpanProcessor(tracetest.NewNoopExporter())}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { tr.Shutdown(context.Background()) })
			d.Tracer = tr.Tracer("serving")
		}
		b.Run(name, func(b *testing.B) {
			m, err := telemetry.New()
			if err != nil {
				b.Fatal(err)
			}
			srv := serving.New(serving.Options{MaxBodyBytes: 1 << 20, Version: "bench"}, d)
			if err := srv.RegisterMetrics(m.Meter("serving")); err != nil {
				b.Fatal(err)
			}
			client := serveInMemory(b, srv)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://mlgate/v2/models/linear/infer")
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetBody(body)
			b.ReportAllocs()
			for b.Loop() {
				if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					b.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body())
				}
			}
		})
	}
}

// serveInMemory serves srv on an in-memory listener and returns a client
// for it.
func serveInMemory(b *testing.B, srv *serving.Server) *fasthttp.HostClient {
	ln := fasthttputil.NewInmemoryListener()
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	return &fasthttp.HostClient{Addr: "mlgate", Dial: func(string) (net.Conn, error) { return ln.Dial() }}
}
