/* listen: a listener's sockets, bound as Tornado's bind_sockets() binds:
 * one per resolved address (times the reuseport copies), or a unix path. */
#include <errno.h>
#include <linux/filter.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "activate.h"
#include "conf.h"
#include "listen.h"

/* How often a port-0 listener retries when a later socket finds the port
 * the first one got already taken (another family or copy lost the race). */
#define LISTEN_PORT0_TRIES 8

struct listen_sock *
listen_sock_for(struct listen_set *s, int a, int w)
{
	return &s->socks[(s->copies > 1 ? w % s->copies : 0) * s->naddrs + a];
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
		/* an inherited path is its owner's (systemd's RemoveOnStop=) */
		if (unlink_unix && ls->ss.ss_family == AF_UNIX && !ls->inherited)
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

void
listen_set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

int
listen_get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return -1;
}

/* The options a bound socket can still change, then listen(): on a new
 * socket and on one a reload keeps. -1 with the failing call in *op. */
static int
listen_opts(const struct conf_listener *l, int fd, int fam, const char **op)
{
	int on = 1, off = 0, defer = 1, tfo = l->fastopen;

	if (fam != AF_UNIX) {
		/* Accepted sockets inherit SO_KEEPALIVE from the listener. */
		*op = "setsockopt SO_KEEPALIVE";
		if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, l->keepalive ? &on : &off,
		    sizeof on) < 0)
			return -1;
		/* 1 s, as nginx's "deferred": the kernel holds the connection
		 * until data arrives or the SYN-ACK retransmits run out. */
		*op = "setsockopt TCP_DEFER_ACCEPT";
		if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT,
		    l->defer_accept ? &defer : &off, sizeof defer) < 0)
			return -1;
		*op = "setsockopt TCP_FASTOPEN";
		if (tfo && setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &tfo, sizeof tfo) < 0)
			return -1;
	}
	/* listen() again on a listening socket only changes the backlog. */
	*op = "listen";
	return listen(fd, l->backlog);
}

int
listen_update(const struct conf_listener *l, struct listen_set *s, char *err, size_t errlen)
{
	const char *op;

	for (int i = 0; i < s->naddrs * s->copies; i++) {
		struct listen_sock *ls = &s->socks[i];

		/* an inherited socket keeps the options its unit gave it */
		if (ls->fd >= 0 && !ls->inherited &&
		    listen_opts(l, ls->fd, ls->ss.ss_family, &op) < 0)
			return listen_fail(l, op, (struct sockaddr *)&ls->ss, ls->len, errno,
			    err, errlen);
	}
	return 0;
}

int
listen_same(const struct conf_listener *old, const struct conf_listener *l)
{
	/* port 0 is "some port": only the name says it is the same listener */
	if (l->port == 0 && strcmp(old->name, l->name) != 0)
		return 0;
	if (old->naddrs != l->naddrs || old->port != l->port ||
	    old->ipv6only != l->ipv6only || old->reuseport != l->reuseport)
		return 0;
	for (int i = 0; i < l->naddrs; i++)
		if (old->addrs[i].len != l->addrs[i].len ||
		    memcmp(&old->addrs[i].ss, &l->addrs[i].ss, l->addrs[i].len) != 0)
			return 0;
	return 1;
}

/* One socket: options that must precede bind, bind, options that must
 * precede listen, listen. Returns the fd, -1 with err (errno kept), or -2
 * for a family the kernel lacks (skipped, as Tornado skips EAFNOSUPPORT). */
static int
listen_one(const struct conf_listener *l, struct listen_sock *ls, char *err, size_t errlen)
{
	const struct sockaddr *sa = (const void *)&ls->ss;
	int fd, on = 1, fam = ls->ss.ss_family;
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
	if (listen_opts(l, fd, fam, &op) < 0)
		goto fail;
	return ls->fd = fd;
fail:
	on = errno;
	close(fd);
	return listen_fail(l, op, sa, ls->len, on, err, errlen);
}

/* Close what this attempt bound; returns whether an inherited socket is
 * among them (its port is not ours to change: no retry then). Inherited
 * sockets are handed back to the pool, not closed. */
static int
listen_unbind(struct listen_set *s, int n)
{
	int inherited = 0;

	for (int i = 0; i < n; i++) {
		if (s->socks[i].fd >= 0 && !s->socks[i].inherited)
			close(s->socks[i].fd);
		inherited |= s->socks[i].inherited;
	}
	return inherited;
}

int
listen_bind(const struct conf_listener *l, int copies, struct listen_set *out,
    char *err, size_t errlen)
{
	return listen_bind_pool(l, copies, out, NULL, err, errlen);
}

int
listen_bind_pool(const struct conf_listener *l, int copies, struct listen_set *out,
    struct activate_set *pool, char *err, size_t errlen)
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
		out->socks[i].fd = -1, out->socks[i].inherited = 0;
	for (int a = 0, bound_port = 0; a < l->naddrs; a++) {
		const struct conf_addr *ca = &l->addrs[a];

		if (listen_covered(l, &ca->ss))
			continue;
		for (int k = 0; k < copies; k++) {
			struct listen_sock *ls = &out->socks[k * l->naddrs + a];
			int rc, foreign = 0;

			ls->ss = ca->ss;
			ls->len = ca->len;
			/* Port 0: every later socket takes the port the first got. */
			if (l->port == 0 && bound_port)
				listen_set_port(&ls->ss, bound_port);
			rc = activate_take_slot(pool, l, &ls->ss, ls->len, k, &foreign);
			if (rc == -2)
				break;  /* an inherited [::] takes IPv4 too */
			if (rc >= 0) {
				ls->fd = rc;
				ls->inherited = foreign;
				ls->len = sizeof ls->ss;
				getsockname(rc, (struct sockaddr *)&ls->ss, &ls->len);
				if (!bound_port)
					bound_port = listen_get_port(&ls->ss);
				continue;
			}
			if (ca->ss.ss_family == AF_UNIX &&
			    listen_unix_stale(l, (const void *)&ca->ss, ca->len, err, errlen) < 0)
				goto fail;
			rc = listen_one(l, ls, err, errlen);
			if (rc == -2)
				break;  /* family not supported: skip the address */
			if (rc < 0) {
				if (errno == EADDRINUSE && l->port == 0 && bound_port &&
				    ++tries < LISTEN_PORT0_TRIES && !listen_unbind(out, n)) {
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

		listen_unbind(out, n);
		free(out->socks);
		out->socks = NULL;
		errno = e;
	}
	return -1;
}

int
listen_add_copy(const struct conf_listener *l, struct listen_set *s, char *err,
    size_t errlen)
{
	struct listen_sock *socks, *ls;
	int n = s->naddrs;

	socks = realloc(s->socks, (s->copies + 1) * n * sizeof *socks);
	if (!socks) {
		snprintf(err, errlen, "listener %s: out of memory", l->name);
		return -1;
	}
	s->socks = socks;
	ls = &socks[s->copies * n];
	for (int a = 0; a < n; a++) {
		ls[a] = socks[a];       /* copy 0's address, with its real port */
		if (socks[a].fd >= 0 && listen_one(l, &ls[a], err, errlen) < 0) {
			while (a--)
				if (ls[a].fd >= 0)
					close(ls[a].fd);
			return -1;
		}
	}
	s->copies++;
	return 0;
}

void
listen_drop_copy(struct listen_set *s)
{
	struct listen_sock *ls;

	if (s->copies < 2)
		return;
	s->copies--;
	ls = &s->socks[s->copies * s->naddrs];
	for (int a = 0; a < s->naddrs; a++)
		if (ls[a].fd >= 0)
			close(ls[a].fd);
}

/* The reuseport group keeps its sockets in listen() order and, when one
 * closes, moves the last into its slot: as copies are only ever added and
 * closed at the end, group index k is copy k. A classic BPF program on the
 * group returns the index of the socket to use (SO_ATTACH_REUSEPORT_CBPF,
 * Linux 4.5): a random one below n. The copies at n and above then get no
 * new connection, only what was already queued, which their worker drains
 * before the close. Without it, closing a copy resets its queue (unless
 * net.ipv4.tcp_migrate_req is on, which is off by default). */
int
listen_steer(struct listen_set *s, int n)
{
	struct sock_filter code[] = {
		{ BPF_LD | BPF_W | BPF_ABS, 0, 0, (__u32)(SKF_AD_OFF + SKF_AD_RANDOM) },
		{ BPF_ALU | BPF_MOD | BPF_K, 0, 0, (__u32)(n > 0 ? n : 1) },
		{ BPF_RET | BPF_A, 0, 0, 0 },
	};
	struct sock_fprog prog = { .len = 3, .filter = code };

	for (int a = 0; a < s->naddrs; a++) {
		int fd = s->socks[a].fd, rc;

		/* one copy left may still carry the program: lift it too */
		if (fd < 0 || (s->copies < 2 && n < s->copies))
			continue;
		if (n >= s->copies)
			rc = setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &fd, sizeof fd);
		else
			rc = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
		if (rc < 0 && !(n >= s->copies && errno == ENOENT))
			return -1;
	}
	return 0;
}
