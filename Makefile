# SPDX-License-Identifier: MIT
#
# The user's interface to the build. CMake does the real work in build/.
#
#   make                     configure and build into build/
#   make check               build and run the tests (with replays of the
#                            fuzz corpora and short fuzz runs: a minute of
#                            the library, half a minute of the server's
#                            request heads), then
#                            again with AddressSanitizer and UBSan in
#                            build-asan/, then the thread tests with
#                            ThreadSanitizer in build-tsan/
#   make check-valgrind      the tests under valgrind memcheck (--track-fds)
#   make fuzz                fuzz each of FUZZ_TARGETS (default: ops, the
#                            library, and http_head, the server's request
#                            heads; fuzz/README.md) with clang-14 and
#                            libFuzzer for FUZZ_SECONDS (default 600) in
#                            build-fuzz/
#   make install PREFIX=dir  install into dir (default /usr/local), man
#                            pages in dir/share/man/man3
#   make docs                API documentation from include/zbl.h into build/docs
#   make demo                build, run examples/demo and the zbl serve demo
#   make bench               build and run bench/zbl_bench (BENCH_ARGS="--quick",
#                            BENCH_SCALE=0.25 to shrink); writes
#                            bench-results.json and bench-results.svg
#   make bench-server        zbl serve vs nginx-light (curl and wrk)
#   make clean               remove the build directories
#
# Every target that builds first checks the Debian packages it needs with
# tools/deps.sh; add more with EXTRA_DEPS="pkg ...".

BUILD_DIR   ?= build
ASAN_DIR    ?= build-asan
TSAN_DIR    ?= build-tsan
FUZZ_DIR    ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= ops http_head
# The programs that run threads against shared storage, for ThreadSanitizer,
# the object server's test (event loops and sync threads share requests), and
# test_ring (a thread closes a peer while zbl_ring_free waits; the engines'
# own threads, if any, run under it too).
TSAN_TESTS  := test_threads test_kpage_threads cli_serve test_ring
TSAN_TARGETS := test_threads test_kpage_threads zbl_cli test_ring
SANITIZERS  ?= address,undefined
PREFIX      ?= /usr/local
JOBS        ?= $(shell nproc 2>/dev/null || echo 1)
CMAKE       ?= cmake
CTEST       ?= ctest
CMAKE_ARGS  ?=

# python3 writes the man pages (tools/man-pages.py); make check reads them
# with man-db and groff.
DEPS        := cmake gcc make pkg-config libc6-dev libisal-dev liburing-dev libcmocka-dev doxygen \
               node-llhttp curl strace python3 man-db groff-base
# Needed only by the benchmarks (libevent's evbuffer is a baseline).
BENCH_DEPS  := libevent-dev
# The fuzz tests that make check runs (and make fuzz): clang with libFuzzer,
# and llhttp's sources for the server's head parser.
FUZZ_DEPS   := clang-14 libclang-rt-14-dev node-llhttp
# perf records the kernel's io_uring tracepoints for the server's ring-order
# test (tests/cli_serve_ring_sync_test.sh), which strace cannot see.
CHECK_DEPS  := linux-perf
EXTRA_DEPS  ?=
BENCH_ARGS  ?=

# CMake and ctest parallelise themselves; running this Makefile's recipes in
# parallel would only race two configurations of the same directory.
.NOTPARALLEL:
MAKEFLAGS += --no-print-directory

.PHONY: all deps bench-deps fuzz-deps check-deps build configure check check-asan check-tsan check-valgrind fuzz install \
	docs demo bench bench-server clean

all: build

deps:
	@tools/deps.sh $(DEPS) $(EXTRA_DEPS)

bench-deps:
	@tools/deps.sh $(BENCH_DEPS)

fuzz-deps:
	@tools/deps.sh $(FUZZ_DEPS)

check-deps:
	@tools/deps.sh $(CHECK_DEPS)

# Configuring every time is cheap and picks up new files in src/, tests/,
# bench/ and examples/ as well as changed CMAKE_ARGS.
# Its output goes to a log that is shown only if it fails.
configure: deps
	@mkdir -p $(BUILD_DIR)
	@$(CMAKE) -S . -B $(BUILD_DIR) $(CMAKE_ARGS) >$(BUILD_DIR)/configure.log 2>&1 \
		|| { cat $(BUILD_DIR)/configure.log; exit 1; }

build: configure
	$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)

check: fuzz-deps bench-deps check-deps build
	cd $(BUILD_DIR) && $(CTEST) --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory check-asan
	@$(MAKE) --no-print-directory check-tsan

check-asan: deps
	@mkdir -p $(ASAN_DIR)
	@$(CMAKE) -S . -B $(ASAN_DIR) -DZBL_SANITIZE=$(SANITIZERS) $(CMAKE_ARGS) \
		>$(ASAN_DIR)/configure.log 2>&1 || { cat $(ASAN_DIR)/configure.log; exit 1; }
	$(CMAKE) --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && $(CTEST) --output-on-failure -j $(JOBS)

check-tsan: deps
	@mkdir -p $(TSAN_DIR)
	@$(CMAKE) -S . -B $(TSAN_DIR) -DZBL_SANITIZE=thread -DZBL_BUILD_BENCH=OFF \
		-DZBL_BUILD_EXAMPLES=OFF -DZBL_FAULT_INJECTION=OFF $(CMAKE_ARGS) \
		>$(TSAN_DIR)/configure.log 2>&1 || { cat $(TSAN_DIR)/configure.log; exit 1; }
	$(CMAKE) --build $(TSAN_DIR) -j $(JOBS) --target $(TSAN_TARGETS)
	cd $(TSAN_DIR) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $(TSAN_OPTIONS)" \
		$(CTEST) --output-on-failure -j $(JOBS) -R '^($(subst $(eval) ,|,$(TSAN_TESTS)))$$'

# Every test program of build/ under memcheck; see tools/valgrind.sh.
check-valgrind: build
	tools/valgrind.sh $(BUILD_DIR) $(JOBS)

fuzz: fuzz-deps
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz/run.sh fuzz $(FUZZ_DIR) $(FUZZ_SECONDS) $$t"; \
		fuzz/run.sh fuzz $(FUZZ_DIR) $(FUZZ_SECONDS) $$t || exit 1; \
	done

install: build
	$(CMAKE) --install $(BUILD_DIR) --prefix "$(abspath $(PREFIX))"

# Doxyfile writes to build/docs; BUILD_DIR may move it. Warnings, such as an
# undocumented public symbol, fail the target.
docs: deps
	@mkdir -p $(BUILD_DIR)
	{ cat Doxyfile; echo "OUTPUT_DIRECTORY = $(BUILD_DIR)"; } | doxygen -
	@echo "API documentation: $(BUILD_DIR)/docs/index.html"

# The library example, then the object server: 256 MiB up and down with curl,
# zero-copy next to --copy (cli/demo.sh; DEMO_MIB=n for another size).
DEMO_MIB    ?= 256
demo: build
	$(BUILD_DIR)/examples/demo
	@echo
	@cli/demo.sh $(BUILD_DIR)/cli/zbl $(DEMO_MIB)

# The benchmark needs libevent-dev before CMake configures, so that
# bench/zbl_bench is part of the build; the other targets do not need it.
bench: bench-deps build
	$(BUILD_DIR)/bench/zbl_bench $(BENCH_ARGS)

# zbl serve against nginx-light on loopback: PUT with curl, GET with wrk.
bench-server: build
	@tools/deps.sh nginx-light wrk
	@cli/bench_server.sh $(BUILD_DIR)/cli/zbl

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR) $(FUZZ_DIR)
