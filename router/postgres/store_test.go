package postgres_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/pgdb/pgdbtest"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/router/postgres"
	"github.com/mlgate/mlgate/router/routertest"
)

// open returns a pool on the database dsn, migrated to the router's schema,
// closed when the test ends: a gateway's start-up.
func TestStore(t *testing.T) {
	routertest.TestStore(t, func(t *testing.T) router.Store {
		return postgres.NewStore(pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema))
	})
}

// TestTwoReplicasSaveOneEndpoint has two stores on one database, each with
// its own pool as two gateways would, save revisions of one endpoint at
// once: every revision is kept once, in order, and the endpoint is the last
// one committed.
func TestTwoReplicasSaveOneEndpoint(t *testing.T) {
	dsn := testservers.Postgres(t)
	routertest.SaveConcurrently(t, postgres.NewStore(pgdbtest.Open(t, dsn, postgres.Schema)), postgres.NewStore(pgdbtest.Open(t, dsn, postgres.Schema)))
}

// TestTwoReplicasSaveOneRevision has two stores on one database save the
// same revision of one endpoint at once: one Save wins, the others are
// refused with router.ErrConflict.
func TestTwoReplicasSaveOneRevision(t *testing.T) {
	dsn := testservers.Postgres(t)
	routertest.SaveOneRevisionConcurrently(t, postgres.NewStore(pgdbtest.Open(t, dsn, postgres.Schema)), postgres.NewStore(pgdbtest.Open(t, dsn, postgres.Schema)))
}

func endpoint(rev int) router.Endpoint {
	at := time.Date(2024, 5, 17, 9, 30, 15, 123456789, time.UTC)
	return router.Endpoint{
		Name:     "fraud",
		Revision: rev,
		Salt:     "fraud",
		Policy: router.Policy{
			Variants: []router.Variant{{Name: "b", Model: "fraud:2", Weight: 3}, {Name: "a", Model: "fraud:1", Weight: 1}},
			Shadow:   &router.Shadow{Model: "fraud@challenger", Percent: 5},
		},
		CreatedAt: at,
		UpdatedAt: at.Add(time.Duration(rev) * time.Minute),
	}
}

// TestDocumentsAsWritten reads the rows in SQL: each is the JSON the router
// wrote, byte for byte (json, not jsonb, which would reorder its keys).
func TestDocumentsAsWritten(t *testing.T) {
	ctx := context.Background()
	pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
	s := postgres.NewStore(pool)
	e := endpoint(1)
	r := router.Revision{Revision: 1, Time: e.UpdatedAt, Actor: "alice", Action: router.ActionCreate, Policy: e.Policy}
	if err := s.Save(ctx, e, r); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		query string
		value any
	}{
		{`SELECT endpoint::text FROM router_endpoints WHERE name = 'fraud'`, e},
		{`SELECT revision::text FROM router_history WHERE endpoint = 'fraud'`, r},
	} {
		want, err := json.Marshal(tt.value)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := pool.QueryRow(ctx, tt.query).Scan(&got); err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if got != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.query, got, want)
		}
	}
}

// TestSaveFailingInTransaction makes the database refuse the history row,
// after the endpoint's row is written in the same transaction: the Save
// fails and the endpoint stays as it was.
func TestSaveFailingInTransaction(t *testing.T) {
	ctx := context.Background()
	pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
	s := postgres.NewStore(pool)
	before := endpoint(1)
	rev := router.Revision{Revision: 1, Actor: "alice", Action: router.ActionCreate, Policy: before.Policy}
	if err := s.Save(ctx, before, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'history refused by the test'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON router_history FOR EACH ROW EXECUTE FUNCTION refuse();`); err != nil {
		t.Fatal(err)
	}
	after := endpoint(2)
	err := s.Save(ctx, after, router.Revision{Revision: 2, Actor: "mallory", Action: router.ActionSetPolicy, Policy: after.Policy})
	if err == nil || !strings.Contains(err.Error(), "history refused by the test") {
		t.Fatalf("Save = %v; want the trigger's error", err)
	}
	eps, err := s.Endpoints(ctx)
	if err != nil || !reflect.DeepEqual(eps, []router.Endpoint{before}) {
		t.Errorf("Endpoints after a failed Save = %+v, %v; want only revision 1", eps, err)
	}
	h, err := s.History(ctx, "fraud")
	if err != nil || !reflect.DeepEqual(h, []router.Revision{rev}) {
		t.Errorf("History after a failed Save = %+v, %v; want only revision 1", h, err)
	}
}
