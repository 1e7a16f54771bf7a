package serving_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving"
)

// splitGateway serves model "linear": version 1 (champion) and version 2
// (challenger, a different model), behind endpoint "churn" at 90/10.
func splitGateway(t *testing.T) *gateway {
	t.Helper()
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("linear", modelzoo.LinearV2)
	g.setAlias("linear", "champion", 1)
	g.setAlias("linear", "challenger", 2)
	g.must("PUT", "/v1/endpoints/churn", `{"variants": [
		{"name": "control", "model": "linear@champion", "weight": 90},
		{"name": "treatment", "model": "linear@challenger", "weight": 10}]}`, 201)
	return g
}

type routedAnswer struct {
	Variant string `json:"variant"`
	Model   struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
	} `json:"model"`
	Outputs map[string]json.RawMessage `json:"outputs"`
}

const linearInputs = `"inputs": {"x": [[0, 1, 2, 3]]}`

// variants sends one request per unit, from several goroutines, and returns
// the variant each unit got.
func (g *gateway) variants(units []string) map[string]string {
	g.t.Helper()
	out := make(map[string]string, len(units))
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan string)
	for range 8 {
		wg.Go(func() {
			for u := range next {
				r := g.do("POST", "/v1/endpoints/churn/predict", "application/json", []byte(`{"unit": "`+u+`", `+linearInputs+`}`))
				var a routedAnswer
				if r.status == 200 {
					json.Unmarshal(r.body, &a)
				}
				mu.Lock()
				out[u] = fmt.Sprint(r.status, " ", a.Variant)
				mu.Unlock()
			}
		})
	}
	for _, u := range units {
		next <- u
	}
	close(next)
	wg.Wait()
	return out
}

func units(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

// TestSplitIsStickyAndStable checks the split of distinct units against the
// weights, that a unit keeps its variant, and that a weight change moves
// about the minimal share of units.
func TestSplitIsStickyAndStable(t *testing.T) {
	g := splitGateway(t)
	const n = 10000
	got := g.variants(units(n, "user-"))
	treatment := 0
	for u, v := range got {
		switch v {
		case "200 treatment":
			treatment++
		case "200 control":
		default:
			t.Fatalf("unit %s: %s", u, v)
		}
	}
	// 99.9% interval of a binomial(n, 0.1): 0.1 ± 3.29 sd.
	sd := math.Sqrt(n * 0.1 * 0.9)
	if lo, hi := n*0.1-3.29*sd, n*0.1+3.29*sd; float64(treatment) < lo || float64(treatment) > hi {
		t.Errorf("treatment got %d of %d units, outside [%.0f, %.0f]", treatment, n, lo, hi)
	}
	var view struct {
		Stats router.StatsSnapshot `json:"stats"`
	}
	g.must("GET", "/v1/endpoints/churn", "", 200).decode(t, &view)
	if view.Stats.Requests != n || view.Stats.Variants[1].Requests != int64(treatment) || view.Stats.SRM || view.Stats.Variants[0].P99Ms <= 0 {
		t.Errorf("stats %+v", view.Stats)
	}

	same := map[string]bool{}
	for range 100 {
		r := g.must("POST", "/v1/endpoints/churn/predict", `{"unit": "always-me", `+linearInputs+`}`, 200)
		var a routedAnswer
		r.decode(t, &a)
		same[a.Variant] = true
	}
	if len(same) != 1 {
		t.Errorf("one unit got variants %v", same)
	}

	const m = 2000
	before := g.variants(units(m, "mover-"))
	g.must("PATCH", "/v1/endpoints/churn/traffic", `{"weights": {"control": 80, "treatment": 20}}`, 200)
	after := g.variants(units(m, "mover-"))
	moved := 0
	for u := range before {
		if before[u] != after[u] {
			moved++
			if before[u] != "200 control" || after[u] != "200 treatment" {
				t.Errorf("unit %s moved from %s to %s", u, before[u], after[u])
			}
		}
	}
	// The minimum is 10% of the units; allow for sampling.
	if share := float64(moved) / m; share < 0.07 || share > 0.13 {
		t.Errorf("%.1f%% of units changed variant after 90/10 -> 80/20, want about 10%%", share*100)
	}
}

func TestVariantOverrideAndAnswer(t *testing.T) {
	g := splitGateway(t)
	req, _ := http.NewRequest("POST", g.url+"/v1/endpoints/churn/predict", strings.NewReader(`{`+linearInputs+`}`))
	req.Header.Set(serving.HeaderVariant, "treatment")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var a routedAnswer
	json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	if resp.StatusCode != 200 || a.Variant != "treatment" || a.Model.Version != 2 || string(a.Outputs["y"]) != "[[18.5,21]]" ||
		resp.Header.Get(serving.HeaderVariant) != "treatment" || resp.Header.Get(serving.HeaderModel) != "linear/2" {
		t.Errorf("override answer %d %+v, headers %v", resp.StatusCode, a, resp.Header)
	}
	req, _ = http.NewRequest("POST", g.url+"/v1/endpoints/churn/predict", strings.NewReader(`{`+linearInputs+`}`))
	req.Header.Set(serving.HeaderVariant, "nope")
	resp, _ = g.client.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unknown variant: %d, want 400", resp.StatusCode)
	}

	// V2 through the endpoint: the same routing, the same headers.
	req, _ = http.NewRequest("POST", g.url+"/v2/models/churn/infer", strings.NewReader(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[0,1,2,3]}]}`))
	req.Header.Set(serving.HeaderVariant, "control")
	resp, _ = g.client.Do(req)
	var v2 struct {
		ModelName  string            `json:"model_name"`
		Parameters map[string]string `json:"parameters"`
	}
	json.NewDecoder(resp.Body).Decode(&v2)
	resp.Body.Close()
	if resp.StatusCode != 200 || v2.ModelName != "linear" || v2.Parameters["variant"] != "control" || v2.Parameters["endpoint"] != "churn" {
		t.Errorf("V2 through the endpoint: %d %+v", resp.StatusCode, v2)
	}
}

func TestEndpointPolicyChecks(t *testing.T) {
	g := splitGateway(t)
	tests := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"PUT", "/v1/endpoints/e2", `{"variants": [{"name": "a", "model": "nope", "weight": 1}]}`, 400, `variants[0].model`},
		{"PUT", "/v1/endpoints/e2", `{"variants": [{"name": "a", "model": "linear@staging", "weight": 1}]}`, 400, `no alias \"staging\"`},
		{"PUT", "/v1/endpoints/e2", `{"variants": [{"name": "a", "model": "linear/9", "weight": 1}]}`, 400, "no version 9"},
		{"PUT", "/v1/endpoints/e2", `{"variants": [{"name": "a", "model": "linear", "weight": -5}]}`, 400, "variants[0].weight: must not be negative"},
		{"PUT", "/v1/endpoints/e2", `{"variants": [{"name": "a", "model": "linear", "weight": 0}]}`, 400, "all weights are 0"},
		{"PUT", "/v1/endpoints/e2", `{"variants": [], "extra": 1}`, 400, "unknown field"},
		{"PUT", "/v1/endpoints/e2", `{"variants": [{"name": "a", "model": "linear", "weight": 1}], "shadow": {"model": "linear", "percent": 120}}`, 400, "shadow.percent"},
		{"PATCH", "/v1/endpoints/churn/traffic", `{"weights": {"ghost": 5}}`, 400, "ghost"},
		{"PATCH", "/v1/endpoints/churn/traffic", `{"weights": {"control": 0, "treatment": 0}}`, 400, "all weights are 0"},
		{"PATCH", "/v1/endpoints/nope/traffic", `{"weights": {"a": 1}}`, 404, "not found"},
		{"POST", "/v1/endpoints/nope/predict", `{` + linearInputs + `}`, 404, `endpoint \"nope\" not found`},
		{"POST", "/v1/endpoints/churn/canary/dance", ``, 400, "unknown canary command"},
		{"POST", "/v1/endpoints/churn/canary/pause", ``, 409, "no running canary"},
	}
	for _, tt := range tests {
		r := g.do(tt.method, tt.path, "application/json", []byte(tt.body))
		if r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
			t.Errorf("%s %s %s: %d %s, want %d containing %s", tt.method, tt.path, tt.body, r.status, r.body, tt.status, tt.want)
		}
	}
}

// TestPolicyChangesAreAudited checks every policy change reaches the audit
// trail with before and after, and the endpoint's history.
func TestPolicyChangesAreAudited(t *testing.T) {
	g := splitGateway(t)
	g.must("PATCH", "/v1/endpoints/churn/traffic", `{"weights": {"control": 50, "treatment": 50}}`, 200)
	g.must("PUT", "/v1/endpoints/churn", `{"variants": [{"name": "control", "model": "linear@champion", "weight": 1}]}`, 200)
	var audit struct {
		Events []registry.AuditEvent `json:"events"`
	}
	g.must("GET", "/v1/audit?endpoint=churn", "", 200).decode(t, &audit)
	var actions []string
	for _, e := range audit.Events {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, " ") != "create_endpoint set_weights set_policy" {
		t.Fatalf("audit actions %v", actions)
	}
	patch := audit.Events[1]
	var before, after router.Endpoint
	json.Unmarshal(patch.Before, &before)
	json.Unmarshal(patch.After, &after)
	if before.Policy.Variants[0].Weight != 90 || after.Policy.Variants[0].Weight != 50 || after.Revision != before.Revision+1 || patch.Actor != "anonymous" {
		t.Errorf("weight change before %+v after %+v", before.Policy, after.Policy)
	}
	var history struct {
		Revisions []router.Revision `json:"revisions"`
	}
	g.must("GET", "/v1/endpoints/churn/history", "", 200).decode(t, &history)
	if len(history.Revisions) != 3 || history.Revisions[2].Revision != 3 || history.Revisions[1].Action != "set_weights" {
		t.Errorf("history %+v", history.Revisions)
	}
	g.must("DELETE", "/v1/endpoints/churn", "", 204)
	g.must("GET", "/v1/endpoints/churn", "", 404)
}

// TestShadowNeverTouchesAnswers sends copies to a shadow that fails, then to
// one that never answers: every caller gets the served model's answer, the
// failures and drops are counted, and the same model as shadow agrees. The
// failing shadow's breaker opens after its fifth failure in a row: from then
// on its copies are dropped without running it.
func TestShadowNeverTouchesAnswers(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("fragile", modelzoo.Fragile)
	g.must("PUT", "/v1/endpoints/churn", `{"variants": [{"name": "control", "model": "linear", "weight": 1}],
		"shadow": {"model": "fragile", "percent": 100}}`, 201)
	send := func(n int) {
		t.Helper()
		for range n {
			r := g.must("POST", "/v1/endpoints/churn/predict", `{"inputs": {"x": [[1, 2, 3, 4]]}}`, 200)
			var a routedAnswer
			r.decode(t, &a)
			if string(a.Outputs["y"]) != "[[4,10]]" {
				t.Fatalf("answer changed: %s", a.Outputs["y"])
			}
		}
	}
	shadowStats := func() router.ShadowStats {
		var view struct {
			Stats router.StatsSnapshot `json:"stats"`
		}
		g.must("GET", "/v1/endpoints/churn", "", 200).decode(t, &view)
		return view.Stats.Shadow
	}
	send(50)
	waitFor(t, func() bool { s := shadowStats(); return s.Failed+s.Dropped == 50 })
	if s := shadowStats(); s.Failed < featurestore.DefaultBreakerFailures || s.Failed >= 50 {
		t.Errorf("a failing shadow failed %d times and had %d copies dropped; want its breaker to open after %d failures", s.Failed, s.Dropped, featurestore.DefaultBreakerFailures)
	}

	// A shadow that never answers: its queue fills and copies are dropped,
	// while callers are answered as before.
	release := make(chan struct{})
	defer close(release)
	g = startGateway(t, withShadowRunner(func() error {
		<-release
		return context.Canceled
	}))
	g.register("linear", modelzoo.Linear)
	g.must("PUT", "/v1/endpoints/churn", `{"variants": [{"name": "control", "model": "linear", "weight": 1}],
		"shadow": {"model": "linear", "percent": 100}}`, 201)
	send(serving.ShadowQueue + 100)
	if s := shadowStats(); s.Dropped < 90 {
		t.Errorf("a stuck shadow dropped %d copies, want at least 90", s.Dropped)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drive sends requests to the endpoint until stop is closed, counting the
// answers by status.
func (g *gateway) drive(stop <-chan struct{}) (wait func() map[int]int) {
	counts := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := g.do("POST", "/v1/endpoints/churn/predict", "application/json",
					[]byte(fmt.Sprintf(`{"unit": "u%d-%d", "inputs": {"x": [[1, 2, 3, 4]]}}`, w, i)))
				mu.Lock()
				counts[r.status]++
				mu.Unlock()
			}
		})
	}
	return func() map[int]int { wg.Wait(); return counts }
}

func (g *gateway) endpoint() router.Endpoint {
	var e router.Endpoint
	g.must("GET", "/v1/endpoints/churn", "", 200).decode(g.t, &e)
	return e
}

const canaryAnalysis = `"interval": "1s", "analysis": {"max_error_rate": 0.01, "max_p99_latency_ms": 5000, "min_requests": 5, "max_prediction_shift": 0.2}`

// TestCanaryPromotes walks a healthy canary through every step under load;
// at the end it is the endpoint's only model and holds the champion alias.
func TestCanaryPromotes(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("linear", modelzoo.Linear) // version 2: the same model, a new version
	g.setAlias("linear", "champion", 1)
	g.must("PUT", "/v1/endpoints/churn", `{"variants": [{"name": "control", "model": "linear@champion", "weight": 100}]}`, 201)

	stop := make(chan struct{})
	wait := g.drive(stop)
	g.must("POST", "/v1/endpoints/churn/canary", `{"model": "linear/2", "steps": [25, 50, 100], `+canaryAnalysis+`}`, 200)
	waitFor(t, func() bool { return g.endpoint().Canary.State == router.CanaryPromoted })
	close(stop)
	if counts := wait(); counts[200] == 0 || len(counts) != 1 {
		t.Errorf("answers during the canary: %v", counts)
	}
	e := g.endpoint()
	if len(e.Policy.Variants) != 1 || e.Policy.Variants[0].Model != "linear/2" || e.Policy.Variants[0].Weight != 100 {
		t.Errorf("after promotion: %+v", e.Policy.Variants)
	}
	// The controller saves the promoted endpoint first and moves the alias
	// right after, in the same tick.
	waitFor(t, func() bool {
		var m registry.Model
		g.must("GET", "/v1/models/linear", "", 200).decode(t, &m)
		return m.Aliases["champion"] == 2
	})
	var history struct {
		Revisions []router.Revision `json:"revisions"`
	}
	g.must("GET", "/v1/endpoints/churn/history", "", 200).decode(t, &history)
	var actions []string
	for _, r := range history.Revisions {
		actions = append(actions, r.Action)
	}
	if got := strings.Join(actions, " "); got != "create_endpoint canary_start canary_advance canary_advance canary_promote" {
		t.Errorf("history: %s", got)
	}
}

// TestCanaryRollsBack starts a canary whose model fails on real requests: it
// is rolled back to 0% within one interval, and the endpoint says why.
func TestCanaryRollsBack(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("fragile", modelzoo.Fragile)
	g.must("PUT", "/v1/endpoints/churn", `{"variants": [{"name": "control", "model": "linear", "weight": 100}]}`, 201)

	stop := make(chan struct{})
	wait := g.drive(stop)
	start := time.Now()
	g.must("POST", "/v1/endpoints/churn/canary", `{"model": "fragile", "steps": [10, 50, 100], `+canaryAnalysis+`}`, 200)
	waitFor(t, func() bool { return g.endpoint().Canary.State == router.CanaryRolledBack })
	took := time.Since(start)
	close(stop)
	wait()
	e := g.endpoint()
	if took > 2*time.Second {
		t.Errorf("rolled back after %s; the interval is 1s", took)
	}
	if !strings.Contains(e.Canary.Reason, "error rate") || e.Canary.Figures["canary_error_rate"] == 0 && len(e.Canary.Figures) == 0 {
		t.Errorf("reason %q figures %v", e.Canary.Reason, e.Canary.Figures)
	}
	for _, v := range e.Policy.Variants {
		if (v.Name == router.CanaryVariant) != (v.Weight == 0) {
			t.Errorf("after rollback: %+v", e.Policy.Variants)
		}
	}
}
