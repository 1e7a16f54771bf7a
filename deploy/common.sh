# shellcheck shell=bash disable=SC2034,SC2154
# deploy/common.sh: helpers that the service scripts of deploy/ source.
# The sourcing script sets `name` (for messages) first; `root` is the checkout's top.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '%s: %s\n' "$name" "$*" >&2; }
die() {
	say "$*"
	exit 1
}

# lock DIR: one start or stop at a time per service and checkout; concurrent callers
# wait their turn. The lock is fd 9: a server started while it is held must get 9>&-.
lock() {
	mkdir -p "$1"
	exec 9>"$1/.lock"
	flock 9
}

# alive PID tells whether a process runs; a zombie that init has yet to reap does not.
alive() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# pid_of PIDFILE WORD prints the pid in PIDFILE while that process still runs with
# WORD in its command line (so that a reused pid is not taken for the server).
pid_of() {
	local pid
	[ -s "$1" ] || return 1
	pid=$(cat "$1")
	[ -n "$pid" ] && alive "$pid" || return 1
	grep -q "$2" "/proc/$pid/cmdline" 2>/dev/null || return 1
	echo "$pid"
}

# ours PIDFILE WORD CHECK... prints the pid of the server that this checkout started
# (see pid_of). When there is none, it removes PIDFILE, says whether another server
# answers (CHECK succeeds) or none runs, and fails.
ours() {
	local pidfile=$1 word=$2
	shift 2
	pid_of "$pidfile" "$word" && return 0
	rm -f "$pidfile"
	if "$@"; then
		say "a server answers but this checkout did not start it (no pidfile); leaving it"
	else
		say "not running"
	fi
	return 1
}

# stop_pid PID SECONDS waits up to SECONDS for PID to exit, then kills it.
stop_pid() {
	local pid=$1 limit=$(($2 * 10)) waited=0
	while alive "$pid"; do
		if [ "$waited" -ge "$limit" ]; then
			say "still running after $2s; killing pid $pid"
			kill -KILL "$pid" 2>/dev/null || true
			return 0
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
}

# as_root runs a command as root, through sudo when this script is not root.
as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# apt_install LOG PACKAGE... installs Debian packages, updating the package lists and
# trying again if the first try fails. While it runs, a policy-rc.d (unless the machine
# has one) keeps packages from starting their system services.
apt_install() {
	local log=$1 rc=0 policy=/usr/sbin/policy-rc.d made_policy=
	shift
	command -v apt-get >/dev/null 2>&1 || die "need $*, and there is no apt-get to install it"
	say "installing Debian's $*"
	mkdir -p "$(dirname "$log")"
	if [ ! -e "$policy" ]; then
		as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy"
		made_policy=1
	fi
	local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
	as_root "${apt[@]}" install -y "$@" >"$log" 2>&1 || rc=$?
	if [ "$rc" != 0 ]; then
		say "apt-get install failed; updating the package lists and trying again"
		rc=0
		{ as_root "${apt[@]}" update && as_root "${apt[@]}" install -y "$@"; } >>"$log" 2>&1 || rc=$?
	fi
	[ -z "$made_policy" ] || as_root rm -f "$policy"
	if [ "$rc" != 0 ]; then
		tail -n 20 "$log" >&2
		die "could not install $* (log: $log)"
	fi
}

# install_service LOG PACKAGE SERVICE installs a Debian package with apt_install and,
# should its system SERVICE have started anyway, stops it and keeps it off at boot.
install_service() {
	apt_install "$1" "$2"
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		as_root systemctl disable --now "$3" >/dev/null 2>&1 || true
	else
		as_root service "$3" stop >/dev/null 2>&1 || true
		as_root update-rc.d "$3" disable >/dev/null 2>&1 || true
	fi
}

# await PID PIDFILE LOG SECONDS CHECK... waits until CHECK succeeds. Should PID exit
# first, it shows the log's tail, removes PIDFILE and fails the script; after SECONDS,
# it fails the script, leaving PID running.
await() {
	local pid=$1 pidfile=$2 log=$3 limit=$4 started=$SECONDS
	shift 4
	until "$@"; do
		if ! alive "$pid"; then
			tail -n 10 "$log" >&2 || true
			rm -f "$pidfile"
			die "pid $pid exited during start-up (log: $log)"
		fi
		if [ $((SECONDS - started)) -ge "$limit" ]; then
			tail -n 20 "$log" >&2 || true
			die "not answering after ${limit}s; pid $pid left running (stop it with $0 stop; log: $log)"
		fi
		sleep 0.1
	done
}

# dispatch COMMAND runs the sourcing script's start, stop or status function.
dispatch() {
	case "${1:-}" in
	start) start ;;
	stop) stop ;;
	status) status ;;
	*)
		echo "usage: $0 start|stop|status" >&2
		exit 2
		;;
	esac
}
