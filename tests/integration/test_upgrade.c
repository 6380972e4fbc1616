/* Integration: binary upgrade (USR2, -s upgrade) under a load of short
 * connections, in both modes: the new master inherits every listening
 * socket, both serve until the old one gets QUIT, and not one connection
 * fails; a new master that fails its start leaves the old one serving
 * alone; a unix socket survives the old master's exit. */
#define _GNU_SOURCE
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "harness.h"

static const char *const modes[] = { "shared", "reuseport" };

/* ---- load: client threads, connect + one echo exchange + close ---- */

#define LOAD_MAX 8

struct load;

struct load_client {
	struct load *l;
	int i;
	char where[224];
	int port;
	pthread_t th;
};

struct load {
	struct load_client c[LOAD_MAX];
	int n;
	atomic_int stop;
	atomic_long tried, ok, failed;
	long long t0;
	pthread_mutex_t mu;
	char fails[2048];       /* the first failures, for the message */
};

static void
load_fail(struct load_client *c, const char *what, int e)
{
	struct load *l = c->l;
	size_t n;

	atomic_fetch_add(&l->failed, 1);
	pthread_mutex_lock(&l->mu);
	n = strlen(l->fails);
	if (n < sizeof l->fails - 128)
		snprintf(l->fails + n, sizeof l->fails - n, " [+%lld ms client %d %s: %s: %s]",
		    h_now_ms() - l->t0, c->i, c->where, what, e ? strerror(e) : "short or wrong reply");
	pthread_mutex_unlock(&l->mu);
}

static void *
load_run(void *arg)
{
	struct load_client *c = arg;
	struct load *l = c->l;
	struct timespec pause = { 0, 1000000 };
	char msg[96];

	while (!atomic_load(&l->stop)) {
		long k = atomic_fetch_add(&l->tried, 1);
		int fd = h_connect(c->where, c->port);

		if (fd < 0) {
			load_fail(c, "connect", errno);
		} else {
			snprintf(msg, sizeof msg, "client %d exchange %ld\n", c->i, k);
			errno = 0;
			if (h_echo(fd, msg))
				atomic_fetch_add(&l->ok, 1);
			else
				load_fail(c, "echo", errno);
			close(fd);
		}
		nanosleep(&pause, NULL);   /* leave the daemon (2 CPUs, ASan) some room */
	}
	return NULL;
}

/* ntcp clients on 127.0.0.1:port, nunix on unix:path (if path). */
static struct load *
load_start(int port, int ntcp, const char *path, int nunix)
{
	struct load *l = calloc(1, sizeof *l);

	ck_assert(l != NULL && ntcp + nunix <= LOAD_MAX);
	pthread_mutex_init(&l->mu, NULL);
	l->t0 = h_now_ms();
	for (int i = 0; i < ntcp + nunix; i++) {
		struct load_client *c = &l->c[i];

		c->l = l;
		c->i = i;
		if (i < ntcp) {
			snprintf(c->where, sizeof c->where, "127.0.0.1");
			c->port = port;
		} else {
			snprintf(c->where, sizeof c->where, "unix:%s", path);
		}
		ck_assert(pthread_create(&c->th, NULL, load_run, c) == 0);
		l->n++;
	}
	return l;
}

/* Wait (bounded) until `more` exchanges more than now have succeeded. */
static int
load_progress(struct load *l, long more, int ms)
{
	long target = atomic_load(&l->ok) + more;
	long long end = h_now_ms() + ms;

	while (atomic_load(&l->ok) < target) {
		struct timespec ts = { 0, 5000000 };

		if (h_now_ms() >= end)
			return 0;
		nanosleep(&ts, NULL);
	}
	return 1;
}

static void
load_stop(struct load *l)
{
	atomic_store(&l->stop, 1);
	for (int i = 0; i < l->n; i++)
		pthread_join(l->c[i].th, NULL);
}

static void
load_free(struct load *l)
{
	if (!l)
		return;
	if (!atomic_load(&l->stop))
		load_stop(l);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

#define load_assert_clean(d, l) \
	hd_assert(d, atomic_load(&(l)->failed) == 0 && atomic_load(&(l)->ok) > 0, \
	    "load: %ld tried, %ld ok, %ld failed:%s", atomic_load(&(l)->tried), \
	    atomic_load(&(l)->ok), atomic_load(&(l)->failed), (l)->fails)

/* A stage under load: at least 250 ms and 50 good exchanges. */
#define load_assert_moving(d, l, what) \
	hd_assert(d, (usleep(250000), load_progress(l, 50, H_WAIT_MS)), "load: no progress %s (%ld ok, %ld failed:%s)", \
	    what, atomic_load(&(l)->ok), atomic_load(&(l)->failed), (l)->fails)

/* ---- processes ---- */

/* The pid after the n-th (from 1) occurrence of mark in the log, -1 if none. */
static pid_t
log_pid(const struct hd *d, const char *mark, int nth)
{
	char *log = hd_log(d), *p = log;
	pid_t pid = -1;

	for (int i = 0; p && i < nth; i++)
		if ((p = strstr(p, mark)))
			p += strlen(mark);
	if (p && isdigit((unsigned char)*p))
		pid = atoi(p);
	free(log);
	return pid;
}

static pid_t
pidfile_pid_of(const struct hd *d, const char *name)
{
	char path[256];
	FILE *f;
	int pid = -1;

	hd_path(d, name, path, sizeof path);
	if ((f = fopen(path, "re"))) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = -1;
		fclose(f);
	}
	return pid;
}

static pid_t
pidfile_pid(const struct hd *d)
{
	return pidfile_pid_of(d, "acceptd.pid");
}

/* Whether pid's title is "acceptd: <what>". */
static int
is_title(pid_t pid, const char *what)
{
	char cmd[256], want[64];

	snprintf(want, sizeof want, "acceptd: %s", what);
	return h_cmdline(pid, cmd, sizeof cmd) == 0 && strncmp(cmd, want, strlen(want)) == 0;
}

/* Wait (bounded) until master has exactly n children but `except` (the
 * new master, a child of the old one), all of them workers. */
static int
wait_workers_but(pid_t master, int n, pid_t except, int ms)
{
	long long end = h_now_ms() + ms;

	for (;;) {
		pid_t kids[32];
		int k = h_children(master, kids, 32), w = 0, other = 0;

		for (int i = 0; i < k; i++)
			if (kids[i] != except)
				is_title(kids[i], "worker") ? w++ : other++;
		if (w == n && !other)
			return 1;
		if (h_now_ms() >= end)
			return 0;
		usleep(10000);
	}
}

static int
wait_workers(pid_t master, int n, int ms)
{
	return wait_workers_but(master, n, -1, ms);
}

/* After the old master's exit, the test process (a subreaper) is the new
 * master's parent: it must be this process's only acceptd child, and the
 * only master. */
static void
assert_one_master(struct hd *d, pid_t master)
{
	pid_t kids[32];
	int n = h_children(getpid(), kids, 32), masters = 0;

	for (int i = 0; i < n; i++) {
		masters += is_title(kids[i], "master");
		hd_assert(d, kids[i] == master || !is_title(kids[i], ""),
		    "acceptd pid %d left beside the new master %d", (int)kids[i], (int)master);
	}
	hd_assert(d, masters == 1 && is_title(master, "master"),
	    "%d masters among this process's children, want 1 (pid %d)", masters, (int)master);
}

/* USR2 (or -s upgrade) done: the new master's pid, checked: it logged
 * "master ready" and the old one "new master serves", the pidfile names it,
 * it has its workers. */
static pid_t
upgrade_done(struct hd *d, pid_t old, int workers)
{
	pid_t new;

	hd_assert(d, hd_wait_log(d, "upgrade: new master (pid ", 1, H_WAIT_MS),
	    "no 'upgrade: new master (pid NEW) serves'");
	new = log_pid(d, "upgrade: new master (pid ", 1);
	hd_assert(d, new > 0 && new != old, "new master pid %d", (int)new);
	hd_assert(d, hd_log_has(d, "upgrade: new master (pid %d) serves", (int)new),
	    "no 'upgrade: new master (pid %d) serves'", (int)new);
	hd_assert(d, hd_log_count(d, "master ready (pid ") == 2 &&
	    log_pid(d, "master ready (pid ", 2) == new,
	    "the new master did not log 'master ready (pid %d)'", (int)new);
	hd_assert(d, pidfile_pid(d) == new, "the pidfile names %d, the new master is %d",
	    (int)pidfile_pid(d), (int)new);
	/* as nginx: the old master is in PIDFILE.oldbin until it exits */
	hd_assert(d, pidfile_pid_of(d, "acceptd.pid.oldbin") == old,
	    "acceptd.pid.oldbin names %d, the old master is %d",
	    (int)pidfile_pid_of(d, "acceptd.pid.oldbin"), (int)old);
	hd_assert(d, h_ppid(new) == old, "the new master's parent is %d, not the old master %d",
	    (int)h_ppid(new), (int)old);
	hd_assert(d, is_title(new, "master"), "pid %d is not titled 'acceptd: master'", (int)new);
	hd_assert(d, wait_workers(new, workers, H_WAIT_MS), "the new master has not %d workers",
	    workers);
	hd_assert(d, wait_workers_but(old, workers, new, 0), "the old master lost its workers");
	return new;
}

/* QUIT to the old master: it exits 0 after its workers; the new one is
 * left alone, with its workers. d->master becomes the new one. */
static void
quit_old(struct hd *d, pid_t old, pid_t new, int workers)
{
	pid_t kids[32];
	int n = h_children(old, kids, 32);

	hd_kill(d, SIGQUIT);
	hd_assert_exit(d, 0, H_WAIT_MS);
	for (int i = 0; i < n; i++)
		if (kids[i] != new)
			hd_assert(d, h_wait_gone(kids[i], H_WAIT_MS), "old worker %d still runs",
			    (int)kids[i]);
	d->master = new;       /* for hd_kill and hd_free from now on */
	hd_assert(d, h_alive(new), "the new master %d is gone with the old one", (int)new);
	hd_assert(d, wait_workers(new, workers, H_WAIT_MS), "the new master has not %d workers",
	    workers);
	assert_one_master(d, new);
	hd_assert(d, pidfile_pid(d) == new, "the old master's exit changed the pidfile (%d)",
	    (int)pidfile_pid(d));
	hd_assert(d, pidfile_pid_of(d, "acceptd.pid.oldbin") == -1,
	    "the old master left acceptd.pid.oldbin behind");
}

/* TERM to the (new, last) master: exit 0; its unix socket and pidfile go. */
static void
stop_last(struct hd *d, pid_t master, const char *sock)
{
	char pidf[256];
	int st;

	hd_path(d, "acceptd.pid", pidf, sizeof pidf);
	hd_kill(d, SIGTERM);
	hd_assert(d, h_wait_exit_pid(master, H_WAIT_MS, &st), "master %d did not exit on TERM",
	    (int)master);
	hd_assert(d, st == -1 || (WIFEXITED(st) && WEXITSTATUS(st) == 0),
	    "master %d: wait status 0x%x", (int)master, st);
	if (sock)
		hd_assert(d, access(sock, F_OK) < 0, "%s left behind by the last master", sock);
	hd_assert(d, access(pidf, F_OK) < 0, "pidfile left behind by the last master");
}

static const char conf_fmt[] =
    "[daemon]\nworkers = 2\nmode = %s\npidfile = @DIR@/acceptd.pid\nshutdown_timeout = 5s\n\n"
    "[listener e]\naddress = 127.0.0.1\nport = %d\n\n"
    "[listener u]\naddress = unix:@DIR@/u.sock\n%s";

/* USR2 then QUIT to the old master under load: 0 failures, one master
 * left, serving TCP and unix with its workers. */
START_TEST(upgrade_under_load)
{
	struct hd *d = hd_new();
	char sock[256];
	struct load *l;
	pid_t old, new;
	int port;

	hd_conf(d, conf_fmt, modes[_i], 0, "");
	hd_start(d);
	old = d->master;
	port = hd_port(d, "e");
	hd_path(d, "u.sock", sock, sizeof sock);
	l = load_start(port, 3, sock, 1);
	load_assert_moving(d, l, "before USR2");

	hd_kill(d, SIGUSR2);
	new = upgrade_done(d, old, 2);
	hd_assert(d, hd_log_has(d, "listening: e 127.0.0.1:%d", port) &&
	    hd_log_count(d, "listening: e ") == 2, "the new master does not listen on port %d",
	    port);
	load_assert_moving(d, l, "with both masters");
	quit_old(d, old, new, 2);
	load_assert_moving(d, l, "after the old master's exit");
	load_stop(l);
	load_assert_clean(d, l);

	/* the unix socket survived the old master's exit */
	hd_assert(d, access(sock, F_OK) == 0, "the old master removed %s", sock);
	{
		char where[300];

		snprintf(where, sizeof where, "unix:%s", sock);
		for (int i = 0; i < 4; i++)
			hd_assert(d, h_echo_at(where, 0), "no echo on %s from the new master", where);
	}
	for (int i = 0; i < 4; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "no echo on port %d", port);
	stop_last(d, new, sock);
	load_free(l);
	hd_free(d);
}
END_TEST

/* `acceptd -c FILE -s upgrade` finds the master through the pidfile. */
START_TEST(upgrade_by_cli)
{
	struct hd *d = hd_new();
	char sock[256];
	struct load *l;
	pid_t old, new;
	int port, rc;

	hd_conf(d, conf_fmt, modes[_i], 0, "");
	hd_start(d);
	old = d->master;
	port = hd_port(d, "e");
	hd_path(d, "u.sock", sock, sizeof sock);
	l = load_start(port, 2, sock, 1);
	load_assert_moving(d, l, "before -s upgrade");
	rc = hd_run(d, "-c", d->conf, "-s", "upgrade", (char *)NULL);
	hd_assert(d, rc == 0, "-s upgrade: exit %d: %s", rc, d->err);
	new = upgrade_done(d, old, 2);
	load_assert_moving(d, l, "with both masters");
	quit_old(d, old, new, 2);
	load_assert_moving(d, l, "after the old master's exit");
	load_stop(l);
	load_assert_clean(d, l);
	stop_last(d, new, sock);
	load_free(l);
	hd_free(d);
}
END_TEST

/* The new master fails its start: the old one logs "upgrade failed" and
 * serves on alone, no second master is left, not one connection fails,
 * the unix socket stays; a later USR2 with a good file then works.
 * _i: bit 0 the mode; bit 1 clear: the file is broken (the new binary
 * fails reading it, before touching the sockets); set: a new listener's
 * port is taken (it fails after inheriting every socket). */
START_TEST(upgrade_fails)
{
	struct hd *d = hd_new();
	const char *mode = modes[_i & 1];
	char sock[256], where[300], extra[128];
	struct load *l;
	pid_t old, new;
	int port, taken = 0, tfd = -1;

	hd_conf(d, conf_fmt, mode, 0, "");
	hd_start(d);
	old = d->master;
	port = hd_port(d, "e");
	hd_path(d, "u.sock", sock, sizeof sock);
	snprintf(where, sizeof where, "unix:%s", sock);
	l = load_start(port, 3, sock, 1);
	load_assert_moving(d, l, "before USR2");

	if (_i & 2) {
		tfd = h_listen_tcp(&taken);
		ck_assert_msg(tfd >= 0, "listen: %s", strerror(errno));
		snprintf(extra, sizeof extra, "\n[listener x]\naddress = 127.0.0.1\nport = %d\n",
		    taken);
		hd_conf(d, conf_fmt, mode, port, extra);
	} else {
		hd_conf(d, "[daemon]\nworkers = many\n");
	}
	hd_kill(d, SIGUSR2);
	hd_assert(d, hd_wait_log(d, "upgrade failed", 1, H_WAIT_MS), "no 'upgrade failed' line");
	/* the failed one is reaped; only the old master's workers remain */
	hd_assert(d, wait_workers(old, 2, H_WAIT_MS), "a second master (or no workers) is left");
	hd_assert(d, hd_log_count(d, "master ready (pid ") == 1, "a second 'master ready'");
	hd_assert(d, !hd_log_has(d, "upgrade: new master"), "'new master serves' logged");
	hd_assert(d, pidfile_pid(d) == old, "the pidfile names %d, not the old master %d",
	    (int)pidfile_pid(d), (int)old);
	load_assert_moving(d, l, "after the failed upgrade");
	hd_assert(d, access(sock, F_OK) == 0, "the failed new master removed %s", sock);
	for (int i = 0; i < 4; i++)
		hd_assert(d, h_echo_at(where, 0), "no echo on %s after the failed upgrade", where);

	/* and once the file is good again, the upgrade goes through */
	hd_conf(d, conf_fmt, mode, port, "");
	hd_kill(d, SIGUSR2);
	new = upgrade_done(d, old, 2);
	quit_old(d, old, new, 2);
	load_assert_moving(d, l, "after the second upgrade");
	load_stop(l);
	load_assert_clean(d, l);
	hd_assert(d, access(sock, F_OK) == 0, "%s removed", sock);
	hd_assert(d, h_echo_at(where, 0), "no echo on %s from the new master", where);
	stop_last(d, new, sock);
	if (tfd >= 0)
		close(tfd);
	load_free(l);
	hd_free(d);
}
END_TEST

static Suite *
upgrade_suite(void)
{
	Suite *s = suite_create("upgrade");
	TCase *tc = tcase_create("upgrade");

	/* _i: 0 = mode shared, 1 = mode reuseport, unless said otherwise */
	tcase_add_loop_test(tc, upgrade_under_load, 0, 2);
	tcase_add_loop_test(tc, upgrade_by_cli, 0, 2);
	tcase_add_loop_test(tc, upgrade_fails, 0, 4);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(upgrade_suite());
}
