package router

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/changes"
	"github.com/mlgate/mlgate/internal/clock"
)

// memStore is a Store in memory.
type memStore struct {
	mu        sync.Mutex
	endpoints map[string]Endpoint
	history   map[string][]Revision
}

func newMemStore() *memStore {
	return &memStore{endpoints: map[string]Endpoint{}, history: map[string][]Revision{}}
}

func (s *memStore) Endpoints(context.Context) ([]Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Endpoint, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		out = append(out, e)
	}
	return out, nil
}

func (s *memStore) Save(_ context.Context, e Endpoint, r Revision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stored := s.endpoints[e.Name].Revision; stored != e.Revision-1 {
		return RevisionConflict(e.Name, e.Revision, stored)
	}
	s.endpoints[e.Name] = e
	s.history[e.Name] = append(s.history[e.Name], r)
	return nil
}

func (s *memStore) Delete(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.endpoints, name)
	delete(s.history, name)
	return nil
}

func (s *memStore) History(_ context.Context, name string) ([]Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Revision(nil), s.history[name]...), nil
}

// allModels accepts every reference and reports each alias it moves.
type allModels struct{ promoted chan string }

func (allModels) Check(context.Context, ModelRef) error { return nil }

func (m allModels) Promote(_ context.Context, _ string, ref ModelRef, alias string) error {
	m.promoted <- alias + " -> " + ref.String()
	return nil
}

// TestService_CanaryControllerOnClock: the controller Start runs judges a
// canary on the service's clock. The first step starts when the canary
// does, advances once its interval has passed on that clock, and the last
// step promotes the canary and moves its alias.
func TestService_CanaryControllerOnClock(t *testing.T) {
	start := time.Date(2026, 11, 9, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	actions := make(chan string, 16)
	audit := func(_ context.Context, _, action, _ string, _, _ any) error {
		actions <- action
		return nil
	}
	models := allModels{promoted: make(chan string, 1)}
	s, err := NewService(t.Context(), newMemStore(), models, audit, slog.New(slog.DiscardHandler), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, _, err := s.Put(ctx, "alice", "churn", Policy{Variants: []Variant{{Name: "control", Model: "churn/7", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	spec := CanarySpec{Model: "churn/8", Steps: []int{50, 100}, Interval: Duration(time.Minute), PromoteAlias: "champion"}
	if _, err := s.StartCanary(ctx, "alice", "churn", spec); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{ActionCreate, ActionCanaryStart} {
		if got := <-actions; got != want {
			t.Fatalf("audited %s, want %s", got, want)
		}
	}
	s.Start(10 * time.Second)
	defer s.Close()
	for i, want := range []string{ActionCanaryAdvance, ActionCanaryPromote} {
		clk.Advance(time.Minute)
		select {
		case got := <-actions:
			if got != want {
				t.Fatalf("after %d minutes: %s, want %s", i+1, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("after %d minutes: no %s: the controller does not run on the service's clock", i+1, want)
		}
		e, _, err := s.Get("churn")
		if err != nil {
			t.Fatal(err)
		}
		if at := start.Add(time.Duration(i+1) * time.Minute); !e.UpdatedAt.Equal(at) {
			t.Errorf("%s at %v, want %v", want, e.UpdatedAt, at)
		}
	}
	if got := <-models.promoted; got != "champion -> churn/8" {
		t.Errorf("moved %s, want champion -> churn/8", got)
	}
}

// hubOf records what a service publishes and hands it to a subscriber.
type hubOf struct {
	published []string
	deliver   func(ctx context.Context, name string) error
}

func (h *hubOf) Publish(ctx context.Context, kind changes.Kind, name string) error {
	h.published = append(h.published, string(kind)+":"+name)
	if h.deliver == nil {
		return nil
	}
	return h.deliver(ctx, name)
}

// TestService_ChangesReachAnotherService: two services over one store, as
// two replicas are; every change one commits is published, and the other,
// reloading on it, serves the same route, then none once it is deleted. A
// reload of the service's own change keeps its route and stats.
func TestService_ChangesReachAnotherService(t *testing.T) {
	ctx := t.Context()
	store := newMemStore()
	noAudit := func(context.Context, string, string, string, any, any) error { return nil }
	log := slog.New(slog.DiscardHandler)
	other, err := NewService(ctx, store, allModels{}, noAudit, log)
	if err != nil {
		t.Fatal(err)
	}
	hub := &hubOf{deliver: other.Reload}
	s, err := NewService(ctx, store, allModels{}, noAudit, log, WithChanges(hub))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		change func() error
		want   map[string]int // the other service's endpoint → revision; absent means none
	}{
		{"create", func() error {
			_, _, err := s.Put(ctx, "alice", "churn", Policy{Variants: []Variant{{Name: "a", Model: "m/1", Weight: 1}}})
			return err
		}, map[string]int{"churn": 1}},
		{"set weights", func() error {
			_, err := s.SetWeights(ctx, "alice", "churn", map[string]int{"a": 3})
			return err
		}, map[string]int{"churn": 2}},
		{"delete", func() error { return s.Delete(ctx, "alice", "churn") }, map[string]int{}},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := map[string]int{}
		for _, r := range other.Routes() {
			got[r.Endpoint()] = r.Spec().Revision
		}
		if len(got) != len(st.want) || got["churn"] != st.want["churn"] {
			t.Errorf("after %s the other service serves %v, want %v", st.name, got, st.want)
		}
	}
	if want := "endpoint:churn,endpoint:churn,endpoint:churn"; strings.Join(hub.published, ",") != want {
		t.Errorf("published %q, want %q", hub.published, want)
	}

	if _, _, err := s.Put(ctx, "alice", "fraud", Policy{Variants: []Variant{{Name: "a", Model: "m/1", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Route("fraud")
	if err := s.Reload(ctx, "fraud"); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Route("fraud"); after != before {
		t.Error("reloading the service's own change replaced its route (and its stats)")
	}
}
