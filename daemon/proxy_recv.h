/* proxy_recv: the PROXY protocol header read off a new connection before
 * its listener's handler sees it (proxy_protocol = v1 | v2 | any). */
#ifndef ACCEPTD_PROXY_RECV_H
#define ACCEPTD_PROXY_RECV_H

#include <sys/socket.h>

struct conf_listener;
struct ev_loop;

/* How long a peer has to send its whole header. */
#define PROXY_RECV_TIMEOUT 3.0

/* Read the header, then hand the connection on with the addresses it
 * carries (handler_handoff); a missing, malformed or late header closes it
 * and counts it. Takes fd. */
void proxy_recv_start(const struct conf_listener *l, struct ev_loop *loop, int fd,
    const struct sockaddr *peer, socklen_t peer_len, const struct sockaddr *local,
    socklen_t local_len);

#endif
