/* Integration: systemd. The notify protocol, with the test standing in for
 * the service manager (a datagram socket named by NOTIFY_SOCKET, SO_PASSCRED
 * so every datagram's sender pid is known), and socket activation through
 * Debian's real systemd-socket-activate (package systemd). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "harness.h"

static const char *const modes[] = { "shared", "reuseport" };

/* ---- a stand-in for systemd's notify socket ---- */

#define NS_MAX 512

struct nmsg {
	char text[1024];
	pid_t pid;              /* SCM_CREDENTIALS sender, -1 if none came */
	long long at_ms;        /* h_now_ms() at receipt */
	uint64_t at_usec;       /* CLOCK_MONOTONIC at receipt, µs */
};

struct ns {
	int fd;
	char path[160];         /* filesystem path, "" for abstract */
	char env[160];          /* the NOTIFY_SOCKET value */
	struct nmsg m[NS_MAX];  /* every datagram so far, in order */
	int n;
	int cur;                /* ns_wait() looks from here on */
};

static uint64_t
mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Bind the socket (in the daemon's dir, or abstract) and put it into
 * NOTIFY_SOCKET for the daemon spawned next. */
static struct ns *
ns_open(struct hd *d, int abstract)
{
	struct ns *s = calloc(1, sizeof *s);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	int one = 1;

	ck_assert(s != NULL);
	s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_msg(s->fd >= 0, "socket: %s", strerror(errno));
	ck_assert(setsockopt(s->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == 0);
	if (abstract) {
		snprintf(s->env, sizeof s->env, "@acceptd-test-%d-%lld", (int)getpid(), h_now_ms());
		/* a leading NUL, and the length (no trailing NUL) ends the name */
		memcpy(sun.sun_path, s->env, strlen(s->env));
		sun.sun_path[0] = '\0';
		len = offsetof(struct sockaddr_un, sun_path) + strlen(s->env);
	} else {
		hd_path(d, "notify", s->path, sizeof s->path);
		snprintf(s->env, sizeof s->env, "%s", s->path);
		ck_assert_msg(strlen(s->path) < sizeof sun.sun_path, "%s: too long", s->path);
		memcpy(sun.sun_path, s->path, strlen(s->path) + 1);
		len = sizeof sun;
	}
	ck_assert_msg(bind(s->fd, (struct sockaddr *)&sun, len) == 0, "bind %s: %s", s->env,
	    strerror(errno));
	ck_assert(setenv("NOTIFY_SOCKET", s->env, 1) == 0);
	return s;
}

static void
ns_close(struct ns *s)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	close(s->fd);
	if (s->path[0])
		unlink(s->path);
	free(s);
}

/* One datagram within ms, appended: 1, or 0 when none came. */
static int
ns_pull(struct ns *s, int ms)
{
	struct pollfd p = { .fd = s->fd, .events = POLLIN };
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} c;
	struct nmsg *m;
	struct iovec iov;
	struct msghdr mh = { 0 };
	struct cmsghdr *cm;
	ssize_t n;

	ck_assert_msg(s->n < NS_MAX, "more than %d datagrams", NS_MAX);
	if (poll(&p, 1, ms < 0 ? 0 : ms) <= 0)
		return 0;
	m = &s->m[s->n];
	iov.iov_base = m->text;
	iov.iov_len = sizeof m->text - 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = c.buf;
	mh.msg_controllen = sizeof c.buf;
	if ((n = recvmsg(s->fd, &mh, MSG_DONTWAIT)) < 0)
		return 0;
	m->text[n] = '\0';
	m->at_ms = h_now_ms();
	m->at_usec = mono_usec();
	m->pid = -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
			struct ucred uc;

			memcpy(&uc, CMSG_DATA(cm), sizeof uc);
			m->pid = uc.pid;
		}
	s->n++;
	return 1;
}

/* Everything that arrives within ms. */
static void
ns_drain(struct ns *s, int ms)
{
	long long end = h_now_ms() + ms;

	while (h_now_ms() < end)
		ns_pull(s, (int)(end - h_now_ms()));
}

/* The value of KEY= in a datagram (a line starting with key, which
 * includes the '='), or NULL. */
static const char *
nmsg_get(const struct nmsg *m, const char *key)
{
	size_t k = strlen(key);

	for (const char *p = m->text; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, key, k) == 0)
			return p + k;
	return NULL;
}

/* The next datagram (from the cursor on) with a line starting with line,
 * pulling more within ms: its index (the cursor moves past it), or -1. */
static int
ns_wait(struct ns *s, const char *line, int ms)
{
	long long end = h_now_ms() + ms;

	for (;;) {
		for (; s->cur < s->n; s->cur++)
			if (nmsg_get(&s->m[s->cur], line))
				return s->cur++;
		if (h_now_ms() >= end)
			return -1;
		ns_pull(s, (int)(end - h_now_ms()));
	}
}

/* Datagrams with a line starting with line, from index `from` on. */
static int
ns_count(const struct ns *s, const char *line, int from)
{
	int n = 0;

	for (int i = from; i < s->n; i++)
		n += nmsg_get(&s->m[i], line) != NULL;
	return n;
}

static void
ns_dump(const struct ns *s)
{
	long long t0 = s->n ? s->m[0].at_ms : 0;

	fprintf(stderr, "---- %d datagrams on NOTIFY_SOCKET=%s ----\n", s->n, s->env);
	for (int i = 0; i < s->n; i++) {
		char one[1024];

		snprintf(one, sizeof one, "%s", s->m[i].text);
		for (char *p = one; *p; p++)
			if (*p == '\n')
				*p = '|';
		fprintf(stderr, "+%5lld ms pid %d: %s\n", s->m[i].at_ms - t0, (int)s->m[i].pid, one);
	}
}

#define ns_assert(d, s, cond, ...) do { \
	if (!(cond)) { ns_dump(s); hd_dump(d); ck_abort_msg(__VA_ARGS__); } \
} while (0)

/* Every datagram came from the master: never a worker, nobody else. */
static void
ns_assert_from(struct hd *d, const struct ns *s, pid_t master)
{
	for (int i = 0; i < s->n; i++)
		ns_assert(d, s, s->m[i].pid == master,
		    "datagram %d (\"%s\") came from pid %d, the master is %d", i, s->m[i].text,
		    (int)s->m[i].pid, (int)master);
}

/* Start the daemon under NOTIFY_SOCKET and wait for READY=1 (and the log's
 * "master ready" line, for d->master): the index of READY=1. */
static int
ns_start(struct hd *d, struct ns *s)
{
	int r;

	hd_spawn(d, "-f", "-c", d->conf, (char *)NULL);
	r = ns_wait(s, "READY=1", H_WAIT_MS);
	ns_assert(d, s, r >= 0, "no READY=1 within %d ms", H_WAIT_MS);
	/* "master ready" is logged before READY=1 is sent */
	ns_assert(d, s, hd_wait_ready(d, 0), "READY=1 came before the log's 'master ready'");
	ns_assert(d, s, d->master == d->child, "master pid %d, spawned %d", (int)d->master,
	    (int)d->child);
	return r;
}

/* One echo exchange that must complete within ms. */
static int
quick_echo(int port, int ms)
{
	char buf[64];
	int fd = h_connect("127.0.0.1", port), ok;

	if (fd < 0)
		return 0;
	ok = h_send_str(fd, "ready?\n") == 0 && h_recv_exact(fd, buf, 7, ms) == 7 &&
	    memcmp(buf, "ready?\n", 7) == 0;
	close(fd);
	return ok;
}

/* READY=1 once the workers accept (a connection made right after it is
 * served at once, on every reuseport socket), a STATUS= line, READY=1 only
 * once, STOPPING=1 on TERM; every datagram from the master. */
START_TEST(notify_ready_status_stopping)
{
	struct hd *d = hd_new();
	struct ns *s = ns_open(d, 0);
	pid_t kids[16];
	int port, st, stop;

	hd_conf(d, "[daemon]\nworkers = 2\nmode = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	ns_start(d, s);
	port = hd_port(d, "e");
	ns_assert(d, s, port > 0, "no listening line before READY=1");
	/* right after READY=1: served without waiting for a worker to start,
	 * whichever reuseport socket the kernel picks */
	for (int i = 0; i < 8; i++)
		ns_assert(d, s, quick_echo(port, 1000), "echo %d right after READY=1 failed", i);
	ns_assert(d, s, h_children(d->master, kids, 16) == 2, "not 2 workers at READY=1");
	st = ns_wait(s, "STATUS=", H_WAIT_MS);
	ns_assert(d, s, st >= 0, "no STATUS= line");
	ns_assert(d, s, strstr(s->m[st].text, "2 workers") && strstr(s->m[st].text, "1 listeners"),
	    "STATUS= does not say '2 workers, 1 listeners': %s", s->m[st].text);
	ns_drain(s, H_QUIET_MS);
	ns_assert(d, s, ns_count(s, "READY=1", 0) == 1, "READY=1 sent %d times at start-up",
	    ns_count(s, "READY=1", 0));
	ns_assert(d, s, ns_count(s, "STOPPING=1", 0) == 0, "STOPPING=1 before TERM");

	hd_kill(d, SIGTERM);
	stop = ns_wait(s, "STOPPING=1", H_WAIT_MS);
	ns_assert(d, s, stop >= 0, "no STOPPING=1 after TERM");
	hd_assert_exit(d, 0, H_WAIT_MS);
	ns_drain(s, 50);
	ns_assert(d, s, ns_count(s, "READY=1", stop) == 0, "READY=1 after STOPPING=1");
	ns_assert_from(d, s, d->master);
	ns_close(s);
	hd_free(d);
}
END_TEST

/* WATCHDOG_USEC=400000: WATCHDOG=1 every 200 ms from the master. With
 * WATCHDOG_PID naming another process, none. */
START_TEST(notify_watchdog)
{
	struct hd *d = hd_new();
	struct ns *s = ns_open(d, 0);
	long long t0, prev = 0, gap, maxgap = 0;
	int n = 0, r;

	setenv("WATCHDOG_USEC", "400000", 1);
	if (_i == 1)
		setenv("WATCHDOG_PID", "1", 1);
	hd_conf(d, "[daemon]\nworkers = 2\nmode = reuseport\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n");
	r = ns_start(d, s);
	t0 = s->m[r].at_ms;
	ns_drain(s, 1500);
	for (int i = 0; i < s->n; i++) {
		if (!nmsg_get(&s->m[i], "WATCHDOG=1") || s->m[i].at_ms < t0)
			continue;
		n++;
		if (prev) {
			gap = s->m[i].at_ms - prev;
			maxgap = gap > maxgap ? gap : maxgap;
		}
		prev = s->m[i].at_ms;
	}
	if (_i == 1) {
		ns_assert(d, s, ns_count(s, "WATCHDOG=1", 0) == 0,
		    "WATCHDOG=1 sent although WATCHDOG_PID names another process");
	} else {
		ns_assert(d, s, n >= 4, "%d WATCHDOG=1 in 1.5 s, want >= 4 (every 200 ms)", n);
		ns_assert(d, s, n <= 12, "%d WATCHDOG=1 in 1.5 s, want about 7", n);
		/* Gaps are measured where the datagrams are read, so a busy
		 * machine stretches one and shortens the next (libev's repeat
		 * timer also catches up): only a gross stall counts. */
		ns_assert(d, s, maxgap < 700, "WATCHDOG=1 %lld ms apart (WATCHDOG_USEC 400 ms)",
		    maxgap);
	}
	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	ns_drain(s, 50);
	ns_assert_from(d, s, d->master);
	ns_close(s);
	hd_free(d);
}
END_TEST

/* HUP: RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC, taken between the
 * HUP and the datagram's arrival), then READY=1 once the new workers
 * accept. A broken reload: RELOADING=1 and then READY=1 all the same, so
 * systemd does not stay in "reloading". */
START_TEST(notify_reload)
{
	struct hd *d = hd_new();
	struct ns *s = ns_open(d, 0);
	int port, rl, rd;
	uint64_t before, mono;
	const char *v;

	hd_conf(d, "[daemon]\nworkers = 2\nmode = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	ns_start(d, s);
	port = hd_port(d, "e");
	ns_assert(d, s, ns_wait(s, "STATUS=", H_WAIT_MS) >= 0, "no STATUS= line");
	ns_drain(s, 50);

	for (int round = 0; round < 2; round++) {
		if (round == 1)
			hd_conf(d, "[daemon]\nworkers = many\n");
		s->cur = s->n;
		before = mono_usec();
		hd_kill(d, SIGHUP);
		rl = ns_wait(s, "RELOADING=1", H_WAIT_MS);
		ns_assert(d, s, rl >= 0, "reload %d: no RELOADING=1 after HUP", round);
		v = nmsg_get(&s->m[rl], "MONOTONIC_USEC=");
		ns_assert(d, s, v != NULL, "RELOADING=1 without MONOTONIC_USEC: %s", s->m[rl].text);
		mono = strtoull(v, NULL, 10);
		ns_assert(d, s, mono >= before && mono <= s->m[rl].at_usec,
		    "MONOTONIC_USEC=%" PRIu64 " not between the HUP (%" PRIu64 ") and its arrival (%"
		    PRIu64 ")", mono, before, s->m[rl].at_usec);
		rd = ns_wait(s, "READY=1", H_WAIT_MS);
		ns_assert(d, s, rd > rl, "reload %d: no READY=1 after RELOADING=1", round);
		if (round == 0)
			ns_assert(d, s, hd_log_has(d, "reload done"),
			    "READY=1 before the log's 'reload done'");
		else
			ns_assert(d, s, hd_log_has(d, "reload failed"), "no 'reload failed' line");
		ns_assert(d, s, quick_echo(port, 1000), "reload %d: no echo after READY=1", round);
	}
	hd_kill(d, SIGTERM);
	ns_assert(d, s, ns_wait(s, "STOPPING=1", H_WAIT_MS) >= 0, "no STOPPING=1 after TERM");
	hd_assert_exit(d, 0, H_WAIT_MS);
	ns_drain(s, 50);
	ns_assert_from(d, s, d->master);
	ns_close(s);
	hd_free(d);
}
END_TEST

/* NOTIFY_SOCKET=@name: the abstract namespace. */
START_TEST(notify_abstract)
{
	struct hd *d = hd_new();
	struct ns *s = ns_open(d, 1);

	hd_conf(d, "[daemon]\nworkers = 1\n\n[listener e]\naddress = 127.0.0.1\nport = 0\n");
	ns_start(d, s);
	ns_assert(d, s, h_echo_at("127.0.0.1", hd_port(d, "e")), "no echo");
	hd_kill(d, SIGTERM);
	ns_assert(d, s, ns_wait(s, "STOPPING=1", H_WAIT_MS) >= 0, "no STOPPING=1 after TERM");
	hd_assert_exit(d, 0, H_WAIT_MS);
	ns_drain(s, 50);
	ns_assert_from(d, s, d->master);
	ns_close(s);
	hd_free(d);
}
END_TEST

/* The worker's environment has no NOTIFY_SOCKET / WATCHDOG_*: 1 if clean. */
static int
env_clean(pid_t pid)
{
	char path[64], buf[65536];
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 1;       /* gone: nothing to see */
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return 1;
	/* entries are NUL-separated: each starts after a NUL or at 0 */
	for (ssize_t i = 0; i < n; i += strlen(buf + i) + 1) {
		buf[n] = '\0';
		if (strncmp(buf + i, "NOTIFY_SOCKET=", 14) == 0 ||
		    strncmp(buf + i, "WATCHDOG_", 9) == 0)
			return 0;
	}
	return 1;
}

/* Workers never speak for the service: through start-up, serving, TTIN, a
 * killed and respawned worker and a reload, every datagram comes from the
 * master, and no worker has NOTIFY_SOCKET in its environment. */
START_TEST(notify_only_master)
{
	struct hd *d = hd_new();
	struct ns *s = ns_open(d, 0);
	pid_t kids[16];
	int port, n;

	setenv("WATCHDOG_USEC", "400000", 1);
	hd_conf(d, "[daemon]\nworkers = 2\nmode = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	ns_start(d, s);
	port = hd_port(d, "e");
	for (int i = 0; i < 6; i++)
		ns_assert(d, s, h_echo_at("127.0.0.1", port), "no echo");
	n = h_children(d->master, kids, 16);
	for (int i = 0; i < n; i++)
		ns_assert(d, s, env_clean(kids[i]), "worker pid %d has NOTIFY_SOCKET or WATCHDOG_*",
		    (int)kids[i]);
	hd_kill(d, SIGTTIN);
	ns_assert(d, s, hd_wait_log(d, "worker 2 started", 1, H_WAIT_MS), "TTIN: no worker 2");
	kill(hd_worker(d, 0), SIGKILL);
	ns_assert(d, s, hd_wait_log(d, "worker 0 started", 2, H_WAIT_MS), "worker 0 not respawned");
	s->cur = s->n;
	hd_kill(d, SIGHUP);
	ns_assert(d, s, ns_wait(s, "READY=1", H_WAIT_MS) >= 0, "no READY=1 after the reload");
	for (int i = 0; i < 6; i++)
		ns_assert(d, s, h_echo_at("127.0.0.1", port), "no echo after the reload");
	n = h_children(d->master, kids, 16);
	for (int i = 0; i < n; i++)
		ns_assert(d, s, env_clean(kids[i]), "worker pid %d has NOTIFY_SOCKET or WATCHDOG_*",
		    (int)kids[i]);
	ns_drain(s, 300);
	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	ns_drain(s, 50);
	ns_assert(d, s, s->n >= 3, "only %d datagrams", s->n);
	ns_assert_from(d, s, d->master);
	ns_close(s);
	hd_free(d);
}
END_TEST

/* Binary upgrade under NOTIFY_SOCKET and WATCHDOG_USEC: the old master
 * hands the service over with MAINPID=NEW once the new one serves; the new
 * one sends READY=1 and keeps the watchdog fed after the old one is gone
 * (systemd would kill the service otherwise); the old one, told QUIT after
 * the hand-over, does not say STOPPING=1 (the service is not stopping);
 * nothing ever comes from a worker. */
START_TEST(notify_upgrade)
{
	struct hd *d = hd_new();
	struct ns *s = ns_open(d, 0);
	char mark[64], *log, *p;
	pid_t old, new = -1;
	int mp, wd = 0, quit, stopping;

	setenv("WATCHDOG_USEC", "400000", 1);
	hd_conf(d, "[daemon]\nworkers = 2\nmode = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", modes[_i]);
	ns_start(d, s);
	old = d->master;
	hd_kill(d, SIGUSR2);
	ns_assert(d, s, hd_wait_log(d, "upgrade: new master (pid ", 1, H_WAIT_MS),
	    "no 'upgrade: new master (pid NEW) serves'");
	log = hd_log(d);
	if ((p = strstr(log, "upgrade: new master (pid ")))
		new = atoi(p + strlen("upgrade: new master (pid "));
	free(log);
	ns_assert(d, s, new > 0 && new != old, "new master pid %d", (int)new);
	snprintf(mark, sizeof mark, "MAINPID=%d", (int)new);
	mp = ns_wait(s, mark, H_WAIT_MS);
	ns_assert(d, s, mp >= 0, "no %s after the upgrade", mark);
	ns_assert(d, s, s->m[mp].pid == old, "%s came from pid %d, not the old master %d", mark,
	    (int)s->m[mp].pid, (int)old);
	ns_drain(s, 100);
	for (int i = 0; i < s->n; i++)
		if (nmsg_get(&s->m[i], "READY=1") && s->m[i].pid == new)
			wd = 1;
	ns_assert(d, s, wd, "no READY=1 from the new master %d", (int)new);
	quit = s->n;
	hd_kill(d, SIGQUIT);
	hd_assert_exit(d, 0, H_WAIT_MS);
	d->master = new;
	ns_drain(s, 1200);
	wd = stopping = 0;
	for (int i = quit; i < s->n; i++) {
		stopping += nmsg_get(&s->m[i], "STOPPING=1") && s->m[i].pid == old;
		wd += nmsg_get(&s->m[i], "WATCHDOG=1") && s->m[i].pid == new;
	}
	ns_assert(d, s, wd >= 3 && !stopping, "after the hand-over and QUIT to the old master: "
	    "%d WATCHDOG=1 from the new master in 1.2 s (want >= 3 at WATCHDOG_USEC 400 ms, or "
	    "systemd kills the service); STOPPING=1 from the old master %d times (want 0: the "
	    "service is not stopping)", wd, stopping);
	for (int i = 0; i < s->n; i++)
		ns_assert(d, s, s->m[i].pid == old || s->m[i].pid == new,
		    "datagram %d (\"%s\") from pid %d, neither master (%d, %d)", i, s->m[i].text,
		    (int)s->m[i].pid, (int)old, (int)new);
	hd_kill(d, SIGTERM);
	ns_assert(d, s, ns_wait(s, "STOPPING=1", H_WAIT_MS) >= 0, "no STOPPING=1 from the new master");
	ns_assert(d, s, h_wait_gone(new, H_WAIT_MS), "the new master did not exit on TERM");
	ns_close(s);
	hd_free(d);
}
END_TEST

/* ---- socket activation through systemd-socket-activate ---- */

#define SSA "/usr/bin/systemd-socket-activate"
#define SSA_MAX 80

/* systemd-socket-activate -l 127.0.0.1:port... [--fdname=NAME...] acceptd -f
 * -c CONF: it listens, waits for the first connection, then execs acceptd in
 * its own place (LISTEN_PID = the same pid). fdname names every socket. */
static void
ssa_spawn_many(struct hd *d, const int *ports, int nports, const char *fdname)
{
	static const char *const pass[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" };
	char listen[SSA_MAX][32], names[SSA_MAX * 16], *argv[2 * SSA_MAX + 16];
	size_t off = 0;
	int n = 0;

	ck_assert_msg(access(SSA, X_OK) == 0, "%s: %s (apt-get install systemd)", SSA,
	    strerror(errno));
	ck_assert(nports > 0 && nports <= SSA_MAX);
	argv[n++] = SSA;
	for (int i = 0; i < nports; i++) {
		snprintf(listen[i], sizeof listen[i], "127.0.0.1:%d", ports[i]);
		argv[n++] = "-l";
		argv[n++] = listen[i];
	}
	if (fdname) {
		off = snprintf(names, sizeof names, "--fdname=%s", fdname);
		for (int i = 1; i < nports; i++)
			off += snprintf(names + off, sizeof names - off, ":%s", fdname);
		ck_assert(off < sizeof names);
		argv[n++] = names;
	}
	/* it hands the program only LISTEN_* and what -E names */
	for (size_t i = 0; i < sizeof pass / sizeof *pass; i++)
		if (getenv(pass[i])) {
			argv[n++] = "-E";
			argv[n++] = (char *)pass[i];
		}
	argv[n++] = (char *)h_acceptd();
	argv[n++] = "-f";
	argv[n++] = "-c";
	argv[n++] = d->conf;
	argv[n] = NULL;
	hd_spawn_argv(d, argv);
	hd_assert(d, hd_wait_log(d, "Listening on", nports, H_WAIT_MS),
	    "systemd-socket-activate does not listen");
}

static void
ssa_spawn(struct hd *d, int port, const char *fdname)
{
	ssa_spawn_many(d, &port, 1, fdname);
}

/* Two different free ports. */
static void
two_ports(int *a, int *b)
{
	*a = h_free_port();
	do
		*b = h_free_port();
	while (*b == *a);
}

/* A connection opened (and its data sent) before the daemon runs. */
static int
queued_conn(struct hd *d, int port, const char *msg)
{
	int fd = h_connect("127.0.0.1", port);

	hd_assert(d, fd >= 0, "connect to systemd-socket-activate: %s", strerror(errno));
	hd_assert(d, h_send_str(fd, msg) == 0, "send: %s", strerror(errno));
	return fd;
}

static void
assert_echoed(struct hd *d, int fd, const char *msg)
{
	char buf[256];
	size_t n = strlen(msg);

	hd_assert(d, h_recv_exact(fd, buf, n, H_WAIT_MS) == (ssize_t)n && memcmp(buf, msg, n) == 0,
	    "the connection queued before the daemon started got no echo of %s", msg);
}

/* Reload keeps the inherited socket: still served after "reload done". */
static void
reload_keeps(struct hd *d, int port, const char *name)
{
	int n = hd_log_count(d, "reload done");

	hd_kill(d, SIGHUP);
	hd_assert(d, hd_wait_log(d, "reload done", n + 1, H_WAIT_MS), "no 'reload done'");
	hd_assert(d, hd_log_has(d, "kept: %s", name), "the reload did not keep listener %s", name);
	for (int i = 0; i < 6; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "no echo on the inherited socket after HUP");
}

/* By name: --fdname=web serves [listener web] although its configured
 * address and port are elsewhere; the master binds nothing of its own. */
START_TEST(activate_by_name)
{
	struct hd *d = hd_new();
	int port, other, fd;

	two_ports(&port, &other);
	hd_conf(d, "[daemon]\nworkers = 2\nmode = %s\n\n"
	    "[listener web]\naddress = 127.0.0.1\nport = %d\n", modes[_i], other);
	ssa_spawn(d, port, "web");
	fd = queued_conn(d, port, "first\n");
	hd_assert(d, hd_wait_ready(d, H_WAIT_MS), "acceptd did not get ready");
	assert_echoed(d, fd, "first\n");
	close(fd);
	hd_assert(d, d->master == d->child, "the master (%d) is not the pid systemd-socket-activate "
	    "had (%d)", (int)d->master, (int)d->child);
	hd_assert(d, hd_log_has(d, "listening: web 127.0.0.1:%d", port),
	    "no 'listening: web 127.0.0.1:%d'", port);
	hd_assert(d, !hd_log_has(d, "127.0.0.1:%d", other), "the config's port %d is in the log",
	    other);
	hd_assert(d, h_port_bindable(other), "the master bound the config's port %d", other);
	if (_i == 1)
		hd_assert(d, hd_log_has(d, "shared by all workers"),
		    "reuseport with an inherited socket without SO_REUSEPORT: no "
		    "'shared by all workers'");
	else
		hd_assert(d, !hd_log_has(d, "shared by all workers"), "'shared by all workers' in "
		    "shared mode");
	for (int i = 0; i < 6; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "no echo on the inherited socket");
	reload_keeps(d, port, "web");
	hd_assert(d, h_port_bindable(other), "the reload bound the config's port %d", other);
	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_free(d);
}
END_TEST

/* More sockets under one name than the master's first look at them
 * held (64): every one is the listener's, the last one too. */
START_TEST(activate_by_name_many)
{
	struct hd *d = hd_new();
	int ports[71], fd;

	for (int i = 0; i < 71; i++) {
		int dup;

		do {
			ports[i] = h_free_port();
			dup = 0;
			for (int k = 0; k < i; k++)
				dup |= ports[k] == ports[i];
		} while (dup);
	}
	hd_conf(d, "[daemon]\nworkers = 1\n\n[listener web]\naddress = 127.0.0.1\nport = %d\n",
	    ports[70]);
	ssa_spawn_many(d, ports, 70, "web");
	fd = queued_conn(d, ports[69], "last\n");
	hd_assert(d, hd_wait_ready(d, H_WAIT_MS), "acceptd did not get ready");
	assert_echoed(d, fd, "last\n");
	close(fd);
	hd_assert(d, hd_log_has(d, "listening: web 127.0.0.1:%d", ports[69]),
	    "no 'listening: web 127.0.0.1:%d'", ports[69]);
	for (int i = 0; i < 70; i += 23)
		hd_assert(d, h_echo_at("127.0.0.1", ports[i]), "no echo on socket %d", i);
	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_free(d);
}
END_TEST

/* The backlog of a listening socket fd of process pid (its copy, through
 * pidfd_getfd: root, or the same user), -1 if unknown. For a listening
 * socket TCP_INFO's tcpi_sacked is the backlog listen() was given. */
static long
listen_backlog_of(pid_t pid, int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0), copy;
	long rc = -1;

	if (pfd < 0)
		return -1;
	copy = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
	close(pfd);
	if (copy < 0)
		return -1;
	if (getsockopt(copy, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
		rc = ti.tcpi_sacked;
	close(copy);
	return rc;
}

/* Inherited sockets keep the options the unit gave them, at start and
 * through a reload: the [listener] keys are for the master's own sockets. */
START_TEST(activate_keeps_unit_options)
{
	struct hd *d = hd_new();
	int port, other, fd;
	long b0, b1;

	two_ports(&port, &other);
	hd_conf(d, "[daemon]\nworkers = 1\n\n[listener web]\naddress = 127.0.0.1\nport = %d\n"
	    "backlog = 17\n", other);
	ssa_spawn(d, port, "web");
	fd = queued_conn(d, port, "first\n");
	hd_assert(d, hd_wait_ready(d, H_WAIT_MS), "acceptd did not get ready");
	assert_echoed(d, fd, "first\n");
	close(fd);
	/* systemd-socket-activate's fd 3 is the master's fd 3 (LISTEN_FDS) */
	b0 = listen_backlog_of(d->master, 3);
	hd_assert(d, b0 > 0 && b0 != 17, "the inherited socket's backlog is %ld at start", b0);
	reload_keeps(d, port, "web");
	b1 = listen_backlog_of(d->master, 3);
	hd_assert(d, b1 == b0, "a reload changed the inherited socket's backlog: %ld -> %ld", b0,
	    b1);
	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_free(d);
}
END_TEST

/* By address: no fdname, the listener's address and port are the
 * inherited socket's; another listener the master binds itself. */
START_TEST(activate_by_address)
{
	struct hd *d = hd_new();
	int port, fd, own;

	port = h_free_port();
	hd_conf(d, "[daemon]\nworkers = 2\nmode = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = %d\n\n"
	    "[listener own]\naddress = 127.0.0.1\nport = 0\n", modes[_i], port);
	ssa_spawn(d, port, NULL);
	fd = queued_conn(d, port, "first\n");
	hd_assert(d, hd_wait_ready(d, H_WAIT_MS), "acceptd did not get ready");
	assert_echoed(d, fd, "first\n");
	close(fd);
	hd_assert(d, hd_log_has(d, "listening: e 127.0.0.1:%d", port), "no 'listening: e'");
	own = hd_port(d, "own");
	hd_assert(d, own > 0 && own != port, "listener own: port %d", own);
	if (_i == 1)
		hd_assert(d, hd_log_has(d, "listener e: inherited socket 3") &&
		    hd_log_has(d, "shared by all workers"),
		    "reuseport with an inherited socket without SO_REUSEPORT: no "
		    "'listener e: inherited socket 3 ... shared by all workers'");
	for (int i = 0; i < 6; i++) {
		hd_assert(d, h_echo_at("127.0.0.1", port), "no echo on the inherited socket");
		hd_assert(d, h_echo_at("127.0.0.1", own), "no echo on the master's own socket");
	}
	reload_keeps(d, port, "e");
	hd_assert(d, h_echo_at("127.0.0.1", own), "no echo on the master's own socket after HUP");
	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_free(d);
}
END_TEST

/* An inherited socket that no listener takes (neither by name nor by
 * address) is a start-up error naming it; nothing is bound. */
START_TEST(activate_unmatched)
{
	struct hd *d = hd_new();
	int port, other, fd;

	two_ports(&port, &other);
	hd_conf(d, "[daemon]\nworkers = 2\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = %d\n", other);
	ssa_spawn(d, port, _i ? "nope" : NULL);
	fd = queued_conn(d, port, "first\n");
	hd_assert_exit(d, 1, H_WAIT_MS);
	hd_assert(d, hd_log_has(d, "inherited socket 3") && hd_log_has(d, "matches no listener"),
	    "the error does not say 'inherited socket 3 ... matches no listener'");
	if (_i)
		hd_assert(d, hd_log_has(d, "nope"), "the error does not name the fdname 'nope'");
	hd_assert(d, !hd_log_has(d, "master ready"), "it got ready");
	hd_assert(d, h_port_bindable(other), "port %d was bound", other);
	close(fd);
	hd_free(d);
}
END_TEST

/* Several connections queued before the daemon binds or accepts anything
 * (the first makes systemd-socket-activate exec it): every one is served. */
START_TEST(activate_queued_served)
{
	struct hd *d = hd_new();
	char msg[8][32];
	int port, fd[8];

	port = h_free_port();
	hd_conf(d, "[daemon]\nworkers = 2\nmode = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = %d\n", modes[_i], port);
	ssa_spawn(d, port, NULL);
	for (int i = 0; i < 8; i++) {
		snprintf(msg[i], sizeof msg[i], "queued %d\n", i);
		fd[i] = queued_conn(d, port, msg[i]);
	}
	hd_assert(d, hd_wait_ready(d, H_WAIT_MS), "acceptd did not get ready");
	for (int i = 0; i < 8; i++) {
		assert_echoed(d, fd[i], msg[i]);
		close(fd[i]);
	}
	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_free(d);
}
END_TEST

static Suite *
systemd_suite(void)
{
	Suite *s = suite_create("systemd");
	TCase *tn = tcase_create("notify"), *ta = tcase_create("activate");

	/* _i: 0 = mode shared, 1 = mode reuseport, unless said otherwise */
	tcase_add_loop_test(tn, notify_ready_status_stopping, 0, 2);
	tcase_add_loop_test(tn, notify_watchdog, 0, 2);       /* 1: WATCHDOG_PID elsewhere */
	tcase_add_loop_test(tn, notify_reload, 0, 2);
	tcase_add_test(tn, notify_abstract);
	tcase_add_loop_test(tn, notify_only_master, 0, 2);
	tcase_add_loop_test(tn, notify_upgrade, 0, 2);
	suite_add_tcase(s, tn);
	tcase_add_loop_test(ta, activate_by_name, 0, 2);
	tcase_add_test(ta, activate_by_name_many);
	tcase_add_test(ta, activate_keeps_unit_options);
	tcase_add_loop_test(ta, activate_by_address, 0, 2);
	tcase_add_loop_test(ta, activate_unmatched, 0, 2);    /* 1: --fdname=nope */
	tcase_add_loop_test(ta, activate_queued_served, 0, 2);
	suite_add_tcase(s, ta);
	return s;
}

int
main(void)
{
	return h_main(systemd_suite());
}
