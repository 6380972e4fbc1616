/* Integration: the command line: -V, -h, usage errors, -t, -T, config
 * errors and a missing config file; none of the test modes binds. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* No process of ours is left (the harness is a subreaper, so anything
 * the binary started and left running would be our child). */
static void
assert_nothing_left(struct hd *d)
{
	pid_t kids[8];
	int n = h_children(getpid(), kids, 8);

	hd_assert(d, n == 0, "%d processes left behind (first: pid %d)", n, n ? (int)kids[0] : 0);
}

START_TEST(version)
{
	struct hd *d = hd_new();
	int rc = hd_run(d, "-V", (char *)NULL);

	hd_assert(d, rc == 0, "-V: exit %d", rc);
	ck_assert_msg(strncmp(d->out, "acceptd ", 8) == 0, "-V: stdout '%s'", d->out);
	ck_assert_msg(strstr(d->out, "libev ") != NULL, "-V: no libev version in '%s'", d->out);
	ck_assert_msg(strstr(d->out, "handlers:") != NULL, "-V: no handlers in '%s'", d->out);
	ck_assert_msg(strstr(d->out, "echo") && strstr(d->out, "http"), "-V: '%s'", d->out);
	hd_free(d);
}
END_TEST

START_TEST(help)
{
	struct hd *d = hd_new();
	int rc = hd_run(d, "-h", (char *)NULL);

	hd_assert(d, rc == 0, "-h: exit %d", rc);
	ck_assert_msg(strstr(d->out, "usage: acceptd") != NULL, "-h: stdout '%s'", d->out);
	hd_free(d);
}
END_TEST

START_TEST(bad_option)
{
	struct hd *d = hd_new();
	int rc = hd_run(d, "-Z", (char *)NULL);

	hd_assert(d, rc == 2, "-Z: exit %d", rc);
	ck_assert_msg(strstr(d->err, "usage:") != NULL, "-Z: stderr '%s'", d->err);
	ck_assert_msg(d->out[0] == '\0', "-Z: stdout '%s'", d->out);
	hd_free(d);
}
END_TEST

START_TEST(extra_argument)
{
	struct hd *d = hd_new();
	int rc;

	hd_conf(d, "[listener e]\naddress = 127.0.0.1\nport = 0\n");
	rc = hd_run(d, "-t", "-c", d->conf, "surplus", (char *)NULL);
	hd_assert(d, rc == 2, "extra argument: exit %d", rc);
	ck_assert_msg(strstr(d->err, "unexpected argument") != NULL, "stderr '%s'", d->err);
	/* -s with -t is a usage error too */
	rc = hd_run(d, "-t", "-s", "stop", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 2, "-t -s: exit %d", rc);
	hd_free(d);
}
END_TEST

START_TEST(test_ok_does_not_bind)
{
	struct hd *d = hd_new();
	int port = h_free_port(), rc;
	char real[PATH_MAX], want[PATH_MAX + 64];

	hd_conf(d, "[daemon]\nworkers = 2\n\n[listener e]\naddress = 127.0.0.1\nport = %d\n"
	    "handler = echo\n\n[listener u]\naddress = unix:@DIR@/t.sock\n", port);
	rc = hd_run(d, "-t", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 0, "-t: exit %d", rc);
	ck_assert(realpath(d->conf, real) != NULL);
	snprintf(want, sizeof want, "acceptd: configuration %s is ok", real);
	ck_assert_msg(strstr(d->err, want) != NULL, "-t: stderr '%s', want '%s'", d->err, want);
	ck_assert_msg(d->out[0] == '\0', "-t: stdout '%s'", d->out);
	/* nothing was bound: the port is free and the unix path absent */
	ck_assert_msg(h_port_bindable(port), "port %d is taken after -t", port);
	hd_path(d, "t.sock", real, sizeof real);
	ck_assert_msg(access(real, F_OK) < 0, "-t created %s", real);
	assert_nothing_left(d);
	hd_free(d);
}
END_TEST

START_TEST(dump_effective_config)
{
	struct hd *d = hd_new();
	int rc;

	hd_conf(d, "[listener e]\naddress = 127.0.0.1\nport = 0\n");
	rc = hd_run(d, "-T", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 0, "-T: exit %d", rc);
	ck_assert_msg(strstr(d->out, "[daemon]") != NULL, "-T: stdout '%s'", d->out);
	ck_assert_msg(strstr(d->out, "mode = reuseport\n") != NULL, "-T: stdout '%s'", d->out);
	ck_assert_msg(strstr(d->out, "shutdown_timeout = 10s\n") != NULL, "-T: stdout '%s'", d->out);
	ck_assert_msg(strstr(d->out, "log_level = info\n") != NULL, "-T: stdout '%s'", d->out);
	ck_assert_msg(strstr(d->out, "[listener e]") != NULL, "-T: stdout '%s'", d->out);
	ck_assert_msg(strstr(d->out, "handler = echo\n") != NULL, "-T: stdout '%s'", d->out);
	ck_assert_msg(strstr(d->err, "is ok") != NULL, "-T: stderr '%s'", d->err);
	hd_free(d);
}
END_TEST

/* The dump is itself a valid config that dumps the same. */
START_TEST(dump_round_trips)
{
	struct hd *d = hd_new();
	char *first;
	int rc;

	hd_conf(d, "[daemon]\nworkers = 3\nmode = shared\nshutdown_timeout = 1500ms\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\nhandler = echo\n");
	rc = hd_run(d, "-T", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 0, "-T: exit %d", rc);
	ck_assert_msg(strstr(d->out, "workers = 3\n") && strstr(d->out, "mode = shared\n") &&
	    strstr(d->out, "shutdown_timeout = 1500ms\n"), "-T: stdout '%s'", d->out);
	first = strdup(d->out);
	hd_conf(d, "%s", first);
	rc = hd_run(d, "-T", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 0, "-T of the dump: exit %d: %s", rc, d->err);
	ck_assert_msg(strcmp(first, d->out) == 0, "dump changed:\n%s\n----\n%s", first, d->out);
	free(first);
	hd_free(d);
}
END_TEST

/* Unknown key on line 4: FILE:4:, exit 1, for -t and for a real start;
 * nothing is started and nothing bound. */
START_TEST(config_error_line)
{
	struct hd *d = hd_new();
	char real[PATH_MAX], want[PATH_MAX + 16];
	int port = h_free_port(), rc;

	hd_conf(d, "[daemon]\nworkers = 2\n\nbogus_key = 1\n[listener e]\naddress = 127.0.0.1\n"
	    "port = %d\n", port);
	ck_assert(realpath(d->conf, real) != NULL);
	snprintf(want, sizeof want, "%s:4:", real);

	rc = hd_run(d, "-t", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 1, "-t: exit %d", rc);
	ck_assert_msg(strstr(d->err, want) != NULL, "-t: stderr '%s', want '%s'", d->err, want);
	ck_assert_msg(strstr(d->err, "bogus_key") != NULL, "-t: stderr '%s'", d->err);

	rc = hd_run(d, "-f", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 1, "-f: exit %d", rc);
	ck_assert_msg(strstr(d->err, want) != NULL, "-f: stderr '%s', want '%s'", d->err, want);
	ck_assert_msg(h_port_bindable(port), "port %d taken after a failed start", port);
	assert_nothing_left(d);

	/* daemonizing: the error is printed before the fork, exit 1 as well */
	rc = hd_run(d, "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 1, "daemonized: exit %d", rc);
	ck_assert_msg(strstr(d->err, want) != NULL, "daemonized: stderr '%s'", d->err);
	ck_assert_msg(h_port_bindable(port), "port %d taken after a failed start", port);
	assert_nothing_left(d);
	hd_free(d);
}
END_TEST

/* A bad value in a listener: the line of that key. */
START_TEST(config_error_listener_value)
{
	struct hd *d = hd_new();
	int rc;

	hd_conf(d, "# comment\n[listener e]\naddress = 127.0.0.1\nport = 0\nkeepalive = maybe\n");
	rc = hd_run(d, "-t", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 1, "-t: exit %d", rc);
	ck_assert_msg(strstr(d->err, "acceptd.conf:5:") != NULL, "stderr '%s'", d->err);
	ck_assert_msg(strstr(d->err, "keepalive") != NULL, "stderr '%s'", d->err);
	hd_free(d);
}
END_TEST

/* Clashes are config errors with the line, found by -t already (which
 * resolves but does not bind). (No unresolvable host name here: without
 * DNS that lookup can take longer than any test should.) */
START_TEST(config_error_clashes)
{
	struct hd *d = hd_new();
	int port = h_free_port(), rc;

	hd_conf(d, "[listener a]\naddress = 127.0.0.1\nport = %d\n\n"
	    "[listener a]\naddress = 127.0.0.1\nport = 0\n", port);
	rc = hd_run(d, "-t", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 1 && strstr(d->err, "acceptd.conf:5:"), "duplicate name: exit %d: %s",
	    rc, d->err);

	hd_conf(d, "[listener a]\naddress = 127.0.0.1\nport = %d\n\n"
	    "[listener b]\naddress = 127.0.0.1\nport = %d\n", port, port);
	rc = hd_run(d, "-t", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 1 && strstr(d->err, "acceptd.conf:6:"), "same address: exit %d: %s",
	    rc, d->err);
	rc = hd_run(d, "-f", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 1, "same address, -f: exit %d", rc);
	hd_assert(d, h_port_bindable(port), "port %d taken after a failed start", port);
	assert_nothing_left(d);
	hd_free(d);
}
END_TEST

START_TEST(missing_config)
{
	struct hd *d = hd_new();
	char path[256];
	int rc;

	hd_path(d, "nonexistent.conf", path, sizeof path);
	rc = hd_run(d, "-t", "-c", path, (char *)NULL);
	hd_assert(d, rc == 1, "-t: exit %d", rc);
	ck_assert_msg(strstr(d->err, path) != NULL, "stderr '%s' does not name %s", d->err, path);
	rc = hd_run(d, "-f", "-c", path, (char *)NULL);
	hd_assert(d, rc == 1, "-f: exit %d", rc);
	ck_assert_msg(strstr(d->err, path) != NULL, "stderr '%s' does not name %s", d->err, path);
	assert_nothing_left(d);
	hd_free(d);
}
END_TEST

/* -s with no master behind the pidfile: exit 1, naming the pidfile. */
START_TEST(signal_without_master)
{
	struct hd *d = hd_new();
	int rc;

	hd_conf(d, "[daemon]\npidfile = @DIR@/acceptd.pid\n[listener e]\naddress = 127.0.0.1\n"
	    "port = 0\n");
	rc = hd_run(d, "-c", d->conf, "-s", "stop", (char *)NULL);
	hd_assert(d, rc == 1, "-s stop: exit %d", rc);
	ck_assert_msg(strstr(d->err, "acceptd.pid") != NULL, "stderr '%s'", d->err);
	rc = hd_run(d, "-c", d->conf, "-s", "bogus", (char *)NULL);
	hd_assert(d, rc == 2, "-s bogus: exit %d", rc);
	hd_free(d);
}
END_TEST

static Suite *
cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("cli");

	tcase_add_test(tc, version);
	tcase_add_test(tc, help);
	tcase_add_test(tc, bad_option);
	tcase_add_test(tc, extra_argument);
	tcase_add_test(tc, test_ok_does_not_bind);
	tcase_add_test(tc, dump_effective_config);
	tcase_add_test(tc, dump_round_trips);
	tcase_add_test(tc, config_error_line);
	tcase_add_test(tc, config_error_listener_value);
	tcase_add_test(tc, config_error_clashes);
	tcase_add_test(tc, missing_config);
	tcase_add_test(tc, signal_without_master);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(cli_suite());
}
