#!/usr/bin/env bash
# deploy/redis.sh start|stop|status
#
# A private Redis for tests and by hand on 127.0.0.1:${REDIS_PORT:-16379}. Its pidfile
# and log, named by port, and its (empty) working directory are in .cache/services/redis
# of this checkout; it keeps nothing on disk. When redis-server is not on PATH, start
# installs Debian's redis-server package and keeps its system service (port 6379) stopped.
#
#   start   start it unless it already answers; wait until it answers PING
#   stop    shut it down (only the server that this checkout started)
#   status  exit 0 when it answers PING
set -euo pipefail

name=redis
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

port=${REDIS_PORT:-16379}
dir=$root/.cache/services/redis
pidfile=$dir/redis-$port.pid
logfile=$dir/redis-$port.log
start_timeout=${REDIS_START_TIMEOUT:-30}

answers() {
	command -v redis-cli >/dev/null 2>&1 || return 1
	[ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]
}

install_redis() {
	command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
	install_service "$dir/apt.log" redis-server redis-server
	say "installed $(redis-server --version)"
}

start() {
	lock "$dir"
	if answers; then
		say "already running on 127.0.0.1:$port"
		return 0
	fi
	install_redis
	mkdir -p "$dir/data"
	# A session of its own, so that a terminal's Ctrl-C on make does not reach it.
	# shellcheck disable=SC2094 # redis-server writes its log; the shell appends its output
	setsid redis-server \
		--bind 127.0.0.1 --port "$port" --protected-mode yes \
		--daemonize no --pidfile "$pidfile" --logfile "$logfile" \
		--dir "$dir/data" --save "" --appendonly no \
		</dev/null >>"$logfile" 2>&1 9>&- &
	local pid=$!
	echo "$pid" >"$pidfile"
	await "$pid" "$pidfile" "$logfile" "$start_timeout" answers
	say "running on 127.0.0.1:$port (pid $pid, log $logfile)"
}

stop() {
	local pid
	lock "$dir"
	pid=$(ours "$pidfile" redis-server answers) || return 0
	redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
	stop_pid "$pid" 10
	rm -f "$pidfile"
	say "stopped"
}

status() {
	if answers; then
		say "running on 127.0.0.1:$port"
		return 0
	fi
	say "not answering on 127.0.0.1:$port"
	return 1
}

dispatch "$@"
