#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Usage: tests/cli_serve_smuggle_test.sh PATH/TO/zbl
#
# Request smuggling test of `zbl serve` (issue 12): a table of malformed or
# ambiguous request heads, each sent on one connection immediately followed
# by a well-formed "DELETE /CANARY HTTP/1.1" (or with that DELETE hidden in a
# declared body). For every row the canary object must survive, the first
# response must have one of the row's allowed statuses, and no second
# response may come: whatever the server made of the malformed head, it must
# not have gone on to read the DELETE as a request. Control rows (WANT
# "gone") are well-formed: there the DELETE must run, or the harness itself
# is broken.
#
# One python3 client runs the whole table (interpreter start-up is seconds
# on a loaded machine; not once per row); each row has its own canary, so
# rows run a few at a time. Exits 77 (skip) without python3.
set -u

ZBL=${1:?usage: $0 PATH/TO/zbl}
for tool in python3; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
done

T=$(mktemp -d /tmp/zbl-smuggle-test.XXXXXX)
ROOT=$T/root
. "$(dirname "$0")/serve_util.sh"
trap serve_cleanup EXIT

# ---------------------------------------------------------------------------
# The table: NAME | WANT | BYTES, one row a line ('#' lines are comments).
#
# WANT is the set of statuses the first response may have (comma-separated),
# or "gone" for a control row: well-formed, a 2xx, then the DELETE's 204, and
# the canary deleted.
#
# BYTES is sent as is on one connection, with these escapes: \r \n \t \0
# \xHH \\ (exact bytes), and these substitutions:
#   {C}       this row's canary name (canary-NN; every row has its own)
#   {DEL}     DELETE /{C} HTTP/1.1\r\nHost: x\r\n\r\n
#   {DL}      the length of {DEL} in decimal; {DL+N} that plus N
#   {DLX}     the length of {DEL} in hex (a chunk size)
#   {BODY:N}  {DEL} padded with 'x' to N bytes
#   {PAD}     header lines X-Pad-N: 000..., about 18 KiB in all (the head
#             buffer is 16 KiB), each ending in \r\n
#   {LONG}    17000 'a' bytes
# The server runs with --max-object 1K.
cat >"$T/table" <<'EOF'
# -- controls: well-formed requests; the DELETE behind them must run
control-get                 | gone    | GET /{C} HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
control-head                | gone    | HEAD /{C} HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
control-put-body            | gone    | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello{DEL}
control-host-lowercase-ows  | gone    | GET /{C} HTTP/1.1\r\nhost:\t x \t\r\n\r\n{DEL}
# -- well-formed, but the connection ends after the first response (RFC 9112 9.3, 9.6)
connection-close            | 200     | GET /{C} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n{DEL}
http10-no-keep-alive        | 200     | GET /{C} HTTP/1.0\r\n\r\n{DEL}
# -- the two attacks found
bare-cr-ends-head           | 400     | GET /a HTTP/1.1\r\nHost: x\r\n\rX{DEL}
put-stats-body-is-delete    | 400,405 | PUT /_stats HTTP/1.1\r\nHost: x\r\nContent-Length: {DL}\r\n\r\n{DEL}
# -- Host (RFC 9112 3.2)
no-host-http11              | 400     | GET /{C} HTTP/1.1\r\n\r\n{DEL}
two-hosts                   | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n{DEL}
two-hosts-same              | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n{DEL}
two-hosts-empty             | 400     | GET /{C} HTTP/1.1\r\nHost:\r\nHost:\r\n\r\n{DEL}
host-list                   | 400     | GET /{C} HTTP/1.1\r\nHost: x, y\r\n\r\n{DEL}
# -- whitespace between field name and colon (RFC 9112 5.1: MUST 400)
host-space-colon            | 400     | GET /{C} HTTP/1.1\r\nHost : x\r\n\r\n{DEL}
host-tab-colon              | 400     | GET /{C} HTTP/1.1\r\nHost\t: x\r\n\r\n{DEL}
cl-space-colon-get          | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nContent-Length : {DL}\r\n\r\n{DEL}
cl-space-colon-put          | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length : {DL}\r\n\r\n{DEL}
te-space-colon              | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{DEL}
# -- Content-Length with Transfer-Encoding (RFC 9112 6.1, 6.3)
cl-then-te-put              | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: {DL+5}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{DEL}
te-then-cl-put              | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: {DL+5}\r\n\r\n0\r\n\r\n{DEL}
cl-then-te-get              | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nContent-Length: {DL+5}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{DEL}
# -- invalid Content-Length (RFC 9112 6.3 item 5: 400 and close)
cl-two-differing            | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: {DL+5}\r\n\r\nhello{DEL}
cl-two-differing-rev        | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: {DL+5}\r\nContent-Length: 5\r\n\r\nhello{DEL}
cl-list                     | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: 5, {DL+5}\r\n\r\nhello{DEL}
cl-plus                     | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello{DEL}
cl-negative                 | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello{DEL}
cl-hex                      | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello{DEL}
cl-empty                    | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n{DEL}
cl-space-inside             | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: 0 {DL}\r\n\r\n{DEL}
cl-trailing-junk            | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: 0x{DL}\r\n\r\n{DEL}
cl-vertical-tab             | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length:\x0b{DL}\r\n\r\n{DEL}
cl-overflow                 | 400,413 | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n{DEL}
cl-overflow-2^64            | 400,413 | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n{DEL}
# -- leading whitespace: before the first header (RFC 9112 2.2), obs-fold (5.2)
sp-before-first-header      | 400     | GET /{C} HTTP/1.1\r\n Content-Length: {DL}\r\nHost: x\r\n\r\n{DEL}
obs-fold-cl                 | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nX-A: a\r\n Content-Length: {DL}\r\n\r\n{DEL}
obs-fold-host-tab           | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\n\ty\r\n\r\n{DEL}
obs-fold-te                 | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n{DEL}
# -- Transfer-Encoding other than a final chunked (RFC 9112 6.1, 6.3 item 4)
te-gzip-put                 | 400,411 | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{DEL}
te-chunked-gzip-put         | 400,411 | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n{DEL}
te-xchunked-put             | 400,411 | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n{DEL}
te-chunked-space-put        | 400,411 | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked \r\n\r\n{DEL}
te-twice-put                | 400,411 | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n{DEL}
te-gzip-get                 | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{DEL}
te-chunked-gzip-get         | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n{DEL}
te-xchunked-get             | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n{DEL}
te-chunked-space-get        | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked \r\n\r\n{DEL}
te-identity-get             | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n{DEL}
te-empty-get                | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n{DEL}
te-http10-get               | 400     | GET /{C} HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{DEL}
te-http10-put               | 400,411 | PUT /w-{C} HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: {DL+5}\r\n\r\n0\r\n\r\n{DEL}
# -- bare CR, bare LF (RFC 9112 2.2). A recipient MAY take a bare LF as a line
#    end; zbl's policy is to refuse it, so these rows are stricter than the RFC.
bare-cr-in-value            | 400     | GET /{C} HTTP/1.1\r\nHost: x\rX: y\r\n\r\n{DEL}
bare-cr-ends-request-line   | 400     | GET /{C} HTTP/1.1\rHost: x\r\n\r\n{DEL}
bare-cr-in-target           | 400     | GET /{C}\r HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
bare-cr-ends-put-head       | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\rXhello{DEL}
bare-lf-request-line        | 400     | GET /{C} HTTP/1.1\nHost: x\r\n\r\n{DEL}
bare-lf-header-then-cl      | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\nContent-Length: {DL}\r\n\r\n{DEL}
bare-lf-ends-head           | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\n\n{DEL}
# -- NUL
nul-in-request-line         | 400     | GET /{C}\0 HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
nul-in-method               | 400     | GE\0T /{C} HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
nul-in-header-name          | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nContent-Length\0: {DL}\r\n\r\n{DEL}
nul-in-value                | 400     | GET /{C} HTTP/1.1\r\nHost: x\0y\r\n\r\n{DEL}
nul-in-cl-value             | 400     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\0{DL}\r\n\r\n{DEL}
ctl-in-host                 | 400     | GET /{C} HTTP/1.1\r\nHost: x\x01\r\n\r\n{DEL}
# -- versions: HTTP/DIGIT.DIGIT other than 1.0 and 1.1 is 505, anything else 400
#    (RFC 9110 2.5 would let HTTP/1.2 be served as 1.1; zbl's policy is 505)
version-2.0                 | 505     | GET /{C} HTTP/2.0\r\nHost: x\r\n\r\n{DEL}
version-1.2                 | 505     | GET /{C} HTTP/1.2\r\nHost: x\r\n\r\n{DEL}
version-3.0                 | 505     | GET /{C} HTTP/3.0\r\nHost: x\r\n\r\n{DEL}
version-0.9                 | 505     | GET /{C} HTTP/0.9\r\nHost: x\r\n\r\n{DEL}
version-none-http09-style   | 400     | GET /{C}\r\n{DEL}
version-1.10                | 400     | GET /{C} HTTP/1.10\r\nHost: x\r\n\r\n{DEL}
version-lowercase           | 400     | GET /{C} http/1.1\r\nHost: x\r\n\r\n{DEL}
version-trailing-space      | 400     | GET /{C} HTTP/1.1 \r\nHost: x\r\n\r\n{DEL}
h2-preface                  | 400,505 | PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n{DEL}
# -- request line (RFC 9112 3)
two-spaces-after-method     | 400     | GET  /{C} HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
two-spaces-before-version   | 400     | GET /{C}  HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
tab-as-separator            | 400     | GET\t/{C} HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
space-in-target             | 400     | GET /a b HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
absolute-form-other-host    | 400     | GET http://other/{C} HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
asterisk-form-get           | 400     | GET * HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
lowercase-method            | 400,405 | delete /{C} HTTP/1.1\r\nHost: x\r\n\r\n{DEL}
connect-method              | 400,405 | CONNECT x:80 HTTP/1.1\r\nHost: x:80\r\n\r\n{DEL}
# -- bodies where none is accepted: the body is the DELETE
get-with-body               | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nContent-Length: {DL}\r\n\r\n{DEL}
head-with-body              | 400     | HEAD /{C} HTTP/1.1\r\nHost: x\r\nContent-Length: {DL}\r\n\r\n{DEL}
delete-other-with-body      | 400     | DELETE /other HTTP/1.1\r\nHost: x\r\nContent-Length: {DL}\r\n\r\n{DEL}
post-with-body              | 400,405 | POST /{C} HTTP/1.1\r\nHost: x\r\nContent-Length: {DL}\r\n\r\n{DEL}
chunked-put-data-is-delete  | 411     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{DLX}\r\n{DEL}\r\n0\r\n\r\n
# -- PUTs refused before their body is read: the body is the DELETE
expect-100-put-dotdot       | 400     | PUT /.. HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {DL}\r\n\r\n{DEL}
expect-100-put-stats        | 400,405 | PUT /_stats HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {DL}\r\n\r\n{DEL}
expect-100-over-max         | 413     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2000\r\n\r\n{BODY:2000}
put-over-max-object         | 413     | PUT /w-{C} HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n{BODY:2000}
put-tmp-prefix              | 400     | PUT /.zbl-tmp.1 HTTP/1.1\r\nHost: x\r\nContent-Length: {DL}\r\n\r\n{DEL}
put-metrics                 | 400,405 | PUT /_metrics HTTP/1.1\r\nHost: x\r\nContent-Length: {DL}\r\n\r\n{DEL}
# -- header names and lines (RFC 9112 5, RFC 9110 5.1)
header-name-paren-no-host   | 400     | GET /{C} HTTP/1.1\r\nHo(st: x\r\n\r\n{DEL}
header-name-paren           | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nX(Y: z\r\n\r\n{DEL}
header-name-space           | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nX Y: z\r\n\r\n{DEL}
header-name-empty           | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\n: z\r\n\r\n{DEL}
header-no-colon             | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n{DEL}
# -- over-long heads
head-over-16k               | 431,400 | GET /{C} HTTP/1.1\r\nHost: x\r\n{PAD}\r\n{DEL}
header-line-over-16k        | 431,400 | GET /{C} HTTP/1.1\r\nHost: x\r\nX-Long: {LONG}\r\n\r\n{DEL}
# -- protocol upgrades (what follows would be another protocol; zbl refuses them
#    rather than ignoring the Upgrade header, as RFC 9110 7.8 would also allow)
upgrade-h2c                 | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n{DEL}
upgrade-websocket           | 400     | GET /{C} HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n{DEL}
EOF

cat >"$T/client.py" <<'EOF'
import concurrent.futures, http.client, os, re, socket, sys, time

port, table = int(sys.argv[1]), sys.argv[2]
WAIT = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0

def unescape(s):
    out, i = bytearray(), 0
    while i < len(s):
        ch = s[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        e = s[i + 1]
        if e == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
            continue
        out += {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}[e]
        i += 2
    return bytes(out)

PAD = b"".join(b"X-Pad-%03d: %s\r\n" % (i, b"0" * 50) for i in range(300))

def expand(raw, canary):
    dele = b"DELETE /%s HTTP/1.1\r\nHost: x\r\n\r\n" % canary
    def sub(k):
        if k == "C":
            return canary
        if k == "DEL":
            return dele
        if k == "DLX":
            return b"%x" % len(dele)
        if k.startswith("DL"):
            return b"%d" % (len(dele) + int(k[3:] or 0))
        if k.startswith("BODY:"):
            return dele + b"x" * (int(k[5:]) - len(dele))
        if k == "PAD":
            return PAD
        if k == "LONG":
            return b"a" * 17000
        raise ValueError("unknown substitution {%s}" % k)
    return re.sub(rb"\{([A-Z]+(?:\+\d+|:\d+)?)\}", lambda m: sub(m.group(1).decode()), unescape(raw))

def request(method, name, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, "/" + name.decode(), body=body, headers={"Connection": "close"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()

STATUS = re.compile(rb"(?:\A|\n)HTTP/(\d)\.(\d) (\d{3})")

def first_reason(out):
    """The first line of the first final response's body (the server's one-line reason)."""
    for m in STATUS.finditer(out):
        if m.group(3).startswith(b"1"):
            continue
        end = out.find(b"\r\n\r\n", m.start())
        if end < 0:
            return ""
        cl = re.search(rb"\ncontent-length: *(\d+)", out[m.start():end], re.I)
        body = out[end + 4:end + 4 + int(cl.group(1))] if cl else b""
        return body.split(b"\n")[0].decode("latin-1")[:90]
    return ""

def run(idx, name, want, raw):
    canary = b"canary-%02d" % idx
    content = b"canary %d %s\n" % (idx, os.urandom(8).hex().encode())
    try:
        st, _ = request("PUT", canary, content)
        st2, got = request("GET", canary)
    except Exception as e:
        return False, "harness: canary PUT/GET failed: %r" % e, canary, content
    if st not in (200, 201) or st2 != 200 or got != content:
        return False, "harness: canary PUT %d, GET %d" % (st, st2), canary, content
    payload = expand(raw, canary)

    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port))
    ended = "closed"
    out = b""
    try:
        s.sendall(payload)
    except OSError as e:
        ended = "send error %s" % e.__class__.__name__
    s.settimeout(0.2)
    while True:
        if time.monotonic() - t0 > WAIT:
            ended = "held open"
            break
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except OSError as e:
            ended = "reset" if isinstance(e, ConnectionResetError) else e.__class__.__name__
            break
        if not b:
            break
        out += b
        finals = [m.group(3) for m in STATUS.finditer(out) if not m.group(3).startswith(b"1")]
        if len(finals) >= 2 or b"HTTP/1.1 204" in out:
            time.sleep(0.05)  # the rest of the second response, if any
            ended = "second response"
            break
    s.close()
    secs = time.monotonic() - t0

    statuses = [int(m.group(3)) for m in STATUS.finditer(out)]
    finals = [x for x in statuses if x >= 200]
    first = finals[0] if finals else None
    second = len(finals) > 1 or b"HTTP/1.1 204" in out
    try:
        st, got = request("GET", canary)
    except Exception as e:
        st, got = -1, repr(e).encode()
    alive = st == 200 and got == content
    why = []
    if want == "gone":
        if first is None or not 200 <= first < 300:
            why.append("first response %s, want 2xx" % first)
        if not second or 204 not in finals[1:]:
            why.append("no 204 for the DELETE")
        if st != 404:
            why.append("canary not deleted (GET %d): HARNESS BROKEN" % st)
    else:
        allowed = [int(x) for x in want.split(",")]
        if first not in allowed:
            why.append("first response %s, want %s" % (first if first else "none", want))
        if second:
            why.append("a second response (%s)" % " ".join(map(str, finals[1:])) if len(finals) > 1 else "a 204 in the output")
        if not alive:
            why.append("CANARY %s (GET %d)" % ("DELETED" if st == 404 else "damaged", st))
    desc = "%s: got %s [%s] %s, %.2fs%s" % (
        name, " ".join(map(str, statuses)) or "nothing", ended,
        "canary alive" if alive else "canary gone", secs,
        (' "%s"' % first_reason(out)) if first and first >= 400 and first_reason(out) else "")
    if why:
        return False, desc + " -- " + "; ".join(why), canary, content
    return True, desc, canary, content

rows = []
for line in open(table, encoding="utf-8"):
    line = line.rstrip("\n")
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    name, want, raw = (x.strip() for x in line.split("|", 2))
    rows.append((name, want.replace(" ", ""), raw))

fails = []
with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
    futs = [pool.submit(run, i, *r) for i, r in enumerate(rows, 1)]
    results = []
    for (name, want, _), f in zip(rows, futs):
        good, desc, canary, content = f.result()
        results.append((name, want, canary, content, good))
        print(("ok   " if good else "FAIL ") + desc, flush=True)
        if not good:
            fails.append(name)

# A DELETE that a server ran late (after the client gave up) shows now.
time.sleep(0.3)
for name, want, canary, content, good in results:
    st, got = request("GET", canary)
    if want == "gone" and st != 404:
        print("FAIL %s: recheck: canary back (GET %d)" % (name, st))
        fails.append(name)
    elif want != "gone" and good and (st != 200 or got != content):
        print("FAIL %s: recheck: canary deleted late (GET %d)" % (name, st))
        fails.append(name)

print("# %d rows, %d failed%s" % (len(rows), len(set(fails)), (": " + " ".join(sorted(set(fails), key=fails.index))) if fails else ""))
sys.exit(1 if fails else 0)
EOF

mkdir -p "$ROOT"
start_server --max-object 1K
echo "# server on port $PORT (${SECONDS}s)"

python3 "$T/client.py" "$PORT" "$T/table" 3
rc=$?
case $rc in
0) ok "all table rows" ;;
1) bad "table rows failed (above)" ;;
*) bad "the table client failed (exit $rc)" ;;
esac
kill -0 "$PID" 2>/dev/null && ok "server alive after the table" || bad "server died"
stop_server; expect "SIGTERM exits 0" 0 $?
expect "no temporary files left" 0 "$(ls -A "$ROOT" | grep -c '^\.zbl-tmp')"

echo "# $checks checks, $fails failed (${SECONDS}s)"
[ "$fails" -eq 0 ]
