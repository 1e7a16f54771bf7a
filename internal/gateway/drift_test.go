package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"mime/multipart"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/modelzoo"
)

// TestDriftAlertMetric closes a drifted window and checks the alert is
// counted in /metrics per monitor and written to the audit trail.
func TestDriftAlertMetric(t *testing.T) {
	g, err := Start(t.Context(), testConfig(t.TempDir()), "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())

	rng := rand.New(rand.NewPCG(5, 6))
	b := drift.NewBaselineBuilder()
	for range 5000 {
		for j := range 4 {
			if err := b.Add(fmt.Sprintf("x[%d]", j), rng.NormFloat64()); err != nil {
				t.Fatal(err)
			}
		}
	}
	baseline, err := json.Marshal(b.Build(10))
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("metadata", `{"baseline": `+string(baseline)+`}`)
	fw, _ := mw.CreateFormFile("model", "linear.onnx")
	raw, err := os.ReadFile(modelzoo.Path(modelzoo.Linear))
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(raw)
	mw.Close()
	call(t, g, "POST", "/v1/models/linear/versions", mw.FormDataContentType(), &body)
	call(t, g, "PUT", "/v1/monitors/shift", "application/json", strings.NewReader(
		`{"model": "linear", "window": "1s", "min_samples": 100, "thresholds": {"psi": 0.2}}`))

	rows := make([][4]float64, 50)
	for range 4 {
		for i := range rows {
			for j := range 4 {
				rows[i][j] = 3 + rng.NormFloat64()
			}
		}
		in, _ := json.Marshal(map[string]any{"inputs": map[string]any{"x": rows}})
		call(t, g, "POST", "/v1/models/linear/predict", "application/json", bytes.NewReader(in))
	}
	time.Sleep(1100 * time.Millisecond)
	g.Drift.Tick(t.Context())

	if m := call(t, g, "GET", "/metrics", "", nil); !strings.Contains(m, `mlgate_drift_detected_total{monitor="shift"} 1`) {
		t.Errorf("/metrics lacks mlgate_drift_detected_total{monitor=\"shift\"} 1:\n%s", grepLines(m, "mlgate_drift"))
	}
	if audit := call(t, g, "GET", "/v1/audit", "", nil); !strings.Contains(audit, `"drift_detected"`) {
		t.Errorf("audit trail lacks the alert: %s", audit)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
