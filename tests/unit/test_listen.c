/* Unit tests for daemon/listen.c: listen_bind on loopback, wildcard and
 * unix addresses; the socket options; reuseport copies; port-0 sharing and
 * retry; errors leave nothing open; stale unix sockets. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include <check.h>

#include "conf.h"
#include "listen.h"
#include "unit.h"

static char path[64], err[512];
static struct conf *conf;
static char dir[64];            /* per-test temp dir for unix sockets */

/* ---- bind() interposer: occupy the port a later socket of a port-0
 * listener is about to take (the first socket binds port 0, every later
 * one the port it got), so the retry path runs deterministically. */
static int occupy_binds;        /* how many fixed-port binds to sabotage */
static int fixed_binds_seen;
static int blockers[16], nblockers;

static int
sa_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

int
bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (sa_port(sa) != 0)
		fixed_binds_seen++;
	if (occupy_binds > 0 && sa_port(sa) != 0) {
		int b = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;

		occupy_binds--;
		/* a genuine occupant of the address (v6 only, no SO_REUSEADDR) */
		if (b >= 0 && (sa->sa_family != AF_INET6 ||
		    setsockopt(b, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) == 0) &&
		    syscall(SYS_bind, b, sa, len) == 0 && listen(b, 1) == 0 && nblockers < 16)
			blockers[nblockers++] = b;
		else if (b >= 0)
			close(b);
	}
	return syscall(SYS_bind, fd, sa, len);
}

static void
setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/acceptd-unit-listen-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	if (conf)
		conf_free(conf);
	conf = NULL;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_listen: could not remove %s\n", dir);
}

/* The first listener of a one-listener config. */
static struct conf_listener *
listener(const char *text)
{
	if (conf)
		conf_free(conf);
	conf = unit_load(text, path, err, sizeof err);
	ck_assert_msg(conf != NULL, "conf_load: %s\n%s", err, text);
	return conf->listeners;
}

static int
port_of_ss(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return -1;
}

static int
sock_port(int fd, int *family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	if (family)
		*family = ss.ss_family;
	return port_of_ss(&ss);
}

static int
opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;

	ck_assert_msg(getsockopt(fd, level, name, &v, &len) == 0, "getsockopt %d/%d: %s", level,
	    name, strerror(errno));
	return v;
}

/* Every listening socket: non-blocking, close-on-exec, listening. */
static void
check_common(int fd)
{
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(fcntl(fd, F_GETFL) & O_NONBLOCK, "fd %d blocking", fd);
	ck_assert_msg(fcntl(fd, F_GETFD) & FD_CLOEXEC, "fd %d not close-on-exec", fd);
	ck_assert_msg(opt(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1, "fd %d not listening", fd);
}

static int
connect_to(int family, const char *ip, int port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	if (family == AF_INET) {
		struct sockaddr_in *in = (void *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		inet_pton(AF_INET, ip, &in->sin_addr);
		len = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (void *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &in6->sin6_addr);
		len = sizeof *in6;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
connect_unix(const char *p)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(un.sun_path, sizeof un.sun_path, "%s", p);
	if (connect(fd, (struct sockaddr *)&un, sizeof un) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Accept one connection within 2 s (the listener is non-blocking). */
static int
accept_one(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	ck_assert_msg(poll(&p, 1, 2000) == 1, "nothing to accept");
	return accept(lfd, NULL, NULL);
}

/* ---- TCP ------------------------------------------------------------- */

START_TEST(test_star_port0)
{
	struct conf_listener *l = listener("[listener a]\naddress = *\nport = 0\nreuseport = no\n");
	struct listen_set s;
	int v4 = -1, v6 = -1, port = -1;

	ck_assert_int_eq(listen_bind(l, 1, &s, err, sizeof err), 0);
	ck_assert_int_eq(s.naddrs, 2);
	ck_assert_int_eq(s.copies, 1);
	for (int i = 0; i < 2; i++) {
		int fam, p = sock_port(s.socks[i].fd, &fam);

		check_common(s.socks[i].fd);
		ck_assert_int_ne(p, 0);
		if (port < 0)
			port = p;
		ck_assert_msg(p == port, "ports differ: %d and %d", port, p);
		/* the set records the address as bound, real port included */
		ck_assert_int_eq(s.socks[i].ss.ss_family, fam);
		ck_assert_int_eq(port_of_ss(&s.socks[i].ss), p);
		ck_assert_int_eq(opt(s.socks[i].fd, SOL_SOCKET, SO_REUSEADDR), 1);
		ck_assert_int_eq(opt(s.socks[i].fd, SOL_SOCKET, SO_REUSEPORT), 0);
		if (fam == AF_INET)
			v4 = s.socks[i].fd;
		else if (fam == AF_INET6)
			v6 = s.socks[i].fd;
	}
	ck_assert_int_ge(v4, 0);
	ck_assert_int_ge(v6, 0);
	ck_assert_int_eq(opt(v6, IPPROTO_IPV6, IPV6_V6ONLY), 1);
	/* both families answer on loopback, each on its own socket */
	{
		int c4 = connect_to(AF_INET, "127.0.0.1", port), c6 = connect_to(AF_INET6, "::1", port);
		int a4, a6;

		ck_assert_int_ge(c4, 0);
		ck_assert_int_ge(c6, 0);
		ck_assert_int_ge(a4 = accept_one(v4), 0);
		ck_assert_int_ge(a6 = accept_one(v6), 0);
		close(a4), close(a6), close(c4), close(c6);
	}
	listen_close(&s, 1);
	ck_assert_ptr_null(s.socks);
}
END_TEST

START_TEST(test_ipv6only_no)
{
	struct conf_listener *l = listener("[listener a]\naddress = *\nport = 0\nreuseport = no\n"
	    "ipv6only = no\n");
	struct listen_set s;
	int bound = 0, v6 = -1, c, a;

	ck_assert_int_eq(listen_bind(l, 1, &s, err, sizeof err), 0);
	ck_assert_int_eq(s.naddrs, 2);
	for (int i = 0; i < 2; i++) {
		int fam;

		if (s.socks[i].fd < 0) {
			/* the skipped one is 0.0.0.0 */
			ck_assert_int_eq(l->addrs[i].ss.ss_family, AF_INET);
			continue;
		}
		bound++;
		check_common(s.socks[i].fd);
		sock_port(s.socks[i].fd, &fam);
		ck_assert_int_eq(fam, AF_INET6);
		v6 = s.socks[i].fd;
	}
	ck_assert_int_eq(bound, 1);
	ck_assert_int_eq(opt(v6, IPPROTO_IPV6, IPV6_V6ONLY), 0);
	/* [::] takes IPv4 too */
	ck_assert_int_ge(c = connect_to(AF_INET, "127.0.0.1", sock_port(v6, NULL)), 0);
	ck_assert_int_ge(a = accept_one(v6), 0);
	close(a), close(c);
	/* the worker mapping still works for the skipped address: fd -1 */
	for (int i = 0; i < 2; i++)
		ck_assert_ptr_eq(listen_sock_for(&s, i, 5), &s.socks[i]);
	listen_close(&s, 0);
}
END_TEST

START_TEST(test_loopback_port0)
{
	struct conf_listener *l = listener("[listener a]\naddress = 127.0.0.1\nport = 0\nreuseport = no\n");
	struct listen_set s;
	int fam, c, a;

	ck_assert_int_eq(listen_bind(l, 1, &s, err, sizeof err), 0);
	ck_assert_int_eq(s.naddrs, 1);
	check_common(s.socks[0].fd);
	ck_assert_int_ne(sock_port(s.socks[0].fd, &fam), 0);
	ck_assert_int_eq(fam, AF_INET);
	ck_assert_int_eq(opt(s.socks[0].fd, SOL_SOCKET, SO_REUSEADDR), 1);
	ck_assert_int_eq(opt(s.socks[0].fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	ck_assert_int_ge(c = connect_to(AF_INET, "127.0.0.1", sock_port(s.socks[0].fd, NULL)), 0);
	ck_assert_int_ge(a = accept_one(s.socks[0].fd), 0);
	close(a), close(c);
	listen_close(&s, 1);
}
END_TEST

START_TEST(test_reuseport_copies)
{
	struct conf_listener *l = listener("[listener a]\naddress = 127.0.0.1\nport = 0\nreuseport = yes\n");
	struct listen_set s;
	int port;

	ck_assert_int_eq(listen_bind(l, 3, &s, err, sizeof err), 0);
	ck_assert_int_eq(s.naddrs, 1);
	ck_assert_int_eq(s.copies, 3);
	port = sock_port(s.socks[0].fd, NULL);
	ck_assert_int_ne(port, 0);
	for (int k = 0; k < 3; k++) {
		check_common(s.socks[k].fd);
		ck_assert_int_eq(sock_port(s.socks[k].fd, NULL), port);
		ck_assert_int_eq(opt(s.socks[k].fd, SOL_SOCKET, SO_REUSEPORT), 1);
		ck_assert_int_eq(opt(s.socks[k].fd, SOL_SOCKET, SO_REUSEADDR), 1);
		for (int j = 0; j < k; j++)
			ck_assert_int_ne(s.socks[j].fd, s.socks[k].fd);
	}
	listen_close(&s, 1);
}
END_TEST


/* Copies come and go at the end; steering keeps new connections off the
 * leaving copies so that closing them resets nothing. */
START_TEST(test_reuseport_add_drop_steer)
{
	struct conf_listener *l = listener("[listener a]\naddress = 127.0.0.1\nport = 0\nreuseport = yes\n");
	struct listen_set s;
	struct sockaddr_in sin;
	int port, fam, c[40], queued[3] = { 0 };

	ck_assert_int_eq(listen_bind(l, 2, &s, err, sizeof err), 0);
	ck_assert_int_eq(listen_add_copy(l, &s, err, sizeof err), 0);
	ck_assert_int_eq(s.copies, 3);
	port = sock_port(s.socks[0].fd, &fam);
	for (int k = 0; k < 3; k++) {
		ck_assert_int_eq(sock_port(listen_sock_for(&s, 0, k)->fd, &fam), port);
		check_common(listen_sock_for(&s, 0, k)->fd);
	}
	/* copies 1 and 2 leave: every new connection must queue on copy 0 */
	ck_assert_int_eq(listen_steer(&s, 1), 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < 40; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_eq(connect(c[i], (struct sockaddr *)&sin, sizeof sin), 0);
	}
	for (int k = 0; k < 3; k++) {
		int fd;

		while ((fd = accept(listen_sock_for(&s, 0, k)->fd, NULL, NULL)) >= 0) {
			queued[k]++;
			close(fd);
		}
	}
	ck_assert_int_eq(queued[0], 40);
	ck_assert_int_eq(queued[1] + queued[2], 0);
	listen_drop_copy(&s);
	listen_drop_copy(&s);
	ck_assert_int_eq(s.copies, 1);
	ck_assert_int_eq(listen_steer(&s, 1), 0);   /* nothing to lift: fine */
	for (int i = 0; i < 40; i++)
		close(c[i]);
	listen_close(&s, 0);
}
END_TEST

START_TEST(test_reuseport_copies_star)
{
	struct conf_listener *l = listener("[listener a]\naddress = *\nport = 0\nreuseport = yes\n");
	struct listen_set s;
	int port = -1, v4 = 0, v6 = 0;

	ck_assert_int_eq(listen_bind(l, 3, &s, err, sizeof err), 0);
	ck_assert_int_eq(s.naddrs, 2);
	ck_assert_int_eq(s.copies, 3);
	for (int a = 0; a < 2; a++)
		for (int k = 0; k < 3; k++) {
			struct listen_sock *ls = listen_sock_for(&s, a, k);
			int fam, p;

			check_common(ls->fd);
			p = sock_port(ls->fd, &fam);
			if (port < 0)
				port = p;
			ck_assert_int_eq(p, port);
			ck_assert_int_eq(fam, l->addrs[a].ss.ss_family);
			ck_assert_int_eq(opt(ls->fd, SOL_SOCKET, SO_REUSEPORT), 1);
			if (fam == AF_INET6) {
				v6++;
				ck_assert_int_eq(opt(ls->fd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
			} else {
				v4++;
			}
		}
	ck_assert_int_eq(v4, 3);
	ck_assert_int_eq(v6, 3);
	listen_close(&s, 1);
}
END_TEST

START_TEST(test_sock_for)
{
	struct listen_sock socks[6];
	struct listen_set s = { .socks = socks, .naddrs = 2, .copies = 3 };

	for (int a = 0; a < 2; a++)
		for (int w = 0; w < 7; w++)
			ck_assert_ptr_eq(listen_sock_for(&s, a, w), &socks[(w % 3) * 2 + a]);
	s.copies = 1;
	for (int a = 0; a < 2; a++)
		for (int w = 0; w < 7; w++)
			ck_assert_ptr_eq(listen_sock_for(&s, a, w), &socks[a]);
}
END_TEST

/* A port taken by a socket of our own: the exact error, nothing left open. */
START_TEST(test_port_in_use)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct listen_set s = { 0 };
	socklen_t len = sizeof in;
	char text[160], want[160];
	int busy, port, before;

	ck_assert_int_ge(busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
	ck_assert_int_eq(bind(busy, (struct sockaddr *)&in, sizeof in), 0);
	ck_assert_int_eq(listen(busy, 1), 0);
	ck_assert_int_eq(getsockname(busy, (struct sockaddr *)&in, &len), 0);
	port = ntohs(in.sin_port);
	snprintf(text, sizeof text, "[listener web]\naddress = 127.0.0.1\nport = %d\nreuseport = no\n", port);
	listener(text);
	before = unit_fd_count();
	ck_assert_int_eq(listen_bind(conf->listeners, 1, &s, err, sizeof err), -1);
	snprintf(want, sizeof want, "listener web: bind 127.0.0.1:%d: Address already in use", port);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(errno, EADDRINUSE);
	ck_assert_int_eq(unit_fd_count(), before);
	ck_assert_ptr_null(s.socks);
	close(busy);
}
END_TEST

/* The second address fails after the first is bound: the first is closed. */
START_TEST(test_partial_failure_closes_all)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	struct listen_set s = { 0 };
	socklen_t len = sizeof in6;
	char text[160], want[160];
	int busy, port, before, on = 1;

	ck_assert_int_ge(busy = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
	ck_assert_int_eq(setsockopt(busy, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on), 0);
	ck_assert_int_eq(bind(busy, (struct sockaddr *)&in6, sizeof in6), 0);
	ck_assert_int_eq(listen(busy, 1), 0);
	ck_assert_int_eq(getsockname(busy, (struct sockaddr *)&in6, &len), 0);
	port = ntohs(in6.sin6_port);
	snprintf(text, sizeof text, "[listener web]\naddress = *\nport = %d\nreuseport = yes\n", port);
	listener(text);
	before = unit_fd_count();
	ck_assert_int_eq(listen_bind(conf->listeners, 2, &s, err, sizeof err), -1);
	snprintf(want, sizeof want, "listener web: bind [::]:%d: Address already in use", port);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(unit_fd_count(), before);
	ck_assert_ptr_null(s.socks);
	close(busy);
}
END_TEST

/* Port 0: when a later socket finds the port the first one got taken,
 * the whole set is retried on a new port. */
START_TEST(test_port0_retry)
{
	struct conf_listener *l = listener("[listener a]\naddress = *\nport = 0\nreuseport = no\n");
	struct listen_set s;
	int p0, p1, before;

	occupy_binds = 1;
	fixed_binds_seen = 0;
	ck_assert_msg(listen_bind(l, 1, &s, err, sizeof err) == 0, "listen_bind: %s", err);
	ck_assert_int_eq(fixed_binds_seen, 2);   /* sabotaged once, then the retry */
	ck_assert_int_eq(nblockers, 1);
	p0 = sock_port(s.socks[0].fd, NULL);
	p1 = sock_port(s.socks[1].fd, NULL);
	ck_assert_int_eq(p0, p1);
	ck_assert_int_ne(p0, sock_port(blockers[0], NULL));
	listen_close(&s, 1);

	/* every try sabotaged: an error, after a bounded number of tries, nothing open */
	before = unit_fd_count();
	occupy_binds = 1000;
	fixed_binds_seen = 0;
	ck_assert_int_eq(listen_bind(l, 1, &s, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "Address already in use") != NULL, "err: %s", err);
	ck_assert_int_ge(fixed_binds_seen, 2);
	ck_assert_int_le(fixed_binds_seen, 16);
	ck_assert_int_eq(unit_fd_count(), before + nblockers - 1);
	occupy_binds = 0;
	for (int i = 0; i < nblockers; i++)
		close(blockers[i]);
}
END_TEST

/* A fixed port is never retried: the error is the first bind's. */
START_TEST(test_fixed_port_no_retry)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	struct listen_set s;
	socklen_t len = sizeof in6;
	char text[160];
	int busy, on = 1;

	ck_assert_int_ge(busy = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
	ck_assert_int_eq(setsockopt(busy, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on), 0);
	ck_assert_int_eq(bind(busy, (struct sockaddr *)&in6, sizeof in6), 0);
	ck_assert_int_eq(listen(busy, 1), 0);
	ck_assert_int_eq(getsockname(busy, (struct sockaddr *)&in6, &len), 0);
	snprintf(text, sizeof text, "[listener a]\naddress = *\nport = %d\nreuseport = no\n",
	    ntohs(in6.sin6_port));
	ck_assert_int_eq(listen_bind(listener(text), 1, &s, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "Address already in use"));
	close(busy);
}
END_TEST

START_TEST(test_keepalive)
{
	struct conf_listener *l = listener("[listener a]\naddress = 127.0.0.1\nport = 0\nreuseport = no\n"
	    "keepalive = yes\n");
	struct listen_set s;
	int c, a;

	ck_assert_int_eq(listen_bind(l, 1, &s, err, sizeof err), 0);
	ck_assert_int_eq(opt(s.socks[0].fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	ck_assert_int_ge(c = connect_to(AF_INET, "127.0.0.1", sock_port(s.socks[0].fd, NULL)), 0);
	ck_assert_int_ge(a = accept_one(s.socks[0].fd), 0);
	ck_assert_msg(opt(a, SOL_SOCKET, SO_KEEPALIVE) == 1,
	    "the accepted connection did not inherit SO_KEEPALIVE");
	close(a), close(c);
	listen_close(&s, 1);
}
END_TEST

START_TEST(test_fastopen)
{
	struct conf_listener *l = listener("[listener a]\naddress = 127.0.0.1\nport = 0\nreuseport = no\n"
	    "fastopen = 5\n");
	struct listen_set s;
	socklen_t len;
	int v = -1;

	if (listen_bind(l, 1, &s, err, sizeof err) < 0 && strstr(err, "TCP_FASTOPEN")) {
		printf("test_listen: SKIP test_fastopen: the kernel refuses TCP_FASTOPEN (%s)\n", err);
		return;
	}
	ck_assert_msg(s.socks != NULL, "listen_bind: %s", err);
	len = sizeof v;
	if (getsockopt(s.socks[0].fd, IPPROTO_TCP, TCP_FASTOPEN, &v, &len) < 0) {
		printf("test_listen: SKIP test_fastopen: getsockopt TCP_FASTOPEN: %s\n", strerror(errno));
	} else {
		ck_assert_int_eq(v, 5);
	}
	listen_close(&s, 1);
}
END_TEST

START_TEST(test_defer_accept)
{
	struct conf_listener *l = listener("[listener a]\naddress = 127.0.0.1\nport = 0\nreuseport = no\n"
	    "defer_accept = yes\n");
	struct listen_set s;

	ck_assert_msg(listen_bind(l, 1, &s, err, sizeof err) == 0, "listen_bind: %s", err);
	ck_assert_int_gt(opt(s.socks[0].fd, IPPROTO_TCP, TCP_DEFER_ACCEPT), 0);
	listen_close(&s, 1);
}
END_TEST

/* The listen() backlog as the kernel holds it: sock_diag (what ss(8)
 * asks) reports a LISTEN socket's limit as idiag_wqueue. -1: no answer. */
static int
diag_backlog(int port)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} q = {
		.nlh = { .nlmsg_len = sizeof q, .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.req = { .sdiag_family = AF_INET, .sdiag_protocol = IPPROTO_TCP,
			 .idiag_states = 1 << 10 /* TCP_LISTEN */ },
	};
	union {
		char buf[16384];
		struct nlmsghdr align;
	} r;
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), found = -1;
	ssize_t n;

	if (fd < 0)
		return -1;
	if (send(fd, &q, sizeof q, 0) != (ssize_t)sizeof q) {
		close(fd);
		return -1;
	}
	while ((n = recv(fd, r.buf, sizeof r.buf, 0)) > 0) {
		for (struct nlmsghdr *h = &r.align; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct inet_diag_msg *m = NLMSG_DATA(h);

			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				close(fd);
				return found;
			}
			if (ntohs(m->id.idiag_sport) == port)
				found = m->idiag_wqueue;
		}
	}
	close(fd);
	return found;
}

START_TEST(test_backlog)
{
	struct conf_listener *l = listener("[listener a]\naddress = 127.0.0.1\nport = 0\nreuseport = no\n"
	    "backlog = 17\n");
	struct listen_set s;
	int b;

	ck_assert_int_eq(l->backlog, 17);
	ck_assert_int_eq(listen_bind(l, 1, &s, err, sizeof err), 0);
	b = diag_backlog(sock_port(s.socks[0].fd, NULL));
	if (b < 0)
		printf("test_listen: SKIP test_backlog: no sock_diag answer for the socket\n");
	else
		ck_assert_int_eq(b, 17);
	listen_close(&s, 1);
}
END_TEST

/* ---- unix ------------------------------------------------------------ */

static struct conf_listener *
unix_listener(char *p, size_t n)
{
	char text[256];

	snprintf(p, n, "%s/s.sock", dir);
	snprintf(text, sizeof text, "[listener u]\naddress = unix:%s\n", p);
	return listener(text);
}

START_TEST(test_unix_fresh)
{
	char p[100];
	struct conf_listener *l = unix_listener(p, sizeof p);
	struct listen_set s;
	struct stat st;
	int c, a;

	ck_assert_int_eq(l->reuseport, 0);
	ck_assert_msg(listen_bind(l, 1, &s, err, sizeof err) == 0, "listen_bind: %s", err);
	ck_assert_int_eq(s.naddrs, 1);
	check_common(s.socks[0].fd);
	ck_assert_int_eq(s.socks[0].ss.ss_family, AF_UNIX);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_ge(c = connect_unix(p), 0);
	ck_assert_int_ge(a = accept_one(s.socks[0].fd), 0);
	close(a), close(c);
	/* listen_close(…, 0) keeps the file (a worker closing its copy) */
	listen_close(&s, 0);
	ck_assert_int_eq(stat(p, &st), 0);
}
END_TEST

START_TEST(test_unix_close_unlinks)
{
	char p[100];
	struct conf_listener *l = unix_listener(p, sizeof p);
	struct listen_set s;

	ck_assert_msg(listen_bind(l, 1, &s, err, sizeof err) == 0, "listen_bind: %s", err);
	ck_assert_int_eq(access(p, F_OK), 0);
	listen_close(&s, 1);
	ck_assert_int_eq(access(p, F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

/* A socket file nobody listens on (its process died) is replaced. */
START_TEST(test_unix_stale)
{
	char p[100];
	struct conf_listener *l = unix_listener(p, sizeof p);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct listen_set s;
	int old, c, a;

	snprintf(un.sun_path, sizeof un.sun_path, "%s", p);
	ck_assert_int_ge(old = socket(AF_UNIX, SOCK_STREAM, 0), 0);
	ck_assert_int_eq(bind(old, (struct sockaddr *)&un, sizeof un), 0);
	ck_assert_int_eq(listen(old, 1), 0);
	close(old);
	ck_assert_int_eq(access(p, F_OK), 0);
	ck_assert_msg(listen_bind(l, 1, &s, err, sizeof err) == 0, "listen_bind: %s", err);
	ck_assert_int_ge(c = connect_unix(p), 0);
	ck_assert_int_ge(a = accept_one(s.socks[0].fd), 0);
	close(a), close(c);
	listen_close(&s, 1);
}
END_TEST

/* A live listener at the path is never taken over. */
START_TEST(test_unix_live)
{
	char p[100];
	struct conf_listener *l = unix_listener(p, sizeof p);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct listen_set s;
	int live, before, c, a;

	snprintf(un.sun_path, sizeof un.sun_path, "%s", p);
	ck_assert_int_ge(live = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
	ck_assert_int_eq(bind(live, (struct sockaddr *)&un, sizeof un), 0);
	ck_assert_int_eq(listen(live, 4), 0);
	before = unit_fd_count();
	ck_assert_int_eq(listen_bind(l, 1, &s, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "Address already in use") != NULL, "err: %s", err);
	ck_assert_msg(strstr(err, p) != NULL, "err does not name the path: %s", err);
	ck_assert_msg(strncmp(err, "listener u: ", 12) == 0, "err: %s", err);
	ck_assert_int_eq(unit_fd_count(), before);
	/* the live one still answers (its probe connection aside) */
	ck_assert_int_ge(c = connect_unix(p), 0);
	ck_assert_int_ge(a = accept(live, NULL, NULL), 0);
	close(a);
	close(c);
	close(live);
}
END_TEST

/* A live listener whose accept queue is full (a hung server) is still
 * live: the probe must not block on it, and the path is refused. A
 * timeout here means listen_bind blocked in its probe connect(). */
START_TEST(test_unix_live_full_queue)
{
	char p[100];
	struct conf_listener *l = unix_listener(p, sizeof p);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct listen_set s;
	int live, queued[64], nq = 0;

	snprintf(un.sun_path, sizeof un.sun_path, "%s", p);
	ck_assert_int_ge(live = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
	ck_assert_int_eq(bind(live, (struct sockaddr *)&un, sizeof un), 0);
	ck_assert_int_eq(listen(live, 0), 0);
	while (nq < 64) {
		int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		ck_assert_int_ge(c, 0);
		if (connect(c, (struct sockaddr *)&un, sizeof un) < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			close(c);
			break;
		}
		queued[nq++] = c;
	}
	ck_assert_int_lt(nq, 64);
	alarm(10);      /* the safety net under CK_FORK=no, where timeouts do not apply */
	ck_assert_int_eq(listen_bind(l, 1, &s, err, sizeof err), -1);
	alarm(0);
	ck_assert_msg(strstr(err, "Address already in use") != NULL, "err: %s", err);
	for (int i = 0; i < nq; i++)
		close(queued[i]);
	close(live);
}
END_TEST

START_TEST(test_unix_regular_file)
{
	char p[100];
	struct conf_listener *l = unix_listener(p, sizeof p);
	struct listen_set s;
	struct stat st;
	int fd, before;

	ck_assert_int_ge(fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600), 0);
	ck_assert_int_eq(write(fd, "keep", 4), 4);
	close(fd);
	before = unit_fd_count();
	ck_assert_int_eq(listen_bind(l, 1, &s, err, sizeof err), -1);
	ck_assert_msg(strstr(err, p) != NULL, "err does not name the path: %s", err);
	ck_assert_int_eq(unit_fd_count(), before);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_size, 4);
}
END_TEST

static Suite *
listen_suite(void)
{
	Suite *s = suite_create("listen");
	TCase *tc;

	tc = tcase_create("tcp");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_star_port0);
	tcase_add_test(tc, test_ipv6only_no);
	tcase_add_test(tc, test_loopback_port0);
	tcase_add_test(tc, test_reuseport_copies);
	tcase_add_test(tc, test_reuseport_copies_star);
	tcase_add_test(tc, test_reuseport_add_drop_steer);
	tcase_add_test(tc, test_sock_for);
	tcase_add_test(tc, test_port_in_use);
	tcase_add_test(tc, test_partial_failure_closes_all);
	tcase_add_test(tc, test_port0_retry);
	tcase_add_test(tc, test_fixed_port_no_retry);
	tcase_add_test(tc, test_keepalive);
	tcase_add_test(tc, test_fastopen);
	tcase_add_test(tc, test_defer_accept);
	tcase_add_test(tc, test_backlog);
	suite_add_tcase(s, tc);

	tc = tcase_create("unix");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unix_fresh);
	tcase_add_test(tc, test_unix_close_unlinks);
	tcase_add_test(tc, test_unix_stale);
	tcase_add_test(tc, test_unix_live);
	tcase_add_test(tc, test_unix_regular_file);
	suite_add_tcase(s, tc);

	/* unchecked: the parent removes the temp dir even when the test times out */
	tc = tcase_create("unix-busy");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 5);
	tcase_add_test(tc, test_unix_live_full_queue);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(listen_suite());
}
