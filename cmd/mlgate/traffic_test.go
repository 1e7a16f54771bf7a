package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/gateway"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/router"
)

// startTrafficGateway starts a gateway with model churn (versions 1 and 2)
// and endpoint churn splitting control (churn/1) and treatment (churn/2)
// 50/50. It returns the server URL.
func startTrafficGateway(t *testing.T) string {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	g, err := gateway.Start(t.Context(), cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown(context.Background()) })
	server := "http://" + g.Addr
	stdout = io.Discard
	defer func() { stdout = os.Stdout }()
	for _, file := range []string{modelzoo.Linear, modelzoo.LinearV2} {
		if err := run([]string{"models", "register", "--server", server, "--name", "churn", "--file", modelzoo.Path(file)}); err != nil {
			t.Fatal(err)
		}
	}
	// Validated, as a canary promoted into champion requires.
	for _, v := range []string{"1", "2"} {
		httpDo(t, http.MethodPut, server+"/v1/models/churn/versions/"+v+"/tags/validation_status", `{"value": "PASSED"}`, nil, http.StatusOK)
	}
	policy := `{"variants": [{"name": "control", "model": "churn/1", "weight": 50}, {"name": "treatment", "model": "churn/2", "weight": 50}]}`
	httpDo(t, http.MethodPut, server+"/v1/endpoints/churn", policy, nil, http.StatusCreated)
	return server
}

// httpDo sends a request and checks its status.
func httpDo(t *testing.T, method, url, body string, header http.Header, want int) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, url, resp.StatusCode, want, raw)
	}
}

// runOut runs the CLI and returns what it wrote to stdout.
func runOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	stdout = &buf
	defer func() { stdout = os.Stdout }()
	err := run(args)
	return buf.String(), err
}

// mustRun runs the CLI, fails the test on an error, and returns its output.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runOut(t, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out
}

// rowRE matches a table row that starts with the given cells, separated by
// the table's padding.
func rowRE(cells ...string) *regexp.Regexp {
	for i, c := range cells {
		cells[i] = regexp.QuoteMeta(c)
	}
	return regexp.MustCompile(`(?m)^` + strings.Join(cells, `\s+`) + `(\s|$)`)
}

func wantRow(t *testing.T, what, out string, cells ...string) {
	t.Helper()
	if re := rowRE(cells...); !re.MatchString(out) {
		t.Errorf("%s: no row matching %s in\n%s", what, re, out)
	}
}

func TestTrafficShowAndList(t *testing.T) {
	server := startTrafficGateway(t)
	for i := range 6 {
		body := fmt.Sprintf(`{"unit": "u%d", "inputs": {"x": [[0,1,2,3]]}}`, i)
		httpDo(t, http.MethodPost, server+"/v1/endpoints/churn/predict", body, nil, http.StatusOK)
	}

	out := mustRun(t, "traffic", "show", "churn", "--server", server)
	for _, h := range []string{"VARIANT", "MODEL", "WEIGHT", "SHARE", "REQUESTS", "ERRORS", "P50", "P99"} {
		if !strings.Contains(out, h) {
			t.Errorf("show: no header %s in\n%s", h, out)
		}
	}
	wantRow(t, "show", out, "control", "churn/1", "50")
	wantRow(t, "show", out, "treatment", "churn/2", "50")
	requests := int64(0)
	for _, m := range regexp.MustCompile(`(?m)^(?:control|treatment)\s+\S+\s+\d+\s+(?:\S+)\s+(\d+)\s`).FindAllStringSubmatch(out, -1) {
		var n int64
		fmt.Sscan(m[1], &n)
		requests += n
	}
	if requests != 6 {
		t.Errorf("show: the REQUESTS column sums to %d, want 6:\n%s", requests, out)
	}
	for _, want := range []string{"revision  1, updated", "sticky    none", "shadow    none", "srm       p-value", "over 6 requests", "canary    none"} {
		if !strings.Contains(out, want) {
			t.Errorf("show: no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "SAMPLE RATIO MISMATCH") {
		t.Errorf("show: SRM flagged on 6 requests:\n%s", out)
	}

	out = mustRun(t, "traffic", "show", "--json", "churn", "--server", server)
	var view endpointView
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	if view.Name != "churn" || len(view.Policy.Variants) != 2 || view.Stats.Requests != 6 {
		t.Errorf("show --json: name %q, %d variants, %d requests", view.Name, len(view.Policy.Variants), view.Stats.Requests)
	}

	out = mustRun(t, "traffic", "show", "--server", server)
	wantRow(t, "list", out, "NAME", "REVISION", "VARIANTS", "REQUESTS", "CANARY")
	wantRow(t, "list", out, "churn", "1", "control=50,treatment=50", "6", "-")

	out = mustRun(t, "traffic", "show", "--json", "--server", server)
	var list struct {
		Endpoints []endpointView `json:"endpoints"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Endpoints) != 1 {
		t.Errorf("show --json (list): %v, %d endpoints\n%s", err, len(list.Endpoints), out)
	}

	// Pinning every request to control breaks the 50/50 split loudly.
	pin := http.Header{"X-Mlgate-Variant": {"control"}}
	for range 120 {
		httpDo(t, http.MethodPost, server+"/v1/endpoints/churn/predict", `{"inputs": {"x": [[0,1,2,3]]}}`, pin, http.StatusOK)
	}
	out = mustRun(t, "traffic", "show", "churn", "--server", server)
	if !strings.Contains(out, "SAMPLE RATIO MISMATCH") || !strings.Contains(out, "MISMATCH") {
		t.Errorf("show after a skewed split: no SRM warning in\n%s", out)
	}

	bad := []struct {
		args []string
		want string
	}{
		{[]string{"traffic", "show", "nope", "--server", server}, `endpoint "nope" not found (HTTP 404)`},
		{[]string{"traffic", "show", "a", "b", "--server", server}, "want [ENDPOINT], got 2 arguments"},
		{[]string{"traffic"}, "want a subcommand"},
		{[]string{"traffic", "shove"}, `unknown subcommand "shove"`},
	}
	for _, b := range bad {
		if _, err := runOut(t, b.args...); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: err = %v, want %q", b.args, err, b.want)
		}
	}
}

func TestTrafficSetCanaryHistory(t *testing.T) {
	server := startTrafficGateway(t)

	out := mustRun(t, "traffic", "set", "churn", "control=80", "treatment=20", "--server", server)
	if !strings.Contains(out, "churn: weights set, revision 2") {
		t.Errorf("set: no confirmation in\n%s", out)
	}
	wantRow(t, "set", out, "control", "churn/1", "80", "80.0%")
	wantRow(t, "set", out, "treatment", "churn/2", "20", "20.0%")
	out = mustRun(t, "traffic", "show", "churn", "--server", server)
	wantRow(t, "show after set", out, "control", "churn/1", "80")
	wantRow(t, "show after set", out, "treatment", "churn/2", "20")

	bad := []struct {
		args []string
		want string
	}{
		{[]string{"traffic", "set", "churn", "control=abc", "--server", server}, `bad pair "control=abc"`},
		{[]string{"traffic", "set", "churn", "control", "--server", server}, `bad pair "control"`},
		{[]string{"traffic", "set", "churn", "control=1", "control=2", "--server", server}, `variant "control" is given twice`},
		{[]string{"traffic", "set", "churn", "--server", server}, "want ENDPOINT VARIANT=WEIGHT"},
		{[]string{"traffic", "set", "churn", "bogus=5", "--server", server}, `no variant "bogus"`},
		{[]string{"traffic", "set", "churn", "control=-5", "--server", server}, "must not be negative"},
		{[]string{"traffic", "set", "nope", "control=5", "--server", server}, "(HTTP 404)"},
		{[]string{"traffic", "canary", "churn", "--model", "churn/2", "--server", server}, "--steps, --interval required"},
		{[]string{"traffic", "canary", "churn", "--model", "churn/2", "--steps", "5,x,100", "--interval", "1h", "--server", server}, `"x" is not a whole number`},
		{[]string{"traffic", "canary", "churn", "--model", "churn/2", "--steps", "5,50", "--interval", "1h", "--server", server}, "steps: must end at 100"},
		{[]string{"traffic", "canary", "churn", "--model", "churn/9", "--steps", "100", "--interval", "1h", "--server", server}, "(HTTP 4"},
		{[]string{"traffic", "canary", "churn", "rewind", "--server", server}, `unknown command "rewind"`},
		{[]string{"traffic", "canary", "churn", "pause", "--model", "churn/2", "--server", server}, "--model only apply when starting"},
		{[]string{"traffic", "canary", "churn", "pause", "--server", server}, "(HTTP 409)"},
	}
	for _, b := range bad {
		if _, err := runOut(t, b.args...); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: err = %v, want %q", b.args, err, b.want)
		}
	}
	// The unknown variant's error is the server's 400, word for word.
	if _, err := runOut(t, "traffic", "set", "churn", "bogus=5", "--server", server); err == nil || !strings.HasSuffix(err.Error(), "(HTTP 400)") {
		t.Errorf("set bogus=5: err = %v, want the server's 400", err)
	}

	out = mustRun(t, "traffic", "canary", "churn", "--model", "churn/2", "--steps", "5,25,50,100", "--interval", "1h",
		"--max-error-rate", "0.01", "--max-p99-ms", "50", "--min-requests", "200", "--max-prediction-shift", "0.2", "--server", server)
	if !strings.Contains(out, "churn: canary churn/2 started, step 1 of 4 at 5%, every 1h0m0s, revision 3") {
		t.Errorf("canary start: no confirmation in\n%s", out)
	}
	wantRow(t, "canary start", out, "control", "churn/1", "76")
	wantRow(t, "canary start", out, "treatment", "churn/2", "19")
	wantRow(t, "canary start", out, "canary", "churn/2", "5", "5.0%")

	out = mustRun(t, "traffic", "show", "churn", "--server", server)
	for _, want := range []string{
		"canary    churn/2 running, step 1 of 4 at 5%, interval 1h0m0s, step started ",
		"steps 5,25,50,100, promote alias champion",
		"rules max_error_rate 0.01, max_p99_latency_ms 50, min_requests 200, max_prediction_shift 0.2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show with a canary: no %q in\n%s", want, out)
		}
	}
	out = mustRun(t, "traffic", "show", "--server", server)
	wantRow(t, "list with a canary", out, "churn", "3", "control=76,treatment=19,canary=5", "0", "running@5%")

	if _, err := runOut(t, "traffic", "set", "churn", "control=50", "--server", server); err == nil || !strings.Contains(err.Error(), "canary is running") {
		t.Errorf("set during a canary: err = %v, want the server's conflict", err)
	}
	out = mustRun(t, "traffic", "canary", "churn", "pause", "--server", server)
	if !strings.Contains(out, "churn: canary paused, revision 4") {
		t.Errorf("canary pause:\n%s", out)
	}
	out = mustRun(t, "traffic", "canary", "churn", "resume", "--server", server)
	if !strings.Contains(out, "churn: canary running, revision 5") {
		t.Errorf("canary resume:\n%s", out)
	}
	out = mustRun(t, "traffic", "canary", "churn", "abort", "--server", server)
	if !strings.Contains(out, "churn: canary aborted, revision 6") {
		t.Errorf("canary abort:\n%s", out)
	}
	wantRow(t, "canary abort", out, "control", "churn/1", "80")
	if regexp.MustCompile(`(?m)^canary\s`).MatchString(out) {
		t.Errorf("canary abort: the canary variant is still there:\n%s", out)
	}

	out = mustRun(t, "traffic", "history", "churn", "--server", server)
	wantRow(t, "history", out, "REVISION", "TIME", "ACTOR", "ACTION", "WEIGHTS", "CANARY")
	rows := []struct{ rev, action, weights, canary string }{
		{"1", router.ActionCreate, "control=50,treatment=50", "-"},
		{"2", router.ActionSetWeights, "control=80,treatment=20", "-"},
		{"3", router.ActionCanaryStart, "control=76,treatment=19,canary=5", "running@5%"},
		{"4", router.ActionCanaryPause, "control=76,treatment=19,canary=5", "paused@5%"},
		{"5", router.ActionCanaryResume, "control=76,treatment=19,canary=5", "running@5%"},
		{"6", router.ActionCanaryAbort, "control=80,treatment=20", "aborted@5%"},
	}
	for _, r := range rows {
		re := regexp.MustCompile(`(?m)^` + r.rev + `\s+\S+\s+\S+\s+` + regexp.QuoteMeta(r.action) + `\s+` + regexp.QuoteMeta(r.weights) + `\s+` + regexp.QuoteMeta(r.canary) + `$`)
		if !re.MatchString(out) {
			t.Errorf("history: no row %v in\n%s", r, out)
		}
	}
	out = mustRun(t, "traffic", "history", "churn", "--json", "--server", server)
	var h struct {
		Revisions []router.Revision `json:"revisions"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil || len(h.Revisions) != 6 {
		t.Errorf("history --json: %v, %d revisions", err, len(h.Revisions))
	}
	if _, err := runOut(t, "traffic", "history", "nope", "--server", server); err == nil || !strings.Contains(err.Error(), "(HTTP 404)") {
		t.Errorf("history nope: err = %v, want the server's 404", err)
	}
}

// TestTrafficShowFormat checks the lines of a show that a live gateway does
// not easily produce: a shadow with figures, weights not summing to 100, and
// a rolled-back canary with its reason and figures.
func TestTrafficShowFormat(t *testing.T) {
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	e := endpointView{
		Endpoint: router.Endpoint{
			Name:     "churn",
			Revision: 7,
			Policy: router.Policy{
				Variants: []router.Variant{{Name: "control", Model: "churn@champion", Weight: 2}, {Name: "canary", Model: "churn/8"}},
				Sticky:   &router.Sticky{Entity: "user_id"},
				Shadow:   &router.Shadow{Model: "churn/9", Percent: 10},
			},
			UpdatedAt: at,
			Canary: &router.Canary{
				Spec:          router.CanarySpec{Model: "churn/8", Steps: []int{5, 25, 100}, Interval: router.Duration(30 * time.Second), Analysis: router.Analysis{MaxErrorRate: 0.01}},
				State:         router.CanaryRolledBack,
				Step:          1,
				StepStartedAt: at,
				Reason:        "error rate 0.05 > max_error_rate 0.01",
				Figures:       map[string]float64{"canary_requests": 200, "canary_error_rate": 0.05},
			},
		},
		Stats: router.StatsSnapshot{
			Variants: []router.VariantStats{
				{Name: "control", Weight: 2, Requests: 1500, Errors: 3, ErrorRate: 0.002, Share: 1, P50Ms: 0.4321, P99Ms: 123.4},
				{Name: "canary", Weight: 0},
			},
			Shadow:   router.ShadowStats{Agree: 98, Disagree: 2, AgreementRate: 0.98, Diffs: 100, MeanAbsDiff: 0.0125, Dropped: 1, Failed: 0},
			Requests: 1500, SRMPValue: 1,
		},
		Replicas: map[string]replicaCounts{"r2": {Requests: 500, Errors: 1}, "r1": {Requests: 1000, Errors: 2}},
		Partial:  "this replica's figures only: control plane away",
	}
	var buf bytes.Buffer
	if err := writeEndpoint(&buf, e); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	wantRow(t, "format", out, "control", "churn@champion", "2", "(100.0%)", "100.0%", "1500", "3", "(0.2%)", "0.43ms", "123ms")
	wantRow(t, "format", out, "canary", "churn/8", "0", "(0.0%)", "-", "0", "0", "-", "-")
	for _, want := range []string{
		"revision  7, updated 2026-05-01T10:00:00Z",
		"sticky    entity user_id",
		"shadow    churn/9 at 10% of requests; agreement 98.0% (98 of 100), mean abs diff 0.0125 (100 compared), dropped 1, failed 0",
		"srm       p-value 1 over 1500 requests: ok",
		"replicas  r1 1000 (2 errors), r2 500 (1 errors)",
		"partial   this replica's figures only: control plane away",
		"canary    churn/8 rolled back, step 2 of 3 at 25%, interval 30s, step started 2026-05-01T10:00:00Z",
		"reason error rate 0.05 > max_error_rate 0.01",
		"figures canary_error_rate=0.05 canary_requests=200",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("format: no %q in\n%s", want, out)
		}
	}
}
