/* test_proxy: the proxy handler with real sockets: the client a socket pair
 * (or a loopback TCP pair, for addresses), the upstreams listening sockets
 * on 127.0.0.1 that the test accepts on and plays itself. Relay both ways,
 * half-close either way first, refused and timed-out upstreams, PROXY v1
 * and v2 headers, back-pressure both ways, 1 MB both ways at once, the
 * drain hold, the configuration. Every relay test runs twice: splice = yes
 * (_i = 0) and splice = no (_i = 1). */
#define _GNU_SOURCE
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>

#include "conn.h"
#include "handler.h"
#include "handlers/proxy.h"
#include "proxy_proto.h"
#include "util.h"

static struct ev_loop *loop;
static void *conf;
static int cl[2] = { -1, -1 };     /* cl[0] the client, cl[1] handed over */

static void
setup(void)
{
	loop = ev_loop_new(0);
	ck_assert_ptr_nonnull(loop);
	conf = NULL;
	cl[0] = cl[1] = -1;
}

static void
teardown(void)
{
	if (conf) {
		/* the worker's shutdown timeout: whatever is open goes */
		handler_proxy.stop(conf);
		conn_close_all();
		handler_proxy.conf_free(conf);
	}
	if (cl[0] >= 0)
		close(cl[0]);
	ev_loop_destroy(loop);
}

/* A proxy configuration from "key=value" strings (NULL-terminated). */
static void *
mkconf(const char *kv, ...)
{
	void *c = handler_proxy.conf_new(&util_listener()->pub);
	char err[256], key[64];
	va_list ap;

	ck_assert_ptr_nonnull(c);
	va_start(ap, kv);
	for (; kv; kv = va_arg(ap, const char *)) {
		const char *eq = strchr(kv, '=');

		ck_assert_ptr_nonnull(eq);
		snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
		err[0] = 0;
		ck_assert_msg(handler_proxy.conf_set(c, key, eq + 1, err, sizeof err) == 0,
		    "%s: %s", kv, err);
	}
	va_end(ap);
	ck_assert_msg(handler_proxy.conf_check(c, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(handler_proxy.start(c, loop), 0);
	return c;
}

static const char *
splice_kv(int i)
{
	return i == 0 ? "splice=yes" : "splice=no";
}

/* A listening socket on 127.0.0.1, any port. */
static int
up_listen(int *port, int backlog)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(listen(fd, backlog), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A port that refuses: bound (so nobody else takes it), not listening. */
static int
up_refusing(int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

struct acc {
	int lfd, fd;
};

static int
acc_ready(void *arg)
{
	struct acc *a = arg;

	if (a->fd < 0)
		a->fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	return a->fd >= 0;
}

/* Pump until the proxy's connection arrives at lfd: the upstream's fd. */
static int
up_accept(int lfd, int ms)
{
	struct acc a = { lfd, -1 };

	pump_until(loop, acc_ready, &a, ms);
	return a.fd;
}

/* Hand cl[1] to the proxy, with its real addresses when it has some. */
static void
handoff(void)
{
	struct sockaddr_storage peer, local;
	socklen_t pl = sizeof peer, ll = sizeof local;
	struct acceptd_accept a = {
		.size = sizeof a, .fd = cl[1], .loop = loop, .listener = &util_listener()->pub,
	};

	memset(&peer, 0, sizeof peer);
	memset(&local, 0, sizeof local);
	if (getpeername(cl[1], (struct sockaddr *)&peer, &pl) == 0 &&
	    getsockname(cl[1], (struct sockaddr *)&local, &ll) == 0) {
		a.peer = (struct sockaddr *)&peer;
		a.peer_len = pl;
		a.local = (struct sockaddr *)&local;
		a.local_len = ll;
	}
	util_listener()->cnt.accepted++;
	util_listener()->cnt.active++;
	handler_proxy.accept(conf, &a);
}

static int
active_is(void *arg)
{
	return util_listener()->cnt.active == *(unsigned long *)arg;
}

static int
wait_active(unsigned long n, int ms)
{
	return pump_until(loop, active_is, &n, ms);
}

/* A client through the proxy to a fresh upstream: returns the upstream's
 * fd; *lfd is its listening socket (the caller closes both). */
static int
connect_through(int tcp, int *lfd, int i, const char *extra)
{
	char up[64];
	int port, fd;

	*lfd = up_listen(&port, 16);
	snprintf(up, sizeof up, "upstream=127.0.0.1:%d", port);
	conf = mkconf(up, splice_kv(i), extra, (char *)NULL);
	if (tcp)
		util_tcp_pair(cl);
	else
		util_pair(cl);
	handoff();
	fd = up_accept(*lfd, 2000);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* ---- relay ---------------------------------------------------------- */

START_TEST(test_echo)
{
	int lfd, up = connect_through(0, &lfd, _i, NULL);
	struct util_rd ru, rc;

	util_rd_init(&ru, up);
	util_rd_init(&rc, cl[0]);
	util_write_str(loop, cl[0], "hello upstream\n");
	ck_assert(util_read_str(loop, &ru, "hello upstream\n", 2000));
	util_write_str(loop, up, "hello client\n");
	ck_assert(util_read_str(loop, &rc, "hello client\n", 2000));
	/* an echo server, played by the test: what comes back is what went */
	for (int k = 0; k < 50; k++) {
		char msg[32];

		snprintf(msg, sizeof msg, "message %d;", k);
		util_write_str(loop, cl[0], msg);
		ck_assert(util_read_str(loop, &ru, msg, 2000));
		util_write_str(loop, up, msg);
		ck_assert(util_read_str(loop, &rc, msg, 2000));
	}
	ck_assert_str_eq(ru.buf + strlen("hello upstream\n"), rc.buf + strlen("hello client\n"));
	{
		struct proxy_stats st;
		unsigned long long in, out;

		proxy_stats(conf, &st);
		ck_assert_uint_eq(st.conns, 1);
		ck_assert_uint_eq(st.bytes_in, ru.len);
		ck_assert_uint_eq(st.bytes_out, rc.len);
		proxy_conn_bytes(proxy_conn_first(conf), &in, &out);
		ck_assert_uint_eq(in, ru.len);
		ck_assert_uint_eq(out, rc.len);
	}
	close(up);
	close(lfd);
	/* upstream gone: the client sees EOF, the connection ends */
	ck_assert(util_read_eof(loop, &rc, 2000));
	shutdown(cl[0], SHUT_WR);
	ck_assert(wait_active(0, 2000));
	util_rd_free(&ru);
	util_rd_free(&rc);
}
END_TEST

/* The client's FIN reaches the upstream, which still answers; then the
 * upstream's reaches the client, and the connection is over. */
START_TEST(test_halfclose_client_first)
{
	int lfd, up = connect_through(0, &lfd, _i, NULL);
	struct util_rd ru, rc;

	util_rd_init(&ru, up);
	util_rd_init(&rc, cl[0]);
	util_write_str(loop, cl[0], "request");
	ck_assert_int_eq(shutdown(cl[0], SHUT_WR), 0);
	ck_assert(util_read_eof(loop, &ru, 2000));
	ck_assert_str_eq(ru.buf, "request");
	ck_assert_int_eq(ru.err, 0);
	ck_assert_uint_eq(util_listener()->cnt.active, 1);
	/* the other direction still flows */
	util_write_str(loop, up, "answer 1;");
	ck_assert(util_read_str(loop, &rc, "answer 1;", 2000));
	util_write_str(loop, up, "answer 2");
	ck_assert_int_eq(shutdown(up, SHUT_WR), 0);
	ck_assert(util_read_eof(loop, &rc, 2000));
	ck_assert_int_eq(rc.err, 0);
	ck_assert_str_eq(rc.buf, "answer 1;answer 2");
	ck_assert(wait_active(0, 2000));
	close(up);
	close(lfd);
	util_rd_free(&ru);
	util_rd_free(&rc);
}
END_TEST

START_TEST(test_halfclose_upstream_first)
{
	int lfd, up = connect_through(0, &lfd, _i, NULL);
	struct util_rd ru, rc;

	util_rd_init(&ru, up);
	util_rd_init(&rc, cl[0]);
	util_write_str(loop, up, "banner");
	ck_assert_int_eq(shutdown(up, SHUT_WR), 0);
	ck_assert(util_read_eof(loop, &rc, 2000));
	ck_assert_str_eq(rc.buf, "banner");
	ck_assert_uint_eq(util_listener()->cnt.active, 1);
	util_write_str(loop, cl[0], "late words");
	ck_assert(util_read_str(loop, &ru, "late words", 2000));
	ck_assert_int_eq(shutdown(cl[0], SHUT_WR), 0);
	ck_assert(util_read_eof(loop, &ru, 2000));
	ck_assert_int_eq(ru.err, 0);
	ck_assert_str_eq(ru.buf, "late words");
	ck_assert(wait_active(0, 2000));
	close(up);
	close(lfd);
	util_rd_free(&ru);
	util_rd_free(&rc);
}
END_TEST

/* A reset from one side closes both. */
START_TEST(test_reset)
{
	int lfd, up = connect_through(1, &lfd, _i, NULL);
	struct linger lg = { 1, 0 };
	struct util_rd rc;

	util_rd_init(&rc, cl[0]);
	util_write_str(loop, cl[0], "x");
	pump_for(loop, 20);
	ck_assert_int_eq(setsockopt(up, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	close(up);
	ck_assert(util_read_eof(loop, &rc, 2000));
	ck_assert(wait_active(0, 2000));
	close(lfd);
	util_rd_free(&rc);
}
END_TEST

/* 1 MB each way at the same time; what arrives is what was sent. */
START_TEST(test_megabyte_both_ways)
{
	int lfd, up = connect_through(0, &lfd, _i, NULL);
	size_t len = 1 << 20, offc = 0, offu = 0;
	char *a = malloc(len), *b = malloc(len);
	struct util_rd ru, rc;
	double deadline = util_now() + 20;
	unsigned long sum_a = 0, sum_ru = 0, sum_b = 0, sum_rc = 0;
	ssize_t n;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	util_rd_init(&ru, up);
	util_rd_init(&rc, cl[0]);
	for (size_t k = 0; k < len; k++) {
		a[k] = (char)(k * 7 + k / 251);
		b[k] = (char)(k * 13 + k / 509 + 1);
		sum_a = sum_a * 31 + (unsigned char)a[k];
		sum_b = sum_b * 31 + (unsigned char)b[k];
	}
	while ((ru.len < len || rc.len < len) && util_now() < deadline) {
		if (offc < len && (n = send(cl[0], a + offc, len - offc, MSG_NOSIGNAL)) > 0)
			offc += n;
		if (offu < len && (n = send(up, b + offu, len - offu, MSG_NOSIGNAL)) > 0)
			offu += n;
		pump_for(loop, 1);
		util_rd_poll(&ru);
		util_rd_poll(&rc);
	}
	ck_assert_uint_eq(ru.len, len);
	ck_assert_uint_eq(rc.len, len);
	for (size_t k = 0; k < len; k++) {
		sum_ru = sum_ru * 31 + (unsigned char)ru.buf[k];
		sum_rc = sum_rc * 31 + (unsigned char)rc.buf[k];
	}
	ck_assert_uint_eq(sum_ru, sum_a);
	ck_assert_uint_eq(sum_rc, sum_b);
	ck_assert(memcmp(ru.buf, a, len) == 0);
	ck_assert(memcmp(rc.buf, b, len) == 0);
	/* and both FINs, in either order */
	shutdown(cl[0], SHUT_WR);
	shutdown(up, SHUT_WR);
	ck_assert(util_read_eof(loop, &ru, 2000));
	ck_assert(util_read_eof(loop, &rc, 2000));
	ck_assert(wait_active(0, 2000));
	close(up);
	close(lfd);
	free(a);
	free(b);
	util_rd_free(&ru);
	util_rd_free(&rc);
}
END_TEST

/* Back-pressure, client to upstream: the upstream never reads. The
 * client's sends stop succeeding; the proxy holds at most PROXY_BUF; once
 * the upstream reads, every byte arrives. */
START_TEST(test_backpressure_upstream_slow)
{
	int lfd, up = connect_through(0, &lfd, _i, NULL);
	size_t chunk = 65536, sent = 0;
	char *buf = malloc(chunk);
	double last = util_now(), deadline = util_now() + 20;
	struct util_rd ru;
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	util_rd_init(&ru, up);
	/* stop once nothing went through for 300 ms */
	while (util_now() - last < 0.3 && util_now() < deadline) {
		for (size_t k = 0; k < chunk; k++)
			buf[k] = (char)((sent + k) % 251);
		if ((n = send(cl[0], buf, chunk, MSG_NOSIGNAL)) > 0) {
			sent += n;
			last = util_now();
		}
		pump_for(loop, 1);
		ck_assert_uint_le(proxy_conn_held(proxy_conn_first(conf)), PROXY_BUF);
	}
	ck_assert_msg(util_now() < deadline, "the client was never stopped (%zu bytes)", sent);
	ck_assert_uint_lt(sent, 64u << 20);
	ck_assert_uint_le(proxy_conn_held(proxy_conn_first(conf)), PROXY_BUF);
	/* the upstream reads: everything comes through, in order */
	ck_assert_uint_eq(util_read_len(loop, &ru, sent, 10000), sent);
	for (size_t k = 0; k < sent; k++)
		if ((unsigned char)ru.buf[k] != k % 251)
			ck_abort_msg("byte %zu differs", k);
	/* and the client can send again */
	util_write_str(loop, cl[0], "more");
	ck_assert_uint_eq(util_read_len(loop, &ru, sent + 4, 2000), sent + 4);
	close(up);
	close(lfd);
	free(buf);
	util_rd_free(&ru);
}
END_TEST

/* Back-pressure, upstream to client: the client never reads. */
START_TEST(test_backpressure_client_slow)
{
	int lfd, up = connect_through(0, &lfd, _i, NULL);
	size_t chunk = 65536, sent = 0;
	char *buf = malloc(chunk);
	double last = util_now(), deadline = util_now() + 20;
	struct util_rd rc;
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	util_rd_init(&rc, cl[0]);
	while (util_now() - last < 0.3 && util_now() < deadline) {
		for (size_t k = 0; k < chunk; k++)
			buf[k] = (char)((sent + k) % 253);
		if ((n = send(up, buf, chunk, MSG_NOSIGNAL)) > 0) {
			sent += n;
			last = util_now();
		}
		pump_for(loop, 1);
		ck_assert_uint_le(proxy_conn_held(proxy_conn_first(conf)), PROXY_BUF);
	}
	ck_assert_msg(util_now() < deadline, "the upstream was never stopped (%zu bytes)", sent);
	ck_assert_uint_lt(sent, 64u << 20);
	ck_assert_uint_eq(util_read_len(loop, &rc, sent, 10000), sent);
	for (size_t k = 0; k < sent; k++)
		if ((unsigned char)rc.buf[k] != k % 253)
			ck_abort_msg("byte %zu differs", k);
	close(up);
	close(lfd);
	free(buf);
	util_rd_free(&rc);
}
END_TEST

/* ---- upstream selection --------------------------------------------- */

/* The first upstream refuses: the next one serves. */
START_TEST(test_refused_next)
{
	int rport, port, rfd = up_refusing(&rport), lfd = up_listen(&port, 16), up;
	char ups[96];
	struct util_rd ru;
	struct proxy_stats st;

	snprintf(ups, sizeof ups, "upstream=127.0.0.1:%d, 127.0.0.1:%d", rport, port);
	conf = mkconf(ups, splice_kv(_i), (char *)NULL);
	util_pair(cl);
	handoff();
	up = up_accept(lfd, 2000);
	ck_assert_int_ge(up, 0);
	util_rd_init(&ru, up);
	util_write_str(loop, cl[0], "through");
	ck_assert(util_read_str(loop, &ru, "through", 2000));
	proxy_stats(conf, &st);
	ck_assert_uint_eq(st.connect_failed, 1);
	ck_assert_uint_eq(st.no_upstream, 0);
	close(up);
	close(lfd);
	close(rfd);
	util_rd_free(&ru);
}
END_TEST

/* Every upstream refuses: the client is closed, once each was tried. */
START_TEST(test_all_refused)
{
	int p1, p2, f1 = up_refusing(&p1), f2 = up_refusing(&p2);
	char ups[96];
	struct util_rd rc;
	struct proxy_stats st;

	snprintf(ups, sizeof ups, "upstream=127.0.0.1:%d 127.0.0.1:%d", p1, p2);
	conf = mkconf(ups, splice_kv(_i), (char *)NULL);
	util_pair(cl);
	util_rd_init(&rc, cl[0]);
	handoff();
	ck_assert(util_read_eof(loop, &rc, 2000));
	ck_assert_uint_eq(rc.len, 0);
	ck_assert(wait_active(0, 2000));
	proxy_stats(conf, &st);
	ck_assert_uint_eq(st.connect_failed, 2);
	ck_assert_uint_eq(st.no_upstream, 1);
	ck_assert_uint_eq(st.conns, 0);
	util_rd_free(&rc);
	close(f1);
	close(f2);
}
END_TEST

/* Round-robin: successive connections start at successive upstreams. */
START_TEST(test_round_robin)
{
	int p1, p2, l1 = up_listen(&p1, 16), l2 = up_listen(&p2, 16), fds[4];
	char ups[96];
	int pairs[4][2];

	snprintf(ups, sizeof ups, "upstream=127.0.0.1:%d,127.0.0.1:%d", p1, p2);
	conf = mkconf(ups, (char *)NULL);
	for (int k = 0; k < 4; k++) {
		util_pair(pairs[k]);
		cl[1] = pairs[k][1];
		handoff();
		fds[k] = up_accept(k % 2 ? l2 : l1, 2000);
		ck_assert_msg(fds[k] >= 0, "connection %d not at upstream %d", k, k % 2 + 1);
	}
	for (int k = 0; k < 4; k++) {
		close(fds[k]);
		close(pairs[k][0]);
	}
	ck_assert(wait_active(0, 2000));
	close(l1);
	close(l2);
}
END_TEST

/* A listening socket that completes no more handshakes: backlog 0, its
 * queue filled by connections nobody accepts. SYNs to it go unanswered. */
static int
up_stuck(int *port, int *fillers, int nfill)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int lfd = up_listen(port, 0);
	int k;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(*port);
	for (k = 0; k < nfill; k++) {
		struct pollfd pfd;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		ck_assert_int_ge(fd, 0);
		fillers[k] = fd;
		if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0)
			continue;
		ck_assert_int_eq(errno, EINPROGRESS);
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 200) == 0) {
			k++;   /* this one hangs: the queue is full */
			break;
		}
	}
	ck_assert_msg(k < nfill + 1, "backlog never filled");
	for (; k < nfill; k++)
		fillers[k] = -1;
	return lfd;
}

static void
close_all(int *fds, int n)
{
	for (int k = 0; k < n; k++)
		if (fds[k] >= 0)
			close(fds[k]);
}

/* connect_timeout: the stuck upstream is given up after it, the next used. */
START_TEST(test_connect_timeout_next)
{
	int sport, port, fill[8], sfd = up_stuck(&sport, fill, 8), lfd = up_listen(&port, 16), up;
	char ups[96];
	double t0;
	struct proxy_stats st;

	snprintf(ups, sizeof ups, "upstream=127.0.0.1:%d,127.0.0.1:%d", sport, port);
	conf = mkconf(ups, "connect_timeout=200ms", splice_kv(_i), (char *)NULL);
	util_pair(cl);
	ev_now_update(loop);  /* up_stuck blocked: the loop's clock is behind */
	t0 = util_now();
	handoff();
	up = up_accept(lfd, 3000);
	ck_assert_int_ge(up, 0);
	ck_assert_msg(util_now() - t0 >= 0.15, "next upstream after %.3f s", util_now() - t0);
	ck_assert_msg(util_now() - t0 < 1.5, "next upstream after %.3f s", util_now() - t0);
	proxy_stats(conf, &st);
	ck_assert_uint_eq(st.connect_failed, 1);
	close(up);
	close(lfd);
	close(sfd);
	close_all(fill, 8);
}
END_TEST

/* Only a stuck upstream: the client is closed after connect_timeout. */
START_TEST(test_connect_timeout_all)
{
	int sport, fill[8], sfd = up_stuck(&sport, fill, 8);
	char ups[64];
	struct util_rd rc;
	double t0;

	snprintf(ups, sizeof ups, "upstream=127.0.0.1:%d", sport);
	conf = mkconf(ups, "connect_timeout=150ms", (char *)NULL);
	util_pair(cl);
	util_rd_init(&rc, cl[0]);
	ev_now_update(loop);
	t0 = util_now();
	handoff();
	ck_assert(util_read_eof(loop, &rc, 3000));
	ck_assert_msg(util_now() - t0 >= 0.1, "closed after %.3f s", util_now() - t0);
	ck_assert(wait_active(0, 1000));
	util_rd_free(&rc);
	close(sfd);
	close_all(fill, 8);
}
END_TEST

/* ---- PROXY header ----------------------------------------------------- */

START_TEST(test_proxy_v1)
{
	int lfd, up = connect_through(1, &lfd, _i, "send_proxy_protocol=v1");
	struct sockaddr_in peer, local;
	socklen_t pl = sizeof peer, ll = sizeof local;
	struct util_rd ru;
	char want[160];

	ck_assert_int_eq(getpeername(cl[1], (struct sockaddr *)&peer, &pl), 0);
	ck_assert_int_eq(getsockname(cl[1], (struct sockaddr *)&local, &ll), 0);
	snprintf(want, sizeof want, "PROXY TCP4 127.0.0.1 127.0.0.1 %u %u\r\nfirst bytes",
	    ntohs(peer.sin_port), ntohs(local.sin_port));
	util_rd_init(&ru, up);
	util_write_str(loop, cl[0], "first bytes");
	ck_assert(util_read_str(loop, &ru, "first bytes", 2000));
	ck_assert_str_eq(ru.buf, want);
	/* the header is not the client's traffic */
	{
		struct proxy_stats st;

		proxy_stats(conf, &st);
		ck_assert_uint_eq(st.bytes_in, strlen("first bytes"));
	}
	close(up);
	close(lfd);
	util_rd_free(&ru);
}
END_TEST

START_TEST(test_proxy_v2)
{
	int lfd, up = connect_through(1, &lfd, _i, "send_proxy_protocol=v2");
	struct sockaddr_in peer, local;
	socklen_t pl = sizeof peer, ll = sizeof local;
	struct proxy_proto_result r;
	struct util_rd ru;
	int hl;

	ck_assert_int_eq(getpeername(cl[1], (struct sockaddr *)&peer, &pl), 0);
	ck_assert_int_eq(getsockname(cl[1], (struct sockaddr *)&local, &ll), 0);
	util_rd_init(&ru, up);
	/* the header goes out even before the client says anything */
	ck_assert_uint_eq(util_read_len(loop, &ru, 16 + 12, 2000), 16 + 12);
	hl = proxy_proto_parse(ru.buf, ru.len, PROXY_PROTO_V2, &r);
	ck_assert_int_eq(hl, 28);
	ck_assert_int_eq(r.command, PROXY_PROTO_CMD_PROXY);
	ck_assert_int_eq(r.family, AF_INET);
	ck_assert_int_eq(((struct sockaddr_in *)&r.src)->sin_port, peer.sin_port);
	ck_assert_int_eq(((struct sockaddr_in *)&r.src)->sin_addr.s_addr, peer.sin_addr.s_addr);
	ck_assert_int_eq(((struct sockaddr_in *)&r.dst)->sin_port, local.sin_port);
	util_write_str(loop, cl[0], "data");
	ck_assert_uint_eq(util_read_len(loop, &ru, 32, 2000), 32);
	ck_assert(memcmp(ru.buf + 28, "data", 4) == 0);
	close(up);
	close(lfd);
	util_rd_free(&ru);
}
END_TEST

/* ---- drain ----------------------------------------------------------- */

/* A proxied connection counts as open from its accept (api->hold), so a
 * draining worker waits for it; it stops counting when it ends. (At the
 * shutdown timeout the worker leaves its loop and exits: nothing to test
 * here.) */
START_TEST(test_drain_hold)
{
	int lfd, up = connect_through(0, &lfd, 0, NULL);
	struct util_rd ru, rc;

	ck_assert_uint_eq(conn_active, 1);
	handler_proxy.stop(conf);
	ck_assert_uint_eq(conn_active, 1);
	util_rd_init(&ru, up);
	util_rd_init(&rc, cl[0]);
	util_write_str(loop, cl[0], "still served");
	ck_assert(util_read_str(loop, &ru, "still served", 2000));
	shutdown(cl[0], SHUT_WR);
	shutdown(up, SHUT_WR);
	ck_assert(wait_active(0, 2000));
	ck_assert_uint_eq(conn_active, 0);
	ck_assert_uint_eq(util_listener()->cnt.active, 0);
	close(up);
	close(lfd);
	util_rd_free(&ru);
	util_rd_free(&rc);
}
END_TEST

/* ---- configuration ---------------------------------------------------- */

static int
set1(void *c, const char *key, const char *value, char *err, size_t n)
{
	err[0] = 0;
	return handler_proxy.conf_set(c, key, value, err, n);
}

START_TEST(test_conf)
{
	void *c = handler_proxy.conf_new(&util_listener()->pub);
	char err[256], *dump = NULL;
	size_t dlen = 0;
	FILE *f;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(handler_proxy.conf_check(c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "upstream"));
	ck_assert_int_eq(set1(c, "upstream", "127.0.0.1", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "upstream", "::1:80", err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "[address]:port"));
	ck_assert_int_eq(set1(c, "upstream", "127.0.0.1:0", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "upstream", "127.0.0.1:65536", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "upstream", "127.0.0.1:8x", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "upstream", "[::1]80", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "upstream", "unix:relative", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "upstream", ", ,", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "upstream", "no-such-host.invalid:80", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "connect_timeout", "0", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "connect_timeout", "5 s", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "send_proxy_protocol", "v3", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "splice", "maybe", err, sizeof err), -1);
	ck_assert_int_eq(set1(c, "address", "x", err, sizeof err), ACCEPTD_KEY_UNKNOWN);
	ck_assert_int_eq(set1(c, "upstream", "127.0.0.1:80, [::1]:81 unix:/run/x.sock,"
	    "localhost:82", err, sizeof err), 0);
	ck_assert_int_eq(set1(c, "connect_timeout", "250ms", err, sizeof err), 0);
	ck_assert_int_eq(set1(c, "send_proxy_protocol", "v2", err, sizeof err), 0);
	ck_assert_int_eq(set1(c, "splice", "no", err, sizeof err), 0);
	ck_assert_int_eq(handler_proxy.conf_check(c, err, sizeof err), 0);
	f = open_memstream(&dump, &dlen);
	ck_assert_ptr_nonnull(f);
	handler_proxy.conf_dump(c, f);
	fclose(f);
	ck_assert_str_eq(dump, "upstream = 127.0.0.1:80, [::1]:81 unix:/run/x.sock,localhost:82\n"
	    "connect_timeout = 250ms\nsend_proxy_protocol = v2\nsplice = no\n");
	free(dump);
	handler_proxy.conf_free(c);
	/* defaults */
	c = handler_proxy.conf_new(&util_listener()->pub);
	ck_assert_int_eq(set1(c, "upstream", "127.0.0.1:80", err, sizeof err), 0);
	f = open_memstream(&dump, &dlen);
	handler_proxy.conf_dump(c, f);
	fclose(f);
	ck_assert_str_eq(dump, "upstream = 127.0.0.1:80\nconnect_timeout = 5s\n"
	    "send_proxy_protocol = off\nsplice = yes\n");
	free(dump);
	handler_proxy.conf_free(c);
	ck_assert_ptr_eq(handler_find(NULL, "proxy"), handler_find(NULL, "proxy"));
	ck_assert_str_eq(handler_find(NULL, "proxy")->name, "proxy");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("proxy");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_echo, 0, 2);
	tcase_add_loop_test(tc, test_halfclose_client_first, 0, 2);
	tcase_add_loop_test(tc, test_halfclose_upstream_first, 0, 2);
	tcase_add_loop_test(tc, test_reset, 0, 2);
	tcase_add_loop_test(tc, test_megabyte_both_ways, 0, 2);
	tcase_add_loop_test(tc, test_backpressure_upstream_slow, 0, 2);
	tcase_add_loop_test(tc, test_backpressure_client_slow, 0, 2);
	tcase_add_loop_test(tc, test_refused_next, 0, 2);
	tcase_add_loop_test(tc, test_all_refused, 0, 2);
	tcase_add_test(tc, test_round_robin);
	tcase_add_loop_test(tc, test_connect_timeout_next, 0, 2);
	tcase_add_test(tc, test_connect_timeout_all);
	tcase_add_loop_test(tc, test_proxy_v1, 0, 2);
	tcase_add_loop_test(tc, test_proxy_v2, 0, 2);
	tcase_add_test(tc, test_drain_hold);
	tcase_add_test(tc, test_conf);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
