/* handler: the interface between a listener and the code that serves its
 * connections, and the registry of handlers by name (built-ins for now). */
#ifndef ACCEPTD_HANDLER_H
#define ACCEPTD_HANDLER_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

struct ev_loop;

/* conf_set's answer for a key the handler does not know. */
#define HANDLER_KEY_UNKNOWN 1

/* One accepted connection, as the worker hands it over. */
struct handler_conn {
	int fd;                          /* owned by the handler from now on:
	                                    non-blocking, close-on-exec */
	const struct sockaddr *peer;     /* valid during accept() only */
	socklen_t peer_len;
	const struct sockaddr *local;
	socklen_t local_len;
	struct ev_loop *loop;            /* the worker's loop */
	const char *listener;            /* listener name, for log lines */
};

/* A handler. Every callback may be NULL except accept. Configuration is
 * parsed in the master (and by -t); start/accept/stop run in each worker
 * on its own copy of the configuration. */
struct handler {
	const char *name;
	/* A fresh configuration with every default filled in; NULL: out of memory. */
	void *(*conf_new)(void);
	/* One listener key the daemon does not own: 0 accepted, -1 bad value
	 * (reason in err), HANDLER_KEY_UNKNOWN if the key is not the handler's. */
	int (*conf_set)(void *conf, const char *key, const char *value,
	    char *err, size_t errlen);
	/* After all keys: -1 with the reason if the whole is inconsistent. */
	int (*conf_check)(void *conf, char *err, size_t errlen);
	/* Print the effective handler keys as "key = value" lines (for -T). */
	void (*conf_dump)(const void *conf, FILE *out);
	void (*conf_free)(void *conf);
	/* Once per worker, after fork, before the first accept. -1 fails the worker. */
	int (*start)(void *conf, struct ev_loop *loop);
	/* Take one connection; the handler must close hc->fd eventually. */
	void (*accept)(void *conf, const struct handler_conn *hc);
	/* The worker stops accepting: finish what is in flight, close what idles. */
	void (*stop)(void *conf);
};

const struct handler *handler_find(const char *name);
/* The names of the compiled-in handlers, space separated (for -V). */
const char *handler_builtin_names(void);

extern const struct handler handler_echo, handler_discard, handler_daytime,
    handler_chargen, handler_http;

#endif
