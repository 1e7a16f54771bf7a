package pgdb_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/internal/pgdb"
	"github.com/mlgate/mlgate/internal/pgdb/pgdbtest"
	"github.com/mlgate/mlgate/internal/testservers"
)

// counting is a schema whose migrations 2 and 3 each add a row to a table
// that migration 1 makes, so that the rows count how often they ran.
var counting = pgdb.Schema{Owner: "counting", FS: fstest.MapFS{
	"0001_table.sql": {Data: []byte("CREATE TABLE ran (version integer NOT NULL);\nCREATE INDEX ran_version ON ran (version);")},
	"0002_two.sql":   {Data: []byte("INSERT INTO ran VALUES (2);")},
	"0003_three.sql": {Data: []byte("INSERT INTO ran VALUES (3);")},
	"README.md":      {Data: []byte("not a migration")},
}}

// state returns the versions recorded for counting and the rows its
// migrations wrote.
func state(t *testing.T, pool *pgxpool.Pool) (recorded, ran string) {
	t.Helper()
	ctx := context.Background()
	err := pool.QueryRow(ctx, `SELECT string_agg(version || ':' || file, ',' ORDER BY version) FROM schema_migrations WHERE owner = 'counting'`).Scan(&recorded)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM ran`).Scan(&ran); err != nil {
		t.Fatalf("read ran: %v", err)
	}
	return recorded, ran
}

const wantRecorded, wantRan = "1:0001_table.sql,2:0002_two.sql,3:0003_three.sql", "2,3"

func TestMigrateFreshThenNoOp(t *testing.T) {
	ctx := context.Background()
	pool := pgdbtest.Open(t, testservers.Postgres(t))
	for i := range 2 {
		if err := pgdb.Migrate(ctx, pool, counting); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
		if rec, ran := state(t, pool); rec != wantRecorded || ran != wantRan {
			t.Fatalf("after Migrate #%d: recorded %q, ran %q; want %q, %q", i+1, rec, ran, wantRecorded, wantRan)
		}
	}
}

func TestMigrateAddsNewVersions(t *testing.T) {
	ctx := context.Background()
	pool := pgdbtest.Open(t, testservers.Postgres(t))
	first := pgdb.Schema{Owner: "counting", FS: fstest.MapFS{"0001_table.sql": counting.FS.(fstest.MapFS)["0001_table.sql"]}}
	if err := pgdb.Migrate(ctx, pool, first); err != nil {
		t.Fatal(err)
	}
	if err := pgdb.Migrate(ctx, pool, counting); err != nil {
		t.Fatal(err)
	}
	if rec, ran := state(t, pool); rec != wantRecorded || ran != wantRan {
		t.Fatalf("recorded %q, ran %q; want %q, %q", rec, ran, wantRecorded, wantRan)
	}
}

// TestMigrateConcurrently starts replicas at once on one database: each has
// its own pool, as separate processes would.
func TestMigrateConcurrently(t *testing.T) {
	dsn := testservers.Postgres(t)
	const replicas = 8
	pools := make([]*pgxpool.Pool, replicas)
	for i := range pools {
		pools[i] = pgdbtest.Open(t, dsn)
	}
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i, pool := range pools {
		wg.Go(func() { errs[i] = pgdb.Migrate(context.Background(), pool, counting) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}
	if rec, ran := state(t, pools[0]); rec != wantRecorded || ran != wantRan {
		t.Fatalf("recorded %q, ran %q; want each migration applied once: %q, %q", rec, ran, wantRecorded, wantRan)
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	pool := pgdbtest.Open(t, testservers.Postgres(t))
	if err := pgdb.Migrate(ctx, pool, counting); err != nil {
		t.Fatal(err)
	}
	// A newer mlgate applied a fourth migration.
	if _, err := pool.Exec(ctx, `INSERT INTO schema_migrations (owner, version, file) VALUES ('counting', 4, '0004_later.sql')`); err != nil {
		t.Fatal(err)
	}
	// Another schema, new to the database, is not applied either.
	other := pgdb.Schema{Owner: "other", FS: fstest.MapFS{"0001_t.sql": {Data: []byte("CREATE TABLE other_t (x int);")}}}
	err := pgdb.Migrate(ctx, pool, other, counting)
	if !errors.Is(err, pgdb.ErrSchemaTooNew) {
		t.Fatalf("Migrate over a newer schema = %v; want ErrSchemaTooNew", err)
	}
	for _, want := range []string{"counting schema is at version 4", "knows versions up to 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('other_t') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("the refused Migrate applied another schema (table exists %v, %v); want nothing changed", exists, err)
	}
}

func TestMigrateFailureChangesNothing(t *testing.T) {
	ctx := context.Background()
	pool := pgdbtest.Open(t, testservers.Postgres(t))
	broken := pgdb.Schema{Owner: "broken", FS: fstest.MapFS{
		"0001_ok.sql":  {Data: []byte("CREATE TABLE broken_t (x int);")},
		"0002_bad.sql": {Data: []byte("CREATE TABLE broken_t (x int);")},
	}}
	err := pgdb.Migrate(ctx, pool, broken)
	if err == nil || !strings.Contains(err.Error(), "0002_bad.sql") {
		t.Fatalf("Migrate with a failing migration = %v; want an error naming 0002_bad.sql", err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('broken_t') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("after a failed Migrate migration 1's table exists (%v, %v); want nothing applied", exists, err)
	}
}

func TestSchemaFilesChecked(t *testing.T) {
	file := &fstest.MapFile{Data: []byte("SELECT 1;")}
	tests := []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{"gap", fstest.MapFS{"0001_a.sql": file, "0003_c.sql": file}, "0003_c.sql has version 3; want 2"},
		{"repeat", fstest.MapFS{"0001_a.sql": file, "0001_b.sql": file}, "has version 1; want 2"},
		{"no version", fstest.MapFS{"init.sql": file}, "init.sql: want a name <version>_<what>.sql"},
		{"version zero", fstest.MapFS{"0000_a.sql": file}, "0000_a.sql: want a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The files are checked before the database is touched.
			err := pgdb.Migrate(context.Background(), nil, pgdb.Schema{Owner: "s", FS: tt.files})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Migrate = %v; want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	const password = "s3cr3t-pw"
	tests := []struct {
		name string
		dsn  string
		want string
	}{
		{"empty", " ", "config key control_plane.postgres.dsn: must not be empty"},
		{"not a DSN", "postgres://mlgate:" + password + "@127.0.0.1:notaport/db", "config key control_plane.postgres.dsn: not a PostgreSQL connection string"},
		{"nobody listening", "postgres://mlgate:" + password + "@127.0.0.1:1/db?sslmode=disable", "connect to PostgreSQL (config key control_plane.postgres.dsn)"},
		{"key=value", "host=127.0.0.1 port=1 user=mlgate password=" + password + " sslmode=disable", "connect to PostgreSQL (config key control_plane.postgres.dsn)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, err := pgdb.Open(context.Background(), tt.dsn)
			if err == nil {
				pool.Close()
				t.Fatal("Open succeeded; want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open = %v; want an error saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("Open's error %q shows the password", err)
			}
		})
	}
}

func TestOpenConnectTimeout(t *testing.T) {
	// A server that accepts connections and never answers: only the connect
	// timeout (here the DSN's own, 1 s) ends the attempt.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	defer func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	}()
	start := time.Now()
	pool, err := pgdb.Open(context.Background(), fmt.Sprintf("postgres://mlgate@%s/db?connect_timeout=1&sslmode=disable", ln.Addr()))
	if err == nil {
		pool.Close()
		t.Fatal("Open succeeded; want a timeout")
	}
	if d := time.Since(start); d < time.Second/2 || d > 4*time.Second {
		t.Errorf("Open gave up after %v; want about 1 s (%v)", d, err)
	}
	if !strings.Contains(err.Error(), "config key control_plane.postgres.dsn") {
		t.Errorf("Open = %v; want an error naming the config key", err)
	}
}
