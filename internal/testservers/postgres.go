package testservers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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
	return database(tb, admin)
}

// database makes a database of the test's own on the server admin connects
// to, dropped when the test ends.
func database(tb testing.TB, admin string) string {
	tb.Helper()
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

// PrivatePostgres is a PostgreSQL server of one test's own, which the test
// may stop and start: the shared one serves every package's tests at once.
type PrivatePostgres struct {
	// DSN is a database of the test's own on the server.
	DSN    string
	tb     testing.TB
	script string
	env    []string
}

// privatePostgresPort is the private server's port; tests that use one do
// not run in parallel.
const privatePostgresPort = "15433"

// NewPrivatePostgres starts a PostgreSQL server on 127.0.0.1:15433 with the
// script that starts the shared one (deploy/postgres.sh), stopped when the
// test ends. It needs what Postgres needs.
func NewPrivatePostgres(tb testing.TB) *PrivatePostgres {
	tb.Helper()
	lookup(tb, "TEST_POSTGRES_DSN", "a real PostgreSQL (deploy/postgres.sh start, then TEST_POSTGRES_DSN=postgres://mlgate@127.0.0.1:15432/postgres?sslmode=disable)")
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		tb.Fatalf("find the module root: %v", err)
	}
	p := &PrivatePostgres{tb: tb, script: filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "deploy", "postgres.sh"),
		env: append(os.Environ(), "POSTGRES_PORT="+privatePostgresPort)}
	p.Start()
	tb.Cleanup(p.Stop)
	p.DSN = database(tb, "postgres://mlgate@127.0.0.1:"+privatePostgresPort+"/postgres?sslmode=disable")
	return p
}

// Start starts the server, and waits until it accepts connections.
func (p *PrivatePostgres) Start() { p.run("start") }

// Stop shuts the server down (fast: open transactions roll back).
func (p *PrivatePostgres) Stop() { p.run("stop") }

func (p *PrivatePostgres) run(command string) {
	p.tb.Helper()
	cmd := exec.Command("bash", p.script, command)
	cmd.Env = p.env
	if out, err := cmd.CombinedOutput(); err != nil {
		p.tb.Fatalf("deploy/postgres.sh %s on port %s: %v\n%s", command, privatePostgresPort, err, out)
	}
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
