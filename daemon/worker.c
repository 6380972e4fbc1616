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
#include <sys/prctl.h>
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
	ev_io_start(loop, &ws->io);
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
				ev_io_stop(loop, &ws->io);
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
			ev_io_stop(loop, &ws->io);
			ev_timer_set(&ws->pause, WORKER_FAIR_PAUSE, 0.);
			ev_timer_start(loop, &ws->pause);
			return n;
		}
	}
	return n;
}

static void
worker_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	worker_accept_batch(loop, (struct worker_sock *)w);
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
		if (ev_is_active(&worker.socks[i].io) || worker.socks[i].fair_paused)
			worker_accept_batch(loop, &worker.socks[i]);
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
	for (i = 0; i < worker.nsocks; i++)
		ev_io_start(loop, &worker.socks[i].io);
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
	log_info("worker %d: %lu connections accepted; accept() said EAGAIN %lu times, "
	    "%lu of them at once (a wake-up for nothing); %lu fair-share pauses", index,
	    worker_accepted, worker_accept_eagain, worker_accept_empty, worker_fair_pauses);
	free(worker.socks);
	return 0;
}
