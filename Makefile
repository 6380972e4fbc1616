# acceptd: a multi-process TCP listener daemon.
# `make` builds build/acceptd; `make check` runs unit and integration tests;
# `make check SANITIZE=1` the same under ASan+UBSan; `make run` tries it.

PREFIX     ?= /usr/local
SYSCONFDIR ?= $(PREFIX)/etc
VERSION    := 0.1.0

CC      ?= cc
B       := build$(if $(SANITIZE),/san)
WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
comma   := ,
SANFLAGS := $(if $(SANITIZE),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
PKGS_CFLAGS := $(shell pkg-config --cflags inih 2>/dev/null)
PKGS_LIBS   := $(shell pkg-config --libs inih 2>/dev/null) -lev
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(SANFLAGS) -Iinclude -Idaemon $(PKGS_CFLAGS) \
             -DACCEPTD_VERSION='"$(VERSION)"' -DSYSCONFDIR='"$(SYSCONFDIR)"' -MMD -MP
LDLIBS  := $(PKGS_LIBS) -ldl

# Everything but main.c goes into a library the tests link against.
LIB_SRC := daemon/log.c daemon/conf.c daemon/listen.c daemon/master.c \
           daemon/worker.c daemon/conn.c daemon/handler.c daemon/proctitle.c \
           daemon/cidr.c daemon/modload.c \
           daemon/handlers/echo.c daemon/handlers/discard.c \
           daemon/handlers/daytime.c daemon/handlers/chargen.c \
           daemon/handlers/http.c daemon/handlers/exec.c \
           daemon/notify.c daemon/activate.c daemon/proxy_proto.c
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
INTEG_BIN := $(INTEG_SRC:tests/integration/%.c=$(B)/tests/%)
# Handler modules: each modules/NAME.c is one module, built with nothing but
# the public header (as a module author builds one) into $(B)/modules/.
# tests/modules/ holds broken and odd ones for the tests (not installed).
MOD_SO  := $(patsubst modules/%.c,$(B)/modules/%.so,$(wildcard modules/*.c))
TMOD_SO := $(patsubst tests/modules/%.c,$(B)/tests/modules/%.so,$(wildcard tests/modules/*.c))
MOD_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(SANFLAGS) -fPIC -shared -Iinclude

.PHONY: all tests check run clean deps fuzz fuzz-build valgrind bench
all: deps $(B)/acceptd $(MOD_SO)

tests: all $(UNIT_BIN) $(INTEG_BIN) $(TMOD_SO)

deps:
	@sh tests/deps.sh

$(B)/acceptd: $(B)/daemon/main.o $(B)/libacceptd.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/modules/%.so: modules/%.c include/acceptd/module.h
	@mkdir -p $(dir $@)
	$(CC) $(MOD_CFLAGS) -o $@ $<

$(B)/tests/modules/%.so: tests/modules/%.c include/acceptd/module.h
	@mkdir -p $(dir $@)
	$(CC) $(MOD_CFLAGS) -o $@ $<

$(B)/libacceptd.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(if $(findstring tests/,$<),$(CHECK_CFLAGS) -Itests) -c -o $@ $<

$(B)/tests/test_%: $(B)/tests/unit/test_%.o $(B)/libacceptd.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

$(B)/tests/test_%: $(B)/tests/integration/test_%.o $(B)/tests/integration/harness.o $(B)/libacceptd.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

# Each test binary runs in its own process; CK_DEFAULT_TIMEOUT bounds each test.
check: tests
	@fail=0; for t in $(UNIT_BIN) $(INTEG_BIN); do \
	  ACCEPTD=$(B)/acceptd CK_DEFAULT_TIMEOUT=60 $$t || fail=1; done; \
	  bash tests/install/check.sh B=$(B) || fail=1; \
	  if [ $$fail = 0 ]; then echo "make check: all tests passed"; else echo "make check: FAILED"; exit 1; fi

# The benchmark (tests/bench/, issue 6): not part of check or CI. Needs wrk
# (and nginx for the comparison; valgrind for instruction counts).
# BENCH_QUICK=1: fewer and shorter rounds, a smoke test of the whole.
BENCH_BIN := $(B)/bench/floor $(B)/bench/load
$(B)/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $<

bench: all $(BENCH_BIN)
	python3 tests/bench/bench.py --acceptd $(B)/acceptd --bin $(B)/bench

run: all
	$(B)/acceptd -f -c conf/acceptd.conf

# The daemon under valgrind (master and workers): serve, TERM, no errors,
# no definite leaks. Needs valgrind; CI runs it.
valgrind: all
	bash tests/valgrind/check.sh $(B)/acceptd

# libFuzzer targets (clang, ASan+UBSan): tests/fuzz/fuzz_NAME.c, seeds in
# tests/fuzz/corpus/NAME/. `make fuzz` runs each for FUZZ_SECONDS; what it
# finds goes to build/fuzz/corpus/NAME/, a crash to build/fuzz/crash-*.
# Coming, once their parsers exist: cidr (allow/deny), proxy (PROXY v1/v2):
# add fuzz_cidr.c / fuzz_proxy.c and their names here.
FUZZ_TARGETS ?= conf http
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FB           := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=gnu11 $(WARN) -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link -Iinclude -Idaemon \
                $(PKGS_CFLAGS) -DACCEPTD_VERSION='"$(VERSION)"' -DSYSCONFDIR='"$(SYSCONFDIR)"' -MMD -MP
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FB)/%.o)
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FB)/fuzz_%)

$(FB)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FB)/fuzz_%: $(FB)/tests/fuzz/fuzz_%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS) -ldl

fuzz-build: deps $(FUZZ_BIN)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FB)/corpus/$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  $(FB)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -max_len=65536 -print_final_stats=1 -artifact_prefix=$(FB)/ \
	    $(FB)/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done; echo "make fuzz: no crash in $(FUZZ_TARGETS)"

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

# after all: and the variables it reads
include install.mk

# `make stress`: the lifecycle load for STRESS_SECONDS (default 60) with a
# reload every 200 ms mixed with TTIN/TTOU; prints connections tried and
# failed, fds and RSS before and after. STRESS_MODE: reuseport (default),
# shared or both.
STRESS_SECONDS ?= 60
STRESS_MODE ?= reuseport
.PHONY: stress
$(B)/tests/run_stress: $(B)/tests/stress/stress.o $(B)/tests/integration/harness.o $(B)/libacceptd.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

stress: all $(B)/tests/run_stress
	ACCEPTD=$(B)/acceptd STRESS_SECONDS=$(STRESS_SECONDS) STRESS_MODE=$(STRESS_MODE) \
	  CK_VERBOSITY=normal $(B)/tests/run_stress
