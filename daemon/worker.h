/* worker: one worker process: its libev loop, one accept watcher per
 * listening socket, and the drain on stop. */
#ifndef ACCEPTD_WORKER_H
#define ACCEPTD_WORKER_H

#include <ev.h>
#include <stdint.h>
#include <sys/socket.h>

struct conf;
struct conf_listener;
struct listen_set;

/* One listening socket as a worker watches it. */
struct worker_sock {
	ev_io io;                        /* first: the callback casts back */
	ev_timer pause;                  /* re-arms io after EMFILE and kin */
	const struct conf_listener *l;
	int max;                         /* accepts per wake-up (backlog) */
	/* Shared mode (one socket for all workers): the fair-share throttle.
	 * Every WORKER_FAIR_CHECK accepts the worker compares its recent
	 * accepts with everyone's (the shared counters); well ahead of
	 * 1/workers, it stops accepting for WORKER_FAIR_PAUSE. */
	int fair;                        /* the throttle applies: shared socket */
	int sid;                         /* the listener's stats slot */
	unsigned since;                  /* own accepts since the last check */
	uint64_t all_last;               /* everyone's total at the last check */
	uint64_t own_last;               /* ours at the last check */
	uint64_t win_all[2], win_own[2]; /* everyone's and ours at the window's starts */
	uint64_t others_paused;          /* others' total when the pause began */
	int fair_paused;                 /* the pause timer runs for the throttle */
	int fair_skip;                   /* others took nothing while we paused */
	/* The listening socket's own address when every connection it
	 * accepts has that local address (bound to one IP, or a unix path):
	 * then no getsockname() per connection. local_len 0: ask each time. */
	struct sockaddr_storage local;
	socklen_t local_len;
	/* Shared sockets: one wake-up per connection, not one per idle
	 * worker. The socket sits in libev's own epoll with EPOLLEXCLUSIVE,
	 * put there by us with libev's own data (see worker.c). */
	int shared;                      /* one socket for every worker */
	int excl;                        /* WORKER_EXCL_*: who registers the fd */
	int paused;                      /* accepting paused (throttle, EMFILE) */
	uint64_t edata;                  /* libev's epoll data for the fd */
	unsigned excl_gen;               /* worker_excl_gen when armed */
	unsigned rot;                    /* accepts since the last rotation */
};

/* ws->excl: libev registers the fd (not tried yet: TODO; not possible or
 * failed: OFF), or we do, with EPOLLEXCLUSIVE (ON). */
#define WORKER_EXCL_TODO 0
#define WORKER_EXCL_ON 1
#define WORKER_EXCL_OFF 2

/* The accept call, replaceable so tests can inject errors. */
extern int (*worker_accept4)(int fd, struct sockaddr *sa, socklen_t *len, int flags);

/* Out of descriptors (EMFILE/ENFILE): how often, and how many queued
 * connections were accepted and closed with the reserve descriptor. */
extern unsigned long worker_nofile_events, worker_nofile_shed;
/* Connections accepted; accept() calls that said EAGAIN (one ends every
 * batch), and batches whose first accept() did (a wake-up for nothing). */
extern unsigned long worker_accepted, worker_accept_eagain, worker_accept_empty;
/* Times the fair-share throttle paused accepting. */
extern unsigned long worker_fair_pauses;
/* Exclusive registrations moved to the tail of the socket's wait queue
 * (rotations and resumes), and made anew after libev rebuilt its epoll. */
extern unsigned long worker_excl_rotations, worker_excl_rearms;

/* Seconds the accept watcher sleeps when out of descriptors or memory. */
#define WORKER_PAUSE 0.1
/* The fair-share throttle (shared sockets, more than one worker): checked
 * every WORKER_FAIR_CHECK accepts; more than 1/workers * (1 + 1/DIV) of the
 * listener's last WORKER_FAIR_WINDOW * workers accepts or so (one to two
 * such windows) pauses accepting for WORKER_FAIR_PAUSE seconds. */
#define WORKER_FAIR_CHECK 8
#define WORKER_FAIR_DIV 16
#define WORKER_FAIR_WINDOW 64
#define WORKER_FAIR_PAUSE 0.001
/* With EPOLLEXCLUSIVE the kernel wakes the first idle worker in the
 * socket's wait-queue order, always the same one at light load: every
 * WORKER_EXCL_ROTATE accepts a worker moves itself to the tail. */
#define WORKER_EXCL_ROTATE 8

/* Tornado's add_accept_handler(): accept up to ws->max connections, stop
 * on EAGAIN, skip ECONNABORTED; out of descriptors, pause the watcher
 * instead of spinning. Returns how many were handed to the handler. */
int worker_accept_batch(struct ev_loop *loop, struct worker_sock *ws);
void worker_sock_init(struct worker_sock *ws, const struct conf_listener *l, int fd);
/* The accept watcher's callback (tests run it without a loop iteration). */
void worker_accept_cb(struct ev_loop *loop, ev_io *w, int revents);

/* Stop accepting on ws (the throttle, EMFILE) and start again: while the
 * registration is ours, by removing and re-adding it in the kernel, the
 * watcher staying active; else by stopping and starting the watcher. */
void worker_listen_pause(struct ev_loop *loop, struct worker_sock *ws);
void worker_listen_resume(struct ev_loop *loop, struct worker_sock *ws);
/* libev's epoll fd for loop (an epoll loop only), -1 if none. */
int worker_backend_fd(struct ev_loop *loop);
/* The events and data epoll fd epfd holds for fd (the one whose inode fd
 * has now), from /proc/self/fdinfo: 0, or -1 when not found. */
int worker_epoll_entry(int epfd, int fd, uint32_t *events, uint64_t *data);

/* Where a worker writes its pid once it accepts (the master's READY). */
extern int worker_ready_fd;

/* Run worker `index` on loop (after fork) until it is told to stop and has
 * drained. sets[i] belongs to the i-th listener. Returns the exit status. */
int worker_run(struct ev_loop *loop, const struct conf *conf, struct listen_set *sets,
    int index);

#endif
