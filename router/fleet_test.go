package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/testservers"
)

// memFleet is a Fleet in memory. While err is set, it fails every call.
type memFleet struct {
	mu        sync.Mutex
	err       error
	figures   map[string]map[string]StatsSnapshot // "endpoint/revision" → replica → figures
	published chan []EndpointFigures
}

func newMemFleet() *memFleet {
	return &memFleet{figures: map[string]map[string]StatsSnapshot{}, published: make(chan []EndpointFigures, 16)}
}

func (f *memFleet) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *memFleet) Publish(_ context.Context, replica string, figures []EndpointFigures) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	for _, e := range figures {
		key := fmt.Sprintf("%s/%d", e.Endpoint, e.Revision)
		if f.figures[key] == nil {
			f.figures[key] = map[string]StatsSnapshot{}
		}
		f.figures[key][replica] = e.Stats
	}
	select {
	case f.published <- figures:
	default:
	}
	return nil
}

func (f *memFleet) Figures(_ context.Context, endpoint string, revision int) (map[string]StatsSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return maps.Clone(f.figures[fmt.Sprintf("%s/%d", endpoint, revision)]), nil
}

// audited records the actions a service audits.
type audited struct {
	mu      sync.Mutex
	actions []string
}

func (a *audited) record(_ context.Context, actor, action, _ string, _, _ any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.actions = append(a.actions, action)
	return nil
}

func (a *audited) count(action string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, got := range a.actions {
		if got == action {
			n++
		}
	}
	return n
}

// replicas is a fleet of services over one store and one Fleet, on one
// fake clock, which record what they audit in one list.
type replicas struct {
	store    *memStore
	fleet    *memFleet
	clock    *clock.Fake
	audit    *audited
	promoted chan string
	logs     testservers.Log
}

func newReplicas() *replicas {
	return &replicas{
		store: newMemStore(), fleet: newMemFleet(), clock: clock.NewFake(t0),
		audit: &audited{}, promoted: make(chan string, 16),
	}
}

// start returns replica id's service, leader if leader says so.
func (f *replicas) start(t *testing.T, id string, leader func() bool, opts ...ServiceOption) *Service {
	t.Helper()
	log := slog.New(slog.NewTextHandler(&f.logs, nil)).With("replica", id)
	opts = append([]ServiceOption{WithClock(f.clock), WithFleet(f.fleet, id), WithLeader(leader)}, opts...)
	s, err := NewService(t.Context(), f.store, allModels{promoted: f.promoted}, f.audit.record, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func always() bool { return true }
func never() bool  { return false }

// canaryAt creates endpoint churn through s with a canary of steps, at
// least minRequests canary requests per step, and returns its route.
func canaryAt(t *testing.T, s *Service, minRequests int, steps ...int) {
	t.Helper()
	ctx := t.Context()
	if _, _, err := s.Put(ctx, "alice", "churn", Policy{Variants: []Variant{{Name: "control", Model: "churn/7", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	spec := CanarySpec{Model: "churn/8", Steps: steps, Interval: Duration(time.Minute), Analysis: Analysis{MinRequests: minRequests}, PromoteAlias: "champion"}
	if _, err := s.StartCanary(ctx, "alice", "churn", spec); err != nil {
		t.Fatal(err)
	}
}

// serve records n requests to the canary and n to the control variant on
// s's route of churn.
func serve(t *testing.T, s *Service, n int) {
	t.Helper()
	r, ok := s.Route("churn")
	if !ok {
		t.Fatal("no route of churn")
	}
	c, ok := r.Variant(CanaryVariant)
	if !ok {
		t.Fatal("no canary variant")
	}
	for range n {
		r.Stats().Record(c, time.Millisecond, false)
		r.Stats().Record(1-c, time.Millisecond, false)
	}
}

// TestService_CanaryJudgedOnFleetFigures: the leader judges a canary on its
// live figures merged with the other replicas' published ones, and holds
// when it is not the leader or cannot read the fleet.
func TestService_CanaryJudgedOnFleetFigures(t *testing.T) {
	tests := []struct {
		name     string
		leader   func() bool
		fleetErr error
		// requests is each replica's canary requests; r1 judges, and the
		// others publish theirs.
		requests map[string]int
		want     string // the audited decision, "" for none
		wantLog  string
	}{
		{"the sum of the fleet reaches min_requests", always, nil, map[string]int{"r1": 40, "r2": 30, "r3": 30}, ActionCanaryPromote, ""},
		{"the leader's own figures alone do not", always, nil, map[string]int{"r1": 99}, "", ""},
		{"nor do two replicas of three", always, nil, map[string]int{"r1": 40, "r2": 59}, "", ""},
		{"not the leader", never, nil, map[string]int{"r1": 40, "r2": 30, "r3": 30}, "", ""},
		{"the fleet cannot be read", always, errors.New("connection refused"), map[string]int{"r1": 40, "r2": 30, "r3": 30}, "", "canary and sample ratio checks hold: no fleet figures"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newReplicas()
			r1 := f.start(t, "r1", tt.leader)
			canaryAt(t, r1, 100, 100)
			for _, id := range []string{"r2", "r3"} {
				s := f.start(t, id, never)
				serve(t, s, tt.requests[id])
				if tt.requests[id] > 0 {
					if err := s.PublishFigures(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
			}
			serve(t, r1, tt.requests["r1"])
			f.fleet.fail(tt.fleetErr)
			f.clock.Advance(time.Minute)
			r1.Tick(t.Context())
			promotions := f.audit.count(ActionCanaryPromote)
			switch {
			case tt.want == "" && promotions != 0:
				t.Errorf("promoted %d times, want no decision", promotions)
			case tt.want != "" && promotions != 1:
				t.Errorf("promoted %d times, want once", promotions)
			}
			if !strings.Contains(f.logs.String(), tt.wantLog) {
				t.Errorf("log %q does not say %q", f.logs.String(), tt.wantLog)
			}
		})
	}
}

// TestService_FiguresMergeReplicas: Figures counts this replica's live
// requests and the others' published ones, never this replica's own
// published copy, which lags; without a fleet it counts this replica's.
func TestService_FiguresMergeReplicas(t *testing.T) {
	f := newReplicas()
	r1 := f.start(t, "r1", always)
	canaryAt(t, r1, 100, 100)
	r2 := f.start(t, "r2", always)
	serve(t, r1, 10)
	serve(t, r2, 7)
	for _, s := range []*Service{r1, r2} {
		if err := s.PublishFigures(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	serve(t, r1, 5) // after r1 published
	got, err := r1.Figures(t.Context(), "churn")
	if err != nil {
		t.Fatal(err)
	}
	if got.Stats.Requests != 2*(15+7) || got.Endpoint.Revision != 2 {
		t.Errorf("Figures: %d requests of revision %d, want %d of revision 2", got.Stats.Requests, got.Endpoint.Revision, 2*(15+7))
	}
	perReplica := map[string]int64{}
	for id, s := range got.Replicas {
		perReplica[id] = s.Requests
	}
	if want := map[string]int64{"r1": 30, "r2": 14}; !maps.Equal(perReplica, want) {
		t.Errorf("Figures per replica: %v, want %v", perReplica, want)
	}
	if c := got.Stats.Variants[1]; c.Name != CanaryVariant || c.Requests != 22 {
		t.Errorf("merged variant 1: %s with %d requests, want canary with 22", c.Name, c.Requests)
	}

	f.fleet.fail(errors.New("connection refused"))
	if _, err := r1.Figures(t.Context(), "churn"); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Figures with the fleet down = %v, want ErrUnavailable naming the cause", err)
	}
	if _, err := r1.Figures(t.Context(), "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Figures of a missing endpoint = %v, want ErrNotFound", err)
	}

	alone, err := NewService(t.Context(), f.store, allModels{}, f.audit.record, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, alone, 3)
	got, err = alone.Figures(t.Context(), "churn")
	if err != nil || got.Stats.Requests != 6 || got.Replicas != nil {
		t.Errorf("Figures without a fleet = %d requests, replicas %v, %v; want the 6 local requests", got.Stats.Requests, got.Replicas, err)
	}
}

// TestService_PublisherOnClock: Start publishes every route's figures every
// FleetPublishInterval of the service's clock, and Close once more.
func TestService_PublisherOnClock(t *testing.T) {
	f := newReplicas()
	s := f.start(t, "r1", always)
	canaryAt(t, s, 100, 100)
	s.Start(time.Hour)
	f.clock.BlockUntil(2) // the controller's ticker and the publisher's
	serve(t, s, 4)
	f.clock.Advance(FleetPublishInterval)
	select {
	case got := <-f.fleet.published:
		if len(got) != 1 || got[0].Endpoint != "churn" || got[0].Revision != 2 || got[0].Stats.Requests != 8 {
			t.Errorf("published %+v, want churn revision 2 with 8 requests", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing published a publish interval after Start")
	}
	serve(t, s, 1)
	s.Close()
	select {
	case got := <-f.fleet.published:
		if len(got) != 1 || got[0].Stats.Requests != 10 {
			t.Errorf("published on Close %+v, want churn with 10 requests", got)
		}
	default:
		t.Fatal("nothing published on Close")
	}
	if n := f.clock.Waiters(); n != 0 {
		t.Errorf("%d tickers left after Close", n)
	}
}

// TestService_CommitAfterConflict: a change made from a stale endpoint (one
// another replica changed, deleted or created, unknown here) is refused by
// the store, or finds no endpoint, and is made again on the endpoint as
// stored; a second refusal is a conflict that says to retry.
func TestService_CommitAfterConflict(t *testing.T) {
	ctx := t.Context()
	f := newReplicas()
	a := f.start(t, "a", always)
	b := f.start(t, "b", always) // knows no endpoint, and is told of no change
	one := Policy{Variants: []Variant{{Name: "x", Model: "m/1", Weight: 1}, {Name: "y", Model: "m/2", Weight: 1}}}
	if _, _, err := a.Put(ctx, "alice", "churn", one); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name        string
		change      func() (Endpoint, error)
		wantRev     int
		wantCreated bool
	}{
		{"put of an endpoint another replica created", func() (Endpoint, error) {
			e, created, err := b.Put(ctx, "bob", "churn", one)
			if created {
				err = errors.Join(err, errors.New("reported as created"))
			}
			return e, err
		}, 2, false},
		{"weights set from a stale revision", func() (Endpoint, error) {
			return a.SetWeights(ctx, "alice", "churn", map[string]int{"x": 3})
		}, 3, false},
	}
	for _, st := range steps {
		e, err := st.change()
		if err != nil || e.Revision != st.wantRev {
			t.Fatalf("%s: revision %d, %v; want revision %d", st.name, e.Revision, err, st.wantRev)
		}
	}
	h, err := f.store.History(ctx, "churn")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range h {
		got = append(got, fmt.Sprintf("%d:%s:%s", r.Revision, r.Actor, r.Action))
	}
	if want := []string{"1:alice:create_endpoint", "2:bob:set_policy", "3:alice:set_weights"}; !slices.Equal(got, want) {
		t.Errorf("history %v, want %v", got, want)
	}
	if e, _, _ := a.Get("churn"); e.Policy.Variants[0].Weight != 3 {
		t.Errorf("a serves %+v, want the weights it set", e.Policy)
	}

	if err := a.Delete(ctx, "alice", "churn"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SetWeights(ctx, "bob", "churn", map[string]int{"x": 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("weights of an endpoint deleted on another replica: %v, want ErrNotFound", err)
	}
	if _, ok := b.Route("churn"); ok {
		t.Error("b still routes an endpoint deleted on another replica, after finding it gone")
	}
	for _, name := range []string{"fraud", "ads"} {
		if _, _, err := a.Put(ctx, "alice", name, one); err != nil {
			t.Fatal(err)
		}
	}
	if e, err := b.SetWeights(ctx, "bob", "fraud", map[string]int{"y": 2}); err != nil || e.Revision != 2 {
		t.Errorf("weights of an endpoint created on another replica: revision %d, %v; want revision 2", e.Revision, err)
	}
	if err := b.Delete(ctx, "bob", "ads"); err != nil {
		t.Errorf("delete of an endpoint created on another replica: %v", err)
	}
	if err := b.Delete(ctx, "bob", "never"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete of an endpoint never created: %v, want ErrNotFound", err)
	}

	busy, err := NewService(ctx, conflictingStore{f.store}, allModels{}, f.audit.record, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = busy.Put(ctx, "carol", "fraud", one)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "changed meanwhile") || !strings.Contains(err.Error(), "retry") {
		t.Errorf("Put refused twice = %v, want ErrConflict saying it changed meanwhile and to retry", err)
	}
}

// conflictingStore refuses every Save, as if another replica always saved
// first.
type conflictingStore struct{ *memStore }

func (conflictingStore) Save(_ context.Context, e Endpoint, _ Revision) error {
	return RevisionConflict(e.Name, e.Revision, e.Revision)
}

// TestService_TwoLeadersDecideOnce: two replicas that both judge (two
// leaders, for a moment), at once or one after the other and with or
// without seeing each other's change, promote the canary once: the store
// refuses the second decision, which is dropped.
func TestService_TwoLeadersDecideOnce(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent=%v", concurrent), func(t *testing.T) {
			f := newReplicas()
			r1 := f.start(t, "r1", always)
			canaryAt(t, r1, 10, 100)
			r2 := f.start(t, "r2", always)
			serve(t, r1, 5)
			serve(t, r2, 5)
			for _, s := range []*Service{r1, r2} {
				if err := s.PublishFigures(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			f.clock.Advance(time.Minute)
			if concurrent {
				var wg sync.WaitGroup
				wg.Go(func() { r1.Tick(t.Context()) })
				wg.Go(func() { r2.Tick(t.Context()) })
				wg.Wait()
			} else {
				r1.Tick(t.Context())
				r2.Tick(t.Context())
			}
			if n := f.audit.count(ActionCanaryPromote); n != 1 {
				t.Errorf("promoted %d times, want once", n)
			}
			if n := len(f.promoted); n != 1 {
				t.Errorf("moved the alias %d times, want once", n)
			}
			h, err := f.store.History(t.Context(), "churn")
			if err != nil {
				t.Fatal(err)
			}
			if last := h[len(h)-1]; len(h) != 3 || last.Action != ActionCanaryPromote {
				t.Errorf("history ends with %+v after %d revisions; want 3, the last a promotion", last, len(h))
			}
			for _, s := range []*Service{r1, r2} {
				s.Tick(t.Context())
			}
			if n := f.audit.count(ActionCanaryPromote); n != 1 {
				t.Errorf("promoted %d times after another tick each, want once", n)
			}
		})
	}
}
