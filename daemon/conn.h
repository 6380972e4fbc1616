/* conn: one accepted connection on a worker's libev loop: buffered
 * non-blocking I/O with back-pressure, and the single close path. */
#ifndef ACCEPTD_CONN_H
#define ACCEPTD_CONN_H

#include <stddef.h>
#include <ev.h>

#include "stats.h"

#include <acceptd/module.h>

/* Output above this stops reading (and handlers stop producing) until the
 * peer has taken it: a peer that never reads costs at most this much. */
#define CONN_OUT_HIGH ACCEPTD_CONN_OUT_HIGH
/* Unconsumed input is never more than this; a handler that is not blocked
 * and leaves this much unconsumed gets the connection closed: it wants more
 * context than we keep (a handler bug or a hostile peer). */
#define CONN_IN_MAX (64 * 1024)

/* What one listener's connections did in this worker: counted on the
 * hand-off (handler.c) and in the single close path (conn_close and
 * conn_count_close). One struct per listener per worker; what the stats
 * export reads is st, the same counts in shared memory (stats.h). */
struct conn_counters {
	unsigned long long accepted;        /* handed to the handler */
	unsigned long long closed;          /* of those, ended */
	unsigned long active;               /* accepted - closed */
	/* conn_read_now's record: the last 8 hand-off reads (bit set: it
	 * found nothing), and the reads skipped since the last one. */
	unsigned char read_now_misses, read_now_skipped;
	struct stats_counters *st;          /* the same, shared: stats.h */
};

struct acceptd_conn {
	ev_io io;                 /* first: the callback casts back */
	const struct acceptd_conn_ops *ops;
	void *data;               /* the handler's */
	struct ev_loop *loop;
	char *in;                 /* unconsumed input, NULL when none */
	size_t in_len;
	char *out;                /* unwritten output, NULL when none: */
	size_t out_off, out_len;  /* out_len bytes at out + out_off */
	unsigned flags;
	struct acceptd_conn *prev, *next; /* every open conn of the worker */
	struct conn_counters *cnt; /* its listener's, NULL: not counted */
	ev_timer idle;            /* idle_timeout, when set */
	ev_tstamp idle_after;     /* the timeout, 0: none */
	ev_tstamp last_io;        /* the last byte read or written */
};

/* Take ownership of fd and start reading. NULL (fd closed) on ENOMEM. */
struct acceptd_conn *conn_new(struct ev_loop *loop, int fd, const struct acceptd_conn_ops *ops,
    void *data);
/* The same with the handler's data in the connection's own allocation:
 * size bytes, zeroed, aligned for any type, at *data (and conn_data);
 * freed with the connection, after ops->free. One malloc per connection. */
struct acceptd_conn *conn_new_data(struct ev_loop *loop, int fd,
    const struct acceptd_conn_ops *ops, size_t size, void **data);
/* Read once now, without waiting for the loop (for a new connection whose
 * peer speaks first; call once the handler's state is set up): input is
 * offered to ops->read at once. Skipped (the loop reads when input comes)
 * while such reads on c's listener mostly find nothing. 0, or -1 when c
 * was closed and freed meanwhile: do not touch it (nor its data) again.
 * Not from inside one of c's own callbacks. */
int conn_read_now(struct acceptd_conn *c);
/* Queue bytes for the peer; writes at once when nothing is pending. 0, or
 * -1 when the connection is broken: it is closed, and outside a callback
 * already freed, so do not touch c (or c->data) again. */
int conn_write(struct acceptd_conn *c, const void *buf, size_t len);
/* Output at or above CONN_OUT_HIGH: stop producing, return from read(). */
int conn_blocked(const struct acceptd_conn *c);
/* Call ops->drain once output is fully written (nothing queued: once the
 * socket is writable), once per call. */
void conn_want_drain(struct acceptd_conn *c);
/* Close once everything queued is written (or at once if nothing is).
 * Input is no longer offered. If input was left unread, the peer may still
 * be sending and a close() would reset our last bytes: then conn.c sends
 * its FIN and discards input until the peer's (or conn_stop_all). */
void conn_close_after_write(struct acceptd_conn *c);
/* Close now: stop watchers, close the fd, ops->free, count it. Safe from
 * inside c's own callbacks (the memory, and the buf being offered, live
 * until the callback returns); idempotent until then. */
void conn_close(struct acceptd_conn *c);
int conn_fd(const struct acceptd_conn *c);
void *conn_data(const struct acceptd_conn *c);
struct ev_loop *conn_loop(const struct acceptd_conn *c);
/* Bytes left unconsumed by the handler. */
size_t conn_pending(const struct acceptd_conn *c);
/* Count c in cnt: its close counts there (conn_count_close). */
void conn_set_counters(struct acceptd_conn *c, struct conn_counters *cnt);
/* Close c once no byte has moved either way for this long (0: never). */
void conn_set_idle(struct acceptd_conn *c, ev_tstamp after);
/* The single close path's counting, for connections that never were in
 * the helper (exec): one closed, one slot free. */
void conn_count_close(struct conn_counters *cnt);
/* The worker's open connections: conn_first(), then c->next (stats, tests). */
struct acceptd_conn *conn_first(void);

/* Open connections of this worker, and the stop broadcast (ops->stop). */
extern unsigned conn_active;
void conn_stop_all(void);
/* The broadcast for connections handed over since (a PROXY header that
 * completed during the drain), once their handler has set them up. */
void conn_stop_late(void);
/* Connections a handler runs without the helper count as open too. */
void conn_hold(int delta);
/* Close every open connection now (shutdown timeout, fast stop). */
void conn_close_all(void);
/* Called whenever conn_active drops to zero (the worker's drain check). */
extern void (*conn_idle_hook)(void);

#endif
