/* handler: the daemon's side of <acceptd/module.h>: the registry of
 * handlers by name, the one loader that registers them (the built-in set
 * and every [module] alike), the services table handlers call, and the
 * hand-off of an accepted connection through the listener's policy. */
#ifndef ACCEPTD_HANDLER_H
#define ACCEPTD_HANDLER_H

#include <stddef.h>
#include <sys/socket.h>

#include <acceptd/module.h>

#include "conn.h"

struct conf_listener;
struct ev_loop;

/* A listener as its handler sees it (pub, first, so the handle a handler
 * holds leads back here), with what this worker counted for it. */
struct handler_listener {
	struct acceptd_listener pub;
	struct conn_counters cnt;        /* this worker's, this listener's */
};

/* A registered module: the built-in one or a [module]'s shared object. */
struct handler_module {
	char *name;                      /* [module NAME], or "builtin" */
	char *path;                      /* NULL for built-ins */
	void *dl;                        /* dlopen handle, NULL for built-ins */
	struct acceptd_handler *handlers; /* the module's, copied to our size */
	size_t nhandlers;
	struct handler_module *next;
};

/* What the daemon offers handlers (every field set). */
extern const struct acceptd_api handler_api;

/* The loader: check desc (magic, ABI, sizes, handler names, no clash with
 * the built-ins or with list) and append it to *list. dl (may be NULL) is
 * dlclose'd with the module. 0, or -1 with "module NAME: reason" in err. */
int handler_module_add(struct handler_module **list, const char *name, const char *path,
    void *dl, const struct acceptd_module *desc, char *err, size_t errlen);
/* dlopen(path, RTLD_NOW | RTLD_LOCAL), find `acceptd_module` and add it. */
int handler_module_load(struct handler_module **list, const char *name, const char *path,
    char *err, size_t errlen);
/* Free the list (dlclose: call after every conf_free of its handlers). */
void handler_modules_free(struct handler_module *list);

/* A handler by name: the built-ins first, then the modules in mods. */
const struct acceptd_handler *handler_find(const struct handler_module *mods, const char *name);
/* The names of the compiled-in handlers, space separated (for -V). */
const char *handler_builtin_names(void);
/* The names provided by mods, space separated, into buf ("" if none). */
void handler_module_names(const struct handler_module *mods, char *buf, size_t n);

/* A listener's handle for its handler. NULL when out of memory. */
struct handler_listener *handler_listener_new(const char *name, long long idle_timeout_ms);

/* Hand fd (just accepted on one of l's sockets) to l's handler, after the
 * policy (allow/deny, max_connections): a refused one is closed at once
 * and counted. local: the connection's own address when the listening
 * socket already tells it (not a wildcard), else NULL (getsockname). */
void handler_accept(const struct conf_listener *l, struct ev_loop *loop, int fd,
    const struct sockaddr *peer, socklen_t peer_len, const struct sockaddr *local,
    socklen_t local_len);
/* The same once any PROXY header is read (peer and local are then the
 * ones it names): the policy, then the handler. */
void handler_handoff(const struct conf_listener *l, struct ev_loop *loop, int fd,
    const struct sockaddr *peer, socklen_t peer_len, const struct sockaddr *local,
    socklen_t local_len);

/* The built-in handlers (daemon/handlers/). */
extern const struct acceptd_handler handler_echo, handler_discard, handler_daytime,
    handler_chargen, handler_http, handler_exec, handler_stats, handler_proxy;

#endif
