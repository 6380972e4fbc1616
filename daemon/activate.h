/* activate: systemd socket activation: the sockets inherited through
 * LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES, and which listener each one serves. */
#ifndef ACCEPTD_ACTIVATE_H
#define ACCEPTD_ACTIVATE_H

#include <stddef.h>
#include <sys/socket.h>

struct conf;
struct conf_listener;

/*
 * How the master uses it (start-up, before binding anything):
 *
 *   struct activate_set act;
 *   if (activate_take(&act, err, sizeof err) < 0)        -> start-up error
 *   else if (err[0])                                      -> log_debug("%s", err)
 *   if (activate_match(&act, conf, err, sizeof err) < 0) -> start-up error
 *
 * then, for each listener l (conf order) instead of listen_bind(l, ...):
 *
 *   copies = activate_copies(&act, l, conf->workers, &why);
 *       l->reuseport ? workers : 1, except 1 when an inherited socket of l
 *       lacks SO_REUSEPORT: log "listener NAME: inherited socket FD has no
 *       SO_REUSEPORT: shared by all workers" (why says which).
 *
 *   n = activate_by_name(&act, l, socks, max):  n > 0 means the unit names
 *       this listener (FileDescriptorName=NAME), so the unit decides its
 *       addresses: the listen_set is exactly these n sockets, in fd order
 *       (naddrs = n; slot a * copies + 0 = socks[a]->fd) and the master binds
 *       none of l->addrs (they would collide with the unit's sockets).
 *       Note slot a then is not l->addrs[a]: use socks[].ss for addresses.
 *
 *   n == 0: naddrs = l->naddrs as in listen_bind(), and for each address a
 *       activate_slot(&act, l, a, &sock) says what slot a * copies + 0 is:
 *         ACTIVATE_INHERITED  sock->fd, not bound by the master;
 *         ACTIVATE_COVERED    fd -1 (like listen_bind's ipv6only = no case):
 *                             an inherited dual-stack [::]:P already takes
 *                             the IPv4 connections for 0.0.0.0:P;
 *         ACTIVATE_BIND       bind l->addrs[a] as listen_bind() does.
 *       A listener with no inherited socket at all: listen_bind() as usual.
 *
 *   copies > 1 (reuseport, every inherited socket has SO_REUSEPORT): slots
 *       a * copies + 1 .. copies - 1 are new SO_REUSEPORT sockets the master
 *       binds on the inherited socket's address (socks[a]->ss), before
 *       dropping privileges: the kernel only groups SO_REUSEPORT sockets of
 *       the same effective uid, and systemd made the inherited one as root.
 *       If such a bind fails (EADDRINUSE: another uid), close the copies
 *       and run the listener shared (copies = 1), and log so.
 *
 * Inherited sockets keep the options systemd gave them (Backlog=,
 * KeepAlive=, DeferAcceptSec=, FastOpen=, ReusePort= in the .socket unit);
 * the [listener] keys of the same names apply to sockets the master binds.
 * activate_take() makes them close-on-exec and non-blocking (the accept loop
 * stops on EAGAIN).
 *
 * Lifetime: keep the set for the master's life. Never unlink the path of an
 * inherited unix socket (systemd owns it, see RemoveOnStop=): test with
 * activate_inherited(&act, fd) before listen_close(s, 1) unlinks. Closing an
 * inherited fd in the master is fine: systemd keeps its own copy, and
 * connections arriving meanwhile wait in its queue for the next start.
 * On reload (HUP), call activate_match() again with the new conf: it is
 * all-or-nothing, so on failure (a listener that had an inherited socket is
 * gone or moved) the set still describes the old conf: reject the reload.
 * An inherited socket's slot is carried over like a kept bound socket.
 * On binary upgrade the new binary gets them as any other listening socket.
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

/* For a listener matched by address only: what to do with l->addrs[a]. */
enum activate_slot activate_slot(const struct activate_set *s,
    const struct conf_listener *l, int a, struct activate_sock **sock);

/* Reuseport copies for l: l->reuseport ? workers : 1, but 1 when one of l's
 * inherited sockets lacks SO_REUSEPORT (*why = that socket; else NULL). */
int activate_copies(const struct activate_set *s, const struct conf_listener *l,
    int workers, struct activate_sock **why);

/* Whether fd is one of the inherited sockets. */
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
