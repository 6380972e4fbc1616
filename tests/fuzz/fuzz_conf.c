/* libFuzzer target: the config loader, a whole file in (handler keys
 * included), through conf_load exactly as acceptd -t reads it, then
 * conf_dump of whatever loads. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/mman.h>

#include "conf.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Host names would go to the resolver (slow, and off the machine): only
 * numeric addresses and "localhost" are resolved while fuzzing. This
 * definition takes the place of libc's for the code linked in here. */
int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
    struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *,
	    struct addrinfo **);
	struct addrinfo h = *hints;

	if (!real)
		real = (int (*)(const char *, const char *, const struct addrinfo *,
		    struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
	if (node && strcmp(node, "localhost") != 0)
		h.ai_flags |= AI_NUMERICHOST;
	return real(node, service, &h, res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	static FILE *null;
	char err[512];
	struct conf *c;

	if (fd < 0) {
		/* warnings (backlog over somaxconn) would flood the output */
		log_setup(0, LOG_LEVEL_ERROR);
		/* 0600: conf_load refuses a file writable by others (memfds
		 * start as 0777) */
		if ((fd = memfd_create("acceptd-fuzz.conf", MFD_CLOEXEC)) < 0 || fchmod(fd, 0600) < 0)
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		null = fopen("/dev/null", "w");
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	err[0] = '\0';
	if ((c = conf_load(path, err, sizeof err)) != NULL) {
		conf_dump(c, null);
		conf_free(c);
	} else if (strncmp(err, path, strlen(path)) != 0) {
		/* every refusal names the file */
		fprintf(stderr, "error without the file name: %s\n", err);
		abort();
	}
	return 0;
}
