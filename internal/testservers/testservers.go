// Package testservers tells tests where the real Redis, Cassandra, PostgreSQL
// and Redis Cluster servers started by `make test` (deploy/with-services.sh)
// listen. Without them a test is skipped, except under CI=true, where a
// missing server fails it.
package testservers

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Redis returns the addresses in TEST_REDIS_ADDR (several, comma-separated,
// for a cluster).
func Redis(tb testing.TB) []string {
	tb.Helper()
	return lookup(tb, "TEST_REDIS_ADDR", "a real redis-server (deploy/redis.sh start, then TEST_REDIS_ADDR=127.0.0.1:16379)")
}

// Cassandra returns the contact points in TEST_CASSANDRA_HOSTS.
func Cassandra(tb testing.TB) []string {
	tb.Helper()
	return lookup(tb, "TEST_CASSANDRA_HOSTS", "a real Apache Cassandra (deploy/cassandra.sh start, then TEST_CASSANDRA_HOSTS=127.0.0.1:19042)")
}

// CassandraCA returns the file, in TEST_CASSANDRA_CA, holding the certificate
// that the test Cassandra presents to clients connecting over TLS.
func CassandraCA(tb testing.TB) string {
	tb.Helper()
	return lookup(tb, "TEST_CASSANDRA_CA", "the test Cassandra's certificate (deploy/cassandra.sh writes it to .cache/services/cassandra/node-19042/tls/ca.pem)")[0]
}

func lookup(tb testing.TB, env, what string) []string {
	tb.Helper()
	v := os.Getenv(env)
	if v == "" {
		if InCI() {
			tb.Fatalf("%s is not set: this test needs %s, and in CI a missing server is a failure", env, what)
		}
		tb.Skipf("%s is not set: skipping; this test needs %s", env, what)
	}
	var out []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// InCI reports whether the tests run in CI: CI set to anything but empty,
// 0, false or no.
func InCI() bool {
	switch strings.ToLower(os.Getenv("CI")) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// Python returns a Python interpreter with pyarrow, tritonclient and kserve
// (TEST_PYTHON, which `make test` sets up), for reading Parquet files with a
// reader that is not mlgate's and calling mlgate with the clients users
// call it with.
func Python(tb testing.TB) string {
	tb.Helper()
	return lookup(tb, "TEST_PYTHON", "Python with pyarrow, tritonclient and kserve (make pyclients, then TEST_PYTHON=.cache/pyenv/bin/python)")[0]
}

// FeastPython returns a Python interpreter with feast[redis] (TEST_FEAST_PYTHON,
// which `make feast` sets up in an environment of its own), for having Feast
// itself write and read its online store.
func FeastPython(tb testing.TB) string {
	tb.Helper()
	return lookup(tb, "TEST_FEAST_PYTHON", "Python with feast[redis] (make feast, then TEST_FEAST_PYTHON=.cache/feastenv/bin/python)")[0]
}

// SparkPython returns a Python interpreter with pyspark (TEST_SPARK_PYTHON,
// which `make spark` sets up in an environment of its own), for reading the
// inference table with Spark.
func SparkPython(tb testing.TB) string {
	tb.Helper()
	return lookup(tb, "TEST_SPARK_PYTHON", "Python with pyspark (make spark, then TEST_SPARK_PYTHON=.cache/sparkenv/bin/python)")[0]
}

// Chromium returns the path of the headless Chromium that TEST_CHROMIUM names
// (a path or a name on PATH; `make chromium` installs Debian's chromium), which
// the console's tests drive over the DevTools protocol.
func Chromium(tb testing.TB) string {
	tb.Helper()
	return program(tb, "TEST_CHROMIUM", "a headless Chromium", "chromium")
}

// Promtool returns the path of Prometheus's promtool (TEST_PROMTOOL, a path
// or a name on PATH; `make promtool` installs Debian's prometheus package,
// which has it), for checking a scrape of /metrics with `promtool check
// metrics`.
func Promtool(tb testing.TB) string {
	tb.Helper()
	return program(tb, "TEST_PROMTOOL", "Prometheus's promtool", "promtool")
}

// program returns the path of the program env names, which `make target`
// installs; without it the test skips, or fails in CI.
func program(tb testing.TB, env, what, target string) string {
	tb.Helper()
	name := lookup(tb, env, what+" (make "+target+", then "+env+"="+target+")")[0]
	path, err := exec.LookPath(name)
	if err != nil {
		if InCI() {
			tb.Fatalf("%s=%s: %v; in CI a missing %s is a failure (make %s installs it)", env, name, err, target, target)
		}
		tb.Skipf("%s=%s: %v: skipping (make %s installs it)", env, name, err, target)
	}
	return path
}
