/* modload: a module's shared object opened (dlopen RTLD_NOW|RTLD_LOCAL)
 * and its descriptor found; checking and registering it is handler.c's.
 * Apart because <link.h> (for the symbol's size) and <ev.h> collide. */
#ifndef ACCEPTD_MODLOAD_H
#define ACCEPTD_MODLOAD_H

#include <stddef.h>

struct acceptd_module;

/* 0 with *dl and *desc, or -1 with the reason ("PATH: ...") in err. */
int modload_open(const char *path, void **dl, const struct acceptd_module **desc,
    char *err, size_t errlen);
void modload_close(void *dl);

#endif
