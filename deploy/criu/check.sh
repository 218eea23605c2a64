#!/usr/bin/env bash
# deploy/criu/check.sh [CRIU] — prove that the installed CRIU works on this host.
#
#   1. `criu --version` and `criu check`;
#   2. dump and restore a plain `sleep` (setsid'd, no shell job);
#   3. dump and restore a TCP listener with state (the case CRIU 4.1 fails on kernels >= 6.16):
#      a perl server answers each connection with a counter; after restore the counter goes on.
#
# CRIU defaults to the installer's well-known path (or $LIFEBOAT_CRIU). Needs root.
# Exit 0 and "check: OK" on success; on failure the relevant lines of CRIU's log.
set -Eeuo pipefail

CRIU=${1:-${LIFEBOAT_CRIU:-/usr/local/libexec/lifeboat/criu}}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
KEEP=${LIFEBOAT_CHECK_KEEP:-0} # 1: keep the images and logs

log() { printf 'check: %s\n' "$*" >&2; }
WORK=
PIDS=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	if [ -n "$WORK" ] && [ "$KEEP" != 1 ]; then rm -rf -- "$WORK"; fi
}
trap cleanup EXIT

# CRIU's errors from a log, minus the one that is always there on this kind of VM (root without
# CAP_SYS_RESOURCE cannot raise RLIMIT_NOFILE; harmless).
criu_errors() { grep -E 'Error|BUG' "$1" | grep -v 'RLIMIT_NOFILE' | head -n 8 || true; }

fail() {
	log "FAILED: $1"
	if [ -n "${2:-}" ] && [ -f "$2" ]; then
		local errs
		errs=$(criu_errors "$2")
		if [ -n "$errs" ]; then
			log "CRIU's errors from $2:"
		else
			errs=$(tail -n 5 "$2")
			log "no error lines in $2; its end:"
		fi
		printf '    %s\n' "${errs//$'\n'/$'\n'    }" >&2
	fi
	if [ -n "$WORK" ]; then
		KEEP=1
		log "images and logs kept in $WORK"
	fi
	exit 1
}

[ "$(id -u)" = 0 ] || fail "must run as root"
[ -x "$CRIU" ] || fail "no criu at $CRIU; run deploy/criu/install.sh first"

ms() { date +%s%3N; }

# Start "$@" as our child, in its own session, with no inherited fds (stray fds break dumps);
# sets SPAWNED to its pid. Without job control a background job is not a group leader, so setsid
# execs in place and $! is the workload's pid.
spawn() {
	(
		for fd in /proc/"$BASHPID"/fd/*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
		done
		exec setsid "$@" </dev/null >/dev/null 2>&1
	) &
	SPAWNED=$!
	disown "$SPAWNED"
}

# dump_restore NAME PID: stopping dump, reap, restore detached; checks the same pid runs again.
dump_restore() {
	local name=$1 pid=$2 dir=$WORK/$1 t0 t1 t2
	mkdir -p "$dir"
	t0=$(ms)
	"$CRIU" dump -t "$pid" -D "$dir" -o dump.log -v4 ||
		fail "$name: criu dump -t $pid" "$dir/dump.log"
	t1=$(ms)
	# The dumped task was our child: reap it, or its zombie keeps the pid and restore fails
	# with "Can't fork for PID: File exists".
	# Bash reaps it on SIGCHLD (it is disowned, so no "Killed" notice); wait for that.
	local _
	for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.02; done
	if [ -e "/proc/$pid" ]; then fail "$name: pid $pid still there after the dump"; fi
	"$CRIU" restore -D "$dir" -d -o restore.log -v4 --pidfile "$dir/restored.pid" ||
		fail "$name: criu restore -D $dir -d" "$dir/restore.log"
	t2=$(ms)
	local rpid state
	rpid=$(cat "$dir/restored.pid")
	[ "$rpid" = "$pid" ] || fail "$name: restored pid $rpid, expected $pid"
	state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
	case $state in R | S | D) ;; *) fail "$name: restored pid $pid is not running (state '$state')" ;; esac
	log "$name: dump $((t1 - t0)) ms ($(du -sh "$dir" | cut -f1) of images), restore $((t2 - t1)) ms, pid $pid running again"
}

WORK=$(mktemp -d /tmp/lifeboat-criu-check.XXXXXX)

# 1. version and kernel support
ver=$("$CRIU" --version 2>&1 | sed -n 's/^Version: *//p')
[ -n "$ver" ] || fail "'$CRIU --version' does not run: $("$CRIU" --version 2>&1 | tail -n 2)"
if ! out=$("$CRIU" check 2>&1); then
	fail "criu check: $out"
fi
log "criu $ver at $CRIU ($(readlink -f "$CRIU")); criu check: $(tail -n1 <<<"$out")"
pmax=$(cat /proc/sys/fs/pipe-max-size)
if [ "$pmax" -lt 4194304 ]; then
	log "warning: fs.pipe-max-size is $pmax (< 4194304): lazy pages will fail; run install.sh"
fi

# 2. a plain process
spawn sleep 1000
pid=$SPAWNED
PIDS+=("$pid")
sleep 0.2
[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ] || fail "could not start sleep (pid $pid)"
dump_restore sleep "$pid"
kill -9 "$pid"

# 3. a TCP listener with state
portfile=$WORK/port
# shellcheck disable=SC2016 # perl code
spawn perl -MIO::Socket::INET -e '
	my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 8, ReuseAddr => 1)
		or die "listen: $!";
	open(my $f, ">", $ARGV[0]) or die; print $f $s->sockport, "\n"; close $f;
	my $n = 0;
	while (my $c = $s->accept) { $n++; print $c "$n\n"; close $c }' "$portfile"
pid=$SPAWNED
PIDS+=("$pid")
for _ in $(seq 50); do [ -s "$portfile" ] && break; sleep 0.1; done
[ -s "$portfile" ] || fail "the perl TCP listener did not start"
port=$(cat "$portfile")
ask() {
	local r
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	read -r -t 5 r <&3 || true
	exec 3<&-
	printf '%s' "$r"
}
a=$(ask) || fail "tcp: cannot connect to 127.0.0.1:$port"
a=$(ask) || fail "tcp: cannot connect to 127.0.0.1:$port"
[ "$a" = 2 ] || fail "tcp: listener answered '$a', expected 2"
dump_restore tcp-listener "$pid"
b=$(ask) || fail "tcp: restored listener does not accept on 127.0.0.1:$port"
[ "$b" = 3 ] || fail "tcp: restored listener answered '$b', expected 3 (state lost?)"
log "tcp-listener: answered 1, 2 before and $b after the restore on port $port"
kill -9 "$pid"

log "OK"
