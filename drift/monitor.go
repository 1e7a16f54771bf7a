package drift

import (
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// HistoryLen is how many window reports a monitor keeps: a day of 15-minute
// windows.
const HistoryLen = 96

// Metric names, as in Thresholds' JSON and in reports and alerts.
const (
	MetricPSI   = "psi"
	MetricKSP   = "ks_p"
	MetricJS    = "js"
	MetricChi2P = "chi2_p"
)

// Series kinds in reports.
const (
	KindNumeric     = "numeric"
	KindCategorical = "categorical"
)

// ModelInfo identifies the model version a monitor's baseline belongs to.
type ModelInfo struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	UUID    string `json:"uuid"`
}

// Monitor statuses, as reports and lists show them.
const (
	// StatusRunning: the monitor watches traffic.
	StatusRunning = "running"
	// StatusStarting: the monitor was loaded from the store and waits for
	// the models to load before it looks for its baseline.
	StatusStarting = "starting"
	// StatusError: the monitor's model or baseline could not be found; the
	// service tries again (see Service.Tick) and the error says why.
	StatusError = "error"
)

// Monitor is a drift monitor. A running one counts the values of the watched
// features and predictions of the current window in histograms over the
// baseline's bins and categories, and on Evaluate closes the window and
// judges it against the baseline. Observe, Evaluate and Report are safe for
// concurrent use. A window's histograms are kept in shards, one per CPU up
// to 32, each observation going to one drawn at random, so that concurrent
// requests seldom touch the same counters; Evaluate adds them up.
//
// A monitor that is not running (its status is StatusStarting or
// StatusError) has its spec and the reason only: it ignores observations,
// never closes a window, and its report has no model and no current window.
type Monitor struct {
	spec     MonitorSpec
	baseline *Baseline
	model    ModelInfo
	series   []series // the features, then the predictions
	nFeat    int

	// err is why the monitor is not running, nil when it is; it matches
	// errStarting before the first attempt to start it. retryAt is when the
	// service next tries, after waiting backoff.
	err     error
	retryAt time.Time
	backoff time.Duration

	cur    atomic.Pointer[window]
	shards int
	// aligned opens windows on the clock's multiples of Window (fleet
	// mode), so that every replica's windows start at the same times.
	aligned bool
	// fleet is what the fleet knows of the monitor (fleet mode only, nil
	// until the service first reads it): its reports and the other
	// replicas' counts of the current window.
	fleet atomic.Pointer[fleetView]

	mu        sync.Mutex // serializes Evaluate; guards history and lastAlert
	history   []WindowReport
	lastAlert time.Time
}

// series is one watched feature or prediction and its baseline, compiled.
type series struct {
	name       string
	prediction bool
	edges      []float64 // numeric only
	cats       []string  // categorical only: the baseline's categories, sorted
	// base holds the baseline's counts as the window's are laid out: the
	// bins, or the categories in the order of cats then other; labels
	// names them (SeriesHistogram's Labels).
	base   []int64
	labels []string
}

func (w *window) samples() int64 {
	var n int64
	for k := range w.shards {
		n += w.shards[k].samples.Load()
	}
	return n
}

func (s *series) numeric() bool { return s.edges != nil }

// binLabels names the bins of a numeric series of the given edges, or,
// without edges, of a categorical one of the given categories.
func binLabels(edges []float64, cats []string) []string {
	if edges == nil {
		return append(slices.Clone(cats), "(other)")
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
	out := make([]string, 0, len(edges)+1)
	out = append(out, "< "+num(edges[0]))
	for i := 1; i < len(edges); i++ {
		out = append(out, num(edges[i-1])+" – "+num(edges[i]))
	}
	return append(out, "≥ "+num(edges[len(edges)-1]))
}

func (s *series) kind() string {
	if s.numeric() {
		return KindNumeric
	}
	return KindCategorical
}

// maxShards bounds the shards of a window.
const maxShards = 32

// window is the histograms of one window, in shards: each observation
// goes to a shard drawn at random, so that request goroutines on different
// cores seldom write to the same counters. The histograms are mergeable;
// Evaluate adds the shards up.
type window struct {
	start  time.Time
	shards []shard
}

type shard struct {
	// mu is held for reading while an observation is counted; Evaluate
	// takes it to close the shard, after which no observation enters it.
	mu          sync.RWMutex
	closed      bool
	samples     atomic.Int64
	numeric     []*Numeric     // per series; nil for a categorical one
	categorical []*Categorical // per series; nil for a numeric one
	missing     []atomic.Int64 // per series
	_           [64]byte       // keeps neighbouring shards' locks off one cache line
}

// NewMonitor starts a monitor of spec against the baseline b of model, its
// first window opening at now. Every feature the spec names must be in the
// baseline (no features means all of them), and with Predictions the
// baseline must have predictions. Errors match ErrInvalid.
func NewMonitor(spec MonitorSpec, b *Baseline, model ModelInfo, now time.Time) (*Monitor, error) {
	if err := spec.Check(nil); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, invalid("baseline: required")
	}
	if err := b.Check(); err != nil {
		return nil, err
	}
	spec.Features = slices.Clone(spec.Features)
	m := &Monitor{spec: spec, baseline: b, model: model}
	names := spec.Features
	if len(names) == 0 {
		names = slices.Sorted(maps.Keys(b.Features))
	}
	for i, name := range names {
		f, ok := b.Features[name]
		if !ok {
			return nil, invalid("features[%d]: %q is not in the baseline", i, name)
		}
		m.series = append(m.series, compile(name, false, f))
	}
	m.nFeat = len(m.series)
	if spec.Predictions {
		if len(b.Predictions) == 0 {
			return nil, invalid("predictions: the baseline has no predictions to compare with")
		}
		for _, name := range slices.Sorted(maps.Keys(b.Predictions)) {
			m.series = append(m.series, compile(name, true, b.Predictions[name]))
		}
	}
	if len(m.series) == 0 {
		return nil, invalid("features: the baseline has no features; watch its predictions")
	}
	m.shards = min(runtime.GOMAXPROCS(0), maxShards)
	m.cur.Store(m.newWindow(now, m.shards))
	return m, nil
}

// newAlignedMonitor is NewMonitor in fleet mode: its windows open on the
// multiples of Window (see AlignWindow), the first at now's.
func newAlignedMonitor(spec MonitorSpec, b *Baseline, model ModelInfo, now time.Time) (*Monitor, error) {
	m, err := NewMonitor(spec, b, model, AlignWindow(now, time.Duration(spec.Window)))
	if err != nil {
		return nil, err
	}
	m.aligned = true
	return m, nil
}

// AlignWindow returns the start of the window of length d that holds t,
// in UTC: windows cover [epoch + i·d, epoch + (i+1)·d), counted from the
// zero time, so that replicas whose clocks agree agree on every window.
func AlignWindow(t time.Time, d time.Duration) time.Time {
	return t.UTC().Truncate(d)
}

// windowStart is the start of the window that opens at now.
func (m *Monitor) windowStart(now time.Time) time.Time {
	if m.aligned {
		return AlignWindow(now, time.Duration(m.spec.Window))
	}
	return now
}

// errStarting is why a monitor loaded from the store is not running before
// the service first tries to start it.
var errStarting = errors.New("waiting for the models to load")

// stopped returns a monitor of spec that is not running, for err, and that
// the service tries to start again at retryAt.
func stopped(spec MonitorSpec, err error, retryAt time.Time, backoff time.Duration) *Monitor {
	spec.Features = slices.Clone(spec.Features)
	return &Monitor{spec: spec, err: err, retryAt: retryAt, backoff: backoff}
}

// Status returns StatusRunning, StatusStarting or StatusError.
func (m *Monitor) Status() string {
	switch {
	case m.err == nil:
		return StatusRunning
	case errors.Is(m.err, errStarting):
		return StatusStarting
	}
	return StatusError
}

// Err returns why the monitor is not running, or nil when it is.
func (m *Monitor) Err() error { return m.err }

func compile(name string, prediction bool, f FeatureBaseline) series {
	s := series{name: name, prediction: prediction}
	if f.IsNumeric() {
		s.edges = slices.Clone(f.Edges)
		s.base = slices.Clone(f.Counts)
	} else {
		s.cats = slices.Sorted(maps.Keys(f.Categories))
		s.base = make([]int64, 0, len(s.cats)+1)
		for _, c := range s.cats {
			s.base = append(s.base, f.Categories[c])
		}
		s.base = append(s.base, f.Other)
	}
	s.labels = binLabels(s.edges, s.cats)
	return s
}

func (m *Monitor) newWindow(start time.Time, shards int) *window {
	w := &window{start: start, shards: make([]shard, shards)}
	for k := range w.shards {
		sh := &w.shards[k]
		sh.numeric = make([]*Numeric, len(m.series))
		sh.categorical = make([]*Categorical, len(m.series))
		sh.missing = make([]atomic.Int64, len(m.series))
		for i := range m.series {
			s := &m.series[i]
			if s.numeric() {
				sh.numeric[i] = newNumeric(s.edges)
			} else {
				// Room for the baseline's categories only: any other value
				// counts as other, and the map of counters never changes.
				sh.categorical[i] = NewCategorical(len(s.cats), s.cats...)
			}
		}
	}
	return w
}

// Spec returns the monitor's spec, webhook secret included: the caller
// hands Spec().Webhook to the Notifier.
func (m *Monitor) Spec() MonitorSpec {
	s := m.spec
	s.Features = slices.Clone(s.Features)
	return s
}

// Observe counts one prediction's feature values and prediction outputs in
// the current window. A numeric series takes any Go number or json.Number;
// a categorical one a string, a bool ("true", "false") or a number (its
// shortest decimal form, as strconv.FormatFloat(x, 'g', -1, 64) writes it).
// A series whose value is absent, nil, NaN, ±Inf or of another type counts
// as missing. Values of series the monitor does not watch are ignored.
// Observe takes no exclusive lock and, but for numbers given to a
// categorical series, allocates nothing.
func (m *Monitor) Observe(features, predictions map[string]any) {
	for {
		w := m.cur.Load()
		if w == nil { // not running
			return
		}
		sh := &w.shards[rand.Uint32()%uint32(len(w.shards))]
		sh.mu.RLock()
		if sh.closed {
			// Evaluate closed the window since it was loaded: the next
			// one is in place.
			sh.mu.RUnlock()
			continue
		}
		sh.samples.Add(1)
		for i := range m.series {
			values := features
			if i >= m.nFeat {
				values = predictions
			}
			m.observe(sh, i, values)
		}
		sh.mu.RUnlock()
		return
	}
}

func (m *Monitor) observe(w *shard, i int, values map[string]any) {
	s := &m.series[i]
	v, ok := values[s.name]
	if !ok || v == nil {
		w.missing[i].Add(1)
		return
	}
	if s.numeric() {
		x, ok := numberOf(v)
		if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
			w.missing[i].Add(1)
			return
		}
		w.numeric[i].Add(x)
		return
	}
	c, ok := categoryOf(v)
	if !ok {
		x, isNum := numberOf(v)
		if !isNum || math.IsNaN(x) || math.IsInf(x, 0) {
			w.missing[i].Add(1)
			return
		}
		c = strconv.FormatFloat(x, 'g', -1, 64)
	}
	w.categorical[i].Add(c)
}

// WindowReport is the judgement of one closed window. Treat it as read-only:
// the monitor's history shares it.
type WindowReport struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Samples is the number of Observe calls in the window.
	Samples int64 `json:"samples"`
	// Drifted is true when any series drifted.
	Drifted bool `json:"drifted"`
	// Alerted is true when the drift raised an alert, false when there was
	// none or the cooldown suppressed it.
	Alerted     bool           `json:"alerted"`
	Features    []SeriesReport `json:"features"`
	Predictions []SeriesReport `json:"predictions,omitempty"`
	// Alert is the alert raised, to hand to a Notifier; nil when none. Only
	// the report Evaluate returns carries it.
	Alert *Alert `json:"-"`
}

// SeriesReport is how one feature or prediction fared in a window.
type SeriesReport struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Count is the number of values counted in the window, Baseline the
	// number in the baseline; Missing is the number of observations without
	// a usable value.
	Count    int64 `json:"count"`
	Missing  int64 `json:"missing"`
	Baseline int64 `json:"baseline"`
	// Other (categorical) is the number of values not among the baseline's
	// categories, new values included.
	Other int64 `json:"other,omitempty"`
	// Judged is true when Count reached the spec's min_samples (and 1): only
	// then may the series drift.
	Judged  bool           `json:"judged"`
	Drifted bool           `json:"drifted"`
	Metrics []MetricResult `json:"metrics"`
	// Histogram lays the window's counts beside the baseline's, bin by bin.
	Histogram SeriesHistogram `json:"histogram"`
}

// SeriesHistogram is a series' window beside its baseline, for drawing: bin
// i is named Labels[i] and holds Baseline[i] values of the baseline and
// Live[i] of the window. A numeric series' bins are those of its Edges
// (below the first edge, between two edges, from the last edge up); a
// categorical one's are the baseline's categories, then "(other)".
type SeriesHistogram struct {
	Labels   []string  `json:"labels"`
	Edges    []float64 `json:"edges,omitempty"`
	Baseline []int64   `json:"baseline"`
	Live     []int64   `json:"live"`
}

// MetricResult is one rule applied to one series: the metric's value, its
// threshold, and whether the rule was broken. For ks_p the Statistic is the
// KS distance D; for chi2_p the chi-square statistic.
type MetricResult struct {
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Statistic float64 `json:"statistic,omitempty"`
	Drifted   bool    `json:"drifted"`
}

// Evaluate closes the current window and judges it when its time is up (now
// at least Window after it opened) or force is set; the next window opens
// at now. It returns the report and true, or nil and false when the window
// is still open. The report carries an Alert when the window drifted and the
// monitor's last alert is at least Cooldown before now: the monitor, not the
// notifier, applies the cooldown, and counts an alert as raised once it is
// returned here. The report joins the history, which keeps the last
// HistoryLen. A monitor that is not running returns nil and false.
func (m *Monitor) Evaluate(now time.Time, force bool) (*WindowReport, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.cur.Load()
	if w == nil { // not running
		return nil, false
	}
	if !force && now.Before(w.start.Add(time.Duration(m.spec.Window))) {
		return nil, false
	}
	m.closeWindow(w, now)
	rep := m.report(w, now)
	if rep.Drifted && (m.lastAlert.IsZero() || !now.Before(m.lastAlert.Add(time.Duration(m.spec.Cooldown)))) {
		rep.Alerted = true
		rep.Alert = m.alert(rep)
		m.lastAlert = now
	}
	kept := *rep
	kept.Alert = nil
	m.history = append(m.history, kept)
	if len(m.history) > HistoryLen {
		m.history = slices.Delete(m.history, 0, len(m.history)-HistoryLen)
	}
	return rep, true
}

// closeWindow opens the next window at now and closes w, the current one:
// once it returns, no Observe holds w, and its counts are final. The caller
// holds m.mu.
func (m *Monitor) closeWindow(w *window, now time.Time) {
	m.cur.Store(m.newWindow(m.windowStart(now), m.shards))
	for k := range w.shards {
		sh := &w.shards[k]
		sh.mu.Lock()
		sh.closed = true
		sh.mu.Unlock()
	}
}

// report judges window w, which ended at end, without alerting.
func (m *Monitor) report(w *window, end time.Time) *WindowReport {
	rep := &WindowReport{Start: w.start, End: end, Samples: w.samples()}
	if rep.End.Before(rep.Start) {
		rep.End = rep.Start
	}
	for i := range m.series {
		sr := m.judge(w, i)
		rep.Drifted = rep.Drifted || sr.Drifted
		if m.series[i].prediction {
			rep.Predictions = append(rep.Predictions, sr)
		} else {
			rep.Features = append(rep.Features, sr)
		}
	}
	return rep
}

// judge compares series i's window histogram with its baseline.
func (m *Monitor) judge(w *window, i int) SeriesReport {
	s := &m.series[i]
	sr := SeriesReport{Name: s.name, Kind: s.kind(), Metrics: []MetricResult{}}
	counts := make([]int64, len(s.base))
	for k := range w.shards {
		sh := &w.shards[k]
		sr.Missing += sh.missing[i].Load()
		if s.numeric() {
			for j, c := range sh.numeric[i].Snapshot().Counts {
				counts[j] += c
			}
			continue
		}
		snap := sh.categorical[i].Snapshot()
		for j, c := range s.cats {
			counts[j] += snap.Categories[c]
		}
		counts[len(s.cats)] += snap.Other
		sr.Other += snap.Other
	}
	for j := range counts {
		sr.Count += counts[j]
		sr.Baseline += s.base[j]
	}
	sr.Histogram = SeriesHistogram{Labels: s.labels, Edges: s.edges, Baseline: s.base, Live: counts}
	if sr.Count == 0 {
		return sr
	}
	sr.Judged = sr.Count >= int64(max(m.spec.MinSamples, 1))
	t := m.spec.Thresholds
	add := func(metric string, value, threshold, statistic float64, drifted bool) {
		drifted = drifted && sr.Judged
		sr.Metrics = append(sr.Metrics, MetricResult{Metric: metric, Value: value, Threshold: threshold, Statistic: statistic, Drifted: drifted})
		sr.Drifted = sr.Drifted || drifted
	}
	if t.PSI > 0 {
		v := PSI(s.base, counts)
		add(MetricPSI, v, t.PSI, 0, v > t.PSI)
	}
	if t.KSP > 0 && s.numeric() {
		d, p := KS(s.base, counts)
		add(MetricKSP, p, t.KSP, d, p < t.KSP)
	}
	if t.JS > 0 {
		v := JensenShannon(s.base, counts)
		add(MetricJS, v, t.JS, 0, v > t.JS)
	}
	if t.Chi2P > 0 && !s.numeric() {
		stat, p, _ := ChiSquare(s.base, counts)
		add(MetricChi2P, p, t.Chi2P, stat, p < t.Chi2P)
	}
	return sr
}

// MonitorReport is a monitor's state: its spec (webhook secret redacted),
// its status and, when it is not running, why; the model its baseline
// belongs to, the window in progress, the reports of past windows (oldest
// first), and when it last alerted. A monitor that is not running has no
// model and no current window.
type MonitorReport struct {
	Spec      MonitorSpec    `json:"spec"`
	Status    string         `json:"status"`
	Error     string         `json:"error,omitempty"`
	Model     ModelInfo      `json:"model,omitzero"`
	Current   CurrentWindow  `json:"current,omitzero"`
	History   []WindowReport `json:"history"`
	LastAlert time.Time      `json:"last_alert,omitzero"`
}

// Redacted returns the report with its webhook secret hidden, for showing.
func (r MonitorReport) Redacted() MonitorReport {
	r.Spec = r.Spec.Redacted()
	return r
}

// CurrentWindow is the window in progress: when it opened, how many
// observations it has, and how many values each feature and prediction has.
// In fleet mode the counts are the fleet's (this replica's live ones and the
// others' as last published, at most a second or two old), and Replicas
// has each replica's observations.
type CurrentWindow struct {
	Start       time.Time        `json:"start"`
	Samples     int64            `json:"samples"`
	Features    map[string]int64 `json:"features"`
	Predictions map[string]int64 `json:"predictions,omitempty"`
	Replicas    map[string]int64 `json:"replicas,omitempty"`
}

// Report returns the monitor's state. In fleet mode (see WithFleet) the
// history and last alert are the fleet's, as the leader judged its windows
// (the last alert is the end of the last window that alerted), and the
// current window counts the whole fleet's observations.
func (m *Monitor) Report() MonitorReport {
	m.mu.Lock()
	r := MonitorReport{Spec: m.spec.Redacted(), Status: m.Status(), Model: m.model, History: slices.Clone(m.history), LastAlert: m.lastAlert}
	m.mu.Unlock()
	view := m.fleet.Load()
	if view != nil {
		r.History, r.LastAlert = slices.Clone(view.history), view.lastAlert
	}
	if r.History == nil {
		r.History = []WindowReport{}
	}
	if m.err != nil {
		if r.Status == StatusError {
			r.Error = m.err.Error()
		}
		return r
	}
	// w may close meanwhile; its counts stay readable.
	w := m.cur.Load()
	r.Current = CurrentWindow{Start: w.start, Samples: w.samples(), Features: make(map[string]int64, m.nFeat)}
	for i := range m.series {
		s := &m.series[i]
		var n int64
		for k := range w.shards {
			if s.numeric() {
				n += w.shards[k].numeric[i].Count()
			} else {
				n += w.shards[k].categorical[i].Count()
			}
		}
		if !s.prediction {
			r.Current.Features[s.name] = n
			continue
		}
		if r.Current.Predictions == nil {
			r.Current.Predictions = make(map[string]int64, len(m.series)-m.nFeat)
		}
		r.Current.Predictions[s.name] = n
	}
	if view != nil {
		view.addOthers(&r.Current, m.model)
	}
	return r
}

func (m *Monitor) alert(rep *WindowReport) *Alert {
	a := &Alert{
		Event:    EventDriftDetected,
		Monitor:  m.spec.Name,
		Endpoint: m.spec.Endpoint,
		Model:    m.model,
		Window:   AlertWindow{Start: rep.Start, End: rep.End},
		Drifted:  []DriftedMetric{},
	}
	for _, group := range []struct {
		prediction bool
		series     []SeriesReport
	}{{false, rep.Features}, {true, rep.Predictions}} {
		for _, sr := range group.series {
			for _, mr := range sr.Metrics {
				if mr.Drifted {
					a.Drifted = append(a.Drifted, DriftedMetric{
						Feature: sr.Name, Prediction: group.prediction,
						Metric: mr.Metric, Value: mr.Value, Threshold: mr.Threshold,
					})
				}
			}
		}
	}
	return a
}
