/* conn: one accepted connection on a worker's libev loop: buffered
 * non-blocking I/O with back-pressure, and the single close path. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"

/* c->flags */
#define CONN_CLOSED      0x01u /* conn_close ran; only the memory is left */
#define CONN_BUSY        0x02u /* inside a callback: conn_close defers the free */
#define CONN_RDEOF       0x04u /* the peer shut down its sending side */
#define CONN_CAW         0x08u /* close after write: input is discarded */
#define CONN_WANT_DRAIN  0x10u
#define CONN_LINGER_WANT 0x20u /* input was thrown away: the peer may still send */
#define CONN_LINGER      0x40u /* our FIN is sent; read and discard until EOF */
#define CONN_STOP_LATE   0x80u /* new after the stop broadcast: conn_stop_late */

/* A peer still sending after our FIN gets this much, then the RST it asked for. */
#define CONN_LINGER_MAX (1024 * 1024)

unsigned conn_active;
void (*conn_idle_hook)(void);

static struct acceptd_conn *conn_head;
/* conn_stop_all's cursor: conn_close advances it past the conn it unlinks,
 * so a stop callback may close any conn, not only its own. */
static struct acceptd_conn *conn_iter_next;
/* conn_stop_all ran: connections made later still need their stop. */
static int conn_stopping;
/* Reads land here; only what the handler leaves is copied to c->in, so an
 * idle connection holds no buffer at all. One per process: callbacks never
 * nest across connections while a read is being offered. */
static char conn_rbuf[64 * 1024];

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_stop_one(struct acceptd_conn *c);
static void conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents);

static void
conn_update(struct acceptd_conn *c)
{
	int ev = 0;

	if (c->flags & CONN_CLOSED)
		return;
	if (!(c->flags & CONN_RDEOF) && c->out_len < CONN_OUT_HIGH)
		ev |= EV_READ;
	/* WANT_DRAIN with nothing queued asks for EV_WRITE too: "writable
	 * again" is exactly when a producer like chargen should refill. */
	if (c->out_len || (c->flags & CONN_WANT_DRAIN))
		ev |= EV_WRITE;
	if (ev == (c->io.events & (EV_READ | EV_WRITE)) &&
	    (ev != 0) == (ev_is_active(&c->io) != 0))
		return;
	ev_io_stop(c->loop, &c->io);
	ev_io_modify(&c->io, ev);
	if (ev)
		ev_io_start(c->loop, &c->io);
}

static void
conn_destroy(struct acceptd_conn *c)
{
	free(c->in);
	free(c->out);
	free(c);
}

/* Callbacks run between enter and leave. A callback may close c: the memory
 * (c, c->in the handler may still be reading) stays until the outermost
 * leave, which then frees it. Returns the previous busy state. */
static unsigned
conn_enter(struct acceptd_conn *c)
{
	unsigned was = c->flags & CONN_BUSY;

	c->flags |= CONN_BUSY;
	return was;
}

static void conn_finish(struct acceptd_conn *c);

/* Closing after write: the handler will not be offered input again. Input
 * it left unread means the peer may still be sending: linger (conn_finish). */
static void
conn_drop_input(struct acceptd_conn *c)
{
	if (c->in_len && !(c->flags & CONN_LINGER)) {
		c->flags |= CONN_LINGER_WANT;
		free(c->in);
		c->in = NULL;
		c->in_len = 0;
	}
}

/* 1 when c is gone (closed and freed). */
static int
conn_leave(struct acceptd_conn *c, unsigned was_busy)
{
	if (was_busy)
		return 0;
	/* conn_close_after_write from a callback only marks; act on it here,
	 * once the handler no longer looks at c->in. */
	if ((c->flags & (CONN_CLOSED | CONN_CAW | CONN_LINGER)) == CONN_CAW) {
		conn_drop_input(c);
		if (c->out_len == 0)
			conn_finish(c);
	}
	c->flags &= ~CONN_BUSY;
	if (c->flags & CONN_CLOSED) {
		conn_destroy(c);
		return 1;
	}
	conn_update(c);
	return 0;
}

/* Where the handler's data starts in a conn_new_data allocation. */
#define CONN_DATA_OFF ((sizeof(struct acceptd_conn) + _Alignof(max_align_t) - 1) & \
	~(_Alignof(max_align_t) - 1))

static struct acceptd_conn *
conn_alloc(struct ev_loop *loop, int fd, const struct acceptd_conn_ops *ops, size_t size)
{
	size_t n = size ? CONN_DATA_OFF + size : sizeof(struct acceptd_conn);
	struct acceptd_conn *c;

	/* Not calloc (nor malloc and a memset of all of it, which gcc turns
	 * into calloc): glibc's calloc bypasses the per-thread cache free()
	 * fills, and costs ~400 instructions per connection more. */
	if (size > SIZE_MAX - CONN_DATA_OFF || (c = malloc(n)) == NULL) {
		close(fd);
		return NULL;
	}
	*c = (struct acceptd_conn){ .ops = ops, .loop = loop };
	if (size)
		memset((char *)c + CONN_DATA_OFF, 0, size);
	/* No read attempt here: a read callback run from inside the handler's
	 * accept could close c before conn_new even returns it. */
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	ev_io_start(loop, &c->io);
	ev_init(&c->idle, conn_idle_cb);
	if (conn_stopping)
		c->flags |= CONN_STOP_LATE;
	c->next = conn_head;
	if (conn_head)
		conn_head->prev = c;
	conn_head = c;
	conn_active++;
	return c;
}

struct acceptd_conn *
conn_new(struct ev_loop *loop, int fd, const struct acceptd_conn_ops *ops, void *data)
{
	struct acceptd_conn *c = conn_alloc(loop, fd, ops, 0);

	if (c)
		c->data = data;
	return c;
}

struct acceptd_conn *
conn_new_data(struct ev_loop *loop, int fd, const struct acceptd_conn_ops *ops, size_t size,
    void **data)
{
	struct acceptd_conn *c = conn_alloc(loop, fd, ops, size ? size : 1);

	*data = c ? (c->data = (char *)c + CONN_DATA_OFF) : NULL;
	return c;
}

int
conn_fd(const struct acceptd_conn *c)
{
	return c->io.fd;
}

struct acceptd_conn *
conn_first(void)
{
	return conn_head;
}

void *
conn_data(const struct acceptd_conn *c)
{
	return c->data;
}

struct ev_loop *
conn_loop(const struct acceptd_conn *c)
{
	return c->loop;
}

size_t
conn_pending(const struct acceptd_conn *c)
{
	return c->in_len;
}

void
conn_set_counters(struct acceptd_conn *c, struct conn_counters *cnt)
{
	c->cnt = cnt;
}

/* Bytes moved: the idle clock restarts, the shared counters grow. */
static inline void
conn_count_io(struct acceptd_conn *c, size_t in, size_t out)
{
	c->last_io = ev_now(c->loop);
	if (c->cnt && c->cnt->st) {
		if (in)
			stats_add(c->cnt->st->bytes_in, in);
		if (out)
			stats_add(c->cnt->st->bytes_out, out);
	}
}

void
conn_count_close(struct conn_counters *cnt)
{
	if (cnt == NULL)
		return;
	cnt->closed++;
	if (cnt->active)
		cnt->active--;
	if (cnt->st) {
		stats_add(cnt->st->closed, 1);
		stats_sub(cnt->st->active, 1);
	}
}

/* libev's "be smart about timeouts": one timer per connection, not
 * restarted on every byte; when it fires early it re-arms for the rest. */
void
conn_set_idle(struct acceptd_conn *c, ev_tstamp after)
{
	ev_timer_stop(c->loop, &c->idle);
	c->idle_after = after;
	c->last_io = ev_now(c->loop);
	if (after > 0) {
		ev_timer_set(&c->idle, after, 0.);
		ev_timer_start(c->loop, &c->idle);
	}
}

static void
conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct acceptd_conn *c = (struct acceptd_conn *)((char *)w -
	    offsetof(struct acceptd_conn, idle));
	ev_tstamp left = c->last_io + c->idle_after - ev_now(loop);

	/* Trap: ev_now follows the wall clock; more left than the whole
	 * timeout means it was set back: count from now, not for as long. */
	if (left > c->idle_after) {
		c->last_io = ev_now(loop);
		left = c->idle_after;
	}
	if (left > 0) {
		ev_timer_set(&c->idle, left, 0.);
		ev_timer_start(loop, &c->idle);
		return;
	}
	conn_close(c);
}

void
conn_close(struct acceptd_conn *c)
{
	if (c->flags & CONN_CLOSED)
		return;
	c->flags |= CONN_CLOSED;
	ev_io_stop(c->loop, &c->io);
	ev_timer_stop(c->loop, &c->idle);
	close(c->io.fd);
	conn_count_close(c->cnt);
	if (c->ops->free)
		c->ops->free(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		conn_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (conn_iter_next == c)
		conn_iter_next = c->next;
	if (!(c->flags & CONN_BUSY))
		conn_destroy(c);
	conn_hold(-1);
}

/* Output is flushed after conn_close_after_write. If we threw input away
 * and the peer may still send, close() would answer its next segment with
 * an RST that can destroy our unread reply in its receive queue (RFC 9112
 * 9.6): send our FIN and read until the peer's instead. */
static void
conn_finish(struct acceptd_conn *c)
{
	if ((c->flags & CONN_LINGER_WANT) && !(c->flags & CONN_RDEOF) &&
	    shutdown(c->io.fd, SHUT_WR) == 0) {
		c->flags |= CONN_LINGER;
		c->in_len = 0; /* from now on: bytes discarded while lingering */
		conn_update(c);
		return;
	}
	conn_close(c);
}

void
conn_close_after_write(struct acceptd_conn *c)
{
	if (c->flags & (CONN_CLOSED | CONN_CAW))
		return;
	c->flags |= CONN_CAW;
	c->flags &= ~CONN_WANT_DRAIN;
	/* Inside a callback c->in may be the very buffer the handler is
	 * reading: leave it (and the close) to conn_leave. */
	if (!(c->flags & CONN_BUSY)) {
		conn_drop_input(c);
		if (c->out_len == 0)
			conn_finish(c);
	}
}

int
conn_blocked(const struct acceptd_conn *c)
{
	return c->out_len >= CONN_OUT_HIGH;
}

void
conn_want_drain(struct acceptd_conn *c)
{
	if (c->flags & (CONN_CLOSED | CONN_CAW))
		return;
	c->flags |= CONN_WANT_DRAIN;
	conn_update(c);
}

static int
conn_again(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

int
conn_write(struct acceptd_conn *c, const void *buf, size_t len)
{
	ssize_t n = 0;
	char *p;

	if (c->flags & CONN_CLOSED)
		return -1;
	if (len == 0)
		return 0;
	if (c->out_len == 0) {
		/* MSG_NOSIGNAL: a peer gone away is EPIPE here, not a dead worker. */
		n = send(c->io.fd, buf, len, MSG_NOSIGNAL);
		if (n > 0)
			conn_count_io(c, 0, n);
		if (n < 0) {
			if (!conn_again(errno)) {
				conn_close(c);
				return -1;
			}
			n = 0;
		}
		if ((size_t)n == len)
			return 0;
	}
	/* The buffer is exactly as large as its content (no capacity field):
	 * appends only happen under back-pressure, and then rarely. */
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len);
		c->out_off = 0;
	}
	p = realloc(c->out, c->out_len + (len - n));
	if (p == NULL) {
		conn_close(c);
		return -1;
	}
	memcpy(p + c->out_len, (const char *)buf + n, len - n);
	c->out = p;
	c->out_len += len - n;
	conn_update(c);
	return 0;
}

/* Offer buf (conn_rbuf, or c->in itself) to the handler and keep what it
 * leaves. */
static void
conn_offer(struct acceptd_conn *c, const char *buf, size_t len)
{
	size_t used, left;
	char *p;

	used = c->ops->read(c, buf, len);
	if (c->flags & CONN_CLOSED)
		return;
	if (used > len)
		used = len;
	left = len - used;
	if (c->flags & CONN_CAW) {
		if (left)
			c->flags |= CONN_LINGER_WANT;
		left = 0;
	}
	if (left == 0) {
		free(c->in);
		c->in = NULL;
		c->in_len = 0;
		return;
	}
	/* A handler that is not blocked yet leaves a full buffer wants more
	 * context than we keep: a handler bug or a hostile peer. */
	if (left >= CONN_IN_MAX && !conn_blocked(c)) {
		conn_close(c);
		return;
	}
	if (buf == c->in) {
		memmove(c->in, c->in + used, left);
	} else {
		if ((p = malloc(left)) == NULL) {
			conn_close(c);
			return;
		}
		memcpy(p, buf + used, left);
		c->in = p;
	}
	c->in_len = left;
}

static void
conn_on_eof(struct acceptd_conn *c)
{
	c->flags |= CONN_RDEOF;
	if (c->flags & (CONN_CAW | CONN_LINGER)) {
		if (c->out_len == 0)
			conn_close(c);
	} else if (c->ops->eof) {
		c->ops->eof(c);
	} else {
		conn_close_after_write(c);
	}
}

/* (Inlined into both callers: out of line it costs conn_io_cb, the
 * keep-alive path, about 12 instructions per request.) */
static inline __attribute__((always_inline)) int
conn_on_read(struct acceptd_conn *c)
{
	size_t room = sizeof conn_rbuf;
	ssize_t n;
	char *p;

	if (c->in_len) {
		/* Cap the read so leftovers plus new input never exceed
		 * CONN_IN_MAX: a blocked handler's leftovers are not an error. */
		if (c->in_len >= CONN_IN_MAX && !(c->flags & CONN_LINGER)) {
			conn_close(c);
			return 1;
		}
		if (!(c->flags & CONN_LINGER) && CONN_IN_MAX - c->in_len < room)
			room = CONN_IN_MAX - c->in_len;
	}
	n = read(c->io.fd, conn_rbuf, room);
	if (n > 0)
		conn_count_io(c, n, 0);
	if (n < 0) {
		if (conn_again(errno))
			return 0;
		conn_close(c);
		return 1;
	}
	if (n == 0) {
		conn_on_eof(c);
		return 1;
	}
	if (c->flags & CONN_LINGER) {
		c->in_len += n;
		if (c->in_len > CONN_LINGER_MAX)
			conn_close(c);
		return 1;
	}
	if (c->flags & CONN_CAW) {
		c->flags |= CONN_LINGER_WANT;
		return 1;
	}
	if (c->in_len == 0) {
		conn_offer(c, conn_rbuf, n);
		return 1;
	}
	if ((p = realloc(c->in, c->in_len + n)) == NULL) {
		conn_close(c);
		return 1;
	}
	memcpy(p + c->in_len, conn_rbuf, n);
	c->in = p;
	c->in_len += n;
	conn_offer(c, c->in, c->in_len);
	return 1;
}

/* Whether a read at hand-off is worth its system call. A hit saves the
 * epoll registration and a wake-up; a miss is a read() for nothing. Which
 * one it is depends on the client and on our load, not on us: wrk, for
 * one, sends its request only once it sees its connect complete, so an
 * idle worker accepts first and nearly every read misses (measured: 0.99
 * misses per request, 7.6 system calls to the floor's 6.7). So read while
 * at least CONN_READ_NOW_HITS of the listener's last 8 such reads found
 * input (a hit saves about twice what a miss costs), and otherwise still
 * one in CONN_READ_NOW_PROBE, to notice when that changes. A listener
 * starts as if its last 8 had all been hits. */
#define CONN_READ_NOW_HITS 3
#define CONN_READ_NOW_PROBE 16

static struct conn_counters conn_uncounted;

static int
conn_read_now_pays(struct conn_counters *cnt)
{
	/* the misses counted in place (__builtin_popcount is a libgcc call
	 * without -mpopcnt) */
	unsigned m = cnt->read_now_misses;

	m = m - ((m >> 1) & 0x55);
	m = (m & 0x33) + ((m >> 2) & 0x33);
	m = (m + (m >> 4)) & 0x0f;
	if (8 - m >= CONN_READ_NOW_HITS ||
	    ++cnt->read_now_skipped >= CONN_READ_NOW_PROBE) {
		cnt->read_now_skipped = 0;
		return 1;
	}
	return 0;
}

/* One read now rather than after a round through the loop: a client that
 * speaks first has often sent by the time its connection is accepted. */
int
conn_read_now(struct acceptd_conn *c)
{
	struct conn_counters *cnt = c->cnt ? c->cnt : &conn_uncounted;
	unsigned was;

	if (c->flags & CONN_STOP_LATE) {
		/* the handler is set up (the contract): stop it before its
		 * first request, so that request is answered as the last */
		c->flags &= ~CONN_STOP_LATE;
		was = conn_enter(c);
		conn_stop_one(c);
		if (conn_leave(c, was))
			return -1;
	}
	if (c->flags & (CONN_CLOSED | CONN_RDEOF | CONN_CAW) || !conn_read_now_pays(cnt))
		return 0;
	was = conn_enter(c);
	/* input, EOF or an error: anything but EAGAIN was worth the read */
	cnt->read_now_misses = (unsigned char)(cnt->read_now_misses << 1 | !conn_on_read(c));
	return conn_leave(c, was) ? -1 : 0;
}

static void
conn_on_write(struct acceptd_conn *c)
{
	ssize_t n;
	int was_blocked;

	if (c->out_len) {
		n = send(c->io.fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
		if (n > 0)
			conn_count_io(c, 0, n);
		if (n < 0) {
			if (!conn_again(errno))
				conn_close(c);
			return;
		}
		was_blocked = conn_blocked(c);
		c->out_off += n;
		c->out_len -= n;
		if (c->out_len == 0) {
			free(c->out);
			c->out = NULL;
			c->out_off = 0;
		}
		/* Back-pressure lifted: the handler stopped mid-input (http
		 * pipelining) and nothing else would ever offer it again. */
		if (was_blocked && !conn_blocked(c) && c->in_len &&
		    !(c->flags & (CONN_CAW | CONN_LINGER))) {
			conn_offer(c, c->in, c->in_len);
			if (c->flags & CONN_CLOSED)
				return;
		}
	}
	/* (CAW clears WANT_DRAIN; conn_leave closes once flushed.) */
	if (c->out_len == 0 && (c->flags & CONN_WANT_DRAIN)) {
		c->flags &= ~CONN_WANT_DRAIN;
		if (c->ops->drain)
			c->ops->drain(c);
	}
}

static void
conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct acceptd_conn *c = (struct acceptd_conn *)w;
	unsigned was = conn_enter(c);

	if (revents & EV_WRITE)
		conn_on_write(c);
	/* Re-check: the write side may have closed c, or blocked it again. */
	if ((revents & EV_READ) && !(c->flags & (CONN_CLOSED | CONN_RDEOF)) &&
	    !conn_blocked(c))
		conn_on_read(c);
	conn_leave(c, was);
}

void
conn_hold(int delta)
{
	conn_active += delta;
	if (conn_active == 0 && conn_idle_hook)
		conn_idle_hook();
}

/* The stop broadcast's work for one connection. */
static void
conn_stop_one(struct acceptd_conn *c)
{
	unsigned was;

	if (c->flags & CONN_LINGER) {
		conn_close(c);
	} else if (!(c->flags & CONN_CAW) && c->ops->stop) {
		was = conn_enter(c);
		c->ops->stop(c);
		conn_leave(c, was);
	}
}

void
conn_stop_all(void)
{
	struct acceptd_conn *c;

	conn_stopping = 1;
	for (c = conn_head; c; c = conn_iter_next) {
		conn_iter_next = c->next;
		conn_stop_one(c);
	}
	conn_iter_next = NULL;
}

/* New connections go in at the head: the late ones are there. (A handler
 * makes its one connection in its accept; one that conn_read_now stopped
 * already is not flagged, and ends the walk.) */
void
conn_stop_late(void)
{
	struct acceptd_conn *c;

	for (c = conn_head; c && (c->flags & CONN_STOP_LATE); c = conn_iter_next) {
		conn_iter_next = c->next;
		c->flags &= ~CONN_STOP_LATE;
		conn_stop_one(c);
	}
	conn_iter_next = NULL;
}

void
conn_close_all(void)
{
	while (conn_head)
		conn_close(conn_head);
}
