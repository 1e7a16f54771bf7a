package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
)

// registerLinear registers linear.onnx as model name, with a baseline of
// its input x drawn from N(0, 1).
func registerLinear(t *testing.T, g *Gateway, name string) {
	t.Helper()
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
	raw, err := os.ReadFile(modelzoo.Path(modelzoo.Linear))
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("metadata", `{"baseline": `+string(baseline)+`}`)
	fw, _ := mw.CreateFormFile("model", "linear.onnx")
	fw.Write(raw)
	mw.Close()
	call(t, g, "POST", "/v1/models/"+name+"/versions", mw.FormDataContentType(), &body)
}

// predictLinear sends n rows of inputs from N(mean, 1) to model name.
func predictLinear(t *testing.T, g *Gateway, name string, rng *rand.Rand, n int, mean float64) {
	t.Helper()
	rows := make([][4]float64, n)
	for i := range rows {
		for j := range 4 {
			rows[i][j] = mean + rng.NormFloat64()
		}
	}
	in, _ := json.Marshal(map[string]any{"inputs": map[string]any{"x": rows}})
	call(t, g, "POST", "/v1/models/"+name+"/predict", "application/json", bytes.NewReader(in))
}

// listedMonitor is a monitor as GET /v1/monitors lists it.
type listedMonitor struct {
	Name   string `json:"name"`
	Model  string `json:"model"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

func listMonitors(t *testing.T, g *Gateway) map[string]listedMonitor {
	t.Helper()
	var list struct {
		Monitors []listedMonitor `json:"monitors"`
	}
	if err := json.Unmarshal([]byte(call(t, g, "GET", "/v1/monitors", "", nil)), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]listedMonitor{}
	for _, m := range list.Monitors {
		out[m.Name] = m
	}
	return out
}

// TestStartupMonitorsSurviveRestart puts three monitors: one on a model's
// registered baseline, one on a time range of the inference table, and one
// on a model that is then deleted. After a restart on the same data
// directory the first two are listed and running (they count the traffic
// that follows), and the third is listed with the error that keeps it from
// running, in the list and in its report.
func TestStartupMonitorsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	g, err := Start(t.Context(), testConfig(dir), "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	registerLinear(t, g, "lin")
	registerLinear(t, g, "gone")
	rng := rand.New(rand.NewPCG(7, 8))
	from := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	for range 4 {
		predictLinear(t, g, "lin", rng, 50, 0)
	}
	if err := g.Server.FlushRecords(t.Context()); err != nil {
		t.Fatal(err)
	}
	to := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	const rules = `"window": "1h", "min_samples": 10, "thresholds": {"psi": 0.2}`
	call(t, g, "PUT", "/v1/monitors/on-model", "application/json", strings.NewReader(
		`{"model": "lin", "baseline": "model", `+rules+`}`))
	call(t, g, "PUT", "/v1/monitors/on-range", "application/json", strings.NewReader(
		`{"model": "lin", "baseline": "`+from.Format(time.RFC3339)+"/"+to.Format(time.RFC3339)+`", `+rules+`}`))
	call(t, g, "PUT", "/v1/monitors/on-gone", "application/json", strings.NewReader(
		`{"model": "gone", `+rules+`}`))
	call(t, g, "DELETE", "/v1/models/gone/versions/1", "", nil)
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	var logs testservers.Log
	g, err = Start(t.Context(), testConfig(dir), "test", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	listed := listMonitors(t, g)
	if len(listed) != 3 {
		t.Fatalf("after a restart, GET /v1/monitors lists %+v; want the three monitors", listed)
	}
	for _, name := range []string{"on-model", "on-range"} {
		if m := listed[name]; m.Status != drift.StatusRunning || m.Error != "" {
			t.Errorf("%s after a restart: %+v, want running", name, m)
		}
	}
	gone := listed["on-gone"]
	if gone.Status != drift.StatusError || !strings.Contains(gone.Error, `"gone"`) {
		t.Errorf("on-gone after a restart: %+v, want status error naming the missing model", gone)
	}
	if !strings.Contains(logs.String(), "drift monitor not started") || !strings.Contains(logs.String(), "on-gone") {
		t.Errorf("the log does not say on-gone could not start:\n%s", grepLines(logs.String(), "drift"))
	}

	predictLinear(t, g, "lin", rng, 30, 0)
	for _, name := range []string{"on-model", "on-range"} {
		var r drift.MonitorReport
		if err := json.Unmarshal([]byte(call(t, g, "GET", "/v1/monitors/"+name+"/report", "", nil)), &r); err != nil {
			t.Fatal(err)
		}
		if r.Status != drift.StatusRunning || r.Current.Samples != 30 || r.Model.Name != "lin" {
			t.Errorf("%s report after a restart: status %s, %d samples, model %+v; want running, 30, lin", name, r.Status, r.Current.Samples, r.Model)
		}
	}
	var r drift.MonitorReport
	if err := json.Unmarshal([]byte(call(t, g, "GET", "/v1/monitors/on-gone/report", "", nil)), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != drift.StatusError || r.Error != gone.Error || r.Spec.Model != "gone" {
		t.Errorf("on-gone report: %+v", r)
	}
}
