/* echo: the RFC 862 echo service: every byte read is written back, with
 * conn.c's back-pressure bounding what a peer that never reads can cost. */
#include <errno.h>

#include "conn.h"
#include "handler.h"
#include "log.h"

static size_t
echo_read(struct conn *c, const char *buf, size_t len)
{
	/* Blocked: consume nothing; conn.c keeps the bytes and offers them
	 * again once the peer has taken some output. */
	if (conn_blocked(c))
		return 0;
	(void)conn_write(c, buf, len); /* -1: c is closing, nothing to undo */
	return len;
}

static const struct conn_ops echo_ops = { .read = echo_read };

static void
echo_accept(void *conf, const struct handler_conn *hc)
{
	if (conn_new(hc->loop, hc->fd, &echo_ops, NULL) == NULL)
		log_warn("%s: connection dropped", hc->listener);
}

const struct handler handler_echo = {
	.name = "echo",
	.accept = echo_accept,
};
