/* Integration: the bad-config corpus (tests/configs/bad/, or $BADCONF_DIR).
 * Each file's first line says what it must produce:
 *     ; expect: LINE: TEXT
 * and `acceptd -t -c FILE` must exit 1 with "FILE:LINE: " and TEXT on
 * stderr, nothing on stdout, and no crash or sanitizer report. A few go
 * through a real start as well. Cases that cannot be files in the repo are
 * made here: the empty file, a 1 MB line, a port in use. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>

#include "harness.h"

#define BAD_MIN 40

static const char *
bad_dir(void)
{
	const char *d = getenv("BADCONF_DIR");

	return d && *d ? d : "tests/configs/bad";
}

/* The output shows no sign of a crash or a sanitizer. */
static void
assert_clean(struct hd *d, const char *file, const char *out)
{
	static const char *const signs[] = { "Sanitizer", "runtime error:", "Segmentation",
	    "Aborted", "core dumped", "==ERROR", NULL };

	for (int i = 0; signs[i]; i++)
		hd_assert(d, !strstr(out, signs[i]), "%s: \"%s\" in the output:\n%s", file,
		    signs[i], out);
}

/* acceptd -t on path: exit 1, "PATH:LINE: " followed by text on stderr. */
static void
check_t(struct hd *d, const char *path, int line, const char *text)
{
	char want[PATH_MAX + 32], *p;
	int rc = hd_run(d, "-t", "-c", path, NULL);

	assert_clean(d, path, d->err);
	hd_assert(d, rc == 1, "%s: -t exited %d, want 1; stderr:\n%s", path, rc, d->err);
	hd_assert(d, d->out[0] == '\0', "%s: -t printed on stdout: %s", path, d->out);
	snprintf(want, sizeof want, "%s:%d: ", path, line);
	hd_assert(d, (p = strstr(d->err, want)) != NULL, "%s: no \"%s\" in:\n%s", path, want,
	    d->err);
	hd_assert(d, strstr(p, text) != NULL, "%s: no \"%s\" after the line number in:\n%s",
	    path, text, d->err);
}

/* A real start (-f) on path: exit 1 before ready, the log names it. */
static void
check_start(struct hd *d, const char *path, int line, const char *text)
{
	char want[PATH_MAX + 32], *log, *p;

	if (truncate(d->log, 0) < 0 && errno != ENOENT)   /* the log is appended to */
		ck_abort_msg("truncate %s: %s", d->log, strerror(errno));
	hd_spawn(d, "-f", "-c", path, NULL);
	hd_assert_exit(d, 1, H_WAIT_MS);
	log = hd_log(d);
	assert_clean(d, path, log);
	hd_assert(d, !strstr(log, "master ready"), "%s: a real start got ready", path);
	snprintf(want, sizeof want, "%s:%d: ", path, line);
	hd_assert(d, (p = strstr(log, want)) && strstr(p, text), "%s: a real start did not "
	    "say \"%s\" ... \"%s\"", path, want, text);
	free(log);
}

/* "; expect: LINE: TEXT" from the file's first line; 0 if it has none. */
static int
read_expect(const char *path, int *line, char *text, size_t n)
{
	char buf[512];
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC), off = 0;

	if (fd < 0)
		return 0;
	k = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (k <= 0)
		return 0;
	buf[k] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (sscanf(buf, "; expect: %d: %n", line, &off) != 1 || off == 0)
		return 0;
	/* trailing blanks (of a cut message) do not count */
	k = strlen(buf);
	while (k > off && buf[k - 1] == ' ')
		buf[--k] = '\0';
	snprintf(text, n, "%s", buf + off);
	return 1;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file of the corpus through -t; a few through a real start. */
START_TEST(corpus)
{
	static const char *const real_start[] = {
		"port-word.conf", "address-duplicate.conf", "http-204-with-body.conf",
		"binary-nul.conf", "daemon-user.conf", "line-too-long.conf", NULL,
	};
	struct hd *d = hd_new();
	char dir[PATH_MAX], path[PATH_MAX + 256], text[512], *names[512];
	int n = 0, line, started = 0;
	struct dirent *e;
	DIR *dp;

	hd_assert(d, realpath(bad_dir(), dir) != NULL, "no corpus at %s", bad_dir());
	hd_assert(d, (dp = opendir(dir)) != NULL, "opendir %s", dir);
	while ((e = readdir(dp)) && n < 512)
		if (strlen(e->d_name) > 5 && !strcmp(e->d_name + strlen(e->d_name) - 5, ".conf"))
			names[n++] = strdup(e->d_name);
	closedir(dp);
	qsort(names, n, sizeof *names, cmp_names);
	hd_assert(d, n >= BAD_MIN, "%d files in %s, want at least %d", n, dir, BAD_MIN);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		hd_assert(d, read_expect(path, &line, text, sizeof text),
		    "%s: the first line is not \"; expect: LINE: TEXT\"", path);
		check_t(d, path, line, text);
		for (int k = 0; real_start[k]; k++)
			if (!strcmp(names[i], real_start[k])) {
				check_start(d, path, line, text);
				started++;
			}
		free(names[i]);
	}
	hd_assert(d, started == 6, "%d of the real-start files found", started);
	hd_free(d);
}
END_TEST

/* An empty file: nothing to serve, at line 1. */
START_TEST(empty_file)
{
	struct hd *d = hd_new();

	hd_conf(d, "%s", "");
	check_t(d, d->conf, 1, "no [listener NAME] section");
	check_start(d, d->conf, 1, "no [listener NAME] section");
	hd_free(d);
}
END_TEST

/* A 1 MB line: refused at its line, never split or truncated. */
START_TEST(megabyte_line)
{
	struct hd *d = hd_new();
	size_t n = 1 << 20;
	char *big = malloc(n + 64);
	FILE *f;

	ck_assert_ptr_nonnull(big);
	memset(big, 'z', n);
	big[n] = '\0';
	ck_assert_ptr_nonnull(f = fopen(d->conf, "w"));
	fprintf(f, "[listener a]\naddress = 127.0.0.1\nhandler = http\nbody = %s\n", big);
	fclose(f);
	check_t(d, d->conf, 4, "line too long");
	/* and as the last line, without a newline */
	ck_assert_ptr_nonnull(f = fopen(d->conf, "w"));
	fprintf(f, "; %s", big);
	fclose(f);
	check_t(d, d->conf, 1, "line too long");
	free(big);
	hd_free(d);
}
END_TEST

/* A port in use: -t does not bind, so it passes; a real start fails at
 * the listener's port line. */
START_TEST(port_in_use)
{
	struct hd *d = hd_new();
	int port = 0, fd = h_listen_tcp(&port);

	hd_conf(d, "[daemon]\nworkers = 1\n\n[listener a]\naddress = 127.0.0.1\nport = %d\n", port);
	hd_assert(d, hd_run(d, "-t", "-c", d->conf, NULL) == 0, "-t failed:\n%s", d->err);
	check_start(d, d->conf, 6, "Address already in use");
	close(fd);
	hd_free(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("badconf");
	TCase *tc = tcase_create("badconf");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, corpus);
	tcase_add_test(tc, empty_file);
	tcase_add_test(tc, megabyte_line);
	tcase_add_test(tc, port_in_use);
	suite_add_tcase(s, tc);
	return h_main(s);
}
