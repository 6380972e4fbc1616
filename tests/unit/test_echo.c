/* test_echo: the echo handler (RFC 862) over a socket pair: round trips,
 * 1 MB both ways, and bounded output towards a peer that does not read. */
#include "conn.h"
#include "handler.h"
#include "util.h"

static struct ev_loop *loop;
static int sv[2];
static struct util_rd rd;

static void
setup(void)
{

	loop = ev_loop_new(0);
	ck_assert_ptr_nonnull(loop);
	util_pair(sv);
	ck_assert_ptr_eq(handler_find(NULL, "echo")->accept, handler_echo.accept);
	util_handoff(&handler_echo, NULL, loop, sv[1]);
	ck_assert_uint_eq(conn_active, 1);
	util_rd_init(&rd, sv[0]);
}

static void
teardown(void)
{
	conn_close_all();
	close(sv[0]);
	util_rd_free(&rd);
	ev_loop_destroy(loop);
}

START_TEST(test_roundtrip)
{
	util_write_str(loop, sv[0], "hello\r\n");
	ck_assert_uint_eq(util_read_len(loop, &rd, 7, 2000), 7);
	ck_assert_str_eq(rd.buf, "hello\r\n");
	util_write_str(loop, sv[0], "again");
	ck_assert_uint_eq(util_read_len(loop, &rd, 12, 2000), 12);
	ck_assert_str_eq(rd.buf, "hello\r\nagain");
}
END_TEST

START_TEST(test_binary)
{
	char all[256];

	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	ck_assert_uint_eq(util_write_all(loop, sv[0], all, sizeof all, 2000), sizeof all);
	ck_assert_uint_eq(util_read_len(loop, &rd, 256, 2000), 256);
	ck_assert(memcmp(rd.buf, all, 256) == 0);
}
END_TEST

/* 1 MB written while reading: what comes back is what went out. */
START_TEST(test_megabyte)
{
	size_t len = 1 << 20, off = 0;
	char *big = malloc(len);
	double deadline = util_now() + 10;
	ssize_t n;

	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i < len; i++)
		big[i] = (char)(i * 7 + i / 251);
	while (rd.len < len && util_now() < deadline) {
		if (off < len && (n = send(sv[0], big + off, len - off, MSG_NOSIGNAL)) > 0)
			off += n;
		pump_for(loop, 1);
		util_rd_poll(&rd);
	}
	ck_assert_uint_eq(rd.len, len);
	ck_assert(memcmp(rd.buf, big, len) == 0);
	free(big);
}
END_TEST

/* The client writes 1 MB and reads nothing: the server stops reading and
 * holds a bounded amount; then the client reads and everything arrives. */
START_TEST(test_slow_reader)
{
	size_t len = 1 << 20, off = 0;
	char *big = malloc(len);
	struct acceptd_conn *c = conn_first();
	ssize_t n;

	ck_assert_ptr_nonnull(big);
	memset(big, 'e', len);
	for (int i = 0; i < 200 && off < len; i++) {
		if ((n = send(sv[0], big + off, len - off, MSG_NOSIGNAL)) > 0)
			off += n;
		pump_for(loop, 2);
	}
	ck_assert_uint_lt(off, len); /* both directions are full */
	ck_assert(conn_blocked(c));
	ck_assert_int_eq(c->io.events & EV_READ, 0);
	/* One read past the mark, plus leftovers, at most. */
	ck_assert_uint_le(c->out_len, CONN_OUT_HIGH + 2 * 65536);
	ck_assert_uint_le(c->in_len, CONN_IN_MAX);
	/* Now read slowly, a little at a time, while writing the rest. */
	while (rd.len < len) {
		double t = util_now();

		if (off < len && (n = send(sv[0], big + off, len - off, MSG_NOSIGNAL)) > 0)
			off += n;
		pump_for(loop, 1);
		util_rd_poll_max(&rd, 16384);
		ck_assert_uint_le(c->out_len, CONN_OUT_HIGH + 2 * 65536);
		if (util_now() - t > 1)
			break;
	}
	ck_assert_uint_eq(rd.len, len);
	for (size_t i = 0; i < len; i++)
		if (rd.buf[i] != 'e')
			ck_abort_msg("byte %zu differs", i);
	free(big);
}
END_TEST

START_TEST(test_peer_close)
{
	util_write_str(loop, sv[0], "bye");
	shutdown(sv[0], SHUT_WR);
	ck_assert(util_read_eof(loop, &rd, 2000));
	ck_assert_str_eq(rd.buf, "bye");
	ck_assert(util_wait_active(loop, 0, 2000));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("echo");
	TCase *tc = tcase_create("echo");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_binary);
	tcase_add_test(tc, test_megabyte);
	tcase_add_test(tc, test_slow_reader);
	tcase_add_test(tc, test_peer_close);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
