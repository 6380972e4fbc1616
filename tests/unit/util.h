/* util: what the unit tests share: socket pairs, a client-side reader, and
 * a loop pump with a deadline, so no test can hang. */
#ifndef ACCEPTD_TEST_UTIL_H
#define ACCEPTD_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <ev.h>

#include "conn.h"
#include "unit.h"
#include "handler.h"

static inline double
util_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void
util_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
}

/* Run the loop until cond(arg) holds or ms pass. A 1 ms tick keeps
 * EVRUN_ONCE from blocking, so the client side (polled in cond) and the
 * server side (the loop) take turns. Returns whether cond held. */
static inline int
pump_until(struct ev_loop *loop, int (*cond)(void *), void *arg, int ms)
{
	double deadline = util_now() + ms / 1000.0;
	ev_timer tick;
	int ok;

	ev_timer_init(&tick, util_tick, 0.001, 0.001);
	ev_timer_start(loop, &tick);
	while (!(ok = cond(arg)) && util_now() < deadline)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &tick);
	return ok;
}

static inline int
util_never(void *arg)
{
	return 0;
}

/* Let the loop run for ms, whatever happens. */
static inline void
pump_for(struct ev_loop *loop, int ms)
{
	pump_until(loop, util_never, NULL, ms);
}

static inline void
util_nonblock(int fd)
{
	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* sv[0] the client, sv[1] the server side (handed to the handler). */
static inline void
util_pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv), 0);
}

/* A loopback TCP connection: for RSTs, which AF_UNIX does not have. */
static inline void
util_tcp_pair(int sv[2])
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof sin;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(l, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &sl), 0);
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sv[0], 0);
	ck_assert_int_eq(connect(sv[0], (struct sockaddr *)&sin, sizeof sin), 0);
	sv[1] = accept(l, NULL, NULL);
	ck_assert_int_ge(sv[1], 0);
	util_nonblock(sv[0]);
	util_nonblock(sv[1]);
	close(l);
}

/* What the client has read so far. */
struct util_rd {
	int fd;
	char *buf;
	size_t len, cap;
	int eof, err;          /* err: the errno that ended reading */
	size_t want;           /* for util_rd_has */
	const char *needle;    /* for util_rd_found */
};

static inline void
util_rd_init(struct util_rd *r, int fd)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
}

static inline void
util_rd_free(struct util_rd *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = 0;
}

/* Read whatever is available (at most max more bytes). */
static inline void
util_rd_poll_max(struct util_rd *r, size_t max)
{
	ssize_t n;

	while (!r->eof && !r->err && max) {
		if (r->cap - r->len < 65536 + 1) {
			r->cap = r->cap * 2 + 65536 + 1;
			r->buf = realloc(r->buf, r->cap);
			ck_assert_ptr_nonnull(r->buf);
		}
		n = read(r->fd, r->buf + r->len, max < 65536 ? max : 65536);
		if (n > 0) {
			r->len += n;
			r->buf[r->len] = 0;
			max -= n;
		} else if (n == 0) {
			r->eof = 1;
		} else if (errno != EAGAIN && errno != EINTR) {
			r->err = errno;
		} else {
			break;
		}
	}
}

static inline void
util_rd_poll(struct util_rd *r)
{
	util_rd_poll_max(r, (size_t)-1);
}

static inline int
util_rd_has(void *arg)
{
	struct util_rd *r = arg;

	util_rd_poll(r);
	return r->len >= r->want || r->eof || r->err;
}

static inline int
util_rd_ended(void *arg)
{
	struct util_rd *r = arg;

	util_rd_poll(r);
	return r->eof || r->err;
}

static inline int
util_rd_found(void *arg)
{
	struct util_rd *r = arg;

	util_rd_poll(r);
	return (r->buf && strstr(r->buf, r->needle)) || r->eof || r->err;
}

/* Pump until at least want bytes are in, or the stream ended. */
static inline size_t
util_read_len(struct ev_loop *loop, struct util_rd *r, size_t want, int ms)
{
	r->want = want;
	pump_until(loop, util_rd_has, r, ms);
	return r->len;
}

/* Pump until the server closed (EOF or reset). Returns 1 if it did. */
static inline int
util_read_eof(struct ev_loop *loop, struct util_rd *r, int ms)
{
	return pump_until(loop, util_rd_ended, r, ms);
}

/* Pump until needle appears in what was read. */
static inline int
util_read_str(struct ev_loop *loop, struct util_rd *r, const char *needle, int ms)
{
	r->needle = needle;
	pump_until(loop, util_rd_found, r, ms);
	return r->buf && strstr(r->buf, needle) != NULL;
}

/* Occurrences of needle in what was read. */
static inline int
util_count(const struct util_rd *r, const char *needle)
{
	int n = 0;

	for (const char *p = r->buf; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Write all of buf from the client, pumping the loop while the socket is
 * full. Returns the bytes written (less on error or deadline). */
static inline size_t
util_write_all(struct ev_loop *loop, int fd, const void *buf, size_t len, int ms)
{
	double deadline = util_now() + ms / 1000.0;
	size_t off = 0;
	ssize_t n;

	while (off < len && util_now() < deadline) {
		n = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);
		if (n > 0)
			off += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
		else
			pump_for(loop, 1);
	}
	return off;
}

static inline void
util_write_str(struct ev_loop *loop, int fd, const char *s)
{
	ck_assert_uint_eq(util_write_all(loop, fd, s, strlen(s), 5000), strlen(s));
}

static inline int
util_active_is(void *arg)
{
	return conn_active == *(unsigned *)arg;
}

/* Pump until conn_active == n. */
static inline int
util_wait_active(struct ev_loop *loop, unsigned n, int ms)
{
	return pump_until(loop, util_active_is, &n, ms);
}

/* The listener unit tests hand to handlers: "test", no policy. */
static inline struct handler_listener *
util_listener(void)
{
	static struct handler_listener *hl;

	if (!hl)
		hl = handler_listener_new("test", 0);
	ck_assert_ptr_nonnull(hl);
	return hl;
}

/* Hand fd to handler h as the worker's hand-off does (no addresses). */
static inline void
util_handoff(const struct acceptd_handler *h, void *conf, struct ev_loop *loop, int fd)
{
	struct acceptd_accept a = {
		.size = sizeof a, .fd = fd, .loop = loop, .listener = &util_listener()->pub,
	};

	util_listener()->cnt.accepted++;
	util_listener()->cnt.active++;
	h->accept(conf, &a);
}


#endif
