/* handler: the daemon's side of <acceptd/module.h>: the registry of
 * handlers by name, the one loader that registers them (the built-in set
 * and every [module] alike), the services table handlers call, and the
 * hand-off of an accepted connection through the listener's policy. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "conn.h"
#include "handler.h"
#include "log.h"
#include "modload.h"
#include "proxy_recv.h"

#ifndef ACCEPTD_VERSION
#define ACCEPTD_VERSION "unknown"
#endif

/* The smallest descriptors ABI 1.0 defines: anything shorter is broken. */
#define HANDLER_MODULE_MIN (offsetof(struct acceptd_module, handlers) + \
	sizeof(((struct acceptd_module *)0)->handlers))
#define HANDLER_HANDLER_MIN (offsetof(struct acceptd_handler, stop) + \
	sizeof(((struct acceptd_handler *)0)->stop))
/* A module with more handlers than this is reading garbage. */
#define HANDLER_MAX_PER_MODULE 256

/* ---- services ------------------------------------------------------- */

static void handler_log(const struct acceptd_listener *l, enum acceptd_log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
handler_log(const struct acceptd_listener *l, enum acceptd_log_level level,
    const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	if (level < ACCEPTD_LOG_ERROR || level > ACCEPTD_LOG_DEBUG)
		level = ACCEPTD_LOG_ERROR;
	/* exec and proxy log at debug per connection: format nothing unseen */
	if (!log_enabled((enum log_level)level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (l)
		log_msg((enum log_level)level, 0, "listener %s: %s", l->name, msg);
	else
		log_msg((enum log_level)level, 0, "%s", msg);
}

/* The helper's side of a new connection: counters, idle timeout. */
static struct acceptd_conn *
handler_conn_setup(const struct acceptd_accept *a, struct acceptd_conn *c)
{
	/* The handle handlers hold is the first member of ours. */
	struct handler_listener *hl = (struct handler_listener *)a->listener;

	if (c == NULL) {
		log_warn("listener %s: connection dropped", hl->pub.name);
		conn_count_close(&hl->cnt);
		return NULL;
	}
	conn_set_counters(c, &hl->cnt);
	if (hl->pub.idle_timeout > 0)
		conn_set_idle(c, hl->pub.idle_timeout);
	return c;
}

static struct acceptd_conn *
handler_conn_new(const struct acceptd_accept *a, const struct acceptd_conn_ops *ops,
    void *data)
{
	return handler_conn_setup(a, conn_new(a->loop, a->fd, ops, data));
}

static struct acceptd_conn *
handler_conn_new_data(const struct acceptd_accept *a, const struct acceptd_conn_ops *ops,
    size_t size, void **data)
{
	return handler_conn_setup(a, conn_new_data(a->loop, a->fd, ops, size, data));
}

static void
handler_conn_done(const struct acceptd_listener *l)
{
	conn_count_close(&((struct handler_listener *)l)->cnt);
}

static void
handler_count_bytes(const struct acceptd_listener *l, size_t in, size_t out)
{
	const struct handler_listener *hl = (const struct handler_listener *)l;

	if (hl->cnt.st) {
		if (in)
			stats_add(hl->cnt.st->bytes_in, in);
		if (out)
			stats_add(hl->cnt.st->bytes_out, out);
	}
}

static size_t
handler_metrics(char *buf, size_t cap)
{
	return stats ? stats_format(stats, buf, cap) : 0;
}

const struct acceptd_api handler_api = {
	.size = sizeof(struct acceptd_api),
	.abi_major = ACCEPTD_ABI_MAJOR,
	.abi_minor = ACCEPTD_ABI_MINOR,
	.version = ACCEPTD_VERSION,
	.log = handler_log,
	.conn_new = handler_conn_new,
	.conn_data = conn_data,
	.conn_fd = conn_fd,
	.conn_loop = conn_loop,
	.conn_write = conn_write,
	.conn_blocked = conn_blocked,
	.conn_want_drain = conn_want_drain,
	.conn_pending = conn_pending,
	.conn_close_after_write = conn_close_after_write,
	.conn_close = conn_close,
	.conn_done = handler_conn_done,
	.metrics = handler_metrics,
	.hold = conn_hold,
	.count_bytes = handler_count_bytes,
	.conn_new_data = handler_conn_new_data,
	.conn_read_now = conn_read_now,
};

struct handler_listener *
handler_listener_new(const char *name, long long idle_timeout_ms)
{
	struct handler_listener *hl = calloc(1, sizeof *hl);

	if (hl == NULL)
		return NULL;
	hl->pub.size = sizeof hl->pub;
	hl->pub.name = name;
	hl->pub.api = &handler_api;
	hl->pub.idle_timeout = idle_timeout_ms / 1000.0;
	return hl;
}

/* ---- the loader ----------------------------------------------------- */

static const struct acceptd_handler *const handler_builtin_list[] = {
	&handler_echo, &handler_discard, &handler_daytime, &handler_chargen,
	&handler_http, &handler_exec, &handler_stats, &handler_proxy, NULL,
};

/* The built-ins are a module like any other, only linked in. */
static const struct acceptd_module handler_builtin_module = {
	ACCEPTD_MODULE_V1,
	.name = "builtin",
	.version = ACCEPTD_VERSION,
	.handlers = handler_builtin_list,
};

static struct handler_module *handler_builtins;

static struct handler_module *
handler_builtin(void)
{
	char err[256];

	if (!handler_builtins && handler_module_add(&handler_builtins, "builtin", NULL, NULL,
	    &handler_builtin_module, err, sizeof err) < 0) {
		log_errorx("%s", err);  /* a bug in a built-in: nothing can run */
		abort();
	}
	return handler_builtins;
}

static const struct acceptd_handler *
handler_find_in(const struct handler_module *mods, const char *name,
    const struct handler_module **from)
{
	for (const struct handler_module *m = mods; m; m = m->next)
		for (size_t i = 0; i < m->nhandlers; i++)
			if (strcmp(m->handlers[i].name, name) == 0) {
				if (from)
					*from = m;
				return &m->handlers[i];
			}
	return NULL;
}

static int
handler_valid_name(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return 0;
	return 1;
}

static int handler_fail(char *err, size_t errlen, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
handler_fail(char *err, size_t errlen, const char *name, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, errlen, "module %s: ", name);

	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int
handler_module_add(struct handler_module **list, const char *name, const char *path,
    void *dl, const struct acceptd_module *desc, char *err, size_t errlen)
{
	const char *what = path ? path : name;
	const struct handler_module *other;
	struct handler_module *m, **tail;
	size_t n = 0;

	if (desc->magic != ACCEPTD_MODULE_MAGIC)
		return handler_fail(err, errlen, name, "%s is not an acceptd module (bad magic number)",
		    what);
	if (desc->abi_major != ACCEPTD_ABI_MAJOR || desc->abi_minor > ACCEPTD_ABI_MINOR)
		return handler_fail(err, errlen, name, "%s is built for module ABI %u.%u; this acceptd "
		    "speaks %d.0 to %d.%d: rebuild it against this acceptd's <acceptd/module.h>",
		    what, desc->abi_major, desc->abi_minor, ACCEPTD_ABI_MAJOR, ACCEPTD_ABI_MAJOR,
		    ACCEPTD_ABI_MINOR);
	if (desc->size < HANDLER_MODULE_MIN)
		return handler_fail(err, errlen, name, "%s: module descriptor of %zu bytes is too small "
		    "(ABI %d.0 has %zu)", what, desc->size, ACCEPTD_ABI_MAJOR, HANDLER_MODULE_MIN);
	if (!desc->handlers || !desc->handlers[0])
		return handler_fail(err, errlen, name, "%s provides no handlers", what);
	while (desc->handlers[n] && n <= HANDLER_MAX_PER_MODULE)
		n++;
	if (n > HANDLER_MAX_PER_MODULE)
		return handler_fail(err, errlen, name, "%s: handler list not NULL-terminated", what);
	for (size_t i = 0; i < n; i++) {
		const struct acceptd_handler *h = desc->handlers[i];

		if (h->size < HANDLER_HANDLER_MIN)
			return handler_fail(err, errlen, name, "%s: handler %zu: descriptor of %zu bytes "
			    "is too small (ABI %d.0 has %zu)", what, i, h->size, ACCEPTD_ABI_MAJOR,
			    HANDLER_HANDLER_MIN);
		if (!handler_valid_name(h->name))
			return handler_fail(err, errlen, name, "%s: handler %zu: bad name '%.64s' (use "
			    "letters, digits, '_' and '-')", what, i, h->name ? h->name : "(null)");
		if (!h->accept)
			return handler_fail(err, errlen, name, "%s: handler %s has no accept callback",
			    what, h->name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(desc->handlers[j]->name, h->name) == 0)
				return handler_fail(err, errlen, name, "%s: handler %s is listed twice",
				    what, h->name);
		other = NULL;
		if ((list != &handler_builtins && handler_find_in(handler_builtin(), h->name, &other)) ||
		    handler_find_in(*list, h->name, &other))
			return handler_fail(err, errlen, name, "handler %s is already provided by %s%s",
			    h->name, other->path ? "module " : "the built-in handlers",
			    other->path ? other->name : "");
	}
	if (!(m = calloc(1, sizeof *m)) || !(m->handlers = calloc(n, sizeof *m->handlers)) ||
	    !(m->name = strdup(name)) || (path && !(m->path = strdup(path)))) {
		if (m) {
			free(m->handlers);
			free(m->name);
		}
		free(m);
		return handler_fail(err, errlen, name, "out of memory");
	}
	/* Our own copies, at our size: what a module built for an older
	 * minor version does not have reads as NULL. */
	for (size_t i = 0; i < n; i++) {
		const struct acceptd_handler *h = desc->handlers[i];

		memcpy(&m->handlers[i], h, h->size < sizeof *h ? h->size : sizeof *h);
		m->handlers[i].size = sizeof *h;
	}
	m->nhandlers = n;
	m->dl = dl;
	for (tail = list; *tail; tail = &(*tail)->next)
		;
	*tail = m;
	return 0;
}

int
handler_module_load(struct handler_module **list, const char *name, const char *path,
    char *err, size_t errlen)
{
	const struct acceptd_module *desc;
	char why[512];
	void *dl;

	if (modload_open(path, &dl, &desc, why, sizeof why) < 0)
		return handler_fail(err, errlen, name, "%s", why);
	if (handler_module_add(list, name, path, dl, desc, err, errlen) < 0) {
		modload_close(dl);
		return -1;
	}
	return 0;
}

void
handler_modules_free(struct handler_module *list)
{
	struct handler_module *next;

	for (; list; list = next) {
		next = list->next;
		modload_close(list->dl);
		free(list->handlers);
		free(list->name);
		free(list->path);
		free(list);
	}
}

const struct acceptd_handler *
handler_find(const struct handler_module *mods, const char *name)
{
	const struct acceptd_handler *h = handler_find_in(handler_builtin(), name, NULL);

	return h ? h : handler_find_in(mods, name, NULL);
}

void
handler_module_names(const struct handler_module *mods, char *buf, size_t n)
{
	size_t len = 0;

	if (n)
		buf[0] = '\0';
	for (const struct handler_module *m = mods; m; m = m->next)
		for (size_t i = 0; i < m->nhandlers && len < n; i++) {
			int k = snprintf(buf + len, n - len, "%s%s", len ? " " : "", m->handlers[i].name);

			if (k < 0)
				return;
			len += k;
		}
}

const char *
handler_builtin_names(void)
{
	static char names[256];

	if (!names[0])
		handler_module_names(handler_builtin(), names, sizeof names);
	return names;
}

/* ---- the hand-off --------------------------------------------------- */

/* Why a peer may not be served: 0 (it may), or one of these. */
enum handler_refusal { HANDLER_OK, HANDLER_REFUSE_ACL, HANDLER_REFUSE_LIMIT };

static enum handler_refusal
handler_admit(const struct conf_listener *l, const struct sockaddr *peer, socklen_t peer_len)
{
	/* deny wins; then, when there is an allow list, only it is served */
	if (l->deny_list.n && cidr_list_match(&l->deny_list, peer, peer_len))
		return HANDLER_REFUSE_ACL;
	if (l->allow_list.n && !cidr_list_match(&l->allow_list, peer, peer_len))
		return HANDLER_REFUSE_ACL;
	if (l->max_connections && l->hl &&
	    l->hl->cnt.active >= (unsigned long)l->max_connections)
		return HANDLER_REFUSE_LIMIT;
	return HANDLER_OK;
}

void
handler_accept(const struct conf_listener *l, struct ev_loop *loop, int fd,
    const struct sockaddr *peer, socklen_t peer_len, const struct sockaddr *local,
    socklen_t local_len)
{
	/* the policy then judges the client the PROXY header names */
	if (l->proxy_protocol != CONF_PROXY_OFF)
		proxy_recv_start(l, loop, fd, peer, peer_len, local, local_len);
	else
		handler_handoff(l, loop, fd, peer, peer_len, local, local_len);
}

void
handler_handoff(const struct conf_listener *l, struct ev_loop *loop, int fd,
    const struct sockaddr *peer, socklen_t peer_len, const struct sockaddr *local,
    socklen_t local_len)
{
	struct handler_listener *hl = l->hl;
	struct sockaddr_storage ss;
	socklen_t llen = sizeof ss;
	struct acceptd_accept a;
	enum handler_refusal why = handler_admit(l, peer, peer_len);
	char addr[160];

	if (why != HANDLER_OK) {
		/* A plain close: the peer gets its FIN (or an RST if it has
		 * sent already), and costs us nothing more. */
		close(fd);
		if (hl->cnt.st)
			stats_add(*(why == HANDLER_REFUSE_ACL ? &hl->cnt.st->rejected_acl :
			    &hl->cnt.st->rejected_limit), 1);
		if (log_enabled(LOG_LEVEL_DEBUG)) {
			conf_format_addr(peer, peer_len, addr, sizeof addr);
			log_debug("listener %s: %s refused (%s)", l->name, addr,
			    why == HANDLER_REFUSE_ACL ? "allow/deny" : "max_connections");
		}
		return;
	}
	/* known from the listening socket unless it is a wildcard */
	if (!local && getsockname(fd, (struct sockaddr *)&ss, &llen) == 0)
		local = (struct sockaddr *)&ss, local_len = llen;
	hl->cnt.accepted++;
	hl->cnt.active++;
	if (hl->cnt.st) {
		stats_add(hl->cnt.st->accepted, 1);
		stats_add(hl->cnt.st->active, 1);
	}
	a.size = sizeof a;
	a.fd = fd;
	a.peer = peer;
	a.peer_len = peer_len;
	a.local = local;
	a.local_len = local ? local_len : 0;
	a.loop = loop;
	a.listener = &hl->pub;
	l->handler->accept(l->handler_conf, &a);
}
