package serving

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/registry"
)

// normalRows returns n rows of 4 features drawn from N(mean_j, 1).
func normalRows(rng *rand.Rand, n int, means [4]float64) [][4]float64 {
	rows := make([][4]float64, n)
	for i := range rows {
		for j := range 4 {
			rows[i][j] = means[j] + rng.NormFloat64()
		}
	}
	return rows
}

// linearBaseline is a baseline of linear.onnx's input x from N(0, 1) samples.
func linearBaseline(t *testing.T) string {
	t.Helper()
	b := drift.NewBaselineBuilder()
	for _, r := range normalRows(rand.New(rand.NewPCG(1, 1)), 20000, [4]float64{}) {
		for j, v := range r {
			if err := b.Add(fmt.Sprintf("x[%d]", j), v); err != nil {
				t.Fatal(err)
			}
		}
	}
	raw, err := json.Marshal(b.Build(10))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// sendRows predicts rows on model linear, 50 a request.
func (g *gateway) sendRows(rows [][4]float64) {
	g.t.Helper()
	for i := 0; i < len(rows); i += 50 {
		batch := rows[i:min(i+50, len(rows))]
		raw, _ := json.Marshal(map[string]any{"inputs": map[string]any{"x": batch}})
		g.must("POST", "/v1/models/linear/predict", string(raw), 200)
	}
}

// TestDriftRaisesSignedRetriedAlert feeds a monitor windows of inputs drawn
// from its baseline (no alert), then a window with one shifted feature: the
// alert names that feature alone, and its webhook, refused once, arrives
// again with a valid signature.
func TestDriftRaisesSignedRetriedAlert(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	var delivered []byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if !drift.Verify("s3cret", body, r.Header.Get("X-Mlgate-Signature")) {
			t.Errorf("bad signature %q", r.Header.Get("X-Mlgate-Signature"))
		}
		delivered = body
	}))
	defer hook.Close()

	g := startGateway(t)
	raw, _ := os.ReadFile(modelzoo.Path(modelzoo.Linear))
	if r := g.upload("linear", raw, `{"baseline": `+linearBaseline(t)+`}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	g.must("PUT", "/v1/monitors/inputs", `{"model": "linear", "window": "1s", "min_samples": 200,
		"thresholds": {"psi": 0.2, "ks_p": 0.01, "js": 0.1},
		"webhook": {"url": "`+hook.URL+`", "secret": "s3cret"}}`, 200)

	rng := rand.New(rand.NewPCG(2, 2))
	window := func(means [4]float64) {
		g.sendRows(normalRows(rng, 600, means))
		time.Sleep(1100 * time.Millisecond)
		g.drift.Tick(t.Context())
	}
	for range 3 {
		window([4]float64{})
	}
	var report monitorReport
	g.must("GET", "/v1/monitors/inputs/report", "", 200).decode(t, &report)
	if len(report.History) != 3 {
		t.Fatalf("%d windows in the history, want 3", len(report.History))
	}
	for _, w := range report.History {
		if w.Drifted {
			t.Fatalf("a window drawn from the baseline drifted: %+v", w)
		}
	}
	if report.Spec.Webhook.Secret == "s3cret" {
		t.Error("the report shows the webhook secret")
	}

	window([4]float64{0, 2, 0, 0})
	g.must("GET", "/v1/monitors/inputs/report", "", 200).decode(t, &report)
	last := report.History[len(report.History)-1]
	if !last.Drifted || !last.Alerted {
		t.Fatalf("the shifted window: %+v", last)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return delivered != nil })
	var alert drift.Alert
	json.Unmarshal(delivered, &alert)
	features := map[string]bool{}
	for _, d := range alert.Drifted {
		features[d.Feature] = true
	}
	if alert.Event != "drift.detected" || alert.Monitor != "inputs" || alert.Model.Name != "linear" || alert.Model.Version != 1 ||
		len(features) != 1 || !features["x[1]"] {
		t.Errorf("alert %s", delivered)
	}
	if attempts != 2 {
		t.Errorf("%d webhook attempts, want 2 (one refused, one accepted)", attempts)
	}
	var audit struct {
		Events []registry.AuditEvent `json:"events"`
	}
	g.must("GET", "/v1/audit", "", 200).decode(t, &audit)
	if last := audit.Events[len(audit.Events)-1]; last.Action != "drift_detected" {
		t.Errorf("last audit event %+v", last)
	}
}

// TestLabelsGiveAccuracy labels iris predictions, 7 of 10 rightly, and
// finds the hand-computed accuracy in the monitor's report.
func TestLabelsGiveAccuracy(t *testing.T) {
	g := startGateway(t)
	b := drift.NewBaselineBuilder()
	for i := range 100 {
		b.Add("float_input[0]", float64(i%10))
	}
	baseline, _ := json.Marshal(b.Build(5))
	raw, _ := os.ReadFile(modelzoo.Path(modelzoo.IrisFile))
	if r := g.upload("iris", raw, `{"baseline": `+string(baseline)+`}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	g.must("PUT", "/v1/monitors/iris", `{"model": "iris", "window": "1h", "thresholds": {"psi": 0.2}}`, 200)
	// Rows whose class the model predicts: 0, 1, 2.
	rows := [][4]float64{{5.1, 3.5, 1.4, 0.2}, {6.0, 2.9, 4.5, 1.5}, {6.9, 3.1, 5.4, 2.1}}
	var labels []string
	for i := range 10 {
		class := i % 3
		body, _ := json.Marshal(map[string]any{"request_id": fmt.Sprint("req-", i), "inputs": map[string]any{"float_input": [][4]float64{rows[class]}}})
		g.must("POST", "/v1/models/iris/predict", string(body), 200)
		label := class
		if i < 3 { // the first three labels disagree with the model
			label = (class + 1) % 3
		}
		labels = append(labels, fmt.Sprintf(`{"request_id": "req-%d", "label": %d}`, i, label))
	}
	g.must("POST", "/v1/labels", `{"labels": [`+strings.Join(labels, ",")+`]}`, 200)
	var report monitorReport
	g.must("GET", "/v1/monitors/iris/report", "", 200).decode(t, &report)
	if len(report.Performance) != 1 {
		t.Fatalf("performance %+v", report.Performance)
	}
	p := report.Performance[0]
	if p.Kind != "classifier" || p.Labelled != 10 || p.Accuracy == nil || *p.Accuracy != 0.7 || p.Model != "iris" {
		t.Errorf("performance %+v (accuracy %v)", p, p.Accuracy)
	}
	g.must("POST", "/v1/labels", `{"labels": [{"request_id": "x"}]}`, 400)
}
