/* daytime: the RFC 867 daytime service: one line of local time, then close.
 * RFC 867 fixes no syntax; ours is "Weekday, Month DD, YYYY HH:MM:SS-ZONE". */
#include <time.h>

#include <acceptd/module.h>

#include "handler.h"

/* Input is ignored (the helper discards it once closing after write). */
static size_t
daytime_read(struct acceptd_conn *c, const char *buf, size_t len)
{
	return len;
}

static const struct acceptd_conn_ops daytime_ops = { .read = daytime_read };

static void
daytime_accept(void *conf, const struct acceptd_accept *a)
{
	const struct acceptd_api *api = a->listener->api;
	char line[128];
	struct acceptd_conn *c;
	struct tm tm;
	time_t now = time(NULL);
	size_t n;

	if ((c = api->conn_new(a, &daytime_ops, NULL)) == NULL)
		return;
	/* The daemon never calls setlocale(), so names are the C locale's. */
	localtime_r(&now, &tm);
	n = strftime(line, sizeof line, "%A, %B %d, %Y %H:%M:%S-%Z\r\n", &tm);
	/* After -1 c is gone: conn_close ran outside any callback. */
	if (api->conn_write(c, line, n) == 0)
		api->conn_close_after_write(c);
}

const struct acceptd_handler handler_daytime = {
	ACCEPTD_HANDLER_V1,
	.name = "daytime",
	.accept = daytime_accept,
};
