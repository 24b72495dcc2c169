#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Usage: tests/cli_serve_sync_test.sh PATH/TO/zbl
#
# `zbl serve` acknowledges durably (issue 12): a PUT's 201/200 goes out only
# after the upload's fdatasync, its link or rename into the root and an
# fsync of the root; a DELETE's 204 only after the unlink and an fsync of
# the root. This test runs the server under strace and checks that order in
# the system calls themselves, for every acknowledged PUT and DELETE:
#   - the default server (O_TMPFILE uploads: linkat, or linkat to a
#     temporary name and renameat for a replace),
#   - ZBL_SERVE_TEST_NO_PROC=1 (named temporary files, renameat),
#   - --no-sync, where the checker must report every sync as missing (so
#     this test can fail), and two altered copies of the durable log (the
#     root's fsync completing only after the 201 has started; the link
#     before the fdatasync), where it must report exactly that.
# These runs take the buffered route (--no-direct), whose syncs are system
# calls on job threads; the direct route's syncs go through io_uring, which
# strace cannot see.
# Each run: PUT new (201), PUT replacing it (200), PUT 20 MiB (201, with
# sync_file_range every 8 MiB while it arrives), DELETE (204), GET /_stats;
# one request at a time. tests/serve_sync_check.py reads the logs (its
# header says exactly what it verifies). Exits 77 (skip) without strace,
# curl or python3, or where ptrace is not allowed.
set -u

ZBL=${1:?usage: $0 PATH/TO/zbl}
CHECK=$(dirname "$0")/serve_sync_check.py
for tool in strace curl python3 cmp; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
done
# Containers often refuse ptrace (seccomp, yama ptrace_scope 3).
if ! strace -f -q -o /dev/null true >/dev/null 2>&1; then
	echo "SKIP: strace cannot trace here (ptrace refused)"
	exit 77
fi

T=$(mktemp -d /tmp/zbl-serve-sync.XXXXXX)
# strace -yy prints paths with symlinks resolved: compare with the same.
T=$(cd -P "$T" && pwd)
. "$(dirname "$0")/serve_util.sh"
trap traced_cleanup EXIT


# What the server does to make a change durable, and what it answers with.
# The library sends a small response with one writev or sendmsg; write,
# sendto are there in case it changes.
TRACE=fdatasync,fsync,syncfs,sync_file_range,linkat,renameat,renameat2,unlinkat
TRACE=$TRACE,write,writev,sendmsg,sendto

# start_traced NAME ARGS...: starts zbl serve under strace with root $T/NAME
# and log $T/NAME.strace; sets PID (the server), TPID (strace), PORT, URL.
# The server's own pid comes from a shell that execs it: killing strace
# would only detach it.
start_traced() {
	local name=$1
	shift
	ROOT=$T/$name
	: >"$T/$name.log"
	# LeakSanitizer cannot run under ptrace and then fails the exit (ASan
	# builds): the leak check is cli_serve's, untraced.
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -q -f -tt -yy -s 80 -e trace="$TRACE" -o "$T/$name.strace" \
		sh -c 'echo $$ >"$0"; exec "$@"' "$T/$name.pid" \
		"$ZBL" serve --root "$ROOT" --listen 127.0.0.1:0 --threads 2 --no-direct "$@" \
		2>"$T/$name.log" &
	TPID=$!
	wait_listening "$T/$name.log" 200
	PID=$(cat "$T/$name.pid")
}

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# counter NAME: one counter of /_stats (the last response of each run).
counter() { sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" "$T/$RUN.stats"; }

head -c 100000 /dev/urandom >"$T/small"
head -c 20971520 /dev/urandom >"$T/big"

# The requests of every run; EXPECT is what serve_sync_check.py is told.
# The 20 MiB upload must start its writeback at least twice (8 and 16 MiB).
EXPECT='PUT obj 201;PUT obj 200;PUT big 201 2;DELETE obj 204;GET _stats 200'
# run_requests RUN: the sequence, one request at a time; checks each status.
run_requests() {
	RUN=$1
	expect "$RUN: PUT new -> 201" 201 "$(code -T "$T/small" "$URL/obj")"
	expect "$RUN: PUT replacing -> 200" 200 "$(code -T "$T/small" "$URL/obj")"
	expect "$RUN: PUT 20 MiB -> 201" 201 "$(code -T "$T/big" "$URL/big")"
	expect "$RUN: DELETE -> 204" 204 "$(code -X DELETE "$URL/obj")"
	curl -s "$URL/_stats" >"$T/$RUN.stats"
	cmp -s "$ROOT/big" "$T/big" && ok "$RUN: 20 MiB object stored whole" || bad "$RUN: big differs"
	[ ! -e "$ROOT/obj" ] && ok "$RUN: deleted object gone" || bad "$RUN: obj still there"
}

echo "# durable, O_TMPFILE uploads (${SECONDS}s)"
start_traced durable
expect_durability durable "$T/durable.log"
run_requests durable
expect "durable: /_stats durable" 1 "$(counter durable)"
expect "durable: /_stats syncs (2 PUT, 1 replace, 1 DELETE)" 4 "$(counter syncs)"
stop_traced_server; expect "durable: SIGTERM exits 0" 0 $?
grep -q '"/proc/self/fd/[0-9]*", [0-9]*<' "$T/durable.strace" \
	&& ok "durable: uploads linked from unnamed files" || bad "durable: no /proc/self/fd link in the log"

echo "# durable, named temporary files (no /proc) (${SECONDS}s)"
ZBL_SERVE_TEST_NO_PROC=1 start_traced noproc
grep -q 'uploads use named temporary files' "$T/noproc.log" && ok "noproc: says so at start" \
	|| bad "noproc: start-up: $(cat "$T/noproc.log")"
run_requests noproc
expect "noproc: /_stats durable" 1 "$(counter durable)"
expect "noproc: /_stats syncs" 4 "$(counter syncs)"
stop_traced_server; expect "noproc: SIGTERM exits 0" 0 $?
expect "noproc: no temporary files left" 0 "$(ls -A "$ROOT" | grep -c '^\.zbl-tmp')"

echo "# --no-sync (${SECONDS}s)"
start_traced nosync --no-sync
expect_durability nosync "$T/nosync.log"
run_requests nosync
expect "nosync: /_stats durable" 0 "$(counter durable)"
expect "nosync: /_stats syncs" 0 "$(counter syncs)"
stop_traced_server; expect "nosync: SIGTERM exits 0" 0 $?

# mutate LOG OUT FROM TO: OUT is LOG with the first line matching FROM
# (an extended regular expression) moved to just before the first line
# matching TO (which must come first).
mutate() {
	awk -v from="$3" -v to="$4" '
		{ line[NR] = $0 }
		f == 0 && $0 ~ from { f = NR }
		t == 0 && $0 ~ to { t = NR }
		END {
			if (!f || !t || t > f) exit 1
			for (i = 1; i <= NR; i++) {
				if (i == t) print line[f]
				if (i != f) print line[i]
			}
		}' "$1" >"$2"
}
# split_late LOG OUT SYNC ACK: OUT is LOG with the first completed fsync
# line matching SYNC split in two as strace -f writes a call another thread
# overtakes: "<unfinished ...>" where it was, "<... fsync resumed>) = 0"
# just after the first line matching ACK. The fsync starts before that
# response and completes after the response started.
split_late() {
	awk -v s="$3" -v a="$4" '
		!ds && $0 ~ s && $0 ~ /\) = 0$/ {
			who = $1 " " $2; sub(/\) = 0$/, " <unfinished ...>"); print; ds = 1; next
		}
		{ print }
		ds && !da && $0 ~ a { print who " <... fsync resumed>) = 0"; da = 1 }
		END { exit !(ds && da) }' "$1" >"$2"
}
# The first root fsync completing only after the first 201 has started; the
# first link into the root moved before the first fdatasync.
split_late "$T/durable.strace" "$T/late-dirsync.strace" "fsync\\([0-9]+<$T/durable>\\)" \
	'"HTTP/1\.1 201' && ok "mutated log: root fsync completing after the 201 starts" \
	|| bad "could not split the fsync line"
mutate "$T/durable.strace" "$T/late-datasync.strace" "linkat\\(.*<$T/durable>, \"obj\"" 'fdatasync\(' \
	&& ok "mutated log: link moved before the fdatasync" || bad "could not move the linkat line"

echo "# the strace logs (${SECONDS}s)"
python3 "$CHECK" \
	durable "$T/durable.strace" "$T/durable" "$EXPECT" \
	noproc "$T/noproc.strace" "$T/noproc" "$EXPECT" \
	nosync "$T/nosync.strace" "$T/nosync" "$EXPECT" \
	late-dirsync "$T/late-dirsync.strace" "$T/durable" "$EXPECT" \
	late-datasync "$T/late-datasync.strace" "$T/durable" "$EXPECT" >"$T/check.out" 2>&1
echo "checker exit status $?"
sed 's/^/  | /' "$T/check.out"
result() { grep "^RESULT $1 " "$T/check.out"; }
expect "durable: every acknowledgement after its syncs" "RESULT durable ok" "$(result durable)"
expect "noproc: every acknowledgement after its syncs" "RESULT noproc ok" "$(result noproc)"
# --no-sync: 3 PUTs without fdatasync, 4 changes without the root's fsync,
# the 20 MiB PUT without writeback. The checker must see each.
expect "nosync: checker reports every missing sync" \
	"RESULT nosync FAIL NO_DATASYNC=3 NO_DIRSYNC=4 NO_WRITEBACK=1" "$(result nosync)"
expect "late-dirsync: checker reports the 201 sent before the fsync completed" \
	"RESULT late-dirsync FAIL NO_DIRSYNC=1" "$(result late-dirsync)"
expect "late-datasync: checker reports the link before the fdatasync" \
	"RESULT late-datasync FAIL NO_DATASYNC=1" "$(result late-datasync)"

echo "# $checks checks, $fails failed (${SECONDS}s)"
[ "$fails" -eq 0 ]
