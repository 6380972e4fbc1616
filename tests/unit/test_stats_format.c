/* test_stats_format: the shared counters' text: stats_format on a hand-filled
 * block (HELP and TYPE lines, names, labels, values, the order of the
 * samples), the size contract (a buffer too small gets the length needed),
 * stats_errno's mapping, the block's slots (stats_init, stats_listener,
 * stats_slot) and `-s status` on this very process; the text passes
 * `promtool check metrics` where promtool is installed. */
/* (not test_stats.c: that name is the integration test's, and both would
 * become build/tests/test_stats) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <check.h>

#include "stats.h"
#include "unit.h"

/* A block as big as the daemon's, zeroed (sparse: untouched pages cost
 * nothing), not shared with anyone. */
static struct stats_block *
block_new(void)
{
	struct stats_block *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_msg(b != MAP_FAILED, "mmap: %s", strerror(errno));
	return b;
}

static void
block_free(struct stats_block *b)
{
	munmap(b, sizeof *b);
}

/* Two listeners (web, ssh), two workers, every counter a distinct value:
 * c[w][i].field = 1000 * (field + 1) + 10 * i + w. */
static struct stats_block *
block_filled(void)
{
	struct stats_block *b = block_new();

	b->start_time = 1700000000;
	b->master_pid = 4242;
	b->worker_restarts = 3;
	b->reloads_ok = 5;
	b->reloads_failed = 2;
	b->workers = 2;
	b->nworkers_seen = 2;
	b->nlisteners = 2;
	snprintf(b->names[0], STATS_NAME_MAX, "web");
	snprintf(b->names[1], STATS_NAME_MAX, "ssh");
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < 2; i++) {
			struct stats_counters *c = &b->c[w][i];
			uint64_t base = 10 * i + w;

			c->accepted = 1000 + base;
			c->active = 2000 + base;
			c->closed = 3000 + base;
			c->rejected_limit = 4000 + base;
			c->rejected_acl = 5000 + base;
			c->proxy_errors = 6000 + base;
			c->bytes_in = 7000 + base;
			c->bytes_out = 8000 + base;
			for (int e = 0; e < STATS_NERRNO; e++)
				c->accept_errors[e] = 100000 * (e + 1) + base;
		}
	return b;
}

/* stats_format into a fresh malloc'd string (asserts it fits). */
static char *
format(const struct stats_block *b)
{
	size_t need = stats_format(b, NULL, 0), got;
	char *buf = malloc(need + 1);

	ck_assert_ptr_nonnull(buf);
	got = stats_format(b, buf, need + 1);
	ck_assert_uint_eq(got, need);
	ck_assert_uint_eq(strlen(buf), need);
	return buf;
}

/* The text holds this exact line. */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

#define ck_line(text, ...) do { \
	char want_[512]; \
	snprintf(want_, sizeof want_, __VA_ARGS__); \
	ck_assert_msg(has_line(text, want_), "no line '%s' in:\n%s", want_, text); \
} while (0)

static int
count_lines(const char *text, const char *prefix)
{
	int n = 0;

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

static const struct {
	const char *name, *type;
	size_t off;
} per_slot[] = {
	{ "acceptd_connections_accepted_total", "counter", offsetof(struct stats_counters, accepted) },
	{ "acceptd_connections_active", "gauge", offsetof(struct stats_counters, active) },
	{ "acceptd_connections_closed_total", "counter", offsetof(struct stats_counters, closed) },
	{ "acceptd_proxy_header_errors_total", "counter", offsetof(struct stats_counters, proxy_errors) },
	{ "acceptd_received_bytes_total", "counter", offsetof(struct stats_counters, bytes_in) },
	{ "acceptd_sent_bytes_total", "counter", offsetof(struct stats_counters, bytes_out) },
};

START_TEST(format_families)
{
	struct stats_block *b = block_filled();
	char *t = format(b);
	static const char *const names[] = { "web", "ssh" };

	for (size_t f = 0; f < sizeof per_slot / sizeof *per_slot; f++) {
		char help[128];

		ck_line(t, "# TYPE %s %s", per_slot[f].name, per_slot[f].type);
		snprintf(help, sizeof help, "# HELP %s ", per_slot[f].name);
		ck_assert_msg(count_lines(t, help) == 1, "one HELP for %s", per_slot[f].name);
		for (int i = 0; i < 2; i++)
			for (int w = 0; w < 2; w++) {
				const uint64_t *v = (const uint64_t *)((const char *)&b->c[w][i] +
				    per_slot[f].off);

				ck_line(t, "%s{listener=\"%s\",worker=\"%d\"} %llu", per_slot[f].name,
				    names[i], w, (unsigned long long)*v);
			}
		/* exactly the 2 x 2 samples */
		snprintf(help, sizeof help, "%s{", per_slot[f].name);
		ck_assert_int_eq(count_lines(t, help), 4);
	}
	free(t);
	block_free(b);
}
END_TEST

START_TEST(format_labelled)
{
	struct stats_block *b = block_filled();
	char *t = format(b);
	static const char *const errnames[STATS_NERRNO] = {
		"EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "ECONNABORTED", "other",
	};

	ck_line(t, "# TYPE acceptd_connections_rejected_total counter");
	ck_line(t, "acceptd_connections_rejected_total{listener=\"web\",worker=\"0\",reason=\"limit\"} 4000");
	ck_line(t, "acceptd_connections_rejected_total{listener=\"web\",worker=\"1\",reason=\"acl\"} 5001");
	ck_line(t, "acceptd_connections_rejected_total{listener=\"ssh\",worker=\"0\",reason=\"acl\"} 5010");
	ck_line(t, "acceptd_connections_rejected_total{listener=\"ssh\",worker=\"1\",reason=\"limit\"} 4011");
	ck_assert_int_eq(count_lines(t, "acceptd_connections_rejected_total{"), 8);

	ck_line(t, "# TYPE acceptd_accept_errors_total counter");
	for (int e = 0; e < STATS_NERRNO; e++)
		ck_line(t, "acceptd_accept_errors_total{listener=\"ssh\",worker=\"1\",errno=\"%s\"} %d",
		    errnames[e], 100000 * (e + 1) + 11);
	ck_assert_int_eq(count_lines(t, "acceptd_accept_errors_total{"), 2 * 2 * STATS_NERRNO);

	/* per daemon: no listener or worker label */
	ck_line(t, "# TYPE acceptd_worker_restarts_total counter");
	ck_line(t, "acceptd_worker_restarts_total 3");
	ck_line(t, "# TYPE acceptd_reloads_total counter");
	ck_line(t, "acceptd_reloads_total{result=\"ok\"} 5");
	ck_line(t, "acceptd_reloads_total{result=\"failed\"} 2");
	ck_line(t, "# TYPE acceptd_workers gauge");
	ck_line(t, "acceptd_workers 2");
	ck_line(t, "# TYPE acceptd_start_time_seconds gauge");
	ck_line(t, "acceptd_start_time_seconds 1700000000");
	free(t);
	block_free(b);
}
END_TEST

/* Every line: a comment (# HELP / # TYPE of an acceptd_ family) or a
 * sample of the family last announced; every family announced once, HELP
 * before TYPE before its samples; the text ends with a newline. */
START_TEST(format_shape)
{
	struct stats_block *b = block_filled();
	char *t = format(b), *save = NULL, fam[128] = "";
	int nfam = 0;

	ck_assert(t[0] != '\0' && t[strlen(t) - 1] == '\n');
	for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], type[32];

		if (sscanf(line, "# HELP %127s", name) == 1) {
			ck_assert_msg(strncmp(name, "acceptd_", 8) == 0, "prefix: %s", line);
			ck_assert_msg(strcmp(name, fam) != 0, "HELP twice: %s", line);
			snprintf(fam, sizeof fam, "%s", name);
			nfam++;
			continue;
		}
		if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
			ck_assert_msg(strcmp(name, fam) == 0, "TYPE without its HELP: %s", line);
			ck_assert_msg(!strcmp(type, "counter") || !strcmp(type, "gauge"), "type: %s",
			    line);
			ck_assert_msg(strstr(name, "_total") ? !strcmp(type, "counter") :
			    !strcmp(type, "gauge"), "a _total that is no counter (or back): %s", line);
			continue;
		}
		ck_assert_msg(line[0] != '#', "stray comment: %s", line);
		ck_assert_msg(strncmp(line, fam, strlen(fam)) == 0 &&
		    (line[strlen(fam)] == '{' || line[strlen(fam)] == ' '),
		    "sample '%s' outside its family %s", line, fam);
	}
	ck_assert_int_eq(nfam, (int)(sizeof per_slot / sizeof *per_slot) + 6);
	free(t);
	block_free(b);
}
END_TEST

/* An empty block (no listener, no worker yet) is still valid text. */
START_TEST(format_empty)
{
	struct stats_block *b = block_new();
	char *t = format(b);

	ck_line(t, "# TYPE acceptd_connections_accepted_total counter");
	ck_assert_int_eq(count_lines(t, "acceptd_connections_accepted_total{"), 0);
	ck_line(t, "acceptd_worker_restarts_total 0");
	ck_line(t, "acceptd_reloads_total{result=\"ok\"} 0");
	free(t);
	block_free(b);
}
END_TEST

/* The size contract: the return is always the full length; the text is
 * whole only when that length is below cap; a shorter cap gets a prefix,
 * NUL-terminated, and never a byte beyond cap. */
START_TEST(format_size)
{
	struct stats_block *b = block_filled();
	char *full = format(b);
	size_t need = strlen(full);
	char *buf = malloc(need + 64);

	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(stats_format(b, NULL, 0), need);
	ck_assert_uint_gt(need, 4096);
	for (size_t cap = 1; cap <= need + 1; cap += cap < 64 ? 1 : 997) {
		memset(buf, 'Z', need + 64);
		ck_assert_uint_eq(stats_format(b, buf, cap), need);
		ck_assert_msg(buf[cap - 1] == '\0', "cap %zu: not NUL-terminated", cap);
		ck_assert_msg(memcmp(buf, full, cap - 1) == 0, "cap %zu: not a prefix", cap);
		ck_assert_msg(buf[cap] == 'Z', "cap %zu: wrote past cap", cap);
	}
	/* need itself is still one short (no room for the NUL), need + 1 fits */
	memset(buf, 'Z', need + 64);
	ck_assert_uint_eq(stats_format(b, buf, need), need);
	ck_assert(buf[need - 1] == '\0');
	ck_assert_uint_eq(stats_format(b, buf, need + 1), need);
	ck_assert_str_eq(buf, full);
	/* the handler's way: try 64 KiB, then the size it was told */
	ck_assert_uint_eq(stats_format(b, buf, 16), need);
	free(buf);
	free(full);
	block_free(b);
}
END_TEST

START_TEST(errno_map)
{
	ck_assert_int_eq(stats_errno(EMFILE), STATS_EMFILE);
	ck_assert_int_eq(stats_errno(ENFILE), STATS_ENFILE);
	ck_assert_int_eq(stats_errno(ENOBUFS), STATS_ENOBUFS);
	ck_assert_int_eq(stats_errno(ENOMEM), STATS_ENOMEM);
	ck_assert_int_eq(stats_errno(ECONNABORTED), STATS_ECONNABORTED);
	ck_assert_int_eq(stats_errno(EPERM), STATS_EOTHER);
	ck_assert_int_eq(stats_errno(EPROTO), STATS_EOTHER);
	ck_assert_int_eq(stats_errno(EAGAIN), STATS_EOTHER);
	ck_assert_int_eq(stats_errno(0), STATS_EOTHER);
	ck_assert_int_eq(stats_errno(-1), STATS_EOTHER);
	ck_assert_int_eq(stats_errno(100000), STATS_EOTHER);
	/* every mapped value indexes accept_errors[] */
	for (int e = 0; e < 200; e++)
		ck_assert(stats_errno(e) >= 0 && stats_errno(e) < STATS_NERRNO);
}
END_TEST

/* The real block of this process (Check forks each test: no sharing). */
START_TEST(block_slots)
{
	struct stats_counters *s, *dummy;
	char name[32];

	ck_assert_ptr_null(stats);
	/* no block: a dummy slot, listener 0, and no crash */
	dummy = stats_slot(0, 0);
	ck_assert_ptr_nonnull(dummy);
	ck_assert_int_eq(stats_listener("x"), 0);

	ck_assert_int_eq(stats_init(), 0);
	ck_assert_ptr_nonnull(stats);
	ck_assert_uint_eq(stats->master_pid, (uint64_t)getpid());
	ck_assert_uint_eq(stats->nlisteners, 0);
	ck_assert_int_eq(stats_listener("web"), 0);
	ck_assert_int_eq(stats_listener("ssh"), 1);
	ck_assert_int_eq(stats_listener("web"), 0);     /* kept by name */
	ck_assert_uint_eq(stats->nlisteners, 2);
	ck_assert_str_eq(stats->names[1], "ssh");

	s = stats_slot(3, 1);
	ck_assert_ptr_eq(s, &stats->c[3][1]);
	ck_assert_uint_eq(stats->nworkers_seen, 4);
	stats_slot(1, 0);
	ck_assert_uint_eq(stats->nworkers_seen, 4);     /* only grows */
	stats_add(s->accepted, 7);
	stats_add(s->active, 2);
	stats_sub(s->active, 1);
	ck_assert_uint_eq(stats_get(stats->c[3][1].accepted), 7);
	ck_assert_uint_eq(stats_get(stats->c[3][1].active), 1);
	/* out of range: the dummy, the block untouched */
	ck_assert_ptr_eq(stats_slot(-1, 0), dummy);
	ck_assert_ptr_eq(stats_slot(STATS_MAX_WORKERS, 0), dummy);
	ck_assert_ptr_eq(stats_slot(0, STATS_MAX_LISTENERS), dummy);
	ck_assert_uint_eq(stats->nworkers_seen, 4);

	/* more names than slots: the rest share the last */
	for (int i = 2; i < STATS_MAX_LISTENERS; i++) {
		snprintf(name, sizeof name, "l%d", i);
		ck_assert_int_eq(stats_listener(name), i);
	}
	ck_assert_int_eq(stats_listener("one-too-many"), STATS_MAX_LISTENERS - 1);
	ck_assert_int_eq(stats_listener("web"), 0);
}
END_TEST

/* -s status reads the block through /proc/PID/fd: here, our own. */
START_TEST(status_table)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	ck_assert_int_eq(stats_init(), 0);
	stats->workers = 1;
	stats->reloads_ok = 4;
	stats->reloads_failed = 1;
	stats->worker_restarts = 2;
	stats_listener("web");
	stats_listener("ssh");
	stats_add(stats_slot(0, 0)->accepted, 12);
	stats_add(stats_slot(0, 0)->closed, 11);
	stats_add(stats_slot(0, 0)->active, 1);
	stats_add(stats_slot(0, 1)->rejected_acl, 2);
	stats_add(stats_slot(0, 1)->rejected_limit, 3);
	stats_add(stats_slot(0, 1)->proxy_errors, 9);
	stats_add(stats_slot(0, 1)->accept_errors[STATS_EMFILE], 4);
	stats_add(stats_slot(0, 1)->accept_errors[STATS_EOTHER], 1);

	ck_assert_ptr_nonnull(out = open_memstream(&text, &len));
	ck_assert_int_eq(stats_print_status(getpid(), out), 0);
	fclose(out);
	ck_assert_msg(strstr(text, "1 workers, reloads 4 ok / 1 failed, worker restarts 2"),
	    "%s", text);
	ck_assert_msg(strstr(text, "listener") && strstr(text, "accepted"), "%s", text);
	/* listener worker accepted active closed rejected proxy_err acc_err */
	{
		char l[64];
		unsigned long long w, acc, act, clo, rej, pe, ae;
		int rows = 0;

		for (const char *p = strchr(text, '\n') + 1; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
			if (sscanf(p, "%63s %llu %llu %llu %llu %llu %llu %llu", l, &w, &acc, &act, &clo,
			    &rej, &pe, &ae) != 8)
				continue;
			rows++;
			if (!strcmp(l, "web")) {
				ck_assert_msg(acc == 12 && act == 1 && clo == 11 && rej == 0 && pe == 0 &&
				    ae == 0, "web row: %s", text);
			} else {
				ck_assert_str_eq(l, "ssh");
				ck_assert_msg(acc == 0 && rej == 5 && pe == 9 && ae == 5, "ssh row: %s",
				    text);
			}
		}
		ck_assert_msg(rows == 2, "want 2 rows:\n%s", text);
	}
	free(text);
	/* a process without a block (pid 1 here is no acceptd master) */
	ck_assert_int_lt(stats_print_status(1, stdout), 0);
}
END_TEST

/* promtool, where installed, agrees that the text is valid. */
START_TEST(format_promtool)
{
	struct stats_block *b = block_filled();
	char *t = format(b), path[64] = "/tmp/acceptd-stats-XXXXXX", cmd[256];
	int fd, st;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		fprintf(stderr, "format_promtool: no promtool here (Debian package prometheus), "
		    "skipped\n");
		free(t);
		block_free(b);
		return;
	}
	ck_assert((fd = mkstemp(path)) >= 0);
	ck_assert(write(fd, t, strlen(t)) == (ssize_t)strlen(t));
	close(fd);
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
	st = system(cmd);
	unlink(path);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "promtool check metrics failed "
	    "(status %d) on:\n%s", st, t);
	free(t);
	block_free(b);
}
END_TEST

static Suite *
stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");

	tcase_add_test(tc, format_families);
	tcase_add_test(tc, format_labelled);
	tcase_add_test(tc, format_shape);
	tcase_add_test(tc, format_empty);
	tcase_add_test(tc, format_size);
	tcase_add_test(tc, errno_map);
	tcase_add_test(tc, block_slots);
	tcase_add_test(tc, status_table);
	tcase_add_test(tc, format_promtool);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(stats_suite());
}
