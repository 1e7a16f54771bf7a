package drift

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/clock"
)

// memStore is a Store in memory.
type memStore struct {
	mu    sync.Mutex
	specs map[string]MonitorSpec
}

func (s *memStore) Monitors(context.Context) ([]MonitorSpec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]MonitorSpec, 0, len(s.specs))
	for _, spec := range s.specs {
		out = append(out, spec)
	}
	return out, nil
}

func (s *memStore) PutMonitor(_ context.Context, spec MonitorSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.specs[spec.Name] = spec
	return nil
}

func (s *memStore) DeleteMonitor(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.specs, name)
	return nil
}

// models is a BaselineSource over the models it has, counting its calls
// per monitor.
type models struct {
	mu       sync.Mutex
	baseline *Baseline
	have     map[string]bool
	calls    map[string]int
}

var errNoModel = errors.New("not found")

func (m *models) source(_ context.Context, spec MonitorSpec) (*Baseline, ModelInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[spec.Name]++
	if !m.have[spec.Model] {
		return nil, ModelInfo{}, fmt.Errorf("model %q %w", spec.Model, errNoModel)
	}
	return m.baseline, ModelInfo{Name: spec.Model, Version: 1}, nil
}

func (m *models) set(model string, have bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.have[model] = have
}

func (m *models) callsOf(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[name]
}

func modelSpec(name, model string) MonitorSpec {
	return MonitorSpec{Name: name, Model: model, Baseline: BaselineModel, Window: Duration(time.Minute),
		MinSamples: 1, Thresholds: Thresholds{PSI: 0.2}}
}

func statusOf(t *testing.T, s *Service, name string) (string, string) {
	t.Helper()
	m, err := s.Get(name)
	if err != nil {
		t.Fatalf("monitor %s is not listed: %v", name, err)
	}
	r := m.Report()
	return r.Status, r.Error
}

// TestService_StartAfterLoadAndRetry loads two monitors from the store:
// they are listed but start only in Start, once the models have loaded. The
// one whose model is missing stays listed with its error, observes nothing,
// is retried with a doubling wait (its error logged once), and runs as soon
// as a retry finds its model.
func TestService_StartAfterLoadAndRetry(t *testing.T) {
	store := &memStore{specs: map[string]MonitorSpec{
		"a": modelSpec("a", "lin"),
		"b": modelSpec("b", "gone"),
	}}
	src := &models{baseline: testBaseline(t, rand.New(rand.NewPCG(1, 1)), 2000), have: map[string]bool{}, calls: map[string]int{}}
	var logs bytes.Buffer
	clk := clock.NewFake(fixedNow)
	s, err := NewService(t.Context(), store, src.source, nil, nil, slog.New(slog.NewTextHandler(&logs, nil)), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if st, msg := statusOf(t, s, name); st != StatusStarting || msg != "" {
			t.Errorf("%s before Start: %s %q, want starting", name, st, msg)
		}
	}
	if got := src.callsOf("a") + src.callsOf("b"); got != 0 {
		t.Errorf("%d baselines looked for before Start, want 0: the models have not loaded", got)
	}

	src.set("lin", true) // the catalog has loaded
	s.Start(t.Context(), time.Hour)
	defer s.Close()
	if st, msg := statusOf(t, s, "a"); st != StatusRunning || msg != "" {
		t.Errorf("a after Start: %s %q", st, msg)
	}
	st, msg := statusOf(t, s, "b")
	if st != StatusError || msg != `model "gone" not found` {
		t.Errorf("b after Start: %s %q, want error and its reason", st, msg)
	}
	if byEndpoint, byModel := s.Watching("", "gone"); len(byEndpoint)+len(byModel) != 0 {
		t.Error("a monitor that is not running watches traffic")
	}
	if _, byModel := s.Watching("", "lin"); len(byModel) != 1 {
		t.Errorf("%d monitors watch lin, want 1", len(byModel))
	}
	if len(s.List()) != 2 {
		t.Errorf("%d monitors listed, want 2", len(s.List()))
	}
	b, _ := s.Get("b")
	b.Observe(map[string]any{"x_normal": 1.0}, nil)
	if _, err := s.Batch(t.Context(), "b", fixedNow, fixedNow.Add(time.Hour), func(func(map[string]any, map[string]any)) error { return nil }); !errors.Is(err, ErrInvalid) ||
		!errors.Is(err, errNoModel) || !strings.Contains(err.Error(), `monitor "b" is not running: model "gone" not found`) {
		t.Errorf("Batch of a monitor that is not running = %v", err)
	}

	// Retries: 1s after the failure, then 2s, then 4s later. The loop ticks
	// hourly, so only these calls of Tick try.
	for _, tt := range []struct {
		after time.Duration
		calls int
	}{
		{500 * time.Millisecond, 1},
		{500 * time.Millisecond, 2},
		{time.Second, 2},
		{time.Second, 3},
		{3 * time.Second, 3},
		{time.Second, 4},
	} {
		clk.Advance(tt.after)
		s.Tick(t.Context())
		if got := src.callsOf("b"); got != tt.calls {
			t.Fatalf("at %v: %d attempts to start b, want %d", clk.Now().Sub(fixedNow), got, tt.calls)
		}
	}
	if n := strings.Count(logs.String(), "drift monitor not started"); n != 1 {
		t.Errorf("the same error was logged %d times, want once:\n%s", n, logs.String())
	}

	src.set("gone", true) // registered again
	clk.Advance(8 * time.Second)
	s.Tick(t.Context())
	if st, msg := statusOf(t, s, "b"); st != StatusRunning || msg != "" {
		t.Errorf("b once its model is back: %s %q", st, msg)
	}
	if !strings.Contains(logs.String(), "drift monitor started") {
		t.Errorf("no log line says b started:\n%s", logs.String())
	}
	if _, byModel := s.Watching("", "gone"); len(byModel) != 1 {
		t.Error("b does not watch its model once started")
	}
}

// TestService_RetryLosesToPutAndDelete: a monitor put or deleted while it
// was failing is not brought back by a retry of the old one.
func TestService_RetryLosesToPutAndDelete(t *testing.T) {
	store := &memStore{specs: map[string]MonitorSpec{"b": modelSpec("b", "gone"), "c": modelSpec("c", "gone")}}
	src := &models{baseline: testBaseline(t, rand.New(rand.NewPCG(1, 1)), 2000), have: map[string]bool{"lin": true}, calls: map[string]int{}}
	s, err := NewService(t.Context(), store, src.source, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.Tick(t.Context()) // starts what it can, as Start does
	old, _ := s.Get("b")
	if _, err := s.Put(t.Context(), modelSpec("b", "lin")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	oldC := stopped(modelSpec("c", "gone"), errNoModel, time.Time{}, 0)
	src.set("gone", true)
	s.start(t.Context(), old)
	s.start(t.Context(), oldC)
	if m, _ := s.Get("b"); m.Spec().Model != "lin" {
		t.Errorf("b watches %s, want lin: a retry undid a Put", m.Spec().Model)
	}
	if _, err := s.Get("c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("c after a retry of its deleted self: %v", err)
	}
}

// TestService_LoopOnClock: the loop Start runs closes a monitor's window
// when the service's clock says its time is up, and raises its alert.
func TestService_LoopOnClock(t *testing.T) {
	store := &memStore{specs: map[string]MonitorSpec{}}
	src := &models{baseline: testBaseline(t, rand.New(rand.NewPCG(1, 1)), 2000), have: map[string]bool{"lin": true}, calls: map[string]int{}}
	clk := clock.NewFake(fixedNow)
	alerts := make(chan *Alert, 1)
	onAlert := func(_ context.Context, _ MonitorSpec, a *Alert) { alerts <- a }
	s, err := NewService(t.Context(), store, src.source, nil, onAlert, slog.New(slog.DiscardHandler), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	s.Start(t.Context(), 10*time.Second)
	defer s.Close()
	m, err := s.Put(t.Context(), modelSpec("a", "lin"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for range 500 {
		m.Observe(population(rng, true))
	}
	clk.Advance(time.Minute)
	var a *Alert
	select {
	case a = <-alerts:
	case <-time.After(10 * time.Second):
		t.Fatal("no alert: the loop does not run on the service's clock")
	}
	if !a.Window.Start.Equal(fixedNow) || !a.Window.End.Equal(fixedNow.Add(time.Minute)) {
		t.Errorf("alert for the window %v to %v, want the minute from %v", a.Window.Start, a.Window.End, fixedNow)
	}
}

// TestService_ChangesFromTheHub: a model change starts at once the
// monitors of that model that could not start, without waiting for their
// retry; another replica's change of a monitor (in the store, then
// announced) is rebuilt, and a reload of an unchanged monitor keeps it.
func TestService_ChangesFromTheHub(t *testing.T) {
	store := &memStore{specs: map[string]MonitorSpec{"a": modelSpec("a", "lin")}}
	src := &models{baseline: testBaseline(t, rand.New(rand.NewPCG(1, 1)), 2000), have: map[string]bool{}, calls: map[string]int{}}
	s, err := NewService(t.Context(), store, src.source, nil, nil, slog.New(slog.DiscardHandler), WithClock(clock.NewFake(fixedNow)))
	if err != nil {
		t.Fatal(err)
	}
	s.Start(t.Context(), time.Hour)
	defer s.Close()
	if st, _ := statusOf(t, s, "a"); st != StatusError {
		t.Fatalf("a without its model: %s", st)
	}
	src.set("lin", true)
	if err := s.ModelChanged(t.Context(), "other"); err != nil {
		t.Fatal(err)
	}
	if st, _ := statusOf(t, s, "a"); st != StatusError {
		t.Errorf("a change of another model started a: %s", st)
	}
	if err := s.ModelChanged(t.Context(), "lin"); err != nil {
		t.Fatal(err)
	}
	if st, msg := statusOf(t, s, "a"); st != StatusRunning {
		t.Errorf("a after its model registered: %s %q", st, msg)
	}

	running, _ := s.Get("a")
	if err := s.Reload(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Get("a"); m != running {
		t.Error("reloading an unchanged monitor rebuilt it")
	}
	changed := modelSpec("a", "lin")
	changed.MinSamples = 50
	store.PutMonitor(t.Context(), changed)
	store.PutMonitor(t.Context(), modelSpec("b", "lin"))
	for _, name := range []string{"a", "b"} {
		if err := s.Reload(t.Context(), name); err != nil {
			t.Fatal(err)
		}
	}
	if m, _ := s.Get("a"); m.Spec().MinSamples != 50 {
		t.Errorf("a after another replica changed it: min_samples %d", m.Spec().MinSamples)
	}
	if st, _ := statusOf(t, s, "b"); st != StatusRunning {
		t.Errorf("b, created by another replica: %s", st)
	}
	store.DeleteMonitor(t.Context(), "b")
	if err := s.Reload(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("b"); err == nil {
		t.Error("b, deleted by another replica, is still listed")
	}
}

// TestService_EndpointMonitorFollowsItsModel: a monitor of an endpoint is
// compared with the registered baseline of the endpoint's model version;
// when a policy change or an alias move points the endpoint at another
// version, the monitor restarts on that version's baseline, and a change
// that leaves the version as it was keeps the monitor running as it is.
func TestService_EndpointMonitorFollowsItsModel(t *testing.T) {
	b := testBaseline(t, rand.New(rand.NewPCG(1, 1)), 2000)
	var mu sync.Mutex
	version := 1
	source := func(_ context.Context, spec MonitorSpec) (*Baseline, ModelInfo, error) {
		mu.Lock()
		defer mu.Unlock()
		return b, ModelInfo{Name: "churn-model", Version: version}, nil
	}
	s, err := NewService(t.Context(), &memStore{specs: map[string]MonitorSpec{}}, source, nil, nil, slog.New(slog.DiscardHandler),
		WithClock(clock.NewFake(fixedNow)))
	if err != nil {
		t.Fatal(err)
	}
	spec := modelSpec("e", "")
	spec.Model, spec.Endpoint = "", "churn"
	if _, err := s.Put(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	first, _ := s.Get("e")
	steps := []struct {
		name        string
		version     int
		change      func() error
		wantVersion int
		rebuilt     bool
	}{
		{"another endpoint changed", 2, func() error { return s.EndpointChanged(t.Context(), "fraud") }, 1, false},
		{"its endpoint changed", 2, func() error { return s.EndpointChanged(t.Context(), "churn") }, 2, true},
		{"a model changed, the version did not", 2, func() error { return s.ModelChanged(t.Context(), "churn-model") }, 2, false},
		{"an alias moved", 3, func() error { return s.ModelChanged(t.Context(), "churn-model") }, 3, true},
	}
	prev := first
	for _, st := range steps {
		mu.Lock()
		version = st.version
		mu.Unlock()
		if err := st.change(); err != nil {
			t.Fatal(err)
		}
		m, _ := s.Get("e")
		if got := m.Report().Model.Version; got != st.wantVersion || (m != prev) != st.rebuilt {
			t.Errorf("%s: monitor on version %d (rebuilt %v), want %d (rebuilt %v)", st.name, got, m != prev, st.wantVersion, st.rebuilt)
		}
		prev = m
	}
}
