/* test_daytime: the daytime handler (RFC 867): one line of local time in
 * "Weekday, Month DD, YYYY HH:MM:SS-ZONE" form, then close. */
#include <stdio.h>
#include <time.h>

#include "conn.h"
#include "handler.h"
#include "util.h"

START_TEST(test_daytime)
{
	static const char *const days[] = { "Sunday", "Monday", "Tuesday",
	    "Wednesday", "Thursday", "Friday", "Saturday" };
	struct ev_loop *loop = ev_loop_new(0);
	char day[16], month[16], zone[16], expect[128];
	int d, y, hh, mm, ss, ok = 0;
	time_t before = time(NULL), after;
	struct util_rd rd;
	struct tm tm;
	int sv[2];

	util_pair(sv);
	ck_assert_ptr_eq(handler_find(NULL, "daytime")->accept, handler_daytime.accept);
	util_handoff(&handler_daytime, NULL, loop, sv[1]);
	util_rd_init(&rd, sv[0]);
	ck_assert(util_read_eof(loop, &rd, 2000));
	after = time(NULL);
	ck_assert_int_eq(rd.err, 0);
	ck_assert(util_wait_active(loop, 0, 2000));
	/* Exactly one CRLF-terminated line. */
	ck_assert_uint_gt(rd.len, 2);
	ck_assert(memcmp(rd.buf + rd.len - 2, "\r\n", 2) == 0);
	ck_assert_ptr_eq(strchr(rd.buf, '\n'), rd.buf + rd.len - 1);
	ck_assert_int_eq(sscanf(rd.buf, "%15[A-Za-z], %15[A-Za-z] %d, %d %d:%d:%d-%15[^\r]",
	    day, month, &d, &y, &hh, &mm, &ss, zone), 8);
	for (int i = 0; i < 7; i++)
		ok |= strcmp(day, days[i]) == 0;
	ck_assert_msg(ok, "weekday \"%s\"", day);
	/* The same text as the local time of one of the seconds it took. */
	ok = 0;
	for (time_t t = before; t <= after; t++) {
		localtime_r(&t, &tm);
		strftime(expect, sizeof expect, "%A, %B %d, %Y %H:%M:%S-%Z\r\n", &tm);
		ok |= strcmp(expect, rd.buf) == 0;
	}
	ck_assert_msg(ok, "line \"%s\"", rd.buf);
	util_rd_free(&rd);
	close(sv[0]);
	ev_loop_destroy(loop);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("daytime");
	TCase *tc = tcase_create("daytime");

	tcase_add_test(tc, test_daytime);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
