/* Integration: serving, in both modes (shared and reuseport, 2 workers):
 * echo over 127.0.0.1, ::1 and a unix socket, http with keep-alive, the
 * "listening:" lines, and unix socket paths (stale, live, regular file). */
#define _GNU_SOURCE
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "harness.h"

static const char *const modes[] = { "shared", "reuseport" };

#define DAEMON_HEAD "[daemon]\nworkers = 2\nmode = %s\nshutdown_timeout = 1s\n\n"

/* A unix socket bound at path; listening or not. */
static int
unix_bound(const char *path, int do_listen)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert(fd >= 0);
	snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
	ck_assert_msg(bind(fd, (struct sockaddr *)&un, sizeof un) == 0, "bind %s: %s", path,
	    strerror(errno));
	if (do_listen)
		ck_assert(listen(fd, 4) == 0);
	return fd;
}

/* address = *: one IPv4 and one IPv6 socket on the same port; both echo. */
START_TEST(echo_any_address)
{
	const char *mode = modes[_i];
	struct hd *d = hd_up(DAEMON_HEAD "[listener e]\naddress = *\nport = 0\nhandler = echo\n", mode);
	int port = hd_port(d, "e"), v6 = h_have_ipv6();

	hd_assert(d, port > 0, "no listening line for e");
	hd_assert(d, hd_log_has(d, "listening: e 0.0.0.0:%d", port), "no 0.0.0.0:%d line", port);
	if (v6)
		hd_assert(d, hd_log_has(d, "listening: e [::]:%d", port), "no [::]:%d line", port);
	else
		fprintf(stderr, "echo_any_address: no IPv6 here, [::] not checked\n");
	/* several connections, so that both workers are likely to serve one */
	for (int k = 0; k < 6; k++) {
		hd_assert(d, h_echo_at("127.0.0.1", port), "%s: echo over 127.0.0.1:%d: %s", mode,
		    port, strerror(errno));
		if (v6)
			hd_assert(d, h_echo_at("::1", port), "%s: echo over [::1]:%d: %s", mode,
			    port, strerror(errno));
	}
	hd_free(d);
}
END_TEST

START_TEST(echo_ipv6_literal)
{
	const char *mode = modes[_i];
	struct hd *d;
	int port;

	if (!h_have_ipv6()) {
		fprintf(stderr, "echo_ipv6_literal: no IPv6 here: skipped\n");
		return;
	}
	d = hd_up(DAEMON_HEAD "[listener six]\naddress = ::1\nport = 0\n", mode);
	port = hd_port(d, "six");
	hd_assert(d, port > 0 && hd_log_has(d, "listening: six [::1]:%d", port),
	    "no [::1] listening line");
	hd_assert(d, hd_log_count(d, "listening: six ") == 1, "more than one socket for ::1");
	for (int k = 0; k < 4; k++)
		hd_assert(d, h_echo_at("::1", port), "%s: echo over [::1]:%d", mode, port);
	hd_free(d);
}
END_TEST

START_TEST(echo_ipv4_literal)
{
	const char *mode = modes[_i];
	struct hd *d = hd_up(DAEMON_HEAD "[listener four]\naddress = 127.0.0.1\nport = 0\n", mode);
	int port = hd_port(d, "four");

	hd_assert(d, port > 0 && hd_log_has(d, "listening: four 127.0.0.1:%d", port),
	    "no 127.0.0.1 listening line");
	if (!strcmp(mode, "reuseport"))
		hd_assert(d, hd_log_has(d, "listening: four 127.0.0.1:%d (2 reuseport sockets)", port),
		    "reuseport: the line does not say 2 sockets");
	for (int k = 0; k < 4; k++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "%s: echo over 127.0.0.1:%d", mode, port);
	hd_free(d);
}
END_TEST

/* A host name: a socket for every address it resolves to, all on the
 * same port-0 port; each echoes. */
START_TEST(echo_host_name)
{
	const char *mode = modes[_i];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct hd *d = hd_up(DAEMON_HEAD "[listener l]\naddress = localhost\nport = 0\n", mode);
	int port = hd_port(d, "l"), n = 0;

	hd_assert(d, port > 0, "no listening line");
	ck_assert(getaddrinfo("localhost", NULL, &hints, &res) == 0);
	for (ai = res; ai; ai = ai->ai_next) {
		const char *ip = ai->ai_family == AF_INET6 ? "::1" : "127.0.0.1";

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    (ai->ai_family == AF_INET6 && !h_have_ipv6()))
			continue;
		hd_assert(d, hd_log_has(d, ai->ai_family == AF_INET6 ? "listening: l [%s]:%d" :
		    "listening: l %s:%d", ip, port), "no listening line for %s port %d", ip, port);
		hd_assert(d, h_echo_at(ip, port), "%s: no echo on %s:%d", mode, ip, port);
		n++;
	}
	freeaddrinfo(res);
	hd_assert(d, n > 0, "localhost resolves to no loopback address");
	hd_free(d);
}
END_TEST

START_TEST(echo_unix)
{
	const char *mode = modes[_i];
	struct hd *d = hd_up(DAEMON_HEAD "[listener u]\naddress = unix:@DIR@/s.sock\n", mode);
	char path[256], where[300];
	struct stat st;

	hd_path(d, "s.sock", path, sizeof path);
	snprintf(where, sizeof where, "unix:%s", path);
	hd_assert(d, hd_log_has(d, "listening: u %s\n", where), "no 'listening: u %s' line", where);
	hd_assert(d, lstat(path, &st) == 0 && S_ISSOCK(st.st_mode), "%s is not a socket", path);
	for (int k = 0; k < 4; k++)
		hd_assert(d, h_echo_at(where, 0), "%s: echo over %s: %s", mode, where, strerror(errno));
	hd_free(d);
}
END_TEST

/* A megabyte through echo, sending and reading at the same time (the
 * server stops reading while its output is backed up: no deadlock, no
 * loss, same order). */
START_TEST(echo_large)
{
	const char *mode = modes[_i];
	struct hd *d = hd_up(DAEMON_HEAD "[listener e]\naddress = 127.0.0.1\nport = 0\n", mode);
	size_t total = 1 << 20, sent = 0, got = 0;
	char *out = malloc(total), *in = malloc(total);
	long long end = h_now_ms() + H_WAIT_MS;
	int fd = h_connect("127.0.0.1", hd_port(d, "e"));

	ck_assert(out && in);
	hd_assert(d, fd >= 0, "connect: %s", strerror(errno));
	for (size_t i = 0; i < total; i++)
		out[i] = (char)(i * 7 + i / 251);
	while (got < total && h_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0) };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((p.revents & POLLOUT) && sent < total) {
			n = send(fd, out + sent, total - sent > 65536 ? 65536 : total - sent,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sent += n;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, in + got, total - got, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				break;
			if (n > 0)
				got += n;
		}
	}
	hd_assert(d, got == total, "%s: echoed %zu of %zu bytes (sent %zu)", mode, got, total, sent);
	hd_assert(d, memcmp(in, out, total) == 0, "%s: echoed bytes differ", mode);
	close(fd);
	free(in);
	free(out);
	hd_free(d);
}
END_TEST

START_TEST(http_get_keepalive)
{
	const char *mode = modes[_i];
	struct hd *d = hd_up(DAEMON_HEAD "[listener web]\naddress = 127.0.0.1\nport = 0\n"
	    "handler = http\n", mode);
	int port = hd_port(d, "web"), fd, status;
	char body[4096];
	ssize_t n;

	hd_assert(d, port > 0, "no listening line");
	fd = h_connect("127.0.0.1", port);
	hd_assert(d, fd >= 0, "connect: %s", strerror(errno));
	n = h_http_get(fd, "/", &status, body, sizeof body);
	hd_assert(d, n >= 0 && status == 200, "%s: GET /: status %d, body length %zd", mode,
	    status, n);
	hd_assert(d, n > 0, "%s: GET /: empty body", mode);
	/* the same connection again: keep-alive is HTTP/1.1's default */
	n = h_http_get(fd, "/again", &status, body, sizeof body);
	hd_assert(d, n > 0 && status == 200, "%s: second GET on the connection: status %d, %zd",
	    mode, status, n);
	close(fd);
	hd_free(d);
}
END_TEST

/* The handler keys; pipelining; Connection: close; 400 and 431 close. */
START_TEST(http_keys_and_framing)
{
	struct hd *d = hd_up("[daemon]\nworkers = 1\n\n[listener web]\naddress = 127.0.0.1\n"
	    "port = 0\nhandler = http\nstatus = 202\nbody = hello\\n\n"
	    "content_type = application/json\n");
	int port = hd_port(d, "web"), fd, status;
	char head[8192], body[4096], big[10000];
	ssize_t n;

	fd = h_connect("127.0.0.1", port);
	hd_assert(d, fd >= 0, "connect: %s", strerror(errno));
	/* two requests in one segment: two responses, in order */
	ck_assert(h_send_str(fd, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
	    "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
	for (int k = 0; k < 2; k++) {
		n = h_http_read(fd, &status, head, sizeof head, body, sizeof body);
		hd_assert(d, n == 6 && status == 202 && strcmp(body, "hello\n") == 0,
		    "pipelined response %d: status %d, body '%s' (%zd)", k, status, n > 0 ? body : "", n);
		hd_assert(d, strcasestr(head, "\r\nContent-Type: application/json\r\n") != NULL,
		    "no content type in '%s'", head);
	}
	/* Connection: close: the response, then the server closes */
	ck_assert(h_send_str(fd, "GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") == 0);
	n = h_http_read(fd, &status, head, sizeof head, body, sizeof body);
	hd_assert(d, n == 6 && status == 202, "Connection: close: status %d", status);
	hd_assert(d, h_wait_closed(fd, H_WAIT_MS), "not closed after Connection: close");
	close(fd);

	/* a field line without a colon: 400, then close */
	fd = h_connect("127.0.0.1", port);
	ck_assert(h_send_str(fd, "GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n") == 0);
	n = h_http_read(fd, &status, head, sizeof head, body, sizeof body);
	hd_assert(d, status == 400, "malformed request: status %d", status);
	hd_assert(d, h_wait_closed(fd, H_WAIT_MS), "not closed after a 400");
	close(fd);

	/* a head over 8 KiB: 431, then close */
	fd = h_connect("127.0.0.1", port);
	memset(big, 'a', sizeof big);
	memcpy(big, "GET / HTTP/1.1\r\nX-Long: ", 24);
	/* the server may answer and close before it has read all of it */
	(void)h_send_all(fd, big, sizeof big);
	n = h_http_read(fd, &status, head, sizeof head, body, sizeof body);
	hd_assert(d, status == 431, "oversized request head: status %d", status);
	hd_assert(d, h_wait_closed(fd, H_WAIT_MS), "not closed after a 431");
	close(fd);
	hd_free(d);
}
END_TEST

/* The other built-ins, each on its own port: discard answers nothing,
 * daytime one line then close, chargen the rotating 72-column pattern. */
START_TEST(other_handlers)
{
	struct hd *d = hd_up("[daemon]\nworkers = 1\n\n"
	    "[listener dis]\naddress = 127.0.0.1\nport = 0\nhandler = discard\n"
	    "[listener day]\naddress = 127.0.0.1\nport = 0\nhandler = daytime\n"
	    "[listener gen]\naddress = 127.0.0.1\nport = 0\nhandler = chargen\n");
	char buf[4096], want[75];
	ssize_t n;
	int fd;

	fd = h_connect("127.0.0.1", hd_port(d, "dis"));
	hd_assert(d, fd >= 0, "connect discard");
	ck_assert(h_send_str(fd, "into the void\r\n") == 0);
	hd_assert(d, h_quiet(fd, 100), "discard answered");
	close(fd);

	fd = h_connect("127.0.0.1", hd_port(d, "day"));
	hd_assert(d, fd >= 0, "connect daytime");
	n = h_recv_until_close(fd, buf, sizeof buf - 1, H_WAIT_MS);
	hd_assert(d, n > 2 && buf[n - 1] == '\n' && memchr(buf, '\n', n) == buf + n - 1,
	    "daytime: %zd bytes, not one line and close", n);
	close(fd);

	fd = h_connect("127.0.0.1", hd_port(d, "gen"));
	hd_assert(d, fd >= 0, "connect chargen");
	n = h_recv_exact(fd, buf, 2 * 74, H_WAIT_MS);
	hd_assert(d, n == 2 * 74, "chargen: %zd bytes", n);
	for (int line = 0; line < 2; line++) {
		for (int i = 0; i < 72; i++)
			want[i] = (char)(' ' + (line + i) % 95);
		memcpy(want + 72, "\r\n", 2);
		hd_assert(d, memcmp(buf + line * 74, want, 74) == 0, "chargen line %d: '%.74s'",
		    line, buf + line * 74);
	}
	close(fd);
	hd_free(d);
}
END_TEST

/* Several listeners at once, each with its own handler and port. */
START_TEST(several_listeners)
{
	const char *mode = modes[_i];
	struct hd *d = hd_up(DAEMON_HEAD
	    "[listener a]\naddress = 127.0.0.1\nport = 0\nhandler = echo\n\n"
	    "[listener b]\naddress = 127.0.0.1\nport = 0\nhandler = http\n\n"
	    "[listener c]\naddress = unix:@DIR@/c.sock\nhandler = echo\n", mode);
	int pa = hd_port(d, "a"), pb = hd_port(d, "b"), fd, status;
	char where[300], body[4096];

	hd_assert(d, pa > 0 && pb > 0 && pa != pb, "ports %d and %d", pa, pb);
	hd_assert(d, hd_log_has(d, "2 workers, 3 listeners"),
	    "the ready line does not count 2 workers, 3 listeners");
	hd_assert(d, h_echo_at("127.0.0.1", pa), "echo on a");
	fd = h_connect("127.0.0.1", pb);
	hd_assert(d, fd >= 0 && h_http_get(fd, "/", &status, body, sizeof body) >= 0 &&
	    status == 200, "http on b");
	close(fd);
	snprintf(where, sizeof where, "unix:%s/c.sock", d->dir);
	hd_assert(d, h_echo_at(where, 0), "echo on c");
	hd_free(d);
}
END_TEST

/* A socket file nobody listens on (bound, then closed, not unlinked) is
 * left over from a dead process: replaced at start. */
START_TEST(unix_stale_replaced)
{
	const char *mode = modes[_i];
	struct hd *d = hd_new();
	char path[256], where[300];

	hd_path(d, "s.sock", path, sizeof path);
	snprintf(where, sizeof where, "unix:%s", path);
	close(unix_bound(path, 1));
	ck_assert(access(path, F_OK) == 0);
	ck_assert_msg(h_connect(where, 0) < 0 && errno == ECONNREFUSED, "the stale socket answers?");
	hd_conf(d, DAEMON_HEAD "[listener u]\naddress = unix:@DIR@/s.sock\n", mode);
	hd_start(d);
	hd_assert(d, h_echo_at(where, 0), "%s: echo over the replaced %s", mode, where);
	hd_free(d);
}
END_TEST

/* A live socket at the path: start fails (exit 1), saying why, and the
 * other server's socket is left alone. */
START_TEST(unix_live_socket_refused)
{
	const char *mode = modes[_i];
	struct hd *d = hd_new();
	char path[256], where[300];
	int lfd, cfd;

	hd_path(d, "s.sock", path, sizeof path);
	snprintf(where, sizeof where, "unix:%s", path);
	lfd = unix_bound(path, 1);
	hd_conf(d, DAEMON_HEAD "[listener u]\naddress = unix:@DIR@/s.sock\n", mode);
	hd_spawn(d, "-f", "-c", d->conf, (char *)NULL);
	hd_assert_exit(d, 1, H_WAIT_MS);
	hd_assert(d, hd_log_has(d, "listener u") && hd_log_has(d, "%s", path),
	    "the error does not name the listener and the path");
	hd_assert(d, hd_log_has(d, "%s", strerror(EADDRINUSE)), "the error does not say '%s'",
	    strerror(EADDRINUSE));
	hd_assert(d, !hd_log_has(d, "master ready"), "it got ready");
	/* still ours */
	cfd = h_connect(where, 0);
	hd_assert(d, cfd >= 0, "the live socket was taken away: %s", strerror(errno));
	close(cfd);
	close(lfd);
	hd_free(d);
}
END_TEST

START_TEST(unix_regular_file_refused)
{
	const char *mode = modes[_i];
	struct hd *d = hd_new();
	char path[256], buf[16] = "";
	FILE *f;

	hd_path(d, "s.sock", path, sizeof path);
	ck_assert((f = fopen(path, "w")) != NULL);
	fputs("precious\n", f);
	fclose(f);
	hd_conf(d, DAEMON_HEAD "[listener u]\naddress = unix:@DIR@/s.sock\n", mode);
	hd_spawn(d, "-f", "-c", d->conf, (char *)NULL);
	hd_assert_exit(d, 1, H_WAIT_MS);
	hd_assert(d, hd_log_has(d, "listener u") && hd_log_has(d, "%s", path),
	    "the error does not name the listener and the path");
	hd_assert(d, !hd_log_has(d, "master ready"), "it got ready");
	ck_assert((f = fopen(path, "r")) != NULL);
	ck_assert(fgets(buf, sizeof buf, f) != NULL);
	fclose(f);
	ck_assert_msg(strcmp(buf, "precious\n") == 0, "the regular file was changed");
	hd_free(d);
}
END_TEST

/* A TCP port someone else listens on: start fails with exit 1, naming it. */
START_TEST(port_in_use_refused)
{
	const char *mode = modes[_i];
	struct hd *d = hd_new();
	int port = 0, lfd = h_listen_tcp(&port);

	ck_assert(lfd >= 0);
	hd_conf(d, DAEMON_HEAD "[listener e]\naddress = 127.0.0.1\nport = %d\n", mode, port);
	hd_spawn(d, "-f", "-c", d->conf, (char *)NULL);
	hd_assert_exit(d, 1, H_WAIT_MS);
	hd_assert(d, hd_log_has(d, "listener e") && hd_log_has(d, "127.0.0.1:%d", port),
	    "the error does not name the listener and address");
	hd_assert(d, hd_log_has(d, "%s", strerror(EADDRINUSE)), "the error does not say '%s'",
	    strerror(EADDRINUSE));
	close(lfd);
	hd_free(d);
}
END_TEST

static Suite *
serve_suite(void)
{
	Suite *s = suite_create("serve");
	TCase *tc = tcase_create("serve");

	/* _i: 0 = mode shared, 1 = mode reuseport */
	tcase_add_loop_test(tc, echo_any_address, 0, 2);
	tcase_add_loop_test(tc, echo_ipv4_literal, 0, 2);
	tcase_add_loop_test(tc, echo_ipv6_literal, 0, 2);
	tcase_add_loop_test(tc, echo_host_name, 0, 2);
	tcase_add_loop_test(tc, echo_unix, 0, 2);
	tcase_add_loop_test(tc, echo_large, 0, 2);
	tcase_add_loop_test(tc, http_get_keepalive, 0, 2);
	tcase_add_test(tc, http_keys_and_framing);
	tcase_add_test(tc, other_handlers);
	tcase_add_loop_test(tc, several_listeners, 0, 2);
	tcase_add_loop_test(tc, unix_stale_replaced, 0, 2);
	tcase_add_loop_test(tc, unix_live_socket_refused, 0, 2);
	tcase_add_loop_test(tc, unix_regular_file_refused, 0, 2);
	tcase_add_loop_test(tc, port_in_use_refused, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(serve_suite());
}
