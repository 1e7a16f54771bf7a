// Package registrytest holds the conformance suites of the registry's
// backends, each run against a real server (the embedded and local ones
// against real files): TestMetaStore for every registry.MetaStore
// (registry/bolt and registry/postgres), and TestArtifactStore for every
// registry.ArtifactStore (registry/localfs and registry/postgres). A
// backend's test calls a suite with a function that opens a new, empty
// store:
//
//	func TestStore(t *testing.T) {
//		registrytest.TestMetaStore(t, func(t *testing.T) registry.MetaStore {
//			s, err := bolt.Open(filepath.Join(t.TempDir(), "registry.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// A suite checks the contract documented on its interface and nothing more,
// so that it holds for any backend.
package registrytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/registry"
)

// TestMetaStore runs the MetaStore conformance suite, one subtest per part of
// the contract. open must return a new, empty store each time it is called;
// the suite closes it when the subtest ends.
func TestMetaStore(t *testing.T, open func(t *testing.T) registry.MetaStore) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s registry.MetaStore)
	}{
		{"NewModelHasOnlyName", testNewModelHasOnlyName},
		{"UpdateStoresModelAndEvents", testUpdateStoresModelAndEvents},
		{"UpdateErrorWritesNothing", testUpdateErrorWritesNothing},
		{"SeqAscending", testSeqAscending},
		{"ModelNotFound", testModelNotFound},
		{"ModelsOrderedByName", testModelsOrderedByName},
		{"Audit", testAudit},
		{"FnReceivesCopy", testFnReceivesCopy},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"AppendAudit", testAppendAudit},
		{"ProtectedAliases", testProtectedAliases},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.run(t, s)
		})
	}
}

var (
	errRefused = errors.New("registrytest: fn refused the change")
	// t0 is a fixed instant in UTC, which every backend can store exactly.
	t0 = time.Date(2024, 5, 17, 9, 30, 15, 123456789, time.UTC)
)

func testNewModelHasOnlyName(t *testing.T, s registry.MetaStore) {
	ctx := context.Background()
	calls := 0
	err := s.Update(ctx, "fresh", func(m *registry.Model) ([]registry.AuditEvent, error) {
		calls++
		if m == nil {
			return nil, errors.New("fn got a nil model")
		}
		if m.Name != "fresh" || !m.CreatedAt.IsZero() || !m.UpdatedAt.IsZero() ||
			len(m.Versions) != 0 || len(m.Aliases) != 0 || m.LastVersion != 0 {
			t.Errorf("fn got %+v for a new model; want a Model with only Name %q set", *m, "fresh")
		}
		m.CreatedAt = t0
		return nil, nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if calls != 1 {
		t.Errorf("fn called %d times; want 1", calls)
	}
	m := mustModel(t, s, "fresh")
	if m.Name != "fresh" || !m.CreatedAt.Equal(t0) {
		t.Errorf("Model after Update = name %q created %v; want %q created %v", m.Name, m.CreatedAt, "fresh", t0)
	}
}

func testUpdateStoresModelAndEvents(t *testing.T, s registry.MetaStore) {
	want := sampleModel("resnet")
	events := []registry.AuditEvent{
		sampleEvent("alice", registry.ActionRegisterVersion, "resnet", 1),
		sampleEvent("alice", registry.ActionSetAlias, "resnet", 1),
	}
	mustUpdate(t, s, "resnet", func(m *registry.Model) ([]registry.AuditEvent, error) {
		*m = *sampleModel("resnet")
		return events, nil
	})

	if got := mustModel(t, s, "resnet"); !reflect.DeepEqual(got, want) {
		t.Errorf("Model after Update:\n got %s\nwant %s", asJSON(got), asJSON(want))
	}
	// The next Update starts from what was stored.
	mustUpdate(t, s, "resnet", func(m *registry.Model) ([]registry.AuditEvent, error) {
		if !reflect.DeepEqual(m, want) {
			t.Errorf("second Update's fn got:\n %s\nwant %s", asJSON(m), asJSON(want))
		}
		return nil, nil
	})

	got := mustAudit(t, s, registry.AuditQuery{})
	if len(got) != len(events) {
		t.Fatalf("Audit returned %d events; want %d: %s", len(got), len(events), asJSON(got))
	}
	for i := range events {
		checkEvent(t, got[i], events[i])
	}
}

func testUpdateErrorWritesNothing(t *testing.T, s registry.MetaStore) {
	ctx := context.Background()
	mustUpdate(t, s, "kept", func(m *registry.Model) ([]registry.AuditEvent, error) {
		*m = *sampleModel("kept")
		return []registry.AuditEvent{sampleEvent("alice", registry.ActionRegisterVersion, "kept", 1)}, nil
	})
	before := mustAudit(t, s, registry.AuditQuery{})

	tests := []struct {
		name  string
		model string
	}{
		{"existing model", "kept"},
		{"new model", "never"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Update(ctx, tt.model, func(m *registry.Model) ([]registry.AuditEvent, error) {
				// Change everything, then refuse.
				m.CreatedAt = t0.Add(time.Hour)
				m.LastVersion = 99
				m.Versions = append(m.Versions, &registry.Version{Name: tt.model, Version: 99})
				m.Aliases = map[string]int{"champion": 99}
				return []registry.AuditEvent{
					sampleEvent("mallory", registry.ActionRegisterVersion, tt.model, 99),
					sampleEvent("mallory", registry.ActionSetAlias, tt.model, 99),
				}, fmt.Errorf("wrapped: %w", errRefused)
			})
			if !errors.Is(err, errRefused) {
				t.Fatalf("Update = %v; want the error fn returned", err)
			}
			if got := mustAudit(t, s, registry.AuditQuery{}); !reflect.DeepEqual(got, before) {
				t.Errorf("refused Update wrote audit events:\n got %s\nwant %s", asJSON(got), asJSON(before))
			}
		})
	}
	if got, want := mustModel(t, s, "kept"), sampleModel("kept"); !reflect.DeepEqual(got, want) {
		t.Errorf("refused Update changed the model:\n got %s\nwant %s", asJSON(got), asJSON(want))
	}
	if _, err := s.Model(ctx, "never"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Model(never) after a refused Update = %v; want ErrNotFound", err)
	}
	if names := modelNames(t, s); !reflect.DeepEqual(names, []string{"kept"}) {
		t.Errorf("Models after a refused Update = %q; want [kept]", names)
	}
}

func testSeqAscending(t *testing.T, s registry.MetaStore) {
	// Updates writing 1, 3, 0 and 2 events; Version numbers the events in the
	// order they were written.
	n := 0
	for _, count := range []int{1, 3, 0, 2} {
		mustUpdate(t, s, "m", func(m *registry.Model) ([]registry.AuditEvent, error) {
			var evs []registry.AuditEvent
			for range count {
				n++
				evs = append(evs, sampleEvent("alice", registry.ActionSetTag, "m", n))
			}
			return evs, nil
		})
	}
	got := mustAudit(t, s, registry.AuditQuery{})
	if len(got) != n {
		t.Fatalf("Audit returned %d events; want %d", len(got), n)
	}
	var last uint64
	for i, ev := range got {
		if ev.Seq == 0 || ev.Seq <= last {
			t.Errorf("event %d has Seq %d after Seq %d; want ascending, non-zero", i, ev.Seq, last)
		}
		if ev.Version != i+1 {
			t.Errorf("event %d is the one written as number %d; want events in the order written", i, ev.Version)
		}
		last = ev.Seq
	}
}

func testModelNotFound(t *testing.T, s registry.MetaStore) {
	mustUpdate(t, s, "present", func(m *registry.Model) ([]registry.AuditEvent, error) {
		m.CreatedAt = t0
		return nil, nil
	})
	for _, name := range []string{"absent", "Present", "presen", "present2", ""} {
		m, err := s.Model(context.Background(), name)
		if !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Model(%q) = %v, %v; want an error matching ErrNotFound", name, m, err)
		}
	}
}

func testModelsOrderedByName(t *testing.T, s registry.MetaStore) {
	if names := modelNames(t, s); len(names) != 0 {
		t.Errorf("Models of an empty store = %q; want none", names)
	}
	for _, name := range []string{"mid", "zeta", "alpha2", "alpha", "beta"} {
		mustUpdate(t, s, name, func(m *registry.Model) ([]registry.AuditEvent, error) {
			*m = *sampleModel(name)
			return nil, nil
		})
	}
	want := []string{"alpha", "alpha2", "beta", "mid", "zeta"}
	if names := modelNames(t, s); !reflect.DeepEqual(names, want) {
		t.Errorf("Models = %q; want %q", names, want)
	}
	// Models returns whole records, not just names.
	ms, err := s.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if want := sampleModel(m.Name); !reflect.DeepEqual(m, want) {
			t.Errorf("Models returned %s; want %s", asJSON(m), asJSON(want))
		}
	}
}

func testAudit(t *testing.T, s registry.MetaStore) {
	if got := mustAudit(t, s, registry.AuditQuery{}); len(got) != 0 {
		t.Errorf("Audit of an empty store = %s; want no events", asJSON(got))
	}
	// Events a/1, b/1, a/2, b/2, a/3 in separate updates, then a/4 and c/1.
	for _, ev := range []struct {
		model   string
		version int
	}{{"a", 1}, {"b", 1}, {"a", 2}, {"b", 2}, {"a", 3}, {"a", 4}, {"c", 1}} {
		mustUpdate(t, s, ev.model, func(m *registry.Model) ([]registry.AuditEvent, error) {
			return []registry.AuditEvent{sampleEvent("alice", registry.ActionRegisterVersion, ev.model, ev.version)}, nil
		})
	}
	all := mustAudit(t, s, registry.AuditQuery{})
	if len(all) != 7 {
		t.Fatalf("Audit returned %d events; want 7", len(all))
	}
	seq := func(i int) uint64 { return all[i].Seq } // Seq of the i-th event written

	tests := []struct {
		name string
		q    registry.AuditQuery
		want []string // model/version of the events, in order
	}{
		{"all", registry.AuditQuery{}, []string{"a/1", "b/1", "a/2", "b/2", "a/3", "a/4", "c/1"}},
		{"after", registry.AuditQuery{After: seq(2)}, []string{"b/2", "a/3", "a/4", "c/1"}},
		{"after the last", registry.AuditQuery{After: seq(6)}, nil},
		{"limit", registry.AuditQuery{Limit: 2}, []string{"a/1", "b/1"}},
		{"limit above count", registry.AuditQuery{Limit: 100}, []string{"a/1", "b/1", "a/2", "b/2", "a/3", "a/4", "c/1"}},
		{"after and limit", registry.AuditQuery{After: seq(1), Limit: 3}, []string{"a/2", "b/2", "a/3"}},
		{"model", registry.AuditQuery{Model: "b"}, []string{"b/1", "b/2"}},
		{"unknown model", registry.AuditQuery{Model: "zzz"}, nil},
		{"model and after", registry.AuditQuery{Model: "a", After: seq(2)}, []string{"a/3", "a/4"}},
		// The limit counts the events selected, not the events looked at.
		{"model and limit", registry.AuditQuery{Model: "a", Limit: 3}, []string{"a/1", "a/2", "a/3"}},
		{"model limit past others", registry.AuditQuery{Model: "c", Limit: 1}, []string{"c/1"}},
		{"model after and limit", registry.AuditQuery{Model: "b", After: seq(0), Limit: 1}, []string{"b/1"}},
		{"before", registry.AuditQuery{Before: seq(2)}, []string{"a/1", "b/1"}},
		{"newest", registry.AuditQuery{Newest: true}, []string{"c/1", "a/4", "a/3", "b/2", "a/2", "b/1", "a/1"}},
		{"newest and limit", registry.AuditQuery{Newest: true, Limit: 2}, []string{"c/1", "a/4"}},
		{"newest before", registry.AuditQuery{Newest: true, Before: seq(5)}, []string{"a/3", "b/2", "a/2", "b/1", "a/1"}},
		{"newest before and limit", registry.AuditQuery{Newest: true, Before: seq(5), Limit: 2}, []string{"a/3", "b/2"}},
		{"newest before the first", registry.AuditQuery{Newest: true, Before: seq(0)}, nil},
		{"newest before past the last", registry.AuditQuery{Newest: true, Before: seq(6) + 100, Limit: 1}, []string{"c/1"}},
		{"newest after", registry.AuditQuery{Newest: true, After: seq(4)}, []string{"c/1", "a/4"}},
		{"newest model and limit", registry.AuditQuery{Newest: true, Model: "a", Limit: 2}, []string{"a/4", "a/3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustAudit(t, s, tt.q)
			var ids []string
			for _, ev := range got {
				ids = append(ids, fmt.Sprintf("%s/%d", ev.Model, ev.Version))
			}
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("Audit(%+v) = %q; want %q", tt.q, ids, tt.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Seq <= got[i-1].Seq != tt.q.Newest {
					t.Errorf("Audit(%+v): Seq %d follows Seq %d; want them ascending, or descending for Newest", tt.q, got[i].Seq, got[i-1].Seq)
				}
			}
		})
	}
}

func testFnReceivesCopy(t *testing.T, s registry.MetaStore) {
	ctx := context.Background()
	want := sampleModel("m")
	var kept *registry.Model
	mustUpdate(t, s, "m", func(m *registry.Model) ([]registry.AuditEvent, error) {
		*m = *sampleModel("m")
		kept = m
		return nil, nil
	})
	// The model fn changed, after Update has returned.
	scribble(kept)
	if got := mustModel(t, s, "m"); !reflect.DeepEqual(got, want) {
		t.Errorf("changing the model fn was given changed the stored one:\n got %s\nwant %s", asJSON(got), asJSON(want))
	}

	// A model returned by Model or Models.
	scribble(mustModel(t, s, "m"))
	ms, err := s.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		scribble(m)
	}
	if got := mustModel(t, s, "m"); !reflect.DeepEqual(got, want) {
		t.Errorf("changing a returned model changed the stored one:\n got %s\nwant %s", asJSON(got), asJSON(want))
	}

	// fn is not handed a model returned earlier.
	earlier := mustModel(t, s, "m")
	mustUpdate(t, s, "m", func(m *registry.Model) ([]registry.AuditEvent, error) {
		if m == earlier || (len(m.Versions) > 0 && len(earlier.Versions) > 0 && m.Versions[0] == earlier.Versions[0]) {
			t.Error("fn was handed the model Model returned")
		}
		return nil, nil
	})
}

// scribble changes every part of m, down to the maps inside its versions.
func scribble(m *registry.Model) {
	m.LastVersion += 100
	m.CreatedAt = m.CreatedAt.Add(time.Hour)
	m.Aliases["scribbled"] = 1
	m.Aliases[registry.AliasChampion] = 7
	for _, v := range m.Versions {
		v.Tags["scribbled"] = "yes"
		v.Status = registry.StatusFailed
		v.Signature.Inputs[0].Shape[0] = 42
	}
	m.Versions[0] = &registry.Version{Name: "other"}
	m.Versions = append(m.Versions, &registry.Version{Name: "extra"})
}

func testConcurrentUpdates(t *testing.T, s registry.MetaStore) {
	ctx := context.Background()
	const writers, readers = 50, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers+3*readers)
	for i := range writers {
		wg.Go(func() {
			errs <- s.Update(ctx, "busy", func(m *registry.Model) ([]registry.AuditEvent, error) {
				m.LastVersion++
				return []registry.AuditEvent{sampleEvent(fmt.Sprintf("writer-%d", i), registry.ActionSetTag, "busy", m.LastVersion)}, nil
			})
		})
	}
	// Readers alongside the writers, which must see consistent records.
	for range readers {
		wg.Go(func() {
			if _, err := s.Models(ctx); err != nil {
				errs <- err
			}
			if _, err := s.Audit(ctx, registry.AuditQuery{Model: "busy"}); err != nil {
				errs <- err
			}
			if _, err := s.Model(ctx, "busy"); err != nil && !errors.Is(err, registry.ErrNotFound) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent use: %v", err)
		}
	}

	if m := mustModel(t, s, "busy"); m.LastVersion != writers {
		t.Errorf("LastVersion after %d concurrent increments = %d; want %d", writers, m.LastVersion, writers)
	}
	evs := mustAudit(t, s, registry.AuditQuery{Model: "busy"})
	if len(evs) != writers {
		t.Fatalf("Audit returned %d events; want %d", len(evs), writers)
	}
	// Each increment saw the one before it: the events, in Seq order, carry
	// the values 1..writers.
	for i, ev := range evs {
		if ev.Version != i+1 {
			t.Errorf("event %d carries LastVersion %d; want %d", i, ev.Version, i+1)
		}
	}
}

// sampleModel returns a model that uses every field, without empty slices or
// maps, whose nil-or-empty state a backend need not keep.
func sampleModel(name string) *registry.Model {
	version := func(n int, status registry.Status) *registry.Version {
		return &registry.Version{
			Name:        name,
			Version:     n,
			UUID:        fmt.Sprintf("00000000-0000-4000-8000-%012d", n),
			SHA256:      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			Size:        int64(1000 * n),
			CreatedAt:   t0.Add(time.Duration(n) * time.Minute),
			CreatedBy:   "alice",
			Description: "version " + fmt.Sprint(n) + " – ünïcode",
			Lineage:     registry.Lineage{Data: "s3://bucket/data", Code: "git:abc123", RunID: "run-7"},
			Tags:        map[string]string{registry.TagValidationStatus: string(status), "team": "vision"},
			Status:      status,
			Signature: registry.Signature{
				Inputs:  []registry.TensorSpec{{Name: "input", Datatype: "FP32", Shape: []int64{-1, 3, 224, 224}}},
				Outputs: []registry.TensorSpec{{Name: "probs", Datatype: "FP32", Shape: []int64{-1, 1000}}},
			},
			Batching: &registry.Batching{MaxBatchSize: 16 * n, MaxQueueDelay: registry.Duration(time.Duration(n) * 250 * time.Microsecond)},
		}
	}
	return &registry.Model{
		Name:        name,
		CreatedAt:   t0,
		UpdatedAt:   t0.Add(3 * time.Minute),
		Versions:    []*registry.Version{version(1, registry.StatusPassed), version(3, registry.StatusPending)},
		Aliases:     map[string]int{registry.AliasChampion: 1, "challenger": 3},
		LastVersion: 3,
	}
}

func sampleEvent(actor, action, model string, version int) registry.AuditEvent {
	return registry.AuditEvent{
		Time:    t0.Add(time.Duration(version) * time.Second),
		Actor:   actor,
		Action:  action,
		Model:   model,
		Version: version,
		Before:  json.RawMessage(`null`),
		After:   json.RawMessage(fmt.Sprintf(`{"alias":"champion","version":%d}`, version)),
	}
}

// checkEvent compares an event read back with the one written, whose Seq the
// store assigned. Before and After are compared as JSON values, as a backend
// may store them in another but equivalent form.
func checkEvent(t *testing.T, got, want registry.AuditEvent) {
	t.Helper()
	if got.Seq == 0 {
		t.Errorf("event %s/%d has no Seq", got.Model, got.Version)
	}
	if !got.Time.Equal(want.Time) || got.Actor != want.Actor || got.Action != want.Action ||
		got.Model != want.Model || got.Version != want.Version {
		t.Errorf("event = %s; want %s (apart from Seq)", asJSON(got), asJSON(want))
	}
	if !jsonEqual(t, got.Before, want.Before) || !jsonEqual(t, got.After, want.After) {
		t.Errorf("event before/after = %s / %s; want %s / %s", got.Before, got.After, want.Before, want.After)
	}
}

// jsonEqual reports whether a and b hold the same JSON value; an empty
// message counts as null.
func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	decode := func(raw json.RawMessage) any {
		if len(raw) == 0 {
			return nil
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Errorf("invalid JSON %q: %v", raw, err)
		}
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}

func mustUpdate(t *testing.T, s registry.MetaStore, name string, fn func(m *registry.Model) ([]registry.AuditEvent, error)) {
	t.Helper()
	if err := s.Update(context.Background(), name, fn); err != nil {
		t.Fatalf("Update(%q): %v", name, err)
	}
}

func mustModel(t *testing.T, s registry.MetaStore, name string) *registry.Model {
	t.Helper()
	m, err := s.Model(context.Background(), name)
	if err != nil {
		t.Fatalf("Model(%q): %v", name, err)
	}
	return m
}

func mustAudit(t *testing.T, s registry.MetaStore, q registry.AuditQuery) []registry.AuditEvent {
	t.Helper()
	evs, err := s.Audit(context.Background(), q)
	if err != nil {
		t.Fatalf("Audit(%+v): %v", q, err)
	}
	return evs
}

func modelNames(t *testing.T, s registry.MetaStore) []string {
	t.Helper()
	ms, err := s.Models(context.Background())
	if err != nil {
		t.Fatalf("Models: %v", err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	return names
}

func asJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// testAppendAudit checks that events outside any model record join the same
// trail, in order, and that the Endpoint filter selects them.
func testAppendAudit(t *testing.T, s registry.MetaStore) {
	ctx := context.Background()
	if err := s.Update(ctx, "m", func(m *registry.Model) ([]registry.AuditEvent, error) {
		m.CreatedAt = time.Now()
		return []registry.AuditEvent{{Action: "register_version", Model: "m"}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, []registry.AuditEvent{
		{Action: "create_endpoint", Endpoint: "e1"}, {Action: "set_weights", Endpoint: "e2"},
	}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Audit(ctx, registry.AuditQuery{})
	if err != nil || len(all) != 3 || all[1].Endpoint != "e1" || all[2].Seq <= all[1].Seq || all[1].Seq <= all[0].Seq {
		t.Fatalf("audit = %+v, %v", all, err)
	}
	e2, err := s.Audit(ctx, registry.AuditQuery{Endpoint: "e2"})
	if err != nil || len(e2) != 1 || e2[0].Action != "set_weights" {
		t.Errorf("audit for endpoint e2 = %+v, %v", e2, err)
	}
}
