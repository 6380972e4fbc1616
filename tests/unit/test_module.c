/* test_module: the module loader through the config, each refusal a
 * FILE:LINE error (missing file, not a module, wrong ABI, failing
 * configure), the example module configured and serving over a socket
 * pair; and the descriptor checks on hand-made descriptors. */
#include <libgen.h>
#include <limits.h>

#include "conf.h"
#include "handler.h"
#include "unit.h"
#include "util.h"

/* $(B) from $ACCEPTD ($(B)/acceptd), as make check sets it. */
static char bdir[PATH_MAX];

static void
mod_path(char *out, size_t n, const char *rel)
{
	if (!bdir[0]) {
		const char *a = getenv("ACCEPTD");
		char tmp[512];

		snprintf(tmp, sizeof tmp, "%s", a ? a : "build/acceptd");
		/* absolute: a relative module path is the config file's dir's */
		ck_assert_msg(realpath(dirname(tmp), bdir) != NULL, "no build dir for %s", tmp);
	}
	snprintf(out, n, "%s/%s", bdir, rel);
	ck_assert_msg(access(out, R_OK) == 0, "%s is not built (make tests)", out);
}

static struct conf *
load_fmt(char *err, size_t errlen, char *path, const char *fmt, const char *mod)
{
	char text[2048];

	snprintf(text, sizeof text, fmt, mod);
	return unit_load(text, path, err, errlen);
}

/* The error is "FILE:LINE: ..." containing sub. */
static void
expect(struct conf *c, const char *path, const char *err, int line, const char *sub)
{
	char prefix[128];

	ck_assert_msg(c == NULL, "loaded, wanted an error with '%s'", sub);
	snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "error '%s', want prefix '%s'",
	    err, prefix);
	ck_assert_msg(strstr(err, sub) != NULL, "error '%s' lacks '%s'", err, sub);
}

START_TEST(test_good_module)
{
	char mod[PATH_MAX + 64], path[64], err[512];
	struct conf *c;
	char *dump = NULL;
	size_t dlen = 0;
	FILE *f;

	mod_path(mod, sizeof mod, "modules/hello.so");
	c = load_fmt(err, sizeof err, path, "[module hello]\npath = %s\n"
	    "[listener a]\nport = 0\nhandler = hello\ngreeting = hi there\n", mod);
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_str_eq(c->listeners->handler->name, "hello");
	ck_assert_ptr_nonnull(c->modules);
	ck_assert_str_eq(c->modules->name, "hello");
	/* -T shows the module and the handler's keys */
	f = open_memstream(&dump, &dlen);
	conf_dump(c, f);
	fclose(f);
	ck_assert_msg(strstr(dump, "[module hello]\npath = ") != NULL, "%s", dump);
	ck_assert_msg(strstr(dump, "greeting = hi there\n") != NULL, "%s", dump);
	free(dump);
	conf_free(c);
	/* a module may come after the listener that uses it */
	c = load_fmt(err, sizeof err, path, "[listener a]\nport = 0\nhandler = hello\n"
	    "[module hello]\npath = %s\n", mod);
	ck_assert_msg(c != NULL, "%s", err);
	conf_free(c);
}
END_TEST

/* The module's handler, configured, serves a socket pair. */
START_TEST(test_good_module_serves)
{
	char mod[PATH_MAX + 64], path[64], err[512];
	struct ev_loop *loop = ev_loop_new(0);
	struct conf_listener *l;
	struct util_rd rd;
	struct conf *c;
	int sv[2];

	mod_path(mod, sizeof mod, "modules/hello.so");
	c = load_fmt(err, sizeof err, path, "[module hello]\npath = %s\n"
	    "[listener a]\nport = 0\nhandler = hello\ngreeting = howdy\n", mod);
	ck_assert_msg(c != NULL, "%s", err);
	l = c->listeners;
	ck_assert_int_eq(l->handler->start(l->handler_conf, loop), 0);
	util_pair(sv);
	{
		struct acceptd_accept a = {
			.size = sizeof a, .fd = sv[1], .loop = loop, .listener = &l->hl->pub,
		};

		l->hl->cnt.accepted++;
		l->hl->cnt.active++;
		l->handler->accept(l->handler_conf, &a);
	}
	util_rd_init(&rd, sv[0]);
	ck_assert(util_read_str(loop, &rd, "howdy\n", 2000));
	util_write_str(loop, sv[0], "one\ntwo\nbye\n");
	ck_assert(util_read_eof(loop, &rd, 2000));
	ck_assert_str_eq(rd.buf, "howdy\none\ntwo\nbye\n");
	/* the close went through the counters */
	ck_assert_uint_eq(l->hl->cnt.closed, 1);
	ck_assert_uint_eq(l->hl->cnt.active, 0);
	l->handler->stop(l->handler_conf);
	util_rd_free(&rd);
	close(sv[0]);
	conf_free(c);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(test_missing_file)
{
	char path[64], err[512];
	struct conf *c = unit_load("[listener a]\nport = 0\n\n[module m]\npath = /nonexistent/m.so\n",
	    path, err, sizeof err);

	expect(c, path, err, 5, "module m: /nonexistent/m.so: No such file or directory");
}
END_TEST

START_TEST(test_not_a_module)
{
	char mod[PATH_MAX + 64], path[64], err[512];
	struct conf *c;

	mod_path(mod, sizeof mod, "tests/modules/nomod.so");
	c = load_fmt(err, sizeof err, path, "[module nm]\npath = %s\n[listener a]\nport = 0\n", mod);
	expect(c, path, err, 2, "is not an acceptd module");
	/* nor is a file that is no shared object at all */
	c = unit_load("[module txt]\n\npath = /etc/hostname\n[listener a]\nport = 0\n",
	    path, err, sizeof err);
	if (access("/etc/hostname", R_OK) == 0)
		expect(c, path, err, 3, "module txt: cannot load");
	else
		conf_free(c);
}
END_TEST

START_TEST(test_wrong_abi)
{
	char mod[PATH_MAX + 64], path[64], err[512];
	struct conf *c;

	mod_path(mod, sizeof mod, "tests/modules/abi.so");
	c = load_fmt(err, sizeof err, path, "[listener a]\nport = 0\nhandler = future\n"
	    "[module future]\npath = %s\n", mod);
	expect(c, path, err, 5, "built for module ABI 99.0");
}
END_TEST

START_TEST(test_failing_configure)
{
	char mod[PATH_MAX + 64], path[64], err[512];
	struct conf *c;

	mod_path(mod, sizeof mod, "tests/modules/refuse.so");
	/* conf_set refuses a value: the key's line */
	c = load_fmt(err, sizeof err, path, "[module r]\npath = %s\n[listener a]\nport = 0\n"
	    "handler = refuse\nmood = grumpy\n", mod);
	expect(c, path, err, 6, "mood: refused on purpose: 'grumpy'");
	/* conf_check refuses the whole: the listener's line */
	c = load_fmt(err, sizeof err, path, "[module r]\npath = %s\n\n[listener a]\nport = 0\n"
	    "handler = refuse\n", mod);
	expect(c, path, err, 4, "listener a: refuse: mood = fine is required");
	/* a key no one takes */
	c = load_fmt(err, sizeof err, path, "[module r]\npath = %s\n[listener a]\nport = 0\n"
	    "handler = refuse\nmood = fine\ncolour = red\n", mod);
	expect(c, path, err, 7, "unknown key 'colour' in [listener a] (handler refuse");
	/* and when all is well, it loads */
	c = load_fmt(err, sizeof err, path, "[module r]\npath = %s\n[listener a]\nport = 0\n"
	    "handler = refuse\nmood = fine\n", mod);
	ck_assert_msg(c != NULL, "%s", err);
	conf_free(c);
}
END_TEST

/* A handler name taken twice, or a built-in's, is refused; an unknown
 * handler's error lists what the modules offer. */
START_TEST(test_names)
{
	char mod[PATH_MAX + 64], path[64], err[512], text[2 * PATH_MAX + 256];
	struct conf *c;

	mod_path(mod, sizeof mod, "modules/hello.so");
	snprintf(text, sizeof text, "[module a]\npath = %s\n[module b]\npath = %s\n"
	    "[listener x]\nport = 0\n", mod, mod);
	c = unit_load(text, path, err, sizeof err);
	expect(c, path, err, 4, "module b: handler hello is already provided by module a");
	c = load_fmt(err, sizeof err, path, "[module h]\npath = %s\n[listener x]\nport = 0\n"
	    "handler = nosuch\n", mod);
	expect(c, path, err, 5, "from modules: hello");
}
END_TEST

/* ---- the descriptor checks, on hand-made descriptors ---- */

static void
nop_accept(void *conf, const struct acceptd_accept *a)
{
}

static const struct acceptd_handler h_ok = { ACCEPTD_HANDLER_V1, .name = "t-ok", .accept = nop_accept };
static const struct acceptd_handler h_echo = { ACCEPTD_HANDLER_V1, .name = "echo", .accept = nop_accept };
static const struct acceptd_handler h_noacc = { ACCEPTD_HANDLER_V1, .name = "t-noacc" };
static const struct acceptd_handler h_badname = { ACCEPTD_HANDLER_V1, .name = "a b", .accept = nop_accept };
static const struct acceptd_handler h_small = { .size = 8, .name = "t-small", .accept = nop_accept };

static int
try_add(const struct acceptd_module *m, char *err, size_t n)
{
	struct handler_module *list = NULL;
	int rc = handler_module_add(&list, "t", NULL, NULL, m, err, n);

	handler_modules_free(list);
	return rc;
}

START_TEST(test_descriptor_checks)
{
	const struct acceptd_handler *ok[] = { &h_ok, NULL }, *echo[] = { &h_echo, NULL },
	    *noacc[] = { &h_noacc, NULL }, *badname[] = { &h_badname, NULL },
	    *small[] = { &h_small, NULL }, *twice[] = { &h_ok, &h_ok, NULL }, *none[] = { NULL };
	struct acceptd_module m = { ACCEPTD_MODULE_V1, .name = "t", .handlers = ok };
	char err[512];

	ck_assert_int_eq(try_add(&m, err, sizeof err), 0);
	/* a module built for an older minor loads; a newer minor does not */
	m.abi_minor = ACCEPTD_ABI_MINOR + 1;
	ck_assert_int_eq(try_add(&m, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "rebuild it") != NULL, "%s", err);
	m.abi_minor = ACCEPTD_ABI_MINOR;
	m.magic = 0x12345678;
	ck_assert_int_eq(try_add(&m, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "bad magic") != NULL, "%s", err);
	m.magic = ACCEPTD_MODULE_MAGIC;
	m.size = 16;
	ck_assert_int_eq(try_add(&m, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "too small") != NULL, "%s", err);
	m.size = sizeof m;
	m.handlers = none;
	ck_assert_int_eq(try_add(&m, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "provides no handlers") != NULL, "%s", err);
	m.handlers = echo;
	ck_assert_int_eq(try_add(&m, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "handler echo is already provided by the built-in") != NULL, "%s", err);
	m.handlers = noacc;
	ck_assert_int_eq(try_add(&m, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "no accept callback") != NULL, "%s", err);
	m.handlers = badname;
	ck_assert_int_eq(try_add(&m, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "bad name 'a b'") != NULL, "%s", err);
	m.handlers = small;
	ck_assert_int_eq(try_add(&m, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "too small") != NULL, "%s", err);
	m.handlers = twice;
	ck_assert_int_eq(try_add(&m, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "listed twice") != NULL, "%s", err);
}
END_TEST

/* The built-ins went through the same loader: -V's list, and lookups. */
START_TEST(test_builtins)
{
	ck_assert_str_eq(handler_builtin_names(), "echo discard daytime chargen http exec stats proxy");
	ck_assert_ptr_nonnull(handler_find(NULL, "exec"));
	ck_assert_ptr_null(handler_find(NULL, "hello"));
	ck_assert_uint_eq(handler_find(NULL, "echo")->size, sizeof(struct acceptd_handler));
}
END_TEST

/* ABI 1.1 appended conn_new_data: the table is big enough and fills it. */
START_TEST(test_api_1_1)
{
	ck_assert_int_eq(handler_api.abi_major, 1);
	ck_assert_int_ge(handler_api.abi_minor, 1);
	ck_assert_uint_gt(handler_api.size, offsetof(struct acceptd_api, conn_new_data));
	ck_assert_ptr_nonnull(handler_api.conn_new_data);
}
END_TEST

static Suite *
module_suite(void)
{
	Suite *s = suite_create("module");
	TCase *tc = tcase_create("module");

	tcase_add_test(tc, test_good_module);
	tcase_add_test(tc, test_good_module_serves);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_not_a_module);
	tcase_add_test(tc, test_wrong_abi);
	tcase_add_test(tc, test_failing_configure);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_descriptor_checks);
	tcase_add_test(tc, test_builtins);
	tcase_add_test(tc, test_api_1_1);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(module_suite());
}
