#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Usage: tests/cli_serve_load_test.sh PATH/TO/zbl
#
# Load test of `zbl serve`: 200 concurrent 4 MiB uploads (every one 201,
# every stored file and a sample of GETs with the bytes sent), then 50
# concurrent uploads abandoned part-way (nothing stored, no temporary file
# left, the server still answering), and the server's memory and
# descriptors over it all: the peak RSS growth stays within the upload
# windows' bound, the descriptor count comes back to its baseline, SIGTERM
# exits 0. ZBL_SERVE_ARGS applies (run it once more with --no-direct).
# Exits 77 (skip) without curl/python3/sha256sum or /proc.
set -u

ZBL=${1:?usage: $0 PATH/TO/zbl}
for tool in curl python3 sha256sum timeout; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
done
[ -r /proc/self/status ] || { echo "SKIP: no /proc"; exit 77; }

T=$(mktemp -d /tmp/zbl-serve-load.XXXXXX)
ROOT=$T/root
. "$(dirname "$0")/serve_util.sh"
trap serve_cleanup EXIT

NUP=200                         # concurrent uploads
NABORT=50                       # concurrent abandoned uploads
SIZE=$((4 << 20))               # bytes each
# Peak RSS growth allowed over the warm baseline, MiB. The direct route
# holds at most WORKER_WINDOW_BYTES (64 MiB) of bodies in flight per worker
# (cli/serve/serve.h), so 2 workers (--threads 2) hold at most 128 MiB;
# another 128 MiB of slack covers the per-connection state of 250
# connections (16 KiB head buffers and the like), malloc's per-thread
# arenas and fragmentation. The buffered route splices bodies through pipes
# (kernel memory, not RSS) and grows far less. A server that buffered every
# upload whole would hold 200 x 4 MiB = 800 MiB and fail this.
MEM_BOUND_MIB=${ZBL_SERVE_LOAD_MEM_BOUND_MIB:-256}

code() { curl -s --max-time 30 -o /dev/null -w '%{http_code}' "$@"; }
nfds() { ls "/proc/$PID/fd" 2>/dev/null | wc -l; }
# kib FIELD: VmRSS / VmHWM of the server, KiB.
kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$PID/status"; }
mib() { echo $(( ($1 + 1023) / 1024 )); }
# logcount PATTERN: access-log lines matching PATTERN (grep -E).
logcount() { grep -acE -- "$1" "$T/log"; }
# showlog PATTERN: up to 5 matching log lines, indented, for a failure report.
showlog() { grep -aE -- "$1" "$T/log" | head -5 | sed 's/^/    /'; }

start_server
echo "# server on port $PORT (${SECONDS}s): $(sed -n 's/.*, uploads \([^,]*\),.*/uploads \1/p' "$T/log")"

# Warm up: four uploads of the full size (both workers see some), a GET,
# the DELETEs; then idle long enough for the pipe pool to be flushed.
head -c "$SIZE" /dev/urandom >"$T/warm"
for i in 1 2 3 4; do code -T "$T/warm" "$URL/warm$i" >/dev/null; done
code "$URL/warm1" >/dev/null
for i in 1 2 3 4; do code -X DELETE "$URL/warm$i" >/dev/null; done
sleep 1.5
BASE_FDS=$(nfds)
BASE_RSS=$(kib VmRSS)
BASE_HWM=$(kib VmHWM)
echo "# warm baseline: VmRSS $(mib "$BASE_RSS") MiB, VmHWM $(mib "$BASE_HWM") MiB, $BASE_FDS descriptors"

# ---------------------------------------------------------------------------
echo "# $NUP concurrent uploads of $SIZE bytes (${SECONDS}s)"
# One python3 process, a thread per upload. Every thread connects and sends
# its head; once the server holds all the connections (its descriptor
# count says so, or 20 s pass) all send their bodies at once. Bodies are
# windows of one random pool at offsets i * 4097: distinct, and no 4 KiB
# page of one upload equals a page at an aligned offset of another, so
# bytes landing in the wrong upload are seen. Prints per upload
# "NAME STATUS SHA256", then "concurrent N" (connections the server held).
timeout 150 python3 - "$PORT" "$PID" "$NUP" "$SIZE" "$BASE_FDS" >"$T/up" 2>"$T/up.err" <<'EOF'
import hashlib, os, socket, sys, threading, time
port, pid, n, size, base = (int(a) for a in sys.argv[1:6])
STEP = 4097
pool = memoryview(os.urandom(size + n * STEP))
held = [0]

def action():
    # Every thread has sent its head: wait for the server to accept them all.
    end = time.monotonic() + 20
    while True:
        try:
            held[0] = len(os.listdir("/proc/%d/fd" % pid)) - base
        except OSError:
            break
        if held[0] >= n or time.monotonic() > end:
            break
        time.sleep(0.02)

barrier = threading.Barrier(n, action=action, timeout=60)
res = ["noconn"] * n

def up(i):
    name = b"load-%03d" % i
    body = pool[i * STEP:i * STEP + size]
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
    except OSError as e:
        res[i] = "connect:" + type(e).__name__
        barrier.abort()
        return
    try:
        s.sendall(b"PUT /%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n" % (name, size))
        barrier.wait()
        for off in range(0, size, 256 << 10):
            s.sendall(body[off:off + (256 << 10)])
        resp = b""
        while b"\r\n\r\n" not in resp and len(resp) < 65536:
            b = s.recv(4096)
            if not b:
                break
            resp += b
        res[i] = resp.split(b" ", 2)[1].decode() if resp.startswith(b"HTTP/1.1 ") else "noresponse"
    except threading.BrokenBarrierError:
        res[i] = "barrier"
    except OSError as e:
        res[i] = "error:" + type(e).__name__
    finally:
        s.close()

threads = [threading.Thread(target=up, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for i in range(n):
    sha = hashlib.sha256(pool[i * STEP:i * STEP + size]).hexdigest()
    print("load-%03d %s %s" % (i, res[i], sha))
print("concurrent", held[0])
EOF
RC=$?
expect "upload client exits 0" 0 "$RC"
[ -s "$T/up.err" ] && sed 's/^/    /' "$T/up.err" | head -20
HELD=$(sed -n 's/^concurrent //p' "$T/up")
[ -n "$HELD" ] && [ "$HELD" -ge "$NUP" ] && ok "server held all $NUP connections at once" \
	|| bad "server held ${HELD:-?} of $NUP connections at once"
N201=$(awk '$1 ~ /^load-/ && $2 == 201' "$T/up" | wc -l)
if [ "$N201" = "$NUP" ]; then
	ok "$NUP concurrent uploads: all 201"
else
	bad "$NUP concurrent uploads: $N201 got 201; others: $(awk '$1 ~ /^load-/ && $2 != 201 { printf "%s=%s ", $1, $2 }' "$T/up" | head -c 600)"
	showlog 'PUT /load-[0-9]+ [^2]'
fi
expect "access log: $NUP uploads logged 201 $SIZE" "$NUP" "$(logcount "PUT /load-[0-9]+ 201 $SIZE ")"
awk '$1 ~ /^load-/ { print $3 "  " $1 }' "$T/up" | sort -k2 >"$T/want.sha"
(cd "$ROOT" && sha256sum load-* 2>/dev/null) | sort -k2 >"$T/got.sha"
if cmp -s "$T/want.sha" "$T/got.sha"; then
	ok "$NUP stored files have the sha256 of what was sent"
else
	bad "stored files differ from what was sent: $(diff "$T/want.sha" "$T/got.sha" | grep -c '^[<>]') lines differ"
	diff "$T/want.sha" "$T/got.sha" | head -10 | sed 's/^/    /'
fi
GOOD=0
for i in 0 1 37 64 99 100 128 150 198 199; do
	n=$(printf 'load-%03d' "$i")
	got=$(curl -s --max-time 30 "$URL/$n" | sha256sum | cut -d' ' -f1)
	[ "$got" = "$(awk -v n="$n" '$2 == n { print $1 }' "$T/want.sha")" ] && GOOD=$((GOOD + 1))
done
expect "GET returns the bytes sent (sample of 10)" 10 "$GOOD"
UP_HWM=$(kib VmHWM 2>/dev/null)

# ---------------------------------------------------------------------------
echo "# $NABORT concurrent uploads abandoned part-way (${SECONDS}s)"
# Each sends a head declaring 4 MiB, then part of the body (fixed amounts:
# none, a byte, around a page, around 1 MiB, all but one byte, and seeded
# random ones), and once all are open, closes: half with a FIN, half with
# a reset (SO_LINGER 0). A body the server will not take now (its window
# full of the others') is cut off after 10 s of trying. Prints
# "NAME BYTES_SENT" per connection.
timeout 120 python3 - "$PORT" "$NABORT" "$SIZE" >"$T/abort" 2>"$T/abort.err" <<'EOF'
import os, random, socket, struct, sys, threading, time
port, n, size = (int(a) for a in sys.argv[1:4])
fixed = [0, 0, 0, 0, 0, 1, 4095, 4096, 4097, (1 << 20) - 1, 1 << 20, (1 << 20) + 1,
         (5 << 19), size - 4096, size - 1, size - 1]
rnd = random.Random(20240501)
amounts = (fixed + [rnd.randrange(0, size) for _ in range(n)])[:n]
body = os.urandom(size)
barrier = threading.Barrier(n, timeout=60)
sent = [0] * n
errors = []

def go(i):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
    except OSError as e:
        errors.append("abort-%02d: connect: %r" % (i, e))
        barrier.abort()
        return
    try:
        s.sendall(b"PUT /abort-%02d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (i, size))
        s.settimeout(1)
        end = time.monotonic() + 10
        while sent[i] < amounts[i] and time.monotonic() < end:
            try:
                sent[i] += s.send(body[sent[i]:min(amounts[i], sent[i] + (256 << 10))])
            except socket.timeout:
                pass
        barrier.wait()
        time.sleep(0.3)  # let the server read what was sent
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, threading.BrokenBarrierError) as e:
        errors.append("abort-%02d: %r" % (i, e))
    finally:
        s.close()

threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for i in range(n):
    print("abort-%02d %d" % (i, sent[i]))
for e in errors[:10]:
    print(e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
RC=$?
expect "abort client exits 0" 0 "$RC"
[ -s "$T/abort.err" ] && sed 's/^/    /' "$T/abort.err" | head -20
expect "abort client: $NABORT connections" "$NABORT" "$(grep -c '^abort-' "$T/abort")"
BIG=$(awk '$2 > 1048576' "$T/abort" | wc -l)
[ "$BIG" -ge 5 ] && ok "abandoned uploads: $BIG sent over 1 MiB" || bad "only $BIG abandoned uploads sent over 1 MiB: $(tr '\n' ' ' <"$T/abort")"
# They are gone once the server has logged every one.
for _ in $(seq 200); do
	[ "$(logcount 'PUT /abort-[0-9]+ ')" -ge "$NABORT" ] && break
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.1
done
expect "abandoned uploads: all logged" "$NABORT" "$(logcount 'PUT /abort-[0-9]+ ')"
N2XX=$(logcount 'PUT /abort-[0-9]+ 2[0-9][0-9] ')
expect "abandoned uploads: none answered 2xx" 0 "$N2XX"
[ "$N2XX" = 0 ] || showlog 'PUT /abort-[0-9]+ 2[0-9][0-9] '
expect "abandoned uploads: no object stored" "" "$(ls -A "$ROOT" | grep '^abort-' | tr '\n' ' ')"
expect "no temporary file left in the root" "" "$(ls -A "$ROOT" | grep '^\.zbl-tmp' | tr '\n' ' ')"
kill -0 "$PID" 2>/dev/null && ok "server alive after the aborts" || bad "server died during the aborts"
head -c 100000 /dev/urandom >"$T/after"
expect "PUT after the aborts -> 201" 201 "$(code -T "$T/after" "$URL/after")"
curl -s --max-time 30 "$URL/after" -o "$T/after.got"
cmp -s "$T/after" "$T/after.got" && ok "GET after the aborts returns the bytes" || bad "GET after the aborts"

# ---------------------------------------------------------------------------
echo "# memory and descriptors (${SECONDS}s)"
if kill -0 "$PID" 2>/dev/null; then
	END_HWM=$(kib VmHWM)
	END_RSS=$(kib VmRSS)
	GROWTH=$(( (END_HWM - BASE_RSS) / 1024 ))
	echo "# peak RSS growth over the warm baseline: $GROWTH MiB (VmHWM $(mib "$UP_HWM") MiB after the uploads, $(mib "$END_HWM") MiB at the end; VmRSS now $(mib "$END_RSS") MiB; bound $MEM_BOUND_MIB MiB)"
	[ "$GROWTH" -le "$MEM_BOUND_MIB" ] && ok "peak RSS growth $GROWTH MiB <= $MEM_BOUND_MIB MiB" \
		|| bad "peak RSS growth $GROWTH MiB > $MEM_BOUND_MIB MiB"
	for _ in $(seq 100); do [ "$(nfds)" -le "$BASE_FDS" ] && break; sleep 0.1; done
	FDS=$(nfds)
	expect "fd count back to baseline" "$BASE_FDS" "$FDS"
	[ "$FDS" = "$BASE_FDS" ] || ls -l "/proc/$PID/fd" | tail -n +2 | awk '{ print "    " $NF }' | sort | uniq -c | sort -rn | head -10
	stop_server; expect "SIGTERM exits 0" 0 $?
else
	echo "# peak RSS growth over the warm baseline: unknown, the server is gone (VmHWM $(mib "${UP_HWM:-0}") MiB after the uploads)"
	wait "$PID"; RC=$?; PID=
	bad "server exited (status $RC) before the end; last log lines:"
	tail -5 "$T/log" | sed 's/^/    /'
fi

echo "# $checks checks, $fails failed (${SECONDS}s)"
[ "$fails" -eq 0 ]
