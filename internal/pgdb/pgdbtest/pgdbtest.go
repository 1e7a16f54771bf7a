// Package pgdbtest opens, for a test, a pool on a PostgreSQL database with
// the schemas of the stores under test applied.
package pgdbtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/internal/pgdb"
)

// Open opens a pool on dsn, closed when t ends, and applies schemas.
func Open(t testing.TB, dsn string, schemas ...pgdb.Schema) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgdb.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", "the test database", err)
	}
	t.Cleanup(pool.Close)
	if len(schemas) > 0 {
		if err := pgdb.Migrate(ctx, pool, schemas...); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}
