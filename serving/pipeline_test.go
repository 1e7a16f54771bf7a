package serving_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/telemetry"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving"
	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
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
		// Over gRPC the path is the model_name, and the table keeps the
		// request as JSON.
		grpcRoute    = "/inference.GRPCInferenceService/ModelInfer"
		grpcRecorded = `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[0,1,2,3]}]}`
		grpcBad      = `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[0,1,2]}]}`
	)
	entries := []struct {
		name, path, route string
		routed            bool
		good, bad         string
		grpc              bool
	}{
		{"model predict", "/v1/models/linear/predict", modelRoute, false, restBody, restBad, false},
		{"endpoint predict", "/v1/endpoints/churn/predict", endRoute, true, restBody, restBad, false},
		{"V2 on a model", "/v2/models/linear/infer", v2Route, false, v2Body, v2Bad, false},
		{"V2 on an endpoint", "/v2/models/churn/infer", v2Route, true, v2Body, v2Bad, false},
		{"gRPC on a model", "linear", grpcRoute, false, grpcRecorded, grpcBad, true},
		{"gRPC on an endpoint", "churn", grpcRoute, true, grpcRecorded, grpcBad, true},
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
				status, answer := g.sendEntry(e.grpc, e.path, body)
				if status != tc.status {
					t.Fatalf("%s: %d %s, want %d", e.path, status, answer, tc.status)
				}
				served := tc.status == 200
				shadowed := e.routed && served
				if shadowed {
					waitFor(t, func() bool { s := g.endpointStats("churn"); return s.Shadow.Diffs+s.Shadow.Failed > 0 })
				}
				// The inference-table rows: the caller's, and the shadow's.
				rows := g.tableRows()
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
				method := "POST"
				if e.grpc {
					method = "GRPC"
				}
				labels := `{endpoint="` + wantEndpoint + `",method="` + method + `",model="linear",route="` + e.route +
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

// sendEntry sends body to path, with the caller's trace context and
// request id, and returns the HTTP status and the answer; over gRPC, path
// is the model_name and body the V2 JSON of the inputs, sent as typed
// contents, and the status is the one HTTP would give.
func (g *gateway) sendEntry(overGRPC bool, path, body string) (int, string) {
	g.t.Helper()
	if !overGRPC {
		r, _ := g.post(path, body, map[string]string{"traceparent": callerTraceparent, serving.HeaderRequestID: "req-1"})
		return r.status, string(r.body)
	}
	var req struct {
		Inputs []struct {
			Name     string    `json:"name"`
			Datatype string    `json:"datatype"`
			Shape    []int64   `json:"shape"`
			Data     []float32 `json:"data"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		g.t.Fatal(err)
	}
	in := req.Inputs[0]
	client, _ := g.grpcClient()
	resp, err := client.ModelInfer(withKey(g.t.Context(), "", "traceparent", callerTraceparent, "x-request-id", "req-1"), &pb.ModelInferRequest{ModelName: path,
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: in.Name, Datatype: in.Datatype, Shape: in.Shape, Contents: &pb.InferTensorContents{Fp32Contents: in.Data}}}})
	switch status.Code(err) {
	case codes.OK:
		return 200, resp.String()
	case codes.InvalidArgument:
		return 400, err.Error()
	}
	return 500, fmt.Sprint(err)
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
