package serving_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/telemetry"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving"
	"github.com/mlgate/mlgate/serving/tables"
)

// TestEveryEntryPointSameSideEffects sends the same cases through each
// entry point and checks that the pipeline gives each the same side
// effects: the inference-table row, the drift observation, the metric
// labels and the spans; and, through an endpoint, the shadow copy, the
// endpoint stats and the canary's prediction figures.
func TestEveryEntryPointSameSideEffects(t *testing.T) {
	const (
		restBody    = `{"inputs": {"x": [[0, 1, 2, 3]]}}`
		restBad     = `{"inputs": {"x": [[0, 1, 2]]}}`
		v2Body      = `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0, 1, 2, 3]}]}`
		v2Bad       = `{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [0, 1, 2]}]}`
		modelRoute  = "/v1/models/:name/predict"
		endRoute    = "/v1/endpoints/:endpoint/predict"
		v2Route     = "/v2/models/:model/infer"
		endpointTag = "churn"
	)
	entries := []struct {
		name, path, route string
		routed            bool
		good, bad         string
	}{
		{"model predict", "/v1/models/linear/predict", modelRoute, false, restBody, restBad},
		{"endpoint predict", "/v1/endpoints/churn/predict", endRoute, true, restBody, restBad},
		{"V2 on a model", "/v2/models/linear/infer", v2Route, false, v2Body, v2Bad},
		{"V2 on an endpoint", "/v2/models/churn/infer", v2Route, true, v2Body, v2Bad},
	}
	cases := []struct {
		name   string
		bad    bool
		status int
	}{
		{"served", false, 200},
		{"input rejected", true, 400},
	}
	for _, e := range entries {
		for _, tc := range cases {
			t.Run(e.name+"/"+tc.name, func(t *testing.T) {
				tr, exp := inMemoryTracing(t)
				m, err := telemetry.New()
				if err != nil {
					t.Fatal(err)
				}
				g := startGateway(t, withTracing(tr), withMetrics(m))
				raw, _ := os.ReadFile(modelzoo.Path(modelzoo.Linear))
				if r := g.upload("linear", raw, `{"baseline": `+linearBaseline(t)+`}`); r.status != 201 {
					t.Fatalf("register: %d %s", r.status, r.body)
				}
				g.must("PUT", "/v1/endpoints/churn", `{"variants": [{"name": "control", "model": "linear", "weight": 100}],
					"shadow": {"model": "linear", "percent": 100}}`, 201)
				g.must("PUT", "/v1/monitors/inputs", `{"model": "linear", "window": "1h", "thresholds": {"psi": 0.2}}`, 200)
				exp.Reset()

				body := e.good
				if tc.bad {
					body = e.bad
				}
				r, _ := g.post(e.path, body, map[string]string{"traceparent": callerTraceparent, serving.HeaderRequestID: "req-1"})
				if r.status != tc.status {
					t.Fatalf("%s: %d %s, want %d", e.path, r.status, r.body, tc.status)
				}
				served := tc.status == 200
				shadowed := e.routed && served
				if shadowed {
					waitFor(t, func() bool { s := g.endpointStats("churn"); return s.Shadow.Diffs+s.Shadow.Failed > 0 })
				}
				if err := g.server.FlushRecords(t.Context()); err != nil {
					t.Fatal(err)
				}

				// The inference-table rows: the caller's, and the shadow's.
				var rows []tables.Row
				if err := tables.Dir(g.tablesDir()).ReadRows(t.Context(), tables.Filter{}, func(r tables.Row) error {
					rows = append(rows, r)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				wantRows := 1
				if shadowed {
					wantRows = 2
				}
				if len(rows) != wantRows {
					t.Fatalf("%d rows, want %d: %+v", len(rows), wantRows, rows)
				}
				slices.SortFunc(rows, func(a, b tables.Row) int { return strings.Compare(a.Variant, b.Variant) })
				row := rows[0]
				wantEndpoint, wantVariant := "", ""
				if e.routed {
					wantEndpoint, wantVariant = endpointTag, "control"
				}
				if row.RequestID != "req-1" || row.Endpoint != wantEndpoint || row.Variant != wantVariant || row.IsShadow ||
					row.ModelName != "linear" || row.ModelVersion != 1 || row.StatusCode != int32(tc.status) || row.Request != body {
					t.Errorf("row %+v", row)
				}
				if shadowed {
					if s := rows[1]; !s.IsShadow || s.Variant != "shadow" || s.RequestID != "req-1" || s.Endpoint != endpointTag || s.StatusCode != 200 || s.Request != body {
						t.Errorf("shadow row %+v", s)
					}
				}

				// The drift observation: a served row reaches the monitor.
				var report monitorReport
				g.must("GET", "/v1/monitors/inputs/report", "", 200).decode(t, &report)
				if want := int64(btoi(served)); report.Current.Samples != want {
					t.Errorf("the monitor saw %d samples, want %d", report.Current.Samples, want)
				}

				// The endpoint's stats, canary figures and shadow comparison.
				if e.routed {
					s := g.endpointStats("churn")
					v := s.Variants[0]
					if v.Requests != 1 || v.Errors != int64(btoi(!served)) || v.Predictions != int64(btoi(served)) {
						t.Errorf("variant stats %+v", v)
					}
					if s.Shadow.Diffs != int64(btoi(shadowed)) {
						t.Errorf("shadow stats %+v", s.Shadow)
					}
				}

				// The metric labels.
				mr := g.do("GET", "/metrics", "", nil)
				series := parseSeries(t, mr.body)
				labels := `{endpoint="` + wantEndpoint + `",method="POST",model="linear",route="` + e.route +
					`",status="` + strconv.Itoa(tc.status) + `",variant="` + wantVariant + `",version="1"}`
				if got := series["mlgate_requests_total"+labels]; got != "1" {
					t.Errorf("mlgate_requests_total%s = %q, want 1", labels, got)
				}

				// The spans of the pipeline's stages.
				var names []string
				for _, s := range exp.GetSpans() {
					names = append(names, s.Name)
				}
				want := []string{"table.enqueue"}
				if e.routed {
					want = append(want, "route")
				}
				if served {
					want = append(want, "inference")
				}
				for _, n := range want {
					if !slices.Contains(names, n) {
						t.Errorf("no %q span among %q", n, names)
					}
				}
				if !served && slices.Contains(names, "inference") {
					t.Errorf("an input rejected by its shape still ran the model: spans %q", names)
				}
			})
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// endpointStats reads an endpoint's live stats through the API.
func (g *gateway) endpointStats(name string) router.StatsSnapshot {
	g.t.Helper()
	var view struct {
		Stats router.StatsSnapshot `json:"stats"`
	}
	g.must("GET", "/v1/endpoints/"+name, "", 200).decode(g.t, &view)
	return view.Stats
}

// tablesDir is where the gateway writes its inference tables.
func (g *gateway) tablesDir() string { return g.dataDir + "/inference" }

// TestRunFaultsByCause answers a run that failed because of its input with
// 400 and one that failed by the model's own fault with 500, through REST
// and V2 alike.
func TestRunFaultsByCause(t *testing.T) {
	g := startGateway(t)
	g.register("fragile", modelzoo.Fragile)
	g.register("faulty", modelzoo.Faulty)
	for _, tt := range []struct {
		model  string
		row    string
		status int
		want   string
	}{
		{"fragile", "0, 1, 2, 2", 200, ""},
		{"fragile", "1, 2, 3, 4", 400, "model fragile version 1 rejected the input"},
		{"faulty", "0, 1, 2, 2", 200, ""},
		{"faulty", "1, 2, 3, 4", 500, "model faulty version 1 failed to run"},
	} {
		for _, path := range []string{"/v1/models/" + tt.model + "/predict", "/v2/models/" + tt.model + "/infer"} {
			body := `{"inputs": {"x": [[` + tt.row + `]]}}`
			if strings.HasPrefix(path, "/v2/") {
				body = `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [` + tt.row + `]}]}`
			}
			r := g.do("POST", path, "application/json", []byte(body))
			if r.status != tt.status || (tt.want != "" && !strings.Contains(r.errorMessage(t), tt.want)) {
				t.Errorf("%s [%s]: %d %s, want %d %q", path, tt.row, r.status, r.body, tt.status, tt.want)
			}
		}
	}
}
