/* harness: run the real acceptd binary ($ACCEPTD) from a config text in a
 * temp dir, read its log, talk to it over loopback and unix sockets, and
 * make sure nothing it started outlives the test.
 *
 * Every wait is bounded. Every test socket is close-on-exec, so a daemon
 * spawned later never inherits (and keeps open) a client connection.
 *
 * Cleanup works on three levels, so a failing test (Check _exit()s the
 * test process on a failed assertion) leaves nothing behind:
 *  - hd_free() kills the master, the workers and the spawned process by pid
 *    (SIGKILL), reaps them and removes the temp dir;
 *  - a foreground master gets PR_SET_PDEATHSIG(SIGKILL) towards the test
 *    process, and the test process is a child subreaper, so orphans
 *    (workers, a daemonized master) stay its descendants;
 *  - h_main() (each test binary's main) runs the suite with every temp dir
 *    under one base dir, then kills whatever is still its child or is named
 *    in a log of that base dir, and removes the base dir. */
#ifndef ACCEPTD_TEST_HARNESS_H
#define ACCEPTD_TEST_HARNESS_H

/* what every test file uses anyway */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>

/* Bound for things that must happen (they usually take milliseconds). */
#define H_WAIT_MS 10000
/* Window in which something must NOT happen (no answer, no exit). */
#define H_QUIET_MS 300

/* One daemon under test and its temp dir. */
struct hd {
	char dir[192];          /* mkdtemp'd; no trailing slash */
	char conf[224];         /* DIR/acceptd.conf */
	char log[224];          /* DIR/log: the daemon's stderr and stdout */
	pid_t child;            /* the process we forked: the master under -f */
	pid_t master;           /* from "master ready (pid N)", or -1 */
	int status;             /* child's wait status, once reaped */
	int reaped;
	char *out, *err;        /* stdout and stderr of the last hd_run() */
};

/* The binary under test: $ACCEPTD, else build/acceptd. */
const char *h_acceptd(void);
/* A test binary's main: runs the suite (CK_ENV verbosity), cleans up,
 * returns the exit status (0: every test passed). */
int h_main(Suite *s);

/* A new temp dir (nothing written yet). */
struct hd *hd_new(void);
/* Writes DIR/acceptd.conf from a printf format; every "@DIR@" in the
 * result is replaced by the temp dir. */
void hd_conf(struct hd *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* DIR/name into out. */
void hd_path(const struct hd *d, const char *name, char *out, size_t n);
/* Fork and exec $ACCEPTD with these arguments (NULL-terminated), output to
 * the log. Does not wait. */
pid_t hd_spawn(struct hd *d, ...) __attribute__((sentinel));
/* Like hd_spawn, but any program: argv[0] is its path (e.g. a wrapper such
 * as systemd-socket-activate that execs $ACCEPTD in its own place). */
pid_t hd_spawn_argv(struct hd *d, char *const argv[]);
/* hd_spawn(d, "-f", "-c", conf) and wait for "master ready": asserts. */
void hd_start(struct hd *d);
/* hd_new + hd_conf + hd_start. */
struct hd *hd_up(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wait (bounded) for "master ready"; sets d->master. 0 when the spawned
 * process exited first or the wait ran out. */
int hd_wait_ready(struct hd *d, int ms);
/* Run $ACCEPTD with these arguments to completion (bounded: killed after
 * H_WAIT_MS), stdout into d->out and stderr into d->err. Returns the exit
 * status, 128+N when killed by signal N, -1 when it had to be killed. */
int hd_run(struct hd *d, ...) __attribute__((sentinel));
/* Kill everything the daemon started (SIGKILL), reap, remove the dir. */
void hd_free(struct hd *d);

/* The whole log, NUL-terminated (malloc'd; "" when none). */
char *hd_log(const struct hd *d);
/* Print the log to stderr (when a test fails). */
void hd_dump(const struct hd *d);
/* The log contains the formatted text. */
int hd_log_has(const struct hd *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* How often the log contains needle. */
int hd_log_count(const struct hd *d, const char *needle);
/* Wait (bounded) until the log contains needle at least n times. */
int hd_wait_log(const struct hd *d, const char *needle, int n, int ms);
/* The port of the first "listening: NAME ADDR" line (-1: none). */
int hd_port(const struct hd *d, const char *name);
/* The pid of the newest "worker N started (pid P)" line (-1: none). */
pid_t hd_worker(const struct hd *d, int n);
/* Wait (bounded) for the spawned process to exit; 1 if it did (d->status). */
int hd_wait_exit(struct hd *d, int ms);
/* The spawned process exited with status code (asserts; dumps the log). */
void hd_assert_exit(struct hd *d, int code, int ms);
/* Signal the master. */
void hd_kill(const struct hd *d, int sig);

#define hd_assert(d, cond, ...) do { \
	if (!(cond)) { hd_dump(d); ck_abort_msg(__VA_ARGS__); } \
} while (0)

/* Clients. where is "127.0.0.1", "::1" (any IP literal) or "unix:/path".
 * The fd is blocking and close-on-exec; -1 with errno on failure. */
int h_connect(const char *where, int port);
int h_send_all(int fd, const void *buf, size_t len);
int h_send_str(int fd, const char *s);
/* Read up to len bytes, stopping at EOF, error or after ms: bytes read. */
ssize_t h_recv_exact(int fd, void *buf, size_t len, int ms);
/* Read until the peer closes (the rest beyond cap is dropped): the bytes
 * kept, or -1 if it did not close within ms. */
ssize_t h_recv_until_close(int fd, void *buf, size_t cap, int ms);
/* 1 when the peer closed (EOF or reset) within ms, input discarded. */
int h_wait_closed(int fd, int ms);
/* 1 when nothing at all (no data, no EOF) arrives within ms. */
int h_quiet(int fd, int ms);
/* Send msg on fd and read the same bytes back: 1 if they came. */
int h_echo(int fd, const char *msg);
/* Connect, echo one message, close: 1 if it worked. */
int h_echo_at(const char *where, int port);
/* Read one HTTP response (head into head, NUL-terminated; body by its
 * Content-Length): the body length, -1 when no complete response came. */
ssize_t h_http_read(int fd, int *status, char *head, size_t headcap, char *body, size_t cap);
/* One HTTP/1.1 GET on fd: returns the body length (body NUL-terminated),
 * the status code in *status; -1 when no complete response came. */
ssize_t h_http_get(int fd, const char *path, int *status, char *body, size_t cap);

/* A TCP port free on 127.0.0.1 right now (bound to port 0 and closed). */
int h_free_port(void);
/* 1 if a socket can bind and listen on 127.0.0.1:port now (no
 * SO_REUSEADDR: a listener anywhere on the port makes this 0). */
int h_port_bindable(int port);
/* A listening socket on 127.0.0.1:port, port 0 for any; *port is set. */
int h_listen_tcp(int *port);
/* 1 if ::1 can be bound here. */
int h_have_ipv6(void);

/* Processes. */
int h_alive(pid_t pid);                 /* exists and is not a zombie */
int h_wait_gone(pid_t pid, int ms);     /* 1 once gone (reaped if ours) */
/* /proc/PID/cmdline, NULs as spaces, trailing ones dropped; -1 if none. */
int h_cmdline(pid_t pid, char *buf, size_t n);
/* The value of a /proc/PID/status field ("Uid", "Gid"); -1 if none. */
int h_proc_status(pid_t pid, const char *field, char *buf, size_t n);
pid_t h_ppid(pid_t pid);
/* Live (non-zombie) children of ppid, up to max: how many. */
int h_children(pid_t ppid, pid_t *out, int max);
/* Wait for pid, our child or not, to exit; 1 if it did. *status is its
 * wait status when it was ours, else -1. */
int h_wait_exit_pid(pid_t pid, int ms, int *status);
/* Milliseconds on the monotonic clock. */
long long h_now_ms(void);

/* ---- load: short connections in a loop, every failure counted ---- */

/* Client processes (forked: no threads to link against; each dies with
 * the test process). Each loops: connect, one echo exchange (a message
 * unique to the connection), close. A failure is any of: connect refused,
 * reset or timed out, a send error, a reply that is short (EOF, reset,
 * timeout) or wrong. */
#define H_LOAD_MAX_CLIENTS 16
#define H_LOAD_MAX_FAILS 512
/* How long a client waits for its echo before counting a timeout. */
#define H_LOAD_REPLY_MS 5000

struct h_load_fail {
	long long start_ms;     /* h_now_ms() when its connect() began */
	long long end_ms;       /* when it failed */
	int err;                /* errno, 0 for EOF or a wrong reply */
	int client;
	char what[16];          /* "connect", "send", "eof", "reset", "timeout", "mismatch", ... */
};

struct h_load_stats {
	long tried, ok, failed;
	long refused, reset, timeout, short_reply, other;
};

struct h_load;

/* Start nclients (1..H_LOAD_MAX_CLIENTS) clients on where/port (as
 * h_connect takes them). Returns at once. */
struct h_load *h_load_start(const char *where, int port, int nclients);
/* Totals so far (the load may still run). */
void h_load_stats(const struct h_load *l, struct h_load_stats *s);
/* Wait (bounded) until `more` exchanges more than now have succeeded: 1 if so. */
int h_load_progress(const struct h_load *l, long more, int ms);
/* Failures whose connect began at or after t_ms (h_now_ms clock). */
long h_load_fails_since(const struct h_load *l, long long t_ms);
/* A one-line summary and the first failures, for an assertion message. */
void h_load_describe(const struct h_load *l, char *buf, size_t n);
/* Stop the clients (each finishes its exchange), wait for them (bounded;
 * killed if need be). Stats stay readable until h_load_free. */
void h_load_stop(struct h_load *l);
void h_load_free(struct h_load *l);

/* ---- what the operating system sees of a process ---- */

/* utime + stime from /proc/PID/stat, in milliseconds; -1 if none. */
long h_proc_cpu_ms(pid_t pid);
/* Open fds (/proc/PID/fd entries); -1 if none. */
int h_proc_fds(pid_t pid);
/* VmRSS in kB; -1 if none. */
long h_proc_rss_kb(pid_t pid);
/* Live children of master whose title (cmdline) is "acceptd: worker N":
 * how many; their pids and Ns into pids/idx (either may be NULL) up to max. */
int h_workers(pid_t master, pid_t *pids, int *idx, int max);
/* Wait (bounded) until master has exactly n such children with the
 * indexes 0..n-1: 1 if so. */
int h_wait_workers(pid_t master, int n, int ms);

#endif
