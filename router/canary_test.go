package router

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func testSpec() CanarySpec {
	return CanarySpec{
		Model:        "churn/8",
		Steps:        []int{10, 25, 50, 100},
		Interval:     Duration(30 * time.Second),
		Analysis:     Analysis{MaxErrorRate: 0.01, MaxP99LatencyMs: 250, MinRequests: 100, MaxPredictionShift: 0.2},
		PromoteAlias: "champion",
	}
}

func TestDecodeCanarySpec(t *testing.T) {
	s, err := DecodeCanarySpec([]byte(`{"model": "churn/8", "steps": [10, 25, 50, 100], "interval": "30s",
		"analysis": {"max_error_rate": 0.01, "max_p99_latency_ms": 250, "min_requests": 100, "max_prediction_shift": 0.2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, testSpec()) {
		t.Errorf("DecodeCanarySpec = %+v, want %+v", s, testSpec())
	}
	s, err = DecodeCanarySpec([]byte(`{"model": "churn/8", "steps": [100], "interval": "1m", "promote_alias": ""}`))
	if err != nil || s.PromoteAlias != "" {
		t.Errorf(`an explicit "" promote_alias: %+v, %v`, s, err)
	}

	spec := func(fields string) string {
		return `{"model": "churn/8", "steps": [50, 100], "interval": "1m"` + fields + `}`
	}
	tests := []struct{ in, want string }{
		{spec(`, "extra": 1`), `unknown field "extra"`},
		{spec(`, "analysis": {"max_errors": 1}`), `unknown field "max_errors"`},
		{`{"model": "churn/8", "steps": [100], "interval": 30}`, `field "interval": expected a string, got number`},
		{`{"model": "churn/8", "steps": [100], "interval": "30"}`, `duration "30": want a Go duration such as "90s"`},
		{`{"model": "churn@", "steps": [100], "interval": "1m"}`, `model: model reference "churn@": alias: must not be empty`},
		{`{"model": "churn/8", "interval": "1m"}`, "steps: at least one step is required"},
		{`{"model": "churn/8", "steps": [0, 100], "interval": "1m"}`, "steps[0]: want 1 to 100 per cent, got 0"},
		{`{"model": "churn/8", "steps": [50, 101], "interval": "1m"}`, "steps[1]: want 1 to 100 per cent, got 101"},
		{`{"model": "churn/8", "steps": [50, 40, 100], "interval": "1m"}`, "steps[1]: must be greater than steps[0] (50), got 40"},
		{`{"model": "churn/8", "steps": [50, 50, 100], "interval": "1m"}`, "steps[1]: must be greater than steps[0] (50), got 50"},
		{`{"model": "churn/8", "steps": [10, 50], "interval": "1m"}`, "steps: must end at 100, got 50"},
		{`{"model": "churn/8", "steps": [100], "interval": "10ms"}`, "interval: at least 100ms, got 10ms"},
		{`{"model": "churn/8", "steps": [100]}`, "interval: at least 100ms, got 0s"},
		{spec(`, "analysis": {"max_error_rate": -0.1}`), "analysis.max_error_rate: must not be negative, got -0.1"},
		{spec(`, "analysis": {"max_error_rate": 2}`), "analysis.max_error_rate: a rate from 0 to 1, got 2"},
		{spec(`, "analysis": {"max_p99_latency_ms": -1}`), "analysis.max_p99_latency_ms: must not be negative, got -1"},
		{spec(`, "analysis": {"min_requests": -1}`), "analysis.min_requests: must not be negative, got -1"},
		{spec(`, "analysis": {"max_prediction_shift": -1}`), "analysis.max_prediction_shift: must not be negative, got -1"},
		{spec(`, "promote_alias": "1x"`), `promote_alias: alias "1x": must start with a letter`},
	}
	for _, tt := range tests {
		_, err := DecodeCanarySpec([]byte(tt.in))
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeCanarySpec(%s)\n got %v\nwant ErrInvalid containing %q", tt.in, err, tt.want)
		}
	}
}

func TestDuration_RoundTrip(t *testing.T) {
	b, err := Duration(90 * time.Second).MarshalText()
	if err != nil || string(b) != "1m30s" {
		t.Fatalf("MarshalText = %s, %v", b, err)
	}
	var d Duration
	if err := d.UnmarshalJSON([]byte(`"1m30s"`)); err != nil || d != Duration(90*time.Second) {
		t.Errorf("UnmarshalJSON = %v, %v", time.Duration(d), err)
	}
}

func TestStepVariants(t *testing.T) {
	tests := []struct {
		baseline []int
		step     int
		want     []int
	}{
		{[]int{90, 10}, 25, []int{68, 7, 25}}, // 67.5 and 7.5: the tie goes to the first
		{[]int{90, 10}, 10, []int{81, 9, 10}},
		{[]int{90, 10}, 50, []int{45, 5, 50}},
		{[]int{90, 10}, 100, []int{0, 0, 100}},
		{[]int{900_000, 100_000}, 25, []int{68, 7, 25}},
		{[]int{1}, 10, []int{90, 10}},
		{[]int{1, 1, 1}, 10, []int{30, 30, 30, 10}},
		{[]int{1, 1, 1}, 1, []int{33, 33, 33, 1}},
		{[]int{1, 1, 1}, 2, []int{33, 33, 32, 2}},
		{[]int{50, 0, 50}, 25, []int{38, 0, 37, 25}},
		{[]int{70, 20, 10}, 33, []int{47, 13, 7, 33}}, // 46.9, 13.4, 6.7
	}
	for _, tt := range tests {
		var baseline []Variant
		for i, w := range tt.baseline {
			baseline = append(baseline, Variant{Name: string(rune('a' + i)), Model: "m", Weight: w})
		}
		got := stepVariants(baseline, "churn/8", tt.step)
		if w := weights(Endpoint{Policy: Policy{Variants: got}}); !reflect.DeepEqual(w, tt.want) {
			t.Errorf("baseline %v at step %d: %v, want %v", tt.baseline, tt.step, w, tt.want)
		}
		if c := got[len(got)-1]; c.Name != CanaryVariant || c.Model != "churn/8" {
			t.Errorf("canary variant = %+v", c)
		}
	}
}

// Any baseline at any step: the weights sum to 100, each baseline variant is
// within one of its exact quota, and a variant of weight 0 stays at 0.
func TestStepVariants_Properties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		baseline := make([]Variant, 1+rng.IntN(15))
		total := 0
		for i := range baseline {
			baseline[i] = Variant{Name: "v", Weight: rng.IntN(4) * rng.IntN(MaxWeight)}
			total += baseline[i].Weight
		}
		if total == 0 {
			continue
		}
		step := 1 + rng.IntN(100)
		got := stepVariants(baseline, "m", step)
		sum := 0
		for i, v := range got[:len(baseline)] {
			sum += v.Weight
			exact := float64(100-step) * float64(baseline[i].Weight) / float64(total)
			if float64(v.Weight) < exact-1 || float64(v.Weight) > exact+1 || baseline[i].Weight == 0 && v.Weight != 0 {
				t.Fatalf("baseline %v at step %d: variant %d got %d, exact quota %.2f", baseline, step, i, v.Weight, exact)
			}
		}
		if sum+got[len(got)-1].Weight != 100 {
			t.Fatalf("baseline %v at step %d: weights %v do not sum to 100", baseline, step, got)
		}
	}
}

type canaryRun struct {
	t   *testing.T
	e   Endpoint
	now time.Time
}

func startCanary(t *testing.T) *canaryRun {
	t.Helper()
	e, err := NewEndpoint("churn", abPolicy(90, 10), t0)
	if err != nil {
		t.Fatal(err)
	}
	e, err = StartCanary(e, testSpec(), t0)
	if err != nil {
		t.Fatal(err)
	}
	return &canaryRun{t: t, e: e, now: t0}
}

// evaluate lets time pass, evaluates, applies the decision, and checks that
// the input endpoint was left as it was.
func (r *canaryRun) evaluate(after time.Duration, canary, baseline WindowFigures) Decision {
	r.t.Helper()
	r.now = r.now.Add(after)
	d := r.e.Canary.Evaluate(canary, baseline, r.now)
	before := r.e.clone()
	next, err := ApplyCanary(r.e, d, r.now)
	if err != nil {
		r.t.Fatalf("ApplyCanary(%v): %v", d.Action, err)
	}
	if !reflect.DeepEqual(r.e, before) {
		r.t.Fatalf("ApplyCanary changed its input")
	}
	switch {
	case d.Action == Hold && next.Revision != r.e.Revision:
		r.t.Fatalf("Hold made revision %d", next.Revision)
	case d.Action != Hold && (next.Revision != r.e.Revision+1 || !next.UpdatedAt.Equal(r.now)):
		r.t.Fatalf("%v: revision %d → %d, updated %v", d.Action, r.e.Revision, next.Revision, next.UpdatedAt)
	}
	r.e = next
	return d
}

var (
	healthy  = WindowFigures{Requests: 1000, Errors: 2, P99Ms: 120, Predictions: 1000, PredictionMean: 0.31}
	baseline = WindowFigures{Requests: 9000, Errors: 20, P99Ms: 110, Predictions: 9000, PredictionMean: 0.30}
)

func TestCanary_HealthyWalksEveryStepAndIsPromoted(t *testing.T) {
	r := startCanary(t)
	if got := weights(r.e); !reflect.DeepEqual(got, []int{81, 9, 10}) || r.e.Revision != 2 {
		t.Fatalf("started: weights %v, revision %d", got, r.e.Revision)
	}
	if d := r.evaluate(10*time.Second, healthy, baseline); d.Action != Hold || d.Reason != "step 1 of 4: 10s of 30s elapsed" {
		t.Fatalf("before the interval: %v %q", d.Action, d.Reason)
	}
	for _, want := range [][]int{{68, 7, 25}, {45, 5, 50}, {0, 0, 100}} {
		d := r.evaluate(30*time.Second, healthy, baseline)
		if d.Action != Advance || !reflect.DeepEqual(weights(r.e), want) {
			t.Fatalf("%v %q: weights %v, want %v", d.Action, d.Reason, weights(r.e), want)
		}
		if !r.e.Canary.StepStartedAt.Equal(r.now) || r.e.Canary.Figures["prediction_shift"] == 0 {
			t.Fatalf("after advancing: %+v", r.e.Canary)
		}
	}
	d := r.evaluate(30*time.Second, healthy, baseline)
	if d.Action != Promote || d.Reason != "passed all 4 steps" {
		t.Fatalf("after the last step: %v %q", d.Action, d.Reason)
	}
	want := []Variant{{"control", "churn/8", 100}}
	if c := r.e.Canary; c.State != CanaryPromoted || !reflect.DeepEqual(r.e.Policy.Variants, want) || r.e.Revision != 6 {
		t.Fatalf("promoted: state %s, variants %+v, revision %d", c.State, r.e.Policy.Variants, r.e.Revision)
	}
	if d := r.evaluate(time.Hour, healthy, baseline); d.Action != Hold || d.Reason != "canary is promoted" {
		t.Errorf("a promoted canary: %v %q", d.Action, d.Reason)
	}
	if _, err := NewRoute(r.e); err != nil {
		t.Errorf("the promoted policy does not compile: %v", err)
	}
}

func TestCanary_RollsBackOnBrokenRule(t *testing.T) {
	tests := []struct {
		name   string
		canary WindowFigures
		reason string
		figure string
	}{
		{"errors", WindowFigures{Requests: 1200, Errors: 100, P99Ms: 120}, "error rate 0.0833 > max_error_rate 0.01", "canary_error_rate"},
		{"latency", WindowFigures{Requests: 1000, P99Ms: 412}, "p99 latency 412ms > max_p99_latency_ms 250", "canary_p99_ms"},
		{"prediction shift", WindowFigures{Requests: 1000, P99Ms: 100, Predictions: 1000, PredictionMean: 0.45}, "prediction shift 0.5 > max_prediction_shift 0.2", "prediction_shift"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startCanary(t)
			r.evaluate(30*time.Second, healthy, baseline) // to step 2
			d := r.evaluate(30*time.Second, tt.canary, baseline)
			if d.Action != RollBack || d.Reason != tt.reason {
				t.Fatalf("got %v %q, want roll_back %q", d.Action, d.Reason, tt.reason)
			}
			c := r.e.Canary
			if c.State != CanaryRolledBack || c.Reason != tt.reason || c.Figures[tt.figure] == 0 {
				t.Errorf("canary after roll back: %+v", c)
			}
			want := []Variant{{"control", "churn@champion", 90}, {"treatment", "churn@challenger", 10}, {"canary", "churn/8", 0}}
			if !reflect.DeepEqual(r.e.Policy.Variants, want) {
				t.Errorf("variants after roll back: %+v", r.e.Policy.Variants)
			}
			route, err := NewRoute(r.e)
			if err != nil {
				t.Fatal(err)
			}
			if i, ok := route.Variant(CanaryVariant); !ok || route.Weight(i) != 0 {
				t.Errorf("the rolled-back canary should stay reachable at weight 0")
			}
		})
	}
}

func TestCanary_PredictionShiftSkippedWithoutPredictions(t *testing.T) {
	r := startCanary(t)
	noPredictions := WindowFigures{Requests: 1000, P99Ms: 100}
	if d := r.evaluate(30*time.Second, noPredictions, baseline); d.Action != Advance {
		t.Errorf("no canary predictions: %v %q", d.Action, d.Reason)
	}
	if d := r.evaluate(30*time.Second, healthy, WindowFigures{Requests: 10}); d.Action != Advance {
		t.Errorf("no baseline predictions: %v %q", d.Action, d.Reason)
	}
	// Around a baseline mean of 0 the shift is relative to 1e-9: any change breaks it.
	zero := WindowFigures{Requests: 10, Predictions: 10, PredictionMean: 0}
	if d := r.evaluate(30*time.Second, healthy, zero); d.Action != RollBack {
		t.Errorf("baseline mean 0: %v %q", d.Action, d.Reason)
	}
}

func TestCanary_MinRequestsHolds(t *testing.T) {
	r := startCanary(t)
	few := WindowFigures{Requests: 40, Errors: 40}
	d := r.evaluate(time.Hour, few, baseline)
	if d.Action != Hold || d.Reason != "40 canary requests < min_requests 100" || weights(r.e)[2] != 10 {
		t.Fatalf("too few requests: %v %q, weights %v", d.Action, d.Reason, weights(r.e))
	}
	if d := r.evaluate(time.Second, healthy, baseline); d.Action != Advance {
		t.Errorf("enough requests: %v %q", d.Action, d.Reason)
	}
}

func TestCanary_RulesOff(t *testing.T) {
	e, _ := NewEndpoint("churn", abPolicy(90, 10), t0)
	spec := testSpec()
	spec.Analysis = Analysis{}
	e, _ = StartCanary(e, spec, t0)
	bad := WindowFigures{Requests: 10, Errors: 10, P99Ms: 1e6, Predictions: 10, PredictionMean: 99}
	if d := e.Canary.Evaluate(bad, baseline, t0.Add(time.Minute)); d.Action != Advance {
		t.Errorf("with every rule off: %v %q", d.Action, d.Reason)
	}
	if d := e.Canary.Evaluate(WindowFigures{}, WindowFigures{}, t0.Add(time.Minute)); d.Action != Advance {
		t.Errorf("no traffic and min_requests 0: %v %q", d.Action, d.Reason)
	}
}

func TestCanary_PauseHoldsAndResumeRestartsTheInterval(t *testing.T) {
	r := startCanary(t)
	paused, err := PauseCanary(r.e, t0.Add(time.Second))
	if err != nil || paused.Canary.State != CanaryPaused || paused.Revision != r.e.Revision+1 {
		t.Fatalf("PauseCanary = %+v, %v", paused.Canary, err)
	}
	if r.e.Canary.State != CanaryRunning {
		t.Fatal("PauseCanary changed its input")
	}
	if d := paused.Canary.Evaluate(healthy, baseline, t0.Add(time.Hour)); d.Action != Hold || d.Reason != "canary is paused" {
		t.Errorf("paused: %v %q", d.Action, d.Reason)
	}
	if _, err := ApplyCanary(paused, Decision{Action: Advance}, t0); !errors.Is(err, ErrConflict) {
		t.Errorf("advancing a paused canary: %v", err)
	}
	if _, err := PauseCanary(paused, t0); !errors.Is(err, ErrConflict) {
		t.Errorf("pausing twice: %v", err)
	}

	// Paused, the weights may be set by hand; running, they may not.
	if _, err := SetWeights(r.e, map[string]int{CanaryVariant: 5}, t0); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "pause or abort it first") {
		t.Errorf("SetWeights during a running canary: %v", err)
	}
	lowered, err := SetWeights(paused, map[string]int{CanaryVariant: 5}, t0.Add(2*time.Second))
	if err != nil || weights(lowered)[2] != 5 {
		t.Fatalf("SetWeights during a paused canary: %v, %v", weights(lowered), err)
	}

	t1 := t0.Add(time.Hour)
	resumed, err := ResumeCanary(lowered, t1)
	if err != nil || resumed.Canary.State != CanaryRunning || !resumed.Canary.StepStartedAt.Equal(t1) {
		t.Fatalf("ResumeCanary = %+v, %v", resumed.Canary, err)
	}
	if d := resumed.Canary.Evaluate(healthy, baseline, t1.Add(time.Second)); d.Action != Hold {
		t.Errorf("just resumed: %v %q", d.Action, d.Reason)
	}
	if _, err := ResumeCanary(resumed, t1); !errors.Is(err, ErrConflict) {
		t.Errorf("resuming a running canary: %v", err)
	}
}

func TestCanary_AbortRemovesTheCanary(t *testing.T) {
	for _, pause := range []bool{false, true} {
		r := startCanary(t)
		r.evaluate(30*time.Second, healthy, baseline)
		e := r.e
		if pause {
			e, _ = PauseCanary(e, r.now)
		}
		aborted, err := AbortCanary(e, "aborted by alice", r.now)
		if err != nil {
			t.Fatal(err)
		}
		if aborted.Canary.State != CanaryAborted || aborted.Canary.Reason != "aborted by alice" ||
			!reflect.DeepEqual(aborted.Policy.Variants, abPolicy(90, 10).Variants) {
			t.Errorf("aborted (paused first: %v): %+v, variants %+v", pause, aborted.Canary, aborted.Policy.Variants)
		}
		if _, err := AbortCanary(aborted, "again", r.now); !errors.Is(err, ErrConflict) {
			t.Errorf("aborting twice: %v", err)
		}
	}
}

func TestCanary_PromoteByHand(t *testing.T) {
	r := startCanary(t)
	paused, _ := PauseCanary(r.e, t0)
	promoted, err := PromoteCanary(paused, "promoted by alice", t0)
	if err != nil || promoted.Canary.State != CanaryPromoted || promoted.Canary.Reason != "promoted by alice" ||
		!reflect.DeepEqual(promoted.Policy.Variants, []Variant{{"control", "churn/8", 100}}) {
		t.Fatalf("PromoteCanary = %+v, %v", promoted, err)
	}
	if _, err := PromoteCanary(promoted, "", t0); !errors.Is(err, ErrConflict) {
		t.Errorf("promoting twice: %v", err)
	}
}

func TestCanary_Conflicts(t *testing.T) {
	plain, _ := NewEndpoint("churn", abPolicy(90, 10), t0)
	r := startCanary(t)
	if _, err := StartCanary(r.e, testSpec(), t0); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "already running") {
		t.Errorf("a second canary: %v", err)
	}
	if _, err := ApplyCanary(plain, Decision{Action: Advance}, t0); !errors.Is(err, ErrConflict) {
		t.Errorf("ApplyCanary without a canary: %v", err)
	}
	if _, err := ApplyCanary(r.e, Decision{Action: Action(9)}, t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("an unknown action: %v", err)
	}
	last := r.e.clone()
	last.Canary.Step = len(last.Canary.Spec.Steps) - 1
	if _, err := ApplyCanary(last, Decision{Action: Advance}, t0); !errors.Is(err, ErrConflict) {
		t.Errorf("advancing past the last step: %v", err)
	}
	taken, _ := SetPolicy(plain, Policy{Variants: []Variant{{"canary", "m", 1}}}, t0)
	if _, err := StartCanary(taken, testSpec(), t0); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `already named "canary"`) {
		t.Errorf("a variant already named canary: %v", err)
	}
	bad := testSpec()
	bad.Steps = []int{50}
	if _, err := StartCanary(plain, bad, t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("a bad spec: %v", err)
	}
}

func TestCanary_RestartAfterRollBack(t *testing.T) {
	r := startCanary(t)
	r.evaluate(30*time.Second, WindowFigures{Requests: 1000, Errors: 500}, baseline)
	if r.e.Canary.State != CanaryRolledBack {
		t.Fatalf("state %s", r.e.Canary.State)
	}
	spec := testSpec()
	spec.Model = "churn/9"
	again, err := StartCanary(r.e, spec, r.now)
	if err != nil {
		t.Fatal(err)
	}
	want := []Variant{{"control", "churn@champion", 81}, {"treatment", "churn@challenger", 9}, {"canary", "churn/9", 10}}
	if !reflect.DeepEqual(again.Policy.Variants, want) || again.Canary.Step != 0 || again.Canary.Reason != "" ||
		!slices.Equal(again.Canary.Baseline, abPolicy(90, 10).Variants) {
		t.Errorf("restarted: %+v, canary %+v", again.Policy.Variants, again.Canary)
	}
}

func TestAction_String(t *testing.T) {
	for a, want := range map[Action]string{Hold: "hold", Advance: "advance", Promote: "promote", RollBack: "roll_back", 7: "Action(7)"} {
		if a.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(a), a.String(), want)
		}
	}
}

func FuzzDecodeCanarySpec(f *testing.F) {
	f.Add([]byte(`{"model": "churn/8", "steps": [10, 25, 50, 100], "interval": "30s", "analysis": {"max_error_rate": 0.01, "min_requests": 100}}`))
	f.Add([]byte(`{"model": "churn@challenger", "steps": [100], "interval": "100ms", "promote_alias": ""}`))
	f.Add([]byte(`{"interval": null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		spec, err := DecodeCanarySpec(body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeCanarySpec error does not match ErrInvalid: %v", err)
			}
			return
		}
		e, _ := NewEndpoint("e", abPolicy(3, 1), t0)
		e, err = StartCanary(e, spec, t0)
		if err != nil {
			t.Fatalf("StartCanary with a decoded spec: %v", err)
		}
		total := 0
		for _, w := range weights(e) {
			total += w
		}
		if total != 100 {
			t.Fatalf("weights %v do not sum to 100", weights(e))
		}
	})
}

func TestEndpoint_JSONRoundTrip(t *testing.T) {
	r := startCanary(t)
	r.evaluate(30*time.Second, healthy, baseline)
	b, err := json.Marshal(r.e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"interval":"30s"`) {
		t.Errorf("interval not written as a duration string: %s", b)
	}
	var got Endpoint
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r.e) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, r.e)
	}
}
