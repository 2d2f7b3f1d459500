# ladder build. `make run` and `make test` are the two commands a newcomer needs;
# both install missing Debian packages first (scripts/deps.sh).
#
#   make            build build/rel/ladder
#   make run        build and start `ladder serve` on 127.0.0.1:8080, data in ./data
#   make test       every suite: unit, integration, fuzz (bounded), ASan+UBSan
#   make bench      throughput figures side by side with references (not in test)
#   make bench-scale  throughput of 1..8 capped app nodes behind HAProxy, USL fit
#   make fuzz       longer fuzzing runs (FUZZ_SECONDS per target)
#   make format     clang-format every C file
#   make format-check  list the C files clang-format would change; fail if any
#
# `make -j"$(nproc)" test` (what .ci/run does) builds in parallel: every
# sub-make is called as $(MAKE), so -j reaches it through the jobserver.
#
# BUILD=rel (default, -O2) or BUILD=asan (ASan+UBSan) picks the build folder.

BUILD ?= rel
B := build/$(BUILD)
CC ?= gcc
# Pinned to the version whose sanitizer and libFuzzer runtimes
# (libclang-rt-14-dev) scripts/deps.sh installs: a newer default clang would
# link against runtimes that are not there.
CLANG := clang-14
CLANG_FORMAT := clang-format-14
PKGS := libuv sqlite3 libsodium jansson zlib inih vips libcurl libpq hiredis

# Recursive (=) so pkg-config runs after scripts/deps.sh has installed things.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wvla -Wformat=2 -Wno-unused-parameter
CFLAGS_COMMON = -std=c17 -D_GNU_SOURCE -pthread -g $(WARN) -Isrc $(PKG_CFLAGS)
ifeq ($(BUILD),asan)
CFLAGS_MODE := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS_MODE := -fsanitize=address,undefined
else ifeq ($(BUILD),fuzz)
CC := $(CLANG)
CFLAGS_MODE := -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
LDFLAGS_MODE := -fsanitize=address,undefined
else
CFLAGS_MODE := -O2
LDFLAGS_MODE :=
endif
CFLAGS_ALL = $(CFLAGS_COMMON) $(CFLAGS_MODE) $(CFLAGS)
LIBS = $(PKG_LIBS) -lm -pthread

LIB_SRC := $(sort $(shell find src -name '*.c' ! -path src/main.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/unit/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/tests/fuzz/%)

.PHONY: all build deps run test test-builds test-build-rel test-build-asan test-build-fuzz \
	test-unit test-integration bench bench-scale cluster fuzz fuzz-build format format-check clean
all: build
build: $(B)/ladder $(UNIT_BIN)

deps:
	@scripts/deps.sh test

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(B)/libladder.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/ladder: $(B)/src/main.o $(B)/libladder.a
	$(CC) $(LDFLAGS_MODE) -o $@ $^ $(LIBS)

$(B)/tests/unit/%: tests/unit/%.c tests/unit/unit.h $(B)/libladder.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -MF $@.d -Itests/unit -o $@ $< $(B)/libladder.a $(LDFLAGS_MODE) $(LIBS)

# libFuzzer targets: `make BUILD=fuzz fuzz-build` (clang, ASan+UBSan).
fuzz-build: $(FUZZ_BIN)

build/fuzz/tests/fuzz/%: tests/fuzz/%.c build/fuzz/libladder.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer,address,undefined -o $@ $< build/fuzz/libladder.a $(LIBS)

run:
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory build/rel/ladder
	@mkdir -p data
	./build/rel/ladder serve --listen 127.0.0.1:8080 --data ./data

# The whole deployment on loopback (docs/cluster.md): etcd, PostgreSQL
# under Patroni, HAProxy, app nodes. CLUSTER_FLAGS="--nodes 4 --dir /tmp/c".
cluster:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory BUILD=rel build/rel/ladder
	@deploy/cluster up $(CLUSTER_FLAGS)

# Every suite; the last line is "N passed, N failed". The formatting check
# comes first (it takes a second); the three builds run side by side.
test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory test-builds
	@tests/run.sh

test-builds: test-build-rel test-build-asan test-build-fuzz
test-build-rel test-build-asan:
	@$(MAKE) --no-print-directory BUILD=$(@:test-build-%=%) build
test-build-fuzz:
	@$(MAKE) --no-print-directory BUILD=fuzz fuzz-build

test-unit: build
	@tests/run.sh unit

test-integration: build
	@tests/run.sh integration

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory BUILD=rel build
	@bench/run.sh

# Throughput for 1 to 8 CPU-capped app nodes behind HAProxy, and its USL fit
# (also a section of `make bench`; docs/bench.md).
bench-scale:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory BUILD=rel build
	@bench/scale.sh

FUZZ_SECONDS ?= 300
fuzz:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory BUILD=fuzz fuzz-build
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

FORMAT_SRC = $(sort $(shell find src tests -name '*.[ch]'))

format:
	$(CLANG_FORMAT) -i $(FORMAT_SRC)

# Lists every file clang-format would change and fails if there is one
# (`make test` runs it first, so CI rejects unformatted code).
format-check:
	@command -v $(CLANG_FORMAT) >/dev/null || \
		{ echo "format-check: $(CLANG_FORMAT) not found (scripts/deps.sh test installs it)" >&2; exit 1; }
	@bad=; \
	for f in $(FORMAT_SRC); do \
		$(CLANG_FORMAT) --dry-run -Werror "$$f" >/dev/null 2>&1 || bad="$$bad $$f"; \
	done; \
	if [ -n "$$bad" ]; then \
		echo "format-check: not clang-formatted (fix with make format):" >&2; \
		for f in $$bad; do echo "  $$f" >&2; done; \
		exit 1; \
	fi; \
	echo "format-check: $(words $(FORMAT_SRC)) files clang-formatted"

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(B)/src/main.d $(UNIT_BIN:=.d)
