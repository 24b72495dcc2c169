#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Builds and runs the libFuzzer target fuzz/fuzz_ops.c with clang.
#
#   fuzz/run.sh fuzz  OUTDIR [SECONDS]   fuzz for SECONDS (default 600)
#   fuzz/run.sh check OUTDIR [SECONDS]   replay fuzz/corpus and fuzz/regressions,
#                                        then fuzz for SECONDS (default 60)
#
# New inputs go to OUTDIR/corpus (the committed seed corpus is only read);
# crashes to OUTDIR/crash-*: keep each as fuzz/regressions/<name> once fixed.
# Exits 77 (skipped) when clang-14 or libFuzzer is not installed.
set -eu

mode=${1:?usage: run.sh fuzz|check OUTDIR [SECONDS]}
out=${2:?usage: run.sh fuzz|check OUTDIR [SECONDS]}
top=$(cd "$(dirname "$0")/.." && pwd)
CLANG=${CLANG:-clang-14}
case $mode in
fuzz) secs=${3:-600} ;;
check) secs=${3:-60} ;;
*) echo "run.sh: unknown mode $mode" >&2; exit 2 ;;
esac

if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "SKIP: $CLANG not found (apt-get install clang-14 libclang-rt-14-dev)"
	exit 77
fi
mkdir -p "$out/corpus"
probe="$out/probe.c"
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$probe"
if ! "$CLANG" -fsanitize=fuzzer "$probe" -o "$out/probe" 2>/dev/null; then
	echo "SKIP: $CLANG cannot link -fsanitize=fuzzer (apt-get install libclang-rt-14-dev)"
	exit 77
fi

bin="$out/fuzz_ops"
# -O1 keeps the sanitizers' reports readable and is what libFuzzer suggests.
"$CLANG" -std=gnu11 -D_GNU_SOURCE -g -O1 -Wall -Wextra \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I"$top/include" -I"$top/src" \
	"$top"/src/*.c "$top/fuzz/fuzz_ops.c" -lisal -lpthread -o "$bin"

# libFuzzer's own failure status is 77, which ctest reads as "skipped".
opts="-timeout=30 -rss_limit_mb=4096 -max_len=4096 -artifact_prefix=$out/ -print_final_stats=1"
opts="$opts -error_exitcode=1 -timeout_exitcode=1"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ "$mode" = check ]; then
	set -- "$top"/fuzz/corpus/* "$top"/fuzz/regressions/*
	files=
	for f in "$@"; do
		case $f in *.md) continue ;; esac
		[ -f "$f" ] && files="$files $f"
	done
	if [ -n "$files" ]; then
		echo "== replaying $(echo $files | wc -w) corpus and regression inputs"
		# shellcheck disable=SC2086
		"$bin" $opts $files
	fi
fi
echo "== fuzzing for $secs s"
"$bin" $opts -max_total_time="$secs" "$out/corpus" "$top/fuzz/corpus"
