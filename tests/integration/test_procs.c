/* Integration: what the operating system sees of the processes: titles,
 * the master never accepting, a killed worker replaced (and, with the
 * master keeping the sockets, the connections queued for it answered). */
#define _GNU_SOURCE
#include "harness.h"

static const char *const modes[] = { "shared", "reuseport" };

/* The title, waited for: "worker N started" is logged by the master right
 * after fork, before the new worker has set its own title. */
static void
assert_title(struct hd *d, pid_t pid, const char *want)
{
	long long end = h_now_ms() + H_WAIT_MS;
	char cmd[256] = "";

	while (h_cmdline(pid, cmd, sizeof cmd) == 0 && strcmp(cmd, want) != 0 &&
	    h_now_ms() < end)
		usleep(10000);
	/* all of it: ps shows the whole argument area */
	hd_assert(d, strcmp(cmd, want) == 0, "pid %d: title '%s', want '%s'", (int)pid, cmd, want);
}

START_TEST(titles)
{
	struct hd *d = hd_up("[daemon]\nworkers = 3\nmode = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	pid_t kids[8], w[3];
	int n;

	assert_title(d, d->master, "acceptd: master");
	for (int i = 0; i < 3; i++) {
		char want[32];

		w[i] = hd_worker(d, i);
		hd_assert(d, w[i] > 0, "no 'worker %d started' line", i);
		hd_assert(d, h_ppid(w[i]) == d->master, "worker %d is not the master's child", i);
		snprintf(want, sizeof want, "acceptd: worker %d", i);
		assert_title(d, w[i], want);
	}
	n = h_children(d->master, kids, 8);
	hd_assert(d, n == 3, "the master has %d children, want 3", n);
	hd_free(d);
}
END_TEST

/* With every worker stopped, a connection is queued but not answered:
 * nobody but the workers accepts. Continued, they answer it. */
START_TEST(master_never_accepts)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	pid_t w0 = hd_worker(d, 0), w1 = hd_worker(d, 1);
	int fd;
	char buf[8];

	hd_assert(d, w0 > 0 && w1 > 0, "worker pids");
	hd_assert(d, h_echo_at("127.0.0.1", hd_port(d, "e")), "echo before the test");
	kill(w0, SIGSTOP);
	kill(w1, SIGSTOP);
	fd = h_connect("127.0.0.1", hd_port(d, "e"));
	hd_assert(d, fd >= 0, "connect with the workers stopped: %s", strerror(errno));
	ck_assert(h_send_str(fd, "ping") == 0);
	hd_assert(d, h_quiet(fd, H_QUIET_MS), "answered while every worker was stopped");
	kill(w0, SIGCONT);
	kill(w1, SIGCONT);
	hd_assert(d, h_recv_exact(fd, buf, 4, H_WAIT_MS) == 4 && memcmp(buf, "ping", 4) == 0,
	    "not answered once the workers went on");
	close(fd);
	hd_free(d);
}
END_TEST

START_TEST(worker_killed_is_replaced)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	pid_t old = hd_worker(d, 0), other = hd_worker(d, 1), neu;
	char line[128];
	int port = hd_port(d, "e");

	hd_assert(d, old > 0 && other > 0, "worker pids");
	ck_assert(kill(old, SIGKILL) == 0);
	snprintf(line, sizeof line, "worker 0 (pid %d) killed by signal 9", (int)old);
	hd_assert(d, hd_wait_log(d, line, 1, H_WAIT_MS), "no '%s' line", line);
	hd_assert(d, hd_wait_log(d, "worker 0 started (pid ", 2, H_WAIT_MS),
	    "worker 0 was not restarted");
	neu = hd_worker(d, 0);
	hd_assert(d, neu > 0 && neu != old, "new worker 0 pid %d (old %d)", (int)neu, (int)old);
	hd_assert(d, h_wait_gone(old, H_WAIT_MS), "the killed worker is still there");
	hd_assert(d, h_alive(neu) && h_ppid(neu) == d->master, "the new worker is not running");
	assert_title(d, neu, "acceptd: worker 0");
	hd_assert(d, h_alive(other) && hd_worker(d, 1) == other, "worker 1 was disturbed");
	hd_assert(d, h_alive(d->master), "the master died");
	for (int k = 0; k < 6; k++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "no service after the respawn");
	hd_free(d);
}
END_TEST

/* One worker, stopped: a connection queues on its socket (in reuseport
 * mode socket 0, which the master keeps). Killed, its replacement takes
 * that socket over and answers the very connection that waited. */
START_TEST(queued_connection_survives_worker)
{
	struct hd *d = hd_up("[daemon]\nworkers = 1\nmode = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	pid_t old = hd_worker(d, 0);
	char buf[8];
	int fd;

	hd_assert(d, old > 0, "worker pid");
	ck_assert(kill(old, SIGSTOP) == 0);
	fd = h_connect("127.0.0.1", hd_port(d, "e"));
	hd_assert(d, fd >= 0, "connect: %s", strerror(errno));
	ck_assert(h_send_str(fd, "ping") == 0);
	hd_assert(d, h_quiet(fd, 100), "answered by a stopped worker?");
	ck_assert(kill(old, SIGKILL) == 0);
	hd_assert(d, hd_wait_log(d, "worker 0 started (pid ", 2, H_WAIT_MS),
	    "worker 0 was not restarted");
	hd_assert(d, h_recv_exact(fd, buf, 4, H_WAIT_MS) == 4 && memcmp(buf, "ping", 4) == 0,
	    "the queued connection was not answered by the new worker");
	hd_assert(d, h_echo(fd, "pong"), "the queued connection does not go on");
	close(fd);
	hd_free(d);
}
END_TEST

/* A worker that keeps dying young is respawned with a delay, not at once
 * in a loop, and does come back. */
START_TEST(crash_loop_backs_off)
{
	struct hd *d = hd_up("[daemon]\nworkers = 1\n\n[listener e]\naddress = 127.0.0.1\nport = 0\n");
	pid_t w;

	for (int round = 2; round <= 3; round++) {
		w = hd_worker(d, 0);
		ck_assert(kill(w, SIGKILL) == 0);
		hd_assert(d, hd_wait_log(d, "worker 0 started (pid ", round, H_WAIT_MS),
		    "worker 0 not restarted (round %d)", round);
	}
	/* the second death came within a second of the start */
	hd_assert(d, hd_log_has(d, "worker 0: respawning in"), "no back-off line");
	hd_assert(d, h_echo_at("127.0.0.1", hd_port(d, "e")), "no service after the respawns");
	hd_free(d);
}
END_TEST

/* A master killed outright leaves no worker behind: they drain and go. */
START_TEST(orphaned_workers_go)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	pid_t w0 = hd_worker(d, 0), w1 = hd_worker(d, 1);

	hd_assert(d, w0 > 0 && w1 > 0, "worker pids");
	hd_kill(d, SIGKILL);
	hd_assert(d, hd_wait_exit(d, H_WAIT_MS), "the master did not die");
	hd_assert(d, h_wait_gone(w0, H_WAIT_MS) && h_wait_gone(w1, H_WAIT_MS),
	    "workers outlived their master");
	hd_free(d);
}
END_TEST

static Suite *
procs_suite(void)
{
	Suite *s = suite_create("procs");
	TCase *tc = tcase_create("procs");

	/* _i: 0 = mode shared, 1 = mode reuseport */
	tcase_add_loop_test(tc, titles, 0, 2);
	tcase_add_loop_test(tc, master_never_accepts, 0, 2);
	tcase_add_loop_test(tc, worker_killed_is_replaced, 0, 2);
	tcase_add_loop_test(tc, queued_connection_survives_worker, 0, 2);
	tcase_add_test(tc, crash_loop_backs_off);
	tcase_add_loop_test(tc, orphaned_workers_go, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(procs_suite());
}
