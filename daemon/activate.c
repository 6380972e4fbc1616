/* activate: systemd socket activation: the sockets inherited through
 * LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES, and which listener each one serves. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "activate.h"
#include "log.h"
#include "conf.h"
#include "listen.h"

/* sd_listen_fds()'s SD_LISTEN_FDS_START */
#define ACTIVATE_FDS_START 3
/* More than any unit sensibly passes; a bigger number is a broken variable. */
#define ACTIVATE_FDS_MAX 4096

static int
activate_parse_num(const char *s, long max, long *out)
{
	char *end;
	long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static void
activate_unsetenv(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

void
activate_describe(const struct activate_sock *as, char *buf, size_t n)
{
	char a[160];

	if (as->ss.ss_family == AF_UNSPEC)
		snprintf(a, sizeof a, "not a socket");
	else
		conf_format_addr((const struct sockaddr *)&as->ss, as->len, a, sizeof a);
	if (as->name && *as->name)
		snprintf(buf, n, "inherited socket %d (name '%s', %s)", as->fd, as->name, a);
	else
		snprintf(buf, n, "inherited socket %d (%s)", as->fd, a);
}

/* What one inherited descriptor is. -1 with err when it is not open. */
static int
activate_inspect(struct activate_sock *as, char *err, size_t errlen)
{
	socklen_t l;
	int fl, v;

	if ((fl = fcntl(as->fd, F_GETFD)) < 0) {
		snprintf(err, errlen, "LISTEN_FDS: inherited descriptor %d: %s", as->fd,
		    strerror(errno));
		return -1;
	}
	/* Ours now: not for exec'd children, and never blocking the accept loop. */
	if (fcntl(as->fd, F_SETFD, fl | FD_CLOEXEC) < 0 ||
	    (fl = fcntl(as->fd, F_GETFL)) < 0 ||
	    fcntl(as->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "LISTEN_FDS: inherited descriptor %d: fcntl: %s", as->fd,
		    strerror(errno));
		return -1;
	}
	as->addr = -1;
	as->len = sizeof as->ss;
	if (getsockname(as->fd, (struct sockaddr *)&as->ss, &as->len) < 0) {
		memset(&as->ss, 0, sizeof as->ss);
		as->ss.ss_family = AF_UNSPEC;
		as->len = 0;
		return 0;       /* a FIFO or a file: activate_match() refuses it */
	}
	l = sizeof v;
	if (getsockopt(as->fd, SOL_SOCKET, SO_TYPE, &v, &l) == 0)
		as->type = v;
	l = sizeof v;
	if (getsockopt(as->fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0)
		as->listening = v != 0;
	l = sizeof v;
	if (as->ss.ss_family != AF_UNIX &&
	    getsockopt(as->fd, SOL_SOCKET, SO_REUSEPORT, &v, &l) == 0)
		as->reuseport = v != 0;
	l = sizeof v;
	if (as->ss.ss_family == AF_INET6 &&
	    getsockopt(as->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &l) == 0)
		as->v6only = v != 0;
	return 0;
}

int
activate_take(struct activate_set *out, char *err, size_t errlen)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	long pid, n;
	int i;

	memset(out, 0, sizeof *out);
	err[0] = '\0';
	if (!pid_s || !fds_s) {
		activate_unsetenv();
		return 0;
	}
	if (activate_parse_num(pid_s, INT_MAX, &pid) < 0) {
		snprintf(err, errlen, "LISTEN_PID: bad value '%s': inherited sockets ignored", pid_s);
		activate_unsetenv();
		return 0;
	}
	if (pid != (long)getpid()) {
		/* Meant for another process (the one that started us). */
		snprintf(err, errlen, "LISTEN_PID %ld is not this process (%ld): inherited sockets ignored",
		    pid, (long)getpid());
		activate_unsetenv();
		return 0;
	}
	if (activate_parse_num(fds_s, ACTIVATE_FDS_MAX, &n) < 0) {
		snprintf(err, errlen, "LISTEN_FDS: bad value '%s' (0..%d)", fds_s, ACTIVATE_FDS_MAX);
		activate_unsetenv();
		return -1;
	}
	if (n == 0) {
		activate_unsetenv();
		return 0;
	}
	if (!(out->socks = calloc(n, sizeof *out->socks))) {
		snprintf(err, errlen, "LISTEN_FDS: out of memory");
		activate_unsetenv();
		return -1;
	}
	out->n = n;
	for (i = 0; i < n; i++) {
		const char *colon;
		size_t len = 0;

		out->socks[i].fd = ACTIVATE_FDS_START + i;
		if (names) {
			colon = strchr(names, ':');
			len = colon ? (size_t)(colon - names) : strlen(names);
		}
		if (!(out->socks[i].name = strndup(names ? names : "", len))) {
			snprintf(err, errlen, "LISTEN_FDNAMES: out of memory");
			goto fail;
		}
		if (names)
			names = names[len] ? names + len + 1 : NULL;
		else if (getenv("LISTEN_FDNAMES")) {
			snprintf(err, errlen, "LISTEN_FDNAMES has %d names for %ld sockets (LISTEN_FDS)",
			    i, n);
			goto fail;
		}
	}
	if (names) {
		snprintf(err, errlen, "LISTEN_FDNAMES has more names than the %ld sockets of LISTEN_FDS", n);
		goto fail;
	}
	for (i = 0; i < n; i++)
		if (activate_inspect(&out->socks[i], err, errlen) < 0)
			goto fail;
	activate_unsetenv();
	return n;
fail:
	activate_unsetenv();
	activate_free(out);
	return -1;
}

void
activate_free(struct activate_set *s)
{
	for (int i = 0; s->socks && i < s->n; i++)
		free(s->socks[i].name);
	free(s->socks);
	s->socks = NULL;
	s->n = 0;
}

/* Same family, address and port (and IPv6 scope); unix: the same path. */
static int
activate_same_addr(const struct sockaddr_storage *a, socklen_t alen,
    const struct sockaddr_storage *b, socklen_t blen)
{
	if (a->ss_family != b->ss_family)
		return 0;
	switch (a->ss_family) {
	case AF_INET: {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
	}
	case AF_UNIX: {
		const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;
		size_t off = offsetof(struct sockaddr_un, sun_path);
		size_t xl = alen > off ? strnlen(x->sun_path, alen - off) : 0;
		size_t yl = blen > off ? strnlen(y->sun_path, blen - off) : 0;

		/* Abstract (or unnamed) sockets have no path to compare. */
		return xl > 0 && xl == yl && memcmp(x->sun_path, y->sun_path, xl) == 0;
	}
	}
	return 0;
}

/* The listener and address index an inherited socket serves, by name
 * first, then by address; NULL when none. */
static const struct conf_listener *
activate_find(const struct activate_sock *as, const struct conf *conf, int *by_name, int *addr)
{
	const struct conf_listener *l;

	*by_name = 0;
	*addr = -1;
	if (*as->name)
		for (l = conf->listeners; l; l = l->next)
			if (strcmp(l->name, as->name) == 0) {
				*by_name = 1;
				for (int a = 0; a < l->naddrs; a++)
					if (activate_same_addr(&as->ss, as->len, &l->addrs[a].ss,
					    l->addrs[a].len))
						*addr = a;
				return l;
			}
	for (l = conf->listeners; l; l = l->next) {
		/* Port 0 is "any free port": no inherited port is that. */
		if (l->port == 0 && as->ss.ss_family != AF_UNIX)
			continue;
		for (int a = 0; a < l->naddrs; a++)
			if (activate_same_addr(&as->ss, as->len, &l->addrs[a].ss, l->addrs[a].len)) {
				*addr = a;
				return l;
			}
	}
	return NULL;
}

int
activate_match(struct activate_set *s, const struct conf *conf, char *err, size_t errlen)
{
	struct { const struct conf_listener *l; int by_name, addr; } *m;
	char d[400], d2[400];
	int i, j;

	if (s->n == 0)
		return 0;
	/* Into a scratch array first: all or nothing. */
	if (!(m = calloc(s->n, sizeof *m))) {
		snprintf(err, errlen, "socket activation: out of memory");
		return -1;
	}
	for (i = 0; i < s->n; i++) {
		struct activate_sock *as = &s->socks[i];

		activate_describe(as, d, sizeof d);
		if (as->ss.ss_family == AF_UNSPEC || as->type != SOCK_STREAM || !as->listening) {
			snprintf(err, errlen, "%s is not a listening stream socket", d);
			goto fail;
		}
		if (!(m[i].l = activate_find(as, conf, &m[i].by_name, &m[i].addr))) {
			snprintf(err, errlen, "%s matches no listener", d);
			goto fail;
		}
		for (j = 0; j < i; j++)
			if (m[j].l == m[i].l && m[j].addr == m[i].addr && m[i].addr >= 0 &&
			    activate_same_addr(&s->socks[j].ss, s->socks[j].len, &as->ss, as->len)) {
				activate_describe(&s->socks[j], d2, sizeof d2);
				snprintf(err, errlen, "%s has the same address as %s", d, d2);
				goto fail;
			}
	}
	for (i = 0; i < s->n; i++) {
		s->socks[i].listener = m[i].l;
		s->socks[i].by_name = m[i].by_name;
		s->socks[i].addr = m[i].addr;
	}
	free(m);
	return 0;
fail:
	free(m);
	return -1;
}

int
activate_by_name(const struct activate_set *s, const struct conf_listener *l,
    struct activate_sock **out, int max)
{
	int n = 0, named = 0;

	for (int i = 0; i < s->n; i++)
		named |= s->socks[i].listener == l && s->socks[i].by_name;
	if (!named)
		return 0;
	for (int i = 0; i < s->n; i++)
		if (s->socks[i].listener == l) {
			if (n < max)
				out[n] = &s->socks[i];
			n++;
		}
	return n;
}

enum activate_slot
activate_slot(const struct activate_set *s, const struct conf_listener *l, int a,
    struct activate_sock **sock)
{
	const struct sockaddr_in *in;

	*sock = NULL;
	if (a < 0 || a >= l->naddrs)
		return ACTIVATE_BIND;
	for (int i = 0; i < s->n; i++)
		if (s->socks[i].listener == l && s->socks[i].addr == a) {
			*sock = &s->socks[i];
			return ACTIVATE_INHERITED;
		}
	/* 0.0.0.0:P next to an inherited dual-stack [::]:P of the same listener. */
	in = (const void *)&l->addrs[a].ss;
	if (in->sin_family != AF_INET || in->sin_addr.s_addr != htonl(INADDR_ANY))
		return ACTIVATE_BIND;
	for (int i = 0; i < s->n; i++) {
		const struct sockaddr_in6 *in6 = (const void *)&s->socks[i].ss;

		if (s->socks[i].listener == l && in6->sin6_family == AF_INET6 &&
		    !s->socks[i].v6only && IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) &&
		    in6->sin6_port == in->sin_port) {
			*sock = &s->socks[i];
			return ACTIVATE_COVERED;
		}
	}
	return ACTIVATE_BIND;
}

int
activate_copies(const struct activate_set *s, const struct conf_listener *l, int workers,
    struct activate_sock **why)
{
	*why = NULL;
	if (!l->reuseport)
		return 1;
	for (int i = 0; i < s->n; i++)
		if (s->socks[i].listener == l && !s->socks[i].reuseport) {
			*why = &s->socks[i];
			return 1;
		}
	return workers;
}

int
activate_inherited(const struct activate_set *s, int fd)
{
	for (int i = 0; i < s->n; i++)
		if (s->socks[i].fd == fd)
			return 1;
	return 0;
}

int
activate_take_upgrade(struct activate_set *out, char *err, size_t errlen)
{
	const char *env = getenv(ACTIVATE_UPGRADE_ENV), *p;
	int n = 1;

	memset(out, 0, sizeof *out);
	err[0] = '\0';
	if (!env || !*env) {
		unsetenv(ACTIVATE_UPGRADE_ENV);
		return 0;
	}
	for (p = env; *p; p++)
		n += *p == ',';
	if (!(out->socks = calloc(n, sizeof *out->socks))) {
		snprintf(err, errlen, "%s: out of memory", ACTIVATE_UPGRADE_ENV);
		goto fail;
	}
	for (p = env; *p; ) {
		struct activate_sock *as = &out->socks[out->n];
		int fd, copy, used = 0;
		size_t len;

		if (sscanf(p, "%d/%d/%n", &fd, &copy, &used) < 2 || !used || fd < 3 || copy < 0) {
			snprintf(err, errlen, "%s: bad entry '%.40s'", ACTIVATE_UPGRADE_ENV, p);
			goto fail;
		}
		p += used;
		len = strcspn(p, ",");
		as->fd = fd;
		as->copy = copy;
		as->upgrade = 1;
		out->n++;
		if (!(as->name = strndup(p, len))) {
			snprintf(err, errlen, "%s: out of memory", ACTIVATE_UPGRADE_ENV);
			goto fail;
		}
		if (activate_inspect(as, err, errlen) < 0)
			goto fail;
		p += len + (p[len] == ',');
	}
	unsetenv(ACTIVATE_UPGRADE_ENV);
	return out->n;
fail:
	unsetenv(ACTIVATE_UPGRADE_ENV);
	activate_free(out);
	return -1;
}

int
activate_take_slot(struct activate_set *s, const struct conf_listener *l,
    const struct sockaddr_storage *want, socklen_t len, int copy, int *foreign)
{
	if (!s)
		return -1;
	for (int i = 0; i < s->n; i++) {
		struct activate_sock *as = &s->socks[i];
		struct sockaddr_storage w = *want;

		if (as->used || as->copy != copy || !as->listening || as->type != SOCK_STREAM)
			continue;
		/* Port 0 at the first slot: the old master's port, by name. */
		if (listen_get_port(want) == 0 && strcmp(as->name, l->name) == 0)
			listen_set_port(&w, listen_get_port(&as->ss));
		if (activate_same_addr(&as->ss, as->len, &w, len)) {
			as->used = 1;
			*foreign = !as->upgrade;
			return as->fd;
		}
		/* systemd's ListenStream=PORT is one dual-stack [::]:PORT */
		if (copy == 0 && want->ss_family == AF_INET && as->ss.ss_family == AF_INET6 &&
		    !as->v6only && listen_get_port(&as->ss) == listen_get_port(want) &&
		    ((const struct sockaddr_in *)want)->sin_addr.s_addr == htonl(INADDR_ANY) &&
		    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&as->ss)->sin6_addr))
			return -2;
	}
	return activate_take_slot(s->next, l, want, len, copy, foreign);
}

void
activate_close_unused(struct activate_set *s)
{
	char d[400];

	for (int i = 0; i < s->n; i++)
		if (!s->socks[i].used && s->socks[i].fd >= 0) {
			activate_describe(&s->socks[i], d, sizeof d);
			log_info("%s: no listener takes it any more: closed", d);
			close(s->socks[i].fd);
			s->socks[i].fd = -1;
		}
}
