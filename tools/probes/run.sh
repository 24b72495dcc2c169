#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds and runs the probes behind docs/DESIGN.md, section "Kernel facts
# measured here", so the numbers can be measured again on another machine.
# Takes about half a minute (fresh waits 2 x 10 s). Usage: run.sh [DIR]
# DIR (default /tmp) is where the file probes write; they clean up.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-/tmp}
bin=$(mktemp -d)
scratch=$(mktemp -d "$dir/zbl-probe.XXXXXX")
trap 'rm -rf "$bin" "$scratch"' EXIT
chmod 755 "$bin"
for p in pipecap tcppipe nonblock sigpipe pages dioalign fresh syncost; do
	cc -O2 -o "$bin/$p" "$here/$p.c"
done
echo "== pipecap"; "$bin/pipecap"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	echo "== pipecap as nobody"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$bin/pipecap"
fi
echo "== tcppipe"
for a in "100 400" "1000 40" "1448 60" "16384 20" "1048576 1"; do
	# shellcheck disable=SC2086
	timeout 20 "$bin/tcppipe" $a
done
echo "== nonblock"; "$bin/nonblock"
echo "== sigpipe"; "$bin/sigpipe"
echo "== pages"; "$bin/pages" "$scratch"
echo "== dioalign"; touch "$scratch/f"; "$bin/dioalign" "$scratch/f"
echo "== fresh"; "$bin/fresh" 10
echo "== syncost"; "$bin/syncost" "$scratch" 3
