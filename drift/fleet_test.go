package drift_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/drift/drifttest"
	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/testservers"
)

// specs is a drift.Store in memory.
type specs struct {
	mu sync.Mutex
	m  map[string]drift.MonitorSpec
}

func (s *specs) Monitors(context.Context) ([]drift.MonitorSpec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []drift.MonitorSpec
	for _, spec := range s.m {
		out = append(out, spec)
	}
	return out, nil
}

func (s *specs) PutMonitor(_ context.Context, spec drift.MonitorSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[spec.Name] = spec
	return nil
}

func (s *specs) DeleteMonitor(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, name)
	return nil
}

// flakyFleet is a MemFleet whose PublishWindows fails while down is set.
type flakyFleet struct {
	*drifttest.MemFleet
	down atomic.Bool
}

func (f *flakyFleet) PublishWindows(ctx context.Context, snaps []drift.WindowSnapshot) error {
	if f.down.Load() {
		return errors.New("connection refused")
	}
	return f.MemFleet.PublishWindows(ctx, snaps)
}

// fleetRig is a fleet of drift services in one process, on a MemFleet and
// a fake clock, with a webhook receiver that counts its calls.
type fleetRig struct {
	t     *testing.T
	clk   *clock.Fake
	store *specs
	posts atomic.Int32
	hook  *httptest.Server
	logs  testservers.Log
}

func newFleetRig(t *testing.T) *fleetRig {
	r := &fleetRig{t: t, clk: clock.NewFake(time.Date(2026, 11, 9, 12, 0, 10, 0, time.UTC))}
	r.hook = httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { r.posts.Add(1) }))
	t.Cleanup(r.hook.Close)
	r.store = &specs{m: map[string]drift.MonitorSpec{"m": {
		Name: "m", Model: "churn", Baseline: drift.BaselineModel, Window: drift.Duration(time.Minute), MinSamples: 100,
		Thresholds: drift.Thresholds{PSI: 0.2}, Webhook: drift.Webhook{URL: r.hook.URL}, Cooldown: drift.Duration(time.Hour),
	}}}
	return r
}

// service starts a replica on f; its notifier is closed (its deliveries
// done) when the test ends or by the returned close.
func (r *fleetRig) service(f drift.Fleet, name string, opts ...drift.ServiceOption) (*drift.Service, func()) {
	baseline := &drift.Baseline{Features: map[string]drift.FeatureBaseline{"x": {
		Edges: []float64{0, 1, 2, 3, 4}, Counts: []int64{0, 100, 100, 100, 100, 0}}}}
	source := func(context.Context, drift.MonitorSpec) (*drift.Baseline, drift.ModelInfo, error) {
		return baseline, drift.ModelInfo{Name: "churn", Version: 1, UUID: "v1"}, nil
	}
	n := drift.NewNotifier(drift.NotifierOptions{Attempts: 1})
	var once sync.Once
	closeN := func() { once.Do(func() { _ = n.Close(context.Background()) }) }
	r.t.Cleanup(closeN)
	log := slog.New(slog.NewTextHandler(&r.logs, nil))
	s, err := drift.NewService(context.Background(), r.store, source, n, nil, log,
		append([]drift.ServiceOption{drift.WithClock(r.clk), drift.WithFleet(f, name)}, opts...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	return s, closeN
}

// observe counts n values of the top bin on s's monitor.
func (r *fleetRig) observe(s *drift.Service, n int) {
	m, err := s.Get("m")
	if err != nil {
		r.t.Fatal(err)
	}
	for range n {
		m.Observe(map[string]any{"x": 3.5}, nil)
	}
}

// A replica whose snapshots cannot be published keeps its closed windows'
// final counts and, as the leader, judges nothing until they are in; the
// failure is logged once, and its end too.
func TestService_FleetLeaderWaitsForItsOwnCounts(t *testing.T) {
	r := newFleetRig(t)
	f := &flakyFleet{MemFleet: drifttest.NewMemFleet()}
	s, closeN := r.service(f, "r1") // no WithLeader: it leads
	ctx := context.Background()
	s.Tick(ctx)
	r.observe(s, 150)
	f.down.Store(true)
	for range 5 {
		r.clk.Advance(20 * time.Second) // up to 12:01:50: the window of 12:00 closed
		s.Tick(ctx)
	}
	if got, _ := f.Reports(ctx, "m", 10); len(got) != 0 {
		t.Fatalf("the leader judged a window without its own counts: %+v", got)
	}
	if n := strings.Count(r.logs.String(), "publish windows failed"); n != 1 {
		t.Errorf("the publishing failure logged %d times, want once:\n%s", n, r.logs.String())
	}
	f.down.Store(false)
	r.clk.Advance(time.Second)
	s.Tick(ctx)
	closeN()
	reports, _ := f.Reports(ctx, "m", 10)
	if len(reports) != 1 || reports[0].Samples != 150 || !reports[0].Alerted {
		t.Errorf("reports after publishing again = %+v, want the window of 12:00 with its 150 samples, alerted", reports)
	}
	if n := r.posts.Load(); n != 1 {
		t.Errorf("%d webhook calls, want 1", n)
	}
	if !strings.Contains(r.logs.String(), "publish windows works again") {
		t.Errorf("the end of the failure is not logged:\n%s", r.logs.String())
	}
}

// Followers count and publish but never judge; the leader judges the
// merge; a replica's report shows the fleet's history.
func TestService_FleetFollowersDoNotJudge(t *testing.T) {
	r := newFleetRig(t)
	f := drifttest.NewMemFleet()
	var leader atomic.Value
	leader.Store("none")
	var replicas []*drift.Service
	var closers []func()
	for _, name := range []string{"r1", "r2"} {
		s, closeN := r.service(f, name, drift.WithLeader(func() bool { return leader.Load() == name }))
		replicas, closers = append(replicas, s), append(closers, closeN)
	}
	ctx := context.Background()
	tick := func(d time.Duration) {
		r.clk.Advance(d)
		for _, s := range replicas {
			s.Tick(ctx)
		}
	}
	tick(0)
	for _, s := range replicas {
		r.observe(s, 60) // 60 each: too few alone, 120 together
	}
	tick(51 * time.Second)
	tick(10 * time.Second) // 12:01:11
	if got, _ := f.Reports(ctx, "m", 10); len(got) != 0 {
		t.Fatalf("followers judged: %+v", got)
	}
	leader.Store("r2")
	tick(time.Second)
	tick(time.Second) // r1 reads r2's report
	for _, c := range closers {
		c()
	}
	if n := r.posts.Load(); n != 1 {
		t.Errorf("%d webhook calls, want 1", n)
	}
	m, _ := replicas[0].Get("m")
	h := m.Report().History
	if len(h) != 1 || h[0].Samples != 120 || !h[0].Drifted || !h[0].Alerted {
		t.Errorf("r1's history = %+v, want the leader's report of 120 samples, alerted", h)
	}
}

// A new leader settles, without a call, the pending alert of a monitor that
// no longer exists.
func TestService_FleetPendingAlertOfAGoneMonitor(t *testing.T) {
	r := newFleetRig(t)
	f := drifttest.NewMemFleet()
	ctx := context.Background()
	rep := drifttest.Report(time.Date(2026, 11, 9, 11, 0, 0, 0, time.UTC), true)
	if ok, err := f.ClaimReport(ctx, "gone", rep, drifttest.PendingAlertOf("d1", "gone", rep)); !ok || err != nil {
		t.Fatalf("ClaimReport = %v, %v", ok, err)
	}
	s, closeN := r.service(f, "r1")
	s.Tick(ctx)
	closeN()
	if p, _ := f.PendingAlerts(ctx); len(p) != 0 {
		t.Errorf("pending alerts = %+v, want none", p)
	}
	if n := r.posts.Load(); n != 0 {
		t.Errorf("%d webhook calls for a monitor that is gone", n)
	}
}

// A leader that loses and regains the lead while its alert's delivery is
// in flight does not send the alert a second time.
func TestService_FleetLeaderFlapDoesNotResendInFlight(t *testing.T) {
	r := newFleetRig(t)
	release := make(chan struct{})
	var posts atomic.Int32
	blocking := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		posts.Add(1)
		<-release
	}))
	t.Cleanup(blocking.Close)
	spec := r.store.m["m"]
	spec.Webhook.URL = blocking.URL
	r.store.m["m"] = spec
	f := drifttest.NewMemFleet()
	var leading atomic.Bool
	leading.Store(true)
	s, closeN := r.service(f, "r1", drift.WithLeader(leading.Load))
	ctx := context.Background()
	s.Tick(ctx)
	r.observe(s, 150)
	r.clk.Advance(51 * time.Second)
	s.Tick(ctx)
	r.clk.Advance(2 * time.Second)
	s.Tick(ctx) // judged; the delivery is queued, then blocks in the receiver
	for _, lead := range []bool{false, true} {
		leading.Store(lead)
		r.clk.Advance(time.Second)
		s.Tick(ctx)
	}
	if p, _ := f.PendingAlerts(ctx); len(p) != 1 {
		t.Fatalf("pending alerts while the delivery is in flight = %+v, want 1", p)
	}
	close(release)
	closeN()
	if n := posts.Load(); n != 1 {
		t.Errorf("%d webhook calls, want 1", n)
	}
	if p, _ := f.PendingAlerts(ctx); len(p) != 0 {
		t.Errorf("pending alerts after the delivery = %+v, want none", p)
	}
}
