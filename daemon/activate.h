/* activate: systemd socket activation: the sockets inherited through
 * LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES, and which listener each one serves. */
#ifndef ACCEPTD_ACTIVATE_H
#define ACCEPTD_ACTIVATE_H

#include <stddef.h>
#include <sys/socket.h>

struct conf;
struct conf_listener;

/*
 * How the master uses it (master.c, master_conf_adjust and master_gen_bind):
 *
 *   activate_take(&act, err, sizeof err)    at start-up: LISTEN_* taken in;
 *   activate_match(&act, conf, ...)         at start-up and on every reload,
 *       all or nothing: which listener each inherited socket serves;
 *   activate_by_name(&act, l, socks, n)     a listener the unit names
 *       (FileDescriptorName=) is served by exactly those sockets: their
 *       addresses replace l->addrs, and the master binds none of its own;
 *   activate_copies(&act, l, workers, &why) == 1 for a reuseport listener
 *       with an inherited socket that lacks SO_REUSEPORT: it runs shared,
 *       and the log says so (activate_describe(why)).
 *
 * Then listen_bind_pool() binds each listener, asking activate_take_slot()
 * for every slot (address, reuseport copy) first: an inherited socket
 * there is taken (listen_sock.inherited: the unit's, so its unix path is
 * never unlinked), -2 means an inherited dual-stack [::] covers 0.0.0.0,
 * and otherwise the master binds the slot itself. Reuseport copies beyond
 * the inherited one are bound by the master before it drops privileges
 * (the kernel groups SO_REUSEPORT sockets of one effective uid only).
 *
 * Inherited sockets keep the options systemd gave them (Backlog=,
 * KeepAlive=, DeferAcceptSec=, FastOpen=, ReusePort= in the .socket unit),
 * at start and through reloads (listen_update skips them); the [listener]
 * keys of the same names apply to sockets the master binds. activate_take()
 * makes them close-on-exec and non-blocking (the accept loop stops on
 * EAGAIN). Closing an inherited fd in the master is fine: systemd keeps its
 * own copy, and connections arriving meanwhile wait in its queue.
 *
 * A binary upgrade hands every listening socket to the new master, which
 * takes them with activate_take_upgrade() into a second set, used the same
 * way; activate_close_unused() then closes what no listener took.
 * activate_free() at exit (it frees memory, it does not close fds).
 */

struct activate_sock {
	int fd;                          /* 3, 4, ... */
	char *name;                      /* its LISTEN_FDNAMES entry, "" without */
	struct sockaddr_storage ss;      /* getsockname(); AF_UNSPEC if not a socket */
	socklen_t len;
	int type;                        /* SO_TYPE: SOCK_STREAM, ...; 0 if unknown */
	int listening;                   /* SO_ACCEPTCONN: listen() was called */
	int reuseport;                   /* SO_REUSEPORT is on */
	int v6only;                      /* IPV6_V6ONLY (AF_INET6 only) */
	int copy;                        /* reuseport copy (binary upgrade), else 0 */
	int upgrade;                     /* from an older master, not systemd */
	int used;                        /* taken by activate_take_slot() */
	/* Set by activate_match(): */
	const struct conf_listener *listener;
	int by_name;                     /* matched by its name, not its address */
	int addr;                        /* its index in listener->addrs, -1 if none */
};

struct activate_set {
	struct activate_sock *socks;
	int n;
	struct activate_set *next;       /* activate_take_slot() looks there too */
};

enum activate_slot { ACTIVATE_BIND, ACTIVATE_INHERITED, ACTIVATE_COVERED };

/* Take the sockets systemd passed, if LISTEN_PID is this process: LISTEN_FDS
 * of them from fd 3 up, named by LISTEN_FDNAMES (colon-separated, optional;
 * when set it must have one name per socket). The three variables are
 * removed from the environment whatever they say, so no child sees them.
 * Returns the number of sockets (0: not socket-activated; err then says why
 * when the variables were there but are not for us, else ""), or -1 with the
 * reason in err. out is always initialised; activate_free() it. */
int activate_take(struct activate_set *out, char *err, size_t errlen);

/* Assign every inherited socket to a listener of conf: the one whose name
 * equals its LISTEN_FDNAMES entry, else the one with the same resolved
 * address and port (a port 0 listener matches by name only). 0, or -1 with
 * "inherited socket 3 (name 'x', 127.0.0.1:8080) matches no listener" (or
 * "is not a listening stream socket", or a duplicate) in err, and then the
 * previous assignment is left as it was. */
int activate_match(struct activate_set *s, const struct conf *conf, char *err,
    size_t errlen);

/* The sockets of l when at least one of them was matched by name (then l is
 * served by all its inherited sockets and nothing else): up to max of them
 * into out, in fd order. Returns how many l has, 0 when none is by name
 * (out NULL, max 0: just the count). */
int activate_by_name(const struct activate_set *s, const struct conf_listener *l,
    struct activate_sock **out, int max);

/* For a listener matched by address only: what to do with l->addrs[a].
 * Not used by the daemon (listen_bind_pool asks activate_take_slot); kept
 * with its unit tests until they move to activate_take_slot. */
enum activate_slot activate_slot(const struct activate_set *s,
    const struct conf_listener *l, int a, struct activate_sock **sock);

/* Reuseport copies for l: l->reuseport ? workers : 1, but 1 when one of l's
 * inherited sockets lacks SO_REUSEPORT (*why = that socket; else NULL). */
int activate_copies(const struct activate_set *s, const struct conf_listener *l,
    int workers, struct activate_sock **why);

/* Whether fd is one of the inherited sockets. Not used by the daemon
 * (listen_sock.inherited says it); kept with its unit tests. */
int activate_inherited(const struct activate_set *s, int fd);

/* "inherited socket 3 (name 'web', 127.0.0.1:8080)", for log lines. */
void activate_describe(const struct activate_sock *as, char *buf, size_t n);

/* The sockets an older master handed over on binary upgrade, named in the
 * environment variable ACTIVATE_UPGRADE_ENV as "FD/COPY/NAME,..." (the
 * variable is removed). Returns how many, or -1 with the reason in err. */
#define ACTIVATE_UPGRADE_ENV "ACCEPTD_INHERIT_FDS"
int activate_take_upgrade(struct activate_set *out, char *err, size_t errlen);

/* The inherited socket for reuseport copy `copy` of one of l's addresses
 * (want, with the port already chosen, or port 0 for a port-0 listener,
 * which then matches by listener name): its fd, marked used; -1 when none
 * (bind it); -2 when an inherited dual-stack [::] covers this 0.0.0.0.
 * *foreign: the socket is systemd's, whose unix path we never unlink. */
int activate_take_slot(struct activate_set *s, const struct conf_listener *l,
    const struct sockaddr_storage *want, socklen_t len, int copy, int *foreign);
/* Close the inherited sockets no listener took, logging each. */
void activate_close_unused(struct activate_set *s);

/* Free the set's memory; the descriptors stay open (they are the master's). */
void activate_free(struct activate_set *s);

#endif
