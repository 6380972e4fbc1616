/* listen: a listener's sockets, bound as Tornado's bind_sockets() binds:
 * one per resolved address (times the reuseport copies), or a unix path. */
#ifndef ACCEPTD_LISTEN_H
#define ACCEPTD_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

struct conf_listener;
struct activate_set;

struct listen_sock {
	int fd;
	struct sockaddr_storage ss;  /* as bound: the real port when port = 0 */
	socklen_t len;
	int inherited;               /* systemd's: its unix path is not ours */
};

/* socks[k * naddrs + a]: address a, reuseport copy k (copies = 1 unless
 * the listener uses SO_REUSEPORT, then one per worker). Copy-major, so
 * copies are added and dropped at the end as workers come and go. */
struct listen_set {
	struct listen_sock *socks;
	int naddrs, copies;
};

/* Bind every socket of l. 0, or -1 with "listener NAME: op ADDR: reason"
 * in err and nothing left open. */
int listen_bind(const struct conf_listener *l, int copies, struct listen_set *out,
    char *err, size_t errlen);
/* The same, but a slot that pool (systemd's sockets, or an older master's
 * on binary upgrade; may be NULL) has a socket for takes it unbound. */
int listen_bind_pool(const struct conf_listener *l, int copies, struct listen_set *out,
    struct activate_set *pool, char *err, size_t errlen);
/* The socket worker w watches for address a. */
struct listen_sock *listen_sock_for(struct listen_set *s, int a, int w);
/* Apply what may change on a bound socket (backlog, keepalive,
 * defer_accept, fastopen) from l: a reload that keeps the socket. Not to
 * an inherited socket: its unit set its options. */
int listen_update(const struct conf_listener *l, struct listen_set *s, char *err,
    size_t errlen);
/* Whether a reload may keep old's sockets for l: same addresses, port and
 * the options fixed at bind time. */
int listen_same(const struct conf_listener *old, const struct conf_listener *l);
/* One more reuseport copy of every address, on the port already bound. */
int listen_add_copy(const struct conf_listener *l, struct listen_set *s,
    char *err, size_t errlen);
/* Close the last copy (after its worker has drained it). */
void listen_drop_copy(struct listen_set *s);
/* Steer new connections of the reuseport group to copies 0..n-1 only, so
 * copies n.. can drain their queues and close without resetting anything;
 * n >= copies lifts the steering. 0, or -1 with errno. */
int listen_steer(struct listen_set *s, int n);
/* Close every socket; unlink_unix also removes a unix socket's file. */
void listen_close(struct listen_set *s, int unlink_unix);
/* An inet address's port, host order (-1: not inet); set it (inet only). */
int listen_get_port(const struct sockaddr_storage *ss);
void listen_set_port(struct sockaddr_storage *ss, int port);

#endif
