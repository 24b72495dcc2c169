#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Usage: install_test.sh BUILD_DIR
#
# Installs the built tree into a temporary prefix and checks it the way a user
# of the library would see it:
#  - a program built outside the tree with `pkg-config --cflags --libs zbl`
#    links libzbl.so and computes the right results;
#  - the same program built with `pkg-config --static` carries libzbl.a and no
#    dependency on libzbl.so (Libs.private supplies ISA-L and pthread);
#  - libzbl.so exports only zbl_* symbols (no zbl__ internals) and its soname
#    is libzbl.so.0;
#  - a CMake project using find_package(zbl) configures and builds against
#    zbl::zbl and zbl::zbl_static.
#  - every public function of the installed zbl.h has a man page in
#    share/man/man3 (and no other page is there but zbl(3)); man renders each
#    with NAME, SYNOPSIS, DESCRIPTION, RETURN VALUE and MAY IT COPY? without a
#    groff warning; `man zbl_splice_to` finds its page through MANPATH.
# Environment: CC and CMAKE choose the tools; ZBL_SANITIZE_FLAGS must hold the
# -fsanitize flags the tree was built with, since a sanitized library can only
# be loaded by a program built with the same runtime.
set -eu

build_dir=${1:?usage: $0 BUILD_DIR}
CC=${CC:-cc}
CMAKE=${CMAKE:-cmake}
san=${ZBL_SANITIZE_FLAGS:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zbl-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

fail() {
	echo "install_test: FAIL: $*" >&2
	exit 1
}
step() {
	echo "install_test: $*"
}

step "installing $build_dir into $prefix"
"$CMAKE" --install "$build_dir" --prefix "$prefix" >"$tmp/install.log" 2>&1 \
	|| { cat "$tmp/install.log" >&2; fail "cmake --install"; }

for f in include/zbl.h lib/libzbl.so lib/libzbl.so.0 lib/libzbl.a \
	 lib/pkgconfig/zbl.pc lib/cmake/zbl/zblConfig.cmake \
	 lib/cmake/zbl/zblConfigVersion.cmake share/man/man3/zbl.3 \
	 share/man/man3/zbl_splice_to.3; do
	[ -e "$prefix/$f" ] || fail "$f not installed"
done

step "checking the soname"
soname=$(readelf -d "$prefix/lib/libzbl.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "libzbl.so.0" ] || fail "soname is '$soname', want libzbl.so.0"

step "checking exported symbols"
nm -D --defined-only "$prefix/lib/libzbl.so" | awk '{ print $NF }' >"$tmp/exports"
grep -q '^zbl_new$' "$tmp/exports" || fail "zbl_new is not exported"
if grep -v '^zbl_' "$tmp/exports" >"$tmp/bad" || grep '^zbl__' "$tmp/exports" >>"$tmp/bad"; then
	cat "$tmp/bad" >&2
	fail "libzbl.so exports symbols other than the zbl_ API"
fi

# The program is written here, outside the source tree, so it can only
# reach zbl through what was installed.
cat >"$tmp/prog.c" <<'PROG'
#include <zbl.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	zbl_t *bl = zbl_new();
	const char *digits = "123456789";
	uint32_t crc;
	int ret;

	if (!bl) {
		perror("zbl_new");
		return 1;
	}
	ret = zbl_append(bl, digits, strlen(digits));
	if (ret != 0) {
		fprintf(stderr, "zbl_append: %d\n", ret);
		return 1;
	}
	if (zbl_length(bl) != 9) {
		fprintf(stderr, "zbl_length: %zu, want 9\n", zbl_length(bl));
		return 1;
	}
	/* The CRC-32C check value, in Ceph's no-inversion convention. */
	crc = ~zbl_crc32c(bl, ~0u);
	if (crc != 0xE3069283u) {
		fprintf(stderr, "crc32c: 0x%08X, want 0xE3069283\n", (unsigned)crc);
		return 1;
	}
	zbl_free(bl);
	printf("ok %s\n", ZBL_VERSION_STRING);
	return 0;
}
PROG

pc() {
	PKG_CONFIG_PATH=$prefix/lib/pkgconfig PKG_CONFIG_LIBDIR= pkg-config "$@"
}
# The pkg-config output must name the temporary prefix, not the configure-time one.
pc --cflags zbl | grep -q -- "-I$prefix/include" || fail "zbl.pc Cflags: $(pc --cflags zbl)"

step "building with pkg-config (shared): $(pc --cflags --libs zbl)"
# $san and the pkg-config output are flag lists: split on purpose.
# shellcheck disable=SC2046,SC2086
"$CC" $san -o "$tmp/prog" "$tmp/prog.c" $(pc --cflags --libs zbl) \
	|| fail "building against the shared library"
readelf -d "$tmp/prog" | grep -q 'NEEDED.*\[libzbl\.so\.0\]' \
	|| fail "prog does not need libzbl.so.0"
LD_LIBRARY_PATH=$prefix/lib "$tmp/prog" || fail "prog (shared) failed"

# ISA-L ships no static archive on Debian, so only libzbl itself is linked
# statically: -lzbl becomes -l:libzbl.a and the private dependencies come
# from Libs.private.
static_libs=$(pc --static --libs zbl)
case " $static_libs " in
*" -lisal "*) ;;
*) fail "pkg-config --static --libs zbl lacks -lisal: $static_libs" ;;
esac
static_libs=$(echo " $static_libs " | sed 's/ -lzbl / -l:libzbl.a /')
step "building with pkg-config --static:$static_libs"
# shellcheck disable=SC2046,SC2086
"$CC" $san -o "$tmp/prog_static" "$tmp/prog.c" $(pc --static --cflags zbl) $static_libs \
	|| fail "building against the static library"
if readelf -d "$tmp/prog_static" | grep -q 'NEEDED.*libzbl'; then
	fail "prog_static still needs libzbl.so"
fi
"$tmp/prog_static" || fail "prog_static failed"

step "building a CMake project with find_package(zbl)"
mkdir "$tmp/cmake-src"
cp "$tmp/prog.c" "$tmp/cmake-src/prog.c"
cat >"$tmp/cmake-src/CMakeLists.txt" <<CML
cmake_minimum_required(VERSION 3.25)
project(zbl_consumer LANGUAGES C)
find_package(zbl 0.1 REQUIRED)
if(NOT zbl_DIR STREQUAL "$prefix/lib/cmake/zbl")
	message(FATAL_ERROR "found zbl in \${zbl_DIR}, not in the test prefix")
endif()
add_executable(prog_shared prog.c)
target_link_libraries(prog_shared PRIVATE zbl::zbl)
add_executable(prog_static prog.c)
target_link_libraries(prog_static PRIVATE zbl::zbl_static)
CML
"$CMAKE" -S "$tmp/cmake-src" -B "$tmp/cmake-build" \
	-DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$CC" \
	-DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" \
	-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
	>"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log" >&2; fail "configuring the find_package project"; }
"$CMAKE" --build "$tmp/cmake-build" >"$tmp/cmake-build.log" 2>&1 \
	|| { cat "$tmp/cmake-build.log" >&2; fail "building the find_package project"; }
# CMake gives programs a build RPATH to imported libraries, so no
# LD_LIBRARY_PATH here: this also checks the imported location is right.
"$tmp/cmake-build/prog_shared" || fail "find_package prog_shared failed"
readelf -d "$tmp/cmake-build/prog_shared" | grep -q 'NEEDED.*\[libzbl\.so\.0\]' \
	|| fail "find_package prog_shared does not need libzbl.so.0"
"$tmp/cmake-build/prog_static" || fail "find_package prog_static failed"

step "checking the man pages"
command -v man >/dev/null || fail "man not found (apt-get install man-db groff-base)"
man3=$prefix/share/man/man3
# A locale every Debian has, so that man has nothing to say about the locale.
export LC_ALL=C.UTF-8
# The public functions, as a compiler reads the installed header: whatever is
# declared only under #ifdef, for internal use, is not among them. This does
# not ask tools/man-pages.py, so a function it misses is caught here.
"$CC" -E -P -x c "$prefix/include/zbl.h" >"$tmp/zbl.i" || fail "preprocessing zbl.h"
tr '\n' ' ' <"$tmp/zbl.i" | grep -oE '\bzbl_[a-z0-9][a-z0-9_]* *\(' | sed 's/ *($//' \
	| sort -u >"$tmp/functions"
grep -q '^zbl_splice_to$' "$tmp/functions" || fail "no zbl_splice_to in the preprocessed zbl.h"
{ echo zbl; cat "$tmp/functions"; } | sort >"$tmp/want-pages"
find "$man3" -name '*.3' | sed 's|.*/||; s|\.3$||' | sort >"$tmp/pages"
if ! cmp -s "$tmp/want-pages" "$tmp/pages"; then
	diff "$tmp/want-pages" "$tmp/pages" >&2 || true
	fail "man3 pages differ from zbl(3) and the public functions of zbl.h ('<' missing, '>' extra)"
fi
while read -r name; do
	page=$man3/$name.3
	# groff's warnings, which man shows with --warnings, must be none.
	MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null | sed "s|^|$name.3: |" >"$tmp/warnings"
	if [ -s "$tmp/warnings" ]; then
		cat "$tmp/warnings" >&2
		fail "man reports warnings for $name.3"
	fi
	MANWIDTH=80 man -l "$page" >"$tmp/rendered" 2>&1 || fail "man -l $name.3 failed"
	for section in NAME SYNOPSIS DESCRIPTION; do
		grep -q "^$section\$" "$tmp/rendered" || fail "$name.3 has no $section"
	done
	[ "$name" = zbl ] && continue
	grep -q "^ *$name  *- " "$tmp/rendered" || fail "$name.3: NAME does not start with $name"
	grep -q "$name(" "$tmp/rendered" || fail "$name.3: no prototype in SYNOPSIS"
	# RETURN VALUE and MAY IT COPY? must each have text under them.
	for section in "RETURN VALUE" "MAY IT COPY?"; do
		awk -v s="$section" '$0 == s { on = 1; next } on && /^[^ ]/ { exit }
			on && /[^ ]/ { found = 1 } END { exit !found }' "$tmp/rendered" \
			|| fail "$name.3 has no (or an empty) $section section"
	done
done <"$tmp/want-pages"
# What a user types after installing: man finds the page by name.
MANPATH=$prefix/share/man MANWIDTH=80 man zbl_splice_to >"$tmp/rendered" 2>&1 \
	|| { cat "$tmp/rendered" >&2; fail "man zbl_splice_to with MANPATH=$prefix/share/man"; }
for want in "^SYNOPSIS\$" "ssize_t zbl_splice_to(zbl_t \*bl" "^RETURN VALUE\$" "^ERRORS\$" \
	    "^MAY IT COPY?\$" "bytes_spliced_out" "fallbacks"; do
	grep -q "$want" "$tmp/rendered" || fail "man zbl_splice_to shows no '$want'"
done

step "ok"
