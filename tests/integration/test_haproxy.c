/* Integration: behind a real load balancer (issue 8). Debian's haproxy
 * (/usr/sbin/haproxy; skipped with a message where it is missing) on
 * loopback, TCP mode, `send-proxy-v2` and health checks every 100 ms, in
 * front of two acceptd instances whose listeners take proxy_protocol = v2:
 *  - an exec handler sees the client's real address and port (the client
 *    binds 127.0.0.2 or 127.0.0.3, so the address is not the proxy's) and
 *    the frontend's address as the local one;
 *  - under a load of short echo connections through haproxy, one acceptd
 *    gets TERM (a graceful stop): once haproxy's check has marked it DOWN
 *    (plus a margin), no new connection fails. The numbers (failures
 *    before and after that point) are printed.
 * Health checks: `check-send-proxy`, so the check connection sends the
 * header too (HAProxy sends a v2 LOCAL header for checks): acceptd takes
 * it, keeps the real peer and hands the connection to the handler, which
 * sees it close; no PROXY header error. The test asserts that. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "harness.h"

#define HAPROXY "/usr/sbin/haproxy"
#define NCLIENTS 4
/* haproxy's check interval, and the margin after it marked a server DOWN
 * from which on no failure is acceptable */
#define INTER_MS 100
#define MARGIN_MS 300
/* what an operator writes (and the README shows): a refused connect is
 * retried, the last time on another server */
#define RETRY "    retries 2\n    option redispatch\n"
/* nothing but the health check between a stopped server and a failure */
#define NO_RETRY "    retries 0\n"

/* One acceptd: exec (prints its name and the ucspi addresses), echo and
 * stats, the first two behind haproxy with PROXY v2. */
static struct hd *
acceptd_up(const char *name)
{
	return hd_up("[daemon]\nworkers = 2\nshutdown_timeout = 3s\n\n"
	    "[listener x]\naddress = 127.0.0.1\nport = 0\nhandler = exec\nproxy_protocol = v2\n"
	    "command = /bin/sh -c 'echo \"[%s|$TCPREMOTEIP|$TCPREMOTEPORT|$TCPLOCALIP|"
	    "$TCPLOCALPORT]\"'\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\nhandler = echo\nproxy_protocol = v2\n\n"
	    "[listener s]\naddress = 127.0.0.1\nport = 0\nhandler = stats\n", name);
}

/* haproxy in front of a and b: frontends on fx (exec) and fe (echo). */
static struct hd *
haproxy_up(struct hd *a, struct hd *b, int fx, int fe, const char *retries)
{
	struct hd *h = hd_new();
	char cfg[256];
	char *argv[] = { HAPROXY, "-db", "-f", cfg, NULL };
	FILE *f;
	long long end;
	int fd = -1;

	hd_path(h, "haproxy.cfg", cfg, sizeof cfg);
	ck_assert_msg((f = fopen(cfg, "w")) != NULL, "%s: %s", cfg, strerror(errno));
	fprintf(f,
	    "global\n"
	    "    maxconn 4096\n"
	    "    log stderr format short local0 info\n"
	    "defaults\n"
	    "    mode tcp\n"
	    "    log global\n"
	    "    timeout connect 1s\n"
	    "    timeout client 10s\n"
	    "    timeout server 10s\n"
	    "%s"
	    "frontend fe_x\n"
	    "    bind 127.0.0.1:%d\n"
	    "    default_backend be_x\n"
	    "frontend fe_e\n"
	    "    bind 127.0.0.1:%d\n"
	    "    default_backend be_e\n"
	    "backend be_x\n"
	    "    balance roundrobin\n"
	    "    default-server send-proxy-v2 check check-send-proxy inter %dms fall 1 rise 1\n"
	    "    server a 127.0.0.1:%d\n"
	    "    server b 127.0.0.1:%d\n"
	    "backend be_e\n"
	    "    balance roundrobin\n"
	    "    default-server send-proxy-v2 check check-send-proxy inter %dms fall 1 rise 1\n"
	    "    server a 127.0.0.1:%d\n"
	    "    server b 127.0.0.1:%d\n",
	    retries, fx, fe, INTER_MS, hd_port(a, "x"), hd_port(b, "x"), INTER_MS, hd_port(a, "e"),
	    hd_port(b, "e"));
	ck_assert(fclose(f) == 0);
	hd_spawn_argv(h, argv);
	/* up once both frontends take connections */
	end = h_now_ms() + H_WAIT_MS;
	for (int port = fx; port; port = port == fx ? fe : 0) {
		while ((fd = h_connect("127.0.0.1", port)) < 0 && h_now_ms() < end) {
			hd_assert(h, !hd_wait_exit(h, 0), "haproxy exited");
			usleep(20 * 1000);
		}
		hd_assert(h, fd >= 0, "haproxy does not listen on %d", port);
		close(fd);
	}
	return h;
}

/* A connection from src (an address of 127.0.0.0/8) to 127.0.0.1:port;
 * its source port into *sport. */
static int
connect_from(const char *src, int port, int *sport)
{
	struct sockaddr_in me = { .sin_family = AF_INET }, to = { .sin_family = AF_INET };
	socklen_t len = sizeof me;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert(fd >= 0);
	ck_assert(inet_pton(AF_INET, src, &me.sin_addr) == 1);
	ck_assert_msg(bind(fd, (struct sockaddr *)&me, sizeof me) == 0, "bind %s: %s", src,
	    strerror(errno));
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	to.sin_port = htons(port);
	ck_assert_msg(connect(fd, (struct sockaddr *)&to, sizeof to) == 0, "connect %d: %s", port,
	    strerror(errno));
	ck_assert(getsockname(fd, (struct sockaddr *)&me, &len) == 0);
	*sport = ntohs(me.sin_port);
	return fd;
}

/* acceptd_proxy_header_errors_total, every listener and worker. */
static long long
proxy_errors(struct hd *d)
{
	char *body = malloc(1 << 20);
	int status, fd = h_connect("127.0.0.1", hd_port(d, "s"));
	long long sum = 0;
	const char *name = "acceptd_proxy_header_errors_total{";

	hd_assert(d, fd >= 0 && body, "stats connect");
	hd_assert(d, h_http_get(fd, "/metrics", &status, body, 1 << 20) > 0 && status == 200,
	    "GET /metrics");
	close(fd);
	for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, name, strlen(name)) == 0)
			sum += strtoll(strchr(p, '}') + 2, NULL, 10);
	free(body);
	return sum;
}

static int
have_haproxy(const char *test)
{
	if (access(HAPROXY, X_OK) == 0)
		return 1;
	fprintf(stderr, "%s: no %s here (Debian package haproxy), skipped\n", test, HAPROXY);
	return 0;
}

START_TEST(real_client_address)
{
	struct hd *a, *b, *h;
	int fx = h_free_port(), fe = h_free_port(), seen_a = 0, seen_b = 0;
	static const char *const srcs[] = { "127.0.0.2", "127.0.0.3" };

	if (!have_haproxy("real_client_address"))
		return;
	a = acceptd_up("a");
	b = acceptd_up("b");
	while (fe == fx)
		fe = h_free_port();
	h = haproxy_up(a, b, fx, fe, RETRY);
	/* round robin: within a few connections both instances answer */
	for (int i = 0; i < 8 || !(seen_a && seen_b); i++) {
		const char *src = srcs[i % 2];
		char out[256], want_a[160], want_b[160];
		int sport, fd = connect_from(src, fx, &sport);
		ssize_t n = h_recv_until_close(fd, out, sizeof out - 1, H_WAIT_MS);

		close(fd);
		hd_assert(h, n > 0, "no answer through haproxy (connection %d)", i);
		out[n] = '\0';
		snprintf(want_a, sizeof want_a, "[a|%s|%d|127.0.0.1|%d]\n", src, sport, fx);
		snprintf(want_b, sizeof want_b, "[b|%s|%d|127.0.0.1|%d]\n", src, sport, fx);
		if (!strcmp(out, want_a))
			seen_a++;
		else if (!strcmp(out, want_b))
			seen_b++;
		else
			hd_assert(h, 0, "the exec handler saw '%s', want '%s' (or from b)", out, want_a);
		hd_assert(h, i < 40, "in 40 connections only a: %d, b: %d", seen_a, seen_b);
	}
	fprintf(stderr, "real_client_address: a answered %d, b %d; each saw the client's "
	    "127.0.0.2/127.0.0.3 and port\n", seen_a, seen_b);
	/* and the echo frontend works too */
	hd_assert(h, h_echo_at("127.0.0.1", fe), "echo through haproxy");
	/* haproxy's checks (v2 LOCAL headers) are no header errors */
	hd_assert(a, proxy_errors(a) == 0, "a counted %lld PROXY header errors", proxy_errors(a));
	hd_assert(b, proxy_errors(b) == 0, "b counted %lld PROXY header errors", proxy_errors(b));
	hd_free(h);
	hd_free(a);
	hd_free(b);
}
END_TEST

/* _i: 0 with retries and redispatch, 1 without (the check alone) */
START_TEST(graceful_stop_behind_haproxy)
{
	const char *retries = _i ? NO_RETRY : RETRY, *variant = _i ? "retries 0" :
	    "retries 2 + redispatch";
	struct hd *a, *b, *h;
	int fx = h_free_port(), fe = h_free_port();
	struct h_load *l;
	struct h_load_stats s0, s1;
	long long t_term, t_down, t_safe, before, after, errs_a;
	char why[2048];

	if (!have_haproxy("graceful_stop_behind_haproxy"))
		return;
	a = acceptd_up("a");
	b = acceptd_up("b");
	while (fe == fx)
		fe = h_free_port();
	h = haproxy_up(a, b, fx, fe, retries);

	l = h_load_start("127.0.0.1", fe, NCLIENTS);
	if (!h_load_progress(l, 300, H_WAIT_MS)) {
		h_load_describe(l, why, sizeof why);
		hd_assert(h, 0, "the load through haproxy does not get answered: %s", why);
	}
	h_load_stats(l, &s0);
	hd_assert(h, s0.failed == 0, "failures before the stop: %ld", s0.failed);

	/* b stops gracefully: its listening sockets close at once */
	t_term = h_now_ms();
	hd_kill(b, SIGTERM);
	hd_assert(h, hd_wait_log(h, "be_e/b is DOWN", 1, H_WAIT_MS),
	    "haproxy never marked be_e/b DOWN");
	t_down = h_now_ms();
	t_safe = (t_down > t_term + INTER_MS ? t_down : t_term + INTER_MS) + MARGIN_MS;
	/* the load goes on for 1.5 s after that, and a serves it */
	while (h_now_ms() < t_safe + 1500)
		usleep(50 * 1000);
	hd_assert(h, h_load_progress(l, 200, H_WAIT_MS), "no progress after b's stop");
	h_load_stop(l);
	h_load_stats(l, &s1);
	after = h_load_fails_since(l, t_safe);
	before = s1.failed - after;
	h_load_describe(l, why, sizeof why);
	fprintf(stderr, "graceful_stop_behind_haproxy (%s): DOWN %lld ms after TERM (check every "
	    "%d ms, fall 1); %ld exchanges before TERM, %ld in all; failures: %lld before "
	    "DOWN + %d ms, %lld after; %s\n", variant, t_down - t_term, INTER_MS, s0.ok, s1.ok, before,
	    MARGIN_MS, after, why);
	hd_assert(h, after == 0, "%s: %lld connections failed after haproxy marked b DOWN "
	    "(+%d ms): %s", variant, after, MARGIN_MS, why);
	/* b drained and exited 0 */
	hd_assert_exit(b, 0, H_WAIT_MS);
	errs_a = proxy_errors(a);
	hd_assert(a, errs_a == 0, "a counted %lld PROXY header errors", errs_a);
	h_load_free(l);
	hd_free(h);
	hd_free(a);
	hd_free(b);
}
END_TEST

static Suite *
haproxy_suite(void)
{
	Suite *s = suite_create("haproxy");
	TCase *tc = tcase_create("haproxy");

	tcase_add_test(tc, real_client_address);
	tcase_add_loop_test(tc, graceful_stop_behind_haproxy, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(haproxy_suite());
}
