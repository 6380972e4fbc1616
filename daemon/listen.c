/* listen: a listener's sockets, bound as Tornado's bind_sockets() binds:
 * one per resolved address (times the reuseport copies), or a unix path. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "conf.h"
#include "listen.h"

/* How often a port-0 listener retries when a later socket finds the port
 * the first one got already taken (another family or copy lost the race). */
#define LISTEN_PORT0_TRIES 8

struct listen_sock *
listen_sock_for(struct listen_set *s, int a, int w)
{
	return &s->socks[a * s->copies + (s->copies > 1 ? w % s->copies : 0)];
}

void
listen_close(struct listen_set *s, int unlink_unix)
{
	for (int i = 0; s->socks && i < s->naddrs * s->copies; i++) {
		struct listen_sock *ls = &s->socks[i];

		if (ls->fd < 0)
			continue;
		close(ls->fd);
		ls->fd = -1;
		if (unlink_unix && ls->ss.ss_family == AF_UNIX)
			unlink(((struct sockaddr_un *)&ls->ss)->sun_path);
	}
	free(s->socks);
	s->socks = NULL;
}

static int
listen_fail(const struct conf_listener *l, const char *op, const struct sockaddr *sa,
    socklen_t len, int errnum, char *err, size_t errlen)
{
	char a[160];

	conf_format_addr(sa, len, a, sizeof a);
	snprintf(err, errlen, "listener %s: %s %s: %s", l->name, op, a, strerror(errnum));
	errno = errnum;
	return -1;
}

/* A unix path may be left over from a process that died; replace it only
 * when nothing answers on it, never a live socket or a plain file. */
static int
listen_unix_stale(const struct conf_listener *l, const struct sockaddr_un *sun,
    socklen_t len, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc, e;

	if (lstat(sun->sun_path, &st) < 0)
		return errno == ENOENT ? 0 :
		    listen_fail(l, "stat", (const void *)sun, len, errno, err, errlen);
	if (!S_ISSOCK(st.st_mode))
		return listen_fail(l, "bind", (const void *)sun, len, EEXIST, err, errlen);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return listen_fail(l, "socket", (const void *)sun, len, errno, err, errlen);
	rc = connect(fd, (const void *)sun, len);
	e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN)
		return listen_fail(l, "bind", (const void *)sun, len, EADDRINUSE, err, errlen);
	if (e == ECONNREFUSED && unlink(sun->sun_path) < 0 && errno != ENOENT)
		return listen_fail(l, "unlink stale", (const void *)sun, len, errno, err, errlen);
	return 0;
}

/* With ipv6only = no, [::] takes IPv4 too, so 0.0.0.0 on the same port
 * would only collide with it: leave that one out. */
static int
listen_covered(const struct conf_listener *l, const struct sockaddr_storage *ss)
{
	if (l->ipv6only || ss->ss_family != AF_INET ||
	    ((const struct sockaddr_in *)ss)->sin_addr.s_addr != htonl(INADDR_ANY))
		return 0;
	for (int i = 0; i < l->naddrs; i++) {
		const struct sockaddr_in6 *in6 = (const void *)&l->addrs[i].ss;

		if (in6->sin6_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			return 1;
	}
	return 0;
}

static void
listen_set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static int
listen_get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return -1;
}

/* One socket: options that must precede bind, bind, options that must
 * precede listen, listen. Returns the fd, -1 with err (errno kept), or -2
 * for a family the kernel lacks (skipped, as Tornado skips EAFNOSUPPORT). */
static int
listen_one(const struct conf_listener *l, struct listen_sock *ls, char *err, size_t errlen)
{
	const struct sockaddr *sa = (const void *)&ls->ss;
	int fd, on = 1, fam = ls->ss.ss_family, defer = 1;
	const char *op;

	fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno == EAFNOSUPPORT ? -2 :
		    listen_fail(l, "socket", sa, ls->len, errno, err, errlen);
	if (fam != AF_UNIX) {
		op = "setsockopt SO_REUSEADDR";
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
			goto fail;
		op = "setsockopt SO_REUSEPORT";
		if (l->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0)
			goto fail;
		/* Set explicitly, both ways: the sysctl net.ipv6.bindv6only
		 * default must not decide whether [::] also takes IPv4. */
		op = "setsockopt IPV6_V6ONLY";
		if (fam == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
		    &l->ipv6only, sizeof l->ipv6only) < 0)
			goto fail;
		/* Accepted sockets inherit SO_KEEPALIVE from the listener. */
		op = "setsockopt SO_KEEPALIVE";
		if (l->keepalive && setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) < 0)
			goto fail;
		/* 1 s, as nginx's "deferred": the kernel holds the connection
		 * until data arrives or the SYN-ACK retransmits run out. */
		op = "setsockopt TCP_DEFER_ACCEPT";
		if (l->defer_accept && setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT,
		    &defer, sizeof defer) < 0)
			goto fail;
		op = "setsockopt TCP_FASTOPEN";
		if (l->fastopen && setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN,
		    &l->fastopen, sizeof l->fastopen) < 0)
			goto fail;
	}
	op = "bind";
	if (bind(fd, sa, ls->len) < 0)
		goto fail;
	if (fam != AF_UNIX) {
		ls->len = sizeof ls->ss;
		op = "getsockname";
		if (getsockname(fd, (struct sockaddr *)&ls->ss, &ls->len) < 0)
			goto fail;
	}
	op = "listen";
	if (listen(fd, l->backlog) < 0)
		goto fail;
	return ls->fd = fd;
fail:
	on = errno;
	close(fd);
	return listen_fail(l, op, sa, ls->len, on, err, errlen);
}

int
listen_bind(const struct conf_listener *l, int copies, struct listen_set *out,
    char *err, size_t errlen)
{
	int n = l->naddrs * copies, tries = 0;

	out->naddrs = l->naddrs;
	out->copies = copies;
	if (!(out->socks = calloc(n, sizeof *out->socks))) {
		snprintf(err, errlen, "listener %s: out of memory", l->name);
		return -1;
	}
retry:
	for (int i = 0; i < n; i++)
		out->socks[i].fd = -1;
	for (int a = 0, bound_port = 0; a < l->naddrs; a++) {
		const struct conf_addr *ca = &l->addrs[a];

		if (listen_covered(l, &ca->ss))
			continue;
		if (ca->ss.ss_family == AF_UNIX &&
		    listen_unix_stale(l, (const void *)&ca->ss, ca->len, err, errlen) < 0)
			goto fail;
		for (int k = 0; k < copies; k++) {
			struct listen_sock *ls = &out->socks[a * copies + k];
			int rc;

			ls->ss = ca->ss;
			ls->len = ca->len;
			/* Port 0: every later socket takes the port the first got. */
			if (l->port == 0 && bound_port)
				listen_set_port(&ls->ss, bound_port);
			rc = listen_one(l, ls, err, errlen);
			if (rc == -2)
				break;  /* family not supported: skip the address */
			if (rc < 0) {
				if (errno == EADDRINUSE && l->port == 0 && bound_port &&
				    ++tries < LISTEN_PORT0_TRIES) {
					for (int i = 0; i < n; i++)
						if (out->socks[i].fd >= 0)
							close(out->socks[i].fd);
					goto retry;
				}
				goto fail;
			}
			if (!bound_port)
				bound_port = listen_get_port(&ls->ss);
		}
	}
	for (int i = 0; i < n; i++)
		if (out->socks[i].fd >= 0)
			return 0;
	snprintf(err, errlen, "listener %s: no address could be bound (no kernel support for its families)",
	    l->name);
	errno = EAFNOSUPPORT;
fail:
	{
		int e = errno;

		for (int i = 0; i < n; i++)
			if (out->socks[i].fd >= 0)
				close(out->socks[i].fd);
		free(out->socks);
		out->socks = NULL;
		errno = e;
	}
	return -1;
}
