/* unit: helpers shared by the unit tests: the suite runner, config text
 * to a temp file and through conf_load, and an open-descriptor count. */
#ifndef ACCEPTD_TEST_UNIT_H
#define ACCEPTD_TEST_UNIT_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "conf.h"

/* Write n bytes to a fresh mkstemp file; its path goes to path (>= 64). */
static inline void
unit_write_file(char *path, const char *text, size_t n)
{
	int fd;

	snprintf(path, 64, "/tmp/acceptd-unit-XXXXXX");
	fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "mkstemp failed");
	ck_assert_msg(write(fd, text, n) == (ssize_t)n, "short write to %s", path);
	close(fd);
}

/* conf_load the text (written to a temp file that is removed again); the
 * file's path stays in path so error prefixes can be checked. */
static inline struct conf *
unit_load_n(const char *text, size_t n, char *path, char *err, size_t errlen)
{
	struct conf *c;

	unit_write_file(path, text, n);
	err[0] = '\0';
	c = conf_load(path, err, errlen);
	unlink(path);
	return c;
}

static inline struct conf *
unit_load(const char *text, char *path, char *err, size_t errlen)
{
	return unit_load_n(text, strlen(text), path, err, errlen);
}

/* Open descriptors of this process (/proc/self/fd, minus opendir's own). */
static inline int
unit_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_msg(d != NULL, "opendir /proc/self/fd");
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* Run every test of suite s; nonzero exit status on failure. */
static inline int
unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
