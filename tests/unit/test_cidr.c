/* test_cidr: address blocks: parsing (good, bad, host bits, mapped
 * forms), matching IPv4, IPv6 and IPv4-mapped peers, lists. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "cidr.h"
#include "unit.h"

static struct sockaddr_storage ss;

static const struct sockaddr *
addr(const char *ip, socklen_t *len)
{
	memset(&ss, 0, sizeof ss);
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
		*len = sizeof *in6;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
		*len = sizeof *in;
	}
	return (struct sockaddr *)&ss;
}

static int
match(const char *block, const char *ip)
{
	struct cidr c;
	socklen_t len;
	const struct sockaddr *sa;

	ck_assert_msg(cidr_parse(block, strlen(block), &c) == 0, "parse %s", block);
	sa = addr(ip, &len);
	return cidr_match(&c, sa, len);
}

static void
formats_as(const char *block, const char *want)
{
	struct cidr c;
	char buf[64];

	ck_assert_msg(cidr_parse(block, strlen(block), &c) == 0, "parse %s", block);
	cidr_format(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, want);
}

START_TEST(test_parse_good)
{
	formats_as("10.0.0.0/8", "10.0.0.0/8");
	formats_as("10.1.2.3", "10.1.2.3/32");
	formats_as("10.1.2.3/8", "10.0.0.0/8");          /* host bits cleared */
	formats_as("0.0.0.0/0", "0.0.0.0/0");
	formats_as("::1", "::1/128");
	formats_as("2001:db8::/32", "2001:db8::/32");
	formats_as("2001:db8:ffff::1/33", "2001:db8:8000::/33");
	formats_as("::/0", "::/0");
	/* mapped blocks are IPv4 blocks */
	formats_as("::ffff:10.0.0.0/104", "10.0.0.0/8");
	formats_as("::ffff:192.0.2.1", "192.0.2.1/32");
	/* ... but not when the prefix stops inside the mapping prefix */
	formats_as("::ffff:0:0/95", "::fffe:0:0/95");
}
END_TEST

START_TEST(test_parse_bad)
{
	static const char *const bad[] = {
		"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/+8",
		"10.0.0.0/ 8", "10.0.0.0/0x8", "10.0.0.0/0008", "10.0.0.300", "10.0.0", "example.org",
		"1.2.3.4/8/8", " 1.2.3.4", "1.2.3.4 ", ":::1", "fe80::1%eth0",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	struct cidr c;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(cidr_parse(bad[i], strlen(bad[i]), &c) == -1, "'%s' parsed", bad[i]);
	/* only len bytes are read: no terminator needed */
	ck_assert_int_eq(cidr_parse("10.0.0.0/8junk", 10, &c), 0);
	ck_assert_uint_eq(c.bits, 8);
}
END_TEST

START_TEST(test_match)
{
	ck_assert(match("10.0.0.0/8", "10.255.1.2"));
	ck_assert(!match("10.0.0.0/8", "11.0.0.1"));
	ck_assert(match("192.168.1.128/25", "192.168.1.200"));
	ck_assert(!match("192.168.1.128/25", "192.168.1.127"));
	ck_assert(match("0.0.0.0/0", "203.0.113.9"));
	ck_assert(!match("0.0.0.0/0", "::1"));              /* families differ */
	ck_assert(match("::1", "::1"));
	ck_assert(!match("::1", "::2"));
	ck_assert(match("2001:db8::/32", "2001:db8:1::5"));
	ck_assert(!match("2001:db8::/32", "2001:db9::5"));
	ck_assert(match("::/0", "fe80::1"));
	ck_assert(!match("::/0", "127.0.0.1"));
	/* IPv4-mapped peers are matched as IPv4, by IPv4 and mapped blocks */
	ck_assert(match("127.0.0.0/8", "::ffff:127.0.0.1"));
	ck_assert(!match("10.0.0.0/8", "::ffff:127.0.0.1"));
	ck_assert(match("::ffff:127.0.0.0/104", "127.9.9.9"));
	ck_assert(!match("::/0", "::ffff:127.0.0.1"));
	/* /127 and odd prefixes */
	ck_assert(match("2001:db8::/127", "2001:db8::1"));
	ck_assert(!match("2001:db8::/127", "2001:db8::2"));
	ck_assert(match("10.0.0.0/9", "10.127.0.1"));
	ck_assert(!match("10.0.0.0/9", "10.128.0.1"));
}
END_TEST

START_TEST(test_non_ip)
{
	struct sockaddr sa = { .sa_family = AF_UNIX };
	struct sockaddr_in short_in = { .sin_family = AF_INET };
	struct cidr c;

	ck_assert_int_eq(cidr_parse("0.0.0.0/0", 9, &c), 0);
	ck_assert(!cidr_match(&c, &sa, sizeof sa));
	/* a truncated address is no address */
	ck_assert(!cidr_match(&c, (struct sockaddr *)&short_in, 4));
}
END_TEST

START_TEST(test_list)
{
	struct cidr_list l = { 0 };
	char bad[80];
	socklen_t len;
	const struct sockaddr *sa;

	ck_assert_int_eq(cidr_list_parse("", &l, bad, sizeof bad), 0);
	ck_assert_uint_eq(l.n, 0);
	sa = addr("10.0.0.1", &len);
	ck_assert(!cidr_list_match(&l, sa, len));
	ck_assert_int_eq(cidr_list_parse(" 10.0.0.0/8,\t::1 ,, 192.0.2.0/24 ", &l, bad, sizeof bad), 0);
	ck_assert_uint_eq(l.n, 3);
	sa = addr("10.0.0.1", &len);
	ck_assert(cidr_list_match(&l, sa, len));
	sa = addr("::1", &len);
	ck_assert(cidr_list_match(&l, sa, len));
	sa = addr("::ffff:192.0.2.77", &len);
	ck_assert(cidr_list_match(&l, sa, len));
	sa = addr("198.51.100.1", &len);
	ck_assert(!cidr_list_match(&l, sa, len));
	cidr_list_free(&l);
	ck_assert_int_eq(cidr_list_parse("10.0.0.0/8, nonsense, ::1", &l, bad, sizeof bad), -1);
	ck_assert_str_eq(bad, "nonsense");
	ck_assert_ptr_null(l.v);
}
END_TEST

static Suite *
cidr_suite(void)
{
	Suite *s = suite_create("cidr");
	TCase *tc = tcase_create("cidr");

	tcase_add_test(tc, test_parse_good);
	tcase_add_test(tc, test_parse_bad);
	tcase_add_test(tc, test_match);
	tcase_add_test(tc, test_non_ip);
	tcase_add_test(tc, test_list);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(cidr_suite());
}
