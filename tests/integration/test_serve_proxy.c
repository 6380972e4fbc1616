/* Integration: the proxy handler in the real daemon, in front of echo
 * listeners of the same daemon: every front (127.0.0.1, ::1, unix) to every
 * back (127.0.0.1, [::1], unix); 10 MB both ways with half-close, with and
 * without splice; the PROXY v2 header an upstream of the test's own sees;
 * an upstream that refuses; a graceful stop that waits for a proxied
 * connection. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "harness.h"
#include "proxy_proto.h"

#define HEAD "[daemon]\nworkers = 2\nshutdown_timeout = 5s\n\n"

static const char *const fronts[] = { "127.0.0.1", "::1", "unix" };
static const char *const fnames[] = { "v4", "v6", "un" };

/* "127.0.0.1", "::1" or "unix:DIR/NAME.sock", and the port, of listener name. */
static void
where_of(struct hd *d, int front, const char *name, char *where, size_t n, int *port)
{
	if (front == 2) {
		char path[256], file[64];

		snprintf(file, sizeof file, "%s.sock", name);
		hd_path(d, file, path, sizeof path);
		snprintf(where, n, "unix:%s", path);
		*port = 0;
	} else {
		snprintf(where, n, "%s", fronts[front]);
		*port = hd_port(d, name);
		ck_assert_int_gt(*port, 0);
	}
}

/* Three echo listeners (e4, e6, eu) and a proxy listener per front and
 * back (p_FRONT_BACK). */
static struct hd *
up_grid(int have6, const char *extra)
{
	char conf[8192], ups[3][128];
	int p4 = h_free_port(), p6 = h_free_port();
	size_t off = 0;

	off += snprintf(conf + off, sizeof conf - off, HEAD
	    "[listener e4]\naddress = 127.0.0.1\nport = %d\nhandler = echo\n\n"
	    "[listener eu]\naddress = unix:@DIR@/eu.sock\nhandler = echo\n\n", p4);
	if (have6)
		off += snprintf(conf + off, sizeof conf - off,
		    "[listener e6]\naddress = ::1\nport = %d\nhandler = echo\n\n", p6);
	snprintf(ups[0], sizeof ups[0], "127.0.0.1:%d", p4);
	snprintf(ups[1], sizeof ups[1], "[::1]:%d", p6);
	snprintf(ups[2], sizeof ups[2], "unix:@DIR@/eu.sock");
	for (int f = 0; f < 3; f++)
		for (int b = 0; b < 3; b++) {
			if (!have6 && (f == 1 || b == 1))
				continue;
			off += snprintf(conf + off, sizeof conf - off, "[listener p_%s_%s]\n",
			    fnames[f], fnames[b]);
			if (f == 2)
				off += snprintf(conf + off, sizeof conf - off,
				    "address = unix:@DIR@/p_%s_%s.sock\n", fnames[f], fnames[b]);
			else
				off += snprintf(conf + off, sizeof conf - off,
				    "address = %s\nport = 0\n", fronts[f]);
			off += snprintf(conf + off, sizeof conf - off,
			    "handler = proxy\nupstream = %s\n%s\n", ups[b], extra);
		}
	ck_assert_uint_lt(off, sizeof conf - 1);
	return hd_up("%s", conf);
}

START_TEST(proxy_grid)
{
	int have6 = h_have_ipv6(), n = 0;
	struct hd *d = up_grid(have6, "");

	if (!have6)
		fprintf(stderr, "proxy_grid: no IPv6 here, ::1 skipped\n");
	for (int f = 0; f < 3; f++)
		for (int b = 0; b < 3; b++) {
			char name[32], where[300];
			int port;

			if (!have6 && (f == 1 || b == 1))
				continue;
			snprintf(name, sizeof name, "p_%s_%s", fnames[f], fnames[b]);
			where_of(d, f, name, where, sizeof where, &port);
			for (int k = 0; k < 3; k++)
				hd_assert(d, h_echo_at(where, port), "%s (%s %d): no echo", name,
				    where, port);
			n++;
		}
	ck_assert_int_ge(n, 4);
	hd_free(d);
}
END_TEST

/* Send len pattern bytes and read as many back at the same time, then shut
 * down our side and expect the echo's FIN: 1 if all came back intact. */
static int
bulk(int fd, size_t len, char *why, size_t whylen)
{
	size_t sent = 0, got = 0;
	unsigned long sum_out = 0, sum_in = 0;
	long long deadline = h_now_ms() + 60000;
	char buf[65536];
	int shut = 0;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (h_now_ms() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0) };
		ssize_t n;

		if (sent == len && !shut) {
			shutdown(fd, SHUT_WR);
			shut = 1;
		}
		if (poll(&p, 1, 1000) < 0)
			break;
		if (p.revents & POLLOUT) {
			size_t m = len - sent < sizeof buf ? len - sent : sizeof buf;

			for (size_t i = 0; i < m; i++)
				buf[i] = (char)((sent + i) * 7 + (sent + i) / 65521);
			n = send(fd, buf, m, MSG_NOSIGNAL);
			if (n > 0) {
				for (ssize_t i = 0; i < n; i++)
					sum_out = sum_out * 31 + (unsigned char)buf[i];
				sent += n;
			} else if (n < 0 && errno != EAGAIN) {
				snprintf(why, whylen, "send after %zu: %s", sent, strerror(errno));
				return 0;
			}
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, buf, sizeof buf, 0);
			if (n > 0) {
				for (ssize_t i = 0; i < n; i++) {
					if (buf[i] != (char)((got + i) * 7 + (got + i) / 65521)) {
						snprintf(why, whylen, "byte %zu differs", got + i);
						return 0;
					}
					sum_in = sum_in * 31 + (unsigned char)buf[i];
				}
				got += n;
			} else if (n == 0) {
				if (got == len && sent == len && sum_in == sum_out)
					return 1;
				snprintf(why, whylen, "EOF after %zu of %zu", got, len);
				return 0;
			} else if (errno != EAGAIN) {
				snprintf(why, whylen, "recv after %zu: %s", got, strerror(errno));
				return 0;
			}
		}
	}
	snprintf(why, whylen, "timed out: sent %zu, got %zu", sent, got);
	return 0;
}

static void
bulk_through(const char *extra)
{
	int have6 = h_have_ipv6();
	struct hd *d = up_grid(have6, extra);
	static const int cases[][2] = { { 0, 0 }, { 2, 2 }, { 0, 2 }, { 1, 1 } };

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		char name[32], where[300], why[128] = "";
		int port, fd, f = cases[c][0], b = cases[c][1];

		if (!have6 && (f == 1 || b == 1))
			continue;
		snprintf(name, sizeof name, "p_%s_%s", fnames[f], fnames[b]);
		where_of(d, f, name, where, sizeof where, &port);
		fd = h_connect(where, port);
		hd_assert(d, fd >= 0, "%s: connect: %s", name, strerror(errno));
		hd_assert(d, bulk(fd, 10u << 20, why, sizeof why), "%s: %s", name, why);
		close(fd);
	}
	hd_free(d);
}

START_TEST(proxy_10mb_splice)
{
	bulk_through("splice = yes\n");
}
END_TEST

START_TEST(proxy_10mb_copy)
{
	bulk_through("splice = no\n");
}
END_TEST

/* The upstream is the test's: it sees the PROXY v2 header with the address
 * the client has, then the client's bytes. */
START_TEST(proxy_header_v2)
{
	int uport = 0, ufd = h_listen_tcp(&uport), fd, up;
	struct sockaddr_in me;
	socklen_t ml = sizeof me;
	struct proxy_proto_result r;
	struct hd *d;
	char buf[256];
	ssize_t n;
	int hl;

	ck_assert_int_ge(ufd, 0);
	d = hd_up(HEAD "[listener p]\naddress = 127.0.0.1\nport = 0\nhandler = proxy\n"
	    "upstream = 127.0.0.1:%d\nsend_proxy_protocol = v2\n", uport);
	fd = h_connect("127.0.0.1", hd_port(d, "p"));
	hd_assert(d, fd >= 0, "connect: %s", strerror(errno));
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &ml), 0);
	ck_assert_int_eq(h_send_str(fd, "payload"), 0);
	up = accept4(ufd, NULL, NULL, SOCK_CLOEXEC);
	hd_assert(d, up >= 0, "no connection upstream");
	n = h_recv_exact(up, buf, 28 + 7, H_WAIT_MS);
	hd_assert(d, n == 35, "upstream got %zd bytes", n);
	hl = proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r);
	hd_assert(d, hl == 28, "header: %d (%s)", hl, r.reason ? r.reason : "");
	ck_assert_int_eq(r.family, AF_INET);
	ck_assert_int_eq(((struct sockaddr_in *)&r.src)->sin_port, me.sin_port);
	ck_assert_int_eq(((struct sockaddr_in *)&r.src)->sin_addr.s_addr, me.sin_addr.s_addr);
	ck_assert_int_eq(ntohs(((struct sockaddr_in *)&r.dst)->sin_port), hd_port(d, "p"));
	ck_assert(memcmp(buf + 28, "payload", 7) == 0);
	/* and back */
	ck_assert_int_eq(h_send_str(up, "reply"), 0);
	n = h_recv_exact(fd, buf, 5, H_WAIT_MS);
	ck_assert_int_eq(n, 5);
	ck_assert(memcmp(buf, "reply", 5) == 0);
	close(up);
	hd_assert(d, h_wait_closed(fd, H_WAIT_MS), "upstream closed, client not");
	close(fd);
	close(ufd);
	hd_free(d);
}
END_TEST

/* A refusing upstream first: the next one serves, and the log says why. */
START_TEST(proxy_refused)
{
	int dead = h_free_port(), port = h_free_port();
	struct hd *d = hd_up(HEAD "[listener e]\naddress = 127.0.0.1\nport = %d\nhandler = echo\n\n"
	    "[listener p]\naddress = 127.0.0.1\nport = 0\nhandler = proxy\n"
	    "upstream = 127.0.0.1:%d, 127.0.0.1:%d\n", port, dead, port);

	for (int k = 0; k < 4; k++)
		hd_assert(d, h_echo_at("127.0.0.1", hd_port(d, "p")), "no echo");
	hd_assert(d, hd_wait_log(d, "proxy: upstream 127.0.0.1:", 1, H_WAIT_MS),
	    "refusal not logged");
	hd_free(d);
}
END_TEST

/* Graceful stop: an open proxied connection keeps working until it ends,
 * then the daemon exits. */
START_TEST(proxy_drain)
{
	struct hd *d = hd_up("[daemon]\nworkers = 1\nshutdown_timeout = 10s\n\n"
	    "[listener eu]\naddress = unix:@DIR@/eu.sock\nhandler = echo\n\n"
	    "[listener p]\naddress = 127.0.0.1\nport = 0\nhandler = proxy\n"
	    "upstream = unix:@DIR@/eu.sock\n");
	int fd = h_connect("127.0.0.1", hd_port(d, "p"));

	hd_assert(d, fd >= 0, "connect: %s", strerror(errno));
	hd_assert(d, h_echo(fd, "before"), "no echo before the stop");
	hd_kill(d, SIGTERM);
	hd_assert(d, hd_wait_log(d, "draining", 1, H_WAIT_MS), "no drain");
	hd_assert(d, h_echo(fd, "during the drain"), "no echo during the drain");
	hd_assert(d, !hd_wait_exit(d, H_QUIET_MS), "exited with a connection open");
	close(fd);
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_free(d);
}
END_TEST

/* -T shows the keys with their defaults; a bad upstream is FILE:LINE. */
START_TEST(proxy_conf)
{
	struct hd *d = hd_new();
	int rc;

	hd_conf(d, HEAD "[listener p]\nport = 0\nhandler = proxy\nupstream = 127.0.0.1:9\n");
	rc = hd_run(d, "-T", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 0, "-T: %d: %s", rc, d->err);
	ck_assert_ptr_nonnull(strstr(d->out, "upstream = 127.0.0.1:9\nconnect_timeout = 5s\n"
	    "send_proxy_protocol = off\nsplice = yes\n"));
	hd_conf(d, HEAD "[listener p]\nport = 0\nhandler = proxy\nupstream = 127.0.0.1\n");
	rc = hd_run(d, "-t", "-c", d->conf, (char *)NULL);
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strstr(d->err, "acceptd.conf:8: upstream: ") != NULL, "%s", d->err);
	hd_conf(d, HEAD "[listener p]\nport = 0\nhandler = proxy\n");
	rc = hd_run(d, "-t", "-c", d->conf, (char *)NULL);
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strstr(d->err, "upstream") != NULL, "%s", d->err);
	hd_free(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("serve_proxy");
	TCase *tc = tcase_create("serve_proxy");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, proxy_grid);
	tcase_add_test(tc, proxy_10mb_splice);
	tcase_add_test(tc, proxy_10mb_copy);
	tcase_add_test(tc, proxy_header_v2);
	tcase_add_test(tc, proxy_refused);
	tcase_add_test(tc, proxy_drain);
	tcase_add_test(tc, proxy_conf);
	suite_add_tcase(s, tc);
	return h_main(s);
}
