#!/usr/bin/env bash
# bench/with-redis.sh COMMAND [ARG...]
#
# Runs COMMAND (the benchmark) with a Redis of the benchmark's own up, on
# 127.0.0.1:${BENCH_REDIS_PORT:-16390}, and a PostgreSQL of its own (the fleet
# scenario's control plane), on 127.0.0.1:${BENCH_POSTGRES_PORT:-15442}, and tells it
# where: TEST_REDIS_ADDR, TEST_POSTGRES_DSN (the admin DSN; the benchmark makes
# databases of its own on it). The servers are deploy/redis.sh's and
# deploy/postgres.sh's (REDIS_PORT and POSTGRES_PORT select their ports, pidfiles,
# logs and PostgreSQL's cluster); afterwards each is stopped if this script started it
# (one already running stays up), whatever COMMAND's outcome, and the script exits
# with COMMAND's status. A PostgreSQL that cannot start fails the run when CI is set;
# otherwise COMMAND runs without TEST_POSTGRES_DSN and the fleet scenario is skipped.
#
# Why not deploy/with-services.sh, which `make test` uses: the benchmark needs no
# Cassandra, whose JVM would take CPU from the two the benchmark measures on and take
# tens of seconds to start; and the tests' Redis on port 16379 may be serving other
# tests at the same time, whose commands and CPU time would count in the benchmark's
# figures and round-trip check (and the benchmark's 20,000 rows would be in theirs);
# the same goes for the tests' PostgreSQL on port 15432, whose CPU time the fleet
# scenario reports.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${BENCH_REDIS_PORT:-16390}
pg_port=${BENCH_POSTGRES_PORT:-15442}
started=
pg_started=

redis() { REDIS_PORT=$port bash "$root/deploy/redis.sh" "$@"; }
postgres() { POSTGRES_PORT=$pg_port bash "$root/deploy/postgres.sh" "$@"; }

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	[ -z "$started" ] || redis stop || true
	[ -z "$pg_started" ] || postgres stop || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ $# -eq 0 ]; then
	echo "usage: $0 COMMAND [ARG...]" >&2
	exit 2
fi

if redis status >/dev/null 2>&1; then
	echo "bench: Redis on 127.0.0.1:$port is already running; leaving it running afterwards" >&2
else
	# Stopped afterwards even when the start fails: a start that timed out leaves the process.
	started=1
	redis start || {
		echo "bench: FAILED: Redis did not start on 127.0.0.1:$port (BENCH_REDIS_PORT); the predict scenarios need it" >&2
		exit 1
	}
fi
export TEST_REDIS_ADDR=127.0.0.1:$port
echo "bench: TEST_REDIS_ADDR=$TEST_REDIS_ADDR" >&2

if postgres status >/dev/null 2>&1; then
	echo "bench: PostgreSQL on 127.0.0.1:$pg_port is already running; leaving it running afterwards" >&2
else
	pg_started=1
	postgres start || pg_started=failed
fi
if [ "$pg_started" = failed ]; then
	unset TEST_POSTGRES_DSN
	case "${CI:-}" in
	"" | 0 | false | FALSE | False | no)
		echo "bench: WARNING: PostgreSQL did not start on 127.0.0.1:$pg_port (BENCH_POSTGRES_PORT); the fleet scenario will be skipped" >&2
		;;
	*)
		echo "bench: FAILED: PostgreSQL did not start on 127.0.0.1:$pg_port (BENCH_POSTGRES_PORT), and CI=$CI makes that a failure" >&2
		exit 1
		;;
	esac
else
	export TEST_POSTGRES_DSN="postgres://mlgate@127.0.0.1:$pg_port/postgres?sslmode=disable"
	echo "bench: TEST_POSTGRES_DSN=$TEST_POSTGRES_DSN" >&2
fi

"$@"
rc=$?
exit $rc
