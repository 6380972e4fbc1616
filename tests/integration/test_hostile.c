/* Integration: hostile conditions (issue 7): out of descriptors, random
 * bytes, half-closed and reset connections, SIGPIPE, peers that never read
 * (bounded, then closed by idle_timeout), 2,000 idle connections (a new
 * client still served at once; all closed on time), the http header
 * timeout and header cap. One worker, so the worker under attack is the
 * one whose pid, CPU time and memory we watch.
 *
 * Not here: PROXY header garbage (tests/fuzz/fuzz_proxy_proto.c). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "harness.h"

#define ONE_WORKER "[daemon]\nworkers = 1\nmode = shared\nshutdown_timeout = 1s\n%s\n"

/* Nothing died: no worker killed or exited, and the one we watch lives. */
static void
assert_no_crash(struct hd *d, pid_t worker)
{
	hd_assert(d, !hd_log_has(d, "killed by signal"), "a worker was killed by a signal");
	hd_assert(d, !hd_log_has(d, ") exited with status"), "a worker exited");
	hd_assert(d, h_alive(worker), "worker %d is gone", (int)worker);
	hd_assert(d, hd_worker(d, 0) == worker, "worker 0 was respawned");
	hd_assert(d, h_alive(d->master), "the master is gone");
}

static void
raise_nofile(int want)
{
	struct rlimit rl;

	ck_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_cur < (rlim_t)want) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
		ck_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	}
}

static void
fill_random(unsigned char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = seed >> 16;
	}
}

/* Close with an RST rather than a FIN. */
static void
close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

/* A small receive buffer: the server's output backs up soon. (The send
 * side stays large: filling the server's buffers goes faster.) */
static void
small_rcvbuf(int fd)
{
	int v = 4096;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
}

/* Send without ever reading until sending has been blocked for ms:
 * the bytes the server let in. -1 if it never blocked within the bound. */
static long long
send_until_blocked(int fd, const void *chunk, size_t n, int ms, long long bound)
{
	long long total = 0, end = h_now_ms() + 20000;
	int fl = fcntl(fd, F_GETFL);
	size_t off = 0;

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	while (total <= bound && h_now_ms() < end) {
		/* from where the last send stopped: the stream stays whole */
		ssize_t k = send(fd, (const char *)chunk + off, n - off, MSG_NOSIGNAL);
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		if (k > 0) {
			total += k;
			off = (off + k) % n;
			continue;
		}
		if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -2;
		if (poll(&p, 1, ms) == 0) {
			fcntl(fd, F_SETFL, fl);
			return total;
		}
	}
	fcntl(fd, F_SETFL, fl);
	return -1;
}

/* rlimit_nofile = 64 and 300 clients that connect and hold: the worker
 * neither spins (under 10% of a core over 2 s) nor dies, says so in the
 * log, and once the clients go it serves a new one at once. */
START_TEST(out_of_descriptors)
{
	enum { NCLIENTS = 300 };
	struct hd *d = hd_up(ONE_WORKER "[listener e]\naddress = 127.0.0.1\nport = 0\n",
	    "rlimit_nofile = 64\n");
	int port = hd_port(d, "e"), fds[NCLIENTS], n = 0, fd;
	pid_t w = hd_worker(d, 0);
	long long t0, c0, c1;

	hd_assert(d, w > 0, "no worker");
	raise_nofile(NCLIENTS + 64);
	for (int i = 0; i < NCLIENTS; i++)
		if ((fds[i] = h_connect("127.0.0.1", port)) >= 0)
			n++;
	hd_assert(d, n > 200, "only %d of %d clients connected", n, NCLIENTS);
	hd_assert(d, hd_wait_log(d, "Too many open files", 1, H_WAIT_MS),
	    "the worker never ran out of descriptors");
	c0 = h_proc_cpu_ms(w);
	t0 = h_now_ms();
	usleep(2000 * 1000);
	c1 = h_proc_cpu_ms(w);
	t0 = h_now_ms() - t0;
	hd_assert(d, c0 >= 0 && c1 >= 0, "worker %d gone", (int)w);
	hd_assert(d, (c1 - c0) * 10 < t0,
	    "the worker used %lld ms of CPU in %lld ms while out of descriptors", c1 - c0, t0);
	/* the one-a-second log line, not one per attempt */
	hd_assert(d, hd_log_count(d, "Too many open files") <= 4, "%d EMFILE lines in ~2 s",
	    hd_log_count(d, "Too many open files"));
	assert_no_crash(d, w);
	/* the clients served so far still are */
	for (int i = 0; i < NCLIENTS; i++)
		if (fds[i] >= 0 && h_echo(fds[i], "still\n"))
			break;
	for (int i = 0; i < NCLIENTS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	t0 = h_now_ms();
	fd = -1;
	while (h_now_ms() - t0 < 1000) {
		if ((fd = h_connect("127.0.0.1", port)) >= 0 && h_echo(fd, "after\n"))
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
		usleep(10 * 1000);
	}
	hd_assert(d, fd >= 0, "no echo within 1 s of the clients leaving");
	close(fd);
	assert_no_crash(d, w);
	hd_free(d);
}
END_TEST

/* Random bytes: echo sends them all back; http answers 400 (or closes);
 * nothing dies and both go on serving. */
START_TEST(random_bytes)
{
	struct hd *d = hd_up(ONE_WORKER "[listener e]\naddress = 127.0.0.1\nport = 0\n\n"
	    "[listener web]\naddress = 127.0.0.1\nport = 0\nhandler = http\n"
	    "header_timeout = 1s\n", "");
	int pe = hd_port(d, "e"), pw = hd_port(d, "web"), fd, status;
	pid_t w = hd_worker(d, 0);
	static unsigned char junk[32768], back[32768];
	char buf[4096];

	for (unsigned seed = 1; seed <= 8; seed++) {
		size_t n = 1000 * seed * seed % sizeof junk + 1;

		fill_random(junk, n, seed);
		fd = h_connect("127.0.0.1", pe);
		hd_assert(d, fd >= 0, "connect: %s", strerror(errno));
		hd_assert(d, h_send_all(fd, junk, n) == 0, "send");
		hd_assert(d, h_recv_exact(fd, back, n, H_WAIT_MS) == (ssize_t)n &&
		    memcmp(junk, back, n) == 0, "echo garbled %zu random bytes", n);
		close(fd);

		fd = h_connect("127.0.0.1", pw);
		hd_assert(d, fd >= 0, "connect: %s", strerror(errno));
		junk[0] = 'G' ^ (seed & 1);     /* sometimes almost a method */
		h_send_all(fd, junk, n);        /* it may close before taking all */
		ssize_t k = h_recv_until_close(fd, buf, sizeof buf - 1, H_WAIT_MS);
		hd_assert(d, k >= 0, "http kept a connection of random bytes open");
		buf[k > 0 ? k : 0] = '\0';
		hd_assert(d, k == 0 || strncmp(buf, "HTTP/1.1 4", 10) == 0 ||
		    strncmp(buf, "HTTP/1.1 505", 12) == 0, "http answered junk with \"%.40s\"", buf);
		close(fd);
	}
	assert_no_crash(d, w);
	hd_assert(d, h_echo_at("127.0.0.1", pe), "echo stopped serving");
	fd = h_connect("127.0.0.1", pw);
	hd_assert(d, fd >= 0 && h_http_get(fd, "/", &status, buf, sizeof buf) >= 0 &&
	    status == 200, "http stopped serving");
	close(fd);
	hd_free(d);
}
END_TEST

/* Half-closed peers (SHUT_WR): echo returns what came and closes; http
 * answers a complete request then closes, and closes on a partial one;
 * a peer that connects and leaves at once costs nothing. */
START_TEST(half_closed)
{
	struct hd *d = hd_up(ONE_WORKER "[listener e]\naddress = 127.0.0.1\nport = 0\n\n"
	    "[listener web]\naddress = 127.0.0.1\nport = 0\nhandler = http\n", "");
	int pe = hd_port(d, "e"), pw = hd_port(d, "web"), fd;
	pid_t w = hd_worker(d, 0);
	char buf[4096];
	ssize_t k;

	fd = h_connect("127.0.0.1", pe);
	h_send_str(fd, "half\n");
	shutdown(fd, SHUT_WR);
	k = h_recv_until_close(fd, buf, sizeof buf, H_WAIT_MS);
	hd_assert(d, k == 5 && memcmp(buf, "half\n", 5) == 0, "echo after SHUT_WR: %zd bytes", k);
	close(fd);

	fd = h_connect("127.0.0.1", pw);
	h_send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	shutdown(fd, SHUT_WR);
	k = h_recv_until_close(fd, buf, sizeof buf - 1, H_WAIT_MS);
	hd_assert(d, k > 0, "http after SHUT_WR: no answer, or not closed");
	buf[k] = '\0';
	hd_assert(d, strncmp(buf, "HTTP/1.1 200", 12) == 0, "http after SHUT_WR: \"%.40s\"", buf);
	close(fd);

	fd = h_connect("127.0.0.1", pw);
	h_send_str(fd, "GET / HTTP/1.1\r\nHo");
	shutdown(fd, SHUT_WR);
	hd_assert(d, h_wait_closed(fd, H_WAIT_MS), "http kept a half-closed partial request open");
	close(fd);

	for (int i = 0; i < 50; i++) {
		if ((fd = h_connect("127.0.0.1", i % 2 ? pe : pw)) < 0)
			continue;
		if (i % 3)
			close(fd);
		else
			close_reset(fd);
	}
	assert_no_crash(d, w);
	hd_assert(d, h_echo_at("127.0.0.1", pe), "echo stopped serving");
	hd_free(d);
}
END_TEST

/* Resets while a response is queued (the peer never read, then RST):
 * echo, http (pipelined) and chargen; SIGPIPE never kills the worker. */
START_TEST(reset_mid_write)
{
	struct hd *d = hd_up(ONE_WORKER "[listener e]\naddress = 127.0.0.1\nport = 0\n\n"
	    "[listener web]\naddress = 127.0.0.1\nport = 0\nhandler = http\n\n"
	    "[listener c]\naddress = 127.0.0.1\nport = 0\nhandler = chargen\n", "");
	int pe = hd_port(d, "e"), pw = hd_port(d, "web"), pc = hd_port(d, "c"), fd;
	static const char get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static char chunk[64 * 1024], reqs[100 * (sizeof get - 1)];
	pid_t w = hd_worker(d, 0);
	long long took;
	char buf[256];

	memset(chunk, 'x', sizeof chunk);
	for (size_t i = 0; i < 100; i++)
		memcpy(reqs + i * (sizeof get - 1), get, sizeof get - 1);
	for (int round = 0; round < 3; round++) {
		fd = h_connect("127.0.0.1", pe);
		small_rcvbuf(fd);
		hd_assert(d, send_until_blocked(fd, chunk, sizeof chunk, 300, 64LL << 20) > 0,
		    "echo: the server never stopped taking input");
		close_reset(fd);

		fd = h_connect("127.0.0.1", pw);
		small_rcvbuf(fd);
		took = send_until_blocked(fd, reqs, sizeof reqs, 300, 64LL << 20);
		hd_assert(d, took > 0, "http: the server never stopped taking requests (%lld, %s)",
		    took, strerror(errno));
		close_reset(fd);

		fd = h_connect("127.0.0.1", pc);
		small_rcvbuf(fd);
		hd_assert(d, h_recv_exact(fd, buf, sizeof buf, H_WAIT_MS) == sizeof buf, "chargen");
		usleep(50 * 1000);  /* its output queues up */
		close_reset(fd);
	}
	usleep(200 * 1000);
	assert_no_crash(d, w);
	hd_assert(d, h_echo_at("127.0.0.1", pe), "echo stopped serving");
	hd_free(d);
}
END_TEST

/* A peer that never reads: the server stops reading once its output is
 * bounded; the bytes it takes stay bounded and so does its memory. */
START_TEST(never_reads)
{
	struct hd *d = hd_up(ONE_WORKER "[listener e]\naddress = 127.0.0.1\nport = 0\n\n"
	    "[listener web]\naddress = 127.0.0.1\nport = 0\nhandler = http\n", "");
	int pe = hd_port(d, "e"), pw = hd_port(d, "web"), fd[4];
	static const char get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static char chunk[64 * 1024], reqs[1000 * (sizeof get - 1)];
	pid_t w = hd_worker(d, 0);
	long rss0 = h_proc_rss_kb(w), rss1;
	long long took;

	memset(chunk, 'y', sizeof chunk);
	for (size_t i = 0; i < 1000; i++)
		memcpy(reqs + i * (sizeof get - 1), get, sizeof get - 1);
	for (int i = 0; i < 4; i++) {
		fd[i] = h_connect("127.0.0.1", i % 2 ? pw : pe);
		small_rcvbuf(fd[i]);
		/* socket buffers (autotuned, a few MB at most) plus conn.c's
		 * 64 KiB each way: far under 64 MiB */
		took = i % 2 ? send_until_blocked(fd[i], reqs, sizeof reqs, 300, 64LL << 20) :
		    send_until_blocked(fd[i], chunk, sizeof chunk, 300, 64LL << 20);
		hd_assert(d, took > 0, "%s: never blocked: the server reads without bound",
		    i % 2 ? "http" : "echo");
	}
	rss1 = h_proc_rss_kb(w);
	hd_assert(d, rss0 > 0 && rss1 > 0, "no VmRSS");
	/* 4 connections at most 128 KiB each of conn.c buffers, plus noise */
	hd_assert(d, rss1 - rss0 < 4 * 1024, "worker RSS grew from %ld to %ld kB", rss0, rss1);
	assert_no_crash(d, w);
	hd_assert(d, h_echo_at("127.0.0.1", pe), "echo stopped serving the others");
	for (int i = 0; i < 4; i++)
		close_reset(fd[i]);
	hd_free(d);
}
END_TEST

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* Percentiles of n sorted values into a string. */
static void
describe_ms(long long *v, int n, char *buf, size_t cap)
{
	qsort(v, n, sizeof *v, cmp_ll);
	snprintf(buf, cap, "n %d, min %lld, median %lld, p90 %lld, p99 %lld, max %lld ms", n,
	    v[0], v[n / 2], v[n * 9 / 10], v[n * 99 / 100], v[n - 1]);
}

/* A new client's connect and one echo exchange, in ms; -1 when it failed
 * (bounded: a second at most). */
static long long
echo_rtt(int port)
{
	long long t0 = h_now_ms();
	char buf[8];
	int fd = h_connect("127.0.0.1", port), ok;

	if (fd < 0)
		return -1;
	ok = h_send_str(fd, "ping\n") == 0 && h_recv_exact(fd, buf, 5, 1000) == 5 &&
	    memcmp(buf, "ping\n", 5) == 0;
	close(fd);
	return ok ? h_now_ms() - t0 : -1;
}

/* idle_timeout = 2s and 2,000 connections that send nothing: while they
 * are held, and while the worker closes them, a new client's connect and
 * echo round trip stays under 100 ms; each of them sees its close between
 * 2 s and 3.5 s after its connect. */
START_TEST(idle_many)
{
	enum { NIDLE = 2000, IDLE_MS = 2000, LATE_MS = 1500, RTT_MS = 100, SAMPLE_MS = 20 };
	struct hd *d = hd_up(ONE_WORKER "[listener e]\naddress = 127.0.0.1\nport = 0\n"
	    "idle_timeout = 2s\n", "rlimit_nofile = 8192\n");
	static struct pollfd p[NIDLE];
	static long long t_conn[NIDLE], took[NIDLE], rtt[4096];
	int port = hd_port(d, "e"), open_n = 0, nrtt = 0, early = 0, late = 0, bad_rtt = 0;
	pid_t w = hd_worker(d, 0);
	long long t_first, t_all, next_sample, end, worst = 0;
	char what[256], buf[64];

	hd_assert(d, w > 0, "no worker");
	raise_nofile(NIDLE + 100);
	t_first = h_now_ms();
	for (int i = 0; i < NIDLE; i++) {
		t_conn[i] = h_now_ms();
		p[i].fd = h_connect("127.0.0.1", port);
		hd_assert(d, p[i].fd >= 0, "idle connection %d: %s", i, strerror(errno));
		p[i].events = POLLIN;
		took[i] = -1;
	}
	t_all = h_now_ms();
	open_n = NIDLE;
	hd_assert(d, t_all - t_first < IDLE_MS - 500,
	    "opening %d connections took %lld ms: too slow for this test", NIDLE, t_all - t_first);

	/* Until every idle one is closed (or far too late): record each close,
	 * and every SAMPLE_MS time a new client's round trip. */
	next_sample = h_now_ms();
	end = t_all + IDLE_MS + LATE_MS + 2000;
	while (open_n > 0 && h_now_ms() < end) {
		int k = poll(p, NIDLE, 5);

		for (int i = 0; k > 0 && i < NIDLE; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			/* anything but EOF or a reset (data) is wrong too */
			ssize_t n = recv(p[i].fd, buf, sizeof buf, MSG_DONTWAIT);

			hd_assert(d, n <= 0, "an idle connection got %zd bytes", n);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			took[i] = h_now_ms() - t_conn[i];
			close(p[i].fd);
			p[i].fd = -1;
			open_n--;
		}
		if (h_now_ms() >= next_sample && nrtt < (int)(sizeof rtt / sizeof rtt[0])) {
			long long r = echo_rtt(port);

			hd_assert(d, r >= 0, "a new client was not served (%d idle ones open)", open_n);
			rtt[nrtt++] = r;
			if (r > worst)
				worst = r;
			bad_rtt += r >= RTT_MS;
			next_sample = h_now_ms() + SAMPLE_MS;
		}
	}
	for (int i = 0; i < NIDLE; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	hd_assert(d, open_n == 0, "%d of %d idle connections were still open %lld ms after "
	    "the last connected", open_n, NIDLE, h_now_ms() - t_all);
	for (int i = 0; i < NIDLE; i++) {
		/* the timer starts at the worker's loop time of the accept,
		 * which may be a few ms before our connect() returned */
		early += took[i] < IDLE_MS - 50;
		late += took[i] > IDLE_MS + LATE_MS;
	}
	describe_ms(rtt, nrtt, what, sizeof what);
	fprintf(stderr, "idle_many: new-client connect+echo while %d idle: %s\n", NIDLE, what);
	/* The 100 ms is the issue's; a test must not be a timing benchmark on
	 * a shared machine (a sanitizer build, a busy neighbour): most round
	 * trips within it, and none anywhere near the idle timeout, which is
	 * what "not stopped by idle clients" means. The distribution is printed. */
	hd_assert(d, bad_rtt * 10 <= nrtt && worst < IDLE_MS / 2,
	    "%d of %d new-client round trips took %d ms or more (worst %lld): %s",
	    bad_rtt, nrtt, RTT_MS, worst, what);
	describe_ms(took, NIDLE, what, sizeof what);
	fprintf(stderr, "idle_many: idle connections closed after: %s (opened in %lld ms)\n",
	    what, t_all - t_first);
	hd_assert(d, early == 0 && late == 0, "idle_timeout 2 s: %d closed early, %d late: %s",
	    early, late, what);
	assert_no_crash(d, w);
	hd_assert(d, echo_rtt(port) >= 0, "echo stopped serving");
	hd_free(d);
}
END_TEST

/* A peer that never reads, on echo and on pipelined http: the server stops
 * taking its input (the bound), and idle_timeout then closes it: not
 * before about idle_timeout after the last byte moved, not much after. */
START_TEST(never_reads_idle_timeout)
{
	enum { IDLE_MS = 2000, LATE_MS = 1500 };
	struct hd *d = hd_up(ONE_WORKER "[listener e]\naddress = 127.0.0.1\nport = 0\n"
	    "idle_timeout = 2s\n\n[listener web]\naddress = 127.0.0.1\nport = 0\n"
	    "handler = http\nidle_timeout = 2s\n", "");
	int port[2] = { hd_port(d, "e"), hd_port(d, "web") }, fd[2];
	static const char get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static char chunk[64 * 1024], reqs[1000 * (sizeof get - 1)];
	static const char *const name[2] = { "echo", "http" };
	long long last[2], shut[2];
	pid_t w = hd_worker(d, 0);

	memset(chunk, 'z', sizeof chunk);
	for (size_t i = 0; i < 1000; i++)
		memcpy(reqs + i * (sizeof get - 1), get, sizeof get - 1);
	for (int i = 0; i < 2; i++) {
		long long took;

		fd[i] = h_connect("127.0.0.1", port[i]);
		hd_assert(d, fd[i] >= 0, "connect: %s", strerror(errno));
		small_rcvbuf(fd[i]);
		took = i ? send_until_blocked(fd[i], reqs, sizeof reqs, 300, 64LL << 20) :
		    send_until_blocked(fd[i], chunk, sizeof chunk, 300, 64LL << 20);
		/* send_until_blocked returned after 300 ms without progress */
		last[i] = h_now_ms() - 300;
		hd_assert(d, took > 0, "%s: never blocked: the server reads without bound", name[i]);
		shut[i] = -1;
	}
	/* Wait for each close without reading (reading would let the server
	 * write, and that is activity): its FIN, or the reset a close with
	 * our unread requests in its buffer sends. */
	for (long long end = h_now_ms() + IDLE_MS + LATE_MS + 2000;
	    (shut[0] < 0 || shut[1] < 0) && h_now_ms() < end;) {
		struct pollfd p[2];

		for (int i = 0; i < 2; i++) {
			p[i].fd = shut[i] < 0 ? fd[i] : -1;
			p[i].events = POLLRDHUP;
		}
		if (poll(p, 2, 10) <= 0)
			continue;
		for (int i = 0; i < 2; i++)
			if (p[i].revents & (POLLRDHUP | POLLHUP | POLLERR))
				shut[i] = h_now_ms();
	}
	for (int i = 0; i < 2; i++) {
		hd_assert(d, shut[i] >= 0, "%s: a peer that never reads was not closed within "
		    "%d ms of its last byte", name[i], IDLE_MS + LATE_MS + 2000);
		fprintf(stderr, "never_reads_idle_timeout: %s closed %lld ms after the last "
		    "byte moved\n", name[i], shut[i] - last[i]);
		hd_assert(d, shut[i] - last[i] >= IDLE_MS - 300 &&
		    shut[i] - last[i] <= IDLE_MS + LATE_MS, "%s: closed %lld ms after the last "
		    "byte moved (idle_timeout %d ms)", name[i], shut[i] - last[i], IDLE_MS);
		close(fd[i]);
	}
	assert_no_crash(d, w);
	hd_assert(d, h_echo_at("127.0.0.1", port[0]), "echo stopped serving");
	hd_free(d);
}
END_TEST

/* http: a head that never completes gets 408 after header_timeout; a
 * trickling one too; an oversized one 431. */
START_TEST(http_header_timeout_and_cap)
{
	struct hd *d = hd_up(ONE_WORKER "[listener web]\naddress = 127.0.0.1\nport = 0\n"
	    "handler = http\nheader_timeout = 500ms\n", "");
	int pw = hd_port(d, "web"), fd;
	pid_t w = hd_worker(d, 0);
	char buf[1024], *big;
	long long t0, dt;
	ssize_t k;

	fd = h_connect("127.0.0.1", pw);
	t0 = h_now_ms();
	h_send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
	k = h_recv_until_close(fd, buf, sizeof buf - 1, H_WAIT_MS);
	dt = h_now_ms() - t0;
	hd_assert(d, k > 0, "no answer to an incomplete head");
	buf[k] = '\0';
	hd_assert(d, strncmp(buf, "HTTP/1.1 408 ", 13) == 0, "got \"%.40s\"", buf);
	hd_assert(d, dt >= 400 && dt < 3000, "408 after %lld ms, want about 500", dt);
	close(fd);

	/* a byte every 100 ms is still cut at the timeout */
	fd = h_connect("127.0.0.1", pw);
	t0 = h_now_ms();
	for (int i = 0; i < 40 && h_quiet(fd, 100); i++)
		h_send_str(fd, "a");
	dt = h_now_ms() - t0;
	hd_assert(d, dt < 2000, "a trickling head was served for %lld ms", dt);
	close(fd);

	/* the cap: a head over 8 KiB is 431 */
	big = malloc(20000);
	strcpy(big, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
	k = strlen(big);
	memset(big + k, 'b', 16000);
	big[k + 16000] = '\0';
	strcat(big, "\r\n\r\n");
	fd = h_connect("127.0.0.1", pw);
	h_send_str(fd, big);
	k = h_recv_until_close(fd, buf, sizeof buf - 1, H_WAIT_MS);
	hd_assert(d, k > 0, "no answer to a 16 KiB head");
	buf[k] = '\0';
	hd_assert(d, strncmp(buf, "HTTP/1.1 431 ", 13) == 0, "got \"%.40s\"", buf);
	close(fd);
	free(big);
	assert_no_crash(d, w);
	hd_free(d);
}
END_TEST

/* A reload while a fresh http connection has not sent its first request
 * yet: the old worker must answer it when it comes (with "Connection:
 * close"), not close or reset it (SPEC: no connection is refused or reset
 * by a reload). http_stop once took a fresh connection for an idle
 * keep-alive one and closed it. */
START_TEST(reload_fresh_http)
{
	struct hd *d = hd_up(ONE_WORKER "[listener web]\naddress = 127.0.0.1\nport = 0\n"
	    "handler = http\n", "");
	static const char get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	int pw = hd_port(d, "web"), fd;
	pid_t w = hd_worker(d, 0);
	char buf[1024];
	ssize_t k;

	fd = h_connect("127.0.0.1", pw);
	hd_assert(d, fd >= 0, "connect: %s", strerror(errno));
	usleep(200 * 1000);             /* accepted by worker w by now */
	hd_kill(d, SIGHUP);
	hd_assert(d, hd_wait_log(d, "reload done", 1, H_WAIT_MS), "no reload");
	usleep(200 * 1000);             /* w has been told to stop */
	h_send_all(fd, get, sizeof get - 1);
	k = h_recv_until_close(fd, buf, sizeof buf - 1, H_WAIT_MS);
	buf[k > 0 ? k : 0] = '\0';
	hd_assert(d, k > 0 && strncmp(buf, "HTTP/1.1 200 ", 13) == 0,
	    "a request on a connection accepted before the reload got %s (%zd bytes: \"%.40s\")",
	    k < 0 ? "no close" : k == 0 ? "a close or reset" : "a wrong answer", k, buf);
	hd_assert(d, strstr(buf, "Connection: close\r\n") != NULL, "no \"Connection: close\"");
	close(fd);
	hd_assert(d, h_wait_gone(w, H_WAIT_MS), "the old worker did not leave");
	hd_free(d);
}
END_TEST

/* One case per test: each runs alone with CK_RUN_CASE=name. */
static void
add(Suite *s, const char *name, const TTest *t)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

int
main(void)
{
	Suite *s = suite_create("hostile");

	add(s, "out_of_descriptors", out_of_descriptors);
	add(s, "random_bytes", random_bytes);
	add(s, "half_closed", half_closed);
	add(s, "reset_mid_write", reset_mid_write);
	add(s, "never_reads", never_reads);
	add(s, "never_reads_idle_timeout", never_reads_idle_timeout);
	add(s, "idle_many", idle_many);
	add(s, "reload_fresh_http", reload_fresh_http);
	add(s, "http_header_timeout_and_cap", http_header_timeout_and_cap);
	return h_main(s);
}
