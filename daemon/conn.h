/* conn: one accepted connection on a worker's libev loop: buffered
 * non-blocking I/O with back-pressure, and the single close path. */
#ifndef ACCEPTD_CONN_H
#define ACCEPTD_CONN_H

#include <stddef.h>
#include <ev.h>

/* Output above this stops reading (and handlers stop producing) until the
 * peer has taken it: a peer that never reads costs at most this much. */
#define CONN_OUT_HIGH (64 * 1024)
/* Unconsumed input is never more than this; a handler that is not blocked
 * and leaves this much unconsumed gets the connection closed: it wants more
 * context than we keep (a handler bug or a hostile peer). */
#define CONN_IN_MAX (64 * 1024)

struct conn;

struct conn_ops {
	/* Input arrived: buf holds every byte not yet consumed (earlier leftovers
	 * first). Return how many bytes were consumed; the rest is offered again
	 * with the next input, or when back-pressure lifts. May write or close. */
	size_t (*read)(struct conn *c, const char *buf, size_t len);
	/* All output has been written and conn_want_drain() was asked for:
	 * produce more (chargen). May be NULL. */
	void (*drain)(struct conn *c);
	/* The peer shut down its sending side. NULL: close once output is flushed. */
	void (*eof)(struct conn *c);
	/* The worker is draining for stop or reload. NULL: let the connection
	 * run until the peer or the shutdown timeout ends it. */
	void (*stop)(struct conn *c);
	/* Free the handler's per-connection data (called once, from conn_close). */
	void (*free)(struct conn *c);
};

struct conn {
	ev_io io;                 /* first: the callback casts back */
	const struct conn_ops *ops;
	void *data;               /* the handler's */
	struct ev_loop *loop;
	char *in;                 /* unconsumed input, NULL when none */
	size_t in_len;
	char *out;                /* unwritten output, NULL when none: */
	size_t out_off, out_len;  /* out_len bytes at out + out_off */
	unsigned flags;
	struct conn *prev, *next; /* every open conn of the worker */
};

/* Take ownership of fd and start reading. NULL (fd closed) on ENOMEM. */
struct conn *conn_new(struct ev_loop *loop, int fd, const struct conn_ops *ops,
    void *data);
/* Queue bytes for the peer; writes at once when nothing is pending. 0, or
 * -1 when the connection is broken: it is closed, and outside a callback
 * already freed, so do not touch c (or c->data) again. */
int conn_write(struct conn *c, const void *buf, size_t len);
/* Output at or above CONN_OUT_HIGH: stop producing, return from read(). */
int conn_blocked(const struct conn *c);
/* Call ops->drain once output is fully written (nothing queued: once the
 * socket is writable), once per call. */
void conn_want_drain(struct conn *c);
/* Close once everything queued is written (or at once if nothing is).
 * Input is no longer offered. If input was left unread, the peer may still
 * be sending and a close() would reset our last bytes: then conn.c sends
 * its FIN and discards input until the peer's (or conn_stop_all). */
void conn_close_after_write(struct conn *c);
/* Close now: stop watchers, close the fd, ops->free, count it. Safe from
 * inside c's own callbacks (the memory, and the buf being offered, live
 * until the callback returns); idempotent until then. */
void conn_close(struct conn *c);
int conn_fd(const struct conn *c);
/* The worker's open connections: conn_first(), then c->next (stats, tests). */
struct conn *conn_first(void);

/* Open connections of this worker, and the stop broadcast (ops->stop). */
extern unsigned conn_active;
void conn_stop_all(void);
/* Close every open connection now (shutdown timeout, fast stop). */
void conn_close_all(void);
/* Called whenever conn_active drops to zero (the worker's drain check). */
extern void (*conn_idle_hook)(void);

#endif
