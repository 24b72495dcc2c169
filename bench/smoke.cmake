# SPDX-License-Identifier: MIT
#
# ctest bench_smoke: runs zbl_bench --quick and checks that it finished,
# that bench-results.json parses, and that every row ran and moved the
# right bytes. Timing is never asserted: a busy machine must not fail it.
#
#   cmake -DBENCH=path/to/zbl_bench -DOUT=dir -P bench/smoke.cmake
if(NOT BENCH OR NOT OUT)
	message(FATAL_ERROR "usage: cmake -DBENCH=zbl_bench -DOUT=dir -P smoke.cmake")
endif()
file(MAKE_DIRECTORY "${OUT}")
execute_process(
	COMMAND "${BENCH}" --quick --rounds 1 --dir "${OUT}"
		--json "${OUT}/bench-results.json" --svg "${OUT}/bench-results.svg"
	RESULT_VARIABLE rc
	OUTPUT_VARIABLE out
	ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
	message(FATAL_ERROR "zbl_bench --quick exited with ${rc}")
endif()

file(READ "${OUT}/bench-results.json" json)
string(JSON nrows ERROR_VARIABLE jerr LENGTH "${json}" rows)
if(jerr)
	message(FATAL_ERROR "bench-results.json is not valid JSON: ${jerr}")
endif()
if(nrows LESS 13)
	message(FATAL_ERROR "bench-results.json has ${nrows} rows, expected at least 13")
endif()
math(EXPR last "${nrows} - 1")
foreach(i RANGE ${last})
	string(JSON name GET "${json}" rows ${i} name)
	string(JSON ok GET "${json}" rows ${i} ok)
	string(JSON nvar LENGTH "${json}" rows ${i} variants)
	if(NOT ok OR nvar LESS 2)
		message(FATAL_ERROR "row ${name}: ok=${ok}, ${nvar} variants")
	endif()
endforeach()
string(JSON nmem LENGTH "${json}" memory)
if(nmem LESS 1)
	message(FATAL_ERROR "bench-results.json has no memory figures")
endif()

file(READ "${OUT}/bench-results.svg" svg)
if(NOT svg MATCHES "^<svg " OR NOT svg MATCHES "</svg>\n$")
	message(FATAL_ERROR "bench-results.svg is not an SVG document")
endif()
message("bench_smoke: ${nrows} rows ran and checked their bytes; JSON and SVG written")
