/* Integration: the shared counters as the world sees them (issue 8): a
 * stats listener answers GET /metrics (200, the Prometheus text type),
 * other paths 404, other methods 405; the counters of an echo listener
 * match what the test did (accepted, active while open, closed, bytes in
 * and out); the text passes `promtool check metrics` (where installed);
 * counters survive a worker's replacement (SIGKILL) and reloads, which are
 * counted (ok, failed), as are worker restarts; rejections by allow/deny
 * and by max_connections; `acceptd -s status` prints the table. */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/stat.h>

#include "harness.h"

#define HEAD "[daemon]\nworkers = %d\nshutdown_timeout = 2s\npidfile = @DIR@/acceptd.pid\n\n"
#define STATS_L "[listener s]\naddress = 127.0.0.1\nport = 0\nhandler = stats\n\n"
#define ECHO_L "[listener e]\naddress = 127.0.0.1\nport = 0\n\n"
#define BODY_MAX (1024 * 1024)

/* A raw request on a fresh connection to the stats listener; the whole
 * response (the handler closes after one) into a malloc'd string. */
static char *
raw(struct hd *d, const char *req)
{
	int fd = h_connect("127.0.0.1", hd_port(d, "s"));
	char *buf = malloc(BODY_MAX);
	ssize_t n;

	hd_assert(d, fd >= 0 && buf, "connect to the stats listener: %s", strerror(errno));
	hd_assert(d, h_send_str(fd, req) == 0, "send");
	n = h_recv_until_close(fd, buf, BODY_MAX - 1, H_WAIT_MS);
	close(fd);
	hd_assert(d, n >= 0, "the stats listener did not close after its answer");
	buf[n] = '\0';
	return buf;
}

/* GET /metrics: the body (malloc'd), status and head. */
static char *
scrape_full(struct hd *d, int *status, char *head, size_t headcap)
{
	int fd = h_connect("127.0.0.1", hd_port(d, "s"));
	char *body = malloc(BODY_MAX);
	ssize_t n;

	hd_assert(d, fd >= 0 && body, "connect to the stats listener: %s", strerror(errno));
	hd_assert(d, h_send_str(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n") == 0,
	    "send");
	n = h_http_read(fd, status, head, headcap, body, BODY_MAX);
	close(fd);
	hd_assert(d, n >= 0, "no complete answer to GET /metrics");
	return body;
}

static char *
scrape(struct hd *d)
{
	char head[4096];
	int status;
	char *b = scrape_full(d, &status, head, sizeof head);

	hd_assert(d, status == 200, "GET /metrics: status %d", status);
	return b;
}

/* The sum of the samples whose line starts with prefix (and contains
 * also, when not NULL); -1 when there is none. */
static long long
msum(const char *text, const char *prefix, const char *also)
{
	long long sum = -1;
	size_t n = strlen(prefix);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		const char *sp, *eol = strchr(p, '\n');

		if (strncmp(p, prefix, n) != 0)
			continue;
		if (also) {
			char line[512];

			snprintf(line, sizeof line, "%.*s", eol ? (int)(eol - p) : (int)strlen(p), p);
			if (!strstr(line, also))
				continue;
		}
		/* the value: after the line's last space */
		for (sp = eol ? eol : p + strlen(p); sp > p && sp[-1] != ' '; sp--)
			;
		if (sp == p)
			continue;
		sum = (sum < 0 ? 0 : sum) + strtoll(sp, NULL, 10);
	}
	return sum;
}

/* name{listener="L",worker="W"...}: worker -1 sums over every worker. */
static long long
mval(const char *text, const char *name, const char *listener, int worker, const char *also)
{
	char prefix[256];

	if (worker < 0)
		snprintf(prefix, sizeof prefix, "%s{listener=\"%s\",worker=\"", name, listener);
	else
		snprintf(prefix, sizeof prefix, "%s{listener=\"%s\",worker=\"%d\"", name, listener,
		    worker);
	return msum(text, prefix, also);
}

/* Scrape until name{listener} (summed over workers) is want: bounded. */
static long long
wait_val(struct hd *d, const char *name, const char *listener, const char *also, long long want)
{
	long long end = h_now_ms() + H_WAIT_MS, v;

	for (;;) {
		char *t = scrape(d);

		v = mval(t, name, listener, -1, also);
		free(t);
		if (v == want || h_now_ms() > end)
			return v;
		usleep(10 * 1000);
	}
}

#define assert_val(d, name, listener, also, want) do { \
	long long v_ = wait_val(d, name, listener, also, want); \
	hd_assert(d, v_ == (want), "%s{listener=\"%s\"%s%s}: %lld, want %lld", name, listener, \
	    (also) ? "," : "", (also) ? (const char *)(also) : "", v_, (long long)(want)); \
} while (0)

static long long
wait_plain(struct hd *d, const char *prefix, long long want)
{
	long long end = h_now_ms() + H_WAIT_MS, v;

	for (;;) {
		char *t = scrape(d);

		v = msum(t, prefix, NULL);
		free(t);
		if (v == want || h_now_ms() > end)
			return v;
		usleep(10 * 1000);
	}
}

#define assert_plain(d, prefix, want) do { \
	long long v_ = wait_plain(d, prefix, want); \
	hd_assert(d, v_ == (want), "%s: %lld, want %lld", prefix, v_, (long long)(want)); \
} while (0)

START_TEST(metrics_http)
{
	struct hd *d = hd_up(HEAD STATS_L ECHO_L, 1);
	char head[4096], *t, *r;
	int status;

	t = scrape_full(d, &status, head, sizeof head);
	hd_assert(d, status == 200, "GET /metrics: %d", status);
	hd_assert(d, strcasestr(head, "\r\nContent-Type: text/plain; version=0.0.4"),
	    "content type: %s", head);
	hd_assert(d, strstr(t, "# TYPE acceptd_connections_accepted_total counter\n"),
	    "no accepted family:\n%s", t);
	/* the scrape itself was a connection of listener s */
	hd_assert(d, mval(t, "acceptd_connections_accepted_total", "s", 0, NULL) >= 1,
	    "the stats listener's own connection is not counted:\n%s", t);
	hd_assert(d, mval(t, "acceptd_connections_accepted_total", "e", 0, NULL) == 0,
	    "echo has connections already:\n%s", t);
	free(t);

	r = raw(d, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
	hd_assert(d, strncmp(r, "HTTP/1.1 404 ", 13) == 0, "GET /other: %.80s", r);
	free(r);
	r = raw(d, "GET /metrics/ HTTP/1.1\r\nHost: x\r\n\r\n");
	hd_assert(d, strncmp(r, "HTTP/1.1 404 ", 13) == 0, "GET /metrics/: %.80s", r);
	free(r);
	r = raw(d, "GET / HTTP/1.0\r\n\r\n");
	hd_assert(d, strncmp(r, "HTTP/1.1 404 ", 13) == 0, "GET /: %.80s", r);
	free(r);
	r = raw(d, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	hd_assert(d, strncmp(r, "HTTP/1.1 405 ", 13) == 0, "POST /metrics: %.80s", r);
	free(r);
	r = raw(d, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	hd_assert(d, strncmp(r, "HTTP/1.1 405 ", 13) == 0, "DELETE /metrics: %.80s", r);
	free(r);
	r = raw(d, "this is no request\r\n\r\n");
	hd_assert(d, strncmp(r, "HTTP/1.1 400 ", 13) == 0, "garbage: %.80s", r);
	free(r);
	/* HEAD: the head GET would get, no body */
	r = raw(d, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	hd_assert(d, strncmp(r, "HTTP/1.1 200 ", 13) == 0, "HEAD /metrics: %.80s", r);
	{
		const char *end = strstr(r, "\r\n\r\n");

		hd_assert(d, end && end[4] == '\0', "HEAD /metrics has a body: %s", r);
	}
	free(r);
	hd_free(d);
}
END_TEST

/* RFC 9110 9.3.2 / 8.6: a Content-Length in the answer to HEAD must be
 * the length GET would send, not 0. */
START_TEST(metrics_head_length)
{
	struct hd *d = hd_up(HEAD STATS_L, 1);
	char *r = raw(d, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), *cl;

	hd_assert(d, strncmp(r, "HTTP/1.1 200 ", 13) == 0, "HEAD /metrics: %.80s", r);
	cl = strcasestr(r, "\r\nContent-Length:");
	hd_assert(d, !cl || strtol(cl + 17, NULL, 10) > 0,
	    "HEAD /metrics says Content-Length 0, GET's body is never empty:\n%s", r);
	free(r);
	hd_free(d);
}
END_TEST

/* Counters of an echo listener follow what the client did. */
START_TEST(echo_counters)
{
	struct hd *d = hd_up(HEAD STATS_L ECHO_L, 1);
	int port = hd_port(d, "e"), a;
	long long in = 0;

	a = h_connect("127.0.0.1", port);
	hd_assert(d, a >= 0, "connect");
	hd_assert(d, h_echo(a, "hello, counters\n"), "no echo");
	in += 16;
	assert_val(d, "acceptd_connections_accepted_total", "e", NULL, 1);
	assert_val(d, "acceptd_connections_active", "e", NULL, 1);
	assert_val(d, "acceptd_connections_closed_total", "e", NULL, 0);
	assert_val(d, "acceptd_received_bytes_total", "e", NULL, in);
	assert_val(d, "acceptd_sent_bytes_total", "e", NULL, in);
	close(a);
	assert_val(d, "acceptd_connections_closed_total", "e", NULL, 1);
	assert_val(d, "acceptd_connections_active", "e", NULL, 0);

	/* five more, 1000 bytes each, two of them open at once */
	{
		char msg[1001];
		int fds[5];

		memset(msg, 'x', 1000);
		msg[999] = '\n';
		msg[1000] = '\0';
		for (int i = 0; i < 5; i++) {
			fds[i] = h_connect("127.0.0.1", port);
			hd_assert(d, fds[i] >= 0 && h_echo(fds[i], msg), "echo %d", i);
			in += 1000;
			if (i < 3)
				close(fds[i]);
		}
		assert_val(d, "acceptd_connections_accepted_total", "e", NULL, 6);
		assert_val(d, "acceptd_connections_active", "e", NULL, 2);
		assert_val(d, "acceptd_connections_closed_total", "e", NULL, 4);
		close(fds[3]);
		close(fds[4]);
	}
	assert_val(d, "acceptd_connections_closed_total", "e", NULL, 6);
	assert_val(d, "acceptd_connections_active", "e", NULL, 0);
	assert_val(d, "acceptd_received_bytes_total", "e", NULL, in);
	assert_val(d, "acceptd_sent_bytes_total", "e", NULL, in);
	assert_val(d, "acceptd_connections_rejected_total", "e", NULL, 0);
	assert_val(d, "acceptd_proxy_header_errors_total", "e", NULL, 0);
	assert_val(d, "acceptd_accept_errors_total", "e", NULL, 0);
	assert_plain(d, "acceptd_workers ", 1);
	assert_plain(d, "acceptd_worker_restarts_total ", 0);
	hd_free(d);
}
END_TEST

/* promtool agrees (the live text: several listeners, two workers). */
START_TEST(metrics_promtool)
{
	struct hd *d;
	char path[256], cmd[600], *t;
	FILE *f;
	int st;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		fprintf(stderr, "metrics_promtool: no promtool here (Debian package prometheus), "
		    "skipped\n");
		return;
	}
	d = hd_up(HEAD STATS_L ECHO_L "[listener x]\naddress = 127.0.0.1\nport = 0\n"
	    "handler = discard\nallow = 10.0.0.0/8\n", 2);
	hd_assert(d, h_echo_at("127.0.0.1", hd_port(d, "e")), "echo");
	t = scrape(d);
	hd_path(d, "metrics.txt", path, sizeof path);
	hd_assert(d, (f = fopen(path, "w")) && fputs(t, f) >= 0 && fclose(f) == 0, "write %s", path);
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.out 2>&1", path, path);
	st = system(cmd);
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		char out[300];

		snprintf(out, sizeof out, "%s.out", path);
		snprintf(cmd, sizeof cmd, "cat %s >&2", out);
		if (system(cmd)) {}
		hd_assert(d, 0, "promtool check metrics failed (status %d) on:\n%s", st, t);
	}
	free(t);
	hd_free(d);
}
END_TEST

/* SIGKILL worker 0: its counts stay, the restart is counted, and the
 * replacement counts on from there. */
START_TEST(survive_respawn)
{
	struct hd *d = hd_up(HEAD STATS_L ECHO_L, 2);
	int port = hd_port(d, "e");
	long long w0, w1, total;
	pid_t w;
	char *t;

	hd_assert(d, h_wait_workers(d->master, 2, H_WAIT_MS), "two workers");
	/* 40 connections: both workers get some (1 in 2^40 that one gets none) */
	for (int i = 0; i < 40; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "echo %d", i);
	assert_val(d, "acceptd_connections_closed_total", "e", NULL, 40);
	t = scrape(d);
	w0 = mval(t, "acceptd_connections_accepted_total", "e", 0, NULL);
	w1 = mval(t, "acceptd_connections_accepted_total", "e", 1, NULL);
	free(t);
	fprintf(stderr, "survive_respawn: worker 0 accepted %lld, worker 1 %lld\n", w0, w1);
	hd_assert(d, w0 > 0 && w1 > 0 && w0 + w1 == 40, "split %lld + %lld", w0, w1);

	w = hd_worker(d, 0);
	hd_assert(d, w > 0, "worker 0's pid");
	kill(w, SIGKILL);
	hd_assert(d, hd_wait_log(d, "worker 0 started", 2, H_WAIT_MS), "worker 0 not respawned");
	hd_assert(d, h_wait_workers(d->master, 2, H_WAIT_MS), "two workers again");
	assert_plain(d, "acceptd_worker_restarts_total ", 1);
	t = scrape(d);
	hd_assert(d, mval(t, "acceptd_connections_accepted_total", "e", 0, NULL) == w0,
	    "worker 0's accepted count changed over its replacement: %lld, was %lld",
	    mval(t, "acceptd_connections_accepted_total", "e", 0, NULL), w0);
	hd_assert(d, mval(t, "acceptd_connections_closed_total", "e", 0, NULL) == w0,
	    "worker 0's closed count changed over its replacement");
	hd_assert(d, mval(t, "acceptd_received_bytes_total", "e", -1, NULL) > 0, "bytes gone");
	free(t);
	/* and it counts on */
	for (int i = 0; i < 20; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "echo %d after the respawn", i);
	assert_val(d, "acceptd_connections_closed_total", "e", NULL, 60);
	t = scrape(d);
	total = mval(t, "acceptd_connections_accepted_total", "e", -1, NULL);
	hd_assert(d, total == 60, "accepted %lld, want 60", total);
	hd_assert(d, mval(t, "acceptd_connections_accepted_total", "e", 0, NULL) >= w0,
	    "worker 0 went below %lld", w0);
	free(t);
	/* a second death, a second restart */
	w = hd_worker(d, 1);
	kill(w, SIGKILL);
	hd_assert(d, hd_wait_log(d, "worker 1 started", 2, H_WAIT_MS), "worker 1 not respawned");
	assert_plain(d, "acceptd_worker_restarts_total ", 2);
	hd_free(d);
}
END_TEST

/* A worker killed with a connection open: the connection died with it,
 * so the active gauge must not keep counting it. */
START_TEST(active_after_kill)
{
	struct hd *d = hd_up(HEAD STATS_L ECHO_L, 1);
	int port = hd_port(d, "e"), a = h_connect("127.0.0.1", port);
	pid_t w = hd_worker(d, 0);

	hd_assert(d, a >= 0 && h_echo(a, "open\n"), "echo");
	assert_val(d, "acceptd_connections_active", "e", NULL, 1);
	kill(w, SIGKILL);
	hd_assert(d, h_wait_closed(a, H_WAIT_MS), "the connection outlived its worker");
	close(a);
	hd_assert(d, hd_wait_log(d, "worker 0 started", 2, H_WAIT_MS), "worker 0 not respawned");
	hd_assert(d, h_echo_at("127.0.0.1", port), "echo after the respawn");
	assert_val(d, "acceptd_connections_closed_total", "e", NULL, 1);
	/* accepted 2, closed 1 (the killed one never closed in a worker):
	 * the gauge must still say 0 */
	assert_val(d, "acceptd_connections_active", "e", NULL, 0);
	hd_free(d);
}
END_TEST

/* Reloads: counted by outcome, and the listeners' counts go on. */
START_TEST(survive_reload)
{
	struct hd *d = hd_up(HEAD STATS_L ECHO_L, 1);
	int port = hd_port(d, "e"), rc;
	char *t;

	for (int i = 0; i < 5; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "echo %d", i);
	assert_val(d, "acceptd_connections_closed_total", "e", NULL, 5);
	assert_plain(d, "acceptd_reloads_total{result=\"ok\"} ", 0);
	assert_plain(d, "acceptd_reloads_total{result=\"failed\"} ", 0);

	rc = hd_run(d, "-c", d->conf, "-s", "reload", NULL);
	hd_assert(d, rc == 0, "-s reload: %d: %s", rc, d->err);
	assert_plain(d, "acceptd_reloads_total{result=\"ok\"} ", 1);
	/* kept sockets: the same ports; the counts carried over */
	hd_assert(d, port == hd_port(d, "e"), "port changed");
	t = scrape(d);
	hd_assert(d, mval(t, "acceptd_connections_accepted_total", "e", -1, NULL) == 5,
	    "accepted after the reload: %lld, want 5",
	    mval(t, "acceptd_connections_accepted_total", "e", -1, NULL));
	hd_assert(d, mval(t, "acceptd_received_bytes_total", "e", -1, NULL) > 0, "bytes gone");
	free(t);
	for (int i = 0; i < 3; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "echo %d after the reload", i);
	assert_val(d, "acceptd_connections_accepted_total", "e", NULL, 8);
	assert_val(d, "acceptd_connections_closed_total", "e", NULL, 8);
	assert_val(d, "acceptd_connections_active", "e", NULL, 0);

	/* a broken reload: counted as failed, nothing else changes */
	hd_conf(d, HEAD STATS_L ECHO_L "[listener bad]\nport = 0\nhandler = nosuchhandler\n", 1);
	/* (HUP itself: `-s reload` would read the broken file first and
	 * refuse to signal) */
	hd_kill(d, SIGHUP);
	hd_assert(d, hd_wait_log(d, "reload failed", 1, H_WAIT_MS), "no 'reload failed'");
	assert_plain(d, "acceptd_reloads_total{result=\"failed\"} ", 1);
	assert_plain(d, "acceptd_reloads_total{result=\"ok\"} ", 1);
	hd_assert(d, h_echo_at("127.0.0.1", port), "echo after the failed reload");
	assert_val(d, "acceptd_connections_accepted_total", "e", NULL, 9);

	/* a good one again, with a worker more */
	hd_conf(d, HEAD STATS_L ECHO_L, 2);
	rc = hd_run(d, "-c", d->conf, "-s", "reload", NULL);
	hd_assert(d, rc == 0, "-s reload: %d: %s", rc, d->err);
	assert_plain(d, "acceptd_reloads_total{result=\"ok\"} ", 2);
	assert_plain(d, "acceptd_workers ", 2);
	assert_val(d, "acceptd_connections_accepted_total", "e", NULL, 9);
	assert_plain(d, "acceptd_worker_restarts_total ", 0);
	hd_free(d);
}
END_TEST

/* Refusals by allow/deny and by max_connections, by reason. */
START_TEST(rejected)
{
	struct hd *d = hd_up(HEAD STATS_L
	    "[listener a]\naddress = 127.0.0.1\nport = 0\nallow = 10.0.0.0/8\n\n"
	    "[listener n]\naddress = 127.0.0.1\nport = 0\ndeny = 127.0.0.0/8\n\n"
	    "[listener m]\naddress = 127.0.0.1\nport = 0\nmax_connections = 1\n", 1);
	int m1, fd;

	for (int i = 0; i < 3; i++) {
		fd = h_connect("127.0.0.1", hd_port(d, "a"));
		hd_assert(d, fd >= 0 && h_wait_closed(fd, H_WAIT_MS), "allow: not refused");
		close(fd);
	}
	fd = h_connect("127.0.0.1", hd_port(d, "n"));
	hd_assert(d, fd >= 0 && h_wait_closed(fd, H_WAIT_MS), "deny: not refused");
	close(fd);
	m1 = h_connect("127.0.0.1", hd_port(d, "m"));
	hd_assert(d, m1 >= 0 && h_echo(m1, "one\n"), "the first on m is served");
	for (int i = 0; i < 2; i++) {
		fd = h_connect("127.0.0.1", hd_port(d, "m"));
		hd_assert(d, fd >= 0 && h_wait_closed(fd, H_WAIT_MS), "max_connections: not refused");
		close(fd);
	}
	assert_val(d, "acceptd_connections_rejected_total", "a", "reason=\"acl\"", 3);
	assert_val(d, "acceptd_connections_rejected_total", "a", "reason=\"limit\"", 0);
	assert_val(d, "acceptd_connections_rejected_total", "n", "reason=\"acl\"", 1);
	assert_val(d, "acceptd_connections_rejected_total", "m", "reason=\"limit\"", 2);
	assert_val(d, "acceptd_connections_rejected_total", "m", "reason=\"acl\"", 0);
	/* refused is not accepted */
	assert_val(d, "acceptd_connections_accepted_total", "a", NULL, 0);
	assert_val(d, "acceptd_connections_accepted_total", "m", NULL, 1);
	assert_val(d, "acceptd_connections_active", "m", NULL, 1);
	close(m1);
	assert_val(d, "acceptd_connections_active", "m", NULL, 0);
	hd_free(d);
}
END_TEST

/* The row of listener name, worker w in `-s status`: the 6 numbers. */
static int
status_row(const char *out, const char *name, int w, long long v[6])
{
	for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		char l[64];
		long long wk;

		if (sscanf(p, "%63s %lld %lld %lld %lld %lld %lld %lld", l, &wk, &v[0], &v[1], &v[2],
		    &v[3], &v[4], &v[5]) == 8 && !strcmp(l, name) && wk == w)
			return 1;
	}
	return 0;
}

START_TEST(status_table)
{
	struct hd *d = hd_up(HEAD STATS_L ECHO_L
	    "[listener a]\naddress = 127.0.0.1\nport = 0\nallow = 10.0.0.0/8\n", 1);
	int port = hd_port(d, "e"), open_fd, fd, rc;
	long long v[6] = { 0 };

	for (int i = 0; i < 4; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "echo %d", i);
	open_fd = h_connect("127.0.0.1", port);
	hd_assert(d, open_fd >= 0 && h_echo(open_fd, "open\n"), "echo");
	fd = h_connect("127.0.0.1", hd_port(d, "a"));
	hd_assert(d, fd >= 0 && h_wait_closed(fd, H_WAIT_MS), "refused");
	close(fd);
	assert_val(d, "acceptd_connections_closed_total", "e", NULL, 4);
	assert_val(d, "acceptd_connections_rejected_total", "a", NULL, 1);

	rc = hd_run(d, "-c", d->conf, "-s", "status", NULL);
	hd_assert(d, rc == 0, "-s status: %d: %s", rc, d->err);
	fprintf(stderr, "status_table: -s status printed:\n%s", d->out);
	hd_assert(d, strstr(d->out, "acceptd master ") && strstr(d->out, "1 workers"),
	    "no summary line: %s", d->out);
	hd_assert(d, strstr(d->out, "reloads 0 ok / 0 failed, worker restarts 0"),
	    "summary: %s", d->out);
	hd_assert(d, strstr(d->out, "listener") && strstr(d->out, "accepted") &&
	    strstr(d->out, "active") && strstr(d->out, "rejected"), "no header: %s", d->out);
	/* accepted active closed rejected proxy_err acc_err */
	hd_assert(d, status_row(d->out, "e", 0, v), "no row for e: %s", d->out);
	hd_assert(d, v[0] == 5 && v[1] == 1 && v[2] == 4 && v[3] == 0 && v[4] == 0 && v[5] == 0,
	    "row e: %lld %lld %lld %lld %lld %lld:\n%s", v[0], v[1], v[2], v[3], v[4], v[5],
	    d->out);
	hd_assert(d, status_row(d->out, "a", 0, v), "no row for a: %s", d->out);
	hd_assert(d, v[0] == 0 && v[3] == 1, "row a: %s", d->out);
	hd_assert(d, status_row(d->out, "s", 0, v) && v[0] >= 1, "row s: %s", d->out);
	close(open_fd);

	/* no master: a clear error, exit 1 */
	hd_kill(d, SIGINT);
	hd_assert(d, hd_wait_exit(d, H_WAIT_MS), "the master did not stop");
	rc = hd_run(d, "-c", d->conf, "-s", "status", NULL);
	hd_assert(d, rc == 1, "-s status with no master: %d", rc);
	hd_assert(d, strstr(d->err, "acceptd:"), "no message: %s", d->err);
	hd_free(d);
}
END_TEST

static Suite *
stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");

	tcase_add_test(tc, metrics_http);
	tcase_add_test(tc, metrics_head_length);
	tcase_add_test(tc, echo_counters);
	tcase_add_test(tc, metrics_promtool);
	tcase_add_test(tc, survive_respawn);
	tcase_add_test(tc, active_after_kill);
	tcase_add_test(tc, survive_reload);
	tcase_add_test(tc, rejected);
	tcase_add_test(tc, status_table);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(stats_suite());
}
