#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Usage: cli/demo.sh PATH/TO/zbl [SIZE_MIB]
#
# The `make demo` run of the object server: starts `zbl serve` on a free
# loopback port with a temporary root, uploads and downloads a 256 MiB object
# with curl, checks its sha256, and prints throughput, the server's CPU time,
# and the server's counters from /_stats, three ways: the default server
# (uploads by O_DIRECT through io_uring where it can), --no-direct (uploads
# spliced into the page cache), and --copy (read()/write() for every byte).
set -eu

ZBL=${1:?usage: $0 PATH/TO/zbl [SIZE_MIB]}
MIB=${2:-256}
for tool in curl sha256sum; do
	command -v "$tool" >/dev/null || { echo "demo: $tool is needed" >&2; exit 1; }
done

T=$(mktemp -d /tmp/zbl-demo.XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

THREADS=$(nproc 2>/dev/null || echo 1)
TICK=$(getconf CLK_TCK)
echo "== zbl serve demo: one ${MIB} MiB object, PUT then GET with curl over loopback"
echo "   (zbl serve with ${THREADS} event loops, temporary root; again with --no-direct, and with --copy)"
head -c $((MIB << 20)) /dev/urandom >"$T/object"
SUM=$(sha256sum <"$T/object" | cut -d' ' -f1)
echo "   object sha256 $SUM"

stat_of() { sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" "$T/stats.$2"; }
mibs() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
# cpu_ticks: user + system time of the server so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
secs() { awk -v t="$1" -v hz="$TICK" 'BEGIN { printf "%.2f s", t / hz }'; }

# run MODE [SERVER ARGS]: one PUT and one GET, timed; then a second GET to a
# file for the sha256 check, after the counters are read.
run() {
	local mode=$1; shift
	rm -rf "$T/root" "$T/log"
	"$ZBL" serve --root "$T/root" --listen 127.0.0.1:0 --quiet "$@" 2>"$T/log" &
	PID=$!
	PORT=
	for _ in $(seq 100); do
		PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/log")
		[ -n "$PORT" ] && break
		sleep 0.05
	done
	[ -n "$PORT" ] || { echo "demo: server did not start:" >&2; cat "$T/log" >&2; exit 1; }
	local url=http://127.0.0.1:$PORT put get code c0 c1 c2 ok=MISMATCH

	c0=$(cpu_ticks)
	put=$(curl -sS -T "$T/object" -o /dev/null -w '%{http_code} %{speed_upload}' "$url/object")
	code=${put%% *}
	[ "$code" = 201 ] || { echo "demo: PUT gave $code" >&2; exit 1; }
	c1=$(cpu_ticks)
	get=$(curl -sS -o /dev/null -w '%{http_code} %{speed_download}' "$url/object")
	[ "${get%% *}" = 200 ] || { echo "demo: GET gave ${get%% *}" >&2; exit 1; }
	c2=$(cpu_ticks)
	curl -sS -o "$T/stats.$mode" "$url/_stats"
	rm -f "$T/back"
	curl -sS -o "$T/back" "$url/object"
	[ "$(sha256sum <"$T/back" | cut -d' ' -f1)" = "$SUM" ] &&
		[ "$(sha256sum <"$T/root/object" | cut -d' ' -f1)" = "$SUM" ] && ok=ok
	ROUTE=$(sed -n 's/.*, uploads \([^,]*\),.*/\1/p' "$T/log")
	kill "$PID"; wait "$PID" || true; PID=

	printf '%-11s %10s %11s %10s %11s %12s %12s %12s %7s\n' "$mode" \
		"$(mibs "${put#* }")" "$(secs $((c1 - c0)))" "$(mibs "${get#* }")" \
		"$(secs $((c2 - c1)))" "$(stat_of body_bytes_kernel "$mode")" \
		"$(stat_of body_bytes_copied "$mode")" "$(stat_of body_bytes_direct "$mode")" "$ok"
	echo "$mode: uploads $ROUTE" >>"$T/routes"
	[ "$ok" = ok ]
}

printf '\n%-11s %10s %11s %10s %11s %12s %12s %12s %7s\n' mode "PUT MiB/s" "server CPU" \
	"GET MiB/s" "server CPU" "body kernel" "body copied" "PUT direct" sha256
: >"$T/routes"
run default
run --no-direct --no-direct
run --copy --copy
echo
cat "$T/routes"

echo
echo "library counters (GET /_stats after the PUT and the GET):"
printf '%-11s %13s %13s %13s %13s %10s\n' mode spliced_in copied_in spliced_out copied_out fallbacks
for mode in default --no-direct --copy; do
	printf '%-11s %13s %13s %13s %13s %10s\n' "$mode" "$(stat_of bytes_spliced_in "$mode")" \
		"$(stat_of bytes_copied_in "$mode")" "$(stat_of bytes_spliced_out "$mode")" \
		"$(stat_of bytes_copied_out "$mode")" "$(stat_of fallbacks "$mode")"
done
cat <<TXT

body kernel / body copied: the server's own account of the PUT and GET bodies (the
access log's kernel= and copied=): bytes that never passed through user memory, and
bytes that did. PUT direct: upload bytes written to disk by O_DIRECT.
default: where io_uring runs and the root takes O_DIRECT (the routes above say), the
PUT is received into memory (one copy: counted as copied) and written by O_DIRECT
through io_uring, no page cache, no thread waiting on the disk; fdatasync and the
directory's fsync go through io_uring too. GET: file -> socket by sendfile; after a
direct upload the object is not in the page cache, so this first GET reads the disk.
--no-direct: socket -> pipe -> page cache on PUT (no body byte in the server's
memory; the pipe -> file step is a kernel copy), syncs on job threads.
--copy: the server's read()/write() loop copies every byte.
spliced_in/out count the --no-direct PUT twice (socket -> pipe, pipe -> file) plus
the GET (file -> socket); copied_in/out count the direct route's receive and O_DIRECT
writes (memory -> disk by DMA, no CPU copy) and the response heads.
server CPU: user + system time of zbl serve for that request (clock ticks of 1/${TICK} s).
Over loopback curl does the copying on the other end and sets the pace. Loopback
flatters copying: on this kind of VM TCP moves copied data faster than page
references (sendfile), so GET can be slower and cost the server more CPU than --copy
here ('zbl bench --only file2sock' measures it); over a network card the copy is the
cost and zero-copy removes it.
TXT
