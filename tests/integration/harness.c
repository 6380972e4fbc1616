/* harness: see harness.h. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "harness.h"

#define H_MAX_ARGS 16
#define H_MAX_DAEMONS 32
#define H_MAX_PIDS 256

/* The base dir every temp dir of this test binary goes under (set by
 * h_main before the tests fork, so they all inherit it). */
static char h_base[128];
/* The daemons of this (test) process, to hand a reaped status to its owner. */
static struct hd *h_live[H_MAX_DAEMONS];

long long
h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void
h_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

const char *
h_acceptd(void)
{
	const char *p = getenv("ACCEPTD");

	return p && *p ? p : "build/acceptd";
}

/* ---- files ---- */

static char *
h_read_file(const char *path)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	/* no ck_assert here: h_main's sweep runs outside any test */
	if (!buf)
		abort();
	buf[0] = '\0';
	if (fd < 0)
		return buf;
	for (;;) {
		if (cap - len < 2048) {
			char *nb = realloc(buf, cap *= 2);

			if (!nb)
				abort();
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	/* a NUL written into the log would hide the rest from strstr */
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return buf;
}

static int
h_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void
h_rm_rf(const char *path)
{
	if (path[0])
		nftw(path, h_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- processes ---- */

/* The state letter and ppid from /proc/PID/stat; 0 if there is none. */
static int
h_stat(pid_t pid, char *state, pid_t *ppid)
{
	char path[64], *s, *p;
	int ok = 0;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	s = h_read_file(path);
	/* "pid (comm) S ppid ...": comm may hold anything, so from the last ')' */
	if ((p = strrchr(s, ')')) && p[1] == ' ' && p[2]) {
		int pp = 0;

		*state = p[2];
		if (sscanf(p + 3, " %d", &pp) == 1) {
			*ppid = pp;
			ok = 1;
		}
	}
	free(s);
	return ok;
}

int
h_alive(pid_t pid)
{
	char st;
	pid_t pp;

	if (pid <= 0)
		return 0;
	if (!h_stat(pid, &st, &pp))
		return 0;       /* no /proc entry: gone */
	return st != 'Z' && st != 'X' && st != 'x';
}

pid_t
h_ppid(pid_t pid)
{
	char st;
	pid_t pp;

	return h_stat(pid, &st, &pp) ? pp : -1;
}

int
h_children(pid_t ppid, pid_t *out, int max)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!dir)
		return 0;
	while ((e = readdir(dir))) {
		char st;
		pid_t pp, pid;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = atoi(e->d_name);
		if (h_stat(pid, &st, &pp) && pp == ppid && st != 'Z' && st != 'X') {
			if (n < max)
				out[n] = pid;
			n++;
		}
	}
	closedir(dir);
	return n < max ? n : max;
}

int
h_cmdline(pid_t pid, char *buf, size_t n)
{
	char path[64];
	ssize_t len;
	int fd;

	if (n == 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	len = read(fd, buf, n - 1);
	close(fd);
	if (len < 0)
		return -1;
	while (len > 0 && buf[len - 1] == '\0')
		len--;
	for (ssize_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[len] = '\0';
	return 0;
}

int
h_proc_status(pid_t pid, const char *field, char *buf, size_t n)
{
	char path[64], *s, *p, *end;
	size_t flen = strlen(field);
	int rc = -1;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	s = h_read_file(path);
	for (p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, field, flen) != 0 || p[flen] != ':')
			continue;
		p += flen + 1;
		p += strspn(p, " \t");
		end = p + strcspn(p, "\n");
		snprintf(buf, n, "%.*s", (int)(end - p), p);
		rc = 0;
		break;
	}
	free(s);
	return rc;
}

/* A status reaped by someone else's waitpid(-1) goes to its owner. */
static void
h_store_status(pid_t pid, int st)
{
	for (int i = 0; i < H_MAX_DAEMONS; i++)
		if (h_live[i] && h_live[i]->child == pid && !h_live[i]->reaped) {
			h_live[i]->reaped = 1;
			h_live[i]->status = st;
		}
}

int
h_wait_exit_pid(pid_t pid, int ms, int *status)
{
	long long end = h_now_ms() + ms;
	int st;

	if (status)
		*status = -1;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			h_store_status(pid, st);
			if (status)
				*status = st;
			return 1;
		}
		if (r < 0 && !h_alive(pid))
			return 1;       /* not ours (or reaped already): gone */
		if (h_now_ms() >= end)
			return 0;
		h_sleep_ms(10);
	}
}

int
h_wait_gone(pid_t pid, int ms)
{
	return h_wait_exit_pid(pid, ms, NULL);
}

/* Kill pid if it is still ours to kill, never a recycled pid: a child of
 * this process (the subreaper gets every orphan below it), a child of the
 * daemon's master, or, where there is no subreaper, an orphaned acceptd. */
static void
h_kill_safe(pid_t pid, pid_t master)
{
	char cmd[256];
	pid_t pp;

	if (pid <= 1 || pid == getpid() || !h_alive(pid))
		return;
	pp = h_ppid(pid);
	if (pp == getpid() || (master > 1 && pp == master) ||
	    (pp == 1 && h_cmdline(pid, cmd, sizeof cmd) == 0 && strstr(cmd, "acceptd")))
		kill(pid, SIGKILL);
}

/* Every pid a daemon's log or pidfile names. */
static int
h_pids_of_dir(const char *dir, pid_t *out, int max)
{
	static const char *const marks[] = { "(pid ", "acceptd[", "master ready (pid " };
	char path[256], *log, *p;
	int n = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/log", dir);
	log = h_read_file(path);
	for (size_t m = 0; m < sizeof marks / sizeof *marks; m++)
		for (p = log; (p = strstr(p, marks[m])); ) {
			p += strlen(marks[m]);
			if (n < max && isdigit((unsigned char)*p))
				out[n++] = atoi(p);
		}
	free(log);
	snprintf(path, sizeof path, "%s/acceptd.pid", dir);
	if ((f = fopen(path, "re"))) {
		int pid;

		if (n < max && fscanf(f, "%d", &pid) == 1)
			out[n++] = pid;
		fclose(f);
	}
	return n;
}

/* Reap every exited child, handing statuses to their owners. */
static void
h_reap_all(void)
{
	pid_t r;
	int st;

	while ((r = waitpid(-1, &st, WNOHANG)) > 0)
		h_store_status(r, st);
}

/* ---- the daemon ---- */

struct hd *
hd_new(void)
{
	struct hd *d = calloc(1, sizeof *d);

	ck_assert(d != NULL);
	/* Orphans (workers of a killed master, a daemonized master) become
	 * children of the test process: they can be reaped and killed. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	snprintf(d->dir, sizeof d->dir, "%s/d.XXXXXX", h_base[0] ? h_base : "/tmp");
	if (!h_base[0])
		snprintf(d->dir, sizeof d->dir, "/tmp/acceptd-it.XXXXXX");
	ck_assert_msg(mkdtemp(d->dir) != NULL, "mkdtemp %s: %s", d->dir, strerror(errno));
	snprintf(d->conf, sizeof d->conf, "%s/acceptd.conf", d->dir);
	snprintf(d->log, sizeof d->log, "%s/log", d->dir);
	d->child = d->master = -1;
	for (int i = 0; i < H_MAX_DAEMONS; i++)
		if (!h_live[i]) {
			h_live[i] = d;
			break;
		}
	return d;
}

void
hd_path(const struct hd *d, const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", d->dir, name);
}

static void
hd_vconf(struct hd *d, const char *fmt, va_list ap)
{
	char text[8192], out[16384], *p, *q;
	size_t o = 0;
	FILE *f;

	vsnprintf(text, sizeof text, fmt, ap);
	for (p = text; (q = strstr(p, "@DIR@")); p = q + 5) {
		o += snprintf(out + o, sizeof out - o, "%.*s%s", (int)(q - p), p, d->dir);
		ck_assert(o < sizeof out);
	}
	o += snprintf(out + o, sizeof out - o, "%s", p);
	ck_assert(o < sizeof out);
	ck_assert_msg((f = fopen(d->conf, "we")) != NULL, "%s: %s", d->conf, strerror(errno));
	fputs(out, f);
	ck_assert(fclose(f) == 0);
}

void
hd_conf(struct hd *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hd_vconf(d, fmt, ap);
	va_end(ap);
}

/* Fork and exec $ACCEPTD argv, stdout to out, stderr to err (paths). */
static pid_t
h_exec(char *const argv[], const char *out, const char *err, int deathsig)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;
		int fd;

		if ((fd = open("/dev/null", O_RDONLY)) >= 0 && fd != 0) {
			dup2(fd, 0);
			close(fd);
		}
		if ((fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644)) >= 0 && fd != 1) {
			dup2(fd, 1);
			close(fd);
		}
		if ((fd = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644)) >= 0 && fd != 2) {
			dup2(fd, 2);
			close(fd);
		}
		/* Nothing of the test process (Check's pipes, sockets) leaks in. */
		for (fd = 3; fd < 1024; fd++)
			close(fd);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		if (deathsig) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(127);
		}
		execv(argv[0], argv);
		dprintf(2, "harness: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

static void
h_argv(char **argv, va_list ap)
{
	int n = 0;
	char *a;

	argv[n++] = (char *)h_acceptd();
	while ((a = va_arg(ap, char *)) != NULL) {
		ck_assert(n < H_MAX_ARGS - 1);
		argv[n++] = a;
	}
	argv[n] = NULL;
}

pid_t
hd_spawn(struct hd *d, ...)
{
	char *argv[H_MAX_ARGS];
	va_list ap;

	va_start(ap, d);
	h_argv(argv, ap);
	va_end(ap);
	d->reaped = 0;
	d->status = 0;
	d->child = h_exec(argv, d->log, d->log, 1);
	return d->child;
}

pid_t
hd_spawn_argv(struct hd *d, char *const argv[])
{
	d->reaped = 0;
	d->status = 0;
	d->child = h_exec(argv, d->log, d->log, 1);
	return d->child;
}

static void
hd_reap(struct hd *d)
{
	int st;

	if (d->child > 0 && !d->reaped && waitpid(d->child, &st, WNOHANG) == d->child) {
		d->reaped = 1;
		d->status = st;
	}
}

int
hd_wait_exit(struct hd *d, int ms)
{
	long long end = h_now_ms() + ms;

	for (;;) {
		hd_reap(d);
		if (d->reaped || d->child <= 0)
			return d->reaped;
		if (h_now_ms() >= end)
			return 0;
		h_sleep_ms(10);
	}
}

void
hd_assert_exit(struct hd *d, int code, int ms)
{
	hd_assert(d, hd_wait_exit(d, ms), "acceptd (pid %d) did not exit within %d ms",
	    (int)d->child, ms);
	hd_assert(d, WIFEXITED(d->status) && WEXITSTATUS(d->status) == code,
	    "acceptd exited with wait status 0x%x, expected exit %d", d->status, code);
}

int
hd_wait_ready(struct hd *d, int ms)
{
	long long end = h_now_ms() + ms;
	const char *mark = "master ready (pid ";

	for (;;) {
		char *log = hd_log(d), *p = strstr(log, mark);
		int done = d->reaped;

		if (p) {
			d->master = atoi(p + strlen(mark));
			free(log);
			return 1;
		}
		free(log);
		if (done || h_now_ms() >= end)
			return 0;
		hd_reap(d);
		h_sleep_ms(10);
	}
}

void
hd_start(struct hd *d)
{
	hd_spawn(d, "-f", "-c", d->conf, (char *)NULL);
	hd_assert(d, hd_wait_ready(d, H_WAIT_MS), "acceptd did not get ready");
}

struct hd *
hd_up(const char *fmt, ...)
{
	struct hd *d = hd_new();
	va_list ap;

	va_start(ap, fmt);
	hd_vconf(d, fmt, ap);
	va_end(ap);
	hd_start(d);
	return d;
}

int
hd_run(struct hd *d, ...)
{
	char *argv[H_MAX_ARGS], out[256], err[256];
	va_list ap;
	pid_t pid;
	int st;

	va_start(ap, d);
	h_argv(argv, ap);
	va_end(ap);
	hd_path(d, "run.out", out, sizeof out);
	hd_path(d, "run.err", err, sizeof err);
	unlink(out);
	unlink(err);
	pid = h_exec(argv, out, err, 1);
	if (!h_wait_exit_pid(pid, H_WAIT_MS, &st)) {
		kill(pid, SIGKILL);
		h_wait_exit_pid(pid, H_WAIT_MS, &st);
		st = -1;
	}
	free(d->out);
	free(d->err);
	d->out = h_read_file(out);
	d->err = h_read_file(err);
	/* a leak at exit would still exit 1, like a config error does */
	ck_assert_msg(!strstr(d->err, "Sanitizer") && !strstr(d->err, "runtime error:"),
	    "sanitizer report from %s:\n%s", argv[1] ? argv[1] : "", d->err);
	if (st == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

void
hd_kill(const struct hd *d, int sig)
{
	ck_assert_msg(d->master > 0, "no master pid");
	ck_assert_msg(kill(d->master, sig) == 0, "kill %d: %s", (int)d->master, strerror(errno));
}

/* A sanitizer report in the log (a worker's would otherwise only show
 * as a respawn): its first line, or NULL. */
static char *
hd_sanitizer_report(const struct hd *d)
{
	static const char *const marks[] = { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
	    "runtime error:", "UndefinedBehaviorSanitizer", "ERROR: ThreadSanitizer" };
	char *log = hd_log(d), *hit = NULL, *p;

	for (size_t i = 0; i < sizeof marks / sizeof *marks && !hit; i++)
		if ((p = strstr(log, marks[i]))) {
			while (p > log && p[-1] != '\n')
				p--;
			hit = strndup(p, strcspn(p, "\n"));
		}
	free(log);
	return hit;
}

void
hd_free(struct hd *d)
{
	pid_t pids[H_MAX_PIDS];
	char *report;
	int n;

	if (!d)
		return;
	if ((report = hd_sanitizer_report(d)))
		hd_dump(d);
	n = h_pids_of_dir(d->dir, pids, H_MAX_PIDS - 16);
	if (d->master > 0)
		n += h_children(d->master, pids + n, 8);
	if (d->master > 0)
		pids[n++] = d->master;
	if (d->child > 0 && !d->reaped)
		pids[n++] = d->child;
	/* a worker orphaned meanwhile is this (subreaper) process's child */
	for (int i = 0; i < n; i++)
		h_kill_safe(pids[i], d->master);
	hd_reap(d);
	for (int i = 0; i < n; i++)
		h_wait_gone(pids[i], 2000);
	h_reap_all();
	h_rm_rf(d->dir);
	for (int i = 0; i < H_MAX_DAEMONS; i++)
		if (h_live[i] == d)
			h_live[i] = NULL;
	free(d->out);
	free(d->err);
	free(d);
	if (report) {
		char msg[512];

		snprintf(msg, sizeof msg, "sanitizer report in the daemon's log: %s", report);
		free(report);
		ck_abort_msg("%s", msg);
	}
}

/* ---- the log ---- */

char *
hd_log(const struct hd *d)
{
	return h_read_file(d->log);
}

void
hd_dump(const struct hd *d)
{
	char *log = hd_log(d);

	fprintf(stderr, "---- acceptd log (%s) ----\n%s", d->log, log);
	if (d->err && *d->err)
		fprintf(stderr, "---- stderr of the last run ----\n%s", d->err);
	fprintf(stderr, "---- end ----\n");
	free(log);
}

int
hd_log_has(const struct hd *d, const char *fmt, ...)
{
	char needle[512], *log = hd_log(d);
	va_list ap;
	int found;

	va_start(ap, fmt);
	vsnprintf(needle, sizeof needle, fmt, ap);
	va_end(ap);
	found = strstr(log, needle) != NULL;
	free(log);
	return found;
}

int
hd_log_count(const struct hd *d, const char *needle)
{
	char *log = hd_log(d), *p = log;
	int n = 0;

	while ((p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	free(log);
	return n;
}

int
hd_wait_log(const struct hd *d, const char *needle, int n, int ms)
{
	long long end = h_now_ms() + ms;

	for (;;) {
		if (hd_log_count(d, needle) >= n)
			return 1;
		if (h_now_ms() >= end)
			return 0;
		h_sleep_ms(10);
	}
}

int
hd_port(const struct hd *d, const char *name)
{
	char needle[160], *log = hd_log(d), *p, *end;
	int port = -1;

	snprintf(needle, sizeof needle, "listening: %s ", name);
	if ((p = strstr(log, needle))) {
		p += strlen(needle);
		end = p + strcspn(p, " \n");
		while (end > p && end[-1] != ':')
			end--;
		if (end > p && isdigit((unsigned char)*end))
			port = atoi(end);
	}
	free(log);
	return port;
}

pid_t
hd_worker(const struct hd *d, int n)
{
	char needle[64], *log = hd_log(d), *p;
	pid_t pid = -1;

	snprintf(needle, sizeof needle, "worker %d started (pid ", n);
	for (p = log; (p = strstr(p, needle)); p += strlen(needle))
		pid = atoi(p + strlen(needle));
	free(log);
	return pid;
}

/* ---- clients ---- */

static int
h_poll(int fd, short ev, long long end)
{
	struct pollfd p = { .fd = fd, .events = ev };

	for (;;) {
		long long left = end - h_now_ms();
		int r;

		if (left < 0)
			left = 0;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		return r;   /* 0: timed out */
	}
}

int
h_connect(const char *where, int port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, fl, e = 0;

	if (strncmp(where, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		un->sun_family = AF_UNIX;
		snprintf(un->sun_path, sizeof un->sun_path, "%s", where + 5);
		len = sizeof *un;
	} else if (strchr(where, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, where, &in6->sin6_addr) != 1)
			return errno = EINVAL, -1;
		len = sizeof *in6;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		if (inet_pton(AF_INET, where, &in->sin_addr) != 1)
			return errno = EINVAL, -1;
		len = sizeof *in;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		socklen_t elen = sizeof e;

		if (errno != EINPROGRESS) {
			e = errno;
		} else if (h_poll(fd, POLLOUT, h_now_ms() + H_WAIT_MS) <= 0) {
			e = ETIMEDOUT;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0) {
			e = errno;
		}
	}
	if (e) {
		close(fd);
		errno = e;
		return -1;
	}
	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

int
h_send_all(int fd, const void *buf, size_t len)
{
	long long end = h_now_ms() + H_WAIT_MS;
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= n;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (h_poll(fd, POLLOUT, end) <= 0 && h_now_ms() >= end)
				return errno = ETIMEDOUT, -1;
		} else {
			return -1;
		}
	}
	return 0;
}

int
h_send_str(int fd, const char *s)
{
	return h_send_all(fd, s, strlen(s));
}

ssize_t
h_recv_exact(int fd, void *buf, size_t len, int ms)
{
	long long end = h_now_ms() + ms;
	size_t got = 0;

	while (got < len) {
		ssize_t n;

		if (h_poll(fd, POLLIN, end) <= 0)
			break;
		n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (n > 0)
			got += n;
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			break;
	}
	return got;
}

ssize_t
h_recv_until_close(int fd, void *buf, size_t cap, int ms)
{
	long long end = h_now_ms() + ms;
	char junk[4096];
	size_t got = 0;

	for (;;) {
		ssize_t n;
		int room = got < cap;

		if (h_poll(fd, POLLIN, end) <= 0)
			return -1;
		n = recv(fd, room ? (char *)buf + got : junk, room ? cap - got : sizeof junk,
		    MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return got;
		if (n > 0 && room)
			got += n;
	}
}

int
h_wait_closed(int fd, int ms)
{
	return h_recv_until_close(fd, NULL, 0, ms) >= 0;
}

int
h_quiet(int fd, int ms)
{
	return h_poll(fd, POLLIN, h_now_ms() + ms) == 0;
}

int
h_echo(int fd, const char *msg)
{
	size_t len = strlen(msg);
	char buf[4096];

	if (len > sizeof buf || h_send_all(fd, msg, len) < 0)
		return 0;
	return h_recv_exact(fd, buf, len, H_WAIT_MS) == (ssize_t)len &&
	    memcmp(buf, msg, len) == 0;
}

int
h_echo_at(const char *where, int port)
{
	char msg[128];
	int fd = h_connect(where, port), ok;

	if (fd < 0)
		return 0;
	snprintf(msg, sizeof msg, "hello %s %d\r\n", where, port);
	ok = h_echo(fd, msg);
	close(fd);
	return ok;
}

ssize_t
h_http_read(int fd, int *status, char *head, size_t headcap, char *body, size_t cap)
{
	long long end = h_now_ms() + H_WAIT_MS;
	char *p;
	size_t n = 0;
	long clen = -1;

	*status = 0;
	if (headcap < 16)
		return -1;
	/* Byte by byte: a next response must stay in the socket. */
	for (;;) {
		if (n >= headcap - 1 || h_poll(fd, POLLIN, end) <= 0 ||
		    recv(fd, head + n, 1, MSG_DONTWAIT) != 1)
			return -1;
		head[++n] = '\0';
		if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	if (sscanf(head, "HTTP/1.%*d %d", status) != 1)
		return -1;
	for (p = head; (p = strchr(p, '\n')); ) {
		p++;
		if (strncasecmp(p, "content-length:", 15) == 0)
			clen = strtol(p + 15, NULL, 10);
	}
	if (clen < 0 || (size_t)clen >= cap)
		return -1;
	if (h_recv_exact(fd, body, clen, H_WAIT_MS) != clen)
		return -1;
	body[clen] = '\0';
	return clen;
}

ssize_t
h_http_get(int fd, const char *path, int *status, char *body, size_t cap)
{
	char req[512], head[8192];

	*status = 0;
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
	if (h_send_str(fd, req) < 0)
		return -1;
	return h_http_read(fd, status, head, sizeof head, body, cap);
}

/* ---- ports ---- */

int
h_listen_tcp(int *port)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(*port) };
	socklen_t len = sizeof in;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&in, sizeof in) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&in, &len) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	*port = ntohs(in.sin_port);
	return fd;
}

int
h_free_port(void)
{
	int port = 0, fd = h_listen_tcp(&port);

	ck_assert_msg(fd >= 0, "bind 127.0.0.1:0: %s", strerror(errno));
	close(fd);
	return port;
}

int
h_port_bindable(int port)
{
	int p = port, fd = h_listen_tcp(&p);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

int
h_have_ipv6(void)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	ok = bind(fd, (struct sockaddr *)&in6, sizeof in6) == 0;
	close(fd);
	return ok;
}

/* ---- the runner ---- */

/* Kill what this process still has: its children (a subreaper collects
 * every orphan below it) and every acceptd a log under the base dir names. */
static void
h_sweep(void)
{
	pid_t pids[H_MAX_PIDS];
	int n = h_children(getpid(), pids, H_MAX_PIDS);
	DIR *dir;
	struct dirent *e;

	if (h_base[0] && (dir = opendir(h_base))) {
		while ((e = readdir(dir)) && n < H_MAX_PIDS) {
			char sub[384];

			if (e->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof sub, "%s/%s", h_base, e->d_name);
			n += h_pids_of_dir(sub, pids + n, H_MAX_PIDS - n);
		}
		closedir(dir);
	}
	for (int i = 0; i < n; i++)
		h_kill_safe(pids[i], -1);
	for (int i = 0; i < n; i++)
		h_wait_gone(pids[i], 2000);
	h_reap_all();
}

int
h_main(Suite *s)
{
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	snprintf(h_base, sizeof h_base, "/tmp/acceptd-it.XXXXXX");
	if (!mkdtemp(h_base)) {
		fprintf(stderr, "harness: mkdtemp %s: %s\n", h_base, strerror(errno));
		return 1;
	}
	if (access(h_acceptd(), X_OK) < 0) {
		fprintf(stderr, "harness: %s: %s (set ACCEPTD)\n", h_acceptd(), strerror(errno));
		rmdir(h_base);
		return 1;
	}
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	h_sweep();
	h_rm_rf(h_base);
	return failed ? 1 : 0;
}

/* ---- load ---- */

struct h_load_client {
	long tried, ok, failed;
	long refused, reset, timeout, short_reply, other;
	char pad[64];           /* each client writes its own cache line */
};

struct h_load_shared {
	int stop;
	int nfails;             /* slots taken (may exceed H_LOAD_MAX_FAILS) */
	struct h_load_client c[H_LOAD_MAX_CLIENTS];
	struct h_load_fail fails[H_LOAD_MAX_FAILS];
};

struct h_load {
	struct h_load_shared *sh;
	pid_t pids[H_LOAD_MAX_CLIENTS];
	int n;
	int stopped;
};

#define H_LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define H_ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static void
h_load_fail(struct h_load_shared *sh, int k, long long start, const char *what, int err)
{
	struct h_load_client *c = &sh->c[k];
	int slot = __atomic_fetch_add(&sh->nfails, 1, __ATOMIC_RELAXED);

	if (slot < H_LOAD_MAX_FAILS) {
		struct h_load_fail *f = &sh->fails[slot];

		f->start_ms = start;
		f->end_ms = h_now_ms();
		f->err = err;
		f->client = k;
		snprintf(f->what, sizeof f->what, "%s", what);
	}
	if (err == ECONNREFUSED)
		H_ST(c->refused, c->refused + 1);
	else if (err == ECONNRESET || err == EPIPE)
		H_ST(c->reset, c->reset + 1);
	else if (err == ETIMEDOUT)
		H_ST(c->timeout, c->timeout + 1);
	else if (!strcmp(what, "eof") || !strcmp(what, "mismatch"))
		H_ST(c->short_reply, c->short_reply + 1);
	else
		H_ST(c->other, c->other + 1);
	H_ST(c->failed, c->failed + 1);
}

/* One exchange: 0 if it worked, else -1 with the failure recorded. */
static int
h_load_one(struct h_load_shared *sh, int k, const char *where, int port, long seq)
{
	long long start = h_now_ms(), end;
	char msg[96], buf[96];
	size_t len, got = 0;
	int fd;

	len = snprintf(msg, sizeof msg, "load client %d connection %ld\n", k, seq);
	if ((fd = h_connect(where, port)) < 0)
		return h_load_fail(sh, k, start, "connect", errno), -1;
	if (h_send_all(fd, msg, len) < 0) {
		h_load_fail(sh, k, start, "send", errno);
		close(fd);
		return -1;
	}
	end = h_now_ms() + H_LOAD_REPLY_MS;
	while (got < len) {
		ssize_t n;

		if (h_poll(fd, POLLIN, end) <= 0) {
			h_load_fail(sh, k, start, "timeout", ETIMEDOUT);
			close(fd);
			return -1;
		}
		n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n > 0) {
			got += n;
		} else if (n == 0) {
			h_load_fail(sh, k, start, "eof", 0);
			close(fd);
			return -1;
		} else if (errno != EAGAIN && errno != EINTR) {
			h_load_fail(sh, k, start, "recv", errno);
			close(fd);
			return -1;
		}
	}
	close(fd);
	if (memcmp(buf, msg, len) != 0)
		return h_load_fail(sh, k, start, "mismatch", 0), -1;
	return 0;
}

struct h_load *
h_load_start(const char *where, int port, int nclients)
{
	struct h_load *l = calloc(1, sizeof *l);
	pid_t parent = getpid();

	ck_assert(l != NULL);
	ck_assert_msg(nclients >= 1 && nclients <= H_LOAD_MAX_CLIENTS, "nclients %d", nclients);
	l->sh = mmap(NULL, sizeof *l->sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	ck_assert_msg(l->sh != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(l->sh, 0, sizeof *l->sh);
	fflush(NULL);
	for (int k = 0; k < nclients; k++) {
		pid_t pid = fork();

		ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			struct h_load_client *c = &l->sh->c[k];
			long seq = 0;

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			signal(SIGPIPE, SIG_IGN);
			while (!H_LD(l->sh->stop)) {
				H_ST(c->tried, c->tried + 1);
				if (h_load_one(l->sh, k, where, port, seq++) == 0)
					H_ST(c->ok, c->ok + 1);
			}
			_exit(0);
		}
		l->pids[l->n++] = pid;
	}
	return l;
}

void
h_load_stats(const struct h_load *l, struct h_load_stats *s)
{
	memset(s, 0, sizeof *s);
	for (int k = 0; k < l->n; k++) {
		const struct h_load_client *c = &l->sh->c[k];

		s->tried += H_LD(c->tried);
		s->ok += H_LD(c->ok);
		s->failed += H_LD(c->failed);
		s->refused += H_LD(c->refused);
		s->reset += H_LD(c->reset);
		s->timeout += H_LD(c->timeout);
		s->short_reply += H_LD(c->short_reply);
		s->other += H_LD(c->other);
	}
}

int
h_load_progress(const struct h_load *l, long more, int ms)
{
	struct h_load_stats s;
	long long end = h_now_ms() + ms;
	long want;

	h_load_stats(l, &s);
	want = s.ok + more;
	for (;;) {
		h_load_stats(l, &s);
		if (s.ok >= want)
			return 1;
		if (h_now_ms() >= end)
			return 0;
		h_sleep_ms(5);
	}
}

long
h_load_fails_since(const struct h_load *l, long long t_ms)
{
	int n = H_LD(l->sh->nfails);
	long count = 0;

	if (n > H_LOAD_MAX_FAILS)
		n = H_LOAD_MAX_FAILS;
	for (int i = 0; i < n; i++)
		count += l->sh->fails[i].start_ms >= t_ms;
	/* failures beyond the table: count them all, to be safe */
	return count + (H_LD(l->sh->nfails) - n);
}

void
h_load_describe(const struct h_load *l, char *buf, size_t n)
{
	struct h_load_stats s;
	int nf = H_LD(l->sh->nfails);
	size_t o;

	h_load_stats(l, &s);
	o = snprintf(buf, n, "%ld tried, %ld ok, %ld failed (refused %ld, reset %ld, timeout %ld, "
	    "short %ld, other %ld)", s.tried, s.ok, s.failed, s.refused, s.reset, s.timeout,
	    s.short_reply, s.other);
	for (int i = 0; i < nf && i < H_LOAD_MAX_FAILS && i < 8 && o < n; i++) {
		const struct h_load_fail *f = &l->sh->fails[i];

		o += snprintf(buf + o, n - o, "; [client %d %s %s at +%lld ms after connect, t=%lld]",
		    f->client, f->what, f->err ? strerror(f->err) : "", f->end_ms - f->start_ms,
		    f->start_ms);
	}
}

void
h_load_stop(struct h_load *l)
{
	if (l->stopped)
		return;
	l->stopped = 1;
	H_ST(l->sh->stop, 1);
	for (int k = 0; k < l->n; k++)
		if (!h_wait_exit_pid(l->pids[k], H_LOAD_REPLY_MS + H_WAIT_MS, NULL)) {
			kill(l->pids[k], SIGKILL);
			h_wait_exit_pid(l->pids[k], H_WAIT_MS, NULL);
		}
}

void
h_load_free(struct h_load *l)
{
	if (!l)
		return;
	h_load_stop(l);
	munmap(l->sh, sizeof *l->sh);
	free(l);
}

/* ---- /proc ---- */

long
h_proc_cpu_ms(pid_t pid)
{
	char path[64], *s, *p;
	unsigned long ut, st;
	long rc = -1, hz = sysconf(_SC_CLK_TCK);

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	s = h_read_file(path);
	/* after "pid (comm) ": state ppid pgrp session tty_nr tpgid flags
	 * minflt cminflt majflt cmajflt utime stime */
	if ((p = strrchr(s, ')')) &&
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
		rc = (long)((ut + st) * 1000 / (hz > 0 ? hz : 100));
	free(s);
	return rc;
}

int
h_proc_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	if (!(dir = opendir(path)))
		return -1;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

long
h_proc_rss_kb(pid_t pid)
{
	char buf[64];

	if (h_proc_status(pid, "VmRSS", buf, sizeof buf) < 0)
		return -1;
	return atol(buf);
}

int
h_workers(pid_t master, pid_t *pids, int *idx, int max)
{
	pid_t kids[H_MAX_PIDS];
	int n = h_children(master, kids, H_MAX_PIDS), count = 0;
	static const char mark[] = "acceptd: worker ";

	for (int i = 0; i < n; i++) {
		char cmd[256];

		if (h_cmdline(kids[i], cmd, sizeof cmd) < 0 ||
		    strncmp(cmd, mark, sizeof mark - 1) != 0 ||
		    !isdigit((unsigned char)cmd[sizeof mark - 1]))
			continue;
		if (count < max) {
			if (pids)
				pids[count] = kids[i];
			if (idx)
				idx[count] = atoi(cmd + sizeof mark - 1);
		}
		count++;
	}
	return count;
}

int
h_wait_workers(pid_t master, int n, int ms)
{
	long long end = h_now_ms() + ms;

	for (;;) {
		int idx[H_MAX_PIDS], got = h_workers(master, NULL, idx, H_MAX_PIDS);
		/* a child forked but not yet titled counts as not there yet */
		int kids = h_children(master, (pid_t[H_MAX_PIDS]){ 0 }, H_MAX_PIDS);

		if (got == n && kids == n) {
			unsigned long long seen = 0;
			int ok = 1;

			for (int i = 0; i < got; i++) {
				if (idx[i] < 0 || idx[i] >= n || idx[i] >= 64 || (seen >> idx[i] & 1))
					ok = 0;
				else
					seen |= 1ULL << idx[i];
			}
			if (ok)
				return 1;
		}
		if (h_now_ms() >= end)
			return 0;
		h_sleep_ms(10);
	}
}
