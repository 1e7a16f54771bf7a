package gateway

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/serving/tables"
)

// TestDriftAlertMetric closes a drifted window, on the gateway's clock, and
// checks the alert is counted in /metrics per monitor and written to the
// audit trail.
func TestDriftAlertMetric(t *testing.T) {
	clk := clock.NewFake(time.Now())
	g, err := Start(t.Context(), testConfig(t.TempDir()), "test", quiet(), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())

	registerLinear(t, g, "linear")
	call(t, g, "PUT", "/v1/monitors/shift", "application/json", strings.NewReader(
		`{"model": "linear", "window": "1s", "min_samples": 100, "thresholds": {"psi": 0.2}}`))
	rng := rand.New(rand.NewPCG(5, 6))
	for range 4 {
		predictLinear(t, g, "linear", rng, 50, 3)
	}
	if err := g.Server.FlushRecords(t.Context()); err != nil { // the window the predictions were answered in sees them
		t.Fatal(err)
	}
	clk.Advance(1100 * time.Millisecond)
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

// TestHungWebhookHoldsNoCaller raises drift alerts whose webhook never
// answers, window after window, while callers keep predicting: every
// request is still answered and every answered prediction recorded, since
// alerts go out on the notifier's goroutines and the recorder never waits
// for them. Were a caller or the recorder to wait on the webhook, the
// requests, or the flush, would hang until the test's deadline.
func TestHungWebhookHoldsNoCaller(t *testing.T) {
	hung := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hung }))
	defer hook.Close()
	clk := clock.NewFake(time.Now())
	g, err := Start(t.Context(), testConfig(t.TempDir()), "test", quiet(), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// The alerts in flight wait on the webhook, and their retries on
		// the fake clock: shut down within a deadline, as mlgate serve does.
		close(hung)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		g.Shutdown(ctx)
	}()
	registerLinear(t, g, "linear")
	call(t, g, "PUT", "/v1/monitors/shift", "application/json", strings.NewReader(
		`{"model": "linear", "window": "1s", "min_samples": 100, "cooldown": "1ms", "thresholds": {"psi": 0.2},
		  "webhook": {"url": "`+hook.URL+`"}}`))
	rng := rand.New(rand.NewPCG(7, 8))
	for range 5 {
		for range 4 {
			predictLinear(t, g, "linear", rng, 50, 3)
		}
		if err := g.Server.FlushRecords(t.Context()); err != nil {
			t.Fatal(err)
		}
		clk.Advance(1100 * time.Millisecond)
		g.Drift.Tick(t.Context())
	}
	if m := call(t, g, "GET", "/metrics", "", nil); !strings.Contains(m, `mlgate_drift_detected_total{monitor="shift"} 5`) {
		t.Errorf("/metrics lacks 5 alerts of the hung monitor:\n%s", grepLines(m, "mlgate_drift"))
	}
	rows := 0
	if err := g.Tables.ReadRows(t.Context(), tables.Filter{}, func(tables.Row) error { rows++; return nil }); err != nil {
		t.Fatal(err)
	}
	if rows != 20 {
		t.Errorf("%d rows in the tables, want the 20 answered", rows)
	}
}
