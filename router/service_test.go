package router

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

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
