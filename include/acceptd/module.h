/* acceptd/module.h: the interface between acceptd and the handlers that
 * serve its connections, built-in or loaded from a shared object. This is
 * the only header a module needs; a module never links against the daemon:
 * everything the daemon offers arrives as function pointers.
 *
 * A module, in full (cc -shared -fPIC $(pkg-config --cflags acceptd)):
 *
 *     #include <acceptd/module.h>
 *
 *     static size_t hi_read(struct acceptd_conn *c, const char *buf, size_t len)
 *     {
 *             return len;                    // input is ignored
 *     }
 *     static const struct acceptd_conn_ops hi_ops = { .read = hi_read };
 *
 *     static void hi_accept(void *conf, const struct acceptd_accept *a)
 *     {
 *             const struct acceptd_api *api = a->listener->api;
 *             struct acceptd_conn *c = api->conn_new(a, &hi_ops, NULL);
 *
 *             if (c && api->conn_write(c, "hi\n", 3) == 0)
 *                     api->conn_close_after_write(c);
 *     }
 *
 *     static const struct acceptd_handler hi = {
 *             ACCEPTD_HANDLER_V1, .name = "hi", .accept = hi_accept,
 *     };
 *     static const struct acceptd_handler *const hi_handlers[] = { &hi, NULL };
 *     const struct acceptd_module acceptd_module = {
 *             ACCEPTD_MODULE_V1, .name = "hi", .handlers = hi_handlers,
 *     };
 *
 * and in acceptd.conf:
 *
 *     [module hi]
 *     path = /usr/local/lib/acceptd/hi.so
 *     [listener greeter]
 *     port = 7070
 *     handler = hi
 *
 * Versioning (as Apache's module magic number): a major bump breaks, and the
 * daemon refuses a module built for another major; a minor bump only
 * appends fields, so a module built for an older minor loads, and one built
 * for a newer minor is refused. Every struct the module hands over starts
 * with its own size (set by the ACCEPTD_*_V1 initialisers): fields past it
 * are read as zero/NULL, so use designated initialisers and leave out what
 * you do not need. Structs the daemon hands over carry their size too:
 * check it before using a field newer than ABI 1.0. */
#ifndef ACCEPTD_MODULE_H
#define ACCEPTD_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ACCEPTD_MODULE_MAGIC 0x41435044u  /* "ACPD": this is an acceptd module */
#define ACCEPTD_ABI_MAJOR 1
#define ACCEPTD_ABI_MINOR 2

/* The one symbol the daemon looks up in a module (a const struct
 * acceptd_module). */
#define ACCEPTD_MODULE_SYMBOL "acceptd_module"

struct ev_loop;                 /* libev's; include <ev.h> to use it */
struct acceptd_conn;            /* a connection in the connection helper */
struct acceptd_api;

/* Log levels for acceptd_api.log, as log_level in the config. */
enum acceptd_log_level {
	ACCEPTD_LOG_ERROR, ACCEPTD_LOG_WARN, ACCEPTD_LOG_INFO, ACCEPTD_LOG_DEBUG,
};

/* conf_set's answer for a key the handler does not take. */
#define ACCEPTD_KEY_UNKNOWN 1

/* A listener as its handler sees it. Valid from conf_new until conf_free,
 * in the master and in every worker. */
struct acceptd_listener {
	size_t size;                    /* sizeof, as the daemon built it */
	const char *name;               /* [listener NAME] */
	const struct acceptd_api *api;  /* the daemon's services */
	/* ABI 1.1 (check size): the listener's idle_timeout in seconds, 0 =
	 * none, for handlers that run their connections themselves. */
	double idle_timeout;
};

/* One accepted connection, as the daemon hands it over. Valid during the
 * accept call only (copy what you need). */
struct acceptd_accept {
	size_t size;                    /* sizeof, as the daemon built it */
	int fd;                         /* now yours: non-blocking, close-on-exec */
	const struct sockaddr *peer;    /* AF_INET, AF_INET6 or AF_UNIX */
	socklen_t peer_len;
	const struct sockaddr *local;   /* the address the peer connected to */
	socklen_t local_len;            /* (0 when unknown) */
	struct ev_loop *loop;           /* the worker's (libev's default loop) */
	const struct acceptd_listener *listener;
};

/* A handler: what a listener's `handler = NAME` names. Only name and accept
 * are required. Configuration runs in the master (and under -t); start,
 * accept and stop run in each worker, on the worker's own copy of it. */
struct acceptd_handler {
	size_t size;                    /* ACCEPTD_HANDLER_V1 sets it */
	const char *name;               /* [A-Za-z0-9_-]+, unique in the daemon */

	/* -- configuration: conf_new, conf_set for every key the daemon does
	 *    not own (in file order), conf_check; conf_free at the end. -- */
	/* A fresh configuration with every default filled in; NULL: out of
	 * memory. Keep l if you want to log later. NULL callback: conf is NULL. */
	void *(*conf_new)(const struct acceptd_listener *l);
	/* One key: 0 taken, -1 bad value (reason in err, without the key's
	 * name: the daemon prefixes "FILE:LINE: key: "), or ACCEPTD_KEY_UNKNOWN.
	 * NULL callback: the handler takes no keys. */
	int (*conf_set)(void *conf, const char *key, const char *value,
	    char *err, size_t errlen);
	/* After every key: -1 with the reason when the whole is not usable. */
	int (*conf_check)(void *conf, char *err, size_t errlen);
	/* Print the effective keys as "key = value" lines (acceptd -T). */
	void (*conf_dump)(const void *conf, FILE *out);
	void (*conf_free)(void *conf);

	/* -- in each worker -- */
	/* After fork, before the first connection: -1 fails the worker. */
	int (*start)(void *conf, struct ev_loop *loop);
	/* Take one connection. The fd is the handler's: give it to
	 * api->conn_new (which then closes it and does the counting), or close
	 * it yourself and call api->conn_done once the connection is over. */
	void (*accept)(void *conf, const struct acceptd_accept *a);
	/* The worker stops accepting (stop, reload): finish what is in flight,
	 * close what idles. Connections in the helper also get ops->stop. */
	void (*stop)(void *conf);
};

/* The module: one per shared object, exported as `acceptd_module`. */
struct acceptd_module {
	uint32_t magic;                 /* ACCEPTD_MODULE_MAGIC */
	uint16_t abi_major;             /* ACCEPTD_ABI_MAJOR it was built with */
	uint16_t abi_minor;             /* ACCEPTD_ABI_MINOR it was built with */
	size_t size;                    /* sizeof(struct acceptd_module) */
	const char *name;               /* for log lines and errors */
	const char *version;            /* free form, may be NULL */
	/* The handlers it provides, NULL-terminated. */
	const struct acceptd_handler *const *handlers;
};

#define ACCEPTD_MODULE_V1 .magic = ACCEPTD_MODULE_MAGIC, \
	.abi_major = ACCEPTD_ABI_MAJOR, .abi_minor = ACCEPTD_ABI_MINOR, \
	.size = sizeof(struct acceptd_module)
#define ACCEPTD_HANDLER_V1 .size = sizeof(struct acceptd_handler)

/* The connection helper's callbacks: buffered non-blocking I/O on the
 * worker's loop. Only read is required. Every callback may write or close. */
struct acceptd_conn_ops {
	/* Input arrived: buf holds every byte not consumed yet (earlier
	 * leftovers first). Return how many were consumed; the rest is offered
	 * again with the next input or when back-pressure lifts. */
	size_t (*read)(struct acceptd_conn *c, const char *buf, size_t len);
	/* Everything queued is written and conn_want_drain was asked for:
	 * produce more. */
	void (*drain)(struct acceptd_conn *c);
	/* The peer shut down its sending side (half-close). NULL: close once
	 * the output is flushed. */
	void (*eof)(struct acceptd_conn *c);
	/* The worker drains for stop or reload. NULL: run until the peer, the
	 * idle timeout or the shutdown timeout ends the connection. */
	void (*stop)(struct acceptd_conn *c);
	/* Free your per-connection data; called once, from the close path. */
	void (*free)(struct acceptd_conn *c);
};

/* Output queued at or above this: conn_blocked is true, reading stops. */
#define ACCEPTD_CONN_OUT_HIGH (64 * 1024)

/* What the daemon offers. Fields are appended in minor versions: check
 * size (offsetof(struct acceptd_api, field) < api->size) before using one
 * newer than the ABI you build against. */
struct acceptd_api {
	size_t size;
	unsigned abi_major, abi_minor;  /* the daemon's */
	const char *version;            /* acceptd's version string */

	/* One log line, "listener NAME: message" (l may be NULL: no prefix). */
	void (*log)(const struct acceptd_listener *l, enum acceptd_log_level level,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

	/* Take a->fd into the connection helper: reading starts at once, the
	 * listener's idle_timeout applies, and closing counts it. NULL when out
	 * of memory (the fd is closed and the connection counted: nothing to
	 * undo). data is yours: conn_data gives it back. */
	struct acceptd_conn *(*conn_new)(const struct acceptd_accept *a,
	    const struct acceptd_conn_ops *ops, void *data);
	void *(*conn_data)(const struct acceptd_conn *c);
	int (*conn_fd)(const struct acceptd_conn *c);
	struct ev_loop *(*conn_loop)(const struct acceptd_conn *c);
	/* Queue bytes; written at once when nothing is pending. 0, or -1 when
	 * the connection broke: it is closed (outside a callback: freed), so
	 * do not touch c again. */
	int (*conn_write)(struct acceptd_conn *c, const void *buf, size_t len);
	/* Output at or above ACCEPTD_CONN_OUT_HIGH: stop producing. */
	int (*conn_blocked)(const struct acceptd_conn *c);
	/* Call ops->drain once when all output is written. */
	void (*conn_want_drain)(struct acceptd_conn *c);
	/* Bytes the handler left unconsumed (0: no partial request). */
	size_t (*conn_pending)(const struct acceptd_conn *c);
	/* Close once the output is written; input is no longer offered. */
	void (*conn_close_after_write)(struct acceptd_conn *c);
	/* Close now (safe inside c's own callbacks; idempotent). */
	void (*conn_close)(struct acceptd_conn *c);
	/* A connection not given to conn_new is over and its fd closed: frees
	 * its max_connections slot and counts it closed. Once per accept. */
	void (*conn_done)(const struct acceptd_listener *l);

	/* ABI 1.1: the daemon's counters in the Prometheus text format: up to
	 * cap bytes into buf; returns the length needed (retry with more when
	 * it is >= cap). Check api->size before using fields past 1.0's. */
	size_t (*metrics)(char *buf, size_t cap);
	/* ABI 1.1: connections the handler runs itself (not through conn_new):
	 * +1 when one starts, -1 when it ends. A draining worker waits for
	 * them as for the helper's, up to shutdown_timeout. */
	void (*hold)(int delta);
	/* ABI 1.1: bytes read from and written to clients by a handler that
	 * does its own I/O, for the listener's counters (the helper counts its
	 * own). */
	void (*count_bytes)(const struct acceptd_listener *l, size_t in, size_t out);
	/* ABI 1.1: conn_new with your per-connection data in the connection's own
	 * allocation (one malloc, one free per connection): size bytes,
	 * zeroed, aligned for any type, at *data (and conn_data). It is
	 * freed with the connection, after ops->free (which must not free
	 * it). NULL when out of memory, as conn_new (*data is NULL too). */
	struct acceptd_conn *(*conn_new_data)(const struct acceptd_accept *a,
	    const struct acceptd_conn_ops *ops, size_t size, void **data);
	/* ABI 1.2: read once now, not after a round through the loop: for a
	 * protocol whose client speaks first, whose first bytes are often in
	 * by the time the connection is accepted (saves the wait for
	 * readiness). Call it at the end of accept, once your state is set up:
	 * ops->read may run inside it. While such reads on the listener mostly
	 * find nothing (a client that sends only after seeing its connect
	 * complete), it skips most of them: input then comes through the loop
	 * as usual. 0, or -1 when c was closed (and freed) meanwhile: do not
	 * touch c or its data again. */
	int (*conn_read_now)(struct acceptd_conn *c);
};

#ifdef __cplusplus
}
#endif

#endif
