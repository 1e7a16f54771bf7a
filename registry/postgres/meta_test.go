package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/pgdb/pgdbtest"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/registry/postgres"
	"github.com/mlgate/mlgate/registry/registrytest"
)

// TestMetaStore runs the MetaStore suite, each subtest on a database of its
// own migrated to the registry's schema, as a gateway's start-up leaves it.
func TestMetaStore(t *testing.T) {
	registrytest.TestMetaStore(t, func(t *testing.T) registry.MetaStore {
		return postgres.NewMetaStore(pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema))
	})
}

// TestTwoReplicasUpdateOneModel has two stores on one database, each with
// its own pool as two gateways would, increment one model 50 times each.
func TestTwoReplicasUpdateOneModel(t *testing.T) {
	ctx := context.Background()
	dsn := testservers.Postgres(t)
	stores := []*postgres.MetaStore{postgres.NewMetaStore(pgdbtest.Open(t, dsn, postgres.Schema)), postgres.NewMetaStore(pgdbtest.Open(t, dsn, postgres.Schema))}
	const each = 50
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*each)
	for r, s := range stores {
		for i := range each {
			wg.Go(func() {
				errs <- s.Update(ctx, "shared", func(m *registry.Model) ([]registry.AuditEvent, error) {
					m.LastVersion++
					return []registry.AuditEvent{{
						Actor: fmt.Sprintf("replica-%d/%d", r, i), Action: registry.ActionSetTag,
						Model: "shared", Version: m.LastVersion, Time: time.Now(),
					}}, nil
				})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	const total = 2 * each
	for r, s := range stores {
		m, err := s.Model(ctx, "shared")
		if err != nil || m.LastVersion != total {
			t.Fatalf("replica %d: Model = %+v, %v; want LastVersion %d", r, m, err, total)
		}
	}
	evs, err := stores[1].Audit(ctx, registry.AuditQuery{Model: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != total {
		t.Fatalf("Audit returned %d events; want %d", len(evs), total)
	}
	// In Seq order the events carry 1..100: each update saw the one before,
	// whichever replica made it.
	for i, ev := range evs {
		if i > 0 && ev.Seq <= evs[i-1].Seq {
			t.Errorf("event %d: Seq %d after %d; want unique and ascending", i, ev.Seq, evs[i-1].Seq)
		}
		if ev.Version != i+1 {
			t.Errorf("event %d (Seq %d) carries LastVersion %d; want %d", i, ev.Seq, ev.Version, i+1)
		}
	}
}

// TestAuditTrailInSQL checks the columns an operator queries the trail by.
func TestAuditTrailInSQL(t *testing.T) {
	ctx := context.Background()
	pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
	s := postgres.NewMetaStore(pool)
	at := time.Date(2024, 5, 17, 9, 30, 15, 123456789, time.UTC)
	err := s.AppendAudit(ctx, []registry.AuditEvent{{Time: at, Actor: "alice", Action: "set_weights", Endpoint: "e1"}})
	if err != nil {
		t.Fatal(err)
	}
	var actor, action, endpoint string
	var model *string
	var when time.Time
	err = pool.QueryRow(ctx, `SELECT actor, action, model, endpoint, time FROM registry_audit`).Scan(&actor, &action, &model, &endpoint, &when)
	if err != nil {
		t.Fatal(err)
	}
	if actor != "alice" || action != "set_weights" || model != nil || endpoint != "e1" || !when.Equal(at.Truncate(time.Microsecond)) {
		t.Errorf("row = %q %q %v %q %v; want alice set_weights NULL e1 %v", actor, action, model, endpoint, when, at)
	}
	if evs, err := s.Audit(ctx, registry.AuditQuery{After: math.MaxUint64}); err != nil || len(evs) != 0 {
		t.Errorf("Audit after the largest Seq = %v, %v; want no events", evs, err)
	}
}

// TestRawJSONKeptByteForByte: a version's feature spec and baseline come
// back as the registry wrote them (encoding/json compacts them), key order
// and number spelling included, as from registry/bolt.
func TestRawJSONKeptByteForByte(t *testing.T) {
	ctx := context.Background()
	s := postgres.NewMetaStore(pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema))
	spec := json.RawMessage(`{"view": "users",  "features": ["b", "a"], "z": 1.50, "a": null}`)
	baseline := json.RawMessage(`{"bins":[1e3, 2.0]}`)
	err := s.Update(ctx, "m", func(m *registry.Model) ([]registry.AuditEvent, error) {
		m.Versions = []*registry.Version{{Name: "m", Version: 1, FeatureSpec: spec, Baseline: baseline}}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Model(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	compact := func(raw json.RawMessage) string {
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if v := m.Versions[0]; string(v.FeatureSpec) != compact(spec) || string(v.Baseline) != compact(baseline) {
		t.Errorf("feature spec, baseline = %s, %s; want %s, %s", v.FeatureSpec, v.Baseline, compact(spec), compact(baseline))
	}
}
