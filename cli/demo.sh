#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Usage: cli/demo.sh PATH/TO/zbl [SIZE_MIB]
#
# The `make demo` run of the object server: starts `zbl serve` on a free
# loopback port with a temporary root, uploads and downloads a 256 MiB object
# with curl, checks its sha256, and prints throughput and the zero-copy
# counters from /_stats, next to the same run with --copy.
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

echo "== zbl serve demo: one ${MIB} MiB object, PUT then GET with curl over loopback"
head -c $((MIB << 20)) /dev/urandom >"$T/object"
SUM=$(sha256sum <"$T/object" | cut -d' ' -f1)
echo "   object sha256 $SUM"

stat_of() { sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" "$T/stats"; }
mibs() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }

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
	local url=http://127.0.0.1:$PORT

	local put get code
	put=$(curl -sS -T "$T/object" -o /dev/null -w '%{http_code} %{speed_upload}' "$url/object")
	code=${put%% *}
	[ "$code" = 201 ] || { echo "demo: PUT gave $code" >&2; exit 1; }
	rm -f "$T/back"
	get=$(curl -sS -o "$T/back" -w '%{speed_download}' "$url/object")
	local ok=MISMATCH
	[ "$(sha256sum <"$T/back" | cut -d' ' -f1)" = "$SUM" ] && ok=ok
	[ "$(sha256sum <"$T/root/object" | cut -d' ' -f1)" = "$SUM" ] || ok=MISMATCH
	curl -sS -o "$T/stats" "$url/_stats"
	kill "$PID"; wait "$PID" || true; PID=

	printf '%-10s %9s %9s %7s %12s %12s %12s %12s %9s\n' "$mode" \
		"$(mibs "${put#* }")" "$(mibs "$get")" "$ok" \
		"$(stat_of bytes_spliced_in)" "$(stat_of bytes_copied_in)" \
		"$(stat_of bytes_spliced_out)" "$(stat_of bytes_copied_out)" "$(stat_of fallbacks)"
	[ "$ok" = ok ]
}

printf '\n%-10s %9s %9s %7s %12s %12s %12s %12s %9s\n' mode "PUT MiB/s" "GET MiB/s" sha256 \
	spliced_in copied_in spliced_out copied_out fallbacks
run zero-copy
run --copy --copy
cat <<'TXT'

spliced_in/out: body bytes the library moved as kernel pages (socket -> pipe -> file on PUT,
file -> socket by sendfile on GET); copied_in/out: bytes copied through user memory by the
library (request and response heads, and any fallbacks). With --copy the server moves the
bodies itself with read()/write(), so the library counters only show the heads.
TXT
