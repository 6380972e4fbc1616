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
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(SANFLAGS) -Idaemon $(PKGS_CFLAGS) \
             -DACCEPTD_VERSION='"$(VERSION)"' -DSYSCONFDIR='"$(SYSCONFDIR)"' -MMD -MP
LDLIBS  := $(PKGS_LIBS)

# Everything but main.c goes into a library the tests link against.
LIB_SRC := daemon/log.c daemon/conf.c daemon/listen.c daemon/master.c \
           daemon/worker.c daemon/conn.c daemon/handler.c daemon/proctitle.c \
           daemon/handlers/echo.c daemon/handlers/discard.c \
           daemon/handlers/daytime.c daemon/handlers/chargen.c \
           daemon/handlers/http.c daemon/notify.c daemon/activate.c
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
INTEG_BIN := $(INTEG_SRC:tests/integration/%.c=$(B)/tests/%)

.PHONY: all tests check run clean deps bench
all: deps $(B)/acceptd

tests: all $(UNIT_BIN) $(INTEG_BIN)

deps:
	@sh tests/deps.sh

$(B)/acceptd: $(B)/daemon/main.o $(B)/libacceptd.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

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

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

# after all: and the variables it reads
include install.mk
