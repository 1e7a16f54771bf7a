#!/usr/bin/env bash
# bench/with-redis.sh COMMAND [ARG...]
#
# Runs COMMAND (the benchmark) with a Redis of the benchmark's own up, on
# 127.0.0.1:${BENCH_REDIS_PORT:-16390}, and tells it where: TEST_REDIS_ADDR.
# The server is deploy/redis.sh's (REDIS_PORT selects its port, pidfile and log);
# afterwards it is stopped if this script started it (one already running stays up),
# whatever COMMAND's outcome, and the script exits with COMMAND's status.
#
# Why not deploy/with-services.sh, which `make test` uses: the benchmark needs no
# Cassandra, whose JVM would take CPU from the two the benchmark measures on and take
# tens of seconds to start; and the tests' Redis on port 16379 may be serving other
# tests at the same time, whose commands and CPU time would count in the benchmark's
# figures and round-trip check (and the benchmark's 20,000 rows would be in theirs).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${BENCH_REDIS_PORT:-16390}
started=

redis() { REDIS_PORT=$port bash "$root/deploy/redis.sh" "$@"; }

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	[ -z "$started" ] || redis stop || true
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

"$@"
rc=$?
exit $rc
