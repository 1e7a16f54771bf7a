package gateway

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/mlgate/mlgate/internal/modelzoo"
)

// TestTelemetry runs a predict with a caller's traceparent through a gateway
// that exports traces to an OTLP/HTTP collector: the request shows in
// /metrics, and at shutdown the collector has its spans, in the caller's
// trace.
func TestTelemetry(t *testing.T) {
	var mu sync.Mutex
	var exported [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			mu.Lock()
			exported = append(exported, body)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	cfg := testConfig(t.TempDir())
	cfg.Telemetry.OTLPEndpoint = collector.URL
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			g.Shutdown(context.Background())
		}
	}()

	call(t, g, "PUT", "/v1/feature-views/user", "application/json", strings.NewReader(
		`{"entities": ["user_id"], "features": [{"name": "age", "type": "float"}, {"name": "visits", "type": "int"}]}`))
	call(t, g, "POST", "/v1/feature-views/user/rows", "application/json", strings.NewReader(`{"rows": [{"user_id": "u1", "age": 40, "visits": 2}]}`))
	var upload bytes.Buffer
	mw := multipart.NewWriter(&upload)
	mw.WriteField("metadata", `{"feature_spec": {"entities": ["user_id"], "inputs": {"a": ["user:age", "request:x", "request:y"], "b": ["user:visits", "request:z"]}}}`)
	fw, _ := mw.CreateFormFile("model", "m.onnx")
	raw, err := os.ReadFile(modelzoo.Path(modelzoo.MultiInput))
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(raw)
	mw.Close()
	call(t, g, "POST", "/v1/models/scorer/versions", mw.FormDataContentType(), &upload)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("POST", "http://"+g.Addr+"/v1/models/scorer/predict",
		strings.NewReader(`{"entities": {"user_id": ["u1"]}, "request": {"x": [1], "y": [3], "z": [5]}}`))
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("predict: %d", resp.StatusCode)
	}

	metrics := call(t, g, "GET", "/metrics", "", nil)
	for _, want := range []string{
		`mlgate_requests_total{endpoint="",method="POST",model="scorer",route="/v1/models/:name/predict",status="200",variant="",version="1"} 1`,
		`mlgate_request_duration_seconds_count{endpoint="",method="POST",model="scorer",route="/v1/models/:name/predict",status="200",variant="",version="1"} 1`,
		`mlgate_inference_table_queue `,
		`mlgate_shadow_queue 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(metrics)
	}

	stopped = true
	if err := g.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	all := bytes.Join(exported, nil)
	mu.Unlock()
	id, _ := hex.DecodeString(traceID)
	for _, want := range [][]byte{id, []byte("POST /v1/models/:name/predict"), []byte("feature.lookup"), []byte("inference"), []byte("table.enqueue")} {
		if !bytes.Contains(all, want) {
			t.Errorf("the collector got no %q (%d exports)", want, len(exported))
		}
	}
}
