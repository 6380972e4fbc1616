/* discard: the RFC 863 discard service: read everything, answer nothing,
 * until the peer closes. */
#include <acceptd/module.h>

#include "handler.h"

static size_t
discard_read(struct acceptd_conn *c, const char *buf, size_t len)
{
	return len;
}

static const struct acceptd_conn_ops discard_ops = { .read = discard_read };

static void
discard_accept(void *conf, const struct acceptd_accept *a)
{
	a->listener->api->conn_new(a, &discard_ops, NULL);
}

const struct acceptd_handler handler_discard = {
	ACCEPTD_HANDLER_V1,
	.name = "discard",
	.accept = discard_accept,
};
