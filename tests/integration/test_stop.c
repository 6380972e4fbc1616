/* Integration: stopping: TERM and QUIT drain (bounded by shutdown_timeout),
 * INT and a second TERM stop at once; exit 0, nothing left behind. */
#define _GNU_SOURCE
#include <sys/stat.h>

#include "harness.h"

static const char *const modes[] = { "shared", "reuseport" };

/* An established echo connection (it has answered once, so a worker owns it). */
static int
open_echo(struct hd *d, int port)
{
	int fd = h_connect("127.0.0.1", port);

	hd_assert(d, fd >= 0, "connect: %s", strerror(errno));
	hd_assert(d, h_echo(fd, "before\n"), "no echo before the signal");
	return fd;
}

/* Every worker this daemon ever had is gone. */
static void
assert_workers_gone(struct hd *d)
{
	for (int i = 0; i < 4; i++) {
		pid_t w = hd_worker(d, i);

		if (w > 0)
			hd_assert(d, h_wait_gone(w, H_WAIT_MS), "worker %d (pid %d) still runs",
			    i, (int)w);
	}
}

START_TEST(term_without_connections)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = %s\npidfile = @DIR@/acceptd.pid\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n\n"
	    "[listener u]\naddress = unix:@DIR@/s.sock\n", modes[_i]);
	char sock[256], pidf[256];
	int port = hd_port(d, "e");
	FILE *f;
	int pid = 0;

	hd_path(d, "s.sock", sock, sizeof sock);
	hd_path(d, "acceptd.pid", pidf, sizeof pidf);
	hd_assert(d, access(sock, F_OK) == 0, "no %s", sock);
	/* -f with pidfile set writes it too */
	hd_assert(d, (f = fopen(pidf, "r")) != NULL, "no pidfile %s", pidf);
	ck_assert(fscanf(f, "%d", &pid) == 1);
	fclose(f);
	hd_assert(d, pid == d->master, "pidfile says %d, master is %d", pid, (int)d->master);

	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	assert_workers_gone(d);
	hd_assert(d, access(sock, F_OK) < 0, "%s left behind", sock);
	hd_assert(d, access(pidf, F_OK) < 0, "%s left behind", pidf);
	hd_assert(d, h_port_bindable(port), "port %d still taken", port);
	hd_assert(d, hd_log_has(d, "master exiting"), "no 'master exiting' line");
	hd_free(d);
}
END_TEST

/* TERM with a connection open: it goes on being served, new ones are
 * refused, and the master exits 0 once the client closes. */
START_TEST(term_drains_open_connection)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = %s\nshutdown_timeout = 30s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	int port = hd_port(d, "e"), fd = open_echo(d, port), fd2;

	hd_kill(d, SIGTERM);
	hd_assert(d, hd_wait_log(d, "graceful stop", 1, H_WAIT_MS), "no 'graceful stop' line");
	hd_assert(d, hd_wait_log(d, "draining 1 connections", 1, H_WAIT_MS),
	    "no worker says it drains 1 connection");
	/* the idle worker is gone: every copy of the listening socket is closed */
	hd_assert(d, hd_wait_log(d, ") exited", 1, H_WAIT_MS), "the idle worker did not exit");
	hd_assert(d, h_echo(fd, "after TERM\n"), "the open connection stopped echoing after TERM");
	fd2 = h_connect("127.0.0.1", port);
	hd_assert(d, fd2 < 0 && errno == ECONNREFUSED,
	    "a new connection after TERM was not refused (fd %d, %s)", fd2, strerror(errno));
	hd_assert(d, !hd_wait_exit(d, H_QUIET_MS), "the master exited with a connection open");
	hd_assert(d, h_echo(fd, "still\n"), "the open connection stopped echoing");
	close(fd);
	hd_assert_exit(d, 0, H_WAIT_MS);
	assert_workers_gone(d);
	hd_free(d);
}
END_TEST

/* TERM with an idle connection and shutdown_timeout = 1s: the server
 * closes it after about a second and the master exits 0. */
START_TEST(term_timeout_closes_idle)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = %s\nshutdown_timeout = 1s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	int fd = open_echo(d, hd_port(d, "e"));
	long long t0, dt;

	t0 = h_now_ms();
	hd_kill(d, SIGTERM);
	hd_assert(d, h_wait_closed(fd, H_WAIT_MS), "the idle connection was never closed");
	dt = h_now_ms() - t0;
	hd_assert(d, dt >= 800 && dt <= 3500, "closed %lld ms after TERM, want about 1000", dt);
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_assert(d, hd_log_has(d, "shutdown timeout"), "no 'shutdown timeout' line");
	assert_workers_gone(d);
	close(fd);
	hd_free(d);
}
END_TEST

/* INT: at once, open connections closed, exit 0. */
START_TEST(int_stops_at_once)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = %s\nshutdown_timeout = 30s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n\n"
	    "[listener u]\naddress = unix:@DIR@/s.sock\n", modes[_i]);
	int fd = open_echo(d, hd_port(d, "e"));
	char sock[256];
	long long t0;

	t0 = h_now_ms();
	hd_kill(d, SIGINT);
	hd_assert(d, h_wait_closed(fd, H_WAIT_MS), "the connection was not closed");
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_assert(d, h_now_ms() - t0 < 2000, "INT took %lld ms", h_now_ms() - t0);
	assert_workers_gone(d);
	hd_path(d, "s.sock", sock, sizeof sock);
	hd_assert(d, access(sock, F_OK) < 0, "%s left behind", sock);
	close(fd);
	hd_free(d);
}
END_TEST

/* QUIT is graceful, like TERM. */
START_TEST(quit_is_graceful)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = %s\nshutdown_timeout = 30s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	int fd = open_echo(d, hd_port(d, "e"));

	hd_kill(d, SIGQUIT);
	hd_assert(d, hd_wait_log(d, "graceful stop", 1, H_WAIT_MS), "no 'graceful stop' line");
	hd_assert(d, hd_wait_log(d, "draining 1 connections", 1, H_WAIT_MS),
	    "no worker says it drains 1 connection");
	hd_assert(d, h_echo(fd, "after QUIT\n"), "the open connection stopped echoing after QUIT");
	hd_assert(d, !hd_wait_exit(d, H_QUIET_MS), "the master exited with a connection open");
	close(fd);
	hd_assert_exit(d, 0, H_WAIT_MS);
	assert_workers_gone(d);
	hd_free(d);
}
END_TEST

/* A second TERM during the drain is INT: now. */
START_TEST(second_term_is_fast)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = %s\nshutdown_timeout = 30s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	int fd = open_echo(d, hd_port(d, "e"));
	long long t0;

	hd_kill(d, SIGTERM);
	hd_assert(d, hd_wait_log(d, "draining 1 connections", 1, H_WAIT_MS),
	    "no worker says it drains 1 connection");
	hd_assert(d, h_echo(fd, "draining\n"), "no echo during the drain");
	t0 = h_now_ms();
	hd_kill(d, SIGTERM);
	hd_assert(d, h_wait_closed(fd, H_WAIT_MS), "the connection was not closed");
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_assert(d, h_now_ms() - t0 < 2000, "the second TERM took %lld ms", h_now_ms() - t0);
	hd_assert(d, hd_log_has(d, "fast stop"), "no 'fast stop' line");
	assert_workers_gone(d);
	close(fd);
	hd_free(d);
}
END_TEST

/* TERM with an idle HTTP keep-alive connection: the handler closes it at
 * once (between requests there is nothing to finish), well before the
 * shutdown timeout, and the master exits 0. */
START_TEST(term_closes_idle_http_keepalive)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = %s\nshutdown_timeout = 30s\n\n"
	    "[listener web]\naddress = 127.0.0.1\nport = 0\nhandler = http\n", modes[_i]);
	int fd = h_connect("127.0.0.1", hd_port(d, "web")), status;
	char body[4096];
	long long t0;

	hd_assert(d, fd >= 0, "connect: %s", strerror(errno));
	hd_assert(d, h_http_get(fd, "/", &status, body, sizeof body) >= 0 && status == 200,
	    "GET / before TERM: status %d", status);
	t0 = h_now_ms();
	hd_kill(d, SIGTERM);
	hd_assert(d, h_wait_closed(fd, H_WAIT_MS), "the idle keep-alive connection stayed open");
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_assert(d, h_now_ms() - t0 < 2000, "stopping took %lld ms", h_now_ms() - t0);
	assert_workers_gone(d);
	close(fd);
	hd_free(d);
}
END_TEST

static Suite *
stop_suite(void)
{
	Suite *s = suite_create("stop");
	TCase *tc = tcase_create("stop");

	/* _i: 0 = mode shared, 1 = mode reuseport */
	tcase_add_loop_test(tc, term_without_connections, 0, 2);
	tcase_add_loop_test(tc, term_drains_open_connection, 0, 2);
	tcase_add_loop_test(tc, term_timeout_closes_idle, 0, 2);
	tcase_add_loop_test(tc, int_stops_at_once, 0, 2);
	tcase_add_loop_test(tc, quit_is_graceful, 0, 2);
	tcase_add_loop_test(tc, second_term_is_fast, 0, 2);
	tcase_add_loop_test(tc, term_closes_idle_http_keepalive, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(stop_suite());
}
