/* test_chargen: the chargen handler (RFC 864): the exact rotating pattern,
 * input ignored, bounded output towards a peer that does not read. */
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
	util_pair(sv);
	ck_assert_ptr_eq(handler_find(NULL, "chargen")->accept, handler_chargen.accept);
	ck_assert_int_eq(handler_chargen.start(NULL, loop), 0);
	util_handoff(&handler_chargen, NULL, loop, sv[1]);
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

/* Line n (from 0) as RFC 864 draws it: 72 characters from the printable
 * set ' '..'~', starting (n mod 95) characters in, then CRLF. */
static void
reference_line(long n, char line[75])
{
	for (int i = 0; i < 72; i++)
		line[i] = (char)(' ' + (n + i) % 95);
	memcpy(line + 72, "\r\n", 3);
}

START_TEST(test_first_lines)
{
	char line[75];

	ck_assert_uint_ge(util_read_len(loop, &rd, 3 * 74, 2000), 3 * 74);
	ck_assert(memcmp(rd.buf, " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n", 74) == 0);
	ck_assert(memcmp(rd.buf + 74, "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n", 74) == 0);
	reference_line(2, line);
	ck_assert(memcmp(rd.buf + 148, line, 74) == 0);
}
END_TEST

/* Far past one rotation and past the generator's own table: line by line. */
START_TEST(test_rotation)
{
	size_t want = 2000 * 74;
	char line[75];

	ck_assert_uint_ge(util_read_len(loop, &rd, want, 5000), want);
	for (long n = 0; n < 2000; n++) {
		reference_line(n, line);
		if (memcmp(rd.buf + n * 74, line, 74) != 0)
			ck_abort_msg("line %ld differs", n);
	}
	/* Line 95 starts over: the same as line 0. */
	ck_assert(memcmp(rd.buf, rd.buf + 95 * 74, 74) == 0);
}
END_TEST

START_TEST(test_input_ignored)
{
	char line[75];
	size_t n;

	util_write_str(loop, sv[0], "anything\r\n");
	n = util_read_len(loop, &rd, 200 * 74, 2000);
	ck_assert_uint_ge(n, 200 * 74);
	for (long i = 0; i < 200; i++) {
		reference_line(i, line);
		ck_assert(memcmp(rd.buf + i * 74, line, 74) == 0);
	}
	ck_assert_uint_eq(conn_active, 1);
}
END_TEST

START_TEST(test_bounded)
{
	struct acceptd_conn *c = conn_first();

	pump_for(loop, 50);
	/* The peer reads nothing: one table at most is queued, and the
	 * generator waits for the socket instead of spinning. */
	ck_assert_uint_le(c->out_len, 64 * 1024);
	pump_for(loop, 50);
	ck_assert_uint_le(c->out_len, 64 * 1024);
	ck_assert_uint_ge(util_read_len(loop, &rd, 1 << 20, 5000), 1 << 20);
	ck_assert_uint_le(c->out_len, 64 * 1024);
}
END_TEST

START_TEST(test_peer_close)
{
	ck_assert_uint_ge(util_read_len(loop, &rd, 1000, 2000), 1000);
	close(sv[0]);
	sv[0] = -1;
	ck_assert(util_wait_active(loop, 0, 2000));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("chargen");
	TCase *tc = tcase_create("chargen");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_first_lines);
	tcase_add_test(tc, test_rotation);
	tcase_add_test(tc, test_input_ignored);
	tcase_add_test(tc, test_bounded);
	tcase_add_test(tc, test_peer_close);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
