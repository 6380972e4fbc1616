/* refuse: a module whose handler "refuse" refuses its configuration: any
 * `mood` but "fine" fails conf_set, and a missing one fails conf_check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <acceptd/module.h>

struct refuse_conf {
	int fine;
};

static void *
refuse_conf_new(const struct acceptd_listener *l)
{
	return calloc(1, sizeof(struct refuse_conf));
}

static int
refuse_conf_set(void *conf, const char *key, const char *value, char *err, size_t errlen)
{
	if (strcmp(key, "mood") != 0)
		return ACCEPTD_KEY_UNKNOWN;
	if (strcmp(value, "fine") != 0) {
		snprintf(err, errlen, "refused on purpose: '%s'", value);
		return -1;
	}
	((struct refuse_conf *)conf)->fine = 1;
	return 0;
}

static int
refuse_conf_check(void *conf, char *err, size_t errlen)
{
	if (((struct refuse_conf *)conf)->fine)
		return 0;
	snprintf(err, errlen, "refuse: mood = fine is required");
	return -1;
}

static void
refuse_accept(void *conf, const struct acceptd_accept *a)
{
	close(a->fd);
	a->listener->api->conn_done(a->listener);
}

static const struct acceptd_handler refuse_handler = {
	ACCEPTD_HANDLER_V1,
	.name = "refuse",
	.conf_new = refuse_conf_new,
	.conf_set = refuse_conf_set,
	.conf_check = refuse_conf_check,
	.conf_free = free,
	.accept = refuse_accept,
};
static const struct acceptd_handler *const refuse_handlers[] = { &refuse_handler, NULL };

const struct acceptd_module acceptd_module = {
	ACCEPTD_MODULE_V1, .name = "refuse", .handlers = refuse_handlers,
};
