#!/usr/bin/env bash
# deploy/with-services.sh COMMAND [ARG...]
#
# Runs COMMAND with this checkout's Redis, Cassandra, PostgreSQL and Redis Cluster up
# (deploy/redis.sh, deploy/cassandra.sh, deploy/postgres.sh, deploy/redis-cluster.sh,
# started side by side), and tells it where they are:
#   TEST_REDIS_ADDR=127.0.0.1:${REDIS_PORT:-16379}
#   TEST_CASSANDRA_HOSTS=127.0.0.1:${CASSANDRA_PORT:-19042}
#   TEST_CASSANDRA_CA=the node's certificate, for the tests that connect over TLS
#   TEST_POSTGRES_DSN=postgres://mlgate@127.0.0.1:${POSTGRES_PORT:-15432}/postgres?sslmode=disable
#   TEST_REDIS_CLUSTER_ADDRS=127.0.0.1:${REDIS_CLUSTER_PORT:-17100} and the next two, comma-separated
# Afterwards it stops the servers that it started (ones already running stay up),
# whatever COMMAND's outcome, and exits with COMMAND's status.
#
# A server that cannot start fails the run when CI is set (CI=true, as in CI).
# Otherwise it is a loud warning, and COMMAND runs without that server's variable,
# so the tests that need the server skip.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
started=()

in_ci() {
	case "${CI:-}" in
	"" | 0 | false | FALSE | False | no) return 1 ;;
	esac
}

cleanup() {
	local s
	for s in ${started[@]+"${started[@]}"}; do
		bash "$here/$s.sh" stop || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# up NAME... starts each deploy/NAME.sh that does not answer yet, all at once, and
# waits for them; NAME_ok (with - as _) says which answer afterwards.
up() {
	local name pids=() names=()
	for name in "$@"; do
		if bash "$here/$name.sh" status >/dev/null 2>&1; then
			echo "$name: already running; leaving it running afterwards" >&2
			printf -v "${name//-/_}_ok" 1
			continue
		fi
		# Stopped afterwards even when the start fails: a start that timed out leaves the process.
		started+=("$name")
		bash "$here/$name.sh" start &
		pids+=($!)
		names+=("$name")
	done
	local i
	for i in "${!pids[@]}"; do
		if wait "${pids[$i]}"; then
			printf -v "${names[$i]//-/_}_ok" 1
		else
			printf -v "${names[$i]//-/_}_ok" ''
		fi
	done
}

# export_if NAME VAR VALUE exports VAR=VALUE when NAME answers; otherwise it fails the
# run under CI, or warns and leaves VAR unset.
export_if() {
	local name=$1 var=$2 value=$3 ok
	ok=${name//-/_}_ok
	if [ -n "${!ok:-}" ]; then
		export "$var=$value"
		return 0
	fi
	unset "$var"
	if in_ci; then
		echo "FAILED: $name did not start, and CI=${CI} makes that a failure" >&2
		exit 1
	fi
	cat >&2 <<EOF

!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!! WARNING: $name did not start (see above). Running without $var:
!!! the tests that need $name will SKIP. In CI (CI=true) this is a failure.
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

EOF
}

if [ $# -eq 0 ]; then
	echo "usage: $0 COMMAND [ARG...]" >&2
	exit 2
fi

up redis cassandra postgres redis-cluster
export_if redis TEST_REDIS_ADDR "127.0.0.1:${REDIS_PORT:-16379}"
export_if cassandra TEST_CASSANDRA_HOSTS "127.0.0.1:${CASSANDRA_PORT:-19042}"
if [ -n "${TEST_CASSANDRA_HOSTS:-}" ]; then
	export TEST_CASSANDRA_CA="$here/../.cache/services/cassandra/node-${CASSANDRA_PORT:-19042}/tls/ca.pem"
fi
export_if postgres TEST_POSTGRES_DSN "postgres://mlgate@127.0.0.1:${POSTGRES_PORT:-15432}/postgres?sslmode=disable"
cluster_port=${REDIS_CLUSTER_PORT:-17100}
export_if redis-cluster TEST_REDIS_CLUSTER_ADDRS \
	"127.0.0.1:$cluster_port,127.0.0.1:$((cluster_port + 1)),127.0.0.1:$((cluster_port + 2))"
echo "services: TEST_REDIS_ADDR=${TEST_REDIS_ADDR:-(unset)} TEST_CASSANDRA_HOSTS=${TEST_CASSANDRA_HOSTS:-(unset)}" \
	"TEST_POSTGRES_DSN=${TEST_POSTGRES_DSN:-(unset)} TEST_REDIS_CLUSTER_ADDRS=${TEST_REDIS_CLUSTER_ADDRS:-(unset)}" >&2

"$@"
