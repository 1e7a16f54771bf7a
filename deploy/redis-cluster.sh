#!/usr/bin/env bash
# deploy/redis-cluster.sh start|stop|status
#
# A private Redis Cluster of three masters (no replicas) for tests and by hand, on
# 127.0.0.1 ports ${REDIS_CLUSTER_PORT:-17100} and the two after it; each node's cluster
# bus is its port + 10000. (Not 17000: that is the test Cassandra's inter-node port.)
# The nodes' pidfiles, logs and cluster files (nodes.conf) are in
# .cache/services/redis-cluster of this checkout; they keep no data on disk, and every
# start makes a new, empty cluster. When redis-server is not on PATH, start installs
# Debian's redis-server package and keeps its system service (port 6379) stopped.
#
#   start   start it unless it already is in cluster_state:ok; wait until every node is
#   stop    shut the nodes down (only the ones that this checkout started)
#   status  exit 0 when every node answers with cluster_state:ok
#
# Environment: REDIS_CLUSTER_PORT (17100), REDIS_CLUSTER_START_TIMEOUT (30 s).
set -euo pipefail

name=redis-cluster
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

first=${REDIS_CLUSTER_PORT:-17100}
ports=("$first" $((first + 1)) $((first + 2)))
dir=$root/.cache/services/redis-cluster
start_timeout=${REDIS_CLUSTER_START_TIMEOUT:-30}

cli() {
	local port=$1
	shift
	timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
}

pings() { command -v redis-cli >/dev/null 2>&1 && [ "$(cli "$1" ping)" = PONG ]; }

# ok tells whether every node sees the cluster as whole (all 16384 slots served).
ok() {
	local p
	command -v redis-cli >/dev/null 2>&1 || return 1
	for p in "${ports[@]}"; do
		cli "$p" cluster info | tr -d '\r' | grep -qx 'cluster_state:ok' || return 1
	done
}

# stop_nodes shuts down the nodes that this checkout started and forgets the cluster.
stop_nodes() {
	local p pid
	for p in "${ports[@]}"; do
		if pid=$(pid_of "$dir/node-$p.pid" redis-server); then
			cli "$p" shutdown nosave >/dev/null || kill -TERM "$pid" 2>/dev/null || true
			stop_pid "$pid" 10
		elif pings "$p"; then
			say "127.0.0.1:$p answers but this checkout did not start it (no pidfile); leaving it"
		fi
		rm -f "$dir/node-$p.pid" "$dir/node-$p/nodes.conf"
	done
}

start() {
	lock "$dir"
	if ok; then
		say "already running on 127.0.0.1:${ports[0]}-${ports[2]}"
		return 0
	fi
	command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ||
		install_service "$dir/apt.log" redis-server redis-server
	# A cluster that is not whole (a node gone) is started again from nothing.
	stop_nodes
	local p pid pids=() started=$SECONDS
	for p in "${ports[@]}"; do
		pings "$p" && die "127.0.0.1:$p is taken by a server that this checkout did not start"
		mkdir -p "$dir/node-$p"
		# A session of its own, so that a terminal's Ctrl-C on make does not reach it.
		# shellcheck disable=SC2094 # redis-server writes its log; the shell appends its output
		setsid redis-server \
			--bind 127.0.0.1 --port "$p" --protected-mode yes \
			--cluster-enabled yes --cluster-config-file "$dir/node-$p/nodes.conf" \
			--cluster-node-timeout 5000 \
			--daemonize no --pidfile "$dir/node-$p.pid" --logfile "$dir/node-$p.log" \
			--dir "$dir/node-$p" --save "" --appendonly no \
			</dev/null >>"$dir/node-$p.log" 2>&1 9>&- &
		pid=$!
		echo "$pid" >"$dir/node-$p.pid"
		pids+=("$pid")
	done
	local i
	for i in 0 1 2; do
		await "${pids[$i]}" "$dir/node-${ports[$i]}.pid" "$dir/node-${ports[$i]}.log" \
			$((start_timeout - (SECONDS - started))) pings "${ports[$i]}"
	done
	local addrs=()
	for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
	timeout "$start_timeout" redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
		>"$dir/create.log" 2>&1 || {
		tail -n 20 "$dir/create.log" >&2
		die "redis-cli --cluster create failed (log: $dir/create.log); nodes left running (stop them with $0 stop)"
	}
	until ok; do
		if [ $((SECONDS - started)) -ge "$start_timeout" ]; then
			die "no cluster_state:ok on every node after ${start_timeout}s; nodes left running (stop them with $0 stop)"
		fi
		sleep 0.1
	done
	say "running on 127.0.0.1:${ports[0]}-${ports[2]} (pids ${pids[*]}, logs $dir/node-PORT.log, up after $((SECONDS - started))s)"
}

stop() {
	lock "$dir"
	stop_nodes
	say "stopped"
}

status() {
	if ok; then
		say "running on 127.0.0.1:${ports[0]}-${ports[2]}, cluster_state:ok"
		return 0
	fi
	say "not in cluster_state:ok on 127.0.0.1:${ports[0]}-${ports[2]}"
	return 1
}

dispatch "$@"
