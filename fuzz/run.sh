#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Builds and runs a libFuzzer target of fuzz/ with clang.
#
#   fuzz/run.sh fuzz  OUTDIR [SECONDS [TARGET]]   fuzz for SECONDS (default 600)
#   fuzz/run.sh check OUTDIR [SECONDS [TARGET]]   replay the target's seed corpus and
#                                                 regressions, then fuzz for SECONDS
#                                                 (default 60)
#
# TARGET is one of:
#   ops        fuzz_ops.c, the library against a model (the default);
#              seeds in fuzz/corpus, regressions in fuzz/regressions
#   http_head  fuzz_http_head.c, zbl serve's request-head parser against a
#              reference; seeds in fuzz/corpus_http, regressions in
#              fuzz/regressions_http. Needs llhttp's C sources (node-llhttp):
#              LLHTTP_INCLUDE_DIR and LLHTTP_SOURCES (its api.c, http.c and
#              llhttp.c) say where, Debian's paths by default.
#
# New inputs go to OUTDIR/corpus (ops) or OUTDIR/corpus_http (the committed
# seed corpus is only read); crashes to OUTDIR/crash-* (ops) or
# OUTDIR/http_head-crash-*: keep each as a regression once fixed.
# Exits 77 (skipped) when clang-14, libFuzzer or llhttp is not installed.
set -eu

mode=${1:?usage: run.sh fuzz|check OUTDIR [SECONDS [TARGET]]}
out=${2:?usage: run.sh fuzz|check OUTDIR [SECONDS [TARGET]]}
top=$(cd "$(dirname "$0")/.." && pwd)
CLANG=${CLANG:-clang-14}
case $mode in
fuzz) secs=${3:-600} ;;
check) secs=${3:-60} ;;
*) echo "run.sh: unknown mode $mode" >&2; exit 2 ;;
esac
target=${4:-ops}
case $target in
ops|http_head) ;;
*) echo "run.sh: unknown target $target (ops or http_head)" >&2; exit 2 ;;
esac

if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "SKIP: $CLANG not found (apt-get install clang-14 libclang-rt-14-dev)"
	exit 77
fi
mkdir -p "$out"
# One probe per target: ctest runs the targets' checks side by side in OUTDIR.
probe="$out/probe-$target.c"
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$probe"
if ! "$CLANG" -fsanitize=fuzzer "$probe" -o "$out/probe-$target" 2>/dev/null; then
	echo "SKIP: $CLANG cannot link -fsanitize=fuzzer (apt-get install libclang-rt-14-dev)"
	exit 77
fi

bin="$out/fuzz_$target"
# -O1 keeps the sanitizers' reports readable and is what libFuzzer suggests.
cflags="-std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
# libFuzzer's own failure status is 77, which ctest reads as "skipped".
opts="-timeout=30 -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1"
opts="$opts -error_exitcode=1 -timeout_exitcode=1"
case $target in
ops)
	# shellcheck disable=SC2086
	"$CLANG" $cflags -Wall -Wextra -I"$top/include" -I"$top/src" \
		"$top"/src/*.c "$top/fuzz/fuzz_ops.c" -lisal -luring -lpthread -o "$bin"
	seeds="$top/fuzz/corpus"
	regressions="$top/fuzz/regressions"
	corpus="$out/corpus"
	opts="$opts -artifact_prefix=$out/"
	;;
http_head)
	llinc=${LLHTTP_INCLUDE_DIR:-/usr/share/include/llhttp}
	llsrc=${LLHTTP_SOURCES:-/usr/share/llhttp/api.c /usr/share/llhttp/http.c /usr/share/llhttp/llhttp.c}
	for f in "$llinc/llhttp.h" $llsrc; do
		if [ ! -f "$f" ]; then
			echo "SKIP: $f not found (apt-get install node-llhttp)"
			exit 77
		fi
	done
	# llhttp is generated code, built without our warnings; strict mode as
	# in CMakeLists.txt, where the header must see the same macro.
	objs=
	for f in $llsrc; do
		o="$out/llhttp-$(basename "$f" .c).o"
		# shellcheck disable=SC2086
		"$CLANG" $cflags -w -DLLHTTP_STRICT_MODE=1 -I"$llinc" -c "$f" -o "$o"
		objs="$objs $o"
	done
	# shellcheck disable=SC2086
	"$CLANG" $cflags -Wall -Wextra -DLLHTTP_STRICT_MODE=1 -I"$top/include" \
		-I"$top/cli/serve" -I"$llinc" "$top/cli/serve/http.c" \
		"$top/fuzz/fuzz_http_head.c" $objs -o "$bin"
	seeds="$top/fuzz/corpus_http"
	regressions="$top/fuzz/regressions_http"
	corpus="$out/corpus_http"
	# The reference's and llhttp's byte comparisons guide mutations (value
	# profile); it found "RTSP/1.0" taken for HTTP/1.0 in seconds, where
	# plain coverage had not in minutes.
	opts="$opts -artifact_prefix=$out/http_head- -use_value_profile=1"
	opts="$opts -dict=$top/fuzz/http_head.dict"
	;;
esac
mkdir -p "$corpus"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ "$mode" = check ]; then
	set -- "$seeds"/* "$regressions"/*
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
# shellcheck disable=SC2086
"$bin" $opts -max_total_time="$secs" "$corpus" "$seeds"
