# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Sourced by the object server's shell tests (cli_serve*_test.sh): the check
# counters and their report lines, and starting and stopping `zbl serve` on a
# free loopback port. The sourcing test sets ZBL, T (its temporary directory)
# and ROOT, and installs its own cleanup (serve_cleanup suits most).
# ZBL_SERVE_ARGS (split on spaces) is added to every server started here:
# the suites run once as they are and once with --no-direct.

PID=
fails=0
checks=0

ok() { checks=$((checks + 1)); echo "ok   $*"; }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL $*"; }
# expect NAME WANT GOT
expect() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: want '$2', got '$3'"; fi; }

# serve_cleanup: stops the server, if one runs, and removes $T.
serve_cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}

# The traced tests run the server under a tracer (strace, perf) that exits
# with it: TPID is the tracer, PID the server itself.
TPID=

# traced_cleanup: stops a traced server, waits for its tracer, removes $T.
traced_cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null
	[ -n "$TPID" ] && wait "$TPID" 2>/dev/null
	rm -rf "$T"
}

# stop_traced_server: stops it, waits for the tracer and returns the
# tracer's exit status (the server's, as the tracer reports it).
stop_traced_server() {
	kill "$PID"
	wait "$TPID"
	local rc=$?
	PID=
	TPID=
	return $rc
}

# start_server ARGS...: starts zbl serve on a free port; sets PID, PORT, URL.
start_server() {
	: >"$T/log"
	# shellcheck disable=SC2086
	"$ZBL" serve --root "$ROOT" --listen 127.0.0.1:0 --threads 2 ${ZBL_SERVE_ARGS:-} "$@" \
		2>"$T/log" &
	PID=$!
	wait_listening
}

# wait_listening [LOG [TRIES [MORE...]]]: waits (TRIES x 50 ms, default 100)
# for the server to print its port in LOG (default $T/log); sets PORT, URL
# and DIRECT (1 when uploads take the direct route: io_uring + O_DIRECT).
# If it never does, prints LOG and the MORE files and exits 1.
wait_listening() {
	local log=${1:-$T/log} tries=${2:-100}
	PORT=
	for _ in $(seq "$tries"); do
		PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
		[ -n "$PORT" ] && break
		sleep 0.05
	done
	if [ -z "$PORT" ]; then
		echo "server did not start:"; cat "$log" "${@:3}"; exit 1
	fi
	URL=http://127.0.0.1:$PORT
	DIRECT=0
	grep -q 'uploads O_DIRECT through io_uring' "$log" && DIRECT=1
	return 0
}

# expect_durability RUN LOG: LOG's listening line ends with the durability
# mode: "NOT durable (--no-sync)" for the run named nosync, durable otherwise.
expect_durability() {
	local line
	line=$(grep 'listening on' "$2")
	if [ "$1" = nosync ]; then
		case $line in
		*', NOT durable (--no-sync)') ok "nosync: start-up line says NOT durable" ;;
		*) bad "nosync: start-up line: $line" ;;
		esac
	else
		case $line in
		*', durable (fdatasync + directory fsync before 201/200/204)') ok "$1: start-up line says durable" ;;
		*) bad "$1: start-up line: $line" ;;
		esac
	fi
}

# stop_server: stops it and returns its exit status.
stop_server() {
	kill "$PID"
	wait "$PID"
	local rc=$?
	PID=
	return $rc
}
