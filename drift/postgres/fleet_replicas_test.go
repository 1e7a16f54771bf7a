package postgres_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/drift/postgres"
	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/pgdb/pgdbtest"
	"github.com/mlgate/mlgate/internal/testservers"
)

// post is one webhook request the receiver got, and its answer.
type post struct {
	status             int
	delivery, sig, evt string
	body               []byte
}

// receiver is a webhook receiver that answers with status and hands every
// request to posts.
type receiver struct {
	srv    *httptest.Server
	status atomic.Int32
	posts  chan post
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{posts: make(chan post, 16)}
	r.status.Store(http.StatusOK)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		status := int(r.status.Load())
		r.posts <- post{status: status, delivery: req.Header.Get(drift.HeaderDelivery), sig: req.Header.Get(drift.HeaderSignature),
			evt: req.Header.Get(drift.HeaderEvent), body: body}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next returns the next request; the bound only stops a broken test.
func (r *receiver) next(t *testing.T, what string) post {
	t.Helper()
	select {
	case p := <-r.posts:
		return p
	case <-time.After(10 * time.Second):
		t.Fatalf("no webhook call: %s", what)
		return post{}
	}
}

// replica is one gateway of the fleet: its own pool, store, notifier and
// drift service.
type replica struct {
	name     string
	svc      *drift.Service
	notifier *drift.Notifier
	alerts   atomic.Int32 // AlertHook calls
	dead     bool
}

func (r *replica) monitor(t *testing.T) *drift.Monitor {
	t.Helper()
	m, err := r.svc.Get("churn-x")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// die stops the replica: its notifier finishes the delivery it has queued
// (and the fleet learns the outcome), then nothing of it runs.
func (r *replica) die(t *testing.T) {
	t.Helper()
	if err := r.notifier.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.dead = true
}

// TestFleet_ThreeReplicasOneAlert runs three drift services on one
// PostgreSQL, each observing a third of a shifted distribution, a third
// too small for min_samples alone: the leader judges the merged windows and
// exactly one signed webhook call is made, every replica's report shows the
// fleet's figures, a new leader after a failover neither alerts again
// within the cooldown nor sends the delivered alert again, and an alert
// whose delivery failed is sent again, once and with the same delivery id,
// by the next leader.
func TestFleet_ThreeReplicasOneAlert(t *testing.T) {
	ctx := context.Background()
	dsn := testservers.Postgres(t)
	hook := newReceiver(t)
	const secret = "s3cret"
	spec := drift.MonitorSpec{
		Name: "churn-x", Model: "churn", Baseline: drift.BaselineModel, Window: drift.Duration(time.Minute),
		MinSamples: 300, Thresholds: drift.Thresholds{PSI: 0.2},
		Webhook: drift.Webhook{URL: hook.srv.URL + "/retrain", Secret: secret}, Cooldown: drift.Duration(5 * time.Minute),
	}
	edges := []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	counts := []int64{0, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 0}
	baseline := &drift.Baseline{Features: map[string]drift.FeatureBaseline{"x": {Edges: edges, Counts: counts}}}
	model := drift.ModelInfo{Name: "churn", Version: 1, UUID: "0b5e-v1"}
	source := func(context.Context, drift.MonitorSpec) (*drift.Baseline, drift.ModelInfo, error) {
		return baseline, model, nil
	}

	clk := clock.NewFake(time.Date(2026, 11, 9, 12, 0, 10, 0, time.UTC))
	var leader atomic.Value
	leader.Store("r1")
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	var replicas []*replica
	for i, name := range []string{"r1", "r2", "r3"} {
		pool := pgdbtest.Open(t, dsn, postgres.Schema)
		store := postgres.NewStore(pool)
		if i == 0 {
			if err := store.PutMonitor(ctx, spec); err != nil {
				t.Fatal(err)
			}
		}
		r := &replica{name: name, notifier: drift.NewNotifier(drift.NotifierOptions{Attempts: 1, Log: log})}
		t.Cleanup(func() { _ = r.notifier.Close(context.Background()) })
		onAlert := func(context.Context, drift.MonitorSpec, *drift.Alert) { r.alerts.Add(1) }
		svc, err := drift.NewService(ctx, store, source, r.notifier, onAlert, log.With("replica", name),
			drift.WithClock(clk), drift.WithFleet(postgres.NewFleet(pool), name),
			drift.WithLeader(func() bool { return leader.Load() == name }))
		if err != nil {
			t.Fatal(err)
		}
		r.svc = svc
		replicas = append(replicas, r)
	}
	step := func(d time.Duration) {
		clk.Advance(d)
		for _, r := range replicas {
			if !r.dead {
				r.svc.Tick(ctx)
			}
		}
	}
	// shifted observes n values of the top two bins, which hold a fifth of
	// the baseline, on replica r.
	shifted := func(r *replica, n int) {
		m := r.monitor(t)
		for i := range n {
			m.Observe(map[string]any{"x": 8 + float64(i%20)/10}, nil)
		}
	}
	alerts := func() (n int32) {
		for _, r := range replicas {
			n += r.alerts.Load()
		}
		return n
	}
	r1, r2, r3 := replicas[0], replicas[1], replicas[2]
	fleet := postgres.NewFleet(pgdbtest.Open(t, dsn))

	step(0) // the monitors start; the window of 12:00 is open
	for _, r := range replicas {
		if got := r.monitor(t).Report().Current.Start; !got.Equal(time.Date(2026, 11, 9, 12, 0, 0, 0, time.UTC)) {
			t.Fatalf("%s's window opens at %v, want 12:00, the minute's start", r.name, got)
		}
		shifted(r, 150)
	}
	step(51 * time.Second) // 12:01:01: each replica closes the window and publishes its counts
	if n := alerts(); n != 0 {
		t.Fatalf("%d alerts before the grace period is over", n)
	}
	step(2 * time.Second) // 12:01:03: the leader judges the window of 12:00

	p := hook.next(t, "the leader's alert")
	if !drift.Verify(secret, p.body, p.sig) || p.evt != drift.EventDriftDetected || p.delivery == "" {
		t.Errorf("webhook call: signature %q (valid: %v), event %q, delivery %q", p.sig, drift.Verify(secret, p.body, p.sig), p.evt, p.delivery)
	}
	var a drift.Alert
	if err := json.Unmarshal(p.body, &a); err != nil {
		t.Fatal(err)
	}
	if a.Monitor != "churn-x" || a.Model != model || len(a.Drifted) != 1 || a.Drifted[0].Feature != "x" ||
		!a.Window.Start.Equal(time.Date(2026, 11, 9, 12, 0, 0, 0, time.UTC)) || !a.Window.End.Equal(time.Date(2026, 11, 9, 12, 1, 0, 0, time.UTC)) {
		t.Errorf("alert = %s", p.body)
	}
	if got := []int32{r1.alerts.Load(), r2.alerts.Load(), r3.alerts.Load()}; !slices.Equal(got, []int32{1, 0, 0}) {
		t.Errorf("alert hooks called %v times on r1..r3, want once on the leader", got)
	}

	// The next window, shifted too, in progress: every replica's report
	// shows the fleet's history and counts.
	for _, r := range replicas {
		shifted(r, 150)
	}
	step(time.Second) // 12:01:04: each replica publishes its counts
	step(time.Second) // 12:01:05: and reads the others'
	for _, r := range replicas {
		rep := r.monitor(t).Report()
		if len(rep.History) != 1 || rep.History[0].Samples != 450 || !rep.History[0].Alerted || rep.History[0].Features[0].Count != 450 {
			t.Errorf("%s's history = %+v, want the fleet's window of 450 samples, alerted", r.name, rep.History)
		}
		if !rep.LastAlert.Equal(time.Date(2026, 11, 9, 12, 1, 0, 0, time.UTC)) {
			t.Errorf("%s's last alert = %v, want the end of the window that alerted", r.name, rep.LastAlert)
		}
		want := map[string]int64{"r1": 150, "r2": 150, "r3": 150}
		if rep.Current.Samples != 450 || rep.Current.Features["x"] != 450 || !maps.Equal(rep.Current.Replicas, want) {
			t.Errorf("%s's current window: %d samples, %d of x, by replica %v; want 450, 450, %v", r.name, rep.Current.Samples, rep.Current.Features["x"], rep.Current.Replicas, want)
		}
	}

	// r1 dies after delivering; r2 takes over. It sends nothing again, and
	// the drifted window of 12:01 raises no alert within the cooldown of
	// the fleet's last one.
	r1.die(t)
	leader.Store("r2")
	step(56 * time.Second) // 12:02:01: r2 and r3 close the window of 12:01
	step(2 * time.Second)  // 12:02:03: r2 judges it, r1's last published counts included
	rep := r3.monitor(t).Report()
	if n := len(rep.History); n != 2 || rep.History[1].Samples != 450 || !rep.History[1].Drifted || rep.History[1].Alerted {
		t.Errorf("history after the failover = %+v, want a second window of 450 samples, drifted, not alerted", rep.History)
	}
	if n := alerts(); n != 1 {
		t.Errorf("%d alerts after the failover, want still 1", n)
	}

	// Past the cooldown, r2 alerts on the window of 12:07, but the
	// receiver fails: the alert stays pending. r2 dies, and r3, the next
	// leader, sends it again with the same delivery id.
	hook.status.Store(http.StatusServiceUnavailable)
	step(5 * time.Minute) // 12:07:03
	shifted(r2, 150)
	shifted(r3, 150)
	step(58 * time.Second) // 12:08:01
	step(2 * time.Second)  // 12:08:03: r2 judges the window of 12:07
	failed := hook.next(t, "r2's alert")
	if failed.status != http.StatusServiceUnavailable || !drift.Verify(secret, failed.body, failed.sig) {
		t.Fatalf("r2's alert: status %d, signature valid %v", failed.status, drift.Verify(secret, failed.body, failed.sig))
	}
	if failed.delivery == p.delivery {
		t.Error("two alerts share a delivery id")
	}
	r2.die(t)
	pending, err := fleet.PendingAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != failed.delivery {
		t.Fatalf("pending alerts after the failed delivery = %+v, want r2's", pending)
	}
	hook.status.Store(http.StatusOK)
	leader.Store("r3")
	step(time.Second) // r3 leads and sends the pending alert again
	again := hook.next(t, "the pending alert sent again")
	if again.delivery != failed.delivery || string(again.body) != string(failed.body) || !drift.Verify(secret, again.body, again.sig) {
		t.Errorf("alert sent again with delivery %q and body %s, want %q and %s, signed", again.delivery, again.body, failed.delivery, failed.body)
	}
	step(time.Second)
	r3.die(t)
	if pending, err := fleet.PendingAlerts(ctx); err != nil || len(pending) != 0 {
		t.Errorf("pending alerts at the end = %+v, %v; want none", pending, err)
	}
	if got := []int32{r1.alerts.Load(), r2.alerts.Load(), r3.alerts.Load()}; !slices.Equal(got, []int32{1, 1, 0}) {
		t.Errorf("alert hooks called %v times on r1..r3, want once per alert, by the leader that raised it", got)
	}
	close(hook.posts)
	for extra := range hook.posts {
		t.Errorf("unexpected webhook call: delivery %q, %s", extra.delivery, extra.body)
	}
}
