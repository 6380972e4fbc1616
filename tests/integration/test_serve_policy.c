/* Integration: per-listener policy before the handler: allow/deny over
 * IPv4, IPv6 and IPv4-mapped peers (deny wins), max_connections (the next
 * one is closed at once, a close frees a slot), idle_timeout (an idle
 * connection is closed, a busy one is not). */
#define _GNU_SOURCE
#include <sys/socket.h>

#include "harness.h"

#define HEAD "[daemon]\nworkers = 1\nshutdown_timeout = 1s\n\n"

/* Served: the echo comes back. Refused: closed without a byte. */
static int
served(const char *where, int port)
{
	int fd = h_connect(where, port), ok;

	ck_assert_msg(fd >= 0, "connect %s %d: %s", where, port, strerror(errno));
	ok = h_echo(fd, "policy?\n");
	close(fd);
	return ok;
}

static int
refused(const char *where, int port)
{
	int fd = h_connect(where, port), closed;

	ck_assert_msg(fd >= 0, "connect %s %d: %s", where, port, strerror(errno));
	closed = h_wait_closed(fd, H_WAIT_MS);
	close(fd);
	return closed;
}

static void
acl_case(const char *addr, const char *keys, const char *client, int want_served)
{
	struct hd *d = hd_up(HEAD "[listener p]\naddress = %s\nport = 0\n%s", addr, keys);
	int port = hd_port(d, "p");

	if (want_served)
		hd_assert(d, served(client, port), "%s from %s with '%s': not served", addr, client,
		    keys);
	else
		hd_assert(d, refused(client, port), "%s from %s with '%s': not refused", addr, client,
		    keys);
	hd_free(d);
}

START_TEST(acl_ipv4)
{
	acl_case("127.0.0.1", "allow = 127.0.0.1\n", "127.0.0.1", 1);
	acl_case("127.0.0.1", "allow = 10.0.0.0/8, 192.0.2.0/24\n", "127.0.0.1", 0);
	acl_case("127.0.0.1", "deny = 127.0.0.0/8\n", "127.0.0.1", 0);
	acl_case("127.0.0.1", "deny = 10.0.0.0/8\n", "127.0.0.1", 1);
	/* deny wins over allow */
	acl_case("127.0.0.1", "allow = 127.0.0.0/8\ndeny = 127.0.0.1/32\n", "127.0.0.1", 0);
}
END_TEST

START_TEST(acl_ipv6)
{
	if (!h_have_ipv6()) {
		fprintf(stderr, "acl_ipv6: no IPv6 here, skipped\n");
		return;
	}
	acl_case("::1", "allow = ::1/128\n", "::1", 1);
	acl_case("::1", "allow = 2001:db8::/32\n", "::1", 0);
	acl_case("::1", "deny = ::/0\n", "::1", 0);
	/* an IPv4 block says nothing about an IPv6 peer */
	acl_case("::1", "deny = 0.0.0.0/0\n", "::1", 1);
}
END_TEST

/* ipv6only = no: an IPv4 peer arrives as ::ffff:127.0.0.1 and is matched
 * as 127.0.0.1, by IPv4 blocks (and by mapped ones). */
START_TEST(acl_mapped)
{
	if (!h_have_ipv6()) {
		fprintf(stderr, "acl_mapped: no IPv6 here, skipped\n");
		return;
	}
	acl_case("::", "ipv6only = no\ndeny = 127.0.0.0/8\n", "127.0.0.1", 0);
	acl_case("::", "ipv6only = no\ndeny = 127.0.0.0/8\n", "::1", 1);
	acl_case("::", "ipv6only = no\nallow = 127.0.0.1\n", "127.0.0.1", 1);
	acl_case("::", "ipv6only = no\nallow = 127.0.0.1\n", "::1", 0);
	acl_case("::", "ipv6only = no\ndeny = ::ffff:127.0.0.0/104\n", "127.0.0.1", 0);
}
END_TEST

START_TEST(max_connections)
{
	struct hd *d = hd_up(HEAD "[listener p]\naddress = 127.0.0.1\nport = 0\n"
	    "max_connections = 2\n");
	int port = hd_port(d, "p"), a, b, ok = 0;
	long long end;

	a = h_connect("127.0.0.1", port);
	b = h_connect("127.0.0.1", port);
	hd_assert(d, a >= 0 && b >= 0, "connect");
	hd_assert(d, h_echo(a, "a\n") && h_echo(b, "b\n"), "the first two are served");
	hd_assert(d, refused("127.0.0.1", port), "the third was not closed at once");
	hd_assert(d, h_echo(a, "still\n"), "a refusal hurt a served connection");
	/* one closes: its slot is free again (once the worker saw the close) */
	close(a);
	end = h_now_ms() + H_WAIT_MS;
	while (!ok && h_now_ms() < end) {
		int c = h_connect("127.0.0.1", port);

		ok = c >= 0 && h_echo(c, "c\n");
		if (c >= 0)
			close(c);
		if (!ok)
			usleep(20000);
	}
	hd_assert(d, ok, "no slot after a close");
	hd_assert(d, h_echo(b, "b again\n"), "b broke");
	close(b);
	hd_free(d);
}
END_TEST

START_TEST(idle_timeout)
{
	struct hd *d = hd_up(HEAD "[listener p]\naddress = 127.0.0.1\nport = 0\n"
	    "idle_timeout = 400ms\n");
	int port = hd_port(d, "p");
	int idle = h_connect("127.0.0.1", port), busy = h_connect("127.0.0.1", port);
	long long t0 = h_now_ms();

	hd_assert(d, idle >= 0 && busy >= 0, "connect");
	hd_assert(d, h_echo(idle, "x\n") && h_echo(busy, "x\n"), "served");
	/* busy: a byte every 100 ms for 1.2 s, three times the timeout */
	while (h_now_ms() - t0 < 1200) {
		hd_assert(d, h_echo(busy, "."), "the busy connection was closed after %lld ms",
		    h_now_ms() - t0);
		usleep(100000);
	}
	/* idle: closed by now (bounded wait, in case the machine is slow) */
	hd_assert(d, h_wait_closed(idle, H_WAIT_MS), "the idle connection is still open");
	hd_assert(d, h_echo(busy, "end\n"), "busy closed");
	close(idle);
	close(busy);
	hd_free(d);
}
END_TEST

static Suite *
policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");

	tcase_add_test(tc, acl_ipv4);
	tcase_add_test(tc, acl_ipv6);
	tcase_add_test(tc, acl_mapped);
	tcase_add_test(tc, max_connections);
	tcase_add_test(tc, idle_timeout);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(policy_suite());
}
