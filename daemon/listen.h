/* listen: a listener's sockets, bound as Tornado's bind_sockets() binds:
 * one per resolved address (times the reuseport copies), or a unix path. */
#ifndef ACCEPTD_LISTEN_H
#define ACCEPTD_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

struct conf_listener;

struct listen_sock {
	int fd;
	struct sockaddr_storage ss;  /* as bound: the real port when port = 0 */
	socklen_t len;
};

/* socks[a * copies + k]: address a, reuseport copy k (copies = 1 unless
 * the listener uses SO_REUSEPORT, then one per worker). */
struct listen_set {
	struct listen_sock *socks;
	int naddrs, copies;
};

/* Bind every socket of l. 0, or -1 with "listener NAME: op ADDR: reason"
 * in err and nothing left open. */
int listen_bind(const struct conf_listener *l, int copies, struct listen_set *out,
    char *err, size_t errlen);
/* The socket worker w watches for address a. */
struct listen_sock *listen_sock_for(struct listen_set *s, int a, int w);
/* Close every socket; unlink_unix also removes a unix socket's file. */
void listen_close(struct listen_set *s, int unlink_unix);

#endif
