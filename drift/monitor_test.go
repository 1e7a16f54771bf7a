package drift

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 11, 9, 12, 0, 0, 0, time.UTC)

// population draws the features and predictions of one request; shift
// moves x_normal up one standard deviation and reshuffles country.
func population(rng *rand.Rand, shift bool) (features, predictions map[string]any) {
	mean := 50.0
	countries := []string{"fr", "de", "it", "es"}
	shares := []float64{0.5, 0.3, 0.15, 0.05}
	if shift {
		mean = 60
		shares = []float64{0.2, 0.3, 0.15, 0.35}
	}
	u := rng.Float64()
	features = map[string]any{
		"x_normal":  mean + 10*rng.NormFloat64(),
		"x_exp":     3 * rng.ExpFloat64(),
		"x_uniform": 100 * rng.Float64(),
		"x_int":     rng.IntN(21),
		"country":   pick(rng, countries, shares),
		"device":    pick(rng, []string{"mobile", "desktop"}, []float64{0.6, 0.4}),
		"premium":   rng.Float64() < 0.2,
	}
	predictions = map[string]any{
		"score": u * u,
		"label": pick(rng, []string{"yes", "no"}, []float64{0.3, 0.7}),
	}
	return features, predictions
}

func pick(rng *rand.Rand, values []string, shares []float64) string {
	u := rng.Float64()
	for i, s := range shares {
		if u < s {
			return values[i]
		}
		u -= s
	}
	return values[len(values)-1]
}

func testBaseline(t testing.TB, rng *rand.Rand, n int) *Baseline {
	t.Helper()
	bb := NewBaselineBuilder()
	for range n {
		features, predictions := population(rng, false)
		for k, v := range features {
			if err := bb.Add(k, v); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range predictions {
			if err := bb.AddPrediction(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := bb.Build(10)
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	return b
}

func testSpec() MonitorSpec {
	return MonitorSpec{
		Name:        "churn-inputs",
		Endpoint:    "churn",
		Baseline:    BaselineModel,
		Window:      Duration(15 * time.Minute),
		MinSamples:  500,
		Predictions: true,
		Thresholds:  Thresholds{PSI: 0.2, KSP: 0.01, JS: 0.1, Chi2P: 0.01},
		Cooldown:    Duration(time.Hour),
	}
}

var testModel = ModelInfo{Name: "churn", Version: 3, UUID: "4a8e2c1e-0f3b-4d7a-9a51-0c1d2e3f4a5b"}

func newTestMonitor(t testing.TB, spec MonitorSpec) *Monitor {
	t.Helper()
	m, err := NewMonitor(spec, testBaseline(t, rand.New(rand.NewPCG(1, 1)), 20000), testModel, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Windows drawn from the baseline's distribution never drift; a window where
// x_normal moved by one standard deviation and country was reshuffled
// drifts on those two features, and only on them.
func TestMonitor_DetectsShiftOnly(t *testing.T) {
	m := newTestMonitor(t, testSpec())
	rng := rand.New(rand.NewPCG(2, 2))
	now := fixedNow
	for w := range 5 {
		for range 2000 {
			m.Observe(population(rng, false))
		}
		now = now.Add(15 * time.Minute)
		rep, ok := m.Evaluate(now, false)
		if !ok {
			t.Fatalf("window %d did not close", w)
		}
		if rep.Samples != 2000 || len(rep.Features) != 7 || len(rep.Predictions) != 2 {
			t.Fatalf("window %d: %d samples, %d features, %d predictions", w, rep.Samples, len(rep.Features), len(rep.Predictions))
		}
		for _, sr := range slices.Concat(rep.Features, rep.Predictions) {
			if !sr.Judged || sr.Count != 2000 || sr.Missing != 0 {
				t.Errorf("window %d: %s: judged %v, count %d, missing %d", w, sr.Name, sr.Judged, sr.Count, sr.Missing)
			}
			if sr.Drifted {
				t.Errorf("window %d: %s drifted without a shift: %+v", w, sr.Name, sr.Metrics)
			}
		}
		if rep.Drifted || rep.Alert != nil {
			t.Errorf("window %d drifted", w)
		}
	}

	for range 2000 {
		m.Observe(population(rng, true))
	}
	now = now.Add(15 * time.Minute)
	rep, _ := m.Evaluate(now, false)
	var drifted []string
	for _, sr := range slices.Concat(rep.Features, rep.Predictions) {
		if sr.Drifted {
			drifted = append(drifted, sr.Name)
		}
	}
	if !reflect.DeepEqual(drifted, []string{"country", "x_normal"}) {
		t.Errorf("drifted %v, want [country x_normal]", drifted)
	}
	metrics := map[string][]string{}
	for _, sr := range rep.Features {
		for _, mr := range sr.Metrics {
			if mr.Drifted {
				metrics[sr.Name] = append(metrics[sr.Name], mr.Metric)
			}
		}
	}
	want := map[string][]string{"x_normal": {"psi", "ks_p", "js"}, "country": {"psi", "js", "chi2_p"}}
	if !reflect.DeepEqual(metrics, want) {
		t.Errorf("drifted metrics %v, want %v", metrics, want)
	}
	if !rep.Drifted || !rep.Alerted || rep.Alert == nil {
		t.Fatalf("the shifted window raised no alert: %+v", rep)
	}
	a := rep.Alert
	if a.Event != EventDriftDetected || a.Monitor != "churn-inputs" || a.Endpoint != "churn" || a.Model != testModel ||
		!a.Window.Start.Equal(now.Add(-15*time.Minute)) || !a.Window.End.Equal(now) || len(a.Drifted) != 6 {
		t.Errorf("alert = %+v", a)
	}
	for _, d := range a.Drifted {
		if d.Feature != "country" && d.Feature != "x_normal" || d.Prediction {
			t.Errorf("alert names %+v", d)
		}
	}
	if len(m.Report().History) != 6 {
		t.Errorf("history has %d reports, want 6", len(m.Report().History))
	}
	if _, err := json.Marshal(m.Report()); err != nil {
		t.Errorf("report does not marshal: %v", err)
	}
}

// A second drifted window within the cooldown is reported, not alerted;
// one after the cooldown alerts again.
func TestMonitor_Cooldown(t *testing.T) {
	m := newTestMonitor(t, testSpec())
	rng := rand.New(rand.NewPCG(3, 3))
	now := fixedNow
	var alerts []bool
	for range 6 { // windows end at 15m, 30m, 45m, 60m, 75m, 90m
		for range 1000 {
			m.Observe(population(rng, true))
		}
		now = now.Add(15 * time.Minute)
		rep, _ := m.Evaluate(now, false)
		if !rep.Drifted {
			t.Fatal("a shifted window did not drift")
		}
		if rep.Alerted != (rep.Alert != nil) {
			t.Fatalf("alerted %v with alert %v", rep.Alerted, rep.Alert)
		}
		alerts = append(alerts, rep.Alerted)
	}
	if want := []bool{true, false, false, false, true, false}; !reflect.DeepEqual(alerts, want) {
		t.Errorf("alerts %v, want %v (cooldown 1h)", alerts, want)
	}
	if got := m.Report().LastAlert; !got.Equal(fixedNow.Add(75 * time.Minute)) {
		t.Errorf("last alert %v", got)
	}
}

func TestMonitor_MinSamplesAndWindowTime(t *testing.T) {
	m := newTestMonitor(t, testSpec())
	rng := rand.New(rand.NewPCG(4, 4))
	for range 499 {
		m.Observe(population(rng, true))
	}
	if rep, ok := m.Evaluate(fixedNow.Add(15*time.Minute-time.Nanosecond), false); ok || rep != nil {
		t.Fatal("the window closed before its time")
	}
	rep, ok := m.Evaluate(fixedNow.Add(time.Minute), true)
	if !ok {
		t.Fatal("a forced evaluation did not close the window")
	}
	if rep.Drifted || rep.Alert != nil {
		t.Error("a window below min_samples drifted")
	}
	for _, sr := range rep.Features {
		if sr.Judged || sr.Drifted || sr.Count != 499 || len(sr.Metrics) == 0 {
			t.Errorf("%s: %+v", sr.Name, sr)
		}
	}
	// The next window opened at the forced evaluation.
	if _, ok := m.Evaluate(fixedNow.Add(15*time.Minute), false); ok {
		t.Error("the next window did not open at the forced evaluation")
	}
	rep, _ = m.Evaluate(fixedNow.Add(16*time.Minute), false)
	if rep.Samples != 0 || !rep.Start.Equal(fixedNow.Add(time.Minute)) {
		t.Errorf("empty window: %+v", rep)
	}
	for _, sr := range rep.Features {
		if sr.Judged || sr.Count != 0 || len(sr.Metrics) != 0 {
			t.Errorf("empty window: %s: %+v", sr.Name, sr)
		}
	}
}

func TestMonitor_HistoryBounded(t *testing.T) {
	m := newTestMonitor(t, testSpec())
	for i := range HistoryLen + 4 {
		m.Evaluate(fixedNow.Add(time.Duration(i+1)*time.Minute), true)
	}
	h := m.Report().History
	if len(h) != HistoryLen || !h[0].Start.Equal(fixedNow.Add(4*time.Minute)) {
		t.Errorf("history: %d reports, the first from %v", len(h), h[0].Start)
	}
}

func TestMonitor_ObserveValues(t *testing.T) {
	b := &Baseline{
		Features: map[string]FeatureBaseline{
			"n": {Edges: []float64{0, 1, 2}, Counts: []int64{0, 5, 5, 0}},
			"c": {Categories: map[string]int64{"a": 5, "3": 5, "true": 1}, Other: 1},
		},
		Predictions: map[string]FeatureBaseline{"p": {Edges: []float64{0, 1}, Counts: []int64{0, 1, 0}}},
	}
	spec := testSpec()
	spec.MinSamples = 0
	m, err := NewMonitor(spec, b, testModel, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, obs := range []map[string]any{
		{"n": 0.5, "c": "a"},
		{"n": int64(1), "c": 3},
		{"n": json.Number("1.5"), "c": true},
		{"n": float32(-1), "c": "zz"},
		{"n": "x", "c": nil},
		{"n": math.NaN(), "c": []string{"a"}},
		{"n": math.Inf(1), "c": math.NaN()},
		{"other": 1.0},
	} {
		m.Observe(obs, map[string]any{"p": 0.5})
	}
	m.Observe(nil, nil)
	cur := m.Report().Current
	if cur.Samples != 9 || !reflect.DeepEqual(cur.Features, map[string]int64{"n": 4, "c": 4}) || !reflect.DeepEqual(cur.Predictions, map[string]int64{"p": 8}) {
		t.Errorf("current = %+v", cur)
	}
	rep, _ := m.Evaluate(fixedNow.Add(time.Hour), false)
	byName := map[string]SeriesReport{}
	for _, sr := range slices.Concat(rep.Features, rep.Predictions) {
		byName[sr.Name] = sr
	}
	if n := byName["n"]; n.Kind != KindNumeric || n.Count != 4 || n.Missing != 5 || n.Baseline != 10 {
		t.Errorf("n = %+v", n)
	}
	if c := byName["c"]; c.Kind != KindCategorical || c.Count != 4 || c.Other != 1 || c.Missing != 5 || c.Baseline != 12 {
		t.Errorf("c = %+v", c)
	}
	if p := byName["p"]; p.Count != 8 || p.Missing != 1 {
		t.Errorf("p = %+v", p)
	}
	hists := []struct {
		series string
		want   SeriesHistogram
	}{
		{"n", SeriesHistogram{Labels: []string{"< 0", "0 – 1", "1 – 2", "≥ 2"}, Edges: []float64{0, 1, 2},
			Baseline: []int64{0, 5, 5, 0}, Live: []int64{1, 1, 2, 0}}},
		{"c", SeriesHistogram{Labels: []string{"3", "a", "true", "(other)"}, Baseline: []int64{5, 5, 1, 1}, Live: []int64{1, 1, 1, 1}}},
	}
	for _, h := range hists {
		if got := byName[h.series].Histogram; !reflect.DeepEqual(got, h.want) {
			t.Errorf("%s's histogram = %+v, want %+v", h.series, got, h.want)
		}
	}
	for _, mr := range byName["c"].Metrics {
		if mr.Metric == MetricKSP {
			t.Error("KS applied to a categorical series")
		}
	}
	for _, mr := range byName["n"].Metrics {
		if mr.Metric == MetricChi2P {
			t.Error("chi-square applied to a numeric series")
		}
	}
}

func TestNewMonitor_Errors(t *testing.T) {
	b := &Baseline{Features: map[string]FeatureBaseline{"a": {Categories: map[string]int64{"x": 1}}}}
	spec := testSpec()
	if _, err := NewMonitor(spec, b, testModel, fixedNow); err == nil || err.Error() != "predictions: the baseline has no predictions to compare with" {
		t.Errorf("NewMonitor with predictions but none in the baseline = %v", err)
	}
	spec.Predictions = false
	spec.Features = []string{"a", "b"}
	if _, err := NewMonitor(spec, b, testModel, fixedNow); err == nil || err.Error() != `features[1]: "b" is not in the baseline` {
		t.Errorf("NewMonitor with an unknown feature = %v", err)
	}
	if _, err := NewMonitor(spec, nil, testModel, fixedNow); err == nil {
		t.Error("NewMonitor without a baseline succeeded")
	}
	spec.Window = 0
	if _, err := NewMonitor(spec, b, testModel, fixedNow); err == nil {
		t.Error("NewMonitor with a bad spec succeeded")
	}
	spec = testSpec()
	spec.Predictions = false
	if _, err := NewMonitor(spec, &Baseline{Predictions: b.Features}, testModel, fixedNow); err == nil {
		t.Error("NewMonitor with nothing to watch succeeded")
	}
}

func TestMonitor_ReportRedactsSecret(t *testing.T) {
	spec := testSpec()
	spec.Webhook = Webhook{URL: "https://hooks.example.com/x", Secret: "s3cret"}
	m := newTestMonitor(t, spec)
	if got := m.Report().Spec.Webhook.Secret; got != "redacted" {
		t.Errorf("report shows secret %q", got)
	}
	if got := m.Spec().Webhook.Secret; got != "s3cret" {
		t.Errorf("Spec().Webhook.Secret = %q", got)
	}
}

// Run with -race: observations racing window closes are each counted in
// exactly one window.
func TestMonitor_ConcurrentObserveEvaluate(t *testing.T) {
	m := newTestMonitor(t, testSpec())
	const goroutines, each = 4, 3000
	var wg sync.WaitGroup
	var stop atomic.Bool
	var counted int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; !stop.Load(); i++ {
			rep, _ := m.Evaluate(fixedNow.Add(time.Duration(i)*time.Second), true)
			counted += rep.Samples
			m.Report()
		}
	}()
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for range each {
				m.Observe(population(rng, false))
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	<-done
	counted += m.Report().Current.Samples
	if counted != goroutines*each {
		t.Errorf("counted %d observations, want %d", counted, goroutines*each)
	}
}

// BenchmarkEvaluate_Features10 closes windows of 64 observations each.

// benchObservations returns a monitor of 10 features (7 numeric, 3
// categorical) and requests to feed it.
func benchObservations(b *testing.B) (*Monitor, []map[string]any) {
	rng := rand.New(rand.NewPCG(5, 5))
	draw := func() map[string]any {
		f, _ := population(rng, false)
		f["x_normal2"] = 3 * rng.NormFloat64()
		f["x_normal3"] = 7 + rng.NormFloat64()
		f["x_exp2"] = rng.ExpFloat64()
		return f
	}
	bb := NewBaselineBuilder()
	for range 5000 {
		for k, v := range draw() {
			if err := bb.Add(k, v); err != nil {
				b.Fatal(err)
			}
		}
	}
	spec := testSpec()
	spec.Predictions = false
	m, err := NewMonitor(spec, bb.Build(10), testModel, fixedNow)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(m.Report().Current.Features); n != 10 {
		b.Fatalf("%d features, want 10", n)
	}
	reqs := make([]map[string]any, 64)
	for i := range reqs {
		reqs[i] = draw()
	}
	return m, reqs
}

func BenchmarkObserve_Features10(b *testing.B) {
	m, reqs := benchObservations(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Observe(reqs[i%len(reqs)], nil)
		i++
	}
}

func BenchmarkObserve_Features10_Parallel(b *testing.B) {
	m, reqs := benchObservations(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Observe(reqs[i%len(reqs)], nil)
			i++
		}
	})
}

func BenchmarkEvaluate_Features10(b *testing.B) {
	m, reqs := benchObservations(b)
	b.ReportAllocs()
	now := fixedNow
	for b.Loop() {
		for _, r := range reqs {
			m.Observe(r, nil)
		}
		now = now.Add(time.Second)
		m.Evaluate(now, true)
	}
}
