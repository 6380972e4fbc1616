/* Integration: log = /path and its reopen on USR1 (master and workers), and
 * what the privilege drop keeps: CAP_NET_BIND_SERVICE in the master only. */
#define _GNU_SOURCE
#include <sys/stat.h>

#include "harness.h"

/* The whole file, NUL-terminated (caller frees); NULL if unreadable. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, n + 1);
	if (buf && fread(buf, 1, n, f) != (size_t)n)
		buf[0] = '\0';
	fclose(f);
	return buf;
}

static int
wait_file_has(const char *path, const char *needle, int ms)
{
	for (long long end = h_now_ms() + ms; h_now_ms() < end; usleep(10000)) {
		char *s = slurp(path);
		int found = s && strstr(s, needle);

		free(s);
		if (found)
			return 1;
	}
	return 0;
}

START_TEST(log_file_and_reopen)
{
	struct hd *d = hd_new();
	char logf[256], moved[300], pidf[256], needle[64];
	pid_t master, w0;

	hd_path(d, "acceptd.log", logf, sizeof logf);
	hd_path(d, "acceptd.pid", pidf, sizeof pidf);
	hd_conf(d, "[daemon]\nworkers = 1\nlog = %s\nlog_level = debug\npidfile = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", logf, pidf);
	hd_spawn(d, "-f", "-c", d->conf, (char *)NULL);
	hd_assert(d, wait_file_has(logf, "master ready (pid", H_WAIT_MS),
	    "no 'master ready' in %s", logf);
	{
		char *s = slurp(logf), *p = strstr(s, "master ready (pid ");

		master = p ? atoi(p + 18) : -1;
		free(s);
	}
	hd_assert(d, master == d->child, "master pid %d, spawned %d", (int)master, (int)d->child);
	/* nothing but the log file gets the daemon's lines */
	hd_assert(d, !hd_log_has(d, "master ready"), "the log went to stderr too");

	/* logrotate's way: move the file, then USR1 through -s reopen */
	snprintf(moved, sizeof moved, "%s.1", logf);
	hd_assert(d, rename(logf, moved) == 0, "rename: %s", strerror(errno));
	hd_assert(d, hd_run(d, "-c", d->conf, "-s", "reopen", (char *)NULL) == 0,
	    "-s reopen failed: %s", d->err);
	hd_assert(d, wait_file_has(logf, "log reopened", H_WAIT_MS), "no new %s after USR1", logf);
	/* the worker writes to the new file too: its exit line (debug) shows it */
	{
		pid_t kids[4];

		hd_assert(d, h_children(master, kids, 4) == 1, "expected one worker");
		w0 = kids[0];
	}
	usleep(200000);   /* the worker's USR1 */
	kill(master, SIGTERM);
	hd_assert(d, h_wait_exit_pid(d->child, H_WAIT_MS, &d->status), "master did not exit");
	d->reaped = 1;
	snprintf(needle, sizeof needle, "acceptd[%d] debug: worker 0 exiting", (int)w0);
	hd_assert(d, wait_file_has(logf, needle, 1000), "the worker did not reopen the log");
	hd_assert(d, wait_file_has(moved, "master ready", 100), "the old file lost its lines");
	hd_free(d);
}
END_TEST

/* A port below 1024 that nobody holds, or -1. */
static int
free_low_port(int not)
{
	for (int p = 600; p < 1000; p++)
		if (p != not && h_port_bindable(p))
			return p;
	return -1;
}

static unsigned long long
cap_eff(pid_t pid)
{
	char buf[64];

	if (h_proc_status(pid, "CapEff", buf, sizeof buf) < 0)
		return ~0ULL;
	return strtoull(buf, NULL, 16);
}

START_TEST(privileges_kept_for_reload)
{
	struct hd *d;
	int p1, p2, fd;
	pid_t kids[4];
	char buf[64];

	if (geteuid() != 0) {
		fprintf(stderr, "privileges_kept_for_reload: skipped: not root\n");
		return;
	}
	p1 = free_low_port(-1);
	p2 = free_low_port(p1);
	ck_assert(p1 > 0 && p2 > 0);
	d = hd_new();
	/* nobody must read the config on reload: open the temp dirs up */
	chmod(d->dir, 0755);
	{
		char parent[192], *slash;

		snprintf(parent, sizeof parent, "%s", d->dir);
		if ((slash = strrchr(parent, '/')))
			*slash = '\0', chmod(parent, 0755);
	}
	hd_conf(d, "[daemon]\nworkers = 2\nuser = nobody\ngroup = nogroup\n"
	    "pidfile = @DIR@/acceptd.pid\n\n[listener e]\naddress = 127.0.0.1\nport = %d\n", p1);
	chmod(d->conf, 0644);
	hd_start(d);
	hd_assert(d, h_proc_status(d->master, "Uid", buf, sizeof buf) == 0 &&
	    atoi(buf) == 65534, "master uid: %s", buf);
	/* 1 << CAP_NET_BIND_SERVICE (10), nothing else */
	hd_assert(d, cap_eff(d->master) == 0x400, "master CapEff %llx", cap_eff(d->master));
	hd_assert(d, h_children(d->master, kids, 4) == 2, "two workers");
	for (int i = 0; i < 2; i++)
		hd_assert(d, cap_eff(kids[i]) == 0, "worker CapEff %llx", cap_eff(kids[i]));

	/* a reload as nobody still binds a port below 1024 */
	hd_conf(d, "[daemon]\nworkers = 2\nuser = nobody\ngroup = nogroup\n"
	    "pidfile = @DIR@/acceptd.pid\n\n[listener e]\naddress = 127.0.0.1\nport = %d\n", p2);
	chmod(d->conf, 0644);
	hd_assert(d, hd_run(d, "-c", d->conf, "-s", "reload", (char *)NULL) == 0,
	    "reload to port %d failed: %s", p2, d->err);
	fd = h_connect("127.0.0.1", p2);
	hd_assert(d, fd >= 0 && h_echo(fd, "low\n"), "no echo on port %d after the reload", p2);
	close(fd);
	hd_free(d);
}
END_TEST

static Suite *
logpriv_suite(void)
{
	Suite *s = suite_create("logpriv");
	TCase *tc = tcase_create("logpriv");

	tcase_add_test(tc, log_file_and_reopen);
	tcase_add_test(tc, privileges_kept_for_reload);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(logpriv_suite());
}
