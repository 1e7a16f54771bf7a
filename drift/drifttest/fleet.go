package drifttest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
)

// TestFleet runs the drift.Fleet conformance suite, one subtest per part of
// the contract. open must return a new, empty fleet each time it is
// called. drift/postgres runs it against a real PostgreSQL, and this
// package against MemFleet.
func TestFleet(t *testing.T, open func(t *testing.T) drift.Fleet) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, f drift.Fleet)
	}{
		{"PublishReplaces", testPublishReplaces},
		{"Unjudged", testUnjudged},
		{"ClaimOnce", testClaimOnce},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ReportsNewestLimited", testReportsLimit},
		{"LastAlert", testLastAlert},
		{"Outbox", testOutbox},
		{"Prune", testPrune},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

// fleetT0 is a window start of the suite, on a whole minute.
var fleetT0 = time.Date(2026, 11, 9, 12, 0, 0, 0, time.UTC)

// Snapshot returns replica's snapshot of the minute-long window of monitor
// starting at start, of model version uuid, with samples observations of a
// numeric series x and a categorical series c: a snapshot with every field
// set.
func Snapshot(replica, monitor string, start time.Time, uuid string, samples int64) drift.WindowSnapshot {
	return drift.WindowSnapshot{
		Replica: replica, Monitor: monitor, Start: start, End: start.Add(time.Minute),
		Model: drift.ModelInfo{Name: "churn", Version: 3, UUID: uuid},
		Taken: start.Add(30*time.Second + 1500*time.Microsecond), Final: true, Samples: samples,
		Series: []drift.SeriesSnapshot{
			{Name: "x", Missing: 1, Numeric: &drift.NumericSnapshot{
				Edges: []float64{0, 0.1, 1}, Counts: []int64{0, samples - 1, 0, 0}, Count: samples - 1, Sum: 0.05 * float64(samples-1), Min: 0.01, Max: 0.09}},
			{Name: "score", Prediction: true, Categorical: &drift.CategoricalSnapshot{
				Categories: map[string]int64{"fr": samples - 2, "de": 1}, Other: 1, Count: samples}},
		},
	}
}

// Report returns a report of the minute-long window of start, drifted or
// not, with every field set but the alert.
func Report(start time.Time, drifted bool) drift.WindowReport {
	return drift.WindowReport{
		Start: start, End: start.Add(time.Minute), Samples: 300, Drifted: drifted, Alerted: drifted,
		Features: []drift.SeriesReport{{Name: "x", Kind: drift.KindNumeric, Count: 299, Missing: 1, Baseline: 1000, Judged: true, Drifted: drifted,
			Metrics: []drift.MetricResult{{Metric: drift.MetricPSI, Value: 0.31, Threshold: 0.2, Drifted: drifted}}}},
		Predictions: []drift.SeriesReport{{Name: "score", Kind: drift.KindCategorical, Count: 300, Baseline: 1000, Other: 1, Judged: true,
			Metrics: []drift.MetricResult{{Metric: drift.MetricChi2P, Value: 0.5, Threshold: 0.01, Statistic: 1.5}}}},
	}
}

// PendingAlertOf returns the alert of report's window of monitor, with
// delivery id id.
func PendingAlertOf(id, monitor string, report drift.WindowReport) *drift.PendingAlert {
	return &drift.PendingAlert{ID: id, Monitor: monitor, Alert: drift.Alert{
		Event: drift.EventDriftDetected, Monitor: monitor, Endpoint: "churn",
		Model:   drift.ModelInfo{Name: "churn", Version: 3, UUID: "u3"},
		Window:  drift.AlertWindow{Start: report.Start, End: report.End},
		Drifted: []drift.DriftedMetric{{Feature: "x", Metric: drift.MetricPSI, Value: 0.31, Threshold: 0.2}},
	}}
}

func publish(t *testing.T, f drift.Fleet, snaps ...drift.WindowSnapshot) {
	t.Helper()
	if err := f.PublishWindows(t.Context(), snaps); err != nil {
		t.Fatalf("PublishWindows: %v", err)
	}
}

func claim(t *testing.T, f drift.Fleet, monitor string, r drift.WindowReport, a *drift.PendingAlert) bool {
	t.Helper()
	ok, err := f.ClaimReport(t.Context(), monitor, r, a)
	if err != nil {
		t.Fatalf("ClaimReport: %v", err)
	}
	return ok
}

func windowsOf(t *testing.T, f drift.Fleet, monitor string, start time.Time) []drift.WindowSnapshot {
	t.Helper()
	got, err := f.Windows(t.Context(), monitor, start)
	if err != nil {
		t.Fatalf("Windows: %v", err)
	}
	return got
}

func unjudged(t *testing.T, f drift.Fleet, endedBy time.Time) []drift.WindowKey {
	t.Helper()
	got, err := f.Unjudged(t.Context(), endedBy)
	if err != nil {
		t.Fatalf("Unjudged: %v", err)
	}
	for i := range got {
		got[i].Start, got[i].End = got[i].Start.UTC(), got[i].End.UTC()
	}
	return got
}

func testPublishReplaces(t *testing.T, f drift.Fleet) {
	if got := windowsOf(t, f, "m", fleetT0); len(got) != 0 {
		t.Fatalf("Windows of an empty fleet = %v", got)
	}
	publish(t, f, Snapshot("r2", "m", fleetT0, "u3", 5), Snapshot("r1", "m", fleetT0, "u3", 6))
	later := Snapshot("r1", "m", fleetT0, "u3", 9)
	other := Snapshot("r1", "m", fleetT0, "u4", 4) // the same replica on another version
	publish(t, f, later, other, Snapshot("r1", "m", fleetT0.Add(time.Minute), "u3", 2), Snapshot("r1", "n", fleetT0, "u3", 3))
	want := []drift.WindowSnapshot{later, other, Snapshot("r2", "m", fleetT0, "u3", 5)}
	if got := windowsOf(t, f, "m", fleetT0); !reflect.DeepEqual(got, want) {
		t.Errorf("Windows =\n%s\nwant\n%s", dump(got), dump(want))
	}
	if err := f.PublishWindows(t.Context(), nil); err != nil {
		t.Errorf("PublishWindows of nothing: %v", err)
	}
}

func testUnjudged(t *testing.T, f drift.Fleet) {
	t1, t2 := fleetT0.Add(time.Minute), fleetT0.Add(2*time.Minute)
	publish(t, f, Snapshot("r1", "m", t1, "u3", 5), Snapshot("r1", "m", fleetT0, "u3", 5), Snapshot("r2", "m", fleetT0, "u3", 5),
		Snapshot("r1", "a", t1, "u3", 5), Snapshot("r1", "m", t2, "u3", 5))
	want := []drift.WindowKey{{Monitor: "m", Start: fleetT0, End: t1}, {Monitor: "a", Start: t1, End: t2}, {Monitor: "m", Start: t1, End: t2}}
	if got := unjudged(t, f, t2); !reflect.DeepEqual(got, want) {
		t.Errorf("Unjudged(%v) = %v, want %v (the window of %v ends later)", t2, got, want, t2)
	}
	if got := unjudged(t, f, t2.Add(-time.Nanosecond)); !reflect.DeepEqual(got, want[:1]) {
		t.Errorf("Unjudged just before %v = %v, want %v", t2, got, want[:1])
	}
	claim(t, f, "m", Report(fleetT0, false), nil)
	if got := unjudged(t, f, t2); !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("Unjudged after a report = %v, want %v", got, want[1:])
	}
	publish(t, f, Snapshot("r3", "m", fleetT0, "u3", 5), Snapshot("r1", "m", fleetT0, "u3", 8))
	if got := unjudged(t, f, t2); !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("Unjudged after late snapshots of a judged window = %v, want %v", got, want[1:])
	}
}

func testClaimOnce(t *testing.T, f drift.Fleet) {
	first := Report(fleetT0, true)
	if !claim(t, f, "m", first, PendingAlertOf("d1", "m", first)) {
		t.Fatal("the first claim of a window lost")
	}
	second := Report(fleetT0, false)
	second.Samples = 1
	if claim(t, f, "m", second, nil) {
		t.Error("a second claim of a window won")
	}
	if claim(t, f, "m", first, PendingAlertOf("d2", "m", first)) {
		t.Error("a second claim of a window with another alert won")
	}
	if !claim(t, f, "n", second, nil) {
		t.Error("the claim of another monitor's window lost")
	}
	reports, err := f.Reports(t.Context(), "m", 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []drift.WindowReport{first}; !reflect.DeepEqual(utcReports(reports), want) {
		t.Errorf("Reports =\n%s\nwant the first claim's\n%s", dump(reports), dump(want))
	}
	pending, err := f.PendingAlerts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != "d1" {
		t.Errorf("pending alerts = %s, want the first claim's only", dump(pending))
	}
}

func testConcurrentClaims(t *testing.T, f drift.Fleet) {
	const n = 8
	var (
		wg  sync.WaitGroup
		won = make(chan bool, n)
	)
	for i := range n {
		wg.Go(func() {
			r := Report(fleetT0, true)
			ok, err := f.ClaimReport(context.Background(), "m", r, PendingAlertOf(fmt.Sprint("d", i), "m", r))
			if err != nil {
				t.Errorf("ClaimReport: %v", err)
			}
			won <- ok
		})
	}
	wg.Wait()
	close(won)
	wins := 0
	for ok := range won {
		if ok {
			wins++
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d concurrent claims of one window won, want 1", wins, n)
	}
}

func testReportsLimit(t *testing.T, f drift.Fleet) {
	var all []drift.WindowReport
	for i := range 5 {
		all = append(all, Report(fleetT0.Add(time.Duration(i)*time.Minute), i%2 == 0))
	}
	for _, i := range []int{3, 0, 4, 1, 2} {
		claim(t, f, "m", all[i], nil)
	}
	for _, tt := range []struct {
		limit int
		want  []drift.WindowReport
	}{{3, all[2:]}, {5, all}, {10, all}} {
		got, err := f.Reports(t.Context(), "m", tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(utcReports(got), tt.want) {
			t.Errorf("Reports(limit %d) = %d reports, want the last %d oldest first:\n%s", tt.limit, len(got), len(tt.want), dump(got))
		}
	}
	if got, err := f.Reports(t.Context(), "other", 10); err != nil || len(got) != 0 {
		t.Errorf("Reports of a monitor without any = %v, %v", got, err)
	}
}

func testLastAlert(t *testing.T, f drift.Fleet) {
	last := func() time.Time {
		t.Helper()
		at, err := f.LastAlert(t.Context(), "m")
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	if at := last(); !at.IsZero() {
		t.Errorf("LastAlert before any = %v", at)
	}
	r0, r1, r2 := Report(fleetT0, true), Report(fleetT0.Add(time.Minute), true), Report(fleetT0.Add(2*time.Minute), false)
	claim(t, f, "m", r1, PendingAlertOf("d1", "m", r1))
	claim(t, f, "m", r0, PendingAlertOf("d0", "m", r0))
	claim(t, f, "m", r2, nil)
	r9 := Report(fleetT0.Add(9*time.Minute), true)
	claim(t, f, "n", r9, PendingAlertOf("d9", "n", r9))
	if at := last(); !at.Equal(r1.End) {
		t.Errorf("LastAlert = %v, want the end of the last window that alerted, %v", at, r1.End)
	}
}

func testOutbox(t *testing.T, f drift.Fleet) {
	pending := func() []drift.PendingAlert {
		t.Helper()
		got, err := f.PendingAlerts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			w := &got[i].Alert.Window
			w.Start, w.End = w.Start.UTC(), w.End.UTC()
		}
		return got
	}
	if got := pending(); len(got) != 0 {
		t.Fatalf("pending alerts of an empty fleet: %v", got)
	}
	r0, r1 := Report(fleetT0, true), Report(fleetT0.Add(time.Minute), true)
	a0, a1 := PendingAlertOf("d0", "m", r0), PendingAlertOf("d1", "n", r1)
	claim(t, f, "n", r1, a1)
	claim(t, f, "m", r0, a0)
	claim(t, f, "m", Report(fleetT0.Add(2*time.Minute), false), nil)
	if got, want := pending(), []drift.PendingAlert{*a0, *a1}; !reflect.DeepEqual(got, want) {
		t.Errorf("pending alerts =\n%s\nwant, oldest window first,\n%s", dump(got), dump(want))
	}
	for _, id := range []string{"d0", "d0", "unknown"} {
		if err := f.AlertDelivered(t.Context(), id); err != nil {
			t.Errorf("AlertDelivered(%s): %v", id, err)
		}
	}
	if got, want := pending(), []drift.PendingAlert{*a1}; !reflect.DeepEqual(got, want) {
		t.Errorf("pending alerts after one was delivered = %s, want %s", dump(got), dump(want))
	}
}

func testPrune(t *testing.T, f drift.Fleet) {
	t1, t2 := fleetT0.Add(time.Minute), fleetT0.Add(2*time.Minute)
	publish(t, f, Snapshot("r1", "m", fleetT0, "u3", 5), Snapshot("r1", "m", t1, "u3", 5))
	claim(t, f, "m", Report(fleetT0, false), nil)
	claim(t, f, "m", Report(t1, false), nil)
	if err := f.Prune(t.Context(), t2, t1.Add(time.Second)); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if got := windowsOf(t, f, "m", fleetT0); len(got) != 0 {
		t.Errorf("a window that ended before the cut is kept: %v", got)
	}
	if got := windowsOf(t, f, "m", t1); len(got) != 1 {
		t.Errorf("the window that ended at the cut is gone")
	}
	got, err := f.Reports(t.Context(), "m", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Start.Equal(t1) {
		t.Errorf("reports after pruning = %s, want the window of %v only", dump(got), t1)
	}
}

// utcReports puts reports' times in UTC, as the suite writes them.
func utcReports(rs []drift.WindowReport) []drift.WindowReport {
	for i := range rs {
		rs[i].Start, rs[i].End = rs[i].Start.UTC(), rs[i].End.UTC()
	}
	return rs
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// MemFleet is a drift.Fleet in memory, for tests of a fleet of services in
// one process. It keeps copies (JSON round trips) of what it is given, as
// a database would.
type MemFleet struct {
	mu      sync.Mutex
	windows map[memWindowKey]drift.WindowSnapshot
	reports map[memReportKey]memReport
}

type memWindowKey struct {
	monitor, replica, uuid string
	start                  int64
}

type memReportKey struct {
	monitor string
	start   int64
}

type memReport struct {
	report    drift.WindowReport
	alert     *drift.PendingAlert
	delivered bool
}

var _ drift.Fleet = (*MemFleet)(nil)

// NewMemFleet returns an empty MemFleet.
func NewMemFleet() *MemFleet {
	return &MemFleet{windows: map[memWindowKey]drift.WindowSnapshot{}, reports: map[memReportKey]memReport{}}
}

func copyOf[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// PublishWindows implements drift.Fleet.
func (f *MemFleet) PublishWindows(_ context.Context, snaps []drift.WindowSnapshot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range snaps {
		f.windows[memWindowKey{s.Monitor, s.Replica, s.Model.UUID, s.Start.UnixNano()}] = copyOf(s)
	}
	return nil
}

// Windows implements drift.Fleet.
func (f *MemFleet) Windows(_ context.Context, monitor string, start time.Time) ([]drift.WindowSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []drift.WindowSnapshot{}
	for k, s := range f.windows {
		if k.monitor == monitor && k.start == start.UnixNano() {
			out = append(out, copyOf(s))
		}
	}
	slices.SortFunc(out, func(a, b drift.WindowSnapshot) int {
		if c := strings.Compare(a.Replica, b.Replica); c != 0 {
			return c
		}
		return strings.Compare(a.Model.UUID, b.Model.UUID)
	})
	return out, nil
}

// Unjudged implements drift.Fleet.
func (f *MemFleet) Unjudged(_ context.Context, endedBy time.Time) ([]drift.WindowKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ends := map[memReportKey]drift.WindowKey{}
	for k, s := range f.windows {
		rk := memReportKey{k.monitor, k.start}
		if _, judged := f.reports[rk]; judged {
			continue
		}
		if w, ok := ends[rk]; !ok || s.End.After(w.End) {
			ends[rk] = drift.WindowKey{Monitor: k.monitor, Start: s.Start, End: s.End}
		}
	}
	out := []drift.WindowKey{}
	for _, w := range ends {
		if !w.End.After(endedBy) {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b drift.WindowKey) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Monitor, b.Monitor)
	})
	return out, nil
}

// ClaimReport implements drift.Fleet.
func (f *MemFleet) ClaimReport(_ context.Context, monitor string, report drift.WindowReport, alert *drift.PendingAlert) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := memReportKey{monitor, report.Start.UnixNano()}
	if _, ok := f.reports[k]; ok {
		return false, nil
	}
	r := memReport{report: copyOf(report)}
	if alert != nil {
		r.alert = copyOf(alert)
	}
	f.reports[k] = r
	return true, nil
}

// sorted returns the reports of monitor (every monitor's when monitor is
// empty) oldest window first. The caller holds f.mu.
func (f *MemFleet) sorted(monitor string) []memReport {
	var out []memReport
	for k, r := range f.reports {
		if monitor == "" || k.monitor == monitor {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b memReport) int { return a.report.Start.Compare(b.report.Start) })
	return out
}

// Reports implements drift.Fleet.
func (f *MemFleet) Reports(_ context.Context, monitor string, limit int) ([]drift.WindowReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.sorted(monitor)
	rs = rs[max(len(rs)-limit, 0):]
	out := make([]drift.WindowReport, 0, len(rs))
	for _, r := range rs {
		out = append(out, copyOf(r.report))
	}
	return out, nil
}

// LastAlert implements drift.Fleet.
func (f *MemFleet) LastAlert(_ context.Context, monitor string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var last time.Time
	for _, r := range f.sorted(monitor) {
		if r.alert != nil && r.report.End.After(last) {
			last = r.report.End
		}
	}
	return last, nil
}

// PendingAlerts implements drift.Fleet.
func (f *MemFleet) PendingAlerts(context.Context) ([]drift.PendingAlert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []drift.PendingAlert{}
	for _, r := range f.sorted("") {
		if r.alert != nil && !r.delivered {
			out = append(out, *copyOf(r.alert))
		}
	}
	return out, nil
}

// AlertDelivered implements drift.Fleet.
func (f *MemFleet) AlertDelivered(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, r := range f.reports {
		if r.alert != nil && r.alert.ID == id {
			r.delivered = true
			f.reports[k] = r
		}
	}
	return nil
}

// Prune implements drift.Fleet.
func (f *MemFleet) Prune(_ context.Context, windowsBefore, reportsBefore time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, s := range f.windows {
		if s.End.Before(windowsBefore) {
			delete(f.windows, k)
		}
	}
	for k, r := range f.reports {
		if r.report.End.Before(reportsBefore) {
			delete(f.reports, k)
		}
	}
	return nil
}
