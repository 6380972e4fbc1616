/* load: the benchmark's raw TCP load generator (one thread, epoll).
 *
 *   load [-a ADDR] -p PORT [-c CONC] [-d SECONDS | -n CONNS] [-r TRIPS]
 *        [-s SIZE] [-m echo|http|httpclose] [-H]
 *
 * CONC connections in flight; each connects, makes TRIPS round trips and
 * closes, and a new one takes its place, for SECONDS or until CONNS
 * connections are done. A round trip: echo sends SIZE bytes and waits for
 * them back; http sends a GET and waits for the whole response (head and
 * Content-Length bytes), httpclose the same with "Connection: close" (then
 * one trip per connection, and the server closes).
 * -H (hold): open CONNS connections, one round trip each, keep them open,
 * print "held N" and wait for stdin to close (RSS per idle connection,
 * fairness by descriptor count).
 * Prints one line: conns, trips, errors, elapsed, rate, latency percentiles
 * of the round trips in microseconds (the first trip includes the connect). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { M_ECHO, M_HTTP, M_HTTPCLOSE };

struct cl {
	int fd;
	int trips;        /* done on this connection */
	size_t got;       /* bytes of the current reply */
	size_t want;      /* expected reply size, 0: not known yet (http) */
	double t0;        /* current trip started */
	char buf[4096];
};

static int mode = M_ECHO, trips_per = 1, size = 64, hold;
static struct sockaddr_in sa;
static char msg[65536];
static size_t msg_len;
static double *lat;
static size_t nlat, caplat;
static long conns_done, conns_started, trips_done, errors, conns_max = -1;
static int ep;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
record(double us)
{
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 1 << 16;
		if (!(lat = realloc(lat, caplat * sizeof *lat))) {
			perror("realloc");
			exit(1);
		}
	}
	lat[nlat++] = us;
}

static int
start(struct cl *c)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("socket");
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->trips = 0;
	c->got = 0;
	c->want = 0;
	c->t0 = now();
	conns_started++;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
		close(c->fd);
		errors++;
		return -1;
	}
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

static void
finish(struct cl *c, int ok)
{
	if (!ok)
		errors++;
	else
		conns_done++;
	close(c->fd);
	c->fd = -1;
}

static int
send_req(struct cl *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	c->got = 0;
	c->want = mode == M_ECHO ? msg_len : 0;
	if (write(c->fd, msg, msg_len) != (ssize_t)msg_len)
		return -1;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	return 0;
}

/* The size of a whole response once its head is in, else 0. */
static size_t
http_size(const char *b, size_t n)
{
	const char *e = memmem(b, n, "\r\n\r\n", 4), *cl;

	if (e == NULL)
		return 0;
	cl = memmem(b, e - b, "Content-Length:", 15);
	return (e - b) + 4 + (cl ? strtoul(cl + 15, NULL, 10) : 0);
}

/* 1: connection done (closed), 0: goes on. */
static int
on_event(struct cl *c, unsigned events)
{
	ssize_t r;

	if (c->trips == 0 && c->got == 0 && c->want == 0 && (events & EPOLLOUT)) {
		int err = 0;
		socklen_t l = sizeof err;

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err || send_req(c) < 0) {
			finish(c, 0);
			return 1;
		}
		return 0;
	}
	r = read(c->fd, c->buf + (mode == M_ECHO ? 0 : c->got),
	    mode == M_ECHO ? sizeof c->buf : sizeof c->buf - c->got);
	if (r < 0 && errno == EAGAIN)
		return 0;
	if (r <= 0) {
		finish(c, 0);
		return 1;
	}
	c->got += r;
	if (mode != M_ECHO && !c->want)
		c->want = http_size(c->buf, c->got);
	if (!c->want || c->got < c->want)
		return 0;
	record((now() - c->t0) * 1e6);
	trips_done++;
	if (hold)
		return 1;       /* stays open, off the event set */
	if (++c->trips >= trips_per || mode == M_HTTPCLOSE) {
		finish(c, 1);
		return 1;
	}
	c->t0 = now();
	if (send_req(c) < 0) {
		finish(c, 0);
		return 1;
	}
	return 0;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double p)
{
	size_t i;

	if (!nlat)
		return 0;
	i = (size_t)(p / 100 * (nlat - 1) + 0.5);
	return lat[i];
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *m = "echo";
	int port = -1, conc = 16, opt;
	double secs = -1, t0, deadline;
	struct cl *cls;
	struct epoll_event evs[256];
	long held = 0;

	while ((opt = getopt(argc, argv, "a:p:c:d:n:r:s:m:H")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'c': conc = atoi(optarg); break;
		case 'd': secs = atof(optarg); break;
		case 'n': conns_max = atol(optarg); break;
		case 'r': trips_per = atoi(optarg); break;
		case 's': size = atoi(optarg); break;
		case 'm': m = optarg; break;
		case 'H': hold = 1; break;
		default:
			goto usage;
		}
	}
	if (strcmp(m, "echo") == 0)
		mode = M_ECHO;
	else if (strcmp(m, "http") == 0)
		mode = M_HTTP;
	else if (strcmp(m, "httpclose") == 0)
		mode = M_HTTPCLOSE;
	else
		goto usage;
	if (port < 0 || conc < 1 || trips_per < 1 || size < 1 || size > (int)sizeof msg ||
	    (secs < 0 && conns_max < 0) || (hold && conns_max < 0))
		goto usage;
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		goto usage;
	if (mode == M_ECHO) {
		for (int i = 0; i < size; i++)
			msg[i] = 'a' + i % 26;
		msg_len = size;
	} else {
		msg_len = snprintf(msg, sizeof msg, "GET / HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n",
		    addr, port, mode == M_HTTPCLOSE ? "Connection: close\r\n" : "");
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || !(cls = calloc(conc, sizeof *cls))) {
		perror("setup");
		return 1;
	}
	t0 = now();
	deadline = secs >= 0 ? t0 + secs : 1e300;
	for (int i = 0; i < conc; i++) {
		cls[i].fd = -1;
		if (conns_max < 0 || conns_started < conns_max)
			start(&cls[i]);
	}
	for (;;) {
		int n, active = 0;

		for (int i = 0; i < conc; i++)
			active += cls[i].fd >= 0;
		if (!active || now() >= deadline)
			break;
		n = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct cl *c = evs[i].data.ptr;

			if (!on_event(c, evs[i].events))
				continue;
			if (hold && c->fd >= 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				held++;
				c->fd = -1;   /* the descriptor stays open */
			}
			if (now() < deadline && (conns_max < 0 || conns_started < conns_max))
				start(c);
		}
	}
	double el = now() - t0;

	qsort(lat, nlat, sizeof *lat, cmp);
	printf("conns=%ld trips=%ld errors=%ld elapsed=%.3f rate=%.0f "
	    "p50=%.0f p90=%.0f p99=%.0f p999=%.0f max=%.0f\n",
	    hold ? held : conns_done, trips_done, errors, el, trips_done / el,
	    pct(50), pct(90), pct(99), pct(99.9), pct(100));
	if (hold) {
		char c;

		printf("held %ld\n", held);
		fflush(stdout);
		while (read(0, &c, 1) > 0)
			;
	}
	return 0;
usage:
	fprintf(stderr, "usage: load [-a ADDR] -p PORT [-c CONC] [-d SECONDS | -n CONNS] "
	    "[-r TRIPS] [-s SIZE] [-m echo|http|httpclose] [-H]\n");
	return 2;
}
