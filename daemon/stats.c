/* stats: the daemon's counters in one shared memory block (a memfd), mapped
 * by the master before it forks: a slot per worker and listener. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "stats.h"

#define STATS_MAGIC 0x61636365707464ULL   /* "acceptd" */
#define STATS_MEMFD "acceptd-stats"

struct stats_block *stats;
static struct stats_counters stats_dummy;

int
stats_init(void)
{
	int fd = memfd_create(STATS_MEMFD, MFD_CLOEXEC);
	void *p;

	if (fd < 0)
		return -1;
	/* Sparse: only the pages of slots in use are ever touched. */
	if (ftruncate(fd, sizeof *stats) < 0 ||
	    (p = mmap(NULL, sizeof *stats, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	/* The fd stays open (and leaks into no exec'd program: CLOEXEC):
	 * `acceptd -s status` finds the block through /proc/PID/fd. */
	stats = p;
	stats->magic = STATS_MAGIC;
	stats->start_time = (uint64_t)time(NULL);
	stats->master_pid = (uint64_t)getpid();
	return 0;
}

int
stats_listener(const char *name)
{
	uint64_t i;

	if (!stats)
		return 0;
	for (i = 0; i < stats->nlisteners; i++)
		if (strncmp(stats->names[i], name, STATS_NAME_MAX - 1) == 0)
			return (int)i;
	if (i == STATS_MAX_LISTENERS)
		return STATS_MAX_LISTENERS - 1;
	snprintf(stats->names[i], STATS_NAME_MAX, "%s", name);
	__atomic_store_n(&stats->nlisteners, i + 1, __ATOMIC_RELEASE);
	return (int)i;
}

struct stats_counters *
stats_slot(int w, int i)
{
	if (!stats || w < 0 || w >= STATS_MAX_WORKERS || i < 0 || i >= STATS_MAX_LISTENERS)
		return &stats_dummy;
	if ((uint64_t)w >= stats_get(stats->nworkers_seen))
		__atomic_store_n(&stats->nworkers_seen, (uint64_t)w + 1, __ATOMIC_RELAXED);
	return &stats->c[w][i];
}

enum stats_errno
stats_errno(int err)
{
	switch (err) {
	case EMFILE: return STATS_EMFILE;
	case ENFILE: return STATS_ENFILE;
	case ENOBUFS: return STATS_ENOBUFS;
	case ENOMEM: return STATS_ENOMEM;
	case ECONNABORTED: return STATS_ECONNABORTED;
	default: return STATS_EOTHER;
	}
}

/* snprintf that keeps counting past the end, so the caller learns the size */
struct stats_out {
	char *buf;
	size_t cap, len;
};

static void stats_put(struct stats_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
stats_put(struct stats_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->len < o->cap ? o->buf + o->len : NULL,
	    o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += n;
}

/* A per listener and worker family: HELP, TYPE, then one sample each. */
static void
stats_family(struct stats_out *o, const struct stats_block *b, const char *name,
    const char *type, const char *help, size_t off)
{
	uint64_t nl = stats_get(b->nlisteners);
	uint64_t nw = stats_get(b->nworkers_seen);

	stats_put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (uint64_t i = 0; i < nl; i++)
		for (uint64_t w = 0; w < nw; w++) {
			const uint64_t *v = (const uint64_t *)((const char *)&b->c[w][i] + off);

			stats_put(o, "%s{listener=\"%s\",worker=\"%llu\"} %llu\n", name,
			    b->names[i], (unsigned long long)w,
			    (unsigned long long)__atomic_load_n(v, __ATOMIC_RELAXED));
		}
}

size_t
stats_format(const struct stats_block *b, char *buf, size_t cap)
{
	static const char *const errnames[STATS_NERRNO] = {
		"EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "ECONNABORTED", "other",
	};
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} fam[] = {
		{ "acceptd_connections_accepted_total", "counter",
		  "Connections accepted and handed to the listener's handler.",
		  offsetof(struct stats_counters, accepted) },
		{ "acceptd_connections_active", "gauge",
		  "Connections open now.", offsetof(struct stats_counters, active) },
		{ "acceptd_connections_closed_total", "counter",
		  "Connections closed after the handler had them.",
		  offsetof(struct stats_counters, closed) },
		{ "acceptd_proxy_header_errors_total", "counter",
		  "Connections closed for a missing, malformed or late PROXY header.",
		  offsetof(struct stats_counters, proxy_errors) },
		{ "acceptd_received_bytes_total", "counter",
		  "Bytes read from clients by handlers using the connection helper.",
		  offsetof(struct stats_counters, bytes_in) },
		{ "acceptd_sent_bytes_total", "counter",
		  "Bytes written to clients by handlers using the connection helper.",
		  offsetof(struct stats_counters, bytes_out) },
	};
	struct stats_out o = { buf, cap, 0 };

	for (size_t i = 0; i < sizeof fam / sizeof *fam; i++)
		stats_family(&o, b, fam[i].name, fam[i].type, fam[i].help, fam[i].off);
	/* one family, two reasons: a label, so the sum is "all rejected" */
	stats_put(&o, "# HELP acceptd_connections_rejected_total Connections closed at once by the listener's policy.\n"
	    "# TYPE acceptd_connections_rejected_total counter\n");
	for (uint64_t i = 0; i < stats_get(b->nlisteners); i++)
		for (uint64_t w = 0; w < stats_get(b->nworkers_seen); w++)
			stats_put(&o, "acceptd_connections_rejected_total{listener=\"%s\",worker=\"%llu\",reason=\"limit\"} %llu\n"
			    "acceptd_connections_rejected_total{listener=\"%s\",worker=\"%llu\",reason=\"acl\"} %llu\n",
			    b->names[i], (unsigned long long)w,
			    (unsigned long long)stats_get(b->c[w][i].rejected_limit),
			    b->names[i], (unsigned long long)w,
			    (unsigned long long)stats_get(b->c[w][i].rejected_acl));
	stats_put(&o, "# HELP acceptd_accept_errors_total accept(2) failures by errno.\n"
	    "# TYPE acceptd_accept_errors_total counter\n");
	for (uint64_t i = 0; i < stats_get(b->nlisteners); i++)
		for (uint64_t w = 0; w < stats_get(b->nworkers_seen); w++)
			for (int e = 0; e < STATS_NERRNO; e++)
				stats_put(&o, "acceptd_accept_errors_total{listener=\"%s\",worker=\"%llu\",errno=\"%s\"} %llu\n",
				    b->names[i], (unsigned long long)w, errnames[e],
				    (unsigned long long)stats_get(b->c[w][i].accept_errors[e]));
	stats_put(&o, "# HELP acceptd_worker_restarts_total Workers that died unexpectedly and were replaced.\n"
	    "# TYPE acceptd_worker_restarts_total counter\nacceptd_worker_restarts_total %llu\n",
	    (unsigned long long)stats_get(b->worker_restarts));
	stats_put(&o, "# HELP acceptd_reloads_total Reloads by outcome.\n"
	    "# TYPE acceptd_reloads_total counter\n"
	    "acceptd_reloads_total{result=\"ok\"} %llu\nacceptd_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)stats_get(b->reloads_ok),
	    (unsigned long long)stats_get(b->reloads_failed));
	stats_put(&o, "# HELP acceptd_workers Workers the master keeps running.\n"
	    "# TYPE acceptd_workers gauge\nacceptd_workers %llu\n",
	    (unsigned long long)stats_get(b->workers));
	stats_put(&o, "# HELP acceptd_start_time_seconds When the master started, in unix time.\n"
	    "# TYPE acceptd_start_time_seconds gauge\nacceptd_start_time_seconds %llu\n",
	    (unsigned long long)b->start_time);
	return o.len;
}

/* The master's block, through the memfd it keeps open. */
static const struct stats_block *
stats_attach(long pid, char *err, size_t errlen)
{
	char dir[64], path[400], target[256];
	struct dirent *de;
	DIR *d;
	void *p = MAP_FAILED;

	snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
	if (!(d = opendir(dir))) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	while ((de = readdir(d)) && p == MAP_FAILED) {
		ssize_t n;
		int fd;

		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if ((n = readlink(path, target, sizeof target - 1)) <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "/memfd:" STATS_MEMFD, strlen("/memfd:" STATS_MEMFD)) != 0 ||
		    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		p = mmap(NULL, sizeof *stats, PROT_READ, MAP_SHARED, fd, 0);
		close(fd);
	}
	closedir(d);
	if (p == MAP_FAILED || ((const struct stats_block *)p)->magic != STATS_MAGIC) {
		if (p != MAP_FAILED)
			munmap(p, sizeof *stats);
		snprintf(err, errlen, "pid %ld has no acceptd statistics", pid);
		return NULL;
	}
	return p;
}

int
stats_print_status(long pid, FILE *out)
{
	const struct stats_block *b;
	char err[300];
	uint64_t up;

	if (!(b = stats_attach(pid, err, sizeof err))) {
		fprintf(stderr, "acceptd: status: %s\n", err);
		return -1;
	}
	up = (uint64_t)time(NULL) - b->start_time;
	fprintf(out, "acceptd master %ld: up %lluh%02llum%02llus, %llu workers, "
	    "reloads %llu ok / %llu failed, worker restarts %llu\n", pid,
	    (unsigned long long)(up / 3600), (unsigned long long)(up / 60 % 60),
	    (unsigned long long)(up % 60), (unsigned long long)b->workers,
	    (unsigned long long)b->reloads_ok, (unsigned long long)b->reloads_failed,
	    (unsigned long long)b->worker_restarts);
	fprintf(out, "%-16s %6s %12s %8s %12s %10s %10s %10s\n", "listener", "worker",
	    "accepted", "active", "closed", "rejected", "proxy_err", "acc_err");
	for (uint64_t i = 0; i < b->nlisteners; i++)
		for (uint64_t w = 0; w < b->nworkers_seen; w++) {
			const struct stats_counters *c = &b->c[w][i];
			uint64_t errs = 0;

			for (int e = 0; e < STATS_NERRNO; e++)
				errs += c->accept_errors[e];
			fprintf(out, "%-16s %6llu %12llu %8llu %12llu %10llu %10llu %10llu\n",
			    b->names[i], (unsigned long long)w, (unsigned long long)c->accepted,
			    (unsigned long long)c->active, (unsigned long long)c->closed,
			    (unsigned long long)(c->rejected_limit + c->rejected_acl),
			    (unsigned long long)c->proxy_errors, (unsigned long long)errs);
		}
	munmap((void *)b, sizeof *stats);
	return 0;
}
