/* master: the master process: binds, drops privileges, forks the workers,
 * replaces those that die, reloads, resizes, and turns signals into stops.
 * It never accepts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <stdint.h>
#include <sys/wait.h>

#include <ev.h>

#include "activate.h"
#include "conf.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "notify.h"
#include "proctitle.h"
#include "stats.h"
#include "worker.h"

/* A worker that dies younger than this is crashing, not finishing: its
 * replacement waits, doubling up to MASTER_BACKOFF_MAX, so a broken
 * worker never turns the master into a fork loop. A worker that lived
 * MASTER_QUIET resets the backoff. */
#define MASTER_YOUNG 1.0
#define MASTER_QUIET 10.0
#define MASTER_BACKOFF_MIN 0.1
#define MASTER_BACKOFF_MAX 10.0
/* After the drain deadline, how long workers get before SIGKILL. */
#define MASTER_KILL_GRACE 2.0
/* Between steering new connections off a reuseport copy and telling its
 * worker to drain: handshakes the kernel already assigned to that copy
 * complete in about a round trip; this is many. */
#define MASTER_STEER_DELAY 0.2
#define MASTER_MAX_WORKERS 1024

/* A listener's sockets, shared by the generations that use them: a reload
 * that keeps a listener hands the same sockets to the new workers. */
struct master_lset {
	struct listen_set s;
	int refs;                       /* generations using it */
	struct master_lset *next;
};

/* One configuration and the workers started with it. */
struct master_gen {
	struct conf *conf;
	struct master_lset **lsets;     /* per listener, in conf order */
	int live;                       /* its workers still running */
	int announced;                  /* every worker accepted once: said so */
	struct master_gen *next;
};

struct master_worker {
	pid_t pid;                      /* 0: waiting to be respawned */
	struct master_gen *gen;
	int index;
	int leaving;                    /* told (or about) to drain: no respawn */
	int ready;                      /* it said it accepts */
	int signalled;
	ev_tstamp started;
	double backoff;
	ev_timer respawn;
	struct master_worker *next;     /* on the leaving list */
};

enum { MASTER_RUNNING, MASTER_DRAINING, MASTER_FAST };

static struct {
	struct ev_loop *loop;
	struct master_gen *cur, *gens;  /* the current one; all of them */
	struct master_lset *lsets;
	struct master_worker *slot[MASTER_MAX_WORKERS];
	struct master_worker *leaving;
	int nworkers;
	int stopping;
	unsigned reloads;
	int status_fd;                  /* PIDFILE.reload, for -s reload */
	int ready_fd;                   /* daemonizing parent or older master */
	int wpipe[2];                   /* workers write their pid when ready */
	ev_io wready;
	struct activate_set act, upg;   /* systemd's sockets; an older master's */
	char *exe, **argv;              /* for USR2 */
	pid_t upgrade_pid;
	int upgrade_fd;
	int upgraded;                   /* a new master took our sockets over */
	ev_io upgrade_io;
	ev_signal sigs[9];
	int nsigs;
	ev_child child;
	ev_timer kill_timer, term_timer, watchdog;
} master = { .status_fd = -1, .ready_fd = -1, .wpipe = { -1, -1 }, .upgrade_fd = -1 };

static int master_detached;

void
master_daemonized(void)
{
	master_detached = 1;
}

void
master_exec_args(char *exe, char **argv)
{
	master.exe = exe;
	master.argv = argv;
}

static void master_spawn(struct master_worker *w);
static void master_announce(void);
static void master_oldbin(int to_oldbin);
static int master_caps(unsigned long long keep);
static int master_gen_has(const struct master_gen *g, const struct master_lset *ls);
static void master_respawn_cb(struct ev_loop *loop, ev_timer *t, int revents);

/* In a new worker: the master's watchers must not fire there, and the
 * sockets of other generations must not stay open in it. */
static void
master_forget(struct master_gen *gen)
{
	struct master_worker *w;

	for (int i = 0; i < master.nsigs; i++)
		ev_signal_stop(master.loop, &master.sigs[i]);
	ev_child_stop(master.loop, &master.child);
	ev_timer_stop(master.loop, &master.kill_timer);
	ev_timer_stop(master.loop, &master.term_timer);
	for (int i = 0; i < MASTER_MAX_WORKERS; i++)
		if (master.slot[i])
			ev_timer_stop(master.loop, &master.slot[i]->respawn);
	for (w = master.leaving; w; w = w->next)
		ev_timer_stop(master.loop, &w->respawn);
	for (struct master_lset *ls = master.lsets; ls; ls = ls->next)
		if (!master_gen_has(gen, ls))
			listen_close(&ls->s, 0);
	ev_timer_stop(master.loop, &master.watchdog);
	ev_io_stop(master.loop, &master.wready);
	ev_io_stop(master.loop, &master.upgrade_io);
	if (master.ready_fd >= 0)
		close(master.ready_fd);
	if (master.status_fd >= 0)
		close(master.status_fd);
	if (master.upgrade_fd >= 0)
		close(master.upgrade_fd);
	close(master.wpipe[0]);
	worker_ready_fd = master.wpipe[1];
	notify_close();
	ev_loop_fork(master.loop);
}

static void
master_spawn(struct master_worker *w)
{
	struct master_gen *g = w->gen;
	struct listen_set *sets;
	pid_t pid = fork();

	if (pid < 0) {
		log_error("worker %d: fork", w->index);
		w->backoff = MASTER_BACKOFF_MAX;
		ev_timer_set(&w->respawn, w->backoff, 0.);
		ev_timer_start(master.loop, &w->respawn);
		return;
	}
	if (pid == 0) {
		master_forget(g);
		/* workers keep no capability (harmless when there were none) */
		if (getuid() != 0 && master_caps(0) < 0)
			log_warn("worker %d: dropping capabilities", w->index);
		if (!(sets = calloc(g->conf->nlisteners, sizeof *sets)))
			_exit(1);
		for (int i = 0; i < g->conf->nlisteners; i++)
			sets[i] = g->lsets[i]->s;
		pid = worker_run(master.loop, g->conf, sets, w->index);
		free(sets);
		exit(pid);
	}
	w->pid = pid;
	w->ready = 0;
	if (stats)
		__atomic_store_n(&stats->workers, (uint64_t)master.nworkers, __ATOMIC_RELAXED);
	w->started = ev_now(master.loop);
	g->live++;
	log_info("worker %d started (pid %d)", w->index, (int)pid);
}

static struct master_worker *
master_worker_new(struct master_gen *g, int index)
{
	struct master_worker *w = calloc(1, sizeof *w);

	if (!w)
		return NULL;
	w->gen = g;
	w->index = index;
	ev_init(&w->respawn, master_respawn_cb);
	return w;
}

static void
master_respawn_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master_worker *w = (struct master_worker *)((char *)t -
	    offsetof(struct master_worker, respawn));

	if (master.stopping == MASTER_RUNNING && !w->pid && !w->leaving)
		master_spawn(w);
}

static void
master_lset_release(struct master_lset *ls)
{
	struct master_lset **p;

	if (--ls->refs > 0)
		return;
	for (p = &master.lsets; *p != ls; p = &(*p)->next)
		;
	*p = ls->next;
	listen_close(&ls->s, 1);
	free(ls);
}

static void
master_gen_free(struct master_gen *g)
{
	struct master_gen **p;

	for (p = &master.gens; *p && *p != g; p = &(*p)->next)
		;
	if (*p)
		*p = g->next;
	for (int i = 0; g->lsets && i < g->conf->nlisteners; i++)
		if (g->lsets[i])
			master_lset_release(g->lsets[i]);
	free(g->lsets);
	conf_free(g->conf);
	free(g);
}

/* Reuseport copies above the worker count close once no live worker may
 * still be draining them; steering ends when none is left. */
static void
master_trim(void)
{
	struct master_gen *g = master.cur;
	struct conf_listener *l = g->conf->listeners;

	for (int i = 0; i < g->conf->nlisteners; i++, l = l->next) {
		struct listen_set *s = &g->lsets[i]->s;

		if (!l->reuseport)
			continue;
		while (s->copies > master.nworkers) {
			int busy = 0;

			for (struct master_worker *w = master.leaving; w; w = w->next)
				busy |= w->pid && w->index == s->copies - 1;
			if (busy)
				break;
			listen_drop_copy(s);
		}
		if (s->copies <= master.nworkers && listen_steer(s, s->copies) < 0)
			log_warn("listener %s: lifting the reuseport steering", l->name);
	}
}

/* Every reuseport listener of the current generation sends new
 * connections only to the copies of the workers that stay. */
static int
master_steer(void)
{
	struct master_gen *g = master.cur;
	int steered = 0;

	for (int i = 0; i < g->conf->nlisteners; i++) {
		struct listen_set *s = &g->lsets[i]->s;

		if (s->copies <= master.nworkers)
			continue;
		if (listen_steer(s, master.nworkers) < 0)
			log_warn("reuseport steering (SO_ATTACH_REUSEPORT_CBPF)");
		steered = 1;
	}
	return steered;
}

/* TERM every leaving worker not yet told; after a steering change, wait
 * for the kernel's in-flight handshakes first. */
static void
master_term_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	for (struct master_worker *w = master.leaving; w; w = w->next)
		if (w->pid && !w->signalled) {
			w->signalled = 1;
			kill(w->pid, SIGTERM);
		}
	master_announce();
}

static void
master_retire(struct master_worker *w, int steered)
{
	ev_timer_stop(master.loop, &w->respawn);
	w->leaving = 1;
	w->next = master.leaving;
	master.leaving = w;
	if (!w->pid) {
		/* waiting to be respawned: nothing to drain */
		master.leaving = w->next;
		free(w);
		return;
	}
	if (!steered) {
		master_term_cb(master.loop, NULL, 0);
		return;
	}
	ev_timer_stop(master.loop, &master.term_timer);
	ev_timer_set(&master.term_timer, MASTER_STEER_DELAY, 0.);
	ev_timer_start(master.loop, &master.term_timer);
}

static int
master_live_workers(void)
{
	int n = 0;

	for (int i = 0; i < master.nworkers; i++)
		n += master.slot[i] && master.slot[i]->pid != 0;
	for (struct master_worker *w = master.leaving; w; w = w->next)
		n += w->pid != 0;
	return n;
}

static void
master_log_exit(struct master_worker *w, pid_t pid, int st, int expected)
{
	if (WIFSIGNALED(st))
		log_msg(expected ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, 0,
		    "worker %d (pid %d) killed by signal %d (%s)%s", w->index, (int)pid,
		    WTERMSIG(st), strsignal(WTERMSIG(st)), WCOREDUMP(st) ? ", core dumped" : "");
	else if (expected && WEXITSTATUS(st) == 0)
		log_info("worker %d (pid %d) exited", w->index, (int)pid);
	else
		log_msg(expected ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, 0,
		    "worker %d (pid %d) exited with status %d", w->index, (int)pid,
		    WEXITSTATUS(st));
}

/* A worker killed with connections open never counted them closed: once
 * no other worker shares its slot (an old one draining after a reload),
 * its active gauges start again from zero. */
static void
master_stats_dead(int index)
{
	if (!stats || index < 0 || index >= STATS_MAX_WORKERS)
		return;
	if (index < master.nworkers && master.slot[index] && master.slot[index]->pid)
		return;
	for (struct master_worker *w = master.leaving; w; w = w->next)
		if (w->pid && w->index == index)
			return;
	for (int i = 0; i < STATS_MAX_LISTENERS; i++)
		__atomic_store_n(&stats->c[index][i].active, 0, __ATOMIC_RELAXED);
}

static void
master_child_cb(struct ev_loop *loop, ev_child *c, int revents)
{
	struct master_worker *w = NULL, **p = &master.leaving;
	struct master_gen *g;

	for (int i = 0; i < master.nworkers && !w; i++)
		if (master.slot[i] && master.slot[i]->pid == c->rpid)
			w = master.slot[i];
	while (!w && *p && (*p)->pid != c->rpid)
		p = &(*p)->next;
	if (!w && !(w = *p)) {
		if (c->rpid == master.upgrade_pid) {
			if (!master.upgraded)
				master_oldbin(0);
			log_warnx("upgrade: the new master (pid %d) is gone", (int)c->rpid);
			master.upgrade_pid = 0;
		}
		return;
	}
	g = w->gen;
	w->pid = 0;
	g->live--;
	master_stats_dead(w->index);
	master_log_exit(w, c->rpid, c->rstatus, w->leaving || master.stopping);
	if (w->leaving) {
		*p = w->next;
		free(w);
		if (!g->live && g != master.cur)
			master_gen_free(g);
		if (master.stopping == MASTER_RUNNING)
			master_trim();
		else if (!master_live_workers())
			ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (master.stopping != MASTER_RUNNING) {
		if (!master_live_workers())
			ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (ev_now(loop) - w->started >= MASTER_QUIET)
		w->backoff = 0;
	if (stats)
		stats_add(stats->worker_restarts, 1);
	if (ev_now(loop) - w->started >= MASTER_YOUNG && !w->backoff) {
		master_spawn(w);
		return;
	}
	w->backoff = w->backoff ? w->backoff * 2 : MASTER_BACKOFF_MIN;
	if (w->backoff > MASTER_BACKOFF_MAX)
		w->backoff = MASTER_BACKOFF_MAX;
	log_warnx("worker %d: respawning in %.1fs (it keeps dying young)", w->index, w->backoff);
	ev_timer_set(&w->respawn, w->backoff, 0.);
	ev_timer_start(loop, &w->respawn);
}

static void
master_signal_workers(int sig)
{
	for (int i = 0; i < master.nworkers; i++)
		if (master.slot[i]) {
			ev_timer_stop(master.loop, &master.slot[i]->respawn);
			if (master.slot[i]->pid)
				kill(master.slot[i]->pid, sig);
		}
	for (struct master_worker *w = master.leaving; w; w = w->next)
		if (w->pid)
			kill(w->pid, sig);
}

static void
master_kill_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	log_warnx("%d workers still running after the shutdown timeout: killing them",
	    master_live_workers());
	master_signal_workers(SIGKILL);
}

static void
master_stop(int fast)
{
	struct conf *conf = master.cur->conf;
	double limit = conf->shutdown_timeout_ms / 1000.0 + MASTER_KILL_GRACE;

	ev_timer_stop(master.loop, &master.term_timer);
	ev_timer_stop(master.loop, &master.watchdog);
	/* after an upgrade the service is the new master's to report on */
	if (!master.upgraded)
		notify_stopping(fast ? "stopping now" : "draining connections");
	if (fast || master.stopping == MASTER_DRAINING) {
		/* INT, or a second TERM/QUIT during the drain: now. */
		log_info("fast stop");
		master.stopping = MASTER_FAST;
		limit = MASTER_KILL_GRACE;
		master_signal_workers(SIGINT);
	} else {
		log_info("graceful stop: draining workers (shutdown_timeout %.1fs)",
		    conf->shutdown_timeout_ms / 1000.0);
		master.stopping = MASTER_DRAINING;
		master_signal_workers(SIGTERM);
	}
	/* New connections are refused from now on rather than queued on a
	 * socket nobody will accept from. */
	for (struct master_lset *ls = master.lsets; ls; ls = ls->next)
		listen_close(&ls->s, !master.upgraded);
	ev_timer_stop(master.loop, &master.kill_timer);
	ev_timer_set(&master.kill_timer, limit, 0.);
	ev_timer_start(master.loop, &master.kill_timer);
	if (!master_live_workers())
		ev_break(master.loop, EVBREAK_ALL);
}

/* The outcome of reload number n, for `acceptd -s reload` to wait on. */
static void
master_status(const char *fmt, ...)
{
	char buf[1200];
	va_list ap;
	int n;

	if (master.status_fd < 0)
		return;
	n = snprintf(buf, sizeof buf, "%u ", master.reloads);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	/* one pwrite, then cut what an older, longer status left behind */
	if (pwrite(master.status_fd, buf, n, 0) != n || ftruncate(master.status_fd, n) < 0)
		log_warn("reload status file");
}

static struct master_lset *
master_lset_new(void)
{
	struct master_lset *ls = calloc(1, sizeof *ls);

	if (ls) {
		ls->refs = 1;
		ls->next = master.lsets;
		master.lsets = ls;
	}
	return ls;
}

/* The sockets of every listener of g: kept from the current generation
 * where listen_same() allows, bound otherwise; reuseport listeners get a
 * copy per worker. 0, or -1 with err and nothing changed. */
static int
master_gen_bind(struct master_gen *g, char *err, size_t errlen)
{
	struct master_gen *old = master.cur;
	struct conf_listener *l, *o;
	int i, j, n = g->conf->workers;

	if (!(g->lsets = calloc(g->conf->nlisteners, sizeof *g->lsets)))
		return snprintf(err, errlen, "out of memory"), -1;
	for (l = g->conf->listeners; l; l = l->next)
		l->stats_id = stats_listener(l->name);
	for (i = 0, l = g->conf->listeners; l; l = l->next, i++) {
		struct master_lset *ls = NULL;

		/* (g->lsets[i..] are still NULL: master_gen_has looks at 0..i-1) */
		for (j = 0, o = old ? old->conf->listeners : NULL; o && !ls; o = o->next, j++)
			if (!master_gen_has(g, old->lsets[j]) && old->lsets[j]->s.socks &&
			    listen_same(o, l))
				ls = old->lsets[j];
		if (ls) {
			ls->refs++;
			g->lsets[i] = ls;
			continue;
		}
		if (!(ls = master_lset_new()))
			return snprintf(err, errlen, "out of memory"), -1;
		g->lsets[i] = ls;
		if (listen_bind_pool(l, l->reuseport ? n : 1, &ls->s, &master.act, err, errlen) < 0) {
			/* a config error like any other: FILE:LINE (port in use) */
			char why[512];

			snprintf(why, sizeof why, "%s", err);
			snprintf(err, errlen, "%s:%d: %s", g->conf->file, l->port_line ? l->port_line :
			    l->address_line ? l->address_line : l->line, why);
			return -1;
		}
	}
	/* Kept sockets change only once every new one is bound: a failed
	 * reload must leave them as they were. */
	for (i = 0, l = g->conf->listeners; l; l = l->next, i++) {
		struct master_lset *ls = g->lsets[i];

		if (ls->refs < 2)
			continue;
		if (listen_update(l, &ls->s, err, errlen) < 0)
			log_warnx("reload: %s", err);
		while (l->reuseport && ls->s.copies < n)
			if (listen_add_copy(l, &ls->s, err, errlen) < 0)
				return -1;
	}
	return 0;
}

static void
master_log_listening(struct master_gen *g, int only_new)
{
	struct conf_listener *l;
	char a[160];
	int i;

	for (i = 0, l = g->conf->listeners; l; l = l->next, i++) {
		struct listen_set *s = &g->lsets[i]->s;

		if (only_new && g->lsets[i]->refs > 1)
			continue;
		for (int k = 0; k < s->naddrs; k++) {
			struct listen_sock *ls = &s->socks[k];

			if (ls->fd < 0)
				continue;
			conf_format_addr((struct sockaddr *)&ls->ss, ls->len, a, sizeof a);
			if (s->copies > 1)
				log_info("listening: %s %s (%d reuseport sockets)", l->name, a, s->copies);
			else
				log_info("listening: %s %s", l->name, a);
		}
	}
}

static void
master_append(char *buf, size_t size, const char *name)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, " %s", name);
}

static int
master_gen_has(const struct master_gen *g, const struct master_lset *ls)
{
	for (int i = 0; i < g->conf->nlisteners; i++)
		if (g->lsets[i] == ls)
			return 1;
	return 0;
}

/* The listener diff, one line: what the operator needs to see. */
static void
master_log_diff(struct master_gen *old, struct master_gen *g)
{
	char kept[512] = "", added[512] = "", removed[512] = "";
	struct conf_listener *l;
	int i;

	for (i = 0, l = g->conf->listeners; l; l = l->next, i++)
		if (master_gen_has(old, g->lsets[i]))
			master_append(kept, sizeof kept, l->name);
		else
			master_append(added, sizeof added, l->name);
	for (i = 0, l = old->conf->listeners; l; l = l->next, i++)
		if (!master_gen_has(g, old->lsets[i]))
			master_append(removed, sizeof removed, l->name);
	log_info("reload: listeners kept:%s; added:%s; removed:%s", *kept ? kept : " none",
	    *added ? added : " none", *removed ? removed : " none");
}

/* What socket activation changes in a freshly read configuration: the
 * listeners systemd names get its sockets' addresses, and a reuseport
 * listener whose inherited socket lacks SO_REUSEPORT runs shared. */
static int
master_conf_adjust(struct conf *c, char *err, size_t errlen)
{
	struct activate_sock *why;
	struct conf_listener *l;

	if (!master.act.n)
		return 0;
	if (activate_match(&master.act, c, err, errlen) < 0)
		return -1;
	for (l = c->listeners; l; l = l->next) {
		/* as many as the name has: a count first, then them */
		int n = activate_by_name(&master.act, l, NULL, 0);

		if (n > 0) {
			struct activate_sock **socks = calloc(n, sizeof *socks);
			struct conf_addr *a = calloc(n, sizeof *a);

			if (!socks || !a) {
				free(socks);
				free(a);
				return snprintf(err, errlen, "out of memory"), -1;
			}
			activate_by_name(&master.act, l, socks, n);
			for (int i = 0; i < n; i++) {
				a[i].ss = socks[i]->ss;
				a[i].len = socks[i]->len;
			}
			free(socks);
			free(l->addrs);
			l->addrs = a;
			l->naddrs = n;
		}
		if (l->reuseport && activate_copies(&master.act, l, c->workers, &why) == 1) {
			char d[400];

			activate_describe(why, d, sizeof d);
			log_info("listener %s: %s has no SO_REUSEPORT: shared by all workers",
			    l->name, d);
			l->reuseport = 0;
		}
	}
	return 0;
}

static void
master_reload(void)
{
	struct master_gen *old = master.cur, *g;
	char err[1024];
	int steered, i;

	master.reloads++;
	notify_reloading("reloading");
	log_info("reload: reading %s", old->conf->file);
	if (!(g = calloc(1, sizeof *g)) ||
	    !(g->conf = conf_load(old->conf->file, err, sizeof err)) ||
	    master_conf_adjust(g->conf, err, sizeof err) < 0 ||
	    master_gen_bind(g, err, sizeof err) < 0) {
		if (!g)
			snprintf(err, sizeof err, "out of memory");
		else if (!g->conf)
			free(g);
		else
			master_gen_free(g);
		master_trim();  /* copies added for a new worker count */
		log_errorx("reload failed: %s", err);
		master_status("failed: %s", err);
		if (stats)
			stats_add(stats->reloads_failed, 1);
		notify_ready("reload failed; running the previous configuration");
		return;
	}
	/* From here on nothing can fail: the reload applies whole. */
	g->next = master.gens;
	master.gens = g;
	master_log_diff(old, g);
	master_log_listening(g, 1);
	if (g->conf->log_file && (!old->conf->log_file ||
	    strcmp(g->conf->log_file, old->conf->log_file) != 0) && log_reopen(g->conf->log_file) < 0)
		log_warn("reload: log %s (still logging where it was)", g->conf->log_file);
	log_setup(g->conf->log_syslog, g->conf->log_level);
	master.cur = g;
	for (i = 0; i < master.nworkers; i++)
		if (master.slot[i]) {
			master_retire(master.slot[i], 1);
			master.slot[i] = NULL;
		}
	master.nworkers = g->conf->workers;
	if (!(steered = master_steer()))
		master_trim();  /* lifts steering a larger count made moot */
	for (i = 0; i < master.nworkers; i++)
		if ((master.slot[i] = master_worker_new(g, i)))
			master_spawn(master.slot[i]);
	/* Old workers drain once their sockets' new owners exist; with
	 * steering, after the kernel's in-flight handshakes land too. */
	ev_timer_stop(master.loop, &master.term_timer);
	ev_timer_set(&master.term_timer, steered ? MASTER_STEER_DELAY : 0., 0.);
	ev_timer_start(master.loop, &master.term_timer);
	if (!old->live)
		master_gen_free(old);
	/* "reload done", READY=1 and the -s reload verdict follow once every
	 * new worker accepts (master_announce). */
}

/* TTIN: one worker more; reuseport listeners get one copy more. */
static void
master_more(void)
{
	struct master_gen *g = master.cur;
	struct conf_listener *l;
	char err[512];
	int i, n = master.nworkers;

	if (n >= MASTER_MAX_WORKERS)
		return log_warnx("TTIN: already %d workers", n);
	for (i = 0, l = g->conf->listeners; l; l = l->next, i++) {
		struct listen_set *s = &g->lsets[i]->s;

		if (l->reuseport && s->copies <= n && listen_add_copy(l, s, err, sizeof err) < 0)
			return log_errorx("TTIN: %s", err);
	}
	master.nworkers = n + 1;
	if (!master_steer())
		master_trim();  /* lifts steering that the new copy made moot */
	if (!(master.slot[n] = master_worker_new(g, n)))
		return log_errorx("TTIN: out of memory");
	log_info("TTIN: %d workers", master.nworkers);
	master_spawn(master.slot[n]);
}

/* TTOU: one worker fewer; its reuseport copy is steered away from, then
 * drained by its worker, then closed (master_trim). */
static void
master_fewer(void)
{
	int n = master.nworkers - 1;
	struct master_worker *w;

	if (n < 1)
		return log_warnx("TTOU: already at 1 worker");
	w = master.slot[n];
	master.slot[n] = NULL;
	master.nworkers = n;
	if (stats)
		__atomic_store_n(&stats->workers, (uint64_t)n, __ATOMIC_RELAXED);
	log_info("TTOU: %d workers", n);
	if (w)
		master_retire(w, master_steer());
	else
		master_trim();
}

/* Every current worker accepts: tell whoever waits (the daemonizing
 * parent or an older master, systemd, -s reload, the log). */
static void
master_announce(void)
{
	struct master_gen *g = master.cur;
	char ok = 0;

	/* After a reload, "ok" means the new configuration alone takes new
	 * connections: the old workers must have been told to stop. */
	if (g->announced || master.stopping != MASTER_RUNNING ||
	    ev_is_active(&master.term_timer))
		return;
	for (int i = 0; i < master.nworkers; i++)
		if (!master.slot[i] || !master.slot[i]->ready)
			return;
	g->announced = 1;
	if (master.reloads) {
		log_info("reload done: %d workers, %d listeners", master.nworkers,
		    g->conf->nlisteners);
		if (stats)
			stats_add(stats->reloads_ok, 1);
		master_status("ok");
	} else {
		log_info("master ready (pid %d): %d workers, %d listeners, mode %s",
		    (int)getpid(), master.nworkers, g->conf->nlisteners,
		    g->conf->mode == CONF_MODE_SHARED ? "shared" : "reuseport");
	}
	/* systemd started the process that forked us: say who the service is
	 * (accepted with NotifyAccess=all; the shipped unit runs -f instead) */
	if (master_detached && !master.reloads)
		notify_mainpid(getpid());
	notify_ready(NULL);
	notify_status("%d workers, %d listeners", master.nworkers, g->conf->nlisteners);
	if (master.ready_fd >= 0) {
		if (write(master.ready_fd, &ok, 1) < 0)
			(void)0;
		close(master.ready_fd);
		master.ready_fd = -1;
	}
}

static void
master_wready_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	pid_t pids[64];
	ssize_t n = read(io->fd, pids, sizeof pids);

	for (ssize_t i = 0; i + (ssize_t)sizeof *pids <= n; i += sizeof *pids)
		for (int k = 0; k < master.nworkers; k++)
			if (master.slot[k] && master.slot[k]->pid == pids[i / sizeof *pids])
				master.slot[k]->ready = 1;
	master_announce();
}

/* WATCHDOG=1 only while every worker runs: a worker stuck in its respawn
 * backoff is what the watchdog is for. */
static void
master_watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	for (int i = 0; i < master.nworkers; i++)
		if (!master.slot[i] || !master.slot[i]->pid)
			return;
	notify_watchdog();
}

/* As nginx: during an upgrade the pidfile is the new master's and
 * PIDFILE.oldbin ours, so `kill -QUIT $(cat PIDFILE.oldbin)` finishes it;
 * a failed upgrade moves it back. */
static void
master_oldbin(int to_oldbin)
{
	const char *pidfile = master.cur->conf->pidfile;
	char oldbin[4096];

	if (!pidfile)
		return;
	snprintf(oldbin, sizeof oldbin, "%s.oldbin", pidfile);
	if (rename(to_oldbin ? pidfile : oldbin, to_oldbin ? oldbin : pidfile) < 0 &&
	    errno != ENOENT)
		log_warn("pidfile %s", to_oldbin ? oldbin : pidfile);
}

static void
master_upgrade_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	char c = 1;

	if (read(io->fd, &c, 1) != 1)
		c = 1;
	ev_io_stop(loop, io);
	close(io->fd);
	master.upgrade_fd = -1;
	if (c == 0) {
		log_info("upgrade: new master (pid %d) serves; send QUIT to this one (pid %d) to finish",
		    (int)master.upgrade_pid, (int)getpid());
		notify_mainpid(master.upgrade_pid);
		master.upgraded = 1;
	} else {
		master_oldbin(0);       /* first: whoever reads the log finds it back */
		log_errorx("upgrade failed: the new master (pid %d) did not start; serving on alone",
		    (int)master.upgrade_pid);
		master.upgrade_pid = 0;
	}
}

/* USR2: start the binary at our path (a newly installed one, if any) with
 * every listening socket handed over, named in ACTIVATE_UPGRADE_ENV. It
 * reports through a pipe like a daemonizing parent; both serve until this
 * master gets QUIT. */
static void
master_upgrade(void)
{
	char *env = NULL, fdbuf[24];
	uint64_t wd;
	size_t len = 0, cap = 0;
	int p[2];
	pid_t pid;

	if (master.upgrade_pid)
		return log_warnx("USR2: an upgrade (pid %d) is already under way",
		    (int)master.upgrade_pid);
	if (!master.exe || !master.argv)
		return log_errorx("USR2: the binary's path is unknown");
	for (struct master_lset *ls = master.lsets; ls; ls = ls->next) {
		struct conf_listener *l = master.cur->conf->listeners;

		/* name the listener it serves now: port-0 sockets match by it */
		for (int i = 0; l && master.cur->lsets[i] != ls; i++)
			l = l->next;
		for (int i = 0; l && i < ls->s.naddrs * ls->s.copies; i++) {
			int need;

			if (ls->s.socks[i].fd < 0)
				continue;
			need = snprintf(NULL, 0, "%d/%d/%s,", ls->s.socks[i].fd,
			    i / ls->s.naddrs, l->name);
			if (len + need + 1 > cap) {
				char *n = realloc(env, cap = (len + need + 1) * 2);

				if (!n) {
					free(env);
					return log_errorx("USR2: out of memory");
				}
				env = n;
			}
			len += snprintf(env + len, cap - len, "%d/%d/%s,", ls->s.socks[i].fd,
			    i / ls->s.naddrs, l->name);
		}
	}
	if (len)
		env[len - 1] = '\0';
	/* notify_init() took WATCHDOG_USEC out of the environment; the new
	 * master pings instead of us once it is MAINPID */
	wd = notify_watchdog_usec();
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(env);
		return log_error("USR2: cannot start %s", master.exe);
	}
	/* Trap: before the fork, not after: a quick new master writes the
	 * pidfile before this process runs again, and a rename after that
	 * would move the new master's pid into PIDFILE.oldbin. */
	master_oldbin(1);
	if ((pid = fork()) < 0) {
		master_oldbin(0);
		close(p[0]);
		close(p[1]);
		free(env);
		return log_error("USR2: cannot start %s", master.exe);
	}
	if (pid == 0) {
		sigset_t all;

		for (struct master_lset *ls = master.lsets; ls; ls = ls->next)
			for (int i = 0; ls->s.socks && i < ls->s.naddrs * ls->s.copies; i++)
				if (ls->s.socks[i].fd >= 0)
					fcntl(ls->s.socks[i].fd, F_SETFD, 0);
		fcntl(p[1], F_SETFD, 0);
		snprintf(fdbuf, sizeof fdbuf, "%d", p[1]);
		setenv(ACTIVATE_UPGRADE_ENV, env ? env : "", 1);
		setenv("ACCEPTD_READY_FD", fdbuf, 1);
		if (notify_socket_path())
			setenv("NOTIFY_SOCKET", notify_socket_path(), 1);
		if (wd) {
			snprintf(fdbuf, sizeof fdbuf, "%llu", (unsigned long long)wd);
			setenv("WATCHDOG_USEC", fdbuf, 1);
		}
		/* exec keeps ignored signals ignored and the mask as it is */
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execv(master.exe, master.argv);
		log_error("USR2: exec %s", master.exe);
		_exit(1);
	}
	free(env);
	close(p[1]);
	master.upgrade_pid = pid;
	master.upgrade_fd = p[0];
	ev_io_init(&master.upgrade_io, master_upgrade_cb, p[0], EV_READ);
	ev_io_start(master.loop, &master.upgrade_io);
	log_info("USR2: starting %s (pid %d) with the listening sockets", master.exe, (int)pid);
}

/* USR1, or a reload naming another file: the master's stderr, then each
 * worker's (they reopen it themselves, as the user they run as). */
static void
master_reopen(const char *path)
{
	if (!path) {
		log_info("SIGUSR1: nothing to reopen (logging to %s)",
		    master.cur->conf->log_syslog ? "syslog" : "stderr");
		return;
	}
	if (log_reopen(path) < 0)
		return log_warn("reopen log %s", path);
	log_info("log reopened: %s", path);
	for (int i = 0; i < master.nworkers; i++)
		if (master.slot[i] && master.slot[i]->pid)
			kill(master.slot[i]->pid, SIGUSR1);
	for (struct master_worker *w = master.leaving; w; w = w->next)
		if (w->pid)
			kill(w->pid, SIGUSR1);
}

static void
master_signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	if (master.stopping != MASTER_RUNNING && s->signum != SIGTERM &&
	    s->signum != SIGQUIT && s->signum != SIGINT)
		return;
	switch (s->signum) {
	case SIGTERM:
	case SIGQUIT:
		master_stop(0);
		break;
	case SIGINT:
		master_stop(1);
		break;
	case SIGHUP:
		master_reload();
		break;
	case SIGTTIN:
		master_more();
		break;
	case SIGTTOU:
		master_fewer();
		break;
	case SIGUSR1:
		master_reopen(master.cur->conf->log_file);
		break;
	case SIGUSR2:
		master_upgrade();
		break;
	}
}

/* Set the effective and permitted capabilities to exactly keep (a mask of
 * CAP_*), with the raw syscall: libcap is not worth a dependency here. */
static int
master_caps(unsigned long long keep)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof d);
	d[0].effective = d[0].permitted = (uint32_t)keep;
	d[1].effective = d[1].permitted = (uint32_t)(keep >> 32);
	return (int)syscall(SYS_capset, &h, d);
}

static int
master_drop_privileges(const struct conf *c)
{
	struct passwd *pw = NULL;
	struct group *gr = NULL;
	gid_t gid;

	if (!c->user && !c->group)
		return 0;
	if (geteuid() != 0) {
		log_warnx("user/group set but not started as root: ignored");
		return 0;
	}
	if (c->user && !(pw = getpwnam(c->user)))
		return log_errorx("user: no such user '%s'", c->user), -1;
	if (c->group && !(gr = getgrnam(c->group)))
		return log_errorx("group: no such group '%s'", c->group), -1;
	gid = gr ? gr->gr_gid : pw->pw_gid;
	/* what the master reopens as the user later: its status file, the log */
	if (pw && master.status_fd >= 0 && fchown(master.status_fd, pw->pw_uid, gid) < 0)
		log_warn("reload status file: chown");
	if (pw && c->log_file && chown(c->log_file, pw->pw_uid, gid) < 0)
		log_warn("log %s: chown", c->log_file);
	/* The master keeps CAP_NET_BIND_SERVICE (and nothing else) across
	 * setuid, so that a reload can still bind ports below 1024; workers
	 * drop it at fork (master_caps(0)). */
	if (pw && prctl(PR_SET_KEEPCAPS, 1) < 0)
		return log_error("prctl PR_SET_KEEPCAPS"), -1;
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0)
		return log_error("setgid %d", (int)gid), -1;
	if (pw && setuid(pw->pw_uid) < 0)
		return log_error("setuid %d", (int)pw->pw_uid), -1;
	if (pw && (prctl(PR_SET_KEEPCAPS, 0) < 0 ||
	    master_caps(1ULL << CAP_NET_BIND_SERVICE) < 0))
		return log_error("keeping CAP_NET_BIND_SERVICE"), -1;
	log_info("running as user %s, group %d%s", pw ? pw->pw_name : "root", (int)gid,
	    pw ? " (the master keeps CAP_NET_BIND_SERVICE for reloads)" : "");
	return 0;
}

static int
master_write_pidfile(const char *path)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (!(f = fopen(tmp, "w")))
		return log_error("pidfile %s", tmp), -1;
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		log_error("pidfile %s", path);
		unlink(tmp);
		return -1;
	}
	/* Opened now, while the directory is still writable for us. */
	snprintf(tmp, sizeof tmp, "%s.reload", path);
	master.status_fd = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (master.status_fd < 0)
		log_warn("reload status file %s", tmp);
	return 0;
}

/* Only our own: after an upgrade the pidfile names the new master. */
static void
master_remove_pidfile(const char *path)
{
	char tmp[4096];
	long pid = 0;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid == (long)getpid()) {
		snprintf(tmp, sizeof tmp, "%s.reload", path);
		unlink(tmp);
		unlink(path);
	}
	/* an old master after an upgrade: its pid is in PIDFILE.oldbin */
	snprintf(tmp, sizeof tmp, "%s.oldbin", path);
	if ((f = fopen(tmp, "r"))) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
		if (pid == (long)getpid())
			unlink(tmp);
	}
}

int
master_run(struct conf *conf, int ready_fd)
{
	static const int sigs[] = { SIGTERM, SIGQUIT, SIGINT, SIGHUP, SIGUSR1,
	    SIGUSR2, SIGTTIN, SIGTTOU };
	struct master_gen *g;
	char err[1024], ok = 1;
	int i, rc = 1;
	uint64_t wd;

	master.loop = EV_DEFAULT;
	master.ready_fd = ready_fd;
	if (notify_init() < 0)
		log_warn("NOTIFY_SOCKET is set but unusable");
	if (!(g = calloc(1, sizeof *g))) {
		log_errorx("out of memory");
		conf_free(conf);
		goto out;
	}
	g->conf = conf;
	master.gens = g;
	if (conf->rlimit_nofile) {
		struct rlimit rl = { conf->rlimit_nofile, conf->rlimit_nofile };

		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			log_error("rlimit_nofile %ld", conf->rlimit_nofile);
			goto out;
		}
	}
	if (stats_init() < 0)
		log_warn("shared counters (memfd): the stats handler will show nothing");
	/* Sockets from systemd (LISTEN_FDS) or from an older master (USR2)
	 * take the place of binding where they match. */
	if (activate_take(&master.act, err, sizeof err) < 0 ||
	    activate_take_upgrade(&master.upg, err, sizeof err) < 0 ||
	    master_conf_adjust(conf, err, sizeof err) < 0) {
		log_errorx("%s", err);
		goto out;
	}
	if (*err)
		log_debug("%s", err);
	master.act.next = &master.upg;
	if (master_gen_bind(g, err, sizeof err) < 0) {
		master.cur = g;
		log_errorx("%s", err);
		goto out;
	}
	master.cur = g;
	activate_close_unused(&master.upg);
	if (pipe2(master.wpipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("pipe");
		goto out;
	}
	/* After an upgrade we may run as `user` already: a pidfile in a
	 * directory only root may write is then a warning, not a failure. */
	if (conf->pidfile && master_write_pidfile(conf->pidfile) < 0 && !master.upg.n)
		goto out;
	if (master_drop_privileges(conf) < 0)
		goto out;

	for (i = 0; i < (int)(sizeof sigs / sizeof *sigs); i++) {
		ev_signal_init(&master.sigs[i], master_signal_cb, sigs[i]);
		ev_signal_start(master.loop, &master.sigs[i]);
	}
	master.nsigs = i;
	signal(SIGPIPE, SIG_IGN);
	ev_child_init(&master.child, master_child_cb, 0, 0);
	ev_child_start(master.loop, &master.child);
	ev_init(&master.kill_timer, master_kill_cb);
	ev_init(&master.term_timer, master_term_cb);
	ev_io_init(&master.wready, master_wready_cb, master.wpipe[0], EV_READ);
	ev_io_start(master.loop, &master.wready);
	ev_init(&master.upgrade_io, master_upgrade_cb);
	ev_init(&master.watchdog, master_watchdog_cb);
	if ((wd = notify_watchdog_usec())) {
		ev_timer_set(&master.watchdog, wd / 2e6, wd / 2e6);
		ev_timer_start(master.loop, &master.watchdog);
	}
	proctitle_set("acceptd: master");

	master_log_listening(g, 0);
	master.nworkers = conf->workers;
	for (i = 0; i < master.nworkers; i++) {
		if (!(master.slot[i] = master_worker_new(g, i))) {
			log_errorx("out of memory");
			goto out;
		}
		master_spawn(master.slot[i]);
	}
	ev_run(master.loop, 0);
	log_info("master exiting");
	rc = 0;
out:
	if (master.ready_fd >= 0) {
		if (write(master.ready_fd, &ok, 1) < 0)
			(void)0;
		close(master.ready_fd);
	}
	if (rc == 0 && master.cur && master.cur->conf->pidfile)
		master_remove_pidfile(master.cur->conf->pidfile);
	for (struct master_lset *ls = master.lsets; ls; ls = ls->next)
		listen_close(&ls->s, rc == 0 && !master.upgraded);
	while (master.gens)
		master_gen_free(master.gens);
	for (i = 0; i < MASTER_MAX_WORKERS; i++)
		free(master.slot[i]);
	while (master.leaving) {
		struct master_worker *w = master.leaving;

		master.leaving = w->next;
		free(w);
	}
	activate_free(&master.act);
	activate_free(&master.upg);
	return rc;
}
