/* master: the master process: binds, drops privileges, forks the workers,
 * replaces those that die, and turns signals into stops. It never accepts. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <ev.h>

#include "conf.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "proctitle.h"
#include "worker.h"

/* A worker that dies younger than this is crashing, not finishing: its
 * replacement waits, doubling up to MASTER_BACKOFF_MAX, so a broken
 * worker never turns the master into a fork loop. */
#define MASTER_YOUNG 1.0
#define MASTER_BACKOFF_MIN 0.1
#define MASTER_BACKOFF_MAX 10.0
/* After the drain deadline, how long workers get before SIGKILL. */
#define MASTER_KILL_GRACE 2.0

struct master_worker {
	pid_t pid;                 /* 0: not running */
	ev_tstamp started;
	double backoff;
	ev_timer respawn;
	int index;
};

enum { MASTER_RUNNING, MASTER_DRAINING, MASTER_FAST };

static struct {
	struct ev_loop *loop;
	struct conf *conf;
	struct listen_set *sets;
	struct master_worker *w;
	int stopping;
	ev_signal sigs[9];
	int nsigs;
	ev_child child;
	ev_timer kill_timer;
	int ready_fd;
} master;

static void master_spawn(struct master_worker *w);

/* In a new worker: the master's watchers must not fire there. */
static void
master_forget(void)
{
	for (int i = 0; i < master.nsigs; i++)
		ev_signal_stop(master.loop, &master.sigs[i]);
	ev_child_stop(master.loop, &master.child);
	ev_timer_stop(master.loop, &master.kill_timer);
	for (int i = 0; i < master.conf->workers; i++)
		ev_timer_stop(master.loop, &master.w[i].respawn);
	if (master.ready_fd >= 0)
		close(master.ready_fd);
	ev_loop_fork(master.loop);
}

static void
master_spawn(struct master_worker *w)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("worker %d: fork", w->index);
		w->backoff = MASTER_BACKOFF_MAX;
		ev_timer_set(&w->respawn, w->backoff, 0.);
		ev_timer_start(master.loop, &w->respawn);
		return;
	}
	if (pid == 0) {
		master_forget();
		exit(worker_run(master.loop, master.conf, master.sets, w->index));
	}
	w->pid = pid;
	w->started = ev_now(master.loop);
	log_info("worker %d started (pid %d)", w->index, (int)pid);
}

static void
master_respawn_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master_worker *w = (struct master_worker *)((char *)t -
	    offsetof(struct master_worker, respawn));

	if (master.stopping == MASTER_RUNNING && !w->pid)
		master_spawn(w);
}

static int
master_live_workers(void)
{
	int n = 0;

	for (int i = 0; i < master.conf->workers; i++)
		n += master.w[i].pid != 0;
	return n;
}

static void
master_child_cb(struct ev_loop *loop, ev_child *c, int revents)
{
	struct master_worker *w = NULL;
	int st = c->rstatus;

	for (int i = 0; i < master.conf->workers; i++)
		if (master.w[i].pid == c->rpid)
			w = &master.w[i];
	if (!w)
		return;
	w->pid = 0;
	if (master.stopping != MASTER_RUNNING) {
		log_info("worker %d (pid %d) exited", w->index, (int)c->rpid);
		if (!master_live_workers())
			ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (WIFSIGNALED(st))
		log_warnx("worker %d (pid %d) killed by signal %d (%s)%s", w->index,
		    (int)c->rpid, WTERMSIG(st), strsignal(WTERMSIG(st)),
		    WCOREDUMP(st) ? ", core dumped" : "");
	else
		log_warnx("worker %d (pid %d) exited with status %d", w->index,
		    (int)c->rpid, WEXITSTATUS(st));
	if (ev_now(loop) - w->started >= MASTER_YOUNG)
		w->backoff = 0;
	if (!w->backoff) {
		w->backoff = MASTER_BACKOFF_MIN;
		master_spawn(w);
		return;
	}
	log_warnx("worker %d: respawning in %.1fs (it keeps dying young)", w->index, w->backoff);
	ev_timer_set(&w->respawn, w->backoff, 0.);
	ev_timer_start(loop, &w->respawn);
	w->backoff = w->backoff * 2 > MASTER_BACKOFF_MAX ? MASTER_BACKOFF_MAX : w->backoff * 2;
}

static void
master_signal_workers(int sig)
{
	for (int i = 0; i < master.conf->workers; i++) {
		ev_timer_stop(master.loop, &master.w[i].respawn);
		if (master.w[i].pid)
			kill(master.w[i].pid, sig);
	}
}

static void
master_kill_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	log_warnx("%d workers still running after the shutdown timeout: killing them",
	    master_live_workers());
	master_signal_workers(SIGKILL);
}

static void
master_close_listeners(void)
{
	for (int i = 0; i < master.conf->nlisteners; i++)
		listen_close(&master.sets[i], 1);
}

static void
master_stop(int fast)
{
	double limit = master.conf->shutdown_timeout_ms / 1000.0 + MASTER_KILL_GRACE;

	if (fast || master.stopping == MASTER_DRAINING) {
		/* INT, or a second TERM/QUIT during the drain: now. */
		log_info("fast stop");
		master.stopping = MASTER_FAST;
		limit = MASTER_KILL_GRACE;
		master_signal_workers(SIGINT);
	} else {
		log_info("graceful stop: draining workers (shutdown_timeout %.1fs)",
		    master.conf->shutdown_timeout_ms / 1000.0);
		master.stopping = MASTER_DRAINING;
		master_signal_workers(SIGTERM);
	}
	/* New connections are refused from now on rather than queued on a
	 * socket nobody will accept from. */
	master_close_listeners();
	ev_timer_stop(master.loop, &master.kill_timer);
	ev_timer_set(&master.kill_timer, limit, 0.);
	ev_timer_start(master.loop, &master.kill_timer);
	if (!master_live_workers())
		ev_break(master.loop, EVBREAK_ALL);
}

static void
master_signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	switch (s->signum) {
	case SIGTERM:
	case SIGQUIT:
		master_stop(0);
		break;
	case SIGINT:
		master_stop(1);
		break;
	case SIGUSR1:
		log_info("SIGUSR1: nothing to reopen (logging to %s)",
		    master.conf->log_syslog ? "syslog" : "stderr");
		break;
	default:
		log_warnx("%s: not built yet; ignored", strsignal(s->signum));
	}
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
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0)
		return log_error("setgid %d", (int)gid), -1;
	if (pw && setuid(pw->pw_uid) < 0)
		return log_error("setuid %d", (int)pw->pw_uid), -1;
	log_info("running as user %s, group %d", pw ? pw->pw_name : "root", (int)gid);
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
	return 0;
}

static void
master_log_listening(void)
{
	struct conf_listener *l;
	char a[160];
	int i;

	for (i = 0, l = master.conf->listeners; l; l = l->next, i++) {
		struct listen_set *s = &master.sets[i];

		for (int k = 0; k < s->naddrs; k++) {
			struct listen_sock *ls = &s->socks[k * s->copies];

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

int
master_run(struct conf *conf, int ready_fd)
{
	static const int sigs[] = { SIGTERM, SIGQUIT, SIGINT, SIGHUP, SIGUSR1,
	    SIGUSR2, SIGTTIN, SIGTTOU };
	struct conf_listener *l;
	char err[512], ok = 1;
	int i, rc = 1;

	master.conf = conf;
	master.loop = EV_DEFAULT;
	master.ready_fd = ready_fd;
	if (conf->rlimit_nofile) {
		struct rlimit rl = { conf->rlimit_nofile, conf->rlimit_nofile };

		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			log_error("rlimit_nofile %ld", conf->rlimit_nofile);
			goto out;
		}
	}
	if (!(master.sets = calloc(conf->nlisteners, sizeof *master.sets)) ||
	    !(master.w = calloc(conf->workers, sizeof *master.w))) {
		log_errorx("out of memory");
		goto out;
	}
	for (i = 0, l = conf->listeners; l; l = l->next, i++)
		if (listen_bind(l, l->reuseport ? conf->workers : 1, &master.sets[i],
		    err, sizeof err) < 0) {
			log_errorx("%s", err);
			goto out;
		}
	if (conf->pidfile && master_write_pidfile(conf->pidfile) < 0)
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
	proctitle_set("acceptd: master");

	for (i = 0; i < conf->workers; i++) {
		master.w[i].index = i;
		ev_init(&master.w[i].respawn, master_respawn_cb);
		master_spawn(&master.w[i]);
	}
	master_log_listening();
	log_info("master ready (pid %d): %d workers, %d listeners, mode %s", (int)getpid(),
	    conf->workers, conf->nlisteners, conf->mode == CONF_MODE_SHARED ? "shared" : "reuseport");
	if (ready_fd >= 0) {
		ok = 0;
		if (write(ready_fd, &ok, 1) < 0)
			(void)0;
		close(ready_fd);
		master.ready_fd = ready_fd = -1;
	}
	ev_run(master.loop, 0);
	log_info("master exiting");
	rc = 0;
out:
	if (ready_fd >= 0) {
		if (write(ready_fd, &ok, 1) < 0)
			(void)0;
		close(ready_fd);
	}
	for (i = 0; master.sets && i < conf->nlisteners; i++)
		listen_close(&master.sets[i], rc == 0);
	if (rc == 0 && conf->pidfile)
		unlink(conf->pidfile);
	free(master.sets);
	free(master.w);
	return rc;
}
