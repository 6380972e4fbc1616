/* handler: the registry of handlers by name. Built-ins are listed here;
 * modules (a later issue) will register through the same table. */
#include <string.h>

#include "handler.h"

static const struct handler *const handler_builtins[] = {
	&handler_echo, &handler_discard, &handler_daytime, &handler_chargen,
	&handler_http,
};

const struct handler *
handler_find(const char *name)
{
	for (size_t i = 0; i < sizeof handler_builtins / sizeof *handler_builtins; i++)
		if (strcmp(handler_builtins[i]->name, name) == 0)
			return handler_builtins[i];
	return NULL;
}

const char *
handler_builtin_names(void)
{
	return "echo discard daytime chargen http";
}
