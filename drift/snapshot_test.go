package drift

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestAlignWindow(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		t    time.Time
		d    time.Duration
		want time.Time
	}{
		{fixedNow, 15 * time.Minute, fixedNow},
		{fixedNow.Add(14*time.Minute + 59*time.Second), 15 * time.Minute, fixedNow},
		{fixedNow.Add(15 * time.Minute), 15 * time.Minute, fixedNow.Add(15 * time.Minute)},
		{fixedNow.Add(90 * time.Second).In(paris), time.Minute, fixedNow.Add(time.Minute)},
		{fixedNow.Add(5 * time.Hour), 24 * time.Hour, fixedNow.Add(-12 * time.Hour)},
		{fixedNow.Add(1500 * time.Millisecond), time.Second, fixedNow.Add(time.Second)},
	}
	for _, tt := range tests {
		got := AlignWindow(tt.t, tt.d)
		if !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("AlignWindow(%v, %v) = %v, want %v in UTC", tt.t, tt.d, got, tt.want)
		}
	}
}

// Three aligned monitors, each fed a third of the requests and their
// snapshots stored as JSON, judge the window as one monitor fed every
// request does: JudgeWindow of the merge is Evaluate of the union.
func TestMonitor_JudgeWindowIsEvaluateOfTheUnion(t *testing.T) {
	spec := testSpec()
	b := testBaseline(t, rand.New(rand.NewPCG(1, 1)), 20000)
	whole, err := NewMonitor(spec, b, testModel, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	var parts []*Monitor
	for range 3 {
		m, err := newAlignedMonitor(spec, b, testModel, fixedNow.Add(3*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Report().Current.Start; !got.Equal(fixedNow) {
			t.Fatalf("aligned window opens at %v, want %v", got, fixedNow)
		}
		parts = append(parts, m)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range 1500 {
		features, predictions := population(rng, i%2 == 0)
		if i%7 == 0 {
			delete(features, "x_normal")
			features["country"] = "jp" // not in the baseline
		}
		whole.Observe(features, predictions)
		parts[i%3].Observe(features, predictions)
	}
	end := fixedNow.Add(15 * time.Minute)
	if _, ok := parts[0].roll(end.Add(-time.Nanosecond)); ok {
		t.Fatal("a window rolled before its end")
	}
	var snaps []WindowSnapshot
	for i, m := range parts {
		live, _ := m.Snapshot()
		final, ok := m.roll(end.Add(time.Second))
		if !ok || !final.Final || !final.End.Equal(end) {
			t.Fatalf("part %d: roll = %v, final %v, end %v", i, ok, final.Final, final.End)
		}
		live.Final = true
		if !reflect.DeepEqual(live, final) {
			t.Errorf("part %d: the live snapshot of a window nobody observes differs from its final one", i)
		}
		if got := m.Report().Current.Start; !got.Equal(end) {
			t.Errorf("part %d: next window opens at %v, want %v", i, got, end)
		}
		raw, err := json.Marshal(final)
		if err != nil {
			t.Fatal(err)
		}
		var stored WindowSnapshot
		if err := json.Unmarshal(raw, &stored); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, stored)
	}
	want, _ := whole.Evaluate(end, false)
	want.Alerted, want.Alert = false, nil
	got, err := parts[0].JudgeWindow(fixedNow, end, snaps)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		t.Errorf("JudgeWindow of the merge =\n%s\nwant Evaluate of the union\n%s", gotJSON, wantJSON)
	}
	if !want.Drifted {
		t.Error("the window did not drift: the test shows too little")
	}
	if h := parts[0].Report().History; len(h) != 0 {
		t.Errorf("JudgeWindow changed the history: %v", h)
	}
}

func TestMonitor_JudgeWindowRefuses(t *testing.T) {
	m, err := newAlignedMonitor(testSpec(), testBaseline(t, rand.New(rand.NewPCG(1, 1)), 2000), testModel, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(population(rand.New(rand.NewPCG(4, 4)), false))
	valid, _ := m.Snapshot()
	valid.Replica = "r2"
	numeric := func(s *WindowSnapshot) *SeriesSnapshot {
		for i := range s.Series {
			if s.Series[i].Numeric != nil {
				return &s.Series[i]
			}
		}
		panic("no numeric series")
	}
	categorical := func(s *WindowSnapshot) *SeriesSnapshot {
		for i := range s.Series {
			if s.Series[i].Categorical != nil {
				return &s.Series[i]
			}
		}
		panic("no categorical series")
	}
	tests := []struct {
		name   string
		change func(s *WindowSnapshot)
		want   string
	}{
		{"other monitor", func(s *WindowSnapshot) { s.Monitor = "other" }, `of monitor "other"`},
		{"other window", func(s *WindowSnapshot) { s.Start = s.Start.Add(time.Minute) }, "of the window of"},
		{"other model", func(s *WindowSnapshot) { s.Model.UUID = "v2" }, `of model version "v2"`},
		{"negative samples", func(s *WindowSnapshot) { s.Samples = -1 }, "samples: must not be negative"},
		{"unknown series", func(s *WindowSnapshot) { s.Series[0].Name = "nope" }, `series "nope" is not watched`},
		{"feature as prediction", func(s *WindowSnapshot) { s.Series[0].Prediction = !s.Series[0].Prediction }, "is not watched"},
		{"negative missing", func(s *WindowSnapshot) { s.Series[0].Missing = -2 }, "missing: must not be negative"},
		{"other edges", func(s *WindowSnapshot) { numeric(s).Numeric.Edges[0]-- }, "not over the baseline's bins"},
		{"too few counts", func(s *WindowSnapshot) { n := numeric(s).Numeric; n.Counts = n.Counts[1:] }, "not over the baseline's bins"},
		{"negative count", func(s *WindowSnapshot) { numeric(s).Numeric.Counts[1] = -1 }, "counts must not be negative"},
		{"categorical for numeric", func(s *WindowSnapshot) { numeric(s).Categorical = &CategoricalSnapshot{} }, "want a numeric histogram"},
		{"numeric for categorical", func(s *WindowSnapshot) { c := categorical(s); c.Categorical, c.Numeric = nil, &NumericSnapshot{} }, "want a categorical histogram"},
		{"negative other", func(s *WindowSnapshot) { categorical(s).Categorical.Other = -1 }, "other must not be negative"},
		{"negative category", func(s *WindowSnapshot) { categorical(s).Categorical.Categories["fr"] = -1 }, `categories["fr"] must not be negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, _ := json.Marshal(valid)
			var bad WindowSnapshot
			if err := json.Unmarshal(raw, &bad); err != nil {
				t.Fatal(err)
			}
			tt.change(&bad)
			_, err := m.JudgeWindow(fixedNow, fixedNow.Add(15*time.Minute), []WindowSnapshot{valid, bad})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `replica "r2"`) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("JudgeWindow = %v, want ErrInvalid naming the replica and %q", err, tt.want)
			}
		})
	}
	if _, err := m.JudgeWindow(fixedNow, fixedNow.Add(15*time.Minute), []WindowSnapshot{valid}); err != nil {
		t.Errorf("JudgeWindow of the valid snapshot: %v", err)
	}
	stopped := stopped(testSpec(), errStarting, time.Time{}, 0)
	if _, err := stopped.JudgeWindow(fixedNow, fixedNow.Add(time.Minute), nil); !errors.Is(err, ErrInvalid) || !errors.Is(err, errStarting) {
		t.Errorf("JudgeWindow of a monitor that is not running = %v", err)
	}
}

// NotifyDelivery sends the alert with the id given, and tells done how the
// delivery ended.
func TestNotifier_NotifyDelivery(t *testing.T) {
	r := newReceiver(t, "k", 503)
	n := NewNotifier(NotifierOptions{Attempts: 1})
	hook := Webhook{URL: r.srv.URL, Secret: "k"}
	if err := n.NotifyDelivery(hook, testAlert(), "", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("NotifyDelivery without an id = %v", err)
	}
	outcomes := make(chan error, 2)
	for range 2 {
		if err := n.NotifyDelivery(hook, testAlert(), "D1", func(err error) { outcomes <- err }); err != nil {
			t.Fatal(err)
		}
	}
	closeNotifier(t, n)
	if err := <-outcomes; err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("done of the refused delivery got %v", err)
	}
	if err := <-outcomes; err != nil {
		t.Errorf("done of the delivered one got %v", err)
	}
	for i, req := range r.requests {
		if id := req.Header.Get(HeaderDelivery); id != "D1" {
			t.Errorf("request %d: delivery %q, want D1", i, id)
		}
	}
	if err := n.NotifyDelivery(hook, testAlert(), "D2", func(error) { t.Error("done called for an alert the notifier refused") }); !errors.Is(err, ErrClosed) {
		t.Errorf("NotifyDelivery after Close = %v", err)
	}
}

// Windows rolled and snapshotted while requests are observed lose no
// observation, and each final snapshot is whole: every series counts each
// of its samples, as a value or as missing.
func TestMonitor_ConcurrentObserveRoll(t *testing.T) {
	spec := testSpec()
	spec.Window = Duration(time.Second)
	m, err := newAlignedMonitor(spec, testBaseline(t, rand.New(rand.NewPCG(1, 1)), 2000), testModel, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 4, 3000
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		counted int64
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; !stop.Load(); i++ {
			m.Snapshot()
			final, ok := m.roll(fixedNow.Add(time.Duration(i) * time.Second))
			if !ok {
				t.Errorf("window %d did not roll", i)
				return
			}
			counted += final.Samples
			for _, ss := range final.Series {
				if n := ss.count() + ss.Missing; n != final.Samples {
					t.Errorf("window %d: series %s counts %d of %d samples", i, ss.Name, n, final.Samples)
				}
			}
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
	last, _ := m.Snapshot()
	if counted+last.Samples != goroutines*each {
		t.Errorf("counted %d observations, want %d", counted+last.Samples, goroutines*each)
	}
}
