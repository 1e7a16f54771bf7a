package gateway

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/serving/onnx"
)

// TestMetricsAtStart scrapes /metrics of a gateway that has just started,
// before any request: the Go runtime's and the process's series are there,
// mlgate_build_info says what runs, the counters whose label sets are
// known (each monitor's drift alerts, each store's degraded reads, each
// view's values by status and defaults, the panics of requests) are present
// at 0, and `promtool check metrics` finds nothing to say. A monitor or view
// created while the gateway runs has its series at once, too.
func TestMetricsAtStart(t *testing.T) {
	promtool := testservers.Promtool(t)
	dir := t.TempDir()
	g, err := Start(t.Context(), testConfig(dir), "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	registerLinear(t, g, "linear")
	call(t, g, "PUT", "/v1/feature-views/user", "application/json", strings.NewReader(
		`{"entities": ["user_id"], "features": [{"name": "age", "type": "float"}]}`))
	if m := call(t, g, "GET", "/metrics", "", nil); !strings.Contains(m, `mlgate_feature_defaults_total{view="user"} 0`+"\n") {
		t.Errorf("a view just created has no mlgate_feature_defaults_total at 0:\n%s", grepLines(m, "mlgate_feature"))
	}
	call(t, g, "PUT", "/v1/monitors/shift", "application/json", strings.NewReader(
		`{"model": "linear", "window": "1s", "min_samples": 100, "thresholds": {"psi": 0.2}}`))
	if m := call(t, g, "GET", "/metrics", "", nil); !strings.Contains(m, `mlgate_drift_detected_total{monitor="shift"} 0`+"\n") {
		t.Errorf("a monitor just created has no mlgate_drift_detected_total at 0:\n%s", grepLines(m, "mlgate_drift"))
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	g, err = Start(t.Context(), testConfig(dir), "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	m := call(t, g, "GET", "/metrics", "", nil)
	buildInfo := `mlgate_build_info{go_version="` + runtime.Version() + `",onnxruntime_version="` + onnx.Version() + `",revision="[^"]+",version="test"} 1`
	for _, want := range []string{
		`go_goroutines \d+`,
		`go_memstats_heap_alloc_bytes \S+`,
		`go_gc_duration_seconds_count \d+`,
		`process_cpu_seconds_total \S+`,
		`process_resident_memory_bytes \S+`,
		`process_open_fds \d+`,
		regexp.QuoteMeta(buildInfo[:strings.Index(buildInfo, `revision=`)]) + `revision="[^"]+",version="test"\} 1`,
		`mlgate_drift_detected_total\{monitor="shift"\} 0`,
		`mlgate_feature_degraded_total\{store="[^"]+"\} 0`,
		`mlgate_feature_values_total\{status="PRESENT",view="user"\} 0`,
		`mlgate_feature_values_total\{status="NOT_FOUND",view="user"\} 0`,
		`mlgate_feature_values_total\{status="STALE",view="user"\} 0`,
		`mlgate_feature_defaults_total\{view="user"\} 0`,
		`mlgate_panics_total\{where="http handler"\} 0`,
		`mlgate_panics_total\{where="inference-table writer"\} 0`,
	} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(m) {
			t.Errorf("/metrics right after start has no line matching %s", want)
		}
	}

	promtoolCheck(t, promtool, "right after start", m)

	// And once requests have made the rest of the series.
	predictLinear(t, g, "linear", rand.New(rand.NewPCG(1, 2)), 50, 3)
	promtoolCheck(t, promtool, "after a prediction", call(t, g, "GET", "/metrics", "", nil))
}

// promtoolCheck runs `promtool check metrics` on a scrape of /metrics and
// fails the test when it finds anything to say.
func promtoolCheck(t *testing.T, promtool, when, scrape string) {
	t.Helper()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || strings.TrimSpace(out.String()) != "" {
		t.Errorf("promtool check metrics on /metrics %s: %v\n%s\n/metrics:\n%s", when, err, out.String(), scrape)
		return
	}
	t.Logf("promtool check metrics on /metrics %s: no problems in %d lines", when, strings.Count(scrape, "\n"))
}
