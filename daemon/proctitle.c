/* proctitle: the process title ps shows ("acceptd: master", "acceptd:
 * worker N"), written over argv as nginx and PostgreSQL do. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proctitle.h"

extern char **environ;

static char *proctitle_start, *proctitle_end;
/* The environment's copy, kept for the process's life. Its own array of
 * the strings: unsetenv() drops strings from environ, and glibc's exit-time
 * cleanup (__libc_freeres, run under valgrind) clears environ; either way
 * they would show as leaks. volatile: never read, but kept. */
static char **volatile proctitle_env, **volatile proctitle_strings;

/* argv and environ strings are contiguous; the title may use all of it
 * once the environment has been copied elsewhere (getenv keeps working). */
void
proctitle_init(int argc, char **argv)
{
	char *end;
	int i, n = 0;

	if (argc < 1 || !argv[0])
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (i = 1; i < argc && argv[i] == end; i++)
		end += strlen(argv[i]) + 1;
	for (i = 0; environ[i] && environ[i] == end; i++)
		end += strlen(environ[i]) + 1;
	for (n = 0; environ[n]; n++)
		;
	char **env = malloc((n + 1) * sizeof *env);

	if (!env)
		return;
	for (i = 0; i < n; i++)
		if (!(env[i] = strdup(environ[i])))
			return;   /* keep the title as it is; argv stays intact */
	env[n] = NULL;
	if ((proctitle_strings = malloc((n + 1) * sizeof *env)))
		memcpy(proctitle_strings, env, (n + 1) * sizeof *env);
	environ = proctitle_env = env;
	/* argv[1..] may still be read by the caller: copy them too. */
	for (i = 1; i < argc; i++)
		argv[i] = strdup(argv[i]);
	proctitle_start = argv[0];
	proctitle_end = end;
}

void
proctitle_set(const char *fmt, ...)
{
	char title[64];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(title, sizeof title, fmt, ap);
	va_end(ap);
	if (!proctitle_start)
		return;
	n = strlen(title);
	if (n >= (size_t)(proctitle_end - proctitle_start))
		n = proctitle_end - proctitle_start - 1;
	memcpy(proctitle_start, title, n);
	/* Trailing NULs: ps reads the whole area and would show leftovers. */
	memset(proctitle_start + n, 0, proctitle_end - proctitle_start - n);
}
