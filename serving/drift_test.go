package serving_test

import (
	"bytes"
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
	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/serving"
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

// monitorReport is a monitor's report as GET /v1/monitors/:monitor/report
// answers it.
type monitorReport struct {
	drift.MonitorReport
	Performance []serving.Performance `json:"performance"`
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

	clk := clock.NewFake(time.Now())
	g := startGateway(t, withClock(clk))
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
		if err := g.server.FlushRecords(t.Context()); err != nil { // the window the rows were answered in sees them
			t.Fatal(err)
		}
		clk.Advance(1100 * time.Millisecond) // the window ends: the monitors' loop may close it
		g.drift.Tick(t.Context())            // or this, before the report is read
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
	waitFor(t, func() bool {
		clk.Advance(time.Second) // the webhook's backoff
		mu.Lock()
		defer mu.Unlock()
		return delivered != nil
	})
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
// finds the hand-computed accuracy in the monitor's report, which reads the
// predictions where the table's writer holds them: it completes no file.
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
	if st := g.tables.Stats(); st.Written != 0 {
		t.Errorf("the report completed files of %d rows, want none", st.Written)
	}
	if r := g.must("GET", "/v1/monitors/iris/report?performance=false", "", 200); bytes.Contains(r.body, []byte(`"performance"`)) {
		t.Errorf("report?performance=false has a performance: %s", r.body)
	}
	if msg := g.must("GET", "/v1/monitors/iris/report?performance=yes", "", 400).errorMessage(t); msg != `query parameter performance="yes": must be true or false` {
		t.Errorf("report?performance=yes: %s", msg)
	}
	g.must("POST", "/v1/labels", `{"labels": [{"request_id": "x"}]}`, 400)
}

// TestRunMonitor_SeesOpenFiles runs a monitor over the predictions just
// answered: the run counts every one, and completes no file of the table.
func TestRunMonitor_SeesOpenFiles(t *testing.T) {
	g := startGateway(t)
	raw, _ := os.ReadFile(modelzoo.Path(modelzoo.Linear))
	if r := g.upload("linear", raw, `{"baseline": `+linearBaseline(t)+`}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	g.must("PUT", "/v1/monitors/inputs", `{"model": "linear", "window": "1h", "thresholds": {"psi": 0.2}}`, 200)
	g.sendRows(normalRows(rand.New(rand.NewPCG(3, 3)), 120, [4]float64{}))
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"from": %q, "to": %q}`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	var report drift.WindowReport
	g.must("POST", "/v1/monitors/inputs/run", body, 200).decode(t, &report)
	if report.Samples != 120 {
		t.Errorf("the run counted %d predictions, want 120", report.Samples)
	}
	if st := g.tables.Stats(); st.Written != 0 {
		t.Errorf("the run completed files of %d rows, want none", st.Written)
	}
}

// TestMonitorRoutes_HostileBodies sends the monitor routes bodies that are
// not monitors: each is a 400 whose message names what is wrong, none a 5xx
// (and none the panic `null` once was), and the gateway still answers.
func TestMonitorRoutes_HostileBodies(t *testing.T) {
	g := startGateway(t)
	const valid = `"model": "linear", "window": "1m", "thresholds": {"psi": 0.2}`
	deep := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
	}
	for _, tt := range []struct {
		name, method, path, body, want string
	}{
		{"null", "PUT", "/v1/monitors/m2", `null`, "monitor: want a JSON object, got null"},
		{"array", "PUT", "/v1/monitors/m2", `[]`, "monitor: want a JSON object, got an array"},
		{"empty object", "PUT", "/v1/monitors/m2", `{}`, "endpoint or model: one of them is required"},
		{"number", "PUT", "/v1/monitors/m2", `1`, "monitor: want a JSON object, got a number"},
		{"string", "PUT", "/v1/monitors/m2", `"s"`, "monitor: want a JSON object, got a string"},
		{"bool", "PUT", "/v1/monitors/m2", `false`, "monitor: want a JSON object, got true or false"},
		{"empty body", "PUT", "/v1/monitors/m2", ``, "monitor: malformed JSON"},
		{"malformed", "PUT", "/v1/monitors/m2", `{"model": `, "monitor: malformed JSON"},
		{"not UTF-8", "PUT", "/v1/monitors/m2", "{\"model\": \"\xff\"}", "monitor: not valid UTF-8"},
		{"trailing data", "PUT", "/v1/monitors/m2", `{` + valid + `} []`, "unexpected data after the JSON value"},
		{"deep arrays", "PUT", "/v1/monitors/m2", deep("[", "]", 10000), "monitor: want a JSON object, got an array"},
		{"unknown field", "PUT", "/v1/monitors/m2", `{"` + strings.Repeat("u", 500_000) + `": 1}`, `monitor: unknown field "uuu`},
		{"deep objects", "PUT", "/v1/monitors/m2", deep(`{"a":`, "}", 10000), `monitor: unknown field "a"`},
		{"deep in a field", "PUT", "/v1/monitors/m2", `{"features": ` + deep("[", "]", 10000) + `}`, "exceeded max depth"},
		{"null fields", "PUT", "/v1/monitors/m2", `{"model": null, "thresholds": null, "webhook": null, "features": null}`, "endpoint or model: one of them is required"},
		{"wrong types", "PUT", "/v1/monitors/m2", `{"model": ["linear"]}`, `field "model": expected a string`},
		{"huge number", "PUT", "/v1/monitors/m2", `{` + valid + `, "min_samples": 1e400}`, `field "min_samples"`},
		{"huge threshold", "PUT", "/v1/monitors/m2", `{"model": "linear", "window": "1m", "thresholds": {"psi": 1e308}}`, "thresholds.psi"},
		{"huge window", "PUT", "/v1/monitors/m2", `{"model": "linear", "window": "9999999999h", "thresholds": {"psi": 0.2}}`, `field "window": want a Go duration`},
		{"huge name", "PUT", "/v1/monitors/m2", `{"name": "` + strings.Repeat("n", 500_000) + `", ` + valid + `}`, "name: the body names"},
		{"huge model", "PUT", "/v1/monitors/m2", `{"model": "` + strings.Repeat("n", 500_000) + `", "window": "1m", "thresholds": {"psi": 0.2}}`, "model: at most 256 bytes"},
		{"huge feature list", "PUT", "/v1/monitors/m2", `{` + valid + `, "features": [` + strings.Repeat(`"f",`, 5000) + `"f"]}`, "features: at most 1000"},
		{"huge webhook", "PUT", "/v1/monitors/m2", `{` + valid + `, "webhook": {"url": "https://h/` + strings.Repeat("x", 500_000) + `"}}`, "webhook.url: at most 2048 bytes"},
		{"control characters", "PUT", "/v1/monitors/m2", `{"model": "lin\u0000ear", "window": "1m", "thresholds": {"psi": 0.2}}`, "model: must not hold control characters"},
		{"run null", "POST", "/v1/monitors/m2/run", `null`, "from must be before to"},
		{"run array", "POST", "/v1/monitors/m2/run", `[]`, "request body: expected an object"},
		{"run deep", "POST", "/v1/monitors/m2/run", deep("[", "]", 10000), "request body: expected an object"},
		{"run bad time", "POST", "/v1/monitors/m2/run", `{"from": "yesterday"}`, "request body"},
		{"labels null", "POST", "/v1/labels", `null`, "labels: want 1 to"},
		{"labels deep", "POST", "/v1/labels", `{"labels": ` + deep("[", "]", 10000) + `}`, "request body"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := g.do(tt.method, tt.path, "application/json", []byte(tt.body))
			if r.status != http.StatusBadRequest {
				t.Fatalf("%s %s: %d %.300s, want 400", tt.method, tt.path, r.status, r.body)
			}
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.want) {
				t.Errorf("%s %s: error %.300q, want it to contain %q", tt.method, tt.path, msg, tt.want)
			}
			if strings.HasPrefix(tt.path, "/v1/monitors/") && len(r.body) > 1000 {
				t.Errorf("%s %s: an answer of %d bytes repeats the request", tt.method, tt.path, len(r.body))
			}
		})
	}
	g.must("GET", "/v1/monitors", "", 200)
	for _, path := range []string{"/v1/monitors/m2/report", "/v1/monitors/..%2F..%2Fetc/report", "/v1/monitors/%00/report"} {
		if r := g.do("GET", path, "", nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", path, r.status, r.body)
		}
	}
	if r := g.do("DELETE", "/v1/monitors/%00", "", nil); r.status != http.StatusNotFound {
		t.Errorf("DELETE a monitor that cannot exist: %d %s, want 404", r.status, r.body)
	}
}

// TestPutMonitor_RefusesNamesAndWebhooks: a monitor's name follows the rule
// of model and endpoint names, and its webhook may not point at a
// link-local (metadata) or unspecified address; each refusal is a 400 that
// names the field.
func TestPutMonitor_RefusesNamesAndWebhooks(t *testing.T) {
	g := startGateway(t)
	const valid = `"model": "linear", "window": "1m", "thresholds": {"psi": 0.2}`
	for _, tt := range []struct {
		name, path, body, want string
	}{
		{"300 characters", "/v1/monitors/" + strings.Repeat("m", 300), `{` + valid + `}`, "name: at most 128 characters, got 300"},
		{"escaped slashes", "/v1/monitors/..%2F..%2Fetc", `{` + valid + `}`, "name: "},
		{"NUL", "/v1/monitors/%00", `{` + valid + `}`, "name: "},
		{"NUL inside", "/v1/monitors/a%00b", `{` + valid + `}`, "name: "},
		{"leading dot", "/v1/monitors/.hidden", `{` + valid + `}`, `name: ".hidden": must start with a letter or digit`},
		{"space", "/v1/monitors/a%20b", `{` + valid + `}`, "name: "},
		{"body disagrees", "/v1/monitors/m", `{"name": "other", ` + valid + `}`, `name: the body names "other", the URL "m"`},
		{"metadata address", "/v1/monitors/m", `{` + valid + `, "webhook": {"url": "http://169.254.169.254/latest/meta-data/"}}`, "webhook.url: address not allowed: 169.254.169.254 is link-local"},
		{"IPv6 link-local", "/v1/monitors/m", `{` + valid + `, "webhook": {"url": "http://[fe80::1]/hook"}}`, "webhook.url: address not allowed: fe80::1 is link-local"},
		{"IPv4-mapped metadata", "/v1/monitors/m", `{` + valid + `, "webhook": {"url": "http://[::ffff:a9fe:a9fe]/"}}`, "webhook.url: address not allowed"},
		{"unspecified", "/v1/monitors/m", `{` + valid + `, "webhook": {"url": "http://0.0.0.0:8080/"}}`, "webhook.url: address not allowed: 0.0.0.0 is unspecified"},
		{"multicast", "/v1/monitors/m", `{` + valid + `, "webhook": {"url": "http://[ff02::1]/"}}`, "webhook.url: address not allowed: ff02::1 is multicast"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := g.do("PUT", tt.path, "application/json", []byte(tt.body))
			if r.status != http.StatusBadRequest {
				t.Fatalf("PUT %.80s: %d %.300s, want 400", tt.path, r.status, r.body)
			}
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.want) {
				t.Errorf("PUT %.80s: error %q, want it to contain %q", tt.path, msg, tt.want)
			}
		})
	}
	var list struct {
		Monitors []json.RawMessage `json:"monitors"`
	}
	g.must("GET", "/v1/monitors", "", 200).decode(t, &list)
	if len(list.Monitors) != 0 {
		t.Errorf("monitors were created: %s", list.Monitors)
	}
}
