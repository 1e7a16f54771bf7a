package router

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{-time.Second, 0},
		{0, 0},
		{1023, 0},
		{1024, 0},
		{1024 + 127, 0},
		{1024 + 128, 1},
		{2047, 7},
		{2048, 8},
		{1<<35 - 1, numBuckets - 1},
		{time.Hour, numBuckets - 1},
	}
	for _, tt := range tests {
		if got := bucket(tt.d); got != tt.want {
			t.Errorf("bucket(%d) = %d, want %d", tt.d, got, tt.want)
		}
	}
	// Every bucket's midpoint falls in that bucket.
	for b := range numBuckets {
		if got := bucket(time.Duration(bucketMid(b))); got != b {
			t.Errorf("bucket(bucketMid(%d)) = %d", b, got)
		}
	}
}

// Quantiles read from the histogram are within 7% of the exact ones, from
// 50µs to 30s.
func TestQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, scale := range []time.Duration{50 * time.Microsecond, time.Millisecond, 40 * time.Millisecond, 2 * time.Second} {
		r := route(t, "s", Variant{"a", "m", 1})
		st := r.Stats()
		var all []time.Duration
		for range 20_000 {
			// Log-normal: a long tail, as latencies have.
			d := time.Duration(float64(scale) * math.Exp(rng.NormFloat64()*0.5))
			all = append(all, d)
			st.Record(0, d, false)
		}
		slices.Sort(all)
		v := st.Snapshot().Variants[0]
		for _, q := range []struct {
			got  float64
			want time.Duration
		}{{v.P50Ms, all[len(all)/2]}, {v.P99Ms, all[len(all)*99/100]}} {
			want := float64(q.want) / 1e6
			if math.Abs(q.got-want)/want > 0.07 {
				t.Errorf("scale %v: quantile %.4gms, exact %.4gms", scale, q.got, want)
			}
		}
	}
}

func TestStats_Snapshot(t *testing.T) {
	r := route(t, "s", Variant{"control", "m", 90}, Variant{"treatment", "m", 10}, Variant{"off", "m", 0})
	st := r.Stats()
	for i := range 1000 {
		v := 0
		if i%10 == 0 {
			v = 1
		}
		st.Record(v, 2*time.Millisecond, i%100 == 0)
		st.RecordPrediction(v, float64(v+1))
	}
	st.Record(2, time.Millisecond, false) // pinned by the header
	st.RecordPrediction(0, math.NaN())
	st.RecordShadow(true)
	st.RecordShadow(true)
	st.RecordShadow(false)
	st.RecordShadowDiff(0.5)
	st.RecordShadowDiff(-1.5)
	st.RecordShadowDiff(math.Inf(1))
	st.RecordShadowDropped()

	s := st.Snapshot()
	c, tr, off := s.Variants[0], s.Variants[1], s.Variants[2]
	if c.Name != "control" || c.Weight != 90 || c.Requests != 900 || c.Errors != 0 || tr.Requests != 100 || tr.Errors != 10 || off.Requests != 1 {
		t.Errorf("counts: %+v %+v %+v", c, tr, off)
	}
	if tr.ErrorRate != 0.1 || math.Abs(c.Share-900.0/1001) > 1e-12 || s.Requests != 1001 {
		t.Errorf("rates: error rate %v, share %v, requests %d", tr.ErrorRate, c.Share, s.Requests)
	}
	if c.Predictions != 900 || c.PredictionMean != 1 || tr.PredictionMean != 2 || off.PredictionMean != 0 {
		t.Errorf("predictions: %+v %+v", c, tr)
	}
	if mid := bucketMid(bucket(2*time.Millisecond)) / 1e6; c.P50Ms != mid || c.P99Ms != mid {
		t.Errorf("p50 %v, p99 %v; want %v", c.P50Ms, c.P99Ms, mid)
	}
	want := ShadowStats{Agree: 2, Disagree: 1, AgreementRate: 2.0 / 3, Diffs: 2, DiffSum: 2, MeanAbsDiff: 1, Dropped: 1}
	if s.Shadow != want {
		t.Errorf("shadow = %+v, want %+v", s.Shadow, want)
	}
	if s.SRM || s.SRMPValue != 1 {
		t.Errorf("an exact 90/10 split (and a pinned request to a variant of weight 0): SRM %v, p %v", s.SRM, s.SRMPValue)
	}
}

func TestStats_SRM(t *testing.T) {
	tests := []struct {
		control, treatment int
		wantSRM            bool
	}{
		{900, 100, false},
		{880, 120, false}, // p ≈ 0.035
		{850, 150, true},  // p ≈ 1e-7
		{500, 500, true},
		{50, 50, true},  // 100 requests: enough to judge
		{50, 49, false}, // 99 requests: too few, however skewed
	}
	for _, tt := range tests {
		r := route(t, "s", Variant{"control", "m", 90}, Variant{"treatment", "m", 10})
		for range tt.control {
			r.Stats().Record(0, time.Millisecond, false)
		}
		for range tt.treatment {
			r.Stats().Record(1, time.Millisecond, false)
		}
		s := r.Stats().Snapshot()
		if s.SRM != tt.wantSRM {
			t.Errorf("%d/%d: SRM %v (p %.3g), want %v", tt.control, tt.treatment, s.SRM, s.SRMPValue, tt.wantSRM)
		}
	}
}

func TestStats_Sub(t *testing.T) {
	r := route(t, "s", Variant{"control", "m", 1}, Variant{"treatment", "m", 1})
	st := r.Stats()
	for range 100 {
		st.Record(0, time.Millisecond, false)
		st.RecordPrediction(0, 1)
	}
	st.RecordShadow(true)
	prev := st.Snapshot()
	for range 50 {
		st.Record(0, 100*time.Millisecond, true)
		st.Record(1, 100*time.Millisecond, false)
		st.RecordPrediction(0, 3)
	}
	st.RecordShadow(false)
	w := st.Snapshot().Sub(prev)
	c := w.Variants[0]
	if c.Requests != 50 || c.Errors != 50 || c.ErrorRate != 1 || c.PredictionMean != 3 || w.Requests != 100 || c.Share != 0.5 {
		t.Errorf("interval: %+v", c)
	}
	if mid := bucketMid(bucket(100*time.Millisecond)) / 1e6; c.P50Ms != mid {
		t.Errorf("interval p50 = %v, want %v (the earlier 1ms requests left out)", c.P50Ms, mid)
	}
	if w.Shadow.Agree != 0 || w.Shadow.Disagree != 1 || w.Shadow.AgreementRate != 0 {
		t.Errorf("interval shadow: %+v", w.Shadow)
	}
	if w.SRM || w.SRMPValue != 1 {
		t.Errorf("interval SRM: %v %v", w.SRM, w.SRMPValue)
	}
	if empty := st.Snapshot().Sub(st.Snapshot()); empty.Requests != 0 || empty.Variants[0].P99Ms != 0 || empty.SRMPValue != 1 {
		t.Errorf("an empty interval: %+v", empty)
	}
}

func TestStats_CanaryFigures(t *testing.T) {
	e, _ := NewEndpoint("churn", abPolicy(90, 10), t0)
	e, _ = StartCanary(e, testSpec(), t0)
	r, err := NewRoute(e)
	if err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	// control: 80 fast, treatment: 20 slow with errors, canary: 10 with one error.
	for range 80 {
		st.Record(0, time.Millisecond, false)
		st.RecordPrediction(0, 1)
	}
	for range 20 {
		st.Record(1, time.Second, true)
		st.RecordPrediction(1, 2)
	}
	for i := range 10 {
		st.Record(2, 5*time.Millisecond, i == 0)
		st.RecordPrediction(2, 4)
	}
	canary, baseline, ok := st.Snapshot().CanaryFigures()
	if !ok {
		t.Fatal("no canary variant")
	}
	if canary.Requests != 10 || canary.Errors != 1 || canary.PredictionMean != 4 || canary.Predictions != 10 {
		t.Errorf("canary figures: %+v", canary)
	}
	if baseline.Requests != 100 || baseline.Errors != 20 || baseline.PredictionMean != 1.2 || baseline.P99Ms != bucketMid(bucket(time.Second))/1e6 {
		t.Errorf("baseline figures: %+v", baseline)
	}
	if _, _, ok := route(t, "s", Variant{"a", "m", 1}).Stats().Snapshot().CanaryFigures(); ok {
		t.Error("CanaryFigures found a canary in a route without one")
	}
}

func TestStats_Concurrent(t *testing.T) {
	r := route(t, "s", Variant{"a", "m", 1}, Variant{"b", "m", 1})
	st := r.Stats()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				st.Record(g%2, time.Duration(i)*time.Microsecond, i%10 == 0)
				st.RecordPrediction(g%2, 0.5)
				st.RecordShadowDiff(0.25)
			}
		})
		wg.Go(func() { st.Snapshot() })
	}
	wg.Wait()
	s := st.Snapshot()
	for _, v := range s.Variants {
		if v.Requests != 4000 || v.Errors != 400 || v.Predictions != 4000 || v.PredictionSum != 2000 {
			t.Errorf("%s: %+v", v.Name, v)
		}
	}
	if s.Shadow.Diffs != 8000 || s.Shadow.DiffSum != 2000 {
		t.Errorf("shadow: %+v", s.Shadow)
	}
}

func BenchmarkStatsRecord(b *testing.B) {
	st := route(b, "s", Variant{"a", "m", 1}, Variant{"b", "m", 1}).Stats()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		st.Record(i&1, time.Duration(i&0xffff)*time.Microsecond, false)
		i++
	}
}

func BenchmarkStatsRecord_Parallel(b *testing.B) {
	st := route(b, "s", Variant{"a", "m", 1}, Variant{"b", "m", 1}).Stats()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			st.Record(i&1, time.Duration(i&0xffff)*time.Microsecond, false)
			i++
		}
	})
}

func BenchmarkStatsRecordPrediction_Parallel(b *testing.B) {
	st := route(b, "s", Variant{"a", "m", 1}, Variant{"b", "m", 1}).Stats()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st.RecordPrediction(0, 0.5)
		}
	})
}

func BenchmarkStatsSnapshot_Variants2(b *testing.B) {
	st := route(b, "s", Variant{"a", "m", 1}, Variant{"b", "m", 1}).Stats()
	b.ReportAllocs()
	for b.Loop() {
		st.Snapshot()
	}
}

// replay records requests on one of several Stats by the request's replica.
type replayed struct {
	replica int
	variant int
	latency time.Duration
	err     bool
	// prediction is recorded when not 0.
	prediction float64
	shadow     string // "agree", "disagree", "diff", "dropped" or "failed"
}

func replay(stats []*Stats, reqs []replayed) {
	for _, q := range reqs {
		st := stats[q.replica]
		st.Record(q.variant, q.latency, q.err)
		if q.prediction != 0 {
			st.RecordPrediction(q.variant, q.prediction)
		}
		switch q.shadow {
		case "agree", "disagree":
			st.RecordShadow(q.shadow == "agree")
		case "diff":
			st.RecordShadowDiff(0.25)
		case "dropped":
			st.RecordShadowDropped()
		case "failed":
			st.RecordShadowFailed()
		}
	}
}

// TestMergeSnapshots: the merge of the snapshots of three Stats of one route
// equals the snapshot of one Stats that recorded all their requests, whether
// the snapshots are merged as taken or after a JSON round trip (as replicas
// read one another's).
func TestMergeSnapshots(t *testing.T) {
	variants := []Variant{{"control", "m", 90}, {"treatment", "m", 10}, {"off", "m", 0}}
	skewed := func() []replayed {
		var out []replayed
		for i := range 600 {
			v := 0
			if i%3 == 0 {
				v = 1 // a third to the 10% variant: SRM
			}
			out = append(out, replayed{replica: i % 3, variant: v, latency: time.Duration(1+i%50) * time.Millisecond, err: i%17 == 0, prediction: float64(i%4) / 2})
		}
		return out
	}
	tests := []struct {
		name string
		reqs []replayed
	}{
		{"nothing recorded", nil},
		{"one replica only", []replayed{
			{replica: 1, variant: 0, latency: 3 * time.Millisecond},
			{replica: 1, variant: 1, latency: time.Second, err: true, prediction: 1.5},
		}},
		{"every replica, shadows and a pinned variant", []replayed{
			{replica: 0, variant: 0, latency: time.Millisecond, shadow: "agree"},
			{replica: 1, variant: 0, latency: 2 * time.Millisecond, shadow: "disagree", prediction: 2},
			{replica: 2, variant: 1, latency: 40 * time.Millisecond, shadow: "diff", prediction: 0.5},
			{replica: 2, variant: 2, latency: 10 * time.Second, err: true, shadow: "dropped"},
			{replica: 0, variant: 1, latency: 500 * time.Microsecond, shadow: "failed"},
			{replica: 1, variant: 0, latency: time.Hour, err: true, shadow: "diff"},
		}},
		{"skewed split over the fleet", skewed()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one := route(t, "s", variants...).Stats()
			replay([]*Stats{one, one, one}, tt.reqs)
			want := one.Snapshot()

			three := []*Stats{route(t, "s", variants...).Stats(), route(t, "s", variants...).Stats(), route(t, "s", variants...).Stats()}
			replay(three, tt.reqs)
			snaps := make([]StatsSnapshot, len(three))
			decoded := make([]StatsSnapshot, len(three))
			for i, st := range three {
				snaps[i] = st.Snapshot()
				b, err := json.Marshal(snaps[i])
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(b, &decoded[i]); err != nil {
					t.Fatalf("decode %s: %v", b, err)
				}
			}
			if got := MergeSnapshots(snaps...); !reflect.DeepEqual(got, want) {
				t.Errorf("merged:\n got %+v\nwant %+v", got, want)
			}
			if got := MergeSnapshots(decoded...); !reflect.DeepEqual(got, want) {
				t.Errorf("merged after JSON:\n got %+v\nwant %+v", got, want)
			}
		})
	}
	if got := MergeSnapshots(); len(got.Variants) != 0 || got.Requests != 0 || got.SRM {
		t.Errorf("MergeSnapshots() = %+v, want nothing counted", got)
	}
}

// TestStatsSnapshot_JSON: a snapshot decoded from its JSON is the snapshot,
// latency histogram included, so its figures and quantiles are the same;
// the histogram is written sparsely.
func TestStatsSnapshot_JSON(t *testing.T) {
	e, _ := NewEndpoint("churn", abPolicy(90, 10), t0)
	e, _ = StartCanary(e, testSpec(), t0)
	r, err := NewRoute(e)
	if err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	for i := range 300 {
		st.Record(i%3, time.Duration(i+1)*100*time.Microsecond, i%29 == 0)
		st.RecordPrediction(i%3, float64(i%5))
	}
	st.RecordShadow(false)
	want := st.Snapshot()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got StatsSnapshot
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	wc, wb, _ := want.CanaryFigures()
	gc, gb, ok := got.CanaryFigures()
	if !ok || gc != wc || gb != wb {
		t.Errorf("canary figures after JSON: %+v %+v, want %+v %+v", gc, gb, wc, wb)
	}
	var raw struct {
		Variants []struct {
			LatencyBuckets map[string]int64 `json:"latency_buckets"`
		} `json:"variants"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for i, v := range raw.Variants {
		if len(v.LatencyBuckets) == 0 || len(v.LatencyBuckets) >= numBuckets/2 {
			t.Errorf("variant %d: %d latency buckets written; want only those that counted", i, len(v.LatencyBuckets))
		}
	}

	for _, bad := range []string{
		`{"variants": [{"name": "a", "latency_buckets": {"200": 1}}]}`,
		`{"variants": [{"name": "a", "latency_buckets": {"-1": 1}}]}`,
		`{"variants": [{"name": "a", "latency_buckets": {"x": 1}}]}`,
	} {
		var s StatsSnapshot
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("decoded %s without an error", bad)
		}
	}
}
