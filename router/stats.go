package router

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/mlgate/mlgate/internal/stats"
)

// Sample ratio mismatch: a snapshot flags SRM when the requests per variant
// are this unlikely under the weights, over at least SRMMinRequests requests.
const (
	SRMAlpha       = 0.001
	SRMMinRequests = 100
)

// Latency histogram: 8 buckets per octave (each spans 1/8 of its octave's
// lower bound, so a quantile read at a bucket's midpoint is within about 6%)
// from 2^10 ns (about 1µs) to 2^35 ns (about 34s). Latencies outside the range
// count in the first or last bucket.
const (
	subBits    = 3
	subBuckets = 1 << subBits
	minShift   = 10
	maxShift   = 35
	numBuckets = (maxShift - minShift) * subBuckets
)

// Stats counts what happened to the requests one Route sent, per variant, for
// dashboards, sample ratio mismatch and canary analysis. Its methods are safe
// for concurrent use and take no lock: each count is an atomic. Variants are
// numbered as in the Route; recording for another number panics.
//
// Shares and SRM are measured against the route's weights, so a new revision
// (a new Route) starts new Stats.
type Stats struct {
	names    []string
	weights  []int
	variants []variantCounters
	shadow   struct {
		agree, disagree, diffs, dropped, failed atomic.Int64
		diffSum                                 atomicFloat
	}
}

type variantCounters struct {
	errors, predictions atomic.Int64
	predictionSum       atomicFloat
	latency             [numBuckets]atomic.Int64 // their sum is the requests
}

func newStats(vs []routeVariant) *Stats {
	s := &Stats{
		names:    make([]string, len(vs)),
		weights:  make([]int, len(vs)),
		variants: make([]variantCounters, len(vs)),
	}
	for i, v := range vs {
		s.names[i], s.weights[i] = v.name, v.weight
	}
	return s
}

// Record counts one request answered by variant after latency, failed if err.
// It does not allocate.
func (s *Stats) Record(variant int, latency time.Duration, err bool) {
	c := &s.variants[variant]
	c.latency[bucket(latency)].Add(1)
	if err {
		c.errors.Add(1)
	}
}

// RecordPrediction adds a numeric prediction of variant to its running mean,
// which canary analysis compares with the baseline's. Values that are not
// finite are ignored.
func (s *Stats) RecordPrediction(variant int, value float64) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	c := &s.variants[variant]
	c.predictions.Add(1)
	c.predictionSum.add(value)
}

// RecordShadow counts a shadow answer compared with the served one by label:
// whether they agree.
func (s *Stats) RecordShadow(agree bool) {
	if agree {
		s.shadow.agree.Add(1)
	} else {
		s.shadow.disagree.Add(1)
	}
}

// RecordShadowDiff counts a numeric shadow answer by its absolute difference
// from the served one. Values that are not finite are ignored.
func (s *Stats) RecordShadowDiff(absDiff float64) {
	if math.IsNaN(absDiff) || math.IsInf(absDiff, 0) {
		return
	}
	s.shadow.diffs.Add(1)
	s.shadow.diffSum.add(math.Abs(absDiff))
}

// RecordShadowDropped counts a shadow copy that was not sent (its queue was
// full, or it ran out of time).
func (s *Stats) RecordShadowDropped() { s.shadow.dropped.Add(1) }

// RecordShadowFailed counts a shadow copy whose model failed.
func (s *Stats) RecordShadowFailed() { s.shadow.failed.Add(1) }

// StatsSnapshot is what a Stats had counted at one moment, or, from Sub,
// over an interval. Rates and means are 0 where nothing was counted.
type StatsSnapshot struct {
	Variants []VariantStats `json:"variants"`
	Shadow   ShadowStats    `json:"shadow"`
	Requests int64          `json:"requests"`
	// SRMPValue is the p-value of a chi-square goodness-of-fit test of the
	// requests per variant against the weights; variants of weight 0 are left
	// out. It counts requests, not units: with sticky assignment a few very
	// busy units can skew it, and so can requests pinned by the header.
	SRMPValue float64 `json:"srm_p_value"`
	// SRM is set when SRMPValue < SRMAlpha (0.001) over at least
	// SRMMinRequests (100) requests: the split is not what the weights say.
	SRM bool `json:"srm"`
}

// VariantStats are one variant's figures.
type VariantStats struct {
	Name      string  `json:"name"`
	Weight    int     `json:"weight"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	// Share is the variant's observed share of the requests.
	Share float64 `json:"share"`
	// P50Ms and P99Ms are latency quantiles in milliseconds, read from the
	// histogram (within about 6%).
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	Predictions    int64   `json:"predictions"`
	PredictionSum  float64 `json:"prediction_sum"`
	PredictionMean float64 `json:"prediction_mean"`
	// latency counts requests per histogram bucket; its sum is Requests. In
	// JSON it is "latency_buckets", a map of the buckets that counted any
	// (bucket number → count), so that a snapshot published by one replica
	// and read by another gives the same figures and quantiles.
	latency []int64
}

// variantFields are VariantStats' fields, without its JSON methods.
type variantFields VariantStats

type variantJSON struct {
	variantFields
	LatencyBuckets map[int]int64 `json:"latency_buckets,omitempty"`
}

// MarshalJSON writes the figures with the latency histogram as
// "latency_buckets".
func (v VariantStats) MarshalJSON() ([]byte, error) {
	out := variantJSON{variantFields: variantFields(v)}
	for b, n := range v.latency {
		if n == 0 {
			continue
		}
		if out.LatencyBuckets == nil {
			out.LatencyBuckets = map[int]int64{}
		}
		out.LatencyBuckets[b] = n
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote. A bucket number outside the
// histogram is an error.
func (v *VariantStats) UnmarshalJSON(b []byte) error {
	var in variantJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*v = VariantStats(in.variantFields)
	v.latency = make([]int64, numBuckets)
	for b, n := range in.LatencyBuckets {
		if b < 0 || b >= numBuckets {
			return fmt.Errorf("variant %s: latency bucket %d out of range 0..%d", v.Name, b, numBuckets-1)
		}
		v.latency[b] = n
	}
	return nil
}

// ShadowStats compare shadow answers with the served ones.
type ShadowStats struct {
	Agree         int64   `json:"agree"`
	Disagree      int64   `json:"disagree"`
	AgreementRate float64 `json:"agreement_rate"`
	Diffs         int64   `json:"diffs"`
	DiffSum       float64 `json:"diff_sum"`
	MeanAbsDiff   float64 `json:"mean_abs_diff"`
	Dropped       int64   `json:"dropped"`
	Failed        int64   `json:"failed"`
}

// Snapshot returns the counts so far. Counters are read one by one, so a
// snapshot taken under load may miss some of the requests in flight.
func (s *Stats) Snapshot() StatsSnapshot {
	snap := StatsSnapshot{Variants: make([]VariantStats, len(s.variants))}
	for i := range s.variants {
		c := &s.variants[i]
		v := VariantStats{
			Name:          s.names[i],
			Weight:        s.weights[i],
			Errors:        c.errors.Load(),
			Predictions:   c.predictions.Load(),
			PredictionSum: c.predictionSum.load(),
			latency:       make([]int64, numBuckets),
		}
		for b := range c.latency {
			v.latency[b] = c.latency[b].Load()
		}
		snap.Variants[i] = v
	}
	sh := &s.shadow
	snap.Shadow = ShadowStats{
		Agree:    sh.agree.Load(),
		Disagree: sh.disagree.Load(),
		Diffs:    sh.diffs.Load(),
		DiffSum:  sh.diffSum.load(),
		Dropped:  sh.dropped.Load(),
		Failed:   sh.failed.Load(),
	}
	snap.finish()
	return snap
}

// Sub returns the figures of the interval between prev and s, both taken
// from the same Stats (prev earlier), so that a canary can look at one
// interval.
func (s StatsSnapshot) Sub(prev StatsSnapshot) StatsSnapshot {
	out := StatsSnapshot{Variants: make([]VariantStats, len(s.Variants))}
	for i, v := range s.Variants {
		var p VariantStats
		if i < len(prev.Variants) {
			p = prev.Variants[i]
		}
		d := VariantStats{
			Name:          v.Name,
			Weight:        v.Weight,
			Errors:        v.Errors - p.Errors,
			Predictions:   v.Predictions - p.Predictions,
			PredictionSum: v.PredictionSum - p.PredictionSum,
			latency:       make([]int64, numBuckets),
		}
		for b := range d.latency {
			d.latency[b] = at(v.latency, b) - at(p.latency, b)
		}
		out.Variants[i] = d
	}
	sh, p := s.Shadow, prev.Shadow
	out.Shadow = ShadowStats{
		Agree:    sh.Agree - p.Agree,
		Disagree: sh.Disagree - p.Disagree,
		Diffs:    sh.Diffs - p.Diffs,
		DiffSum:  sh.DiffSum - p.DiffSum,
		Dropped:  sh.Dropped - p.Dropped,
		Failed:   sh.Failed - p.Failed,
	}
	out.finish()
	return out
}

// MergeSnapshots adds up snapshots of Stats of the same route (such as every
// replica's of one revision): variants are matched by name, in the order
// they first appear, and their counts and latency histograms are summed
// before the rates, shares, means, quantiles and SRM are derived again.
func MergeSnapshots(snaps ...StatsSnapshot) StatsSnapshot {
	out := StatsSnapshot{Variants: []VariantStats{}}
	index := map[string]int{}
	for _, s := range snaps {
		for _, v := range s.Variants {
			i, ok := index[v.Name]
			if !ok {
				i = len(out.Variants)
				index[v.Name] = i
				out.Variants = append(out.Variants, VariantStats{Name: v.Name, Weight: v.Weight, latency: make([]int64, numBuckets)})
			}
			m := &out.Variants[i]
			m.Errors += v.Errors
			m.Predictions += v.Predictions
			m.PredictionSum += v.PredictionSum
			for b := range m.latency {
				m.latency[b] += at(v.latency, b)
			}
		}
		sh, m := s.Shadow, &out.Shadow
		m.Agree += sh.Agree
		m.Disagree += sh.Disagree
		m.Diffs += sh.Diffs
		m.DiffSum += sh.DiffSum
		m.Dropped += sh.Dropped
		m.Failed += sh.Failed
	}
	out.finish()
	return out
}

// finish derives requests, rates, shares, means, quantiles and SRM from the
// counts.
func (s *StatsSnapshot) finish() {
	s.Requests = 0
	for i := range s.Variants {
		v := &s.Variants[i]
		v.Requests = sum(v.latency)
		v.ErrorRate = ratio(float64(v.Errors), float64(v.Requests))
		v.PredictionMean = ratio(v.PredictionSum, float64(v.Predictions))
		v.P50Ms = quantileMs(v.latency, 0.50)
		v.P99Ms = quantileMs(v.latency, 0.99)
		s.Requests += v.Requests
	}
	observed := make([]float64, len(s.Variants))
	shares := make([]float64, len(s.Variants))
	for i := range s.Variants {
		v := &s.Variants[i]
		v.Share = ratio(float64(v.Requests), float64(s.Requests))
		if v.Weight > 0 {
			observed[i], shares[i] = float64(v.Requests), float64(v.Weight)
		}
	}
	_, s.SRMPValue = stats.GoodnessOfFit(observed, shares)
	s.SRM = s.SRMPValue < SRMAlpha && s.Requests >= SRMMinRequests
	sh := &s.Shadow
	sh.AgreementRate = ratio(float64(sh.Agree), float64(sh.Agree+sh.Disagree))
	sh.MeanAbsDiff = ratio(sh.DiffSum, float64(sh.Diffs))
}

// WindowFigures are the figures of one side of a canary comparison over an
// interval: the canary variant, or the baseline variants together.
type WindowFigures struct {
	Requests int64
	Errors   int64
	P99Ms    float64
	// Predictions is how many numeric predictions PredictionMean averages.
	Predictions    int64
	PredictionMean float64
}

// Figures adds up the given variants' figures; their latency histograms are
// merged before the p99 is read.
func (s StatsSnapshot) Figures(variants ...int) WindowFigures {
	var f WindowFigures
	var predictionSum float64
	latency := make([]int64, numBuckets)
	for _, i := range variants {
		v := s.Variants[i]
		f.Errors += v.Errors
		f.Predictions += v.Predictions
		predictionSum += v.PredictionSum
		for b := range latency {
			latency[b] += at(v.latency, b)
		}
	}
	f.Requests = sum(latency)
	f.P99Ms = quantileMs(latency, 0.99)
	f.PredictionMean = ratio(predictionSum, float64(f.Predictions))
	return f
}

// CanaryFigures returns the figures of the variant named CanaryVariant and of
// all the other variants together, or ok false if there is no such variant.
func (s StatsSnapshot) CanaryFigures() (canary, baseline WindowFigures, ok bool) {
	c := -1
	others := make([]int, 0, len(s.Variants))
	for i, v := range s.Variants {
		if v.Name == CanaryVariant {
			c = i
		} else {
			others = append(others, i)
		}
	}
	if c < 0 {
		return WindowFigures{}, WindowFigures{}, false
	}
	return s.Figures(c), s.Figures(others...), true
}

// bucket returns the histogram bucket of a latency.
func bucket(d time.Duration) int {
	v := uint64(d)
	switch {
	case d < 1<<minShift:
		return 0
	case v >= 1<<maxShift:
		return numBuckets - 1
	}
	octave := bits.Len64(v) - 1
	sub := int(v>>(octave-subBits)) & (subBuckets - 1)
	return (octave-minShift)*subBuckets + sub
}

// bucketMid returns the midpoint of bucket b in nanoseconds.
func bucketMid(b int) float64 {
	shift := b/subBuckets + minShift - subBits
	lo := uint64(subBuckets+b%subBuckets) << shift
	return float64(lo) + float64(uint64(1)<<shift)/2
}

// quantileMs returns the q-quantile of a histogram in milliseconds: the
// midpoint of the bucket holding the ceil(q·n)-th smallest latency.
func quantileMs(h []int64, q float64) float64 {
	n := sum(h)
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for b, c := range h {
		seen += c
		if seen >= rank {
			return bucketMid(b) / 1e6
		}
	}
	return bucketMid(len(h)-1) / 1e6
}

func sum(h []int64) int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

func at(h []int64, i int) int64 {
	if i < len(h) {
		return h[i]
	}
	return 0
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// atomicFloat is a float64 that many goroutines add to.
type atomicFloat struct{ bits atomic.Uint64 }

func (f *atomicFloat) add(v float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (f *atomicFloat) load() float64 { return math.Float64frombits(f.bits.Load()) }
