/* stats: the daemon's counters in one shared memory block (a memfd), mapped
 * by the master before it forks: a slot per worker and listener. */
#ifndef ACCEPTD_STATS_H
#define ACCEPTD_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define STATS_MAX_WORKERS 1024
#define STATS_MAX_LISTENERS 64
#define STATS_NAME_MAX 64

/* accept(2) errors worth telling apart; the rest are "other". */
enum stats_errno { STATS_EMFILE, STATS_ENFILE, STATS_ENOBUFS, STATS_ENOMEM,
	STATS_ECONNABORTED, STATS_EOTHER, STATS_NERRNO };

/* One worker's counts for one listener. The old and the new worker N
 * overlap during a reload and share the slot, so every update is an atomic
 * add (relaxed: counts, not synchronisation): no locks, and a reader in
 * another process sees each value whole. */
struct stats_counters {
	uint64_t accepted;          /* handed to the handler */
	uint64_t active;            /* accepted and not yet closed */
	uint64_t closed;
	uint64_t rejected_limit;    /* max_connections */
	uint64_t rejected_acl;      /* allow/deny */
	uint64_t proxy_errors;      /* missing, malformed or late PROXY header */
	uint64_t bytes_in, bytes_out;
	uint64_t accept_errors[STATS_NERRNO];
};

struct stats_block {
	uint64_t magic;
	uint64_t start_time;        /* the master's start, unix seconds */
	uint64_t master_pid;
	uint64_t worker_restarts;   /* unexpected deaths replaced */
	uint64_t reloads_ok, reloads_failed;
	uint64_t workers;           /* the current worker count */
	uint64_t nworkers_seen;     /* highest worker index ever + 1 */
	uint64_t nlisteners;        /* names[0..nlisteners) are in use */
	char names[STATS_MAX_LISTENERS][STATS_NAME_MAX];
	struct stats_counters c[STATS_MAX_WORKERS][STATS_MAX_LISTENERS];
};

/* NULL until stats_init(): then every process of the daemon shares it. */
extern struct stats_block *stats;

#define stats_add(field, n) ((void)__atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED))
#define stats_sub(field, n) ((void)__atomic_fetch_sub(&(field), (n), __ATOMIC_RELAXED))
#define stats_get(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Master, before the first fork: create and map the block. 0 or -1. */
int stats_init(void);
/* Master: the slot of a listener by name, kept across reloads (so its
 * counts survive); a name beyond STATS_MAX_LISTENERS shares the last. */
int stats_listener(const char *name);
/* The counters of worker w for listener slot i (a dummy when no block). */
struct stats_counters *stats_slot(int w, int i);
enum stats_errno stats_errno(int err);

/* The Prometheus text exposition of the whole block into buf; returns the
 * length it needs (call again with a bigger buffer if that is >= cap). */
size_t stats_format(const struct stats_block *b, char *buf, size_t cap);
/* `acceptd -s status`: map the block of the master pid (through its memfd
 * in /proc/PID/fd) and print a short table. 0, or -1 with a message. */
int stats_print_status(long pid, FILE *out);

#endif
