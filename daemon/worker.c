/* worker: one worker process: its libev loop, one accept watcher per
 * listening socket, and the drain on stop. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "conf.h"
#include "conn.h"
#include "handler.h"
#include "listen.h"
#include "log.h"
#include "proctitle.h"
#include "worker.h"
#include "stats.h"

int (*worker_accept4)(int, struct sockaddr *, socklen_t *, int) = accept4;
int worker_ready_fd = -1;

unsigned long worker_nofile_events, worker_nofile_shed;
unsigned long worker_accepted, worker_accept_eagain, worker_accept_empty;
unsigned long worker_fair_pauses;
unsigned long worker_excl_rotations, worker_excl_rearms;

/* The reserve descriptor (libev's "special problem of accept()ing when you
 * can't", libuv's uv__emfile_trick): out of descriptors, we give it up to
 * accept and close the head of the queue, so those peers hear a close
 * instead of hanging in a queue nobody drains. -1 while not held. */
static int worker_reserve = -1;
static unsigned long worker_nofile_logged_events, worker_nofile_logged_shed;

static void
worker_reserve_open(void)
{
	if (worker_reserve < 0)
		worker_reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* EMFILE/ENFILE: spend the reserve on the head of the queue, at most
 * `budget` connections (the batch's bound), then take it back. */
static void
worker_shed(int lfd, int budget)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (worker_reserve < 0)
		return;
	close(worker_reserve);
	worker_reserve = -1;
	while (budget-- > 0 && (len = sizeof ss,
	    fd = worker_accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC)) >= 0) {
		close(fd);
		worker_nofile_shed++;
	}
	worker_reserve_open();
}

static struct {
	struct ev_loop *loop;
	const struct conf *conf;
	struct worker_sock *socks;
	int nsocks;
	int index;
	int draining;
	ev_signal sig_term, sig_quit, sig_int, sig_usr1;
	ev_timer drain_timer;
	ev_tstamp last_emfile_log;
} worker;

/* Everyone's accepts on ws's listener (workers 0..workers-1), and ours. */
static uint64_t
worker_fair_sum(const struct worker_sock *ws, uint64_t *own)
{
	uint64_t n = stats_get(stats->workers), sum = 0;

	if (n > STATS_MAX_WORKERS)
		n = STATS_MAX_WORKERS;
	for (uint64_t w = 0; w < n; w++)
		sum += stats_get(stats->c[w][ws->sid].accepted);
	*own = stats_get(stats->c[worker.index][ws->sid].accepted);
	return sum;
}

/* nginx's accept_disabled, over a recent window: every WORKER_FAIR_CHECK
 * accepts, a worker that took more than its share (plus 1/WORKER_FAIR_DIV)
 * of the listener's accepts over the last WORKER_FAIR_WINDOW * workers or
 * so stops accepting for WORKER_FAIR_PAUSE, and the others (all woken for
 * every connection in shared mode) take the queue meanwhile. Never when
 * alone, nor when the others accepted nothing since our last check (they
 * are busy, or paused themselves: the queue must not be left alone), nor
 * at the next check after a pause the others did not use. 1: pause now. */
static int
worker_fair_check(struct worker_sock *ws)
{
	uint64_t workers = stats_get(stats->workers), sum, own, d_all, d_own, others_recent;

	ws->since = 0;
	if (workers < 2 || (uint64_t)worker.index >= workers)
		return 0;
	sum = worker_fair_sum(ws, &own);
	if (sum < ws->all_last || own < ws->own_last || own - ws->own_last > sum - ws->all_last ||
	    sum < ws->win_all[0] || own < ws->win_own[0]) {
		/* a reload changed the worker count: start over */
		ws->win_all[0] = ws->win_all[1] = ws->all_last = sum;
		ws->win_own[0] = ws->win_own[1] = ws->own_last = own;
		return 0;
	}
	others_recent = (sum - ws->all_last) - (own - ws->own_last);
	ws->all_last = sum;
	ws->own_last = own;
	/* two half windows: judge over the last one to two */
	if (sum - ws->win_all[1] >= WORKER_FAIR_WINDOW * workers) {
		ws->win_all[0] = ws->win_all[1];
		ws->win_own[0] = ws->win_own[1];
		ws->win_all[1] = sum;
		ws->win_own[1] = own;
	}
	if (ws->fair_skip) {
		ws->fair_skip = 0;
		return 0;
	}
	d_all = sum - ws->win_all[0];
	d_own = own - ws->win_own[0];
	if (!others_recent || d_own * workers * WORKER_FAIR_DIV <= d_all * (WORKER_FAIR_DIV + 1))
		return 0;
	ws->others_paused = sum - own;
	return 1;
}

/* ---- shared sockets: one wake-up per connection --------------------------
 *
 * In shared mode every worker's loop watches the same listening socket, and
 * a plain epoll entry on it is woken for every connection: each idle worker
 * wakes, all but one get EAGAIN (the thundering herd). EPOLLEXCLUSIVE wakes
 * one waiter only, but libev cannot ask for it, and an inner epoll fd that
 * holds the socket exclusively, watched with an ev_io, does not work: the
 * kernel (ep_poll_callback) stops at an exclusive entry only when a task
 * sleeps on that very epoll, which nobody does on a nested one. So the entry
 * goes into libev's own epoll (its internal backend_fd), on which the worker
 * sleeps.
 *
 * The traps, and what we do about them:
 *  - libev keeps the fd in the low 32 bits of epoll_event.data and a per-fd
 *    generation counter (egen) in the high ones, and takes an event whose
 *    egen is not the fd's current one for a spurious one: it drops it and
 *    rebuilds its whole kernel state. Our entry carries exactly libev's
 *    data, read back from /proc/self/fdinfo/<epoll fd>.
 *  - EPOLL_CTL_MOD on an exclusive entry fails with EINVAL, and libev then
 *    kills the watcher or rebuilds. libev issues MOD (or DEL, then a plain
 *    ADD) when a watcher's events change or an event comes for a stopped
 *    one: so while the entry is ours, ws->io is never stopped nor started
 *    again; pausing removes the entry (DEL) and resuming adds it (ADD)
 *    ourselves, worker_listen_pause/resume. libev still sees its watcher
 *    active on the fd, with the mask it registered, and leaves it alone.
 *  - a rebuild happens anyway for reasons of its own (an event for a closed
 *    fd number whose file lives on elsewhere, e.g. in an exec'd child): it
 *    swaps in a new epoll with a plain entry of new data. A marker (an
 *    eventfd that never fires, in the epoll with no events) tells whether
 *    libev's epoll is still the one we armed in; if not, we arm again.
 *  - a worker that stops must remove its entry before closing its copy of
 *    the socket: the file lives on in the others, so would the entry, and
 *    an exclusive entry of a worker that accepts no more could take the
 *    one wake-up of a connection (worker_excl_release).
 * Wake-ups go to the first idle waiter in the socket's wait queue; DEL and
 * ADD move a worker to its tail, so every WORKER_EXCL_ROTATE accepts a
 * worker does just that (worker_excl_rotate): a round robin at light load.
 * Whatever fails, the fd goes back to libev's plain registration: the herd
 * is back, accepting never breaks. */

static int worker_marker = -1;          /* the eventfd in libev's epoll */
static unsigned worker_excl_gen;        /* new epolls the marker found */
static int worker_excl_logged;

int
worker_epoll_entry(int epfd, int fd, uint32_t *events, uint64_t *data)
{
	char path[64], line[256];
	struct stat st;
	FILE *f;
	int ret = -1;

	if (fstat(fd, &st) < 0)
		return -1;
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
	if (!(f = fopen(path, "re")))
		return -1;
	/* "tfd:        6 events:       19 data:         100000006  pos:0 ino:7b2f sdev:8"
	 * (hex but tfd); the same number twice can be a stale entry of a
	 * closed file still open elsewhere: the inode tells them apart */
	while (fgets(line, sizeof line, f)) {
		unsigned long long d, ino;
		unsigned ev;
		int tfd;

		if (sscanf(line, "tfd: %d events: %x data: %llx pos:%*s ino:%llx",
		    &tfd, &ev, &d, &ino) == 4 && tfd == fd && ino == (unsigned long long)st.st_ino) {
			*events = ev;
			*data = d;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* libev has no call for its epoll fd (backend_fd is internal), but
 * ev_embed_start reads the embedded loop's backend fd into its io watcher:
 * embed ours into a throwaway poll loop, take the fd, undo. Only for an
 * epoll loop libev deems embeddable (else ev_embed_start asserts). */
int
worker_backend_fd(struct ev_loop *loop)
{
	struct ev_loop *tmp;
	ev_embed e;
	int fd;

	if (ev_backend(loop) != EVBACKEND_EPOLL || !(ev_embeddable_backends() & EVBACKEND_EPOLL) ||
	    !(tmp = ev_loop_new(EVBACKEND_POLL | EVFLAG_NOENV)))
		return -1;
	ev_embed_init(&e, NULL, loop);
	ev_embed_start(tmp, &e);
	fd = e.io.fd;
	ev_embed_stop(tmp, &e);
	ev_loop_destroy(tmp);
	return fd;
}

static int worker_epfd = -1;            /* libev's epoll, as last found */

/* The marker is made when the worker starts, not at its first connection:
 * a worker's descriptors then stay what they were at start, and a leak
 * shows (make stress compares them). A failure here is retried later. */
static void
worker_excl_prepare(void)
{
	if (worker_marker < 0)
		worker_marker = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

/* 1: libev's epoll is still the one the marker is in (worker_epfd); 0: it
 * is a new one (libev rebuilt; worker_epfd found again): the marker is put
 * in, a new generation begins; -1: no marker, or no epoll. One epoll_ctl
 * when nothing changed: MOD of an entry with no events changes nothing.
 * libev closes an epoll before it makes the next, so an epoll that holds
 * the marker is the one libev polls. */
static int
worker_excl_probe(struct ev_loop *loop)
{
	struct epoll_event ev = { .events = 0 };

	worker_excl_prepare();
	if (worker_marker < 0)
		return -1;
	/* no events: never ready, and eventfds report no error nor hang-up */
	ev.data.u64 = (uint32_t)worker_marker;
	if (worker_epfd >= 0 && epoll_ctl(worker_epfd, EPOLL_CTL_MOD, worker_marker, &ev) == 0)
		return 1;
	if ((worker_epfd = worker_backend_fd(loop)) < 0)
		return -1;
	if (epoll_ctl(worker_epfd, EPOLL_CTL_ADD, worker_marker, &ev) < 0) {
		if (errno == EEXIST)
			return 1;       /* the same epoll, under a new number */
		worker_epfd = -1;
		return -1;
	}
	worker_excl_gen++;
	return 0;
}

static void
worker_excl_log(const struct worker_sock *ws, const char *what, int e)
{
	if (worker_excl_logged++)
		return;
	log_info("listener %s: %s: %s; every idle worker wakes for each connection",
	    ws->l->name, what, strerror(e));
}

/* Back to libev's plain registration. The kernel entry goes first: libev
 * would take an exclusive one for its own (ADD says EEXIST) and later MOD
 * it. ev_io_set marks the fd changed, so libev ADDs it at its next
 * iteration (now, or when a pause ends), before polling. */
static void
worker_excl_giveback(struct ev_loop *loop, struct worker_sock *ws)
{
	if (worker_epfd >= 0)
		epoll_ctl(worker_epfd, EPOLL_CTL_DEL, ws->io.fd, NULL);
	ws->excl = WORKER_EXCL_OFF;
	ev_io_stop(loop, &ws->io);
	ev_io_set(&ws->io, ws->io.fd, EV_READ);     /* the fd changed: ADD it */
	if (!ws->paused)
		ev_io_start(loop, &ws->io);
}

/* ADD the entry, exclusive, with libev's data; failing that, plain (as
 * libev had it), failing that, libev registers it again. */
static void
worker_excl_add(struct ev_loop *loop, struct worker_sock *ws)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = ws->edata };
	int epfd = worker_epfd, e;

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, ws->io.fd, &ev) == 0)
		return;
	e = errno;
	ev.events = EPOLLIN;
	ws->excl = WORKER_EXCL_OFF;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, ws->io.fd, &ev) < 0)
		worker_excl_giveback(loop, ws);
	worker_excl_log(ws, "epoll_ctl(EPOLL_CTL_ADD, EPOLLEXCLUSIVE)", e);
}

/* Take the fd's entry in libev's epoll over: libev's data, then DEL and
 * ADD with EPOLLEXCLUSIVE. Leaves the entry in place (paused or not: the
 * callers that pause remove it next). */
static void
worker_excl_take(struct ev_loop *loop, struct worker_sock *ws)
{
	uint32_t events;
	int epfd;

	if (worker_excl_probe(loop) < 0) {
		worker_excl_log(ws, "libev's epoll fd or the marker", errno);
		goto off;
	}
	epfd = worker_epfd;
	if (worker_epoll_entry(epfd, ws->io.fd, &events, &ws->edata) < 0) {
		worker_excl_log(ws, "libev's epoll entry not found in /proc/self/fdinfo", ENOENT);
		goto off;
	}
	if (!(events & EPOLLIN) || (events & EPOLLEXCLUSIVE) ||
	    (uint32_t)ws->edata != (uint32_t)ws->io.fd) {
		worker_excl_log(ws, "libev's epoll entry is not as expected", EINVAL);
		goto off;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_DEL, ws->io.fd, NULL) < 0) {
		worker_excl_log(ws, "epoll_ctl(EPOLL_CTL_DEL)", errno);
		goto off;
	}
	ws->excl = WORKER_EXCL_ON;
	ws->excl_gen = worker_excl_gen;
	ws->rot = 0;
	worker_excl_add(loop, ws);
	return;
off:
	/* libev's entry untouched, or gone: it registers it again */
	if (ws->excl == WORKER_EXCL_ON)
		worker_excl_giveback(loop, ws);
	ws->excl = WORKER_EXCL_OFF;
}

/* Shared sockets: take the fd's registration over from libev, exclusive
 * (once ws->io has been through a loop iteration; no-op unless
 * ws->shared and not tried yet). */
static void
worker_excl_arm(struct ev_loop *loop, struct worker_sock *ws)
{
	if (!ws->shared || ws->excl != WORKER_EXCL_TODO || ws->paused)
		return;
	if (ev_backend(loop) != EVBACKEND_EPOLL || !(ev_embeddable_backends() & EVBACKEND_EPOLL)) {
		if (!worker_excl_logged++)
			log_debug("listener %s: libev backend %#x is not epoll: every idle "
			    "worker wakes for each connection", ws->l->name, ev_backend(loop));
		ws->excl = WORKER_EXCL_OFF;
		return;
	}
	worker_excl_take(loop, ws);
	if (ws->excl == WORKER_EXCL_ON)
		log_debug("listener %s: fd %d in libev's epoll with EPOLLEXCLUSIVE", ws->l->name,
		    ws->io.fd);
}

/* Our entry still where we left it? 1: yes; 0: libev had rebuilt its
 * epoll, so it is armed anew (and in place); -1: no longer ours. */
static int
worker_excl_fresh(struct ev_loop *loop, struct worker_sock *ws)
{
	int r = worker_excl_probe(loop);

	if (r < 0) {
		worker_excl_log(ws, "libev's epoll fd or the marker", errno);
		worker_excl_giveback(loop, ws);
		return -1;
	}
	if (ws->excl_gen == worker_excl_gen)
		return 1;
	worker_excl_rearms++;
	worker_excl_take(loop, ws);
	return ws->excl == WORKER_EXCL_ON ? 0 : -1;
}

/* To the tail of the socket's wait queue: the next connection wakes
 * another idle worker. */
static void
worker_excl_rotate(struct ev_loop *loop, struct worker_sock *ws)
{
	ws->rot = 0;
	if (worker_excl_fresh(loop, ws) != 1)
		return;
	worker_excl_rotations++;
	if (epoll_ctl(worker_epfd, EPOLL_CTL_DEL, ws->io.fd, NULL) < 0) {
		worker_excl_log(ws, "epoll_ctl(EPOLL_CTL_DEL)", errno);
		worker_excl_giveback(loop, ws);
		return;
	}
	worker_excl_add(loop, ws);
}

/* The worker stops accepting on ws for good: our entry goes (see above). */
static void
worker_excl_release(struct ev_loop *loop, struct worker_sock *ws)
{
	if (ws->excl == WORKER_EXCL_ON && worker_excl_probe(loop) >= 0)
		epoll_ctl(worker_epfd, EPOLL_CTL_DEL, ws->io.fd, NULL);
	ws->excl = WORKER_EXCL_OFF;
}

void
worker_listen_pause(struct ev_loop *loop, struct worker_sock *ws)
{
	if (ws->paused)
		return;
	ws->paused = 1;
	if (ws->excl == WORKER_EXCL_ON && worker_excl_fresh(loop, ws) >= 0) {
		if (epoll_ctl(worker_epfd, EPOLL_CTL_DEL, ws->io.fd, NULL) == 0)
			return;
		worker_excl_log(ws, "epoll_ctl(EPOLL_CTL_DEL)", errno);
		worker_excl_giveback(loop, ws);
	}
	ev_io_stop(loop, &ws->io);
}

void
worker_listen_resume(struct ev_loop *loop, struct worker_sock *ws)
{
	if (!ws->paused)
		return;
	ws->paused = 0;
	if (ws->excl == WORKER_EXCL_ON) {
		/* 0: armed anew, in place; -1: libev's again, started */
		if (worker_excl_fresh(loop, ws) == 1)
			worker_excl_add(loop, ws);
		return;
	}
	ev_io_start(loop, &ws->io);
}

static void
worker_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker_sock *ws = (struct worker_sock *)((char *)t - offsetof(struct worker_sock, pause));
	uint64_t own;

	if (ws->fair_paused) {
		ws->fair_paused = 0;
		if (worker_fair_sum(ws, &own) - own <= ws->others_paused)
			ws->fair_skip = 1;
	}
	worker_listen_resume(loop, ws);
}

int
worker_accept_batch(struct ev_loop *loop, struct worker_sock *ws)
{
	const struct conf_listener *l = ws->l;
	struct sockaddr_storage peer;
	int n = 0;

	for (int i = 0; i < ws->max; i++) {
		socklen_t plen = sizeof peer;
		int fd = worker_accept4(ws->io.fd, (struct sockaddr *)&peer, &plen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    l->hl && l->hl->cnt.st)
				stats_add(l->hl->cnt.st->accept_errors[stats_errno(errno)], 1);
			switch (errno) {
			case EAGAIN:
#if EAGAIN != EWOULDBLOCK
			case EWOULDBLOCK:
#endif
				/* every queued connection taken; a batch that
				 * found none was woken for nothing */
				worker_accept_eagain++;
				if (n == 0)
					worker_accept_empty++;
				return n;
			case EINTR:
			case ECONNABORTED:      /* reset while queued: routine */
			/* Linux passes the pending socket's network errors on
			 * through accept(); they concern that one peer only. */
			case EPROTO: case ENOPROTOOPT: case EHOSTDOWN: case ENONET:
			case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
			case ENETDOWN: case EPERM:
				continue;
			case EMFILE:
			case ENFILE: {
				int e = errno;

				worker_nofile_events++;
				worker_shed(ws->io.fd, ws->max - i);
				if (ev_now(loop) - worker.last_emfile_log >= 1.0) {
					worker.last_emfile_log = ev_now(loop);
					log_warnx("listener %s: accept: %s: %lu times, %lu queued "
					    "connections closed since the last report",
					    l->name, strerror(e),
					    worker_nofile_events - worker_nofile_logged_events,
					    worker_nofile_shed - worker_nofile_logged_shed);
					worker_nofile_logged_events = worker_nofile_events;
					worker_nofile_logged_shed = worker_nofile_shed;
				}
				goto pause;
			}
			default:
				/* ENOBUFS, ENOMEM or worse: the queue stays
				 * readable, so a level-triggered watcher would
				 * spin: sleep it briefly instead. */
				if (ev_now(loop) - worker.last_emfile_log >= 1.0) {
					worker.last_emfile_log = ev_now(loop);
					log_warn("listener %s: accept", l->name);
				}
			pause:
				worker_listen_pause(loop, ws);
				ev_timer_set(&ws->pause, WORKER_PAUSE, 0.);
				ev_timer_start(loop, &ws->pause);
				return n;
			}
		}
		/* policy (allow/deny, max_connections), then the handler */
		handler_accept(l, loop, fd, (struct sockaddr *)&peer, plen,
		    ws->local_len ? (struct sockaddr *)&ws->local : NULL, ws->local_len);
		n++;
		worker_accepted++;
		if (ws->fair && ++ws->since >= WORKER_FAIR_CHECK && worker_fair_check(ws)) {
			ws->fair_paused = 1;
			worker_fair_pauses++;
			worker_listen_pause(loop, ws);
			ev_timer_set(&ws->pause, WORKER_FAIR_PAUSE, 0.);
			ev_timer_start(loop, &ws->pause);
			return n;
		}
	}
	return n;
}

void
worker_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct worker_sock *ws = (struct worker_sock *)w;
	int n;

	/* Arm here, at the first event, not when the watcher starts: libev
	 * registers the fd lazily (fd_reify, at the start of the next loop
	 * iteration), and a worker's first iteration also replaces the epoll
	 * it inherited from the master (ev_loop_fork): by the time the
	 * callback runs, the entry is libev's final one. Until then the worker
	 * is woken like everyone (plain entries are always woken), so it gets
	 * here at the first connection at the latest. */
	if (ws->excl == WORKER_EXCL_TODO)
		worker_excl_arm(loop, ws);
	n = worker_accept_batch(loop, ws);
	if (ws->excl == WORKER_EXCL_ON && !ws->paused && (ws->rot += n) >= WORKER_EXCL_ROTATE &&
	    (!stats || stats_get(stats->workers) > 1))
		worker_excl_rotate(loop, ws);
}

/* A connection accepted on a socket bound to one address (not a wildcard)
 * has that address as its local one, and on a unix socket the listener's
 * path: take it once here rather than per connection. */
static void
worker_sock_local(struct worker_sock *ws, int fd)
{
	socklen_t len = sizeof ws->local;
	const struct sockaddr_in *sin = (const void *)&ws->local;
	const struct sockaddr_in6 *sin6 = (const void *)&ws->local;

	ws->local_len = 0;
	if (getsockname(fd, (struct sockaddr *)&ws->local, &len) < 0 || len > sizeof ws->local)
		return;
	switch (ws->local.ss_family) {
	case AF_INET:
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			return;
		break;
	case AF_INET6:
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ||
		    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			return;
		break;
	case AF_UNIX:
		if (len <= offsetof(struct sockaddr_un, sun_path) + 1)
			return;         /* unnamed or abstract-empty: ask */
		break;
	default:
		return;
	}
	ws->local_len = len;
}

void
worker_sock_init(struct worker_sock *ws, const struct conf_listener *l, int fd)
{
	worker_sock_local(ws, fd);
	ev_io_init(&ws->io, worker_accept_cb, fd, EV_READ);
	ev_timer_init(&ws->pause, worker_pause_cb, WORKER_PAUSE, 0.);
	ws->l = l;
	ws->max = l->backlog;
	ws->fair = ws->fair_paused = ws->fair_skip = 0;
	ws->shared = ws->paused = 0;
	ws->excl = WORKER_EXCL_TODO;
	ws->edata = 0;
	ws->excl_gen = ws->rot = 0;
	ws->since = 0;
	ws->all_last = ws->own_last = 0;
	ws->win_all[0] = ws->win_all[1] = ws->win_own[0] = ws->win_own[1] = 0;
	worker_reserve_open();
}

static void
worker_idle(void)
{
	if (worker.draining)
		ev_break(worker.loop, EVBREAK_ALL);
}

static void
worker_drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	log_info("shutdown timeout: closing %u connections", conn_active);
	conn_close_all();
	ev_break(loop, EVBREAK_ALL);
}

/* Stop accepting, let the handlers finish, exit when the last connection
 * closes or shutdown_timeout passes. */
static void
worker_drain(struct ev_loop *loop)
{
	const struct conf_listener *l;

	if (worker.draining)
		return;
	worker.draining = 1;
	for (int i = 0; i < worker.nsocks; i++) {
		/* What is queued is ours to serve: on a socket that closes with
		 * us it would be reset, on a kept one it would wait. */
		worker.socks[i].fair = 0;
		if (!worker.socks[i].paused || worker.socks[i].fair_paused)
			worker_accept_batch(loop, &worker.socks[i]);
		worker_excl_release(loop, &worker.socks[i]);
		ev_io_stop(loop, &worker.socks[i].io);
		ev_timer_stop(loop, &worker.socks[i].pause);
		close(worker.socks[i].io.fd);
	}
	for (l = worker.conf->listeners; l; l = l->next)
		if (l->handler->stop)
			l->handler->stop(l->handler_conf);
	conn_stop_all();
	if (!conn_active) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	log_info("draining %u connections", conn_active);
	ev_timer_init(&worker.drain_timer, worker_drain_timeout_cb,
	    worker.conf->shutdown_timeout_ms / 1000.0, 0.);
	ev_timer_start(loop, &worker.drain_timer);
}

static void
worker_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (w->signum == SIGUSR1) {
		/* the master reopened the log: so do we, onto our stderr */
		if (worker.conf->log_file && log_reopen(worker.conf->log_file) < 0)
			log_warn("reopen log %s", worker.conf->log_file);
	} else if (w->signum == SIGINT) {
		conn_close_all();
		ev_break(loop, EVBREAK_ALL);
	} else if (worker.draining) {
		/* a second TERM during the drain means now */
		conn_close_all();
		ev_break(loop, EVBREAK_ALL);
	} else {
		worker_drain(loop);
	}
}

static void
worker_pin(int index)
{
	cpu_set_t allowed, one;
	int count, k;

	if (sched_getaffinity(0, sizeof allowed, &allowed) < 0 ||
	    !(count = CPU_COUNT(&allowed)))
		return;
	k = index % count;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed) || k--)
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof one, &one) < 0)
			log_warn("worker %d: cpu_affinity to cpu %d", index, cpu);
		return;
	}
}

int
worker_run(struct ev_loop *loop, const struct conf *conf, struct listen_set *sets, int index)
{
	const struct conf_listener *l;
	struct rusage ru;
	int i, n = 0;

	worker.loop = loop;
	worker.conf = conf;
	worker.index = index;
	proctitle_set("acceptd: worker %d", index);
	/* An orphaned worker drains and goes rather than serve forever. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	if (conf->cpu_affinity)
		worker_pin(index);

	/* Keep the sockets this worker serves, close the other copies, so a
	 * copy the master closes is really gone. */
	for (i = 0, l = conf->listeners; l; l = l->next, i++)
		n += sets[i].naddrs;
	if (!(worker.socks = calloc(n ? n : 1, sizeof *worker.socks)))
		return log_error("worker %d: out of memory", index), 1;
	for (i = 0, l = conf->listeners; l; l = l->next, i++) {
		struct listen_set *s = &sets[i];

		/* this worker's slot of the shared counters, for this listener */
		if (l->hl)
			l->hl->cnt.st = stats_slot(index, l->stats_id);
		for (int a = 0; a < s->naddrs; a++)
			for (int k = 0; k < s->copies; k++) {
				struct listen_sock *ls = &s->socks[k * s->naddrs + a];

				if (ls->fd < 0)
					continue;
				if (ls != listen_sock_for(s, a, index))
					close(ls->fd);
				else {
					struct worker_sock *ws = &worker.socks[worker.nsocks++];

					worker_sock_init(ws, l, ls->fd);
					/* one socket for every worker: the fair-share throttle */
					ws->fair = s->copies == 1 && stats && index < STATS_MAX_WORKERS &&
					    l->stats_id >= 0 && l->stats_id < STATS_MAX_LISTENERS;
					ws->sid = l->stats_id;
					ws->shared = s->copies == 1;
				}
			}
		if (l->handler->start && l->handler->start(l->handler_conf, loop) < 0) {
			log_errorx("worker %d: listener %s: handler %s failed to start", index,
			    l->name, l->handler->name);
			return 1;
		}
	}
	conn_idle_hook = worker_idle;
	ev_signal_init(&worker.sig_term, worker_signal_cb, SIGTERM);
	ev_signal_init(&worker.sig_quit, worker_signal_cb, SIGQUIT);
	ev_signal_init(&worker.sig_int, worker_signal_cb, SIGINT);
	ev_signal_start(loop, &worker.sig_term);
	ev_signal_start(loop, &worker.sig_quit);
	ev_signal_start(loop, &worker.sig_int);
	ev_signal_init(&worker.sig_usr1, worker_signal_cb, SIGUSR1);
	ev_signal_start(loop, &worker.sig_usr1);
	for (i = 0; i < worker.nsocks; i++) {
		if (worker.socks[i].shared)
			worker_excl_prepare();
		ev_io_start(loop, &worker.socks[i].io);
	}
	if (worker_ready_fd >= 0) {
		pid_t pid = getpid();

		/* one small write to a pipe is atomic: no lock with the others */
		if (write(worker_ready_fd, &pid, sizeof pid) != sizeof pid)
			log_warn("worker %d: telling the master it is ready", index);
		close(worker_ready_fd);
		worker_ready_fd = -1;
	}
	log_debug("worker %d started", index);
	ev_run(loop, 0);
	log_debug("worker %d exiting", index);
	/* The herd in shared mode is invisible to accept(): a worker woken
	 * for a connection another one took finds no event when epoll_wait
	 * checks again, and sleeps on in the kernel. Only its context
	 * switches show it (a worker that just accepts wakes about once per
	 * connection it takes, plus once per read the handler waits for). */
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		ru.ru_nvcsw = 0;
	log_info("worker %d: %lu connections accepted; accept() said EAGAIN %lu times, "
	    "%lu of them at once (a wake-up for nothing); %lu fair-share pauses; "
	    "%lu exclusive rotations, %lu re-arms; %ld wake-ups (voluntary context switches)",
	    index, worker_accepted, worker_accept_eagain, worker_accept_empty, worker_fair_pauses,
	    worker_excl_rotations, worker_excl_rearms, (long)ru.ru_nvcsw);
	free(worker.socks);
	return 0;
}
