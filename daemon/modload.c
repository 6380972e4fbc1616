/* modload: a module's shared object opened (dlopen RTLD_NOW|RTLD_LOCAL)
 * and its descriptor found; checking and registering it is handler.c's.
 * Apart because <link.h> (for the symbol's size) and <ev.h> collide. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <acceptd/module.h>

#include "modload.h"

int
modload_open(const char *path, void **dlp, const struct acceptd_module **descp,
    char *err, size_t errlen)
{
	const struct acceptd_module *desc;
	const ElfW(Sym) *sym = NULL;
	struct stat st;
	Dl_info info;
	void *dl;

	/* dlopen's own message for a missing file is less clear than this. */
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	/* code we run, writable by anyone: refused, as the file naming it is */
	if (st.st_mode & S_IWOTH) {
		snprintf(err, errlen, "%s: writable by others (mode %04o): refusing it; "
		    "chmod o-w it", path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	(void)dlerror();
	if (!(dl = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
		snprintf(err, errlen, "cannot load: %s", dlerror());
		return -1;
	}
	if (!(desc = dlsym(dl, ACCEPTD_MODULE_SYMBOL))) {
		dlclose(dl);
		snprintf(err, errlen, "%s is not an acceptd module (it has no symbol '%s')", path,
		    ACCEPTD_MODULE_SYMBOL);
		return -1;
	}
	/* The symbol must at least hold the magic, the version and the size:
	 * a stray int of that name must not have us read past it. */
	if (dladdr1(desc, &info, (void **)&sym, RTLD_DL_SYMENT) && sym && sym->st_size &&
	    sym->st_size < offsetof(struct acceptd_module, size) + sizeof(size_t)) {
		dlclose(dl);
		snprintf(err, errlen, "%s is not an acceptd module ('%s' is only %zu bytes)", path,
		    ACCEPTD_MODULE_SYMBOL, (size_t)sym->st_size);
		return -1;
	}
	*dlp = dl;
	*descp = desc;
	return 0;
}

void
modload_close(void *dl)
{
	if (dl)
		dlclose(dl);
}
