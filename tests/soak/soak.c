/* make soak (issue 7): mixed load for SOAK_SECONDS (default 60) against a
 * daemon with two workers serving echo, http and exec (/bin/cat), with a
 * reload every SOAK_RELOAD_MS (default 1000) for the first half and none
 * for the second (so the same workers live long enough for a leak of
 * theirs to show).
 *
 * Clients (forked processes, counting in shared memory):
 *   well-behaved, every failure fails the soak:
 *     echo        connect, one exchange, close
 *     http-ka     20 requests one after another on one connection; a request
 *                 on a reused connection that gets a close before any byte
 *                 of its answer is retried on a new one (RFC 9112 9.3.1: a
 *                 stopping worker closes idle keep-alive connections)
 *     http-pipe   8 pipelined requests, 8 answers, close
 *     http-close  one request with "Connection: close", read to the close
 *     slow        one request trickled in 4-byte pieces every 30 ms
 *     exec        a line to /bin/cat and back, SHUT_WR, read to the close
 *   hostile, must be closed on time and harm no one:
 *     garbage     random bytes to http (closed within 10 s)
 *     reset       connect, maybe a few bytes, RST
 *     idle        64 silent connections to echo, closed by idle_timeout
 *                 (3 s; within 5 s counting a reload's drain)
 *
 * Measured: the master's and the workers' open fds and RSS, at quiet
 * points (load paused, connections gone): after warm-up (Q0), after the
 * reload half (Q1), after the first part of the no-reload half (QB) and at
 * the end (Q2); and under load every 30 s (printed; the master's checked).
 * Fails when a worker crashed (an unexpected exit in the log), a reload
 * failed, a well-behaved exchange failed, or the counts grew: the master's
 * fds (any), the daemon's fds at quiet points, the master's RSS beyond
 * RSS_SLACK_KB, the same workers' fds or RSS (QB -> Q2) beyond it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#include "../integration/harness.h"

#define SAMPLE_EVERY_MS 30000
#define IO_MS 5000               /* bound on any one read or write wait */
#define RSS_SLACK_KB 1024        /* allocator noise */
#define IDLE_TIMEOUT_MS 3000
#define SHUTDOWN_TIMEOUT_MS 5000
#define NIDLE 64
#define KA_REQS 20
#define PIPE_REQS 8

enum kind { K_ECHO, K_KA, K_PIPE, K_CLOSE, K_SLOW, K_EXEC, K_GARBAGE, K_RESET, K_IDLE, NKIND };
static const char *const kind_name[NKIND] = {
	"echo", "http-ka", "http-pipe", "http-close", "slow", "exec", "garbage", "reset", "idle",
};
/* processes per kind */
static const int kind_procs[NKIND] = { 2, 1, 1, 1, 2, 1, 1, 1, 1 };
#define NPROC 11

enum { RUN, PAUSE, STOP };

struct fail {
	long long at_ms;
	int kind, err;
	char what[40];
};

struct shared {
	int phase;
	int paused[NPROC];
	struct {
		long tried, ok, failed, retried;
	} st[NPROC];
	int nfails;
	struct fail fails[32];
};

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define INC(x) __atomic_add_fetch(&(x), 1, __ATOMIC_RELAXED)

static struct shared *sh;
static int port_echo, port_http, port_exec;

/* ---- client side ---- */

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int
wait_fd(int fd, short ev, long long end)
{
	struct pollfd p = { .fd = fd, .events = ev };
	long long left;
	int r;

	while ((left = end - h_now_ms()) > 0) {
		if ((r = poll(&p, 1, (int)left)) > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

static void
cfail(int proc, int kind, const char *what, int err)
{
	int i = __atomic_fetch_add(&sh->nfails, 1, __ATOMIC_RELAXED);

	INC(sh->st[proc].failed);
	if (i < (int)(sizeof sh->fails / sizeof sh->fails[0])) {
		sh->fails[i].at_ms = h_now_ms();
		sh->fails[i].kind = kind;
		sh->fails[i].err = err;
		snprintf(sh->fails[i].what, sizeof sh->fails[i].what, "%s", what);
	}
}

static void
close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

/* Input buffered across pipelined answers. */
struct rbuf {
	char b[16384];
	size_t len;
};

/* Read more into rb: >0 bytes, 0 EOF, -1 error (errno; ETIMEDOUT). */
static ssize_t
rb_fill(int fd, struct rbuf *rb, long long end)
{
	ssize_t n;

	if (rb->len == sizeof rb->b)
		return errno = ENOBUFS, -1;
	for (;;) {
		int w = wait_fd(fd, POLLIN, end);

		if (w <= 0)
			return errno = w == 0 ? ETIMEDOUT : errno, -1;
		n = recv(fd, rb->b + rb->len, sizeof rb->b - rb->len, MSG_DONTWAIT);
		if (n > 0) {
			rb->len += n;
			return n;
		}
		if (n == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
}

/* One HTTP answer from rb (reading more as needed), consumed. 1 with its
 * status (*last: it says "Connection: close"), 0 when the peer closed (EOF or reset) before any byte of it, -1
 * otherwise (*what says why). */
static int
http_answer(int fd, struct rbuf *rb, int *status, int *last, const char **what)
{
	long long end = h_now_ms() + IO_MS;
	char *eoh, *cl;
	size_t head, total;
	ssize_t n;

	for (;;) {
		if ((eoh = memmem(rb->b, rb->len, "\r\n\r\n", 4)))
			break;
		if ((n = rb_fill(fd, rb, end)) <= 0) {
			int none = rb->len == 0 && (n == 0 || errno == ECONNRESET);

			*what = n == 0 ? "eof in head" : errno == ETIMEDOUT ? "timeout in head" :
			    "recv in head";
			return none ? 0 : -1;
		}
	}
	head = eoh + 4 - rb->b;
	if (sscanf(rb->b, "HTTP/1.1 %d ", status) != 1)
		return *what = "bad status line", -1;
	*eoh = '\0';
	cl = strcasestr(rb->b, "\r\nContent-Length:");
	total = head + (cl ? strtoul(cl + 17, NULL, 10) : 0);
	*last = strcasestr(rb->b, "\r\nConnection: close") != NULL;
	*eoh = '\r';
	if (total > sizeof rb->b)
		return *what = "answer too long", -1;
	while (rb->len < total)
		if (rb_fill(fd, rb, end) <= 0)
			return *what = "short body", -1;
	memmove(rb->b, rb->b + total, rb->len - total);
	rb->len -= total;
	return 1;
}

static int
send_all(int fd, const void *buf, size_t len)
{
	long long end = h_now_ms() + IO_MS;
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
			off += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		else if (wait_fd(fd, POLLOUT, end) <= 0)
			return errno = ETIMEDOUT, -1;
	}
	return 0;
}

/* Read to the close (bounded): the bytes kept in buf, -1 on no close. */
static ssize_t
read_to_close(int fd, char *buf, size_t cap, int ms)
{
	long long end = h_now_ms() + ms;
	char junk[4096];
	size_t got = 0;

	for (;;) {
		ssize_t n;

		if (wait_fd(fd, POLLIN, end) <= 0)
			return -1;
		if (got < cap)
			n = recv(fd, buf + got, cap - got, MSG_DONTWAIT);
		else
			n = recv(fd, junk, sizeof junk, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return got;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (n > 0 && got < cap)
			got += n;
	}
}

static const char get_ka[] = "GET /soak HTTP/1.1\r\nHost: soak\r\n\r\n";
static const char get_close[] = "GET /soak HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n";

static void
run_echo(int p, unsigned *seed)
{
	char msg[64], back[64];
	int fd = h_connect("127.0.0.1", port_echo), n;

	if (fd < 0)
		{ cfail(p, K_ECHO, "connect", errno); return; }
	n = snprintf(msg, sizeof msg, "soak %d %u\n", p, rand_r(seed));
	if (send_all(fd, msg, n) < 0)
		cfail(p, K_ECHO, "send", errno);
	else if (h_recv_exact(fd, back, n, IO_MS) != n || memcmp(msg, back, n) != 0)
		cfail(p, K_ECHO, "short or wrong echo", 0);
	else
		INC(sh->st[p].ok);
	close(fd);
}

static void
run_ka(int p)
{
	static struct rbuf rb;
	int fd = -1, reused = 0, retry = 0, status, last = 0, r;
	const char *what = "";

	for (int i = 0; i < KA_REQS && LD(sh->phase) == RUN; i++) {
		if (fd < 0) {
			if ((fd = h_connect("127.0.0.1", port_http)) < 0) {
				cfail(p, K_KA, "connect", errno);
				return;
			}
			rb.len = 0;
			reused = 0;
		}
		if (!retry)
			INC(sh->st[p].tried);
		retry = 0;
		what = "";
		r = send_all(fd, get_ka, sizeof get_ka - 1) < 0 ? (errno == EPIPE ||
		    errno == ECONNRESET ? 0 : -1) : http_answer(fd, &rb, &status, &last, &what);
		if (r == 0 && reused) {
			/* closed between requests: retry this one on a new one */
			INC(sh->st[p].retried);
			close(fd);
			fd = -1;
			i--;
			retry = 1;
			continue;
		}
		if (r <= 0 || status != 200) {
			cfail(p, K_KA, r <= 0 ? (*what ? what : "send") : "status not 200", errno);
			break;
		}
		INC(sh->st[p].ok);
		reused = 1;
		if (last) {
			/* a stopping worker's last answer */
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
}

/* PIPE_REQS requests at once. A close after an answer that said
 * "Connection: close" (a stopping worker) leaves the rest unanswered: they
 * are sent again on a new connection (RFC 9112 9.3.2), as a retry. */
static void
run_pipe(int p)
{
	static struct rbuf rb;
	char reqs[PIPE_REQS * (sizeof get_ka - 1)];
	int fd = -1, got = 0, status, last = 0, r;
	const char *what = "";

	for (int i = 0; i < PIPE_REQS; i++)
		memcpy(reqs + i * (sizeof get_ka - 1), get_ka, sizeof get_ka - 1);
	while (got < PIPE_REQS) {
		if (fd >= 0) {
			INC(sh->st[p].retried);
			close(fd);
		}
		if ((fd = h_connect("127.0.0.1", port_http)) < 0) {
			cfail(p, K_PIPE, "connect", errno);
			return;
		}
		rb.len = 0;
		if (send_all(fd, reqs, (PIPE_REQS - got) * (sizeof get_ka - 1)) < 0 &&
		    errno != EPIPE && errno != ECONNRESET) {
			cfail(p, K_PIPE, "send", errno);
			break;
		}
		last = 0;
		for (int k = 0; got < PIPE_REQS && !last; k++) {
			what = "";
			if ((r = http_answer(fd, &rb, &status, &last, &what)) != 1 || status != 200) {
				cfail(p, K_PIPE, r == 1 ? "status not 200" : *what ? what : "?", errno);
				close(fd);
				return;
			}
			got++;
		}
	}
	INC(sh->st[p].ok);
	close(fd);
}

static void
run_close(int p)
{
	char buf[2048];
	int fd = h_connect("127.0.0.1", port_http);
	ssize_t n;

	if (fd < 0)
		{ cfail(p, K_CLOSE, "connect", errno); return; }
	if (send_all(fd, get_close, sizeof get_close - 1) < 0)
		cfail(p, K_CLOSE, "send", errno);
	else if ((n = read_to_close(fd, buf, sizeof buf - 1, IO_MS)) <= 0)
		cfail(p, K_CLOSE, n < 0 ? "no close" : "no answer", errno);
	else if (buf[n] = '\0', strncmp(buf, "HTTP/1.1 200 ", 13) != 0)
		cfail(p, K_CLOSE, "status not 200", 0);
	else
		INC(sh->st[p].ok);
	close(fd);
}

static void
run_slow(int p)
{
	char buf[2048];
	int fd = h_connect("127.0.0.1", port_http);
	ssize_t n;

	if (fd < 0)
		{ cfail(p, K_SLOW, "connect", errno); return; }
	for (size_t off = 0; off < sizeof get_close - 1; off += 4) {
		size_t k = sizeof get_close - 1 - off < 4 ? sizeof get_close - 1 - off : 4;

		if (send_all(fd, get_close + off, k) < 0) {
			cfail(p, K_SLOW, "send", errno);
			close(fd);
			return;
		}
		sleep_ms(30);
	}
	if ((n = read_to_close(fd, buf, sizeof buf - 1, IO_MS)) <= 0)
		cfail(p, K_SLOW, n < 0 ? "no close" : "no answer", errno);
	else if (buf[n] = '\0', strncmp(buf, "HTTP/1.1 200 ", 13) != 0)
		cfail(p, K_SLOW, "status not 200", 0);
	else
		INC(sh->st[p].ok);
	close(fd);
}

static void
run_exec(int p, unsigned *seed)
{
	char msg[64], buf[128];
	int fd = h_connect("127.0.0.1", port_exec), n;
	ssize_t k;

	if (fd < 0)
		{ cfail(p, K_EXEC, "connect", errno); return; }
	n = snprintf(msg, sizeof msg, "cat %d %u\n", p, rand_r(seed));
	if (send_all(fd, msg, n) < 0 || shutdown(fd, SHUT_WR) < 0)
		cfail(p, K_EXEC, "send", errno);
	else if ((k = read_to_close(fd, buf, sizeof buf, IO_MS)) != n || memcmp(buf, msg, n) != 0)
		cfail(p, K_EXEC, k < 0 ? "no close" : "short or wrong", errno);
	else
		INC(sh->st[p].ok);
	close(fd);
}

static void
run_garbage(int p, unsigned *seed)
{
	char junk[4096], buf[256];
	size_t n = 1 + rand_r(seed) % sizeof junk;
	int fd = h_connect("127.0.0.1", port_http);

	if (fd < 0)
		{ cfail(p, K_GARBAGE, "connect", errno); return; }
	for (size_t i = 0; i < n; i++)
		junk[i] = (char)rand_r(seed);
	send_all(fd, junk, n);          /* it may close before taking all */
	if (read_to_close(fd, buf, sizeof buf, 10000) < 0)
		cfail(p, K_GARBAGE, "not closed in 10 s", 0);
	else
		INC(sh->st[p].ok);
	close(fd);
}

static void
run_reset(int p, unsigned *seed)
{
	static const char part[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HT";
	int fd = h_connect("127.0.0.1", rand_r(seed) % 2 ? port_http : port_echo);

	if (fd < 0)
		{ cfail(p, K_RESET, "connect", errno); return; }
	if (rand_r(seed) % 2)
		send(fd, part, rand_r(seed) % sizeof part, MSG_NOSIGNAL);
	if (rand_r(seed) % 2)
		sleep_ms(rand_r(seed) % 5);
	close_reset(fd);
	INC(sh->st[p].ok);
	sleep_ms(2);
}

/* NIDLE silent connections; each must be closed within idle_timeout, or a
 * reload's drain, plus 2 s. Reopened as they close. */
static struct pollfd idle_fd[NIDLE];
static long long idle_t0[NIDLE];

static void
run_idle(int p)
{
	char buf[64];

	for (int i = 0; i < NIDLE; i++) {
		if (idle_fd[i].fd >= 0)
			continue;
		INC(sh->st[p].tried);
		if ((idle_fd[i].fd = h_connect("127.0.0.1", port_echo)) < 0) {
			cfail(p, K_IDLE, "connect", errno);
			continue;
		}
		idle_fd[i].events = POLLIN;
		idle_t0[i] = h_now_ms();
	}
	if (poll(idle_fd, NIDLE, 100) > 0) {
		for (int i = 0; i < NIDLE; i++) {
			if (idle_fd[i].fd < 0 || !idle_fd[i].revents)
				continue;
			ssize_t n = recv(idle_fd[i].fd, buf, sizeof buf, MSG_DONTWAIT);

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n > 0)
				cfail(p, K_IDLE, "data on an idle one", 0);
			else
				INC(sh->st[p].ok);
			close(idle_fd[i].fd);
			idle_fd[i].fd = -1;
		}
	}
	for (int i = 0; i < NIDLE; i++)
		if (idle_fd[i].fd >= 0 && h_now_ms() - idle_t0[i] >
		    IDLE_TIMEOUT_MS + SHUTDOWN_TIMEOUT_MS + 2000) {
			cfail(p, K_IDLE, "not closed on time", 0);
			close(idle_fd[i].fd);
			idle_fd[i].fd = -1;
		}
}

/* On pause: the idle ones still open are let go (not counted). */
static void
idle_drop(int p)
{
	for (int i = 0; i < NIDLE; i++)
		if (idle_fd[i].fd >= 0) {
			close(idle_fd[i].fd);
			idle_fd[i].fd = -1;
			__atomic_sub_fetch(&sh->st[p].tried, 1, __ATOMIC_RELAXED);
		}
}

static void
client(int p, int kind)
{
	unsigned seed = (unsigned)getpid() * 2654435761u;

	for (int i = 0; i < NIDLE; i++)
		idle_fd[i].fd = -1;
	for (;;) {
		int ph = LD(sh->phase);

		if (ph == STOP)
			break;
		if (ph == PAUSE) {
			if (kind == K_IDLE)
				idle_drop(p);
			ST(sh->paused[p], 1);
			sleep_ms(10);
			continue;
		}
		ST(sh->paused[p], 0);
		if (kind != K_KA && kind != K_IDLE)
			INC(sh->st[p].tried);
		switch (kind) {
		case K_ECHO: run_echo(p, &seed); break;
		case K_KA: run_ka(p); break;
		case K_PIPE: run_pipe(p); break;
		case K_CLOSE: run_close(p); break;
		case K_SLOW: run_slow(p); break;
		case K_EXEC: run_exec(p, &seed); break;
		case K_GARBAGE: run_garbage(p, &seed); break;
		case K_RESET: run_reset(p, &seed); break;
		case K_IDLE: run_idle(p); break;
		}
	}
	if (kind == K_IDLE)
		idle_drop(p);
	_exit(0);
}

/* ---- the test process ---- */

static pid_t procs[NPROC];
static int proc_kind[NPROC];

static void
clients_start(void)
{
	pid_t parent = getpid();
	int p = 0;

	fflush(NULL);
	for (int k = 0; k < NKIND; k++)
		for (int j = 0; j < kind_procs[k]; j++, p++) {
			pid_t pid = fork();

			ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
			if (pid == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				if (getppid() != parent)
					_exit(0);
				signal(SIGPIPE, SIG_IGN);
				client(p, k);
			}
			procs[p] = pid;
			proc_kind[p] = k;
		}
	ck_assert_int_eq(p, NPROC);
}

/* Pause (every client between exchanges, its connections closed) or run. */
static int
clients_pause(void)
{
	long long end = h_now_ms() + 3 * IO_MS + 12000;
	int all;

	ST(sh->phase, PAUSE);
	do {
		all = 1;
		for (int p = 0; p < NPROC; p++)
			all &= LD(sh->paused[p]);
		if (!all)
			usleep(10 * 1000);
	} while (!all && h_now_ms() < end);
	return all;
}

static void
clients_run(void)
{
	ST(sh->phase, RUN);
}

static void
clients_stop(void)
{
	ST(sh->phase, STOP);
	for (int p = 0; p < NPROC; p++)
		if (!h_wait_gone(procs[p], 3 * IO_MS + 12000)) {
			kill(procs[p], SIGKILL);
			h_wait_gone(procs[p], H_WAIT_MS);
		}
}

struct usage {
	int workers;
	pid_t pid[8];
	int fds[8];
	long rss[8];
	int master_fds, all_fds;
	long master_rss, all_rss;
};

static void
measure(struct hd *d, struct usage *u)
{
	int idx[8], n = h_workers(d->master, u->pid, idx, 8);

	u->workers = n;
	u->master_fds = u->all_fds = h_proc_fds(d->master);
	u->master_rss = u->all_rss = h_proc_rss_kb(d->master);
	for (int i = 0; i < n && i < 8; i++) {
		u->fds[i] = h_proc_fds(u->pid[i]);
		u->rss[i] = h_proc_rss_kb(u->pid[i]);
		u->all_fds += u->fds[i];
		u->all_rss += u->rss[i];
	}
}

static void
print_usage(const char *when, long long t_ms, const struct usage *u)
{
	char w[256];
	size_t o = 0;

	w[0] = '\0';
	for (int i = 0; i < u->workers && i < 8; i++)
		o += snprintf(w + o, sizeof w - o, "%s%d: %d fds %ld kB", i ? ", " : "",
		    (int)u->pid[i], u->fds[i], u->rss[i]);
	fprintf(stderr, "soak: %-5s t=%4llds master %d fds %ld kB; workers %s; all %d fds %ld kB\n",
	    when, t_ms / 1000, u->master_fds, u->master_rss, w, u->all_fds, u->all_rss);
}

/* The load is paused: wait for exactly 2 workers (the leaving ones gone)
 * and for the fd counts to stop moving (connections the workers still
 * close), then measure. */
static void
settle(struct hd *d, struct usage *u)
{
	struct usage prev;
	long long end = h_now_ms() + 2 * H_WAIT_MS;

	hd_assert(d, h_wait_workers(d->master, 2, 2 * H_WAIT_MS + SHUTDOWN_TIMEOUT_MS),
	    "the daemon did not settle at 2 workers");
	measure(d, &prev);
	for (;;) {
		usleep(300 * 1000);
		measure(d, u);
		if ((u->all_fds == prev.all_fds && u->workers == 2) || h_now_ms() > end)
			break;
		prev = *u;
	}
}

static int
env_int(const char *name, int dflt)
{
	const char *s = getenv(name);
	int n = s && *s ? atoi(s) : dflt;

	return n > 0 ? n : dflt;
}

static void
summary(struct hd *d, long *well_failed)
{
	long t[NKIND] = { 0 }, ok[NKIND] = { 0 }, f[NKIND] = { 0 }, r[NKIND] = { 0 };
	int nf = LD(sh->nfails);

	for (int p = 0; p < NPROC; p++) {
		t[proc_kind[p]] += LD(sh->st[p].tried);
		ok[proc_kind[p]] += LD(sh->st[p].ok);
		f[proc_kind[p]] += LD(sh->st[p].failed);
		r[proc_kind[p]] += LD(sh->st[p].retried);
	}
	*well_failed = 0;
	fprintf(stderr, "soak: %-10s %9s %9s %7s %7s\n", "client", "tried", "ok", "failed",
	    "retried");
	for (int k = 0; k < NKIND; k++) {
		fprintf(stderr, "soak: %-10s %9ld %9ld %7ld %7ld\n", kind_name[k], t[k], ok[k],
		    f[k], r[k]);
		*well_failed += f[k];
	}
	for (int i = 0; i < nf && i < (int)(sizeof sh->fails / sizeof sh->fails[0]); i++)
		fprintf(stderr, "soak: failure: %s: %s (%s)\n", kind_name[sh->fails[i].kind],
		    sh->fails[i].what, sh->fails[i].err ? strerror(sh->fails[i].err) : "-");
	(void)d;
}

START_TEST(soak)
{
	int secs = env_int("SOAK_SECONDS", 60), reload_ms = env_int("SOAK_RELOAD_MS", 1000);
	int half = secs / 2, bwarm = half / 3 < 10 ? half / 3 : 10, hups = 0, samples = 0;
	struct usage q0, q1, qb, q2, u;
	long long t0, next_sample, next_hup, end;
	long failed;
	struct hd *d;

	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(sh != MAP_FAILED);
	memset(sh, 0, sizeof *sh);
	d = hd_up("[daemon]\nworkers = 2\nmode = reuseport\nshutdown_timeout = %ds\n"
	    "rlimit_nofile = 4096\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\nidle_timeout = %dms\n\n"
	    "[listener web]\naddress = 127.0.0.1\nport = 0\nhandler = http\n"
	    "header_timeout = 2s\nidle_timeout = %dms\n\n"
	    "[listener x]\naddress = 127.0.0.1\nport = 0\nhandler = exec\n"
	    "command = /bin/cat\nidle_timeout = %dms\n",
	    SHUTDOWN_TIMEOUT_MS / 1000, IDLE_TIMEOUT_MS, IDLE_TIMEOUT_MS, IDLE_TIMEOUT_MS);
	port_echo = hd_port(d, "e");
	port_http = hd_port(d, "web");
	port_exec = hd_port(d, "x");
	fprintf(stderr, "soak: %d s (reload every %d ms for %d s, then none), %d client "
	    "processes, master %d\n", secs, reload_ms, half, NPROC, (int)d->master);

	/* warm-up: reloads, and load, so first-time allocations are not growth */
	t0 = h_now_ms();
	clients_start();
	for (int i = 1; i <= 3; i++) {
		usleep(700 * 1000);
		hd_kill(d, SIGHUP);
		hups++;
		hd_assert(d, hd_wait_log(d, "reload done", i, H_WAIT_MS), "warm-up reload %d", i);
	}
	hd_assert(d, clients_pause(), "the clients did not pause");
	settle(d, &q0);
	print_usage("Q0", h_now_ms() - t0, &q0);

	/* phase A: load and reloads */
	clients_run();
	next_sample = h_now_ms() + SAMPLE_EVERY_MS;
	next_hup = h_now_ms() + reload_ms;
	end = h_now_ms() + half * 1000LL;
	while (h_now_ms() < end) {
		usleep(20 * 1000);
		hd_assert(d, h_alive(d->master), "the master died");
		if (h_now_ms() >= next_hup) {
			hd_kill(d, SIGHUP);
			hups++;
			next_hup += reload_ms;
		}
		if (h_now_ms() >= next_sample) {
			measure(d, &u);
			print_usage("load", h_now_ms() - t0, &u);
			samples++;
			/* the master holds no connection: its fds move only by a
			 * reload in progress (a few) */
			hd_assert(d, u.master_fds <= q0.master_fds + 8, "the master's fds grew: "
			    "%d -> %d", q0.master_fds, u.master_fds);
			hd_assert(d, u.master_rss <= q0.master_rss + RSS_SLACK_KB,
			    "the master's RSS grew: %ld -> %ld kB", q0.master_rss, u.master_rss);
			next_sample += SAMPLE_EVERY_MS;
		}
	}
	/* the last HUP's reload done before measuring */
	hd_assert(d, clients_pause(), "the clients did not pause");
	{
		int done = hd_log_count(d, "reload done");

		hd_kill(d, SIGHUP);
		hups++;
		hd_assert(d, hd_wait_log(d, "reload done", done + 1, H_WAIT_MS),
		    "the last reload was not done");
	}
	settle(d, &q1);
	print_usage("Q1", h_now_ms() - t0, &q1);

	/* phase B: load, no reloads; a warm-up stint for these workers first */
	clients_run();
	usleep(bwarm * 1000 * 1000);
	hd_assert(d, clients_pause(), "the clients did not pause");
	settle(d, &qb);
	print_usage("QB", h_now_ms() - t0, &qb);
	clients_run();
	end = h_now_ms() + (half - bwarm) * 1000LL;
	while (h_now_ms() < end) {
		usleep(20 * 1000);
		hd_assert(d, h_alive(d->master), "the master died");
		if (h_now_ms() >= next_sample) {
			measure(d, &u);
			print_usage("load", h_now_ms() - t0, &u);
			samples++;
			hd_assert(d, u.master_fds <= q0.master_fds, "the master's fds grew: %d -> %d",
			    q0.master_fds, u.master_fds);
			next_sample += SAMPLE_EVERY_MS;
		}
	}
	hd_assert(d, clients_pause(), "the clients did not pause");
	settle(d, &q2);
	print_usage("Q2", h_now_ms() - t0, &q2);
	clients_stop();

	summary(d, &failed);
	fprintf(stderr, "soak: %d HUP sent, %d reloads done; %d samples under load; "
	    "%d unexpected worker exits\n", hups, hd_log_count(d, "reload done"), samples,
	    hd_log_count(d, "warn: worker "));
	hd_assert(d, hd_log_count(d, "warn: worker ") == 0 && !hd_log_has(d, "core dumped"),
	    "a worker crashed or exited unexpectedly");
	hd_assert(d, !hd_log_has(d, "reload failed"), "a reload failed");
	hd_assert(d, failed == 0, "%ld exchanges failed", failed);
	/* quiet points: nothing grew */
	hd_assert(d, q1.master_fds <= q0.master_fds && q2.master_fds <= q0.master_fds,
	    "the master's fds grew: %d, %d, %d", q0.master_fds, q1.master_fds, q2.master_fds);
	hd_assert(d, q1.all_fds <= q0.all_fds && q2.all_fds <= q0.all_fds,
	    "the daemon's fds grew: %d, %d, %d", q0.all_fds, q1.all_fds, q2.all_fds);
	hd_assert(d, q1.master_rss <= q0.master_rss + RSS_SLACK_KB &&
	    q2.master_rss <= q0.master_rss + RSS_SLACK_KB,
	    "the master's RSS grew: %ld, %ld, %ld kB", q0.master_rss, q1.master_rss, q2.master_rss);
	/* the same workers through phase B */
	hd_assert(d, qb.workers == 2 && q2.workers == 2, "workers: %d, %d", qb.workers, q2.workers);
	for (int i = 0; i < 2; i++) {
		int j = qb.pid[0] == q2.pid[i] ? 0 : 1;

		hd_assert(d, qb.pid[j] == q2.pid[i], "worker %d was replaced in phase B",
		    (int)q2.pid[i]);
		hd_assert(d, q2.fds[i] <= qb.fds[j], "worker %d: fds grew %d -> %d",
		    (int)q2.pid[i], qb.fds[j], q2.fds[i]);
		hd_assert(d, q2.rss[i] <= qb.rss[j] + RSS_SLACK_KB, "worker %d: RSS grew %ld -> "
		    "%ld kB", (int)q2.pid[i], qb.rss[j], q2.rss[i]);
	}
	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS + SHUTDOWN_TIMEOUT_MS);
	hd_free(d);
	fprintf(stderr, "soak: passed\n");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("soak");
	TCase *tc = tcase_create("soak");

	tcase_set_timeout(tc, env_int("SOAK_SECONDS", 60) + 180);
	tcase_add_test(tc, soak);
	suite_add_tcase(s, tc);
	return h_main(s);
}
