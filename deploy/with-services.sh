#!/usr/bin/env bash
# deploy/with-services.sh COMMAND [ARG...]
#
# Runs COMMAND with this checkout's Redis and Cassandra up (deploy/redis.sh,
# deploy/cassandra.sh), and tells it where they are:
#   TEST_REDIS_ADDR=127.0.0.1:${REDIS_PORT:-16379}
#   TEST_CASSANDRA_HOSTS=127.0.0.1:${CASSANDRA_PORT:-19042}
#   TEST_CASSANDRA_CA=the node's certificate, for the tests that connect over TLS
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

# up NAME VAR VALUE starts deploy/NAME.sh and exports VAR=VALUE once it answers.
up() {
	local name=$1 var=$2 value=$3
	if bash "$here/$name.sh" status >/dev/null 2>&1; then
		echo "$name: already running; leaving it running afterwards" >&2
		export "$var=$value"
		return 0
	fi
	# Stopped afterwards even when the start fails: a start that timed out leaves the process.
	started+=("$name")
	if bash "$here/$name.sh" start; then
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

up redis TEST_REDIS_ADDR "127.0.0.1:${REDIS_PORT:-16379}"
up cassandra TEST_CASSANDRA_HOSTS "127.0.0.1:${CASSANDRA_PORT:-19042}"
if [ -n "${TEST_CASSANDRA_HOSTS:-}" ]; then
	export TEST_CASSANDRA_CA="$here/../.cache/services/cassandra/node-${CASSANDRA_PORT:-19042}/tls/ca.pem"
fi
echo "services: TEST_REDIS_ADDR=${TEST_REDIS_ADDR:-(unset)} TEST_CASSANDRA_HOSTS=${TEST_CASSANDRA_HOSTS:-(unset)}" >&2

"$@"
