package router

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
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

func (allModels) CheckPromotion(context.Context, ModelRef, string) error { return nil }

func (m allModels) Promote(_ context.Context, _ string, ref ModelRef, alias string, _ bool) error {
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

// gatedModels guards alias "champion" as registry.protected_aliases does by
// default: a version takes its place only with status PASSED. status maps
// a model reference to its status (PENDING when absent).
type gatedModels struct {
	mu       sync.Mutex
	status   map[string]string
	promoted []string
}

func (*gatedModels) Check(context.Context, ModelRef) error { return nil }

func (m *gatedModels) CheckPromotion(_ context.Context, ref ModelRef, alias string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	got := cmp.Or(m.status[ref.String()], "PENDING")
	if alias == "champion" && got != "PASSED" {
		return conflict("alias %q is protected: %s is %s, PASSED is required", alias, ref, got)
	}
	return nil
}

func (m *gatedModels) Promote(_ context.Context, _ string, ref ModelRef, alias string, force bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if force {
		alias += " (forced)"
	}
	m.promoted = append(m.promoted, alias+" -> "+ref.String())
	return nil
}

func (m *gatedModels) set(ref, status string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status[ref] = status
}

// TestService_CanaryPromotionGate: a canary whose promotion would put a
// version without the status a protected alias requires in that alias's
// place (the alias it moves, or a baseline variant referring to it) is
// refused at start; one whose version loses the status while it runs is
// rolled back by the controller at promotion, with the reason, and a
// person's promote command is refused, the canary left as it was, unless
// forced, which the canary's reason and the alias move say.
func TestService_CanaryPromotionGate(t *testing.T) {
	ctx := t.Context()
	start := time.Date(2026, 11, 9, 12, 0, 0, 0, time.UTC)
	noAudit := func(context.Context, string, string, string, any, any) error { return nil }
	spec := func(model, alias string) CanarySpec {
		return CanarySpec{Model: model, Steps: []int{100}, Interval: Duration(time.Minute), PromoteAlias: alias}
	}
	starts := []struct {
		name     string
		baseline string
		spec     CanarySpec
		status   string
		want     string // substring of the refusal; "" means it starts
	}{
		{"pending into champion", "churn/7", spec("churn/8", "champion"), "", "churn/8 is PENDING, PASSED is required"},
		{"failed into champion", "churn/7", spec("churn/8", "champion"), "FAILED", "churn/8 is FAILED"},
		{"passed into champion", "churn/7", spec("churn/8", "champion"), "PASSED", ""},
		{"failed into an unprotected alias", "churn/7", spec("churn/8", "challenger"), "FAILED", ""},
		{"failed, no alias moved", "churn/7", spec("churn/8", ""), "FAILED", ""},
		{"failed in place of a variant on champion", "churn@champion", spec("churn/8", ""), "FAILED", "churn/8 is FAILED"},
		{"failed in place of a bare model name", "churn", spec("churn/8", ""), "FAILED", "churn/8 is FAILED"},
	}
	for _, tt := range starts {
		t.Run(tt.name, func(t *testing.T) {
			models := &gatedModels{status: map[string]string{"churn/8": tt.status}}
			s, err := NewService(ctx, newMemStore(), models, noAudit, slog.New(slog.DiscardHandler), WithClock(clock.NewFake(start)))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Put(ctx, "alice", "churn", Policy{Variants: []Variant{{Name: "control", Model: tt.baseline, Weight: 1}}}); err != nil {
				t.Fatal(err)
			}
			_, err = s.StartCanary(ctx, "alice", "churn", tt.spec)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "could not be promoted") {
				t.Fatalf("got %v, want a conflict saying %q", err, tt.want)
			}
			if e, _, _ := s.Get("churn"); e.Canary != nil || e.Revision != 1 {
				t.Errorf("the refused canary changed the endpoint: %+v", e)
			}
		})
	}

	// running starts a canary of churn/8, PASSED, into champion, then
	// has churn/8 lose the status.
	running := func(t *testing.T, clk clock.Clock) (*Service, *gatedModels) {
		t.Helper()
		models := &gatedModels{status: map[string]string{"churn/8": "PASSED"}}
		s, err := NewService(ctx, newMemStore(), models, noAudit, slog.New(slog.DiscardHandler), WithClock(clk))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Put(ctx, "alice", "churn", Policy{Variants: []Variant{{Name: "control", Model: "churn/7", Weight: 1}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.StartCanary(ctx, "alice", "churn", spec("churn/8", "champion")); err != nil {
			t.Fatal(err)
		}
		models.set("churn/8", "FAILED")
		return s, models
	}

	t.Run("forced promote command", func(t *testing.T) {
		s, models := running(t, clock.NewFake(start))
		if _, err := s.CanaryCommand(ctx, "root", "churn", "pause", true); !errors.Is(err, ErrInvalid) {
			t.Errorf("forced pause: got %v, want invalid", err)
		}
		e, err := s.CanaryCommand(ctx, "root", "churn", "promote", true)
		if err != nil {
			t.Fatalf("forced promote: %v", err)
		}
		if e.Canary.State != CanaryPromoted || !strings.Contains(e.Canary.Reason, "promoted by root, forced past: ") || !strings.Contains(e.Canary.Reason, "churn/8 is FAILED") {
			t.Errorf("canary %s with reason %q, want promoted, saying it was forced", e.Canary.State, e.Canary.Reason)
		}
		if want := []string{"champion (forced) -> churn/8"}; !slices.Equal(models.promoted, want) {
			t.Errorf("moved %v, want %v", models.promoted, want)
		}
	})

	t.Run("status lost while running", func(t *testing.T) {
		clk := clock.NewFake(start)
		s, models := running(t, clk)

		_, err := s.CanaryCommand(ctx, "bob", "churn", "promote", false)
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "churn/8 is FAILED") {
			t.Fatalf("promote command: got %v, want a conflict naming the status", err)
		}
		if e, _, _ := s.Get("churn"); e.Canary.State != CanaryRunning {
			t.Fatalf("after a refused promote command the canary is %s, want running", e.Canary.State)
		}

		clk.Advance(time.Minute)
		s.Tick(ctx)
		e, _, err := s.Get("churn")
		if err != nil {
			t.Fatal(err)
		}
		if e.Canary.State != CanaryRolledBack || !strings.HasPrefix(e.Canary.Reason, "promotion refused: ") || !strings.Contains(e.Canary.Reason, "churn/8 is FAILED") {
			t.Errorf("canary %s with reason %q, want rolled_back with the promotion's refusal", e.Canary.State, e.Canary.Reason)
		}
		if got := e.Policy.Variants[0]; got.Model != "churn/7" || got.Weight != 100 && got.Weight != 1 {
			t.Errorf("after the rollback the first variant is %+v, want the baseline churn/7", got)
		}
		if len(models.promoted) != 0 {
			t.Errorf("moved aliases %v, want none", models.promoted)
		}
	})
}
