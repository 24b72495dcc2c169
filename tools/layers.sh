#!/bin/sh
# SPDX-License-Identifier: MIT
#
# tools/layers.sh OBJDIR: checks that calls among the library's source files
# only go down the layers of src/zbl_int.h. It reads each object file's
# defined and undefined global symbols (nm), finds for every symbol a file
# uses which file defines it, and fails on any use of a file that is not
# below the user in the order here. The order is total, so no two files can
# call each other (no circle) and a new file must be placed in it.
#
# The header's inline functions are compiled into their callers: a call
# through one (zbl__block_data -> zbl__block_materialize) counts as the
# caller's own. Calls through function pointers (struct zbl__kind) are not
# symbol references and are not seen: block.c reaches the kinds that way.
#
# Prints the layers and exits 0, or prints each upward use and exits 1.
set -eu

objdir=${1:?usage: tools/layers.sh OBJDIR (e.g. build/CMakeFiles/zbl_objects.dir/src)}
# Objects of files since removed from src/ may linger in a build directory.
srcdir=$(dirname "$0")/../src

# layer file... (bottom first); each file's rank is its position.
ORDER='
1 fault stats mem pipe fdutil
2 kind_mem kind_ref kind_file kind_pipe block
3 list iter crc rebuild hexdump
4 move_in move_out
5 ring_uring ring caps
'

ranks=$(mktemp)
defs=$(mktemp)
bad=$(mktemp)
trap 'rm -f "$ranks" "$defs" "$bad"' EXIT

echo "$ORDER" | awk 'NF { for (i = 2; i <= NF; i++) print $i, ++n, $1 }' >"$ranks"

status=0
objs=
for c in "$srcdir"/*.c; do
	objs="$objs $objdir/$(basename "$c").o"
done

for o in $objs; do
	f=$(basename "$o" .c.o)
	if ! grep -q "^$f " "$ranks"; then
		echo "layers: src/$f.c is in no layer: add it to ORDER in $0"
		status=1
	fi
	nm --defined-only -g "$o" | awk -v f="$f" 'NF == 3 { print $3, f }' >>"$defs"
done
[ "$status" = 0 ] || exit 1

for o in $objs; do
	f=$(basename "$o" .c.o)
	nm --undefined-only -g "$o" | awk '{ print $NF }' | while read -r sym; do
		def=$(awk -v s="$sym" '$1 == s { print $2; exit }' "$defs")
		[ -n "$def" ] && [ "$def" != "$f" ] || continue
		fr=$(awk -v x="$f" '$1 == x { print $2 }' "$ranks")
		dr=$(awk -v x="$def" '$1 == x { print $2 }' "$ranks")
		if [ "$dr" -ge "$fr" ]; then
			echo "layers: src/$f.c uses $sym from src/$def.c, which is not below it"
		fi
	done
done >"$bad"
if [ -s "$bad" ]; then
	cat "$bad"
	exit 1
fi
echo "layers: every call among src/ files goes down:"
echo "$ORDER" | awk 'NF { printf "  %s:", $1; for (i = 2; i <= NF; i++) printf " %s.c", $i; print "" }'
