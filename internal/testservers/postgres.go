package testservers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres returns the DSN of a database of its own for the test: made on the
// server in TEST_POSTGRES_DSN (a postgres:// URL of a role allowed to create
// databases) and dropped when the test ends, connections and all.
func Postgres(tb testing.TB) string {
	tb.Helper()
	admin := lookup(tb, "TEST_POSTGRES_DSN", "a real PostgreSQL (deploy/postgres.sh start, then TEST_POSTGRES_DSN=postgres://mlgate@127.0.0.1:15432/postgres?sslmode=disable)")[0]
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("TEST_POSTGRES_DSN=%q: want a postgres:// URL", admin)
	}
	var b [6]byte
	rand.Read(b[:])
	db := dbName(tb.Name()) + "_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{db}.Sanitize()

	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE DATABASE " + ident); err != nil {
		tb.Fatalf("create test database %s: %v", db, err)
	}
	tb.Cleanup(func() {
		if err := exec("DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", db, err)
		}
	})
	u.Path = "/" + db
	return u.String()
}

// dbName makes a test's name into the start of a database name: lowercase
// letters, digits and underscores, short enough to leave room for a suffix
// within PostgreSQL's 63 bytes.
func dbName(test string) string {
	var sb strings.Builder
	sb.WriteString("t_")
	for _, r := range strings.ToLower(test) {
		if sb.Len() >= 48 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
	}
	return sb.String()
}

// RedisCluster returns the addresses of the test Redis Cluster's masters, in
// TEST_REDIS_CLUSTER_ADDRS (comma-separated). Tests share the cluster: each
// uses keys of its own (a cluster has no databases to hand out), and none
// flushes it.
func RedisCluster(tb testing.TB) []string {
	tb.Helper()
	return lookup(tb, "TEST_REDIS_CLUSTER_ADDRS", "a real Redis Cluster (deploy/redis-cluster.sh start, then TEST_REDIS_CLUSTER_ADDRS=127.0.0.1:17100,127.0.0.1:17101,127.0.0.1:17102)")
}
