/* floor: the smallest correct prefork epoll server, the benchmark's floor.
 *
 *   floor [-r] [-e] [-w WORKERS] [-a ADDR] -p PORT
 *
 * The parent binds, forks WORKERS children and waits; each child runs plain
 * level-triggered epoll: on a readable listening socket it accept4()s until
 * EAGAIN; on a readable connection it does one read() and answers:
 *   http (default): one fixed HTTP/1.1 response per read that holds a whole
 *     request head, keep-alive unless "Connection: close" (or HTTP/1.0
 *     without keep-alive), then close;
 *   -e: echo, every byte back.
 * -r: SO_REUSEPORT, one socket per worker (made by the parent before the
 * fork, as acceptd does); default: one shared socket.
 * It trusts its client (the benchmark's own load): a request that does not
 * arrive in one read, or a short write, just closes the connection. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXW 1024

static int echo_mode;
static char resp_keep[256], resp_close[256];
static int resp_keep_len, resp_close_len, date_off_keep, date_off_close;
static time_t resp_date;

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static int
listener(const char *addr, int port, int reuseport)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "floor: bad address %s\n", addr);
		exit(2);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		die("SO_REUSEPORT");
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
		die("bind");
	if (listen(fd, 4096) < 0)
		die("listen");
	return fd;
}

/* The same response acceptd's http handler sends by default, Date included. */
static int
build(char *b, size_t cap, const char *connection, int *date_off)
{
	int n = snprintf(b, cap, "HTTP/1.1 200 OK\r\nDate: ");

	*date_off = n;
	n += snprintf(b + n, cap - n, "%29s\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 3\r\n%s\r\nok\n", "", connection);
	return n;
}

static void
set_date(time_t now)
{
	char d[30];
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(d, sizeof d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	memcpy(resp_keep + date_off_keep, d, 29);
	memcpy(resp_close + date_off_close, d, 29);
	resp_date = now;
}

/* Does the head ask for the connection to close? A Connection field
 * holding "close"; HTTP/1.0 closes unless it holds keep-alive. (A plain
 * scan: strcasestr alone costs glibc ~1,200 instructions per request.) */
static int
wants_close(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *eol, *nl = memchr(buf, '\n', len);
	int v10 = nl && nl - buf >= 9 && memcmp(nl - 9, "HTTP/1.0\r", 9) == 0;

	while ((p = memchr(p, '\n', end - p)) && end - ++p > 11) {
		if ((*p | 0x20) != 'c' || strncasecmp(p, "Connection:", 11) != 0)
			continue;
		eol = memchr(p, '\n', end - p);
		for (p += 11; p + 5 <= eol; p++) {
			if (strncasecmp(p, "close", 5) == 0)
				return 1;
			if (p + 10 <= eol && strncasecmp(p, "keep-alive", 10) == 0)
				return 0;
		}
		return v10;
	}
	return v10;
}

static void
serve(int *lfds, int nl)
{
	struct epoll_event ev, evs[256];
	char buf[16384];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		die("epoll_create1");
	for (int i = 0; i < nl; i++) {
		ev.events = EPOLLIN;
		ev.data.u64 = (uint64_t)lfds[i] << 32 | 1;  /* low bit: listener */
		if (epoll_ctl(ep, EPOLL_CTL_ADD, lfds[i], &ev) < 0)
			die("epoll_ctl");
	}
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			int fd = (int)(evs[i].data.u64 >> 32);

			if (evs[i].data.u64 & 1) {
				int c;

				while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					ev.events = EPOLLIN;
					ev.data.u64 = (uint64_t)c << 32;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
						close(c);
				}
				continue;
			}
			ssize_t r = read(fd, buf, sizeof buf - 1);

			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				close(fd);
				continue;
			}
			if (echo_mode) {
				if (write(fd, buf, r) != r)
					close(fd);
				continue;
			}
			buf[r] = 0;
			if (memmem(buf, r, "\r\n\r\n", 4) == NULL) {
				close(fd);      /* not one whole head in one read */
				continue;
			}
			time_t now = time(NULL);

			if (now != resp_date)
				set_date(now);
			if (wants_close(buf, r)) {
				if (write(fd, resp_close, resp_close_len) < 0) {}
				close(fd);
			} else if (write(fd, resp_keep, resp_keep_len) != resp_keep_len) {
				close(fd);
			}
		}
	}
}

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	stop = 1;
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = -1, workers = 1, reuseport = 0, opt;
	int lfds[MAXW];
	pid_t pids[MAXW];

	while ((opt = getopt(argc, argv, "rew:a:p:")) != -1) {
		switch (opt) {
		case 'r': reuseport = 1; break;
		case 'e': echo_mode = 1; break;
		case 'w': workers = atoi(optarg); break;
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: floor [-r] [-e] [-w WORKERS] [-a ADDR] -p PORT\n");
			return 2;
		}
	}
	if (port < 0 || workers < 1 || workers > MAXW) {
		fprintf(stderr, "usage: floor [-r] [-e] [-w WORKERS] [-a ADDR] -p PORT\n");
		return 2;
	}
	resp_keep_len = build(resp_keep, sizeof resp_keep, "", &date_off_keep);
	resp_close_len = build(resp_close, sizeof resp_close, "Connection: close\r\n",
	    &date_off_close);
	set_date(time(NULL));
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < (reuseport ? workers : 1); i++)
		lfds[i] = listener(addr, port, reuseport);
	for (int i = 0; i < workers; i++) {
		if ((pids[i] = fork()) < 0)
			die("fork");
		if (pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (int k = 0; k < (reuseport ? workers : 1); k++)
				if (reuseport && k != i)
					close(lfds[k]);
			serve(reuseport ? &lfds[i] : lfds, 1);
		}
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	fprintf(stderr, "floor: ready, %d workers, %s\n", workers,
	    reuseport ? "reuseport" : "shared");
	while (!stop)
		pause();
	for (int i = 0; i < workers; i++)
		kill(pids[i], SIGKILL);
	while (wait(NULL) > 0)
		;
	return 0;
}
