package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/gateway"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving"
)

// cliOut runs the CLI and returns what it wrote to stdout.
func cliOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	stdout = &buf
	defer func() { stdout = os.Stdout }()
	err := run(args)
	return buf.String(), err
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cliOut(t, args...)
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return out
}

func wantContains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: want %q in:\n%s", what, w, out)
		}
	}
}

// writeTrainingCSV writes n rows of 4 standard normal inputs of the Linear
// model and its first output.
func writeTrainingCSV(t *testing.T, path string, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("x[0],x[1],x[2],x[3],prediction:y[0]\n")
	for range n {
		x := [4]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		y := x[0] + 2*x[1] - 0.5*x[2] + 0.5
		fmt.Fprintf(&b, "%g,%g,%g,%g,%g\n", x[0], x[1], x[2], x[3], y)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDriftAndTablesCLI registers a model with a baseline computed from a
// CSV, puts a monitor on it, predicts, and reads the monitor's report, a
// batch window and the inference tables, all through the CLI against a
// running gateway.
func TestDriftAndTablesCLI(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	g, err := gateway.Start(t.Context(), cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	server := "http://" + g.Addr
	dir := t.TempDir()

	train := filepath.Join(dir, "train.csv")
	writeTrainingCSV(t, train, 500)
	meta := filepath.Join(dir, "meta.json")
	os.WriteFile(meta, []byte(`{"description": "linear with a baseline"}`), 0o600)
	out := mustCLI(t, "models", "register", "--server", server, "--name", "linear", "--file", modelzoo.Path(modelzoo.Linear),
		"--metadata", meta, "--baseline", train)
	wantContains(t, "register", out, "baseline from train.csv: 500 rows, 4 features, 1 prediction", "registered linear version 1")
	m, err := g.Registry.Model(t.Context(), "linear")
	if err != nil {
		t.Fatal(err)
	}
	v := m.Versions[0]
	b, err := drift.DecodeBaseline(v.Baseline)
	if err != nil {
		t.Fatalf("registered baseline: %v\n%s", err, v.Baseline)
	}
	if len(b.Features) != 4 || b.Features["x[2]"].Total() != 500 || b.Predictions["y[0]"].Total() != 500 || len(b.Features["x[0]"].Edges) != 11 {
		t.Errorf("registered baseline: %s", v.Baseline)
	}
	if v.Description != "linear with a baseline" {
		t.Errorf("description %q: the --metadata file was lost", v.Description)
	}
	both := filepath.Join(dir, "both.json")
	os.WriteFile(both, []byte(`{"baseline": {"features": {"a": {"categories": {"x": 1}}}}}`), 0o600)
	if _, err := cliOut(t, "models", "register", "--server", server, "--name", "linear", "--file", modelzoo.Path(modelzoo.Linear),
		"--metadata", both, "--baseline", train); err == nil || !strings.Contains(err.Error(), "has a baseline and --baseline") {
		t.Errorf("two baselines: err = %v", err)
	}

	spec := filepath.Join(dir, "monitor.json")
	os.WriteFile(spec, []byte(`{"model": "linear", "window": "1h", "min_samples": 10, "predictions": true,
		"thresholds": {"psi": 0.2, "ks_p": 0.01}}`), 0o600)
	out = mustCLI(t, "drift", "put", "linear-drift", "-f", spec, "--server", server)
	wantContains(t, "drift put", out, "monitor linear-drift saved", "model linear: every feature of the baseline and the predictions",
		"registered with model linear version 1", "drifted when psi > 0.2 or ks_p < 0.01")
	out = mustCLI(t, "drift", "list", "--server", server)
	wantContains(t, "drift list", out, "linear-drift", "model linear +predictions", "psi > 0.2 or ks_p < 0.01")

	// 20 requests of 3 rows each, the last 5 shifted far off.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20 {
		shift := 0.0
		if i >= 15 {
			shift = 5
		}
		var rows []string
		for range 3 {
			rows = append(rows, fmt.Sprintf("[%g, %g, %g, %g]", rng.NormFloat64()+shift, rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()))
		}
		httpDoOK(t, http.MethodPost, server+"/v1/models/linear/predict", `{"inputs": {"x": [`+strings.Join(rows, ", ")+`]}}`)
	}

	out = mustCLI(t, "drift", "report", "linear-drift", "--server", server)
	t.Logf("drift report:\n%s", out)
	wantContains(t, "drift report", out, "monitor     linear-drift", "current window since", "60 samples",
		"x[0] 60, x[1] 60, x[2] 60, x[3] 60", "predictions  y[0] 60", "no window closed yet", "performance: no labelled predictions")
	raw := mustCLI(t, "drift", "report", "linear-drift", "--json", "--server", server)
	var rep monitorReportView
	if err := json.Unmarshal([]byte(raw), &rep); err != nil || rep.Current.Samples != 60 {
		t.Errorf("drift report --json: %v, %d samples\n%s", err, rep.Current.Samples, raw)
	}

	out = mustCLI(t, "drift", "run", "--monitor", "linear-drift", "--from", "-1m", "--server", server)
	t.Logf("drift run:\n%s", out)
	wantContains(t, "drift run", out, "60 samples, DRIFTED\n", "FEATURE", "METRIC", "THRESHOLD", "SAMPLES",
		"x[0]", "prediction:y[0]", "> 0.2", "< 0.01", "YES")
	from := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	raw = mustCLI(t, "drift", "run", "--monitor", "linear-drift", "--from", from, "--to", "now", "--json", "--server", server)
	var w drift.WindowReport
	if err := json.Unmarshal([]byte(raw), &w); err != nil || w.Samples != 60 || len(w.Features) != 4 || len(w.Predictions) != 1 {
		t.Errorf("drift run --json: %v, %d samples, %d features\n%s", err, w.Samples, len(w.Features), raw)
	}

	// Deleting an entity writes every accepted row first: the rows are in
	// files.
	out = mustCLI(t, "tables", "delete", "--entity", "user_id=u1", "--server", server)
	wantContains(t, "tables delete", out, "removed 0 rows of user_id=u1")
	out = mustCLI(t, "tables", "list", "--server", server)
	t.Logf("tables list:\n%s", out)
	wantContains(t, "tables list", out, "TABLE", "PATH", "ROWS", "BYTES", "inference", "date=", "total", "20",
		"writer: written 20, spilled 0, dropped 0, recovered 0, failed 0, skipped 0")

	out = mustCLI(t, "drift", "delete", "linear-drift", "--server", server)
	wantContains(t, "drift delete", out, "monitor linear-drift deleted")
	out = mustCLI(t, "drift", "list", "--server", server)
	wantContains(t, "drift list after delete", out, "no monitors")

	bad := []struct {
		args []string
		want string
	}{
		{[]string{"tables", "delete", "--entity", "user_id", "--server", server}, `--entity "user_id": want COLUMN=VALUE`},
		{[]string{"tables", "delete", "--entity", "=u1", "--server", server}, `--entity "=u1"`},
		{[]string{"tables", "delete", "--server", server}, "--entity COLUMN=VALUE is required"},
		{[]string{"tables", "frob"}, "unknown subcommand"},
		{[]string{"drift", "report", "nope", "--server", server}, "HTTP 404"},
		{[]string{"drift", "report", "--server", server}, "want MONITOR, got 0 arguments"},
		{[]string{"drift", "run", "--monitor", "x", "--server", server}, "--monitor and --from are required"},
		{[]string{"drift", "run", "--monitor", "x", "--from", "yesterday", "--server", server}, `--from "yesterday"`},
		{[]string{"drift", "run", "--monitor", "x", "--from", "-1m", "--to", "-2m", "--server", server}, "is not before"},
		{[]string{"drift", "put", "m", "--server", server}, "-f FILE is required"},
		{[]string{"drift", "put", "m", "-f", train, "--server", server}, "not valid JSON"},
		{[]string{"drift", "frob"}, "unknown subcommand"},
	}
	for _, b := range bad {
		_, err := cliOut(t, b.args...)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: err = %v, want %q", b.args, err, b.want)
		}
	}
	// The gateway's own word on a bad spec comes through.
	os.WriteFile(spec, []byte(`{"model": "linear", "window": "1h", "thresholds": {}}`), 0o600)
	if _, err := cliOut(t, "drift", "put", "m", "-f", spec, "--server", server); err == nil || !strings.Contains(err.Error(), "thresholds") {
		t.Errorf("drift put without thresholds: err = %v", err)
	}
}

func httpDoOK(t *testing.T, method, url, body string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: HTTP %d: %s", method, url, resp.StatusCode, msg)
	}
}

// TestDriftReportFormat writes a report with a history and performance.
func TestDriftReportFormat(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	window := func(i int, drifted bool) drift.WindowReport {
		w := drift.WindowReport{Start: t0.Add(time.Duration(i) * 15 * time.Minute), End: t0.Add(time.Duration(i+1) * 15 * time.Minute),
			Samples: int64(100 + i), Drifted: drifted, Alerted: drifted}
		w.Features = []drift.SeriesReport{
			{Name: "age", Kind: drift.KindNumeric, Count: 100, Baseline: 1000, Judged: true, Drifted: drifted, Metrics: []drift.MetricResult{
				{Metric: drift.MetricPSI, Value: 0.31, Threshold: 0.2, Drifted: drifted},
				{Metric: drift.MetricKSP, Value: 0.2, Threshold: 0.01, Statistic: 0.1},
			}},
			{Name: "country", Kind: drift.KindCategorical, Count: 3, Missing: 97, Baseline: 1000, Other: 1, Metrics: []drift.MetricResult{
				{Metric: drift.MetricChi2P, Value: 0.5, Threshold: 0.01},
			}},
			{Name: "empty", Kind: drift.KindNumeric, Missing: 100, Metrics: []drift.MetricResult{}},
		}
		w.Predictions = []drift.SeriesReport{{Name: "score", Kind: drift.KindNumeric, Count: 100, Judged: true,
			Metrics: []drift.MetricResult{{Metric: drift.MetricPSI, Value: 0.01, Threshold: 0.2}}}}
		return w
	}
	acc, auc, mae, rmse := 0.91, 0.87, 0.5, 0.7
	r := monitorReportView{
		MonitorReport: drift.MonitorReport{
			Spec: drift.MonitorSpec{Name: "churn-inputs", Endpoint: "churn", Baseline: "model", Window: drift.Duration(15 * time.Minute),
				MinSamples: 50, Predictions: true, Features: []string{"age", "country", "empty"},
				Thresholds: drift.Thresholds{PSI: 0.2, KSP: 0.01, Chi2P: 0.01},
				Webhook:    drift.Webhook{URL: "https://ci.example.com/hook", Secret: "redacted"}, Cooldown: drift.Duration(time.Hour)},
			Model:     drift.ModelInfo{Name: "churn", Version: 3},
			Current:   drift.CurrentWindow{Start: t0.Add(time.Hour), Samples: 7, Features: map[string]int64{"age": 7, "country": 6, "empty": 0}, Predictions: map[string]int64{"score": 7}},
			History:   []drift.WindowReport{window(0, false), window(1, true), window(2, false), window(3, true)},
			LastAlert: t0.Add(time.Hour),
		},
		Performance: []serving.Performance{
			{Endpoint: "churn", Variant: "control", Model: "churn", Version: 3, Labelled: 120, Kind: "classifier", Accuracy: &acc, AUC: &auc},
			{Model: "churn", Version: 2, Labelled: 40, Kind: "regressor", MAE: &mae, RMSE: &rmse},
		},
	}
	var buf bytes.Buffer
	if err := writeMonitorReport(&buf, r, 2, t0.Add(70*time.Minute)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("\n%s", out)
	wantContains(t, "report", out,
		"watches     endpoint churn: features age, country, empty and the predictions",
		"baseline    registered with model churn version 3",
		"window      15m0s, judged from 50 values per series, alerts at most every 1h0m0s",
		"thresholds  drifted when psi > 0.2 or ks_p < 0.01 or chi2_p < 0.01",
		"webhook     https://ci.example.com/hook (signed)",
		"last alert  2026-11-01T11:00:00Z (10m0s ago)",
		"current window since 2026-11-01T11:00:00Z (10m0s ago): 7 samples",
		"age 7, country 6, empty 0",
		"last window 2026-11-01T10:45:00Z – 11:00:00Z: 103 samples, DRIFTED, alert sent",
		"age               psi     0.31   > 0.2      YES            100",
		"3 (97 missing) (1 other)",
		"no (under 50)",
		"no values",
		"prediction:score",
		"earlier windows, newest first:",
		"2026-11-01T10:30:00Z – 10:45:00Z  102      no",
		"2026-11-01T10:15:00Z – 10:30:00Z  101      yes (alerted): age psi",
		"... and 1 earlier window (--windows -1 or --json for all)",
		"ENDPOINT  VARIANT  MODEL    LABELLED  ACCURACY  AUC     MAE     RMSE",
		"churn     control  churn/3  120       0.9100    0.8700  -       -",
		"-         -        churn/2  40        -         -       0.5000  0.7000",
	)
	if strings.Contains(out, "10:00:00Z – 10:15:00Z") {
		t.Errorf("--windows 2 shows a third earlier window:\n%s", out)
	}
}

// TestBaselineFromFiles computes baselines from CSV and Parquet files and
// checks the errors name the line and column.
func TestBaselineFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stdout = io.Discard
	defer func() { stdout = os.Stdout }()

	csvPath := write("mixed.csv", "\ufeffuser:age, user:country ,flag,prediction:score\n"+
		"34,fr,true,0.5\n"+
		",de,false,\n"+
		"NaN,fr,true,0.25\n"+
		"51, it ,false,1\n")
	b, rows, err := fileBaseline(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 4 {
		t.Errorf("rows = %d, want 4", rows)
	}
	age, country, flag, score := b.Features["user:age"], b.Features["user:country"], b.Features["flag"], b.Predictions["score"]
	if !age.IsNumeric() || age.Total() != 2 {
		t.Errorf("user:age = %+v, want numeric with 2 values (empty and NaN skipped)", age)
	}
	if country.IsNumeric() || country.Categories["fr"] != 2 || country.Categories["it"] != 1 || country.Total() != 4 {
		t.Errorf("user:country = %+v", country)
	}
	if flag.Categories["true"] != 2 || flag.Categories["false"] != 2 {
		t.Errorf("flag = %+v", flag)
	}
	if !score.IsNumeric() || score.Total() != 3 {
		t.Errorf("prediction score = %+v", score)
	}
	if _, ok := b.Features["prediction:score"]; ok {
		t.Error("the prediction column is also a feature")
	}

	// metadata merging
	meta := write("meta.json", `{"description": "d", "tags": {"team": "x"}}`)
	raw, err := metadataWithBaseline(meta, csvPath)
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Description string          `json:"description"`
		Tags        map[string]any  `json:"tags"`
		Baseline    json.RawMessage `json:"baseline"`
	}
	if err := json.Unmarshal(raw, &md); err != nil || md.Description != "d" || md.Tags["team"] != "x" {
		t.Errorf("merged metadata %s: %v", raw, err)
	}
	if _, err := drift.DecodeBaseline(md.Baseline); err != nil {
		t.Errorf("merged baseline: %v", err)
	}
	if raw, err := metadataWithBaseline(write("null.json", `{"baseline": null}`), csvPath); err != nil || !bytes.Contains(raw, []byte(`"user:age"`)) {
		t.Errorf("metadata with a null baseline: %v", err)
	}

	bad := []struct {
		name, text, want string
	}{
		{"empty.csv", "", "empty file"},
		{"header.csv", "a,b\n", "no rows of data"},
		{"blank.csv", "a,b\n,\n", "every cell is empty"},
		{"mixed.csv", "a,b\n1,x\n2,y\nn/a,z\n", `line 4, column "a": "n/a" is text, but its first value (line 2) is a number`},
		{"mixed2.csv", "a,b\n1,x\n2,3\n", `line 3, column "b": 3 is a number, but its first value (line 2) is a text`},
		{"cells.csv", "a,b\n1,2\n3\n", "line 3: want 2 cells"},
		{"quote.csv", "a,b\n1,\"2\n", "line 2"},
		{"dup.csv", "a,b,a\n1,2,3\n", `column 3, "a": the same name as column 1`},
		{"noname.csv", "a,,c\n1,2,3\n", "column 2 has no name"},
		{"pred.csv", "a,prediction:\n1,2\n", `column 2, "prediction:": name the prediction output`},
	}
	for _, tt := range bad {
		_, _, err := fileBaseline(write(tt.name, tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.name) {
			t.Errorf("%s: err = %v, want %q and the file's name", tt.name, err, tt.want)
		}
	}
	if _, err := metadataWithBaseline(write("two.json", `{"baseline": {"features": {}}}`), csvPath); err == nil || !strings.Contains(err.Error(), "two.json has a baseline") {
		t.Errorf("two baselines: err = %v", err)
	}
	if _, err := metadataWithBaseline(write("list.json", `[1]`), csvPath); err == nil || !strings.Contains(err.Error(), "want a JSON object") {
		t.Errorf("metadata not an object: err = %v", err)
	}
	if _, _, err := fileBaseline(filepath.Join(dir, "missing.csv")); err == nil || !strings.Contains(err.Error(), "missing.csv") {
		t.Errorf("missing file: err = %v", err)
	}
}
