/* chargen: the RFC 864 character generator: 72-column lines of the 95
 * printable ASCII characters, each line starting one character later. */
#include <acceptd/module.h>

#include "handler.h"

#define CHARGEN_CHARS 95  /* ' ' .. '~': the pattern repeats every 95 lines */
#define CHARGEN_COLS  72
#define CHARGEN_LINE  (CHARGEN_COLS + 2)
/* The table is 9 whole rotations (62 KiB): every refill sends all of it in
 * one send() and ends where the pattern starts again, so a connection
 * needs no position and no allocation. */
#define CHARGEN_ROTATIONS 9

static char chargen_table[CHARGEN_ROTATIONS * CHARGEN_CHARS * CHARGEN_LINE];
static const struct acceptd_api *chargen_api;

static void
chargen_init(void)
{
	char *p = chargen_table;

	for (int l = 0; l < CHARGEN_ROTATIONS * CHARGEN_CHARS; l++) {
		for (int i = 0; i < CHARGEN_COLS; i++)
			*p++ = ' ' + (l + i) % CHARGEN_CHARS;
		*p++ = '\r';
		*p++ = '\n';
	}
}

/* Received data is thrown away, as RFC 864 allows. */
static size_t
chargen_read(struct acceptd_conn *c, const char *buf, size_t len)
{
	return len;
}

/* Called when everything queued is written. A partial send leaves the rest
 * in c->out (at most one table), so output stays bounded. */
static void
chargen_drain(struct acceptd_conn *c)
{
	if (chargen_api->conn_write(c, chargen_table, sizeof chargen_table) == 0)
		chargen_api->conn_want_drain(c);
}

static const struct acceptd_conn_ops chargen_ops = {
	.read = chargen_read,
	.drain = chargen_drain,
};

static int
chargen_start(void *conf, struct ev_loop *loop)
{
	if (chargen_table[0] == 0)
		chargen_init();
	return 0;
}

static void
chargen_accept(void *conf, const struct acceptd_accept *a)
{
	struct acceptd_conn *c;

	chargen_api = a->listener->api;
	if ((c = chargen_api->conn_new(a, &chargen_ops, NULL)) == NULL)
		return;
	/* The first lines go out from the loop once the socket is writable. */
	chargen_api->conn_want_drain(c);
}

const struct acceptd_handler handler_chargen = {
	ACCEPTD_HANDLER_V1,
	.name = "chargen",
	.start = chargen_start,
	.accept = chargen_accept,
};
