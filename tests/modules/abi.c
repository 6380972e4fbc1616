/* abi: a module built for a future, incompatible acceptd (ABI 99.0): the
 * daemon must refuse it. */
#include <acceptd/module.h>

static void
abi_accept(void *conf, const struct acceptd_accept *a)
{
}

static const struct acceptd_handler abi_handler = {
	ACCEPTD_HANDLER_V1, .name = "future", .accept = abi_accept,
};
static const struct acceptd_handler *const abi_handlers[] = { &abi_handler, NULL };

const struct acceptd_module acceptd_module = {
	.magic = ACCEPTD_MODULE_MAGIC,
	.abi_major = 99,
	.abi_minor = 0,
	.size = sizeof(struct acceptd_module),
	.name = "abi",
	.handlers = abi_handlers,
};
