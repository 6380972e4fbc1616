/* Integration: running daemonized (no -f) with a pidfile, -s stop, a
 * daemonized start that fails, and the privilege drop (as root only). */
#define _GNU_SOURCE
#include <grp.h>
#include <pwd.h>

#include "harness.h"

static pid_t
read_pidfile(const char *path)
{
	FILE *f = fopen(path, "r");
	int pid = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &pid) != 1)
		pid = -1;
	fclose(f);
	return pid;
}

/* The session id (field 6 of /proc/PID/stat). */
static pid_t
session_of(pid_t pid)
{
	char path[64], buf[1024], *p;
	int sid = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	if (fgets(buf, sizeof buf, f) && (p = strrchr(buf, ')')))
		sscanf(p + 1, " %*c %*d %*d %d", &sid);
	fclose(f);
	return sid;
}

START_TEST(daemonized_start_and_stop)
{
	struct hd *d = hd_new();
	char pidf[256], cmd[256];
	long long t0;
	pid_t master;
	int rc, st;

	hd_conf(d, "[daemon]\nworkers = 2\npidfile = @DIR@/acceptd.pid\nlog = stderr\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n");
	hd_path(d, "acceptd.pid", pidf, sizeof pidf);
	t0 = h_now_ms();
	hd_spawn(d, "-c", d->conf, (char *)NULL);
	/* returns once the master serves, with 0 */
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_assert(d, h_now_ms() - t0 < 3000, "daemonizing took %lld ms", h_now_ms() - t0);
	/* the log still goes to the stderr it was given */
	hd_assert(d, hd_wait_ready(d, H_WAIT_MS), "no 'master ready' line");
	master = read_pidfile(pidf);
	hd_assert(d, master > 0 && master == d->master, "pidfile says %d, the log %d",
	    (int)master, (int)d->master);
	hd_assert(d, master != d->child && h_alive(master), "the master (pid %d) does not run",
	    (int)master);
	/* fork, setsid, fork: a session of its own, but not its leader, so
	 * it can never acquire a controlling terminal */
	hd_assert(d, session_of(master) != getsid(0) && session_of(master) != master,
	    "the master's session is %d (ours %d)", (int)session_of(master), (int)getsid(0));
	hd_assert(d, h_cmdline(master, cmd, sizeof cmd) == 0 &&
	    strncmp(cmd, "acceptd: master", 15) == 0, "master title '%s'", cmd);
	hd_assert(d, h_echo_at("127.0.0.1", hd_port(d, "e")), "the daemon does not serve");

	rc = hd_run(d, "-c", d->conf, "-s", "stop", (char *)NULL);
	hd_assert(d, rc == 0, "-s stop: exit %d: %s", rc, d->err);
	hd_assert(d, h_wait_exit_pid(master, H_WAIT_MS, &st), "the master did not stop");
	/* the subreaper got it: its status is known */
	if (st != -1)
		hd_assert(d, WIFEXITED(st) && WEXITSTATUS(st) == 0, "master wait status 0x%x", st);
	for (int i = 0; i < 2; i++)
		hd_assert(d, h_wait_gone(hd_worker(d, i), H_WAIT_MS), "worker %d still runs", i);
	hd_assert(d, access(pidf, F_OK) < 0, "the pidfile is still there");
	hd_free(d);
}
END_TEST

/* A daemonized start that fails at bind (port in use) exits 1: the parent
 * waits for the outcome. */
START_TEST(daemonized_bind_failure)
{
	struct hd *d = hd_new();
	int port = 0, lfd = h_listen_tcp(&port), n = 1;
	long long end;
	pid_t kids[4];
	char pidf[256];

	ck_assert(lfd >= 0);
	hd_conf(d, "[daemon]\nworkers = 2\npidfile = @DIR@/acceptd.pid\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = %d\n", port);
	hd_spawn(d, "-c", d->conf, (char *)NULL);
	hd_assert_exit(d, 1, H_WAIT_MS);
	hd_assert(d, hd_log_has(d, "%s", strerror(EADDRINUSE)), "the error is not in the log");
	hd_assert(d, !hd_log_has(d, "master ready"), "it got ready");
	for (end = h_now_ms() + H_WAIT_MS; h_now_ms() < end && (n = h_children(getpid(), kids, 4)); )
		usleep(10000);
	hd_assert(d, n == 0, "%d processes left (pid %d)", n, (int)kids[0]);
	hd_path(d, "acceptd.pid", pidf, sizeof pidf);
	hd_assert(d, access(pidf, F_OK) < 0, "a pidfile was left behind");
	close(lfd);
	hd_free(d);
}
END_TEST

/* The first free port below 1024 on 127.0.0.1 (as root), or 0. */
static int
low_port(void)
{
	for (int p = 1023; p >= 600; p--)
		if (h_port_bindable(p))
			return p;
	return 0;
}

START_TEST(privilege_drop)
{
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("nogroup");
	char want_uid[64], want_gid[64], buf[128];
	struct hd *d;
	int port;

	if (geteuid() != 0 || !pw || !gr) {
		fprintf(stderr, "privilege_drop: needs root, user nobody and group nogroup: skipped\n");
		return;
	}
	port = low_port();
	ck_assert_msg(port > 0, "no free port below 1024");
	d = hd_up("[daemon]\nworkers = 2\nmode = reuseport\nuser = nobody\ngroup = nogroup\n\n"
	    "[listener low]\naddress = 127.0.0.1\nport = %d\n", port);
	snprintf(want_uid, sizeof want_uid, "%d\t%d\t%d\t%d", (int)pw->pw_uid, (int)pw->pw_uid,
	    (int)pw->pw_uid, (int)pw->pw_uid);
	snprintf(want_gid, sizeof want_gid, "%d\t%d\t%d\t%d", (int)gr->gr_gid, (int)gr->gr_gid,
	    (int)gr->gr_gid, (int)gr->gr_gid);
	for (int i = 0; i < 2; i++) {
		pid_t w = hd_worker(d, i);

		hd_assert(d, h_proc_status(w, "Uid", buf, sizeof buf) == 0 &&
		    strcmp(buf, want_uid) == 0, "worker %d Uid '%s', want '%s'", i, buf, want_uid);
		hd_assert(d, h_proc_status(w, "Gid", buf, sizeof buf) == 0 &&
		    strcmp(buf, want_gid) == 0, "worker %d Gid '%s', want '%s'", i, buf, want_gid);
		hd_assert(d, h_proc_status(w, "Groups", buf, sizeof buf) == 0 &&
		    strspn(buf, " \t") == strlen(buf), "worker %d supplementary groups '%s'", i, buf);
	}
	hd_assert(d, hd_log_has(d, "listening: low 127.0.0.1:%d", port), "not on port %d", port);
	for (int k = 0; k < 4; k++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "no echo on port %d", port);
	/* a respawned worker runs unprivileged too */
	kill(hd_worker(d, 0), SIGKILL);
	hd_assert(d, hd_wait_log(d, "worker 0 started (pid ", 2, H_WAIT_MS), "no respawn");
	hd_assert(d, h_proc_status(hd_worker(d, 0), "Uid", buf, sizeof buf) == 0 &&
	    strcmp(buf, want_uid) == 0, "respawned worker Uid '%s'", buf);
	hd_assert(d, h_echo_at("127.0.0.1", port), "no echo after the respawn");
	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_free(d);
}
END_TEST

static Suite *
daemonize_suite(void)
{
	Suite *s = suite_create("daemonize");
	TCase *tc = tcase_create("daemonize");

	tcase_add_test(tc, daemonized_start_and_stop);
	tcase_add_test(tc, daemonized_bind_failure);
	tcase_add_test(tc, privilege_drop);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(daemonize_suite());
}
