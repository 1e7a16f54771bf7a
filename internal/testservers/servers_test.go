package testservers_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/mlgate/mlgate/internal/testservers"
)

func TestPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := testservers.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	var one int
	var db string
	if err := conn.QueryRow(ctx, "SELECT 1, current_database()").Scan(&one, &db); err != nil {
		t.Fatalf("SELECT 1: %v", err)
	}
	if one != 1 || "/"+db != u.Path {
		t.Fatalf("SELECT 1, current_database() = %d, %q; want 1, %q", one, db, strings.TrimPrefix(u.Path, "/"))
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (k text PRIMARY KEY)"); err != nil {
		t.Fatalf("create a table in the test's database: %v", err)
	}
}

// TestPostgresOwnDatabase checks that two tests get different databases, and
// that a test's database is gone once it ends.
func TestPostgresOwnDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var first string
	t.Run("a", func(t *testing.T) { first = testservers.Postgres(t) })
	second := testservers.Postgres(t)
	if first == second {
		t.Fatalf("two tests got the same database: %s", first)
	}
	conn, err := pgx.Connect(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	u, _ := url.Parse(first)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", strings.TrimPrefix(u.Path, "/")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database of the finished subtest (%s) still exists", first)
	}
}

func TestRedisCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addrs := testservers.RedisCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER INFO: %v", err)
	}
	for _, want := range []string{"cluster_state:ok", "cluster_known_nodes:3", "cluster_size:3"} {
		if !strings.Contains(info, want+"\r\n") {
			t.Errorf("CLUSTER INFO lacks %q:\n%s", want, info)
		}
	}
	// Keys on every master: the client follows the slots.
	masters := map[string]bool{}
	for _, k := range []string{"testservers:a", "testservers:b", "testservers:c", "testservers:d", "testservers:e", "testservers:f"} {
		if err := c.Set(ctx, k, k, time.Minute).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		if got, err := c.Get(ctx, k).Result(); err != nil || got != k {
			t.Fatalf("GET %s = %q, %v", k, got, err)
		}
		n, err := c.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		masters[n.Options().Addr] = true
	}
	if len(masters) < 2 {
		t.Errorf("six keys all on one master (%v): is the cluster's keyspace split?", masters)
	}
}
