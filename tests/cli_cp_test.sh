#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Usage: tests/cli_cp_test.sh PATH/TO/zbl
#
# `zbl cp` between files, standard streams, TCP (connect and listen) and a
# Unix socket, its command-line errors, and `zbl caps`.
set -u

ZBL=${1:?usage: $0 PATH/TO/zbl}
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not installed"; exit 77; }

T=$(mktemp -d /tmp/zbl-cp-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { fails=$((fails + 1)); echo "FAIL $*"; }
expect() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: want '$2', got '$3'"; fi; }
same() { if cmp -s "$2" "$3"; then ok "$1"; else bad "$1: $2 and $3 differ"; fi; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

head -c 5000000 /dev/urandom >"$T/src"

echo "# caps"
"$ZBL" caps >"$T/caps"; expect "caps exits 0" 0 $?
grep -q '^pipe-max-size' "$T/caps" && ok "caps prints pipe-max-size" || bad "caps: $(cat "$T/caps")"
"$ZBL" caps extra >/dev/null 2>&1; expect "caps with an argument exits 2" 2 $?

echo "# command line"
"$ZBL" cp >/dev/null 2>&1; expect "cp without arguments exits 2" 2 $?
"$ZBL" cp a b c >/dev/null 2>&1; expect "cp with three arguments exits 2" 2 $?
"$ZBL" cp --bogus a b >/dev/null 2>&1; expect "cp unknown option exits 2" 2 $?
"$ZBL" cp tcp: "$T/x" >/dev/null 2>&1; expect "cp empty address exits 2" 2 $?
"$ZBL" cp "$T/missing" "$T/x" 2>"$T/err"; expect "cp missing source exits 1" 1 $?
grep -q 'No such file' "$T/err" && ok "cp says why" || bad "cp error: $(cat "$T/err")"

echo "# files and streams"
"$ZBL" cp "$T/src" "$T/f1" 2>"$T/err"; expect "file -> file exits 0" 0 $?
same "file -> file bytes" "$T/src" "$T/f1"
grep -q 'zbl cp: 5000000 bytes' "$T/err" && ok "summary of bytes" || bad "summary: $(cat "$T/err")"
grep -q 'kernel pages' "$T/err" && ok "summary of kernel pages" || bad "summary: $(cat "$T/err")"
"$ZBL" cp - - <"$T/src" >"$T/f2" 2>/dev/null; expect "stdin -> stdout exits 0" 0 $?
same "stdin -> stdout bytes" "$T/src" "$T/f2"
cat "$T/src" | "$ZBL" cp -q - "$T/f3"; same "pipe -> file bytes" "$T/src" "$T/f3"
: >"$T/empty"; "$ZBL" cp -q "$T/empty" "$T/f4"; expect "empty file" 0 "$(stat -c %s "$T/f4")"

echo "# sockets"
P=$(free_port)
"$ZBL" cp -q "listen:127.0.0.1:$P" "$T/s1" &
L=$!
for _ in $(seq 50); do "$ZBL" cp -q "$T/src" "tcp:127.0.0.1:$P" 2>/dev/null && break; sleep 0.1; done
wait $L; expect "listen: -> file exits 0" 0 $?
same "tcp -> listen bytes" "$T/src" "$T/s1"

python3 - "$T/sock" "$T/u1" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept(); out = open(sys.argv[2], "wb")
while True:
    b = c.recv(1 << 16)
    if not b: break
    out.write(b)
PY
U=$!
for _ in $(seq 50); do [ -S "$T/sock" ] && break; sleep 0.1; done
"$ZBL" cp -q "$T/src" "unix:$T/sock"; expect "file -> unix exits 0" 0 $?
wait $U
same "file -> unix bytes" "$T/src" "$T/u1"
"$ZBL" cp -q "$T/src" "tcp:127.0.0.1:$(free_port)" 2>"$T/err"; expect "refused connection exits 1" 1 $?

echo "# $fails failed"
[ "$fails" -eq 0 ]
