/* echo: the RFC 862 echo service: every byte read is written back, with
 * the connection helper's back-pressure bounding what a peer that never
 * reads can cost. */
#include <acceptd/module.h>

#include "handler.h"

static const struct acceptd_api *echo_api;

static size_t
echo_read(struct acceptd_conn *c, const char *buf, size_t len)
{
	/* Blocked: consume nothing; the helper keeps the bytes and offers
	 * them again once the peer has taken some output. */
	if (echo_api->conn_blocked(c))
		return 0;
	(void)echo_api->conn_write(c, buf, len); /* -1: c is closing, nothing to undo */
	return len;
}

static const struct acceptd_conn_ops echo_ops = { .read = echo_read };

static void
echo_accept(void *conf, const struct acceptd_accept *a)
{
	echo_api = a->listener->api;
	echo_api->conn_new(a, &echo_ops, NULL);
}

const struct acceptd_handler handler_echo = {
	ACCEPTD_HANDLER_V1,
	.name = "echo",
	.accept = echo_accept,
};
