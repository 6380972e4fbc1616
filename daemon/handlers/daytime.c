/* daytime: the RFC 867 daytime service: one line of local time, then close.
 * RFC 867 fixes no syntax; ours is "Weekday, Month DD, YYYY HH:MM:SS-ZONE". */
#include <errno.h>
#include <time.h>

#include "conn.h"
#include "handler.h"
#include "log.h"

/* Input is ignored (conn.c discards it once closing after write). */
static size_t
daytime_read(struct conn *c, const char *buf, size_t len)
{
	return len;
}

static const struct conn_ops daytime_ops = { .read = daytime_read };

static void
daytime_accept(void *conf, const struct handler_conn *hc)
{
	char line[128];
	struct conn *c;
	struct tm tm;
	time_t now = time(NULL);
	size_t n;

	if ((c = conn_new(hc->loop, hc->fd, &daytime_ops, NULL)) == NULL) {
		log_warn("%s: connection dropped", hc->listener);
		return;
	}
	/* The daemon never calls setlocale(), so names are the C locale's. */
	localtime_r(&now, &tm);
	n = strftime(line, sizeof line, "%A, %B %d, %Y %H:%M:%S-%Z\r\n", &tm);
	/* After -1 c is gone: conn_close ran outside any callback. */
	if (conn_write(c, line, n) == 0)
		conn_close_after_write(c);
}

const struct handler handler_daytime = {
	.name = "daytime",
	.accept = daytime_accept,
};
