// Package routertest holds the conformance suite that every router.Store
// backend runs: router/bolt (one gateway's file) and router/postgres (the
// store a fleet of gateways shares). A backend's test calls TestStore with a
// function that opens a new, empty store:
//
//	func TestStore(t *testing.T) {
//		routertest.TestStore(t, func(t *testing.T) router.Store {
//			s, err := bolt.Open(filepath.Join(t.TempDir(), "endpoints.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite checks the contract documented on router.Store and nothing more,
// so that it holds for any backend.
package routertest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/router"
)

// TestStore runs the Store conformance suite, one subtest per part of the
// contract. open must return a new, empty store each time it is called, and
// close it (if it needs closing) when the test ends.
func TestStore(t *testing.T, open func(t *testing.T) router.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s router.Store)
	}{
		{"SaveThenList", testSaveThenList},
		{"SaveReplacesAndAppendsHistory", testSaveReplacesAndAppendsHistory},
		{"HistoryOfMissingEndpoint", testHistoryOfMissingEndpoint},
		{"Delete", testDelete},
		{"CanaryRoundTrips", testCanaryRoundTrips},
		{"FailedSaveKeepsPreviousState", testFailedSaveKeepsPreviousState},
		{"SaveFollowsStoredRevision", testSaveFollowsStoredRevision},
		{"ConcurrentSaves", func(t *testing.T, s router.Store) { SaveConcurrently(t, s, s) }},
		{"ConcurrentSavesOfOneRevision", func(t *testing.T, s router.Store) { SaveOneRevisionConcurrently(t, s, s) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

// t0 is a fixed instant in UTC, which every backend can store exactly.
var t0 = time.Date(2024, 5, 17, 9, 30, 15, 123456789, time.UTC)

// sample returns the endpoint name at revision rev, with a policy that
// names the revision, so that two revisions never look alike.
func sample(name string, rev int) router.Endpoint {
	rate := 0.25
	return router.Endpoint{
		Name: name,
		Policy: router.Policy{
			Variants: []router.Variant{
				{Name: "blue", Model: "fraud@champion", Weight: 100 - rev%100},
				{Name: "green", Model: fmt.Sprintf("fraud:%d", rev), Weight: rev%100 + 1},
			},
			Sticky: &router.Sticky{Entity: "user_id"},
			Shadow: &router.Shadow{Model: "fraud@challenger", Percent: 12.5},
			Table:  &router.Table{Sample: &rate, PII: []string{"email", "card"}},
		},
		Revision:  rev,
		Salt:      name,
		CreatedAt: t0,
		UpdatedAt: t0.Add(time.Duration(rev) * time.Minute),
	}
}

// revisionOf returns the history entry of e, made by actor.
func revisionOf(e router.Endpoint, actor string) router.Revision {
	return router.Revision{
		Revision: e.Revision, Time: e.UpdatedAt, Actor: actor,
		Action: router.ActionSetPolicy, Policy: e.Policy, Canary: e.Canary,
	}
}

// canary returns a canary in the middle of its schedule, with figures.
func canary() *router.Canary {
	return &router.Canary{
		Spec: router.CanarySpec{
			Model: "fraud:7", Steps: []int{5, 25, 100}, Interval: router.Duration(90 * time.Second),
			Analysis:     router.Analysis{MaxErrorRate: 0.01, MaxP99LatencyMs: 40, MinRequests: 200, MaxPredictionShift: 0.1},
			PromoteAlias: "champion",
		},
		State:         router.CanaryPaused,
		Step:          1,
		StepStartedAt: t0.Add(3 * time.Minute),
		Reason:        "paused by alice",
		Figures:       map[string]float64{"error_rate": 0.002, "p99_latency_ms": 31.5},
		Baseline:      []router.Variant{{Name: "blue", Model: "fraud@champion", Weight: 100}},
	}
}

func save(t *testing.T, s router.Store, e router.Endpoint, r router.Revision) {
	t.Helper()
	if err := s.Save(context.Background(), e, r); err != nil {
		t.Fatalf("Save(%s, revision %d): %v", e.Name, r.Revision, err)
	}
}

func endpoints(t *testing.T, s router.Store) []router.Endpoint {
	t.Helper()
	eps, err := s.Endpoints(context.Background())
	if err != nil {
		t.Fatalf("Endpoints: %v", err)
	}
	// The contract promises no order.
	slices.SortFunc(eps, func(a, b router.Endpoint) int { return cmp.Compare(a.Name, b.Name) })
	return eps
}

func history(t *testing.T, s router.Store, name string) []router.Revision {
	t.Helper()
	h, err := s.History(context.Background(), name)
	if err != nil {
		t.Fatalf("History(%s): %v", name, err)
	}
	return h
}

func asJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v (%v)", v, err)
	}
	return string(b)
}

func checkEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, asJSON(got), asJSON(want))
	}
}

func testSaveThenList(t *testing.T, s router.Store) {
	checkEqual(t, "Endpoints of an empty store", len(endpoints(t, s)), 0)
	var want []router.Endpoint
	for _, name := range []string{"fraud", "churn", "Ads", "ads-v2"} {
		e := sample(name, 1)
		save(t, s, e, revisionOf(e, "alice"))
		want = append(want, e)
	}
	slices.SortFunc(want, func(a, b router.Endpoint) int { return cmp.Compare(a.Name, b.Name) })
	checkEqual(t, "Endpoints after four Saves", endpoints(t, s), want)
}

func testSaveReplacesAndAppendsHistory(t *testing.T, s router.Store) {
	other := sample("other", 1)
	save(t, s, other, revisionOf(other, "bob"))
	var want []router.Revision
	// Twelve revisions, so that an order by anything but Save order (such as
	// numbers sorted as text) shows.
	actors := []string{"alice", "bob", "canary-controller", "carol"}
	for i := range 12 {
		e := sample("fraud", i+1)
		r := revisionOf(e, actors[i%len(actors)])
		save(t, s, e, r)
		want = append(want, r)
		checkEqual(t, fmt.Sprintf("Endpoints after Save #%d", i+1), endpoints(t, s), []router.Endpoint{e, other})
	}
	checkEqual(t, "History (oldest first)", history(t, s, "fraud"), want)
	checkEqual(t, "History of the other endpoint", history(t, s, "other"), []router.Revision{revisionOf(other, "bob")})
}

func testHistoryOfMissingEndpoint(t *testing.T, s router.Store) {
	e := sample("present", 1)
	save(t, s, e, revisionOf(e, "alice"))
	for _, name := range []string{"missing", "Present", "presen"} {
		if h := history(t, s, name); len(h) != 0 {
			t.Errorf("History(%s) = %s; want none", name, asJSON(h))
		}
	}
}

func testDelete(t *testing.T, s router.Store) {
	ctx := context.Background()
	kept := sample("kept", 1)
	save(t, s, kept, revisionOf(kept, "alice"))
	for rev := 1; rev <= 3; rev++ {
		e := sample("gone", rev)
		save(t, s, e, revisionOf(e, "alice"))
	}
	tests := []struct {
		name string
		del  string
	}{
		{"existing", "gone"},
		{"deleted already", "gone"},
		{"never saved", "never"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Delete(ctx, tt.del); err != nil {
				t.Fatalf("Delete(%s): %v", tt.del, err)
			}
			checkEqual(t, "Endpoints after Delete", endpoints(t, s), []router.Endpoint{kept})
			if h := history(t, s, "gone"); len(h) != 0 {
				t.Errorf("History(gone) after Delete = %s; want none", asJSON(h))
			}
			checkEqual(t, "History(kept) after Delete", history(t, s, "kept"), []router.Revision{revisionOf(kept, "alice")})
		})
	}
	// A new endpoint of the deleted name starts a new history.
	e := sample("gone", 1)
	save(t, s, e, revisionOf(e, "bob"))
	checkEqual(t, "History of a re-created endpoint", history(t, s, "gone"), []router.Revision{revisionOf(e, "bob")})
}

func testCanaryRoundTrips(t *testing.T, s router.Store) {
	tests := []struct {
		name   string
		canary func() *router.Canary
	}{
		{"paused with figures", canary},
		{"running, no figures yet", func() *router.Canary {
			c := canary()
			c.State, c.Step, c.Reason, c.Figures = router.CanaryRunning, 0, "", nil
			return c
		}},
		{"rolled back", func() *router.Canary {
			c := canary()
			c.State, c.Reason = router.CanaryRolledBack, "error rate 0.04 above max_error_rate 0.01"
			return c
		}},
		{"none", func() *router.Canary { return nil }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sample("canaried", i+1)
			e.Canary = tt.canary()
			r := revisionOf(e, "canary-controller")
			r.Action = router.ActionCanaryAdvance
			save(t, s, e, r)
			checkEqual(t, "Endpoints", endpoints(t, s), []router.Endpoint{e})
			h := history(t, s, "canaried")
			checkEqual(t, "last revision", h[len(h)-1], r)
		})
	}
}

// testFailedSaveKeepsPreviousState provokes a Save that fails: an endpoint
// or revision holding NaN, which JSON cannot write. A backend that can store
// NaN leaves nothing to provoke this way, and the case is skipped.
func testFailedSaveKeepsPreviousState(t *testing.T, s router.Store) {
	ctx := context.Background()
	before := sample("fraud", 1)
	save(t, s, before, revisionOf(before, "alice"))
	tests := []struct {
		name  string
		spoil func(e *router.Endpoint, r *router.Revision)
	}{
		{"endpoint", func(e *router.Endpoint, _ *router.Revision) { e.Policy.Shadow.Percent = math.NaN() }},
		{"revision", func(_ *router.Endpoint, r *router.Revision) {
			r.Canary = canary()
			r.Canary.Figures["error_rate"] = math.NaN()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sample("fraud", 2)
			e.Policy.Shadow = &router.Shadow{Model: "fraud@challenger"}
			r := revisionOf(e, "mallory")
			tt.spoil(&e, &r)
			if err := s.Save(ctx, e, r); err == nil {
				t.Skip("the backend stored NaN: no Save failure to provoke this way")
			}
			checkEqual(t, "Endpoints after a failed Save", endpoints(t, s), []router.Endpoint{before})
			checkEqual(t, "History after a failed Save", history(t, s, "fraud"), []router.Revision{revisionOf(before, "alice")})
		})
	}
}

// testSaveFollowsStoredRevision saves revisions that follow the stored one
// and revisions that do not, step by step: each of the latter is refused
// with ErrConflict and changes nothing.
func testSaveFollowsStoredRevision(t *testing.T, s router.Store) {
	ctx := context.Background()
	steps := []struct {
		name   string
		delete string // deleted before the Save
		e      router.Endpoint
		ok     bool
	}{
		{name: "first revision of a new endpoint", e: sample("fraud", 1), ok: true},
		{name: "first revision of an existing endpoint", e: sample("fraud", 1)},
		{name: "next revision", e: sample("fraud", 2), ok: true},
		{name: "the revision stored already", e: sample("fraud", 2)},
		{name: "an older revision", e: sample("fraud", 1)},
		{name: "a revision skipping one", e: sample("fraud", 4)},
		{name: "a later revision of a missing endpoint", e: sample("churn", 2)},
		{name: "revision 0", e: sample("churn", 0)},
		{name: "next revision after refusals", e: sample("fraud", 3), ok: true},
		{name: "a revision of an endpoint deleted meanwhile", delete: "fraud", e: sample("fraud", 4)},
		{name: "first revision of a re-created endpoint", e: sample("fraud", 1), ok: true},
	}
	stored := map[string]router.Endpoint{}
	histories := map[string][]router.Revision{}
	for _, st := range steps {
		if st.delete != "" {
			if err := s.Delete(ctx, st.delete); err != nil {
				t.Fatalf("%s: Delete(%s): %v", st.name, st.delete, err)
			}
			delete(stored, st.delete)
			delete(histories, st.delete)
		}
		r := revisionOf(st.e, "alice")
		err := s.Save(ctx, st.e, r)
		switch {
		case st.ok && err != nil:
			t.Fatalf("%s: Save(%s, revision %d): %v", st.name, st.e.Name, st.e.Revision, err)
		case !st.ok && !errors.Is(err, router.ErrConflict):
			t.Fatalf("%s: Save(%s, revision %d) = %v; want an error matching router.ErrConflict", st.name, st.e.Name, st.e.Revision, err)
		case st.ok:
			stored[st.e.Name] = st.e
			histories[st.e.Name] = append(histories[st.e.Name], r)
		}
		want := slices.SortedFunc(maps.Values(stored), func(a, b router.Endpoint) int { return cmp.Compare(a.Name, b.Name) })
		if want == nil {
			want = []router.Endpoint{}
		}
		got := endpoints(t, s)
		if got == nil {
			got = []router.Endpoint{}
		}
		checkEqual(t, st.name+": Endpoints", got, want)
		for _, name := range []string{"fraud", "churn"} {
			h := history(t, s, name)
			if len(h) == 0 && len(histories[name]) == 0 {
				continue
			}
			checkEqual(t, st.name+": History("+name+")", h, histories[name])
		}
	}
}

// SaveConcurrently races Saves of one endpoint through each store, 25
// writers per store, each saving the revision that follows the one it reads
// and trying again when refused, until each has saved one. It checks that
// the history holds every revision once, in order, and that the endpoint is
// the last one: Saves take turns and none is lost or overwritten, whichever
// store they come through. Pass one store more than once to race its own
// Saves; pass stores on one database to race replicas.
func SaveConcurrently(t *testing.T, stores ...router.Store) {
	t.Helper()
	ctx := context.Background()
	const each = 25
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*each)
	for i, s := range stores {
		for range each {
			wg.Go(func() {
				for {
					eps, err := s.Endpoints(ctx)
					if err != nil {
						errs <- err
						return
					}
					rev := 1
					for _, e := range eps {
						if e.Name == "shared" {
							rev = e.Revision + 1
						}
					}
					e := sample("shared", rev)
					err = s.Save(ctx, e, revisionOf(e, fmt.Sprintf("replica-%d", i)))
					if !errors.Is(err, router.ErrConflict) {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	total := len(stores) * each
	want := make([]int, total)
	for k := range want {
		want[k] = k + 1
	}
	for i, s := range stores {
		h := history(t, s, "shared")
		revs := make([]int, len(h))
		for k, r := range h {
			revs[k] = r.Revision
		}
		if !slices.Equal(revs, want) {
			t.Errorf("store %d: History holds revisions %v; want 1..%d in order", i, revs, total)
		}
		checkEqual(t, fmt.Sprintf("store %d: Endpoints", i), endpoints(t, s), []router.Endpoint{sample("shared", total)})
	}
}

// SaveOneRevisionConcurrently races Saves of the same revision of one
// endpoint, 10 per store, as replicas that changed the same state at once:
// exactly one is saved, the others are refused with ErrConflict, and the
// endpoint and history are the one that was saved.
func SaveOneRevisionConcurrently(t *testing.T, stores ...router.Store) {
	t.Helper()
	ctx := context.Background()
	first := sample("shared", 1)
	save(t, stores[0], first, revisionOf(first, "alice"))
	const each = 10
	type result struct {
		actor string
		err   error
	}
	results := make(chan result, len(stores)*each)
	var wg sync.WaitGroup
	for i, s := range stores {
		for j := range each {
			wg.Go(func() {
				actor := fmt.Sprintf("replica-%d-%d", i, j)
				e := sample("shared", 2)
				results <- result{actor, s.Save(ctx, e, revisionOf(e, actor))}
			})
		}
	}
	wg.Wait()
	close(results)
	var saved []string
	for r := range results {
		switch {
		case r.err == nil:
			saved = append(saved, r.actor)
		case !errors.Is(r.err, router.ErrConflict):
			t.Errorf("Save by %s = %v; want nil or an error matching router.ErrConflict", r.actor, r.err)
		}
	}
	if len(saved) != 1 {
		t.Fatalf("%d Saves of revision 2 succeeded (%v); want exactly one", len(saved), saved)
	}
	second := sample("shared", 2)
	for i, s := range stores {
		checkEqual(t, fmt.Sprintf("store %d: Endpoints", i), endpoints(t, s), []router.Endpoint{second})
		checkEqual(t, fmt.Sprintf("store %d: History", i), history(t, s, "shared"),
			[]router.Revision{revisionOf(first, "alice"), revisionOf(second, saved[0])})
	}
}
