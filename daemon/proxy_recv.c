/* proxy_recv: the PROXY protocol header read off a new connection before
 * its listener's handler sees it (proxy_protocol = v1 | v2 | any). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "conf.h"
#include "conn.h"
#include "handler.h"
#include "log.h"
#include "proxy_proto.h"
#include "proxy_recv.h"
#include "stats.h"

struct proxy_recv {
	ev_io io;                       /* first: the callback casts back */
	ev_timer timer;
	const struct conf_listener *l;
	struct sockaddr_storage peer, local;
	socklen_t peer_len, local_len;
	size_t have;                    /* header bytes taken off the socket */
	char buf[PROXY_PROTO_MAX];
};

/* A header being read is a connection the worker holds (conn_hold): a
 * draining worker waits for it, hands it over, then stops it, rather than
 * exit and reset a connection it accepted. */
static void
proxy_recv_end(struct ev_loop *loop, struct proxy_recv *pr)
{
	ev_io_stop(loop, &pr->io);
	ev_timer_stop(loop, &pr->timer);
	free(pr);
	conn_hold(-1);
}

static void
proxy_recv_fail(struct ev_loop *loop, struct proxy_recv *pr, const char *why)
{
	const struct conf_listener *l = pr->l;
	char a[160];

	if (l->hl && l->hl->cnt.st)
		stats_add(l->hl->cnt.st->proxy_errors, 1);
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		conf_format_addr((struct sockaddr *)&pr->peer, pr->peer_len, a, sizeof a);
		log_debug("listener %s: %s: PROXY header: %s", l->name, a, why);
	}
	close(pr->io.fd);
	proxy_recv_end(loop, pr);
}

/* Peek, never read past the header: bytes after it are the client's and
 * belong to the handler, which gets the fd, not a buffer. While the header
 * is incomplete everything peeked is header, so taking it all is safe (and
 * keeps a level-triggered watcher from spinning on the same bytes). */
static void
proxy_recv_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct proxy_recv *pr = (struct proxy_recv *)io;
	struct proxy_proto_result res;
	ssize_t n = recv(io->fd, pr->buf + pr->have, sizeof pr->buf - pr->have, MSG_PEEK);
	long rc;
	int fd = io->fd;

	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		return proxy_recv_fail(loop, pr, strerror(errno));
	}
	if (n == 0)
		return proxy_recv_fail(loop, pr, "closed before the header ended");
	rc = proxy_proto_parse(pr->buf, pr->have + n, (int)pr->l->proxy_protocol, &res);
	if (rc < 0)
		return proxy_recv_fail(loop, pr, res.reason ? res.reason : "malformed");
	/* take what is header: all of it, or up to its end */
	n = rc ? rc - (long)pr->have : n;
	if (n > 0 && recv(fd, pr->buf + pr->have, n, 0) != n)
		return proxy_recv_fail(loop, pr, "short read");
	pr->have += n;
	if (rc == 0)
		return;         /* more to come */
	if (proxy_proto_has_addrs(&res)) {
		/* from now on the peer is the one the header names */
		pr->peer = res.src;
		pr->local = res.dst;
		pr->peer_len = pr->local_len = sizeof pr->peer;
	}
	ev_io_stop(loop, &pr->io);
	ev_timer_stop(loop, &pr->timer);
	handler_handoff(pr->l, loop, fd, (struct sockaddr *)&pr->peer, pr->peer_len,
	    pr->local_len ? (struct sockaddr *)&pr->local : NULL, pr->local_len);
	conn_stop_late();
	free(pr);
	conn_hold(-1);
}

static void
proxy_recv_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	proxy_recv_fail(loop, (struct proxy_recv *)((char *)t - offsetof(struct proxy_recv, timer)),
	    "timed out");
}

void
proxy_recv_start(const struct conf_listener *l, struct ev_loop *loop, int fd,
    const struct sockaddr *peer, socklen_t peer_len, const struct sockaddr *local,
    socklen_t local_len)
{
	struct proxy_recv *pr = calloc(1, sizeof *pr);

	if (!pr) {
		close(fd);
		if (l->hl && l->hl->cnt.st)
			stats_add(l->hl->cnt.st->proxy_errors, 1);
		return;
	}
	pr->l = l;
	if (peer_len > sizeof pr->peer)
		peer_len = sizeof pr->peer;
	memcpy(&pr->peer, peer, peer_len);
	pr->peer_len = peer_len;
	if (local && local_len <= sizeof pr->local) {
		memcpy(&pr->local, local, local_len);
		pr->local_len = local_len;
	}
	ev_io_init(&pr->io, proxy_recv_cb, fd, EV_READ);
	ev_timer_init(&pr->timer, proxy_recv_timeout_cb, PROXY_RECV_TIMEOUT, 0.);
	ev_io_start(loop, &pr->io);
	ev_timer_start(loop, &pr->timer);
	conn_hold(1);
}
