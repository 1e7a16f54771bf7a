package main

// What the fleet scenario asks PostgreSQL itself: where it is, databases of
// the run's own, and the CPU time of its server processes.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// errSkip marks a scenario that cannot run here and is not a failure.
var errSkip = errors.New("SKIPPED")

// inCI reports whether the environment says this is CI (CI set, and not to
// a false value), where a missing server is a failure rather than a skip.
func inCI() bool {
	switch os.Getenv("CI") {
	case "", "0", "false", "FALSE", "False", "no":
		return false
	}
	return true
}

// postgresAdmin returns the admin DSN in TEST_POSTGRES_DSN, after checking
// that it answers. Without one, or when it does not answer, the error wraps
// errSkip unless in CI.
func postgresAdmin(ctx context.Context) (string, error) {
	dsn := strings.TrimSpace(os.Getenv("TEST_POSTGRES_DSN"))
	var err error
	if dsn == "" {
		err = errors.New("TEST_POSTGRES_DSN is not set: the fleet scenario needs a PostgreSQL server; `make bench` starts one of its own (bench/with-redis.sh), or start one (deploy/postgres.sh start) and set TEST_POSTGRES_DSN=postgres://mlgate@127.0.0.1:15432/postgres?sslmode=disable")
	} else if err = pgExec(ctx, dsn, "SELECT 1"); err != nil {
		err = fmt.Errorf("TEST_POSTGRES_DSN=%s does not answer: %w", redactDSN(dsn), err)
	}
	if err != nil && !inCI() {
		return "", fmt.Errorf("%w: %w", errSkip, err)
	}
	return dsn, err
}

func pgExec(ctx context.Context, dsn, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// createDatabase creates a database named prefix_<random> on the server of
// admin and returns its DSN and a function that drops it.
func createDatabase(ctx context.Context, admin, prefix string) (string, func() error, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("TEST_POSTGRES_DSN=%q: want a postgres:// URL", redactDSN(admin))
	}
	var b [6]byte
	rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{name}.Sanitize()
	if err := pgExec(ctx, admin, "CREATE DATABASE "+ident); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() error {
		if err := pgExec(context.Background(), admin, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// redactDSN hides a URL DSN's password.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// postgresCPU returns a function that reads the CPU time (user and system)
// the PostgreSQL server of dsn has used so far: its postmaster's, the
// children it has reaped, and its live children's, from /proc. It needs the
// server on this machine; elsewhere the function returns -1.
func postgresCPU(ctx context.Context, dsn string) (func() time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return nil, err
	}
	st, err := readStat(filepath.Join("/proc", strconv.Itoa(backend), "stat"))
	if err != nil {
		return func() time.Duration { return -1 }, nil
	}
	postmaster := st.ppid
	return func() time.Duration { return processTreeCPU("/proc", postmaster) }, nil
}

// processTreeCPU sums the CPU time of process pid under proc (a /proc),
// of its reaped children, and of its live children; -1 when pid's own
// figures cannot be read.
func processTreeCPU(proc string, pid int) time.Duration {
	root, err := readStat(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return -1
	}
	ticks := root.utime + root.stime + root.cutime + root.cstime
	entries, err := os.ReadDir(proc)
	if err != nil {
		return -1
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		// A process that exited meanwhile is in the parent's cutime.
		if st, err := readStat(filepath.Join(proc, e.Name(), "stat")); err == nil && st.ppid == pid {
			ticks += st.utime + st.stime
		}
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// procStat is what processTreeCPU reads of /proc/PID/stat, in clock ticks.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

// readStat parses /proc/PID/stat: pid (comm) state ppid ... with utime,
// stime, cutime and cstime the 14th to 17th fields. comm may hold spaces
// and parentheses, so the fields are counted from its last ')'.
func readStat(path string) (procStat, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(data))
}

func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("no command name in %q", s)
	}
	// Fields after comm: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("%d fields after the command name in %q, want at least 15", len(f), s)
	}
	var st procStat
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, err
	}
	for j, p := range []*int64{&st.utime, &st.stime, &st.cutime, &st.cstime} {
		if *p, err = strconv.ParseInt(f[11+j], 10, 64); err != nil {
			return procStat{}, err
		}
	}
	return st, nil
}
