/* discard: the RFC 863 discard service: read everything, answer nothing,
 * until the peer closes. */
#include <errno.h>

#include "conn.h"
#include "handler.h"
#include "log.h"

static size_t
discard_read(struct conn *c, const char *buf, size_t len)
{
	return len;
}

static const struct conn_ops discard_ops = { .read = discard_read };

static void
discard_accept(void *conf, const struct handler_conn *hc)
{
	if (conn_new(hc->loop, hc->fd, &discard_ops, NULL) == NULL)
		log_warn("%s: connection dropped", hc->listener);
}

const struct handler handler_discard = {
	.name = "discard",
	.accept = discard_accept,
};
