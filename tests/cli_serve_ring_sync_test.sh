#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Usage: tests/cli_serve_ring_sync_test.sh PATH/TO/zbl
#
# `zbl serve` acknowledges durably on its direct route as well: there an
# upload's bytes go to the disk with O_DIRECT WRITEVs through io_uring, then
# an io_uring FSYNC with IORING_FSYNC_DATASYNC of the file, then the link
# (or link to a temporary name and rename) into the root, then an io_uring
# FSYNC of the root, and only then the 201/200. strace cannot see io_uring
# operations (cli_serve_sync checks the buffered route that way): this test
# records the kernel's tracepoints with perf instead and checks that order
# for every acknowledged PUT:
#   - the default server (O_TMPFILE uploads: linkat, or linkat to a
#     temporary name and renameat for a replace),
#   - ZBL_SERVE_TEST_NO_PROC=1 (named temporary files, renameat),
#   - the default server's trace read again without the ext4 events (the
#     fsyncs told apart by descriptor alone, as on another filesystem),
#   - --no-sync, where the checker must report every sync as missing (so
#     this test can fail), and altered copies of the durable trace: the
#     root's FSYNC completing only after the 201 was sent; the link before
#     the datasync completed; a WRITEV completing after the datasync was
#     submitted; the two syncs' flags swapped. The checker must report
#     exactly that.
# Each run: PUT new (201), PUT replacing it (200), PUT 20 MiB (201), GET
# /_stats; one request at a time, with curl -H 'Expect:' (a "100 Continue"
# would be the first thing sent on the connection). tests/serve_ring_sync_check.py
# reads the traces (its header says exactly what it verifies and what tells
# the two fsyncs apart: ext4's sync tracepoint, which shows the datasync
# flag, when the temporary directory is on ext4). Exits 77 (skip) without
# perf, curl or python3, where the tracepoints cannot be recorded (not root,
# perf_event_paranoid, no tracefs), or where the server does not take the
# direct route.
set -u

ZBL=${1:?usage: $0 PATH/TO/zbl}
CHECK=$(dirname "$0")/serve_ring_sync_check.py
for tool in perf curl python3 cmp stat; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
done

T=$(mktemp -d /tmp/zbl-serve-ring-sync.XXXXXX)
T=$(cd -P "$T" && pwd)
. "$(dirname "$0")/serve_util.sh"
trap traced_cleanup EXIT

# What makes an upload durable and what answers it: io_uring's requests
# (submission, the descriptor as the request runs, completion), ext4's
# fsync (inode and datasync flag), the links and renames into the root,
# the buffered prefix's pwrite64, the connections and the calls that send.
EVENTS=io_uring:io_uring_submit_req,io_uring:io_uring_file_get,io_uring:io_uring_complete
EXT4=0
case $(stat -f -c %T "$T") in
ext2/ext3) EXT4=1 ;;
esac
[ "$EXT4" = 1 ] && EVENTS=$EVENTS,ext4:ext4_sync_file_enter,ext4:ext4_sync_file_exit
for call in accept4 close linkat renameat renameat2 pwrite64 sendmsg sendto write writev; do
	EVENTS=$EVENTS,syscalls:sys_enter_$call,syscalls:sys_exit_$call
done

# Can this process record those tracepoints? (root or perf_event_paranoid
# -1, tracefs mounted, the events built into the kernel.)
if ! perf record -q -o "$T/probe.data" -e "$EVENTS" -- true >"$T/probe.log" 2>&1; then
	echo "SKIP: perf cannot record the tracepoints here (uid $(id -u)," \
		"perf_event_paranoid $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null)):"
	sed 's/^/  | /' "$T/probe.log" | head -5
	exit 77
fi
if [ "$EXT4" = 1 ]; then
	echo "# $T is on ext4: the fsyncs' datasync flag is seen through ext4:ext4_sync_file_enter"
else
	echo "# $T is not on ext4 ($(stat -f -c %T "$T")): the fsyncs are told apart by descriptor only," \
		"their DATASYNC flag is not seen"
fi

# start_traced NAME ARGS...: starts zbl serve under perf record with root
# $T/NAME, trace $T/NAME.data, stderr $T/NAME.log; sets PID (the server),
# TPID (perf), PORT, URL, ROOT_FD and ROOT_INO. perf follows the server's
# threads and io_uring's workers; it exits when the server does.
start_traced() {
	local name=$1
	shift
	ROOT=$T/$name
	mkdir "$ROOT"
	: >"$T/$name.log"
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	perf record -q -o "$T/$name.data" -e "$EVENTS" -- \
		sh -c 'echo $$ >"$0"; log=$1; shift; exec "$@" 2>"$log"' "$T/$name.pid" "$T/$name.log" \
		"$ZBL" serve --root "$ROOT" --listen 127.0.0.1:0 --threads 2 "$@" \
		>"$T/$name.perf.log" 2>&1 &
	TPID=$!
	wait_listening "$T/$name.log" 200 "$T/$name.perf.log"
	PID=$(cat "$T/$name.pid")
	if [ "$DIRECT" != 1 ]; then
		echo "SKIP: the server does not take the direct route here:"
		sed 's/^/  | /' "$T/$name.log"
		exit 77
	fi
	ROOT_FD=
	for f in /proc/"$PID"/fd/*; do
		[ "$(readlink "$f")" = "$ROOT" ] && { ROOT_FD=${f##*/}; break; }
	done
	[ -n "$ROOT_FD" ] || { echo "no descriptor of $ROOT in /proc/$PID/fd"; exit 1; }
	ROOT_INO=-
	[ "$EXT4" = 1 ] && ROOT_INO=$(stat -c %i "$ROOT")
}

# stop_traced NAME: stops the server (perf exits with it), writes
# $T/NAME.trace; returns the server's exit status as perf reports it.
stop_traced() {
	local rc
	stop_traced_server
	rc=$?
	perf script -i "$T/$1.data" -F comm,tid,time,event,trace --show-lost-events \
		>"$T/$1.trace" 2>"$T/$1.script.log"
	return $rc
}

code() { curl -s -H 'Expect:' -o /dev/null -w '%{http_code}' "$@"; }
counter() { sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" "$T/$RUN.stats"; }
ino() { if [ "$EXT4" = 1 ]; then stat -c %i "$ROOT/$1" 2>/dev/null || echo -; else echo -; fi; }

head -c 100000 /dev/urandom >"$T/small"
head -c 20971520 /dev/urandom >"$T/big"

# run_requests RUN: the sequence, one request at a time; checks each status
# and sets EXPECT (what serve_ring_sync_check.py is told: the object's inode
# right after each PUT, the file its datasync must be of).
run_requests() {
	RUN=$1
	local i1 i2 i3
	expect "$RUN: PUT new -> 201" 201 "$(code -T "$T/small" "$URL/obj")"
	i1=$(ino obj)
	expect "$RUN: PUT replacing -> 200" 200 "$(code -T "$T/small" "$URL/obj")"
	i2=$(ino obj)
	expect "$RUN: PUT 20 MiB -> 201" 201 "$(code -T "$T/big" "$URL/big")"
	i3=$(ino big)
	curl -s "$URL/_stats" >"$T/$RUN.stats"
	cmp -s "$ROOT/big" "$T/big" && ok "$RUN: 20 MiB object stored whole" || bad "$RUN: big differs"
	cmp -s "$ROOT/obj" "$T/small" && ok "$RUN: replaced object stored whole" || bad "$RUN: obj differs"
	EXPECT="PUT obj 201 $i1;PUT obj 200 $i2;PUT big 201 $i3;GET _stats 200"
}

echo "# durable, O_TMPFILE uploads (${SECONDS}s)"
start_traced durable
expect_durability durable "$T/durable.log"
run_requests durable
DURABLE_EXPECT=$EXPECT DURABLE_FD=$ROOT_FD DURABLE_INO=$ROOT_INO
expect "durable: /_stats durable" 1 "$(counter durable)"
expect "durable: /_stats direct_route" 1 "$(counter direct_route)"
expect "durable: /_stats syncs (3 PUT)" 3 "$(counter syncs)"
stop_traced durable; expect "durable: SIGTERM exits 0" 0 $?

echo "# durable, named temporary files (no /proc) (${SECONDS}s)"
ZBL_SERVE_TEST_NO_PROC=1 start_traced noproc
grep -q 'uploads use named temporary files' "$T/noproc.log" && ok "noproc: says so at start" \
	|| bad "noproc: start-up: $(cat "$T/noproc.log")"
run_requests noproc
NOPROC_EXPECT=$EXPECT NOPROC_FD=$ROOT_FD NOPROC_INO=$ROOT_INO
expect "noproc: /_stats durable" 1 "$(counter durable)"
expect "noproc: /_stats syncs" 3 "$(counter syncs)"
stop_traced noproc; expect "noproc: SIGTERM exits 0" 0 $?
expect "noproc: no temporary files left" 0 "$(ls -A "$ROOT" | grep -c '^\.zbl-tmp')"

echo "# --no-sync (${SECONDS}s)"
start_traced nosync --no-sync
expect_durability nosync "$T/nosync.log"
run_requests nosync
NOSYNC_EXPECT=$EXPECT NOSYNC_FD=$ROOT_FD NOSYNC_INO=$ROOT_INO
expect "nosync: /_stats durable" 0 "$(counter durable)"
expect "nosync: /_stats syncs" 0 "$(counter syncs)"
stop_traced nosync; expect "nosync: SIGTERM exits 0" 0 $?

# Altered copies of the durable trace (awk; the checker goes by line order).
# late_dirsync IN OUT: the completion of the first root FSYNC (the first
# FSYNC submitted after the first successful linkat) moved to just after the
# start of the next sendmsg: the 201 starts before the root is synced.
late_dirsync() {
	awk '
		{ line[NR] = $0 }
		!l && /syscalls:sys_exit_linkat: 0x0$/ { l = NR }
		l && !u && /io_uring:io_uring_submit_req:.*opcode FSYNC/ {
			match($0, /user_data 0x[0-9a-f]+,/); u = substr($0, RSTART, RLENGTH)
		}
		u && !f && /io_uring:io_uring_complete:/ && index($0, u) { f = NR }
		f && !t && /syscalls:sys_enter_sendmsg:/ { t = NR }
		END {
			if (!t) exit 1
			for (i = 1; i <= NR; i++) {
				if (i != f) print line[i]
				if (i == t) print line[f]
			}
		}' "$1" >"$2"
}
# early_link IN OUT: the first linkat (its enter and exit lines) moved to
# just before the completion of the first FSYNC (the upload's datasync).
early_link() {
	awk '
		{ line[NR] = $0 }
		!u && /io_uring:io_uring_submit_req:.*opcode FSYNC/ {
			match($0, /user_data 0x[0-9a-f]+,/); u = substr($0, RSTART, RLENGTH)
		}
		u && !t && /io_uring:io_uring_complete:/ && index($0, u) { t = NR }
		t && !a && /syscalls:sys_enter_linkat:/ { a = NR; tid = $2 }
		a && !b && NR > a && /syscalls:sys_exit_linkat:/ && $2 == tid { b = NR }
		END {
			if (!b) exit 1
			for (i = 1; i <= NR; i++) {
				if (i == t) { print line[a]; print line[b] }
				if (i != a && i != b) print line[i]
			}
		}' "$1" >"$2"
}
# late_write IN OUT: the completion of the last WRITEV before the first
# FSYNC (the first upload's datasync) moved to just after that FSYNC's
# submission: the datasync does not cover all of the upload's writes.
late_write() {
	awk '
		{ line[NR] = $0 }
		!s && /io_uring:io_uring_submit_req:.*opcode WRITEV/ {
			match($0, /user_data 0x[0-9a-f]+,/); u = substr($0, RSTART, RLENGTH); c = 0
		}
		!s && u && /io_uring:io_uring_complete:/ && index($0, u) { c = NR }
		!s && /io_uring:io_uring_submit_req:.*opcode FSYNC/ { s = NR }
		END {
			if (!s || !c) exit 1
			for (i = 1; i <= NR; i++) {
				if (i != c) print line[i]
				if (i == s) print line[c]
			}
		}' "$1" >"$2"
}
# swap_flags IN OUT ROOTINO: the first ext4 sync of the root shows datasync
# 1, the first other ext4 sync datasync 0.
swap_flags() {
	awk -v root="$3" '
		!r && /ext4:ext4_sync_file_enter:/ && $0 ~ " ino " root " " { sub(/datasync 0/, "datasync 1"); r = 1 }
		!o && /ext4:ext4_sync_file_enter:/ && $0 !~ " ino " root " " { sub(/datasync 1/, "datasync 0"); o = 1 }
		{ print }
		END { exit !(r && o) }' "$1" >"$2"
}
late_dirsync "$T/durable.trace" "$T/late-dirsync.trace" \
	&& ok "altered trace: root FSYNC completing after the 201 starts" || bad "could not move the FSYNC completion"
early_link "$T/durable.trace" "$T/early-link.trace" \
	&& ok "altered trace: link before the datasync completes" || bad "could not move the linkat"
late_write "$T/durable.trace" "$T/late-write.trace" \
	&& ok "altered trace: a WRITEV completing after the datasync is submitted" || bad "could not move the WRITEV"
if [ "$EXT4" = 1 ]; then
	swap_flags "$T/durable.trace" "$T/flags.trace" "$DURABLE_INO" \
		&& ok "altered trace: datasync flags swapped" || bad "could not swap the flags"
	grep -v ' ext4:ext4_sync_file_e' "$T/durable.trace" >"$T/no-ext4.trace"
	EXT4_ARGS=(flags "$T/flags.trace" "$DURABLE_FD" "$DURABLE_INO" "$DURABLE_EXPECT"
		durable-by-fd "$T/no-ext4.trace" "$DURABLE_FD" - "$DURABLE_EXPECT")
else
	EXT4_ARGS=()
fi

echo "# the traces (${SECONDS}s)"
python3 "$CHECK" \
	durable "$T/durable.trace" "$DURABLE_FD" "$DURABLE_INO" "$DURABLE_EXPECT" \
	noproc "$T/noproc.trace" "$NOPROC_FD" "$NOPROC_INO" "$NOPROC_EXPECT" \
	nosync "$T/nosync.trace" "$NOSYNC_FD" "$NOSYNC_INO" "$NOSYNC_EXPECT" \
	late-dirsync "$T/late-dirsync.trace" "$DURABLE_FD" "$DURABLE_INO" "$DURABLE_EXPECT" \
	early-link "$T/early-link.trace" "$DURABLE_FD" "$DURABLE_INO" "$DURABLE_EXPECT" \
	late-write "$T/late-write.trace" "$DURABLE_FD" "$DURABLE_INO" "$DURABLE_EXPECT" \
	"${EXT4_ARGS[@]}" >"$T/check.out" 2>&1
echo "checker exit status $?"
sed 's/^/  | /' "$T/check.out"
result() { grep "^RESULT $1 " "$T/check.out"; }
expect "durable: every acknowledgement after its syncs" "RESULT durable ok" "$(result durable)"
expect "noproc: every acknowledgement after its syncs" "RESULT noproc ok" "$(result noproc)"
# --no-sync: 3 PUTs without the datasync nor the root's fsync.
expect "nosync: checker reports every missing sync" \
	"RESULT nosync FAIL NO_DATASYNC=3 NO_DIRSYNC=3" "$(result nosync)"
expect "late-dirsync: checker reports the 201 sent before the root FSYNC completed" \
	"RESULT late-dirsync FAIL NO_DIRSYNC=1" "$(result late-dirsync)"
expect "early-link: checker reports the link before the datasync completed" \
	"RESULT early-link FAIL NO_DATASYNC=1" "$(result early-link)"
expect "late-write: checker reports the datasync submitted before the last write completed" \
	"RESULT late-write FAIL WRITE_AFTER_DATASYNC=1" "$(result late-write)"
if [ "$EXT4" = 1 ]; then
	expect "flags: checker reports a full fsync of the upload and a datasync of the root" \
		"RESULT flags FAIL NO_DATASYNC=1 NO_DIRSYNC=1" "$(result flags)"
	expect "durable-by-fd: the order holds with the fsyncs told apart by descriptor" \
		"RESULT durable-by-fd ok" "$(result durable-by-fd)"
fi

echo "# $checks checks, $fails failed (${SECONDS}s)"
[ "$fails" -eq 0 ]
