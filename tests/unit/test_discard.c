/* test_discard: the discard handler (RFC 863): input vanishes, nothing
 * comes back, and the connection lasts until the peer closes. */
#include "conn.h"
#include "handler.h"
#include "util.h"

START_TEST(test_discard)
{
	struct ev_loop *loop = ev_loop_new(0);
	static char big[300 * 1024];
	struct util_rd rd;
	int sv[2];

	util_pair(sv);
	ck_assert_ptr_eq(handler_find(NULL, "discard")->accept, handler_discard.accept);
	util_handoff(&handler_discard, NULL, loop, sv[1]);
	memset(big, 'd', sizeof big);
	/* More than any socket buffer: only a reading server takes it all. */
	ck_assert_uint_eq(util_write_all(loop, sv[0], big, sizeof big, 5000), sizeof big);
	pump_for(loop, 20);
	util_rd_init(&rd, sv[0]);
	util_rd_poll(&rd);
	ck_assert_uint_eq(rd.len, 0);
	ck_assert(!rd.eof);
	ck_assert_uint_eq(conn_active, 1);
	ck_assert_ptr_null(conn_first()->in);
	ck_assert_ptr_null(conn_first()->out);
	shutdown(sv[0], SHUT_WR);
	ck_assert(util_read_eof(loop, &rd, 2000));
	ck_assert_uint_eq(rd.len, 0);
	ck_assert(util_wait_active(loop, 0, 2000));
	util_rd_free(&rd);
	close(sv[0]);
	ev_loop_destroy(loop);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("discard");
	TCase *tc = tcase_create("discard");

	tcase_add_test(tc, test_discard);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
