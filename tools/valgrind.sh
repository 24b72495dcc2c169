#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Runs every test program of a build under valgrind memcheck:
#   tools/valgrind.sh BUILD_DIR [JOBS]
# Fails on any memcheck error, on a definite or indirect leak, and on a
# descriptor left open at exit that the library or test did not mean to keep
# (--track-fds=yes; the allowed ones are listed in fd_allowed below).
# Logs go to BUILD_DIR/valgrind/<test>.log. Tests that exit 77 are skipped.
set -eu

build=$(cd "${1:?usage: valgrind.sh BUILD_DIR [JOBS]}" && pwd)
jobs=${2:-2}
top=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null 2>&1 || { echo "SKIP: valgrind not installed"; exit 0; }
logdir="$build/valgrind"
mkdir -p "$logdir"

run_one() {
	t=$1
	name=$(basename "$t")
	log="$logdir/$name.log"
	start=$(date +%s)
	set +e
	# ZBL_VALGRIND=1 lets a test skip what valgrind itself cannot run.
	# Forked children (a test's helper processes) inherit the test's
	# descriptors by design: only the test process itself is reported.
	# Tests re-run themselves as children (rlimits, other users); those
	# children run natively: --trace-children would re-enter valgrind with
	# the lowered descriptor limit.
	(cd "$build/tests" && ZBL_VALGRIND=1 valgrind --tool=memcheck --error-exitcode=99 \
		--leak-check=full --errors-for-leak-kinds=definite,indirect \
		--show-leak-kinds=definite,indirect --track-fds=yes --child-silent-after-fork=yes \
		--suppressions="$top/tools/valgrind.supp" --log-file="$log" \
		"./$name" >"$log.out" 2>&1)
	rc=$?
	set -e
	secs=$(($(date +%s) - start))
	# Descriptors the program opened and left open at exit, other than the
	# one the library keeps for good (/dev/null, for discarding pipe bytes);
	# those inherited from whoever started valgrind are not the test's.
	leaked=$(awk '
		pending != "" {
			if ($0 !~ /inherited from parent/)
				print pending
			pending = ""
		}
		/^==[0-9]+== Open (file )?descriptor [0-9]+:/ {
			fd = $0; sub(/.*descriptor /, "", fd); sub(/:.*/, "", fd)
			what = $0; sub(/.*descriptor [0-9]+: ?/, "", what)
			if (fd + 0 > 2 && what != "/dev/null")
				pending = fd " " what
		}' "$log")
	if [ "$rc" = 77 ]; then
		echo "SKIP $name (${secs}s)"
	elif [ "$rc" != 0 ]; then
		echo "FAIL $name: exit $rc (${secs}s), see $log and $log.out"
		return 1
	elif [ -n "$leaked" ]; then
		echo "FAIL $name: descriptors open at exit (${secs}s): $leaked"
		return 1
	else
		echo "ok   $name (${secs}s)"
	fi
}

if [ "$jobs" = --one ]; then
	run_one "$3"
	exit
fi
tests=$(ls "$build"/tests/test_* 2>/dev/null || true)
[ -n "$tests" ] || { echo "no test programs in $build/tests"; exit 1; }
start=$(date +%s)
status=0
# One valgrind per test program, $jobs at a time.
printf '%s\n' $tests | xargs -P "$jobs" -n 1 sh "$0" "$build" --one || status=1
echo "valgrind: $(($(date +%s) - start)) s in all"
exit $status
