/* proxy: a TCP (and unix) relay. Every accepted client gets a connection to
 * one of the listener's upstreams (round-robin per worker, the next one on
 * a connect failure or timeout, each tried at most once), optionally a
 * PROXY protocol header first, and then bytes both ways until both
 * directions have ended:
 *  - back-pressure: each direction holds at most PROXY_BUF bytes (a buffer,
 *    or a splice pipe); while it is full, its source is not read, so a side
 *    that does not read stalls the other in its own kernel buffers;
 *  - half-close: a FIN from one side becomes shutdown(SHUT_WR) on the other
 *    once what it sent before is flushed; the connection closes when both
 *    directions have ended; any error closes both sides at once.
 *
 * The connection helper (api->conn_new) is not used: it has no way to stop
 * reading while the *other* socket is full (it buffers up to CONN_IN_MAX and
 * then closes), none to shut down only our sending side, and it reads into
 * its own buffer, which rules out splice. So both sockets are watched here
 * with our own ev_io, and the accounting is api->conn_done; api->hold keeps
 * a draining worker waiting for them, and the listener's idle_timeout
 * (ABI 1.1) applies as in the helper.
 *
 * Zero-copy: with `splice = yes` (the default) each direction moves through
 * a pipe with splice(2), socket -> pipe -> socket, and the bytes are never
 * copied to user space; `splice = no` (or no pipes to be had) copies
 * through a 64 KiB buffer. Measured with tests/bench/proxy_bench.py: 1 GiB
 * from a client through one worker to a sink on loopback, worker CPU time
 * (utime + stime) per GiB, on a 2-CPU VM shared with the client and the
 * sink (noisy: means of 17 runs for TCP, 8 for unix):
 *     TCP upstream:  splice 396 ms, copy 485 ms  (-18 %)
 *     unix upstream: splice 356 ms, copy 390 ms  (-9 %, within the noise)
 *     TCP, bound and pipe raised to 1 MiB: splice 215-242 ms, copy 352 ms
 * Throughput was the client's and sink's (Python) limit, 600-1000 MiB/s
 * either way. So splice is kept, with the pipe at its default 64 KiB (16
 * pages): the same bound as the copy buffer, and a 1 MiB pipe per direction
 * would hold 16 times more kernel memory per stalled connection. The cost:
 * two pipes (four descriptors) per relayed connection. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <ev.h>

#include <acceptd/module.h>

#include "conf.h"
#include "conn.h"
#include "handler.h"
#include "handlers/proxy.h"
#include "proxy_proto.h"

/* More addresses than this in one upstream list is a config error. */
#define PROXY_MAX_UPSTREAMS 64
#define PROXY_CONNECT_TIMEOUT_MS 5000
/* Moves per event and direction before the loop serves others. */
#define PROXY_ROUNDS 16

struct proxy_upstream {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[128];                 /* for logs and -T */
};

struct proxy_conf {
	const struct acceptd_listener *l;
	char *upstream_text;            /* as written, for -T */
	struct proxy_upstream *ups;
	size_t nups;
	unsigned rr;                    /* round-robin: this worker's next */
	long long connect_timeout_ms;
	int send_pp;                    /* 0 off, 1 v1, 2 v2 */
	int splice;
	/* -- in each worker -- */
	struct proxy_conn *conns;       /* open ones */
	struct proxy_stats st;
};

/* One direction: bytes from src to dst, through a buffer or a pipe. */
struct proxy_dir {
	char *buf;                      /* buffered: NULL while empty */
	size_t off, len;
	int pipe[2];                    /* splice: -1 when buffered */
	size_t plen;                    /* bytes in the pipe */
	unsigned pfull : 1;             /* the pipe took no more: wait for dst */
	unsigned eof : 1;               /* src sent its FIN */
	unsigned done : 1;              /* ...and dst got ours */
	unsigned long long nread, nwritten; /* from src, to dst */
};

enum proxy_state { PROXY_CONNECTING, PROXY_RELAY };

struct proxy_conn {
	struct proxy_conf *pc;
	struct ev_loop *loop;
	ev_io cio, uio;                 /* client, upstream */
	ev_timer timer;                 /* connect timeout, then idle timeout */
	struct proxy_dir c2u, u2c;
	enum proxy_state state;
	size_t first, tries;            /* upstreams: where we started, how many tried */
	ev_tstamp idle_after, last_io;
	struct proxy_conn *prev, *next;
	size_t hdr_len;
	char hdr[PROXY_PROTO_BUILD_MAX];
};

static void proxy_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void proxy_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void proxy_connect_next(struct proxy_conn *p);
static void proxy_close(struct proxy_conn *p);


/* ---- one direction -------------------------------------------------- */

static int
proxy_again(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

static size_t
dir_pending(const struct proxy_dir *d)
{
	return d->pipe[0] >= 0 ? d->plen : d->len;
}

/* Room for more from src. */
static size_t
dir_room(const struct proxy_dir *d)
{
	if (d->pipe[0] >= 0)
		return d->pfull || d->plen >= PROXY_BUF ? 0 : PROXY_BUF - d->plen;
	return PROXY_BUF - d->len;
}

/* Whether src should be read now. */
static int
dir_wants_read(const struct proxy_dir *d)
{
	return !d->eof && dir_room(d) > 0;
}

/* Read from src: >0 bytes, 0 at EOF, -1 nothing now, -2 error. */
static ssize_t
dir_fill(struct proxy_dir *d, int src)
{
	size_t room = dir_room(d);
	ssize_t n;

	if (d->pipe[0] >= 0) {
		n = splice(src, NULL, d->pipe[1], NULL, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			d->plen += n;
		else if (n < 0 && proxy_again(errno) && d->plen > 0)
			/* A pipe holds 16 pages, not always 64 KiB (a socket's
			 * pages come partly filled): it is full, not src empty. */
			d->pfull = 1;
	} else {
		if (!d->buf) {
			if (!(d->buf = malloc(PROXY_BUF))) {
				errno = ENOMEM;
				return -2;
			}
			d->off = d->len = 0;
		} else if (d->off + d->len == PROXY_BUF) {
			memmove(d->buf, d->buf + d->off, d->len);
			d->off = 0;
		}
		n = read(src, d->buf + d->off + d->len, PROXY_BUF - d->off - d->len);
		if (n > 0)
			d->len += n;
	}
	if (n < 0)
		return proxy_again(errno) ? -1 : -2;
	return n;
}

/* Write to dst: >0 bytes, -1 nothing now, -2 error. */
static ssize_t
dir_flush(struct proxy_dir *d, int dst)
{
	ssize_t n;

	if (d->pipe[0] >= 0) {
		n = splice(d->pipe[0], NULL, dst, NULL, d->plen, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			d->plen -= n;
			d->pfull = 0;
		}
	} else {
		n = send(dst, d->buf + d->off, d->len, MSG_NOSIGNAL);
		if (n > 0) {
			d->off += n;
			d->len -= n;
			if (d->len == 0) {
				/* an idle connection holds no buffer */
				free(d->buf);
				d->buf = NULL;
				d->off = 0;
			}
		}
	}
	if (n < 0)
		return proxy_again(errno) ? -1 : -2;
	return n;
}

/* Move what can be moved from src to dst now; on src's EOF, once all is
 * flushed, pass the FIN on. *moved is set when a byte moved. 0, or -1 on
 * an error (the caller closes both sides). */
static int
dir_pump(struct proxy_dir *d, int src, int dst, int *moved)
{
	for (int round = 0; round < PROXY_ROUNDS; round++) {
		int progress = 0;
		ssize_t n;

		if (dir_wants_read(d)) {
			n = dir_fill(d, src);
			if (n == -2)
				return -1;
			if (n == 0)
				d->eof = 1;
			if (n > 0) {
				d->nread += n;
				progress = 1;
			}
		}
		if (dir_pending(d)) {
			n = dir_flush(d, dst);
			if (n == -2)
				return -1;
			if (n > 0) {
				d->nwritten += n;
				progress = 1;
			}
		}
		if (!progress)
			break;
		*moved = 1;
	}
	if (d->eof && !d->done && !dir_pending(d)) {
		/* ENOTCONN: dst is gone already; its next read or write says so */
		shutdown(dst, SHUT_WR);
		d->done = 1;
	}
	return 0;
}

static int
dir_init(struct proxy_dir *d)
{
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		d->pipe[0] = d->pipe[1] = -1;
		return -1;
	}
	return 0;
}

static void
dir_free(struct proxy_dir *d)
{
	free(d->buf);
	d->buf = NULL;
	if (d->pipe[0] >= 0) {
		close(d->pipe[0]);
		close(d->pipe[1]);
		d->pipe[0] = d->pipe[1] = -1;
	}
}

/* Put bytes ahead of everything src will send (the PROXY header). */
static int
dir_prime(struct proxy_dir *d, const char *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (d->pipe[0] >= 0) {
		/* an empty pipe takes 232 bytes at once */
		if (write(d->pipe[1], buf, len) != (ssize_t)len)
			return -1;
		d->plen = len;
		return 0;
	}
	if (!(d->buf = malloc(PROXY_BUF)))
		return -1;
	memcpy(d->buf, buf, len);
	d->off = 0;
	d->len = len;
	return 0;
}

/* ---- one connection ------------------------------------------------- */

static void
proxy_set_io(struct proxy_conn *p, ev_io *w, int fd, int ev)
{
	if (fd < 0)
		return;
	if (w->fd == fd && (w->events & (EV_READ | EV_WRITE)) == ev &&
	    (ev != 0) == (ev_is_active(w) != 0))
		return;
	ev_io_stop(p->loop, w);
	ev_io_set(w, fd, ev);
	if (ev)
		ev_io_start(p->loop, w);
}

static void
proxy_update(struct proxy_conn *p)
{
	int cev = 0, uev = 0;

	if (p->state == PROXY_CONNECTING) {
		uev = EV_WRITE;
	} else {
		if (dir_wants_read(&p->c2u))
			cev |= EV_READ;
		if (dir_pending(&p->u2c))
			cev |= EV_WRITE;
		if (dir_wants_read(&p->u2c))
			uev |= EV_READ;
		if (dir_pending(&p->c2u))
			uev |= EV_WRITE;
	}
	proxy_set_io(p, &p->cio, p->cio.fd, cev);
	proxy_set_io(p, &p->uio, p->uio.fd, uev);
}

static void
proxy_close(struct proxy_conn *p)
{
	struct proxy_conf *pc = p->pc;
	const struct acceptd_api *api = pc->l->api;

	ev_io_stop(p->loop, &p->cio);
	ev_io_stop(p->loop, &p->uio);
	ev_timer_stop(p->loop, &p->timer);
	close(p->cio.fd);
	if (p->uio.fd >= 0)
		close(p->uio.fd);
	dir_free(&p->c2u);
	dir_free(&p->u2c);
	if (p->prev)
		p->prev->next = p->next;
	else
		pc->conns = p->next;
	if (p->next)
		p->next->prev = p->prev;
	pc->st.conns--;
	free(p);
	api->conn_done(pc->l);
	api->hold(-1);
}

static void
proxy_fail(struct proxy_conn *p, const char *what, int err)
{
	const struct acceptd_listener *l = p->pc->l;

	l->api->log(l, ACCEPTD_LOG_DEBUG, "proxy: %s: %s", what, strerror(err));
	proxy_close(p);
}

static void
proxy_timer_arm(struct proxy_conn *p, ev_tstamp after)
{
	ev_timer_stop(p->loop, &p->timer);
	if (after > 0) {
		ev_timer_set(&p->timer, after, 0.);
		ev_timer_start(p->loop, &p->timer);
	}
}

/* Pump one direction, keep the listener's totals; -1: p is closed. */
static int
proxy_pump(struct proxy_conn *p, struct proxy_dir *d, int *moved)
{
	struct proxy_conf *pc = p->pc;
	unsigned long long in = p->c2u.nread, out = p->u2c.nwritten;
	int src = d == &p->c2u ? p->cio.fd : p->uio.fd;
	int dst = d == &p->c2u ? p->uio.fd : p->cio.fd;
	int rc = dir_pump(d, src, dst, moved);

	pc->st.bytes_in += p->c2u.nread - in;
	pc->st.bytes_out += p->u2c.nwritten - out;
	if (p->c2u.nread != in || p->u2c.nwritten != out)
		pc->l->api->count_bytes(pc->l, p->c2u.nread - in, p->u2c.nwritten - out);
	if (rc < 0) {
		proxy_fail(p, d == &p->c2u ? "client to upstream" : "upstream to client", errno);
		return -1;
	}
	return 0;
}

/* After I/O: close when both directions have ended, else watch for more. */
static void
proxy_after_io(struct proxy_conn *p, int moved)
{
	if (p->c2u.done && p->u2c.done) {
		proxy_close(p);
		return;
	}
	if (moved)
		p->last_io = ev_now(p->loop);
	proxy_update(p);
}

static void
proxy_relay_start(struct proxy_conn *p)
{
	struct proxy_conf *pc = p->pc;
	int moved = 0;

	ev_timer_stop(p->loop, &p->timer);
	p->state = PROXY_RELAY;
	/* no pipes (out of descriptors): copy through buffers instead */
	if (pc->splice && (dir_init(&p->c2u) < 0 || dir_init(&p->u2c) < 0))
		dir_free(&p->c2u);
	if (dir_prime(&p->c2u, p->hdr, p->hdr_len) < 0) {
		proxy_fail(p, "PROXY header", errno ? errno : ENOMEM);
		return;
	}
	p->last_io = ev_now(p->loop);
	if (p->idle_after > 0)
		proxy_timer_arm(p, p->idle_after);
	/* The client may have sent already (the header goes out first
	 * anyway); the upstream, a banner. */
	if (proxy_pump(p, &p->c2u, &moved) < 0 || proxy_pump(p, &p->u2c, &moved) < 0)
		return;
	proxy_after_io(p, moved);
}

/* Upstream connect: this attempt failed; try the next upstream. */
static void
proxy_connect_failed(struct proxy_conn *p, const char *why)
{
	struct proxy_conf *pc = p->pc;
	const struct proxy_upstream *u = &pc->ups[(p->first + p->tries - 1) % pc->nups];

	pc->st.connect_failed++;
	pc->l->api->log(pc->l, ACCEPTD_LOG_WARN, "proxy: upstream %s: %s", u->text, why);
	ev_io_stop(p->loop, &p->uio);
	ev_timer_stop(p->loop, &p->timer);
	if (p->uio.fd >= 0)
		close(p->uio.fd);
	p->uio.fd = -1;
	proxy_connect_next(p);
}

static void
proxy_connect_next(struct proxy_conn *p)
{
	struct proxy_conf *pc = p->pc;

	while (p->tries < pc->nups) {
		const struct proxy_upstream *u = &pc->ups[(p->first + p->tries++) % pc->nups];
		int fd = socket(u->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			proxy_connect_failed(p, strerror(errno));
			return;
		}
		p->uio.fd = fd;
		if (connect(fd, (const struct sockaddr *)&u->ss, u->len) == 0) {
			proxy_relay_start(p);
			return;
		}
		if (errno == EINPROGRESS) {
			proxy_set_io(p, &p->uio, fd, EV_WRITE);
			proxy_timer_arm(p, pc->connect_timeout_ms / 1000.0);
			return;
		}
		/* unix: EAGAIN when its backlog is full; TCP: at once refused */
		proxy_connect_failed(p, strerror(errno));
		return;
	}
	pc->st.no_upstream++;
	pc->l->api->log(pc->l, ACCEPTD_LOG_WARN, "proxy: no upstream reachable (%zu tried): "
	    "client closed", p->tries);
	proxy_close(p);
}

static void
proxy_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct proxy_conn *p;
	int moved = 0, err = 0;
	socklen_t el = sizeof err;

	if (w->data) {
		/* the client's */
		p = w->data;
		if ((revents & EV_READ) && proxy_pump(p, &p->c2u, &moved) < 0)
			return;
		if ((revents & EV_WRITE) && proxy_pump(p, &p->u2c, &moved) < 0)
			return;
		proxy_after_io(p, moved);
		return;
	}
	p = (struct proxy_conn *)((char *)w - offsetof(struct proxy_conn, uio));
	if (p->state == PROXY_CONNECTING) {
		if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err)
			proxy_connect_failed(p, strerror(err));
		else
			proxy_relay_start(p);
		return;
	}
	if ((revents & EV_READ) && proxy_pump(p, &p->u2c, &moved) < 0)
		return;
	if ((revents & EV_WRITE) && proxy_pump(p, &p->c2u, &moved) < 0)
		return;
	proxy_after_io(p, moved);
}

/* Connect timeout, or the listener's idle_timeout (libev's "be smart about
 * timeouts": not restarted on every byte, re-armed for the rest). */
static void
proxy_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct proxy_conn *p = (struct proxy_conn *)((char *)w - offsetof(struct proxy_conn, timer));
	ev_tstamp left;
	char why[64];

	if (p->state == PROXY_CONNECTING) {
		snprintf(why, sizeof why, "connect timed out after %lld ms",
		    p->pc->connect_timeout_ms);
		proxy_connect_failed(p, why);
		return;
	}
	left = p->last_io + p->idle_after - ev_now(loop);
	if (left > 0) {
		proxy_timer_arm(p, left);
		return;
	}
	p->pc->l->api->log(p->pc->l, ACCEPTD_LOG_DEBUG, "proxy: idle timeout");
	proxy_close(p);
}

/* Zeroed copy of an address (v2 builds unix addresses from all 108 bytes). */
static void
proxy_copy_addr(struct sockaddr_storage *ss, const struct sockaddr *sa, socklen_t len)
{
	memset(ss, 0, sizeof *ss);
	if (sa && len <= sizeof *ss)
		memcpy(ss, sa, len);
	else
		ss->ss_family = AF_UNSPEC;
}

static void
proxy_accept(void *conf, const struct acceptd_accept *a)
{
	struct proxy_conf *pc = conf;
	const struct acceptd_api *api = a->listener->api;
	struct proxy_conn *p = calloc(1, sizeof *p);
	struct sockaddr_storage src, dst;

	if (!p) {
		api->log(a->listener, ACCEPTD_LOG_WARN, "proxy: connection dropped: out of memory");
		close(a->fd);
		api->conn_done(a->listener);
		return;
	}
	p->pc = pc;
	p->loop = a->loop;
	p->c2u.pipe[0] = p->c2u.pipe[1] = p->u2c.pipe[0] = p->u2c.pipe[1] = -1;
	ev_io_init(&p->cio, proxy_io_cb, a->fd, 0);
	p->cio.data = p;          /* the client's watcher; the upstream's has none */
	ev_io_init(&p->uio, proxy_io_cb, -1, 0);
	p->uio.data = NULL;
	ev_init(&p->timer, proxy_timer_cb);
	p->idle_after = a->listener->idle_timeout;
	if (pc->send_pp) {
		proxy_copy_addr(&src, a->peer, a->peer_len);
		proxy_copy_addr(&dst, a->local, a->local_len);
		p->hdr_len = pc->send_pp == 1 ?
		    proxy_proto_build_v1(p->hdr, sizeof p->hdr, (struct sockaddr *)&src,
		    (struct sockaddr *)&dst) :
		    proxy_proto_build_v2(p->hdr, sizeof p->hdr, PROXY_PROTO_CMD_PROXY,
		    (struct sockaddr *)&src, (struct sockaddr *)&dst);
	}
	p->next = pc->conns;
	if (pc->conns)
		pc->conns->prev = p;
	pc->conns = p;
	pc->st.conns++;
	api->hold(1);         /* a draining worker waits for it */
	p->first = pc->rr++ % pc->nups;
	p->state = PROXY_CONNECTING;
	proxy_connect_next(p);
}

/* Nothing to set up: a connection carries its loop. */
static int
proxy_start(void *conf, struct ev_loop *loop)
{
	return 0;
}

/* The worker drains: every connection runs to its end (or to the
 * shutdown timeout); api->hold keeps the drain open until then. */
static void
proxy_stop(void *conf)
{
}

/* ---- counters ------------------------------------------------------- */

void
proxy_stats(const void *conf, struct proxy_stats *out)
{
	*out = ((const struct proxy_conf *)conf)->st;
}

struct proxy_conn *
proxy_conn_first(const void *conf)
{
	return ((const struct proxy_conf *)conf)->conns;
}

struct proxy_conn *
proxy_conn_next(const struct proxy_conn *p)
{
	return p->next;
}

void
proxy_conn_bytes(const struct proxy_conn *p, unsigned long long *in, unsigned long long *out)
{
	*in = p->c2u.nread;
	*out = p->u2c.nwritten;
}

unsigned long
proxy_conn_held(const struct proxy_conn *p)
{
	return dir_pending(&p->c2u) + dir_pending(&p->u2c);
}

/* ---- configuration -------------------------------------------------- */

static void *
proxy_conf_new(const struct acceptd_listener *l)
{
	struct proxy_conf *pc = calloc(1, sizeof *pc);

	if (pc) {
		pc->l = l;
		pc->connect_timeout_ms = PROXY_CONNECT_TIMEOUT_MS;
		pc->splice = 1;
	}
	return pc;
}

static void
proxy_conf_free(void *conf)
{
	struct proxy_conf *pc = conf;

	if (!pc)
		return;
	/* in a worker only at exit; in tests, whatever is still open */
	while (pc->conns)
		proxy_close(pc->conns);
	free(pc->upstream_text);
	free(pc->ups);
	free(pc);
}

/* One "host:port", "[v6]:port" or "unix:/path" into ups (resolved; a host
 * name adds every address it has). 0, or -1 with the reason in err. */
static int
proxy_parse_one(const char *w, struct proxy_upstream *ups, size_t *n, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICSERV }, *res, *ai;
	char host[256], *end;
	const char *colon, *port;
	long pn;
	int rc;

	if (strncmp(w, "unix:", 5) == 0) {
		struct sockaddr_un *un;
		size_t len = strlen(w + 5);

		if (w[5] != '/') {
			snprintf(err, errlen, "'%s': a unix socket path must be absolute", w);
			return -1;
		}
		if (len >= sizeof un->sun_path) {
			snprintf(err, errlen, "'%s': path longer than %zu bytes", w,
			    sizeof un->sun_path - 1);
			return -1;
		}
		if (*n == PROXY_MAX_UPSTREAMS)
			goto many;
		memset(&ups[*n], 0, sizeof ups[*n]);
		un = (struct sockaddr_un *)&ups[*n].ss;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, w + 5, len);
		ups[*n].len = offsetof(struct sockaddr_un, sun_path) + len + 1;
		snprintf(ups[*n].text, sizeof ups[*n].text, "%s", w);
		(*n)++;
		return 0;
	}
	if (w[0] == '[') {
		const char *rb = strchr(w, ']');

		if (!rb || rb[1] != ':') {
			snprintf(err, errlen, "'%s': want [IPv6]:port", w);
			return -1;
		}
		snprintf(host, sizeof host, "%.*s", (int)(rb - w - 1), w + 1);
		port = rb + 2;
	} else {
		colon = strrchr(w, ':');
		if (!colon) {
			snprintf(err, errlen, "'%s': want host:port, [IPv6]:port or unix:/path", w);
			return -1;
		}
		if (memchr(w, ':', colon - w)) {
			snprintf(err, errlen, "'%s': write an IPv6 address as [address]:port", w);
			return -1;
		}
		if (colon - w >= (ptrdiff_t)sizeof host) {
			snprintf(err, errlen, "'%.64s...': host name too long", w);
			return -1;
		}
		snprintf(host, sizeof host, "%.*s", (int)(colon - w), w);
		port = colon + 1;
	}
	errno = 0;
	pn = strtol(port, &end, 10);
	if (!host[0] || *port < '0' || *port > '9' || *end || errno || pn < 1 || pn > 65535) {
		snprintf(err, errlen, "'%s': want a host and a port 1..65535", w);
		return -1;
	}
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "'%s': %s", w, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int dup = 0;

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof ups[0].ss)
			continue;
		for (size_t i = 0; i < *n && !dup; i++)
			dup = ups[i].len == ai->ai_addrlen &&
			    memcmp(&ups[i].ss, ai->ai_addr, ai->ai_addrlen) == 0;
		if (dup)
			continue;
		if (*n == PROXY_MAX_UPSTREAMS) {
			freeaddrinfo(res);
			goto many;
		}
		memset(&ups[*n], 0, sizeof ups[*n]);
		memcpy(&ups[*n].ss, ai->ai_addr, ai->ai_addrlen);
		ups[*n].len = ai->ai_addrlen;
		conf_format_addr(ai->ai_addr, ai->ai_addrlen, ups[*n].text, sizeof ups[*n].text);
		(*n)++;
	}
	freeaddrinfo(res);
	return 0;
many:
	snprintf(err, errlen, "more than %d upstream addresses", PROXY_MAX_UPSTREAMS);
	return -1;
}

static int
proxy_parse_upstreams(struct proxy_conf *pc, const char *value, char *err, size_t errlen)
{
	struct proxy_upstream *ups = calloc(PROXY_MAX_UPSTREAMS, sizeof *ups);
	char *copy = strdup(value), *save = NULL, *w, *text;
	size_t n = 0;

	if (!ups || !copy) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (w = strtok_r(copy, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save))
		if (proxy_parse_one(w, ups, &n, err, errlen) < 0)
			goto fail;
	if (n == 0) {
		snprintf(err, errlen, "no upstream address");
		goto fail;
	}
	if (!(text = strdup(value))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	free(copy);
	free(pc->ups);
	free(pc->upstream_text);
	pc->ups = ups;
	pc->nups = n;
	pc->upstream_text = text;
	return 0;
fail:
	free(copy);
	free(ups);
	return -1;
}

static int
proxy_conf_set(void *conf, const char *key, const char *value, char *err, size_t errlen)
{
	struct proxy_conf *pc = conf;
	long long ms;
	int b;

	if (strcmp(key, "upstream") == 0)
		return proxy_parse_upstreams(pc, value, err, errlen);
	if (strcmp(key, "connect_timeout") == 0) {
		if (conf_parse_duration_ms(value, &ms) < 0 || ms <= 0) {
			snprintf(err, errlen, "bad value '%s' (a duration above 0: 500ms, 5s, 1m)",
			    value);
			return -1;
		}
		pc->connect_timeout_ms = ms;
		return 0;
	}
	if (strcmp(key, "send_proxy_protocol") == 0) {
		if (strcmp(value, "off") == 0)
			pc->send_pp = 0;
		else if (strcmp(value, "v1") == 0)
			pc->send_pp = 1;
		else if (strcmp(value, "v2") == 0)
			pc->send_pp = 2;
		else {
			snprintf(err, errlen, "bad value '%s' (off, v1 or v2)", value);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "splice") == 0) {
		if (conf_parse_bool(value, &b) < 0) {
			snprintf(err, errlen, "bad value '%s' (yes or no)", value);
			return -1;
		}
		pc->splice = b;
		return 0;
	}
	return ACCEPTD_KEY_UNKNOWN;
}

static int
proxy_conf_check(void *conf, char *err, size_t errlen)
{
	if (!((struct proxy_conf *)conf)->nups) {
		snprintf(err, errlen, "handler proxy needs upstream = HOST:PORT [...]");
		return -1;
	}
	return 0;
}

static void
proxy_conf_dump(const void *conf, FILE *out)
{
	const struct proxy_conf *pc = conf;
	static const char *const pp[] = { "off", "v1", "v2" };

	fprintf(out, "upstream = %s\n", pc->upstream_text ? pc->upstream_text : "");
	if (pc->connect_timeout_ms % 1000 == 0)
		fprintf(out, "connect_timeout = %llds\n", pc->connect_timeout_ms / 1000);
	else
		fprintf(out, "connect_timeout = %lldms\n", pc->connect_timeout_ms);
	fprintf(out, "send_proxy_protocol = %s\n", pp[pc->send_pp]);
	fprintf(out, "splice = %s\n", pc->splice ? "yes" : "no");
}

const struct acceptd_handler handler_proxy = {
	ACCEPTD_HANDLER_V1,
	.name = "proxy",
	.conf_new = proxy_conf_new,
	.conf_set = proxy_conf_set,
	.conf_check = proxy_conf_check,
	.conf_dump = proxy_conf_dump,
	.conf_free = proxy_conf_free,
	.start = proxy_start,
	.accept = proxy_accept,
	.stop = proxy_stop,
};
