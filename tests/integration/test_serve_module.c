/* Integration: handler modules: the example module from $(B)/modules
 * serving over 127.0.0.1 and ::1, greeting and echo; -T shows it; and each
 * broken one (missing, not a module, wrong ABI, failing configure) is a
 * FILE:LINE error with exit 1, at -t and at start. */
#define _GNU_SOURCE
#include <libgen.h>
#include <limits.h>
#include <sys/socket.h>

#include "harness.h"

#define HEAD "[daemon]\nworkers = 2\nshutdown_timeout = 1s\n\n"

/* An absolute path under $(B), the directory of $ACCEPTD. */
static const char *
built(const char *rel)
{
	static char out[PATH_MAX + 64];
	char tmp[PATH_MAX], dir[PATH_MAX];

	snprintf(tmp, sizeof tmp, "%s", h_acceptd());
	ck_assert_msg(realpath(dirname(tmp), dir) != NULL, "no build dir");
	snprintf(out, sizeof out, "%s/%s", dir, rel);
	ck_assert_msg(access(out, R_OK) == 0, "%s is not built (make tests)", out);
	return out;
}

static void
hello_at(struct hd *d, const char *where, int port)
{
	char buf[128];
	int fd = h_connect(where, port);
	ssize_t n;

	hd_assert(d, fd >= 0, "connect %s: %s", where, strerror(errno));
	n = h_recv_exact(fd, buf, 15, H_WAIT_MS);
	hd_assert(d, n == 15 && memcmp(buf, "good day to you", 15) == 0, "%s: greeting %zd", where, n);
	ck_assert_int_eq(h_send_str(fd, "line one\nbye\n"), 0);
	n = h_recv_until_close(fd, buf, sizeof buf - 1, H_WAIT_MS);
	hd_assert(d, n >= 0, "%s: not closed after bye", where);
	buf[n] = '\0';
	hd_assert(d, strcmp(buf, "\nline one\nbye\n") == 0, "%s: got '%s'", where, buf);
	close(fd);
}

START_TEST(module_serves)
{
	struct hd *d = hd_up(HEAD "[module hello]\npath = %s\n\n[listener h]\naddress = *\n"
	    "port = 0\nhandler = hello\ngreeting = good day to you\n", built("modules/hello.so"));
	int port = hd_port(d, "h");

	for (int i = 0; i < 4; i++) {
		hello_at(d, "127.0.0.1", port);
		if (h_have_ipv6())
			hello_at(d, "::1", port);
	}
	/* -T prints the module and the handler's key */
	ck_assert_int_eq(hd_run(d, "-T", "-c", d->conf, (char *)NULL), 0);
	hd_assert(d, strstr(d->out, "[module hello]\npath = ") != NULL, "-T: '%s'", d->out);
	hd_assert(d, strstr(d->out, "greeting = good day to you\n") != NULL, "-T: '%s'", d->out);
	hd_free(d);
}
END_TEST

/* A relative path is the config file's directory's. */
START_TEST(module_relative_path)
{
	struct hd *d = hd_new();
	char link[256];

	hd_path(d, "hello.so", link, sizeof link);
	ck_assert_int_eq(symlink(built("modules/hello.so"), link), 0);
	hd_conf(d, HEAD "[module hello]\npath = hello.so\n[listener h]\naddress = 127.0.0.1\n"
	    "port = 0\nhandler = hello\ngreeting = good day to you\n");
	hd_start(d);
	hello_at(d, "127.0.0.1", hd_port(d, "h"));
	hd_free(d);
}
END_TEST

static const struct {
	const char *mod;        /* under $(B), or an absolute path */
	const char *keys;       /* the listener's */
	int line;
	const char *msg;
} broken[] = {
	{ "/nonexistent/x.so", "", 3, "module m: /nonexistent/x.so: No such file or directory" },
	{ "tests/modules/nomod.so", "", 3, "is not an acceptd module" },
	{ "tests/modules/abi.so", "handler = future\n", 3, "is built for module ABI 99.0" },
	{ "tests/modules/refuse.so", "handler = refuse\nmood = bad\n", 9, "mood: refused on purpose" },
	{ "tests/modules/refuse.so", "handler = refuse\n", 5, "refuse: mood = fine is required" },
	{ "modules/hello.so", "handler = hello\nsalutation = hi\n", 9, "unknown key 'salutation'" },
};

START_TEST(module_broken)
{
	const char *mod = broken[_i].mod[0] == '/' ? broken[_i].mod : built(broken[_i].mod);
	struct hd *d = hd_new();
	char want[512];
	int rc;

	hd_conf(d, "; broken module %d\n\n[module m]\npath = %s\n\n[listener l]\naddress = 127.0.0.1\n"
	    "port = 0\n%s", _i, mod, broken[_i].keys);
	snprintf(want, sizeof want, "%s:%d: ", d->conf, broken[_i].line + 1);
	/* -t */
	rc = hd_run(d, "-t", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 1, "-t: exit %d", rc);
	hd_assert(d, strstr(d->err, want) != NULL, "-t: '%s' lacks '%s'", d->err, want);
	hd_assert(d, strstr(d->err, broken[_i].msg) != NULL, "-t: '%s' lacks '%s'", d->err,
	    broken[_i].msg);
	/* start: the same error, nothing starts */
	hd_spawn(d, "-f", "-c", d->conf, (char *)NULL);
	hd_assert_exit(d, 1, H_WAIT_MS);
	hd_assert(d, hd_log_has(d, "%s", want), "start: no '%s' in the log", want);
	hd_assert(d, !hd_log_has(d, "worker 0 started"), "a worker started");
	hd_free(d);
}
END_TEST

static Suite *
module_suite(void)
{
	Suite *s = suite_create("module");
	TCase *tc = tcase_create("module");

	tcase_add_test(tc, module_serves);
	tcase_add_test(tc, module_relative_path);
	tcase_add_loop_test(tc, module_broken, 0, sizeof broken / sizeof *broken);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(module_suite());
}
