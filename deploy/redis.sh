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
	apt_install "$dir/apt.log" redis-server
	# Should the package's service have started anyway, stop it, and keep it off at boot.
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		as_root systemctl disable --now redis-server >/dev/null 2>&1 || true
	else
		as_root service redis-server stop >/dev/null 2>&1 || true
		as_root update-rc.d redis-server disable >/dev/null 2>&1 || true
	fi
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
	local pid=$! started=$SECONDS
	echo "$pid" >"$pidfile"
	until answers; do
		if ! alive "$pid"; then
			tail -n 5 "$logfile" >&2 || true
			rm -f "$pidfile"
			die "redis-server exited during start-up (log: $logfile)"
		fi
		if [ $((SECONDS - started)) -ge "$start_timeout" ]; then
			tail -n 20 "$logfile" >&2 || true
			die "no PONG from 127.0.0.1:$port after ${start_timeout}s; pid $pid left running (log: $logfile)"
		fi
		sleep 0.1
	done
	say "running on 127.0.0.1:$port (pid $pid, log $logfile)"
}

stop() {
	local pid
	lock "$dir"
	if ! pid=$(pid_of "$pidfile" redis-server); then
		rm -f "$pidfile"
		if answers; then
			say "127.0.0.1:$port answers but this checkout did not start it (no pidfile); leaving it"
		else
			say "not running"
		fi
		return 0
	fi
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

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
