/* hello: an example acceptd module, built with nothing but the public
 * header:
 *
 *     cc -shared -fPIC $(pkg-config --cflags acceptd) -o hello.so hello.c
 *
 * Handler "hello" greets the peer with one line (key `greeting`, default
 * "hello"), then echoes every line back until the peer closes; "bye" on a
 * line of its own ends the connection. It shows every part of the
 * interface: configuration with a key, start and stop, the connection
 * helper (with back-pressure), and logging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <acceptd/module.h>

struct hello_conf {
	const struct acceptd_listener *l;
	char greeting[128];
	unsigned long served;            /* in this worker */
};

static const struct acceptd_api *api;

static size_t
hello_read(struct acceptd_conn *c, const char *buf, size_t len)
{
	size_t off = 0;

	/* Whole lines only: a partial one stays unconsumed for the next read. */
	while (off < len && !api->conn_blocked(c)) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n;

		if (!nl)
			break;
		n = nl - (buf + off) + 1;
		if ((n == 4 && memcmp(buf + off, "bye\n", 4) == 0) ||
		    (n == 5 && memcmp(buf + off, "bye\r\n", 5) == 0)) {
			if (api->conn_write(c, "bye\n", 4) == 0)
				api->conn_close_after_write(c);
			return len;
		}
		if (api->conn_write(c, buf + off, n) < 0)
			return len;
		off += n;
	}
	return off;
}

/* Drain or reload: say so, then close once that is written. */
static void
hello_stop_conn(struct acceptd_conn *c)
{
	if (api->conn_write(c, "going away\n", 11) == 0)
		api->conn_close_after_write(c);
}

static const struct acceptd_conn_ops hello_ops = {
	.read = hello_read,
	.stop = hello_stop_conn,
};

static void
hello_accept(void *conf, const struct acceptd_accept *a)
{
	struct hello_conf *hc = conf;
	struct acceptd_conn *c;
	char line[160];
	int n;

	if (!(c = api->conn_new(a, &hello_ops, hc)))
		return;         /* the daemon closed and counted it */
	hc->served++;
	n = snprintf(line, sizeof line, "%s\n", hc->greeting);
	(void)api->conn_write(c, line, (size_t)n);
}

static int
hello_start(void *conf, struct ev_loop *loop)
{
	struct hello_conf *hc = conf;

	api->log(hc->l, ACCEPTD_LOG_DEBUG, "hello: started");
	return 0;
}

static void
hello_stop(void *conf)
{
	struct hello_conf *hc = conf;

	api->log(hc->l, ACCEPTD_LOG_DEBUG, "hello: stopping after %lu connections", hc->served);
}

static void *
hello_conf_new(const struct acceptd_listener *l)
{
	struct hello_conf *hc = calloc(1, sizeof *hc);

	/* Every call a module gets leads to the services table. */
	api = l->api;
	if (hc) {
		hc->l = l;
		snprintf(hc->greeting, sizeof hc->greeting, "hello");
	}
	return hc;
}

static int
hello_conf_set(void *conf, const char *key, const char *value, char *err, size_t errlen)
{
	struct hello_conf *hc = conf;

	if (strcmp(key, "greeting") != 0)
		return ACCEPTD_KEY_UNKNOWN;
	if (strlen(value) >= sizeof hc->greeting) {
		snprintf(err, errlen, "longer than %zu characters", sizeof hc->greeting - 1);
		return -1;
	}
	snprintf(hc->greeting, sizeof hc->greeting, "%s", value);
	return 0;
}

static void
hello_conf_dump(const void *conf, FILE *out)
{
	const struct hello_conf *hc = conf;

	fprintf(out, "greeting = %s\n", hc->greeting);
}

static void
hello_conf_free(void *conf)
{
	free(conf);
}

static const struct acceptd_handler hello_handler = {
	ACCEPTD_HANDLER_V1,
	.name = "hello",
	.conf_new = hello_conf_new,
	.conf_set = hello_conf_set,
	.conf_dump = hello_conf_dump,
	.conf_free = hello_conf_free,
	.start = hello_start,
	.accept = hello_accept,
	.stop = hello_stop,
};

static const struct acceptd_handler *const hello_handlers[] = { &hello_handler, NULL };

const struct acceptd_module acceptd_module = {
	ACCEPTD_MODULE_V1,
	.name = "hello",
	.version = "1.0",
	.handlers = hello_handlers,
};
