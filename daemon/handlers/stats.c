/* stats: the daemon's counters for Prometheus: GET /metrics answers the
 * text exposition format (0.0.4); anything else gets 404, 405 or 400. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <acceptd/module.h>

#include "handler.h"
#include "handlers/http.h"

static const struct acceptd_api *stats_api;

/* HEAD gets the same Content-Length as GET, and no body (RFC 9110 8.6). */
static void
stats_reply(struct acceptd_conn *c, const char *status, const char *type,
    const char *body, size_t len, int head)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof hdr, "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, type, len);

	/* one request per connection: scrapers open one per scrape anyway */
	if (stats_api->conn_write(c, hdr, n) == 0 &&
	    (head || stats_api->conn_write(c, body, len) == 0))
		stats_api->conn_close_after_write(c);
}

static size_t
stats_read(struct acceptd_conn *c, const char *buf, size_t len)
{
	struct http_req req;
	long n = http_parse(buf, len, &req);
	size_t need, cap = 64 * 1024;
	char *body = NULL;

	if (n == 0)
		return 0;       /* the helper keeps the bytes: more to come */
	if (n < 0) {
		stats_reply(c, "400 Bad Request", "text/plain", "bad request\n", 12, 0);
		return len;
	}
	if (!(req.target_len == 8 && memcmp(req.target, "/metrics", 8) == 0)) {
		stats_reply(c, "404 Not Found", "text/plain", "not found: try /metrics\n", 24, req.head);
		return len;
	}
	if (!(req.method_len == 3 && memcmp(req.method, "GET", 3) == 0) && !req.head) {
		stats_reply(c, "405 Method Not Allowed", "text/plain", "GET only\n", 9, 0);
		return len;
	}
	/* The size is only known after formatting: try, then grow once. */
	for (int tries = 0; tries < 3; tries++) {
		char *b = realloc(body, cap);

		if (!b)
			break;
		body = b;
		need = stats_api->metrics(body, cap);
		if (need < cap) {
			stats_reply(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8",
			    body, need, req.head);
			free(body);
			return len;
		}
		cap = need + 4096;
	}
	free(body);
	stats_reply(c, "503 Service Unavailable", "text/plain", "out of memory\n", 14, 0);
	return len;
}

static const struct acceptd_conn_ops stats_ops = { .read = stats_read };

static void
stats_accept(void *conf, const struct acceptd_accept *a)
{
	stats_api = a->listener->api;
	stats_api->conn_new(a, &stats_ops, NULL);
}

const struct acceptd_handler handler_stats = {
	ACCEPTD_HANDLER_V1,
	.name = "stats",
	.accept = stats_accept,
};
