package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	driftpg "github.com/mlgate/mlgate/drift/postgres"
	"github.com/mlgate/mlgate/featurestore/postgres"
	"github.com/mlgate/mlgate/internal/changes"
	changespg "github.com/mlgate/mlgate/internal/changes/postgres"
	"github.com/mlgate/mlgate/internal/pgdb/pgdbtest"
	"github.com/mlgate/mlgate/internal/testservers"
	registrypg "github.com/mlgate/mlgate/registry/postgres"
	routerpg "github.com/mlgate/mlgate/router/postgres"
)

// replica records the changes its feed applies, and fails those of names
// in fail.
type replica struct {
	mu      sync.Mutex
	applied []string
	fail    map[string]bool
}

func (r *replica) apply(_ context.Context, kind changes.Kind, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[name] {
		return errors.New("model file not there yet")
	}
	r.applied = append(r.applied, string(kind)+" "+name)
	return nil
}

func (r *replica) setFail(name string, fail bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail[name] = fail
}

func (r *replica) count(change string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.applied {
		if a == change {
			n++
		}
	}
	return n
}

// waitFor waits until every replica has applied change.
func waitFor(t *testing.T, change string, replicas ...*replica) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, r := range replicas {
		for r.count(change) == 0 {
			if time.Now().After(deadline) {
				r.mu.Lock()
				t.Fatalf("%q not applied within 5s; applied: %q", change, r.applied)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func open(t *testing.T, dsn string) *pgxpool.Pool {
	return pgdbtest.Open(t, dsn, registrypg.Schema, postgres.Schema, routerpg.Schema, driftpg.Schema, changespg.Schema)
}

func start(t *testing.T, pool *pgxpool.Pool) *replica {
	t.Helper()
	return startLogging(t, pool, io.Discard)
}

func startLogging(t *testing.T, pool *pgxpool.Pool, log io.Writer) *replica {
	t.Helper()
	r := &replica{fail: map[string]bool{}}
	f, err := changespg.New(context.Background(), pool, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.Start(r.apply)
	t.Cleanup(f.Close)
	return r
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestEveryTableLogsItsChanges: a committed write to each control-plane
// table reaches every replica's feed, as the kind of that table, once per
// commit; a rolled-back one reaches none.
func TestEveryTableLogsItsChanges(t *testing.T) {
	pool := open(t, testservers.Postgres(t))
	a, b := start(t, pool), start(t, pool)
	tests := []struct {
		sql  string
		want string
	}{
		{`INSERT INTO registry_models (name, model) VALUES ('churn', '{}')`, "model churn"},
		{`INSERT INTO featurestore_views (name, view) VALUES ('users', '{}')`, "view users"},
		{`INSERT INTO router_endpoints (name, endpoint) VALUES ('score', '{}')`, "endpoint score"},
		{`INSERT INTO drift_monitors (name, spec) VALUES ('inputs', '{}')`, "monitor inputs"},
		{`DELETE FROM drift_monitors WHERE name = 'inputs'`, "monitor inputs"},
	}
	for _, tt := range tests {
		before := a.count(tt.want)
		exec(t, pool, tt.sql)
		deadline := time.Now().Add(5 * time.Second)
		for a.count(tt.want) == before || b.count(tt.want) == before {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %q not applied on both replicas within 5s", tt.sql, tt.want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), `INSERT INTO router_endpoints (name, endpoint) VALUES ('never', '{}')`); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(context.Background())
	exec(t, pool, `UPDATE router_endpoints SET endpoint = '{"v":2}' WHERE name = 'score'`)
	waitFor(t, "endpoint score", a, b)
	if n := a.count("endpoint never"); n != 0 {
		t.Errorf("a rolled-back write was applied %d times", n)
	}
}

// TestChangesInCommitOrder: many writers at once; each replica applies the
// last change of each thing, and its applied revision ends at the log's.
func TestChangesInCommitOrder(t *testing.T) {
	pool := open(t, testservers.Postgres(t))
	r := start(t, pool)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				name := fmt.Sprintf("e%d-%d", w, i)
				exec(t, pool, `INSERT INTO router_endpoints (name, endpoint) VALUES ($1, '{}')`, name)
			}
		})
	}
	wg.Wait()
	for w := range 8 {
		for i := range 25 {
			waitFor(t, fmt.Sprintf("endpoint e%d-%d", w, i), r)
		}
	}
	var revs []int64
	rows, err := pool.Query(context.Background(), `SELECT revision FROM control_changes ORDER BY revision`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int64
		rows.Scan(&v)
		revs = append(revs, v)
	}
	if len(revs) != 200 || !slices.IsSorted(revs) {
		t.Fatalf("log holds %d revisions; want 200 in order", len(revs))
	}
}

// TestCatchUpAfterTheConnectionDrops: the server ends the feed's session;
// changes committed while it reconnects are applied once it is back.
func TestCatchUpAfterTheConnectionDrops(t *testing.T) {
	pool := open(t, testservers.Postgres(t))
	r := start(t, pool)
	exec(t, pool, `INSERT INTO router_endpoints (name, endpoint) VALUES ('first', '{}')`)
	waitFor(t, "endpoint first", r)
	exec(t, pool, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`, changespg.ApplicationName)
	for i := range 5 {
		exec(t, pool, `INSERT INTO router_endpoints (name, endpoint) VALUES ($1, '{}')`, fmt.Sprintf("while-away-%d", i))
	}
	for i := range 5 {
		waitFor(t, fmt.Sprintf("endpoint while-away-%d", i), r)
	}
}

// TestFailedChangeIsRetried: a change that fails to apply (a model file
// not fetched yet) is applied once it can be, without a new change.
func TestFailedChangeIsRetried(t *testing.T) {
	pool := open(t, testservers.Postgres(t))
	r := start(t, pool)
	r.setFail("churn", true)
	exec(t, pool, `INSERT INTO registry_models (name, model) VALUES ('churn', '{}')`)
	exec(t, pool, `INSERT INTO registry_models (name, model) VALUES ('other', '{}')`)
	waitFor(t, "model other", r)
	if r.count("model churn") != 0 {
		t.Fatal("applied while failing")
	}
	r.setFail("churn", false)
	waitFor(t, "model churn", r)
	time.Sleep(2 * changespg.PollInterval)
	if n := r.count("model churn"); n != 1 {
		t.Errorf("model churn applied %d times after it succeeded; want 1", n)
	}
}

// TestStartsAtTheLogsEnd: a replica starting now loads the stores as they
// are, so its feed does not apply what came before.
func TestStartsAtTheLogsEnd(t *testing.T) {
	pool := open(t, testservers.Postgres(t))
	exec(t, pool, `INSERT INTO router_endpoints (name, endpoint) VALUES ('old', '{}')`)
	r := start(t, pool)
	exec(t, pool, `INSERT INTO router_endpoints (name, endpoint) VALUES ('new', '{}')`)
	waitFor(t, "endpoint new", r)
	if n := r.count("endpoint old"); n != 0 {
		t.Errorf("a change from before the start applied %d times", n)
	}
}

// TestIdleFeedKeepsItsConnection: a feed that waits through several polls
// without a change keeps its connection (a poll's timeout is not a lost
// connection) and applies the next change.
func TestIdleFeedKeepsItsConnection(t *testing.T) {
	pool := open(t, testservers.Postgres(t))
	var log testservers.Log
	r := startLogging(t, pool, &log)
	time.Sleep(3*changespg.PollInterval + 100*time.Millisecond)
	exec(t, pool, `INSERT INTO drift_monitors (name, spec) VALUES ('late', '{}')`)
	waitFor(t, "monitor late", r)
	if strings.Contains(log.String(), "disconnected") {
		t.Errorf("an idle feed reconnected:\n%s", log.String())
	}
}
