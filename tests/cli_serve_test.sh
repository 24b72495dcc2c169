#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Usage: tests/cli_serve_test.sh PATH/TO/zbl
#
# Integration test of `zbl serve`, driven with curl, bash's /dev/tcp and
# small python3 clients: every status code, ranges, HEAD, keep-alive, pipelining,
# aborted uploads, concurrency, path traversal, slow clients, descriptor
# leaks, the zero-copy counters, the access log's kernel/copied split, and
# uploads without /proc. Exits 77 (skip) without curl/python3.
set -u

ZBL=${1:?usage: $0 PATH/TO/zbl}
for tool in curl python3 sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
done

T=$(mktemp -d /tmp/zbl-serve-test.XXXXXX)
ROOT=$T/root
. "$(dirname "$0")/serve_util.sh"
trap serve_cleanup EXIT

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
nfds() { ls "/proc/$PID/fd" | wc -l; }
# counter NAME: one counter of /_stats.
counter() { curl -s "$URL/_stats" | sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p"; }
# logline PATTERN: the last access-log line matching PATTERN (grep -E), waiting
# briefly: the server logs a request after its response is out, so a client
# can see the response first.
logline() {
	local l=
	for _ in $(seq 40); do
		l=$(grep -aE -- "$1" "$T/log" | tail -1)
		[ -n "$l" ] && break
		sleep 0.05
	done
	echo "$l"
}
# acct PATTERN: "BYTES kernel=K copied=C" from the access-log line for PATTERN.
acct() { logline "$1" | awk '{ print $5, $7, $8 }'; }

# raw [all|abort] [SECONDS]: sends standard input as is over one connection
# and prints all it gets until the server closes, or "<timeout>" after
# SECONDS (default 3); "abort" closes 0.2 s after sending instead. Bash's
# /dev/tcp, not a python3 client: interpreter start-up is seconds on a
# loaded machine, and this runs a dozen times.
raw() {
	local mode=${1:-all} secs=${2:-3}
	exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
	cat >&3
	if [ "$mode" = abort ]; then
		sleep 0.2
		exec 3>&-
		return 0
	fi
	timeout "$secs" cat <&3
	[ $? = 124 ] && printf '<timeout>'
	exec 3>&-
}

head -c 3000000 /dev/urandom >"$T/big"
head -c 5000000 /dev/urandom >"$T/toobig"
head -c 100000 /dev/urandom >"$T/small"

# ---------------------------------------------------------------------------
echo "# command line (${SECONDS}s)"
"$ZBL" >/dev/null 2>&1; expect "no command exits 2" 2 $?
"$ZBL" serve --bogus >/dev/null 2>&1; expect "unknown serve option exits 2" 2 $?
"$ZBL" serve --threads 0 >/dev/null 2>&1; expect "--threads 0 exits 2" 2 $?
"$ZBL" serve --max-object 12Q >/dev/null 2>&1; expect "bad --max-object exits 2" 2 $?
"$ZBL" serve --listen >/dev/null 2>&1; expect "--listen without value exits 2" 2 $?
"$ZBL" serve --root "$T/root" --listen nonsense >/dev/null 2>&1; expect "bad --listen exits 1" 1 $?

start_server --max-object 4M --idle-timeout 1
echo "# server on port $PORT (${SECONDS}s): $(sed -n 's/.*, uploads \([^,]*\),.*/uploads \1/p' "$T/log")"
# ZBL_SERVE_EXPECT_ROUTE: words the listening line must have about the
# uploads' route (set when the test runs where io_uring is refused).
if [ -n "${ZBL_SERVE_EXPECT_ROUTE:-}" ]; then
	grep -q "uploads buffered (.*${ZBL_SERVE_EXPECT_ROUTE}" "$T/log" &&
		ok "listening line: uploads buffered, ${ZBL_SERVE_EXPECT_ROUTE}" ||
		bad "listening line: $(head -1 "$T/log")"
fi
case ${ZBL_SERVE_ARGS:-} in
*--no-direct*) expect "--no-direct: uploads buffered" 0 "$DIRECT" ;;
esac

# Warm up (the library opens /dev/null and pools pipes once), then take the fd baseline.
code -T "$T/small" "$URL/warm" >/dev/null
code "$URL/warm" >/dev/null
code -X DELETE "$URL/warm" >/dev/null
sleep 1.5
BASE_FDS=$(nfds)

echo "# status codes (${SECONDS}s)"
expect "PUT new -> 201" 201 "$(code -T "$T/small" "$URL/obj")"
expect "PUT again -> 200" 200 "$(code -T "$T/small" "$URL/obj")"
expect "PUT 5 MB over --max-object 4M -> 413" 413 "$(code -T "$T/toobig" "$URL/toobig")"
expect "PUT 5 MB without Expect -> 413" 413 "$(code -H 'Expect:' -T "$T/toobig" "$URL/toobig")"
[ ! -e "$ROOT/toobig" ] && ok "413 stored nothing" || bad "413 left $ROOT/toobig"
expect "PUT chunked (no Content-Length) -> 411" 411 \
	"$(code -H 'Transfer-Encoding: chunked' -T "$T/small" "$URL/chunked")"
CHUNKED=$(curl -s -H 'Transfer-Encoding: chunked' -T "$T/small" "$URL/chunked")
case $CHUNKED in
"411 Length Required: PUT needs Content-Length; Transfer-Encoding (chunked)"*) ok "411 body says chunked is not accepted" ;;
*) bad "411 body: $CHUNKED" ;;
esac
case $(logline 'PUT /chunked 411') in
*'error="PUT needs Content-Length; Transfer-Encoding (chunked) uploads are not accepted"') ok "411 log line says why" ;;
*) bad "411 log line: $(logline 'PUT /chunked 411')" ;;
esac
expect "PUT without length -> 411" 411 \
	"$(printf 'PUT /nolen HTTP/1.1\r\nHost: x\r\n\r\n' | raw | head -1 | cut -d' ' -f2)"
expect "GET -> 200" 200 "$(code "$URL/obj")"
curl -s "$URL/obj" -o "$T/got"
cmp -s "$T/got" "$T/small" && ok "GET returns the bytes" || bad "GET body differs"
expect "GET absent -> 404" 404 "$(code "$URL/absent")"
expect "DELETE -> 204" 204 "$(code -X DELETE "$URL/obj")"
expect "DELETE again -> 404" 404 "$(code -X DELETE "$URL/obj")"
expect "GET deleted -> 404" 404 "$(code "$URL/obj")"
expect "POST -> 405" 405 "$(code -X POST "$URL/obj")"
expect "405 names the allowed methods" "Allow: GET, HEAD, PUT, DELETE" \
	"$(curl -s -D - -o /dev/null -X POST "$URL/obj" | tr -d '\r' | grep -i '^allow')"
expect "405 on /_stats allows GET, HEAD" "Allow: GET, HEAD" \
	"$(curl -s -D - -o /dev/null -X DELETE "$URL/_stats" | tr -d '\r' | grep -i '^allow')"
expect "bad name -> 400" 400 "$(code "$URL/a%20b")"
expect "name of 256 chars -> 400" 400 "$(code "$URL/$(printf 'a%.0s' $(seq 256))")"
expect "name of 255 chars -> 201" 201 "$(code -T "$T/small" "$URL/$(printf 'b%.0s' $(seq 255))")"
expect "empty name -> 400" 400 "$(code "$URL/")"
expect "malformed request -> 400" 400 "$(printf 'GARBAGE\r\n\r\n' | raw | head -1 | cut -d' ' -f2)"
expect "bad header line -> 400" 400 \
	"$(printf 'GET /x HTTP/1.1\r\nno colon here\r\n\r\n' | raw | head -1 | cut -d' ' -f2)"
expect "GET with a body -> 400" 400 \
	"$(printf 'GET /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc' | raw | head -1 | cut -d' ' -f2)"
expect "huge head -> 431" 431 \
	"$( (printf 'GET /x HTTP/1.1\r\n'; for i in $(seq 400); do printf 'X-Pad-%d: %060d\r\n' $i 0; done; printf '\r\n') | raw | head -1 | cut -d' ' -f2)"

echo "# HEAD and ranges (${SECONDS}s)"
curl -s -T "$T/big" "$URL/big" -o /dev/null
H=$(curl -s -I "$URL/big" | tr -d '\r')
expect "HEAD Content-Length" "Content-Length: 3000000" "$(grep -i '^content-length' <<<"$H")"
expect "HEAD sends no body" 0 "$(curl -s -X HEAD --max-time 2 "$URL/big" 2>/dev/null | wc -c)"
expect "Range a-b -> 206" 206 "$(code -r 100-199 "$URL/big")"
curl -s -r 100-199 "$URL/big" -o "$T/r1"
cmp -s "$T/r1" <(tail -c +101 "$T/big" | head -c 100) && ok "Range a-b bytes" || bad "Range a-b bytes"
expect "Range Content-Range" "Content-Range: bytes 100-199/3000000" \
	"$(curl -s -D - -o /dev/null -r 100-199 "$URL/big" | tr -d '\r' | grep -i '^content-range')"
curl -s -r 2999990- "$URL/big" -o "$T/r2"
cmp -s "$T/r2" <(tail -c 10 "$T/big") && ok "Range a- bytes" || bad "Range a- bytes"
curl -s -H 'Range: bytes=-5' "$URL/big" -o "$T/r3"
cmp -s "$T/r3" <(tail -c 5 "$T/big") && ok "Range -n bytes" || bad "Range -n bytes"
expect "Range past end -> 416" 416 "$(code -r 3000000-3000010 "$URL/big")"
expect "416 Content-Range" "Content-Range: bytes */3000000" \
	"$(curl -s -D - -o /dev/null -r 3000000- "$URL/big" | tr -d '\r' | grep -i '^content-range')"
expect "Range end clamped -> 206" 206 "$(code -r 2999999-99999999 "$URL/big")"
expect "multi-range ignored -> 200" 200 "$(code -r 0-1,5-6 "$URL/big")"

echo "# keep-alive and pipelining (${SECONDS}s)"
expect "two URLs, one connection" "1 0 " \
	"$(curl -s -o /dev/null -o /dev/null -w '%{num_connects} ' "$URL/big" "$URL/big")"
PIPE=$(printf 'PUT /pipe HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /pipe HTTP/1.1\r\nHost: x\r\n\r\nGET /pipe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | raw)
expect "pipelined: three responses" "201 200 200 " \
	"$(grep -ao 'HTTP/1.1 [0-9]*' <<<"$PIPE" | cut -d' ' -f2 | tr '\n' ' ')"
expect "pipelined: body after head kept" 2 "$(grep -ao 'hello' <<<"$PIPE" | wc -l)"
# A body split over many packets, and a next request right behind it.
python3 - "$PORT" <<'EOF' >"$T/split" || bad "split body client failed"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = bytes(range(256)) * 40
s.sendall(b"PUT /split HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:7])
for i in range(7, len(body), 3000):
    time.sleep(0.01); s.sendall(body[i:i + 3000])
s.sendall(b"GET /split HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
out = b""
while True:
    b = s.recv(65536)
    if not b: break
    out += b
sys.stdout.buffer.write(b"OK\n" if out.endswith(body) and out.count(b"HTTP/1.1 20") == 2 else b"BAD\n")
EOF
expect "body in pieces then pipelined GET" OK "$(cat "$T/split")"

echo "# aborted upload (${SECONDS}s)"
printf 'PUT /aborted HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n%01000d' 0 | raw abort
sleep 0.3
expect "aborted upload: GET -> 404" 404 "$(code "$URL/aborted")"
case $(logline 'PUT /aborted ') in
*' PUT /aborted 0 '*' error="client closed the connection with '*' of 1000000 body bytes sent; nothing stored"') ok "aborted upload logged with why" ;;
*) bad "aborted upload log: $(logline 'PUT /aborted ')" ;;
esac
expect "aborted upload: nothing in root" "" "$(ls -A "$ROOT" | grep -v -e '^big$' -e '^pipe$' -e '^split$' -e '^bbbb')"

echo "# access log: body bytes as kernel pages vs copied (${SECONDS}s)"
# Exact numbers unless the library had to copy (no pipes to be had: another
# user's tests can spend the per-user pipe budget); then the split must
# still add up.
FB0=$(counter fallbacks)
curl -s -H 'Expect: 100-continue' -T "$T/big" "$URL/acct" -o /dev/null
curl -s "$URL/acct" -o /dev/null
curl -s -r 10-109 "$URL/acct" -o /dev/null
RANGE_SMALL=$(acct 'GET /acct 206')
curl -s -r 10-100009 "$URL/acct" -o /dev/null
# The head and the first 1000 body bytes in one packet: those are read with
# the head, so copied; the rest arrives later and is spliced.
python3 - "$PORT" "$T/small" <<'EOF' || bad "head-with-body client failed"
import socket, sys, time
body = open(sys.argv[2], "rb").read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"PUT /acct2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:1000])
time.sleep(0.2)
s.sendall(body[1000:])
assert s.recv(4096).startswith(b"HTTP/1.1 201")
EOF
FB1=$(counter fallbacks)
expect "GET range of 100 bytes: copied into the response (small body)" "100 kernel=0 copied=100" \
	"$RANGE_SMALL"
# route PATTERN: "direct=D staged=S" from the access-log line for PATTERN.
route() { logline "$1" | awk '{ print $9, $10 }'; }
if [ "$DIRECT" = 1 ]; then
	# The direct route receives into memory (one copy, as every route to a
	# file) and writes whole pages by O_DIRECT; only partial pages at the
	# ends are staged through the page cache: 3000000 = 732 pages + 1728.
	expect "direct: PUT after 100-continue: received by copy" "3000000 kernel=0 copied=3000000" \
		"$(acct 'PUT /acct 201')"
	expect "direct: PUT after 100-continue: pages direct, the last partial one staged" \
		"direct=2998272 staged=1728" "$(route 'PUT /acct 201')"
	# 1000 bytes came with the head: they and the rest of their page are
	# staged, then 23 pages go direct, then the last 1696 bytes are staged.
	expect "direct: PUT with body bytes in the head's read: its first page staged" \
		"direct=94208 staged=5792" "$(route 'PUT /acct2 201')"
	expect "direct: GET: all kernel pages" "3000000 kernel=3000000 copied=0" \
		"$(acct 'GET /acct 200')"
	# Three uploads on one keep-alive connection: each counts its own bytes
	# (10000 = 2 pages direct + 1808 staged), and /_stats adds each once.
	head -c 10000 "$T/small" >"$T/k10"
	ST0=$(counter body_bytes_staged)
	curl -s -o /dev/null -T "$T/k10" "$URL/ka1" -T "$T/k10" "$URL/ka2" -T "$T/k10" "$URL/ka3"
	for k in 1 2 3; do
		expect "direct: keep-alive upload $k counts its own bytes" "direct=8192 staged=1808" \
			"$(route "PUT /ka$k 201")"
	done
	expect "direct: /_stats staged bytes added once per upload" $((ST0 + 3 * 1808)) \
		"$(counter body_bytes_staged)"
elif [ "$FB0" = "$FB1" ]; then
	expect "PUT after 100-continue: all kernel pages" "3000000 kernel=3000000 copied=0" \
		"$(acct 'PUT /acct 201')"
	expect "GET: all kernel pages" "3000000 kernel=3000000 copied=0" "$(acct 'GET /acct 200')"
	expect "GET range of 100 KB: its bytes, kernel pages" "100000 kernel=100000 copied=0" \
		"$(acct 'GET /acct 206 100000')"
	expect "PUT with body bytes in the head's read: those copied" "100000 kernel=99000 copied=1000" \
		"$(acct 'PUT /acct2 201')"
else
	echo "note: the library fell back to copying $((FB1 - FB0)) times (pipe budget?); checking sums only"
	for p in 'PUT /acct 201' 'GET /acct 200' 'PUT /acct2 201'; do
		read -r n k c <<<"$(acct "$p")"
		[ "$((${k#kernel=} + ${c#copied=}))" = "$n" ] && ok "$p: kernel + copied = $n" \
			|| bad "$p: $n $k $c"
	done
fi

echo "# path traversal (${SECONDS}s)"
echo secret >"$T/secret"
ln -s "$T/secret" "$ROOT/link"
for p in '/../secret' '/%2e%2e/secret' '/%2e%2e%2fsecret' '/..%2fsecret' '/a/../secret' \
	 '/.' '/..' '/%2E%2E' '//etc/passwd' '/.zbl-tmp.1'; do
	c=$(code --path-as-is "$URL$p")
	case $c in 400|404) ok "GET $p -> $c" ;; *) bad "GET $p -> $c" ;; esac
	c=$(code --path-as-is -X PUT --data-binary @"$T/small" "$URL$p")
	case $c in 400|404) ok "PUT $p -> $c" ;; *) bad "PUT $p -> $c" ;; esac
done
expect "symlink in root is not followed" 404 "$(code "$URL/link")"
expect "absolute-form URL -> 400" 400 \
	"$(printf 'GET http://x/../secret HTTP/1.1\r\nHost: x\r\n\r\n' | raw | head -1 | cut -d' ' -f2)"
expect "nothing written outside root" "secret" "$(cat "$T/secret")"
[ ! -e "$T/root/../secret2" ] && ok "no file escaped root" || bad "file escaped root"
rm -f "$ROOT/link"

echo "# concurrency: 60 clients (${SECONDS}s)"
CPIDS=
for i in $(seq 60); do
	( head -c $((i * 1000 + 17)) "$T/big" >"$T/c$i"
	  c=$(code -T "$T/c$i" "$URL/c$i")
	  curl -s "$URL/c$i" -o "$T/c$i.out"
	  cmp -s "$T/c$i" "$T/c$i.out" && [ "$c" = 201 ] && echo ok ) >"$T/c$i.res" 2>&1 &
	CPIDS="$CPIDS $!"
done
wait_concurrent() { local n=0; for i in $(seq 60); do grep -q ok "$T/c$i.res" && n=$((n + 1)); done; echo $n; }
# shellcheck disable=SC2086
wait $CPIDS
expect "60 concurrent PUT+GET" 60 "$(wait_concurrent)"

echo "# slow and idle clients (${SECONDS}s)"
printf 'GET /big HTTP/1.1\r\nHost: x\r\n' | raw all 4 >"$T/slow" &
printf '' | raw all 4 >"$T/idle"
wait $!
case $(cat "$T/slow") in *"<timeout>"*) bad "slow head not dropped" ;; *) ok "slow head dropped after --idle-timeout" ;; esac
case $(cat "$T/idle") in *"<timeout>"*) bad "idle client not dropped" ;; *) ok "idle client dropped" ;; esac

echo "# counters (${SECONDS}s)"
S=$(curl -s "$URL/_stats")
for f in bytes_copied_in bytes_spliced_in bytes_copied_out bytes_spliced_out bytes_teed \
	 bytes_materialized materializations fallbacks pipes_created pipes_live \
	 requests bytes_in bytes_out; do
	grep -q "\"$f\": [0-9]" <<<"$S" && ok "_stats has $f" || bad "_stats lacks $f: $S"
done
python3 -c 'import json,sys; json.loads(sys.argv[1])' "$S" && ok "_stats is JSON" || bad "_stats JSON"
if [ "$DIRECT" = 1 ]; then
	DIN=$(counter body_bytes_direct)
	[ "$DIN" -gt 3000000 ] && ok "bodies written by O_DIRECT ($DIN bytes)" \
		|| bad "body_bytes_direct $DIN"
	expect "direct route in _stats" 1 "$(counter direct_route)"
else
	SPIN=$(counter bytes_spliced_in)
	[ "$SPIN" -gt 3000000 ] && ok "bodies spliced in ($SPIN bytes)" || bad "bytes_spliced_in $SPIN"
	expect "buffered route in _stats" 0 "$(counter direct_route)"
fi
SPOUT=$(counter bytes_spliced_out)
[ "$SPOUT" -gt 6000000 ] && ok "bodies spliced out ($SPOUT bytes)" || bad "bytes_spliced_out $SPOUT"
M=$(curl -s "$URL/_metrics")
grep -q '^zbl_bytes_spliced_in_total [0-9]' <<<"$M" && ok "_metrics Prometheus counter" || bad "_metrics: $M"
grep -q '^# TYPE zbl_pipes_live gauge' <<<"$M" && ok "_metrics gauge" || bad "_metrics gauge"
grep -q 'PUT /big 201 3000000 .* kernel=[0-9]* copied=[0-9]*' "$T/log" && ok "access log line" \
	|| bad "access log: $(grep 'PUT /big' "$T/log")"

echo "# descriptors (${SECONDS}s)"
for j in $(seq 50); do [ "$(nfds)" -le "$BASE_FDS" ] && break; sleep 0.1; done
expect "fd count back to baseline" "$BASE_FDS" "$(nfds)"
kill -0 "$PID" 2>/dev/null && ok "server alive" || bad "server died"
stop_server; expect "SIGTERM exits 0" 0 $?
TMPS=$(ls -A "$ROOT" | grep -c '^\.zbl-tmp')
expect "no temporary files left" 0 "$TMPS"

echo "# --copy (${SECONDS}s)"
start_server --copy --idle-timeout 2
expect "copy: PUT -> 201" 201 "$(code -T "$T/big" "$URL/copy")"
curl -s "$URL/copy" -o "$T/got"
cmp -s "$T/got" "$T/big" && ok "copy: GET bytes" || bad "copy: GET bytes"
curl -s -r 5-9 "$URL/copy" -o "$T/r4"
cmp -s "$T/r4" <(tail -c +6 "$T/big" | head -c 5) && ok "copy: Range bytes" || bad "copy: Range"
expect "copy: nothing spliced in" 0 "$(counter bytes_spliced_in)"
expect "copy: PUT log counts copies" "3000000 kernel=0 copied=3000000" "$(acct 'PUT /copy 201')"
expect "copy: GET log counts copies" "3000000 kernel=0 copied=3000000" "$(acct 'GET /copy 200')"
stop_server; expect "copy: SIGTERM exits 0" 0 $?

echo "# copies charged to the request that made them (${SECONDS}s)"
# One event loop; a slow download in progress while an upload falls back to
# copying (the descriptor limit leaves no room for a pipe). The upload's
# copies are its own: the download, interleaved in the same thread, still
# moved only kernel pages.
if command -v prlimit >/dev/null 2>&1; then
	start_server --threads 1
	truncate -s 16M "$T/sparse"
	head -c 1000000 /dev/urandom >"$T/fb"
	code -T "$T/sparse" "$URL/slow" >/dev/null
	code "$URL/slow" >/dev/null
	sleep 1.2 # idle: the server flushes its pipe pool, and the pipes' descriptors close
	# Room for exactly four more descriptors: the download's socket and file,
	# the upload's socket and temporary file; no pipe (two) fits.
	LIM=$(python3 -c '
import os, sys
used = {int(x) for x in os.listdir("/proc/%s/fd" % sys.argv[1])}
free = fd = 0
while free < 4:
    free += fd not in used
    fd += 1
print(fd)' "$PID")
	prlimit --pid "$PID" --nofile="$LIM:$LIM"
	python3 - "$PORT" "$T/started" >"$T/slowres" <<'EOF' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
got = len(s.recv(65536))
open(sys.argv[2], "w").write("started\n")
time.sleep(0.6)
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    got += len(b)
print(got)
EOF
	SLOWPID=$!
	for _ in $(seq 100); do [ -s "$T/started" ] && break; sleep 0.02; done
	expect "fd-starved PUT -> 201" 201 "$(code -T "$T/fb" "$URL/fb")"
	wait $SLOWPID
	expect "fd-starved PUT: copied by the library" "1000000 kernel=0 copied=1000000" \
		"$(acct 'PUT /fb 201')"
	expect "download alongside it: no copies charged" "16777216 kernel=16777216 copied=0" \
		"$(acct 'GET /slow 200 16777216 [0-9]{3,}\.')"
	stop_server; expect "one loop: SIGTERM exits 0" 0 $?
else
	echo "SKIP copies charged to their request: prlimit (util-linux) not installed"
fi

echo "# a full disk mid-body: 507, nothing stored, honest counts (${SECONDS}s)"
# RLIMIT_FSIZE stands in for a full disk without mounting anything: the
# temporary file's writes fail with EFBIG past 1 MiB, as they would with
# ENOSPC. The 3 MB upload is refused part-way, so the log and /_stats must
# count the bytes that arrived, not the Content-Length.
rm -rf "$ROOT"
# shellcheck disable=SC2086
( ulimit -f 1024; exec "$ZBL" serve --root "$ROOT" --listen 127.0.0.1:0 --threads 1 \
	${ZBL_SERVE_ARGS:-} ) 2>"$T/log" &
PID=$!
wait_listening
expect "full disk: PUT 3 MB -> 507" 507 "$(code -H 'Expect:' -T "$T/big" "$URL/full")"
expect "full disk: nothing stored" "" "$(ls -A "$ROOT")"
read -r MOVED KERN COPIED <<<"$(acct 'PUT /full 507')"
KERN=${KERN#kernel=}; COPIED=${COPIED#copied=}
# The direct route preallocates the declared length first, so a full disk
# is refused before a body byte is read; the buffered route finds it
# part-way (after the first 1 MiB).
FULL_MIN=1048576; [ "$DIRECT" = 1 ] && FULL_MIN=0
if [ "$DIRECT" = 1 ] && [ "$MOVED" != 0 ]; then
	bad "full disk: the direct route read $MOVED bytes before refusing"
elif [ -n "$MOVED" ] && [ "$MOVED" -ge "$FULL_MIN" ] && [ "$MOVED" -lt 3000000 ] &&
   [ $((KERN + COPIED)) = "$MOVED" ]; then
	ok "full disk: log counts the $MOVED bytes that arrived, not 3000000"
else
	bad "full disk: log line: $(logline 'PUT /full 507')"
fi
STATS_BODY=$(( $(counter body_bytes_kernel) + $(counter body_bytes_copied) ))
[ "$STATS_BODY" -lt 3000000 ] && ok "full disk: /_stats body bytes $STATS_BODY < 3000000" \
	|| bad "full disk: /_stats body bytes $STATS_BODY"
expect "full disk: small PUT still fits -> 201" 201 "$(code -T "$T/small" "$URL/fits")"
stop_server; expect "full disk: SIGTERM exits 0" 0 $?

echo "# no /proc: named temporary files (${SECONDS}s)"
rm -rf "$ROOT"
ZBL_SERVE_TEST_NO_PROC=1 start_server --max-object 4M
grep -q 'uploads use named temporary files' "$T/log" && ok "no /proc: says so at start" \
	|| bad "no /proc: start-up: $(cat "$T/log")"
expect "no /proc: PUT new -> 201" 201 "$(code -T "$T/small" "$URL/np")"
expect "no /proc: PUT again -> 200" 200 "$(code -T "$T/big" "$URL/np")"
curl -s "$URL/np" -o "$T/got"
cmp -s "$T/got" "$T/big" && ok "no /proc: GET returns the new bytes" || bad "no /proc: GET bytes"
expect "no /proc: 413 -> nothing stored" "413 " "$(code -T "$T/toobig" "$URL/np2") $(ls -A "$ROOT" | grep -v '^np$')"
# While an upload is in progress its bytes are in a named file in the root
# (proof that this path is the one taken); an abort removes it.
python3 - "$PORT" "$ROOT" <<'EOF' >"$T/np" || bad "no /proc: slow upload client failed"
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"PUT /np3 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
time.sleep(0.3)
print(" ".join(sorted(n for n in os.listdir(sys.argv[2]) if n.startswith(".zbl-tmp."))) or "none")
s.close()
EOF
case $(cat "$T/np") in .zbl-tmp.*) ok "no /proc: upload in a named temporary file" ;; *) bad "no /proc: temporary files: $(cat "$T/np")" ;; esac
sleep 0.3
expect "no /proc: aborted upload leaves nothing" "np" "$(ls -A "$ROOT")"
stop_server; expect "no /proc: SIGTERM exits 0" 0 $?

echo "# $checks checks, $fails failed (${SECONDS}s)"
[ "$fails" -eq 0 ]
