/* test_conn: conn.c on real sockets and a real libev loop: counting, the
 * close path (also from inside callbacks), leftovers, back-pressure, EOF,
 * lingering close, resets and the stop broadcast. */
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "util.h"

static struct ev_loop *loop;
static int idle_calls, reads, frees, stops, drains;
static char seen[256 * 1024];
static size_t seen_len;

static void
setup(void)
{
	/* The default SIGPIPE action: a send without MSG_NOSIGNAL kills us. */
	signal(SIGPIPE, SIG_DFL);
	loop = ev_loop_new(0);
	ck_assert_ptr_nonnull(loop);
	conn_idle_hook = NULL;
	idle_calls = reads = frees = stops = drains = 0;
	seen_len = 0;
}

static void
teardown(void)
{
	conn_idle_hook = NULL;
	conn_close_all();
	ev_loop_destroy(loop);
}

static void
on_idle(void)
{
	idle_calls++;
}

static void
count_free(struct acceptd_conn *c)
{
	frees++;
}

static void
remember(const char *buf, size_t len)
{
	ck_assert_uint_le(seen_len + len, sizeof seen);
	memcpy(seen + seen_len, buf, len);
	seen_len += len;
}

/* Consumes everything, writes nothing. */
static size_t
read_all(struct acceptd_conn *c, const char *buf, size_t len)
{
	reads++;
	remember(buf, len);
	return len;
}

static size_t
read_echo(struct acceptd_conn *c, const char *buf, size_t len)
{
	reads++;
	if (conn_blocked(c))
		return 0;
	conn_write(c, buf, len);
	return len;
}

static const struct acceptd_conn_ops ops_all = { .read = read_all, .free = count_free };
static const struct acceptd_conn_ops ops_echo = { .read = read_echo, .free = count_free };

START_TEST(test_active_count)
{
	int sv[3][2];
	struct acceptd_conn *c[3];
	unsigned base = conn_active;

	conn_idle_hook = on_idle;
	for (int i = 0; i < 3; i++) {
		util_pair(sv[i]);
		c[i] = conn_new(loop, sv[i][1], &ops_all, NULL);
		ck_assert_ptr_nonnull(c[i]);
		ck_assert_int_eq(conn_fd(c[i]), sv[i][1]);
	}
	ck_assert_uint_eq(conn_active, base + 3);
	ck_assert_ptr_eq(conn_first(), c[2]);
	/* Peer closes: default EOF handling closes once flushed. */
	close(sv[0][0]);
	ck_assert(util_wait_active(loop, base + 2, 2000));
	ck_assert_int_eq(frees, 1);
	ck_assert_int_eq(idle_calls, 0);
	conn_close(c[1]);
	ck_assert_uint_eq(conn_active, base + 1);
	ck_assert_int_eq(idle_calls, 0);
	conn_close_all();
	ck_assert_uint_eq(conn_active, 0);
	ck_assert_int_eq(idle_calls, 1);
	ck_assert_int_eq(frees, 3);
	ck_assert_ptr_null(conn_first());
	for (int i = 1; i < 3; i++)
		close(sv[i][0]);
}
END_TEST

/* Close from inside read, then look at buf and close again: the memory
 * must still be there (ASan would see a use after free). */
static size_t
read_close(struct acceptd_conn *c, const char *buf, size_t len)
{
	volatile char x;

	reads++;
	conn_close(c);
	conn_close(c);
	x = buf[len - 1];
	(void)x;
	ck_assert_int_lt(conn_write(c, "x", 1), 0);
	return len;
}

static const struct acceptd_conn_ops ops_close = { .read = read_close, .free = count_free };

START_TEST(test_close_in_read)
{
	int sv[2];
	struct util_rd r;

	conn_idle_hook = on_idle;
	util_pair(sv);
	ck_assert_ptr_nonnull(conn_new(loop, sv[1], &ops_close, NULL));
	util_write_str(loop, sv[0], "abc");
	ck_assert(util_wait_active(loop, 0, 2000));
	ck_assert_int_eq(reads, 1);
	ck_assert_int_eq(frees, 1);
	ck_assert_int_eq(idle_calls, 1);
	util_rd_init(&r, sv[0]);
	ck_assert(util_read_eof(loop, &r, 2000));
	util_rd_free(&r);
	close(sv[0]);
}
END_TEST

/* The second offer is c->in itself (leftovers + new input): closing frees
 * c->in only after the callback returns. */
static size_t
read_close_late(struct acceptd_conn *c, const char *buf, size_t len)
{
	volatile char x;

	reads++;
	if (len < 6)
		return 0;
	remember(buf, len);
	conn_close(c);
	x = buf[0] + buf[len - 1];
	(void)x;
	return 0;
}

static const struct acceptd_conn_ops ops_close_late = { .read = read_close_late, .free = count_free };

START_TEST(test_close_in_read_leftovers)
{
	int sv[2];

	util_pair(sv);
	ck_assert_ptr_nonnull(conn_new(loop, sv[1], &ops_close_late, NULL));
	util_write_str(loop, sv[0], "abc");
	pump_for(loop, 20);
	ck_assert_int_eq(reads, 1);
	util_write_str(loop, sv[0], "defg");
	ck_assert(util_wait_active(loop, 0, 2000));
	ck_assert_int_eq(reads, 2);
	ck_assert_uint_eq(seen_len, 7);
	ck_assert(memcmp(seen, "abcdefg", 7) == 0);
	close(sv[0]);
}
END_TEST

/* Consumes whole lines only: the partial rest is offered again. */
static size_t
read_lines(struct acceptd_conn *c, const char *buf, size_t len)
{
	size_t used = 0;
	const char *nl;

	reads++;
	while ((nl = memchr(buf + used, '\n', len - used)) != NULL) {
		remember(buf + used, nl + 1 - (buf + used));
		used = nl + 1 - buf;
	}
	return used;
}

static const struct acceptd_conn_ops ops_lines = { .read = read_lines };

START_TEST(test_leftovers)
{
	int sv[2];
	struct acceptd_conn *c;

	util_pair(sv);
	c = conn_new(loop, sv[1], &ops_lines, NULL);
	ck_assert_ptr_nonnull(c);
	util_write_str(loop, sv[0], "hel");
	pump_for(loop, 20);
	ck_assert_uint_eq(c->in_len, 3);
	util_write_str(loop, sv[0], "lo\nwor");
	pump_for(loop, 20);
	ck_assert_uint_eq(c->in_len, 3);
	util_write_str(loop, sv[0], "ld\n");
	pump_for(loop, 20);
	ck_assert_uint_eq(c->in_len, 0);
	ck_assert_ptr_null(c->in);
	ck_assert_uint_eq(seen_len, 12);
	ck_assert(memcmp(seen, "hello\nworld\n", 12) == 0);
	conn_close(c);
	close(sv[0]);
}
END_TEST

static size_t
read_none(struct acceptd_conn *c, const char *buf, size_t len)
{
	reads++;
	return 0;
}

static const struct acceptd_conn_ops ops_none = { .read = read_none, .free = count_free };

START_TEST(test_in_max)
{
	int sv[2];
	static char big[CONN_IN_MAX + 4096];
	struct util_rd r;

	util_pair(sv);
	ck_assert_ptr_nonnull(conn_new(loop, sv[1], &ops_none, NULL));
	memset(big, 'a', sizeof big);
	util_write_all(loop, sv[0], big, sizeof big, 2000);
	ck_assert(util_wait_active(loop, 0, 2000));
	ck_assert_int_eq(frees, 1);
	util_rd_init(&r, sv[0]);
	ck_assert(util_read_eof(loop, &r, 2000));
	util_rd_free(&r);
	close(sv[0]);
}
END_TEST

START_TEST(test_write_epipe)
{
	int sv[2];
	struct acceptd_conn *c;

	util_pair(sv);
	c = conn_new(loop, sv[1], &ops_all, NULL);
	close(sv[0]);
	/* EPIPE, not SIGPIPE; c is closed and gone afterwards. */
	ck_assert_int_eq(conn_write(c, "x", 1), -1);
	ck_assert_uint_eq(conn_active, 0);
	ck_assert_int_eq(frees, 1);
}
END_TEST

START_TEST(test_reset_mid_write)
{
	int sv[2];
	struct acceptd_conn *c;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	size_t len = 4 << 20;
	char *big = malloc(len);

	ck_assert_ptr_nonnull(big);
	memset(big, 'z', len);
	util_tcp_pair(sv);
	c = conn_new(loop, sv[1], &ops_all, NULL);
	ck_assert_int_eq(conn_write(c, big, len), 0);
	ck_assert_uint_gt(c->out_len, 0);
	free(big);
	pump_for(loop, 10);
	/* Abortive close: the server's next send meets ECONNRESET/EPIPE. */
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	close(sv[0]);
	ck_assert(util_wait_active(loop, 0, 3000));
	ck_assert_int_eq(frees, 1);
}
END_TEST

/* The first offer floods the output and consumes nothing; the same bytes
 * must come back once the peer has read enough. */
static size_t
read_flood(struct acceptd_conn *c, const char *buf, size_t len)
{
	static char junk[CONN_OUT_HIGH * 16];

	reads++;
	if (reads == 1) {
		conn_write(c, junk, sizeof junk);
		ck_assert(conn_blocked(c));
		return 0;
	}
	remember(buf, len);
	return len;
}

static const struct acceptd_conn_ops ops_flood = { .read = read_flood };

START_TEST(test_backpressure)
{
	int sv[2];
	struct acceptd_conn *c;
	struct util_rd r;

	util_pair(sv);
	c = conn_new(loop, sv[1], &ops_flood, NULL);
	util_write_str(loop, sv[0], "hello");
	pump_for(loop, 30);
	ck_assert_int_eq(reads, 1);
	ck_assert(conn_blocked(c));
	ck_assert_int_eq(c->io.events & EV_READ, 0);
	ck_assert_uint_eq(c->in_len, 5);
	/* Not offered while blocked, whatever arrives. */
	util_write_str(loop, sv[0], " world");
	pump_for(loop, 30);
	ck_assert_int_eq(reads, 1);
	util_rd_init(&r, sv[0]);
	ck_assert_uint_eq(util_read_len(loop, &r, CONN_OUT_HIGH * 16, 3000), CONN_OUT_HIGH * 16);
	pump_for(loop, 30);
	ck_assert_int_ge(reads, 2);
	ck_assert_uint_eq(seen_len, 11);
	ck_assert(memcmp(seen, "hello world", 11) == 0);
	ck_assert_uint_eq(c->out_len, 0);
	ck_assert_ptr_null(c->out);
	ck_assert_int_ne(c->io.events & EV_READ, 0);
	util_rd_free(&r);
	conn_close(c);
	close(sv[0]);
}
END_TEST

START_TEST(test_echo_eof)
{
	int sv[2];
	struct util_rd r;

	util_pair(sv);
	ck_assert_ptr_nonnull(conn_new(loop, sv[1], &ops_echo, NULL));
	util_write_str(loop, sv[0], "ping");
	shutdown(sv[0], SHUT_WR);
	util_rd_init(&r, sv[0]);
	ck_assert(util_read_eof(loop, &r, 2000));
	ck_assert_uint_eq(r.len, 4);
	ck_assert_str_eq(r.buf, "ping");
	ck_assert(util_wait_active(loop, 0, 2000));
	util_rd_free(&r);
	close(sv[0]);
}
END_TEST

static void
drain_count(struct acceptd_conn *c)
{
	drains++;
}

static const struct acceptd_conn_ops ops_drain = { .read = read_all, .drain = drain_count };

START_TEST(test_want_drain)
{
	int sv[2];
	struct acceptd_conn *c;

	util_pair(sv);
	c = conn_new(loop, sv[1], &ops_drain, NULL);
	conn_want_drain(c);
	pump_for(loop, 30);
	ck_assert_int_eq(drains, 1);
	/* Once per request, and only after queued output is written. */
	ck_assert_int_eq(c->io.events & EV_WRITE, 0);
	conn_close(c);
	close(sv[0]);
}
END_TEST

START_TEST(test_close_after_write)
{
	int sv[2];
	struct acceptd_conn *c;
	struct util_rd r;
	static char big[CONN_OUT_HIGH * 4];

	util_pair(sv);
	c = conn_new(loop, sv[1], &ops_all, NULL);
	memset(big, 'q', sizeof big);
	ck_assert_int_eq(conn_write(c, big, sizeof big), 0);
	conn_close_after_write(c);
	ck_assert_uint_eq(conn_active, 1);
	util_rd_init(&r, sv[0]);
	ck_assert(util_read_eof(loop, &r, 3000));
	ck_assert_int_eq(r.err, 0);
	ck_assert_uint_eq(r.len, sizeof big);
	ck_assert(util_wait_active(loop, 0, 2000));
	util_rd_free(&r);
	close(sv[0]);
}
END_TEST

/* Answer and close, leaving input unread: conn.c must send its FIN and
 * wait for the peer's instead of closing (which could reset the answer). */
static size_t
read_refuse(struct acceptd_conn *c, const char *buf, size_t len)
{
	reads++;
	conn_write(c, "no\n", 3);
	conn_close_after_write(c);
	return 0;
}

static const struct acceptd_conn_ops ops_refuse = { .read = read_refuse, .free = count_free };

START_TEST(test_linger)
{
	int sv[2];
	struct util_rd r;

	util_pair(sv);
	ck_assert_ptr_nonnull(conn_new(loop, sv[1], &ops_refuse, NULL));
	util_write_str(loop, sv[0], "junk");
	util_rd_init(&r, sv[0]);
	ck_assert(util_read_eof(loop, &r, 2000));
	ck_assert_str_eq(r.buf, "no\n");
	ck_assert_uint_eq(conn_active, 1);
	/* Still discarding; never offered to the handler again. */
	util_write_str(loop, sv[0], "more junk");
	pump_for(loop, 20);
	ck_assert_int_eq(reads, 1);
	ck_assert_uint_eq(conn_active, 1);
	shutdown(sv[0], SHUT_WR);
	ck_assert(util_wait_active(loop, 0, 2000));
	ck_assert_int_eq(frees, 1);
	util_rd_free(&r);
	close(sv[0]);
}
END_TEST

START_TEST(test_linger_stop)
{
	int sv[2];

	util_pair(sv);
	ck_assert_ptr_nonnull(conn_new(loop, sv[1], &ops_refuse, NULL));
	util_write_str(loop, sv[0], "junk");
	pump_for(loop, 20);
	ck_assert_uint_eq(conn_active, 1);
	/* A lingering conn has nothing left to finish. */
	conn_stop_all();
	ck_assert_uint_eq(conn_active, 0);
	close(sv[0]);
}
END_TEST

/* The stop callback closes its conn and its partner (c->data), which the
 * iteration would have visited next. */
static void
stop_pair(struct acceptd_conn *c)
{
	stops++;
	if (c->data)
		conn_close(c->data);
	conn_close(c);
}

static const struct acceptd_conn_ops ops_stop = { .read = read_all, .stop = stop_pair, .free = count_free };

START_TEST(test_stop_all)
{
	int sv[4][2];
	struct acceptd_conn *c[4];

	conn_idle_hook = on_idle;
	for (int i = 0; i < 4; i++) {
		util_pair(sv[i]);
		c[i] = conn_new(loop, sv[i][1], i == 0 ? &ops_all : &ops_stop, NULL);
	}
	/* The list is newest first: 3, 2, 1, 0. 3 closes 2 as well. */
	c[3]->data = c[2];
	conn_stop_all();
	ck_assert_int_eq(stops, 2);
	ck_assert_uint_eq(conn_active, 1);
	ck_assert_ptr_eq(conn_first(), c[0]);
	ck_assert_int_eq(idle_calls, 0);
	conn_close_all();
	ck_assert_int_eq(idle_calls, 1);
	ck_assert_int_eq(frees, 4);
	for (int i = 0; i < 4; i++)
		close(sv[i][0]);
}
END_TEST

/* conn_new_data: the handler's data lives in the connection's block:
 * zeroed, aligned, handed back by conn_data, still there for ops->free. */
static void *data_seen;
static size_t data_size;

static size_t
read_data(struct acceptd_conn *c, const char *buf, size_t len)
{
	unsigned char *d = conn_data(c);

	reads++;
	ck_assert_ptr_eq(d, data_seen);
	for (size_t i = 0; i < data_size; i++)
		ck_assert_int_eq(d[i], i == 0 ? 0x5a : 0);
	memset(d, 0xa5, data_size);     /* all of it is ours (ASan: in bounds) */
	conn_close_after_write(c);
	return len;
}

static void
free_data(struct acceptd_conn *c)
{
	unsigned char *d = conn_data(c);

	frees++;
	ck_assert_int_eq(d[0], 0xa5);
	ck_assert_int_eq(d[data_size - 1], 0xa5);
}

static const struct acceptd_conn_ops ops_data = { .read = read_data, .free = free_data };

/* conn_read_now: input already there is offered at once; nothing there
 * is no error (and does not block); a handler that closes makes it -1. */
START_TEST(test_read_now)
{
	struct acceptd_conn *c;
	struct util_rd r;
	unsigned base = conn_active;
	int sv[2];

	util_pair(sv);
	ck_assert_int_eq(write(sv[0], "hello", 5), 5);
	c = conn_new(loop, sv[1], &ops_all, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(conn_read_now(c), 0);
	ck_assert_int_eq(reads, 1);
	ck_assert_uint_eq(seen_len, 5);
	ck_assert(memcmp(seen, "hello", 5) == 0);
	ck_assert_int_eq(conn_read_now(c), 0);          /* EAGAIN */
	ck_assert_int_eq(reads, 1);
	/* and the loop goes on reading as before */
	util_write_str(loop, sv[0], "x");
	for (int i = 0; i < 100 && reads < 2; i++)
		ev_run(loop, EVRUN_NOWAIT);
	ck_assert_int_eq(reads, 2);
	conn_close(c);
	close(sv[0]);

	reads = frees = 0;
	util_pair(sv);
	ck_assert_int_eq(write(sv[0], "abc", 3), 3);
	c = conn_new(loop, sv[1], &ops_close, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(conn_read_now(c), -1);         /* closed and freed */
	ck_assert_int_eq(reads, 1);
	ck_assert_int_eq(frees, 1);
	ck_assert_uint_eq(conn_active, base);
	util_rd_init(&r, sv[0]);
	ck_assert(util_read_eof(loop, &r, 2000));
	util_rd_free(&r);
	close(sv[0]);
}
END_TEST

/* One hand-off read on a fresh connection of the listener counted in cnt,
 * with `have` bytes already sent: whether it read them, the loop's
 * reading then left to the caller's teardown. */
static int
read_now_once(struct conn_counters *cnt, int have)
{
	struct acceptd_conn *c;
	int sv[2], before = reads;

	util_pair(sv);
	if (have)
		ck_assert_int_eq(write(sv[0], "hi", 2), 2);
	c = conn_new(loop, sv[1], &ops_all, NULL);
	ck_assert_ptr_nonnull(c);
	conn_set_counters(c, cnt);
	ck_assert_int_eq(conn_read_now(c), 0);
	conn_close(c);
	close(sv[0]);
	return reads != before;
}

/* The read at hand-off stops once most of a listener's find nothing (a
 * read() for nothing each), tries one in 16 meanwhile, and comes back once
 * those find input again. Another listener's record is its own. */
START_TEST(test_read_now_adapts)
{
	struct conn_counters cnt = { 0 }, other = { 0 };
	int i, probes = 0;

	/* a new listener reads: its record starts as all hits */
	ck_assert(read_now_once(&cnt, 1));
	/* 6 misses of the last 8: 2 hits are too few, the 7th is skipped */
	for (i = 0; i < 6; i++)
		ck_assert(!read_now_once(&cnt, 0));
	ck_assert_int_eq(cnt.read_now_misses, 0x3f);
	ck_assert(!read_now_once(&cnt, 1));
	ck_assert_int_eq(cnt.read_now_misses, 0x3f);  /* a skip is no outcome */
	ck_assert(read_now_once(&other, 1));
	/* skipped, but every 16th is tried: three hits bring reading back */
	for (i = 0; i < 3 * 16 && probes < 3; i++)
		probes += read_now_once(&cnt, 1);
	ck_assert_int_eq(probes, 3);
	ck_assert_int_eq(i, 3 * 16 - 1);
	ck_assert(read_now_once(&cnt, 1));
	ck_assert(read_now_once(&cnt, 1));
}
END_TEST

/* idle_timeout: bytes moving keep the connection; silence closes it. A
 * last byte that seems to lie in the future (the wall clock, which ev_now
 * follows, was set back) counts from now, not for an hour. */
START_TEST(test_idle)
{
	struct acceptd_conn *c;
	struct util_rd r;
	int sv[2];
	double t0;

	util_pair(sv);
	c = conn_new(loop, sv[1], &ops_echo, NULL);
	ck_assert_ptr_nonnull(c);
	conn_set_idle(c, 0.3);
	for (int i = 0; i < 5; i++) {
		util_write_str(loop, sv[0], "x");
		pump_for(loop, 100);
	}
	ck_assert_uint_eq(conn_active, 1);
	util_rd_init(&r, sv[0]);
	ck_assert(util_read_eof(loop, &r, 3000));
	ck_assert_uint_eq(conn_active, 0);
	util_rd_free(&r);
	close(sv[0]);

	util_pair(sv);
	c = conn_new(loop, sv[1], &ops_echo, NULL);
	ck_assert_ptr_nonnull(c);
	conn_set_idle(c, 0.3);
	c->last_io = ev_now(loop) + 3600;
	t0 = util_now();
	util_rd_init(&r, sv[0]);
	ck_assert_msg(util_read_eof(loop, &r, 3000), "still open after %.1f s", util_now() - t0);
	util_rd_free(&r);
	close(sv[0]);
}
END_TEST

START_TEST(test_new_data)
{
	static const size_t sizes[] = { 1, 7, 64, 300, 4096 };

	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		struct acceptd_conn *c;
		struct util_rd r;
		void *d;
		int sv[2];

		reads = frees = 0;
		data_size = sizes[k];
		util_pair(sv);
		c = conn_new_data(loop, sv[1], &ops_data, data_size, &d);
		ck_assert_ptr_nonnull(c);
		ck_assert_ptr_nonnull(d);
		ck_assert_ptr_eq(conn_data(c), d);
		ck_assert_uint_eq((uintptr_t)d % _Alignof(max_align_t), 0);
		*(unsigned char *)d = 0x5a;
		data_seen = d;
		util_write_str(loop, sv[0], "x");
		util_rd_init(&r, sv[0]);
		ck_assert(util_read_eof(loop, &r, 2000));
		ck_assert_int_eq(reads, 1);
		ck_assert_int_eq(frees, 1);
		util_rd_free(&r);
		close(sv[0]);
	}
}
END_TEST

static Suite *
conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_active_count);
	tcase_add_test(tc, test_close_in_read);
	tcase_add_test(tc, test_close_in_read_leftovers);
	tcase_add_test(tc, test_leftovers);
	tcase_add_test(tc, test_in_max);
	tcase_add_test(tc, test_write_epipe);
	tcase_add_test(tc, test_reset_mid_write);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_echo_eof);
	tcase_add_test(tc, test_want_drain);
	tcase_add_test(tc, test_close_after_write);
	tcase_add_test(tc, test_linger);
	tcase_add_test(tc, test_linger_stop);
	tcase_add_test(tc, test_stop_all);
	tcase_add_test(tc, test_new_data);
	tcase_add_test(tc, test_read_now);
	tcase_add_test(tc, test_read_now_adapts);
	tcase_add_test(tc, test_idle);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(conn_suite());
}
