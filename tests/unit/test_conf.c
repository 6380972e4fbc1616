/* Unit tests for daemon/conf.c: conf_load's defaults, every key's valid
 * and invalid values, error lines, the reader's refusals, address
 * resolution, the -T dump round trip, and the value parsers. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "conf.h"
#include "handler.h"
#include "unit.h"

static char path[64], err[512];

static int
somaxconn(void)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
	int v = 4096;

	if (f) {
		if (fscanf(f, "%d", &v) != 1 || v < 1)
			v = 4096;
		fclose(f);
	}
	return v;
}

static struct conf *
load_ok(const char *text)
{
	struct conf *c = unit_load(text, path, err, sizeof err);

	ck_assert_msg(c != NULL, "conf_load failed: %s\n--- config:\n%s", err, text);
	return c;
}

/* The load must fail with "PATH:LINE: " and sub somewhere after it. */
static void
expect_err_n(const char *text, size_t n, int line, const char *sub)
{
	struct conf *c = unit_load_n(text, n, path, err, sizeof err);
	char prefix[96];

	if (c)
		conf_free(c);
	ck_assert_msg(c == NULL, "conf_load accepted (wanted line %d: %s):\n%s", line, sub, text);
	snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
	    "error '%s' does not start with '%s'\n--- config:\n%s", err, prefix, text);
	ck_assert_msg(strstr(err + strlen(prefix), sub) != NULL,
	    "error '%s' does not mention '%s'\n--- config:\n%s", err, sub, text);
}

static void
expect_err(const char *text, int line, const char *sub)
{
	expect_err_n(text, strlen(text), line, sub);
}

static int
port_of(const struct conf_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return -1;
}

static int
has_addr(const struct conf_listener *l, const char *formatted)
{
	char a[160];

	for (int i = 0; i < l->naddrs; i++) {
		conf_format_addr((const struct sockaddr *)&l->addrs[i].ss, l->addrs[i].len, a, sizeof a);
		if (strcmp(a, formatted) == 0)
			return 1;
	}
	return 0;
}

/* ---- defaults ---------------------------------------------------------- */

START_TEST(test_defaults)
{
	struct conf *c = load_ok("[listener a]\n");
	struct conf_listener *l = c->listeners;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	ck_assert_int_eq(c->workers_auto, 1);
	ck_assert_int_eq(c->workers, cpus < 1 ? 1 : cpus > 1024 ? 1024 : cpus);
	ck_assert_int_eq(c->mode, CONF_MODE_REUSEPORT);
	ck_assert_ptr_null(c->user);
	ck_assert_ptr_null(c->group);
	ck_assert_ptr_null(c->pidfile);
	ck_assert_int_eq(c->log_syslog, 0);
	ck_assert_int_eq(c->log_level, LOG_LEVEL_INFO);
	ck_assert_int_eq(c->shutdown_timeout_ms, 10000);
	ck_assert_int_eq(c->rlimit_nofile, 0);
	ck_assert_int_eq(c->cpu_affinity, 0);
	ck_assert_int_eq(c->nlisteners, 1);
	ck_assert_str_eq(c->file, path);

	ck_assert_ptr_nonnull(l);
	ck_assert_ptr_null(l->next);
	ck_assert_str_eq(l->name, "a");
	ck_assert_int_eq(l->line, 1);
	ck_assert_int_eq(l->port, 7007);
	ck_assert_str_eq(l->handler->name, "echo");
	ck_assert_int_eq(l->backlog, somaxconn());
	ck_assert_int_eq(l->ipv6only, 1);
	ck_assert_int_eq(l->reuseport, 1);        /* from mode = reuseport */
	ck_assert_int_eq(l->reuseport_set, 0);
	ck_assert_int_eq(l->keepalive, 0);
	ck_assert_int_eq(l->defer_accept, 0);
	ck_assert_int_eq(l->fastopen, 0);
	ck_assert_int_eq(l->max_connections, 0);
	ck_assert_int_eq(l->idle_timeout_ms, 0);
	ck_assert_ptr_null(l->allow);
	ck_assert_ptr_null(l->deny);
	ck_assert_int_eq(l->proxy_protocol, CONF_PROXY_OFF);
	ck_assert_ptr_null(l->hkeys);
	/* address = *: 0.0.0.0 and :: on the default port */
	ck_assert_int_eq(l->naddrs, 2);
	ck_assert_msg(has_addr(l, "0.0.0.0:7007"), "no 0.0.0.0:7007");
	ck_assert_msg(has_addr(l, "[::]:7007"), "no [::]:7007");
	conf_free(c);
}
END_TEST

/* An empty value keeps the default, for every key that has one. */
START_TEST(test_empty_values_keep_defaults)
{
	struct conf *c = load_ok(
	    "[daemon]\nworkers =\nmode =\nuser =\ngroup =\npidfile =\nlog =\nlog_level =\n"
	    "shutdown_timeout =\nrlimit_nofile =\ncpu_affinity =\n"
	    "[listener a]\naddress =\nport =\nhandler =\nbacklog =\nipv6only =\nreuseport =\n"
	    "keepalive =\ndefer_accept =\nfastopen =\nmax_connections =\nidle_timeout =\n"
	    "allow =\ndeny =\nproxy_protocol =\n");
	struct conf_listener *l = c->listeners;

	ck_assert_int_eq(c->workers_auto, 1);
	ck_assert_int_eq(c->mode, CONF_MODE_REUSEPORT);
	ck_assert_ptr_null(c->user);
	ck_assert_ptr_null(c->pidfile);
	ck_assert_int_eq(c->log_syslog, 0);
	ck_assert_int_eq(c->log_level, LOG_LEVEL_INFO);
	ck_assert_int_eq(c->shutdown_timeout_ms, 10000);
	ck_assert_int_eq(l->port, 7007);
	ck_assert_str_eq(l->handler->name, "echo");
	ck_assert_int_eq(l->backlog, somaxconn());
	ck_assert_int_eq(l->ipv6only, 1);
	ck_assert_int_eq(l->reuseport, 1);
	ck_assert_int_eq(l->naddrs, 2);
	conf_free(c);
}
END_TEST

/* ---- valid values ------------------------------------------------------- */

START_TEST(test_daemon_values)
{
	struct conf *c = load_ok(
	    "[daemon]\nworkers = 3\nmode = shared\nuser = root\ngroup = root\n"
	    "pidfile = /tmp/acceptd-unit.pid\nlog = syslog\nlog_level = debug\n"
	    "shutdown_timeout = 500ms\nrlimit_nofile = 4096\ncpu_affinity = auto\n"
	    "[listener a]\nport = 0\n");

	ck_assert_int_eq(c->workers, 3);
	ck_assert_int_eq(c->workers_auto, 0);
	ck_assert_int_eq(c->mode, CONF_MODE_SHARED);
	ck_assert_str_eq(c->user, "root");
	ck_assert_str_eq(c->group, "root");
	ck_assert_str_eq(c->pidfile, "/tmp/acceptd-unit.pid");
	ck_assert_int_eq(c->log_syslog, 1);
	ck_assert_int_eq(c->log_level, LOG_LEVEL_DEBUG);
	ck_assert_int_eq(c->shutdown_timeout_ms, 500);
	ck_assert_int_eq(c->rlimit_nofile, 4096);
	ck_assert_int_eq(c->cpu_affinity, 1);
	ck_assert_int_eq(c->listeners->reuseport, 0);    /* mode = shared */
	conf_free(c);
}
END_TEST

static const struct {
	const char *key, *value;
	long long want;
} daemon_vals[] = {
	{ "workers", "1", 1 }, { "workers", "1024", 1024 }, { "workers", "auto", -1 },
	{ "mode", "shared", CONF_MODE_SHARED }, { "mode", "reuseport", CONF_MODE_REUSEPORT },
	{ "log", "stderr", 0 }, { "log", "syslog", 1 },
	{ "log_level", "error", LOG_LEVEL_ERROR }, { "log_level", "warn", LOG_LEVEL_WARN },
	{ "log_level", "info", LOG_LEVEL_INFO }, { "log_level", "debug", LOG_LEVEL_DEBUG },
	{ "shutdown_timeout", "500ms", 500 }, { "shutdown_timeout", "10s", 10000 },
	{ "shutdown_timeout", "2m", 120000 }, { "shutdown_timeout", "7", 7000 },
	{ "shutdown_timeout", "0", 0 },
	{ "rlimit_nofile", "0", 0 }, { "rlimit_nofile", "65536", 65536 },
	{ "cpu_affinity", "off", 0 }, { "cpu_affinity", "auto", 1 },
};

START_TEST(test_daemon_value_table)
{
	char text[256];
	struct conf *c;
	long long got = 0;
	const char *k = daemon_vals[_i].key;

	snprintf(text, sizeof text, "[daemon]\n%s = %s\n[listener a]\nport = 0\n", k,
	    daemon_vals[_i].value);
	c = load_ok(text);
	if (strcmp(k, "workers") == 0)
		got = c->workers_auto ? -1 : c->workers;
	else if (strcmp(k, "mode") == 0)
		got = c->mode;
	else if (strcmp(k, "log") == 0)
		got = c->log_syslog;
	else if (strcmp(k, "log_level") == 0)
		got = c->log_level;
	else if (strcmp(k, "shutdown_timeout") == 0)
		got = c->shutdown_timeout_ms;
	else if (strcmp(k, "rlimit_nofile") == 0)
		got = c->rlimit_nofile;
	else if (strcmp(k, "cpu_affinity") == 0)
		got = c->cpu_affinity;
	ck_assert_msg(got == daemon_vals[_i].want, "%s = %s: got %lld, want %lld", k,
	    daemon_vals[_i].value, got, daemon_vals[_i].want);
	conf_free(c);
}
END_TEST

START_TEST(test_listener_values)
{
	struct conf *c = load_ok(
	    "[daemon]\nmode = shared\n"
	    "[listener a]\naddress = 127.0.0.1\nport = 65535\nhandler = discard\nbacklog = 17\n"
	    "ipv6only = no\nreuseport = yes\nkeepalive = yes\ndefer_accept = yes\nfastopen = 5\n"
	    "max_connections = 0\nidle_timeout = 0s\nallow =\ndeny =\nproxy_protocol = off\n"
	    "[listener b]\naddress = ::1\nport = 1\nhandler = daytime\nreuseport = no\n"
	    "[listener c]\naddress = unix:/tmp/acceptd-unit.sock\nhandler = chargen\n"
	    "[listener d]\nport = 0\nhandler = http\n"
	    "[listener e]\nport = 0\nhandler = echo\nidle_timeout = 0ms\n");
	struct conf_listener *l = c->listeners;

	ck_assert_int_eq(c->nlisteners, 5);
	ck_assert_str_eq(l->address, "127.0.0.1");
	ck_assert_int_eq(l->line, 3);
	ck_assert_int_eq(l->address_line, 4);
	ck_assert_int_eq(l->port, 65535);
	ck_assert_int_eq(l->port_line, 5);
	ck_assert_str_eq(l->handler->name, "discard");
	ck_assert_int_eq(l->handler_line, 6);
	ck_assert_int_eq(l->backlog, 17);
	ck_assert_int_eq(l->ipv6only, 0);
	ck_assert_int_eq(l->reuseport, 1);       /* listener overrides mode */
	ck_assert_int_eq(l->reuseport_set, 1);
	ck_assert_int_eq(l->keepalive, 1);
	ck_assert_int_eq(l->defer_accept, 1);
	ck_assert_int_eq(l->fastopen, 5);
	ck_assert_int_eq(l->naddrs, 1);
	ck_assert(has_addr(l, "127.0.0.1:65535"));

	l = l->next;
	ck_assert_str_eq(l->name, "b");
	ck_assert_int_eq(l->line, 18);
	ck_assert_str_eq(l->handler->name, "daytime");
	ck_assert_int_eq(l->reuseport, 0);
	ck_assert_int_eq(l->naddrs, 1);
	ck_assert(has_addr(l, "[::1]:1"));

	l = l->next;
	ck_assert_str_eq(l->handler->name, "chargen");
	ck_assert_int_eq(l->reuseport, 0);       /* never on a unix socket */
	ck_assert_int_eq(l->naddrs, 1);
	ck_assert_int_eq(l->addrs[0].ss.ss_family, AF_UNIX);
	ck_assert_str_eq(((struct sockaddr_un *)&l->addrs[0].ss)->sun_path, "/tmp/acceptd-unit.sock");
	ck_assert(has_addr(l, "unix:/tmp/acceptd-unit.sock"));

	l = l->next;
	ck_assert_str_eq(l->handler->name, "http");
	ck_assert_int_eq(l->reuseport, 0);       /* mode = shared */
	ck_assert_int_eq(l->naddrs, 2);
	ck_assert(has_addr(l, "0.0.0.0:0"));
	ck_assert(has_addr(l, "[::]:0"));
	l = l->next;
	ck_assert_str_eq(l->handler->name, "echo");
	conf_free(c);
}
END_TEST

/* A backlog above somaxconn is only warned about; the value is kept. */
START_TEST(test_backlog_above_somaxconn)
{
	char text[128];
	struct conf *c;

	snprintf(text, sizeof text, "[listener a]\nport = 0\nbacklog = %d\n", somaxconn() + 1);
	c = load_ok(text);
	ck_assert_int_eq(c->listeners->backlog, somaxconn() + 1);
	conf_free(c);
}
END_TEST

static const struct {
	const char *s;
	int v;
} bools[] = {
	{ "yes", 1 }, { "no", 0 }, { "on", 1 }, { "off", 0 }, { "true", 1 }, { "false", 0 },
	{ "1", 1 }, { "0", 0 }, { "YES", 1 }, { "No", 0 }, { "ON", 1 }, { "oFF", 0 },
	{ "True", 1 }, { "FALSE", 0 },
};

/* Every boolean spelling through every boolean key. */
START_TEST(test_bool_keys)
{
	static const char *const keys[] = { "ipv6only", "reuseport", "keepalive", "defer_accept" };
	char text[256];

	for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
		struct conf *c;
		int got;

		snprintf(text, sizeof text, "[listener a]\naddress = 127.0.0.1\nport = 0\n%s = %s\n",
		    keys[k], bools[_i].s);
		c = load_ok(text);
		got = k == 0 ? c->listeners->ipv6only : k == 1 ? c->listeners->reuseport :
		    k == 2 ? c->listeners->keepalive : c->listeners->defer_accept;
		ck_assert_msg(got == bools[_i].v, "%s = %s gave %d", keys[k], bools[_i].s, got);
		conf_free(c);
	}
}
END_TEST

/* ---- errors, each with its line ---------------------------------------- */

static const struct {
	const char *text;
	int line;
	const char *sub;
} errs[] = {
	/* sections */
	{ "[daemon]\nworkers = 2\nbogus = 1\n[listener a]\n", 3, "unknown key 'bogus' in [daemon]" },
	{ "[listener a]\nport = 0\naddress = 127.0.0.1\nbogus = 1\n", 4, "handler echo" },
	{ "[listener a]\nport = 0\nbogus = 1\n", 3, "bogus" },
	{ "[listener a]\nport = 0\n\n[foo]\nx = 1\n", 4, "unknown section [foo]" },
	{ "[listener a.b]\n", 1, "bad listener name" },
	{ "; c\n[listener a b]\n", 2, "bad listener name" },
	{ "[listener ]\n", 1, "bad listener name" },
	{ "[listener a]\nport = 0\n\n[listener a]\nport = 0\n", 4, "duplicate listener 'a'" },
	{ "[daemon]\nworkers = 1\nworkers = 2\n[listener a]\n", 3, "duplicate key 'workers'" },
	{ "[daemon]\nworkers = 1\nworkers =\n[listener a]\n", 3, "duplicate key 'workers'" },
	{ "[daemon]\nworkers = 1\n\n[daemon]\n[listener a]\n", 4, "duplicate [daemon]" },
	{ "[listener a]\nport = 0\n[daemon]\nworkers = 1\n[daemon]\n", 5, "duplicate [daemon]" },
	{ "workers = 1\n[listener a]\n", 1, "outside any section" },
	{ "; comment\n\n# comment\nport = 1\n[listener a]\n", 4, "outside any section" },
	{ "[listener a]\nport = 0\n[module x]\npath = /nonexistent/x.so\n", 4,
	  "module x: /nonexistent/x.so: No such file or directory" },
	{ "[module x]\n[listener a]\n", 1, "[module x] has no path" },
	{ "[module x]\npath = /x.so\nfoo = 1\n[listener a]\n", 3, "unknown key 'foo' in [module x]" },
	{ "[module x]\npath = /x.so\npath = /y.so\n[listener a]\n", 3, "duplicate key 'path'" },
	{ "[module x]\npath =\n[listener a]\n", 2, "path: empty" },
	{ "[module x y]\npath = /x.so\n[listener a]\n", 1, "bad module name" },
	{ "[module x]\npath = /a.so\n[module x]\npath = /b.so\n", 3, "duplicate module 'x'" },
	{ "[module x]\npath = /etc\n[listener a]\n", 2, "not a regular file" },
	{ "[module x]\npath = /etc/passwd\n[listener a]\n", 2, "module x: cannot load" },
	/* [daemon] values */
	{ "[daemon]\nworkers = 0\n[listener a]\n", 2, "workers: bad value '0'" },
	{ "[daemon]\nworkers = 1025\n[listener a]\n", 2, "workers: bad value '1025'" },
	{ "[daemon]\nworkers = lots\n[listener a]\n", 2, "workers: bad value 'lots'" },
	{ "[daemon]\nworkers = -1\n[listener a]\n", 2, "workers: bad value" },
	{ "[daemon]\nworkers = 2x\n[listener a]\n", 2, "workers: bad value" },
	{ "[daemon]\n\nmode = fork\n[listener a]\n", 3, "mode: bad value 'fork'" },
	{ "[daemon]\nlog = file\n[listener a]\n", 2, "log: bad value 'file'" },
	{ "[daemon]\nlog_level = verbose\n[listener a]\n", 2, "log_level: bad value 'verbose'" },
	{ "[daemon]\nshutdown_timeout = 10x\n[listener a]\n", 2, "shutdown_timeout: bad value '10x'" },
	{ "[daemon]\nshutdown_timeout = 1h\n[listener a]\n", 2, "shutdown_timeout: bad value" },
	{ "[daemon]\nshutdown_timeout = -1s\n[listener a]\n", 2, "shutdown_timeout: bad value" },
	{ "[daemon]\nshutdown_timeout = 1.5s\n[listener a]\n", 2, "shutdown_timeout: bad value" },
	{ "[daemon]\nshutdown_timeout = ms\n[listener a]\n", 2, "shutdown_timeout: bad value" },
	{ "[daemon]\nrlimit_nofile = -1\n[listener a]\n", 2, "rlimit_nofile: bad value" },
	{ "[daemon]\ncpu_affinity = yes\n[listener a]\n", 2, "cpu_affinity: bad value" },
	{ "[daemon]\nuser = no-such-user-acceptd\n[listener a]\n", 2, "no such user 'no-such-user-acceptd'" },
	{ "[daemon]\ngroup = no-such-group-acceptd\n[listener a]\n", 2, "no such group" },
	/* listener values */
	{ "[listener a]\nport = 0\nkeepalive = maybe\n", 3, "keepalive: bad value 'maybe'" },
	{ "[listener a]\nport = 0\nipv6only = 2\n", 3, "ipv6only: bad value" },
	{ "[listener a]\nport = 0\nreuseport = y\n", 3, "reuseport: bad value" },
	{ "[listener a]\nport = 0\ndefer_accept = nope\n", 3, "defer_accept: bad value" },
	{ "[listener a]\nport = 65536\n", 2, "port: bad value '65536'" },
	{ "[listener a]\nport = -1\n", 2, "port: bad value '-1'" },
	{ "[listener a]\nport = http\n", 2, "port: bad value 'http'" },
	{ "[listener a]\nport = 80x\n", 2, "port: bad value" },
	{ "[listener a]\nport = 0\nbacklog = 0\n", 3, "backlog: bad value '0'" },
	{ "[listener a]\nport = 0\nbacklog = -5\n", 3, "backlog: bad value" },
	{ "[listener a]\nport = 0\nfastopen = -1\n", 3, "fastopen: bad value" },
	{ "[listener a]\nport = 0\n\nhandler = nosuch\n", 4, "unknown handler 'nosuch'" },
	{ "[listener a]\nport = 0\nhandler = Echo\n", 3, "unknown handler" },
	{ "[listener a]\nport = 0\nmax_connections = x\n", 3, "max_connections: bad value" },
	{ "[listener a]\nport = 0\nidle_timeout = soon\n", 3, "idle_timeout: bad value" },
	{ "[listener a]\naddress = unix:/tmp/acceptd-unit-x.sock\nallow = 10.0.0.0/8\n", 3,
	  "allow does not apply to unix address" },
	{ "[listener a]\naddress = unix:/tmp/acceptd-unit-x.sock\n\ndeny = ::1\n", 4,
	  "deny does not apply to unix address" },
	{ "[listener a]\nport = 0\nallow = 10.0.0.0/8,,/8\n", 3, "bad CIDR '/8'" },
	{ "[listener a]\nport = 0\nhandler = exec\n", 1, "handler exec needs command" },
	{ "[listener a]\nport = 0\nhandler = exec\ncommand = 'x\n", 4, "command: unterminated ' quote" },
	{ "[listener a]\nport = 0\nhandler = exec\ncommand =  \n", 4, "command: empty command" },
	{ "[listener a]\nport = 0\nhandler = exec\ncommand = no-such-prog-acceptd\n", 1,
	  "no-such-prog-acceptd not found in" },
	{ "[listener a]\nport = 0\nhandler = exec\ncommand = /nonexistent/prog\n", 1,
	  "cannot run /nonexistent/prog" },
	{ "[listener a]\nport = 0\nallow = 10.0.0.0/33\n", 3, "bad CIDR '10.0.0.0/33'" },
	{ "[listener a]\nport = 0\nallow = 10.0.0.0/8, ::/129\n", 3, "bad CIDR '::/129'" },
	{ "[listener a]\nport = 0\ndeny = 10.0.0.300\n", 3, "bad CIDR '10.0.0.300'" },
	{ "[listener a]\nport = 0\ndeny = example.org\n", 3, "bad CIDR" },
	{ "[listener a]\nport = 0\nproxy_protocol = v3\n", 3, "proxy_protocol: bad value 'v3'" },
	/* addresses */
	{ "[listener a]\naddress = 127.0.0.1\nport = 7100\n[listener b]\nport = 7100\naddress = 127.0.0.1\n",
	  6, "address 127.0.0.1:7100 is already listener a's" },
	{ "[listener a]\nport = 7100\n[listener b]\nport = 7100\n", 4, "already listener a's" },
	{ "[listener a]\naddress = ::1\nport = 7100\n[listener b]\naddress = [::1]\nport = 7100\n",
	  5, "[::1]:7100" },
	{ "[listener a]\naddress = unix:/tmp/x.sock\n[listener b]\n\naddress = unix:/tmp/x.sock\n",
	  5, "unix:/tmp/x.sock is already listener a's" },
	{ "[listener a]\naddress = unix:/tmp/x.sock\nport = 80\n", 3, "port does not apply" },
	{ "[listener a]\naddress = unix:/tmp/x.sock\nport = 0\n", 3, "port does not apply" },
	{ "[listener a]\naddress = unix:x.sock\n", 2, "absolute" },
	{ "[listener a]\naddress = 127.0.0.1:80\nport = 0\n", 2, "cannot resolve" },
	{ "[listener a]\naddress = 10.0.0.256\nport = 0\n", 2, "cannot resolve" },
	/* the reader */
	{ "", 1, "no [listener" },
	{ "; only a comment\n[daemon]\nworkers = 1\n", 1, "no [listener" },
	{ "[listener a]\nport = 0\nnot a key value line\n", 3, "syntax error" },
	/* CRLF does not shift the line numbers */
	{ "[listener a]\r\nport = 0\r\n\r\nbogus = 1\r\n", 4, "bogus" },
};

START_TEST(test_error_table)
{
	expect_err(errs[_i].text, errs[_i].line, errs[_i].sub);
}
END_TEST

/* "[listener]" without a name is refused on its line, whatever the words. */
START_TEST(test_listener_without_name)
{
	struct conf *c = unit_load("; x\n[listener]\nport = 0\n", path, err, sizeof err);
	char prefix[96];

	ck_assert_ptr_null(c);
	snprintf(prefix, sizeof prefix, "%s:2: ", path);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "err: %s", err);
}
END_TEST

/* The error is the first one in the file, even when inih keeps parsing
 * after its own syntax error (INI_STOP_ON_FIRST_ERROR 0). */
START_TEST(test_first_error_wins)
{
	expect_err("[daemon]\nthis line is garbage\nbogus = 1\n[listener a]\n", 2, "syntax error");
}
END_TEST

START_TEST(test_unterminated_header)
{
	expect_err("[listener a\nport = 0\n", 1, "");
}
END_TEST

/* Every listener key, given twice, is a duplicate on the second line. */
static const struct {
	const char *key, *value;
} lkeys[] = {
	{ "address", "127.0.0.1" }, { "port", "0" }, { "handler", "echo" }, { "backlog", "5" },
	{ "ipv6only", "yes" }, { "reuseport", "no" }, { "keepalive", "no" },
	{ "defer_accept", "no" }, { "fastopen", "0" }, { "max_connections", "0" },
	{ "idle_timeout", "0" }, { "allow", "" }, { "deny", "" }, { "proxy_protocol", "off" },
	{ "port", "" },
};

START_TEST(test_duplicate_listener_key)
{
	char text[256];
	const char *k = lkeys[_i].key;

	snprintf(text, sizeof text, "[listener a]\n%s = %s\n%s = %s\n%s%s", k, lkeys[_i].value,
	    k, lkeys[_i].value, strcmp(k, "address") ? "address = 127.0.0.1\n" : "",
	    strcmp(k, "port") ? "port = 0\n" : "");
	expect_err(text, 3, "duplicate key");
}
END_TEST

START_TEST(test_duplicate_handler_key)
{
	expect_err("[listener a]\nport = 0\nfoo = 1\nbar = 2\nfoo = 3\n", 5, "duplicate key 'foo'");
}
END_TEST

/* Two listeners on port 0 on the same address never clash. */
START_TEST(test_two_port0_listeners)
{
	struct conf *c = load_ok("[listener a]\nport = 0\n[listener b]\nport = 0\n"
	    "[listener c]\naddress = 127.0.0.1\nport = 0\n[listener d]\naddress = 127.0.0.1\nport = 0\n");

	ck_assert_int_eq(c->nlisteners, 4);
	conf_free(c);
}
END_TEST

START_TEST(test_same_port_other_address)
{
	struct conf *c = load_ok("[listener a]\naddress = 127.0.0.1\nport = 7100\n"
	    "[listener b]\naddress = 127.0.0.2\nport = 7100\n[listener c]\naddress = 127.0.0.1\nport = 7101\n");

	ck_assert_int_eq(c->nlisteners, 3);
	conf_free(c);
}
END_TEST

START_TEST(test_reuseport_with_unix)
{
	/* the offending key is reuseport (line 3), as port is for "port" */
	expect_err("[listener a]\naddress = unix:/tmp/x.sock\nreuseport = yes\n", 3,
	    "reuseport does not apply");
}
END_TEST

START_TEST(test_reuseport_no_with_unix)
{
	struct conf *c = load_ok("[listener a]\naddress = unix:/tmp/x.sock\nreuseport = no\n");

	ck_assert_int_eq(c->listeners->reuseport, 0);
	conf_free(c);
}
END_TEST

START_TEST(test_line_length)
{
	char text[512], x[256];

	memset(x, 'x', sizeof x);
	/* 198 characters is the longest line accepted (inih's INI_MAX_LINE 200) */
	snprintf(text, sizeof text, "[listener a]\nport = 0\n; %.*s\n", 196, x);
	conf_free(load_ok(text));
	snprintf(text, sizeof text, "[listener a]\nport = 0\nfoo = %.*s\n", 192, x);
	expect_err(text, 3, "handler echo");      /* whole value reached the handler check */
	snprintf(text, sizeof text, "[listener a]\nport = 0\n; %.*s\n", 197, x);
	expect_err(text, 3, "line too long");
	snprintf(text, sizeof text, "[listener a]\nport = 0\nx = %.*s\n", 200, x);
	expect_err(text, 3, "line too long");
	snprintf(text, sizeof text, "[listener a]\n%.*s\nport = 0\n", 250, x);
	expect_err(text, 2, "line too long");
	/* leading blanks are not counted */
	snprintf(text, sizeof text, "[listener a]\nport = 0\n      ; %.*s\n", 196, x);
	conf_free(load_ok(text));
}
END_TEST

START_TEST(test_nul_byte)
{
	static const char text[] = "[listener a]\nport = 0\nfoo = b\0ar\n";

	expect_err_n(text, sizeof text - 1, 3, "binary");
	expect_err_n("\0", 1, 1, "binary");
}
END_TEST

START_TEST(test_unresolvable_host)
{
	struct timespec t0, t1;
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_err("[listener a]\nport = 0\n\naddress = no-such-host.invalid\n", 4,
	    "cannot resolve 'no-such-host.invalid'");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(secs < 10, "resolution took %.1f s", secs);
}
END_TEST

START_TEST(test_missing_file)
{
	char want[256];
	struct conf *c = conf_load("/nonexistent/acceptd-unit.conf", err, sizeof err);

	ck_assert_ptr_null(c);
	snprintf(want, sizeof want, "/nonexistent/acceptd-unit.conf: cannot open: %s", strerror(ENOENT));
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_directory_as_file)
{
	struct conf *c = conf_load("/tmp", err, sizeof err);

	ck_assert_ptr_null(c);
	ck_assert_msg(strncmp(err, "/tmp: ", 6) == 0, "err: %s", err);
}
END_TEST

START_TEST(test_tiny_errbuf)
{
	char small[8];
	struct conf *c;

	unit_write_file(path, "[daemon]\nbogus = 1\n", 19);
	c = conf_load(path, small, sizeof small);
	unlink(path);
	ck_assert_ptr_null(c);
	ck_assert_uint_lt(strlen(small), sizeof small);
}
END_TEST

/* ---- syntax accepted --------------------------------------------------- */

START_TEST(test_indented_and_comments)
{
	struct conf *c = load_ok(
	    "# a comment\n"
	    "; another\n"
	    "  [daemon]\n"
	    "\t workers = 2 ; inline comment\n"
	    "   # port = 5\n"
	    "[listener a]   ; trailing comment\n"
	    "    address = 127.0.0.1   ; loopback\n"
	    "\tport = 0\n"
	    "  handler = discard\n");

	ck_assert_int_eq(c->workers, 2);
	ck_assert_str_eq(c->listeners->address, "127.0.0.1");
	ck_assert_int_eq(c->listeners->address_line, 7);
	ck_assert_int_eq(c->listeners->port, 0);
	ck_assert_str_eq(c->listeners->handler->name, "discard");
	conf_free(c);
}
END_TEST

START_TEST(test_crlf)
{
	struct conf *c = load_ok("[daemon]\r\nworkers = 3\r\n\r\n[listener a]\r\naddress = 127.0.0.1\r\n"
	    "port = 0\r\nkeepalive = yes\r\n");

	ck_assert_int_eq(c->workers, 3);
	ck_assert_str_eq(c->listeners->address, "127.0.0.1");
	ck_assert_int_eq(c->listeners->line, 4);
	ck_assert_int_eq(c->listeners->keepalive, 1);
	conf_free(c);
}
END_TEST

START_TEST(test_no_final_newline)
{
	struct conf *c = load_ok("[listener a]\nport = 0\nhandler = discard");

	ck_assert_str_eq(c->listeners->handler->name, "discard");
	conf_free(c);
}
END_TEST

START_TEST(test_bracketed_v6)
{
	struct conf *c = load_ok("[listener a]\naddress = [::1]\nport = 8081\n");
	struct conf_listener *l = c->listeners;
	const struct sockaddr_in6 *in6 = (const void *)&l->addrs[0].ss;

	ck_assert_int_eq(l->naddrs, 1);
	ck_assert_int_eq(in6->sin6_family, AF_INET6);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
	ck_assert_int_eq(ntohs(in6->sin6_port), 8081);
	ck_assert(has_addr(l, "[::1]:8081"));
	conf_free(c);
}
END_TEST

START_TEST(test_star_both_families)
{
	struct conf *c = load_ok("[listener a]\naddress = *\nport = 8082\n");
	struct conf_listener *l = c->listeners;
	int v4 = 0, v6 = 0;

	ck_assert_int_eq(l->naddrs, 2);
	for (int i = 0; i < l->naddrs; i++) {
		ck_assert_int_eq(port_of(&l->addrs[i]), 8082);
		if (l->addrs[i].ss.ss_family == AF_INET) {
			v4++;
			ck_assert_int_eq(((struct sockaddr_in *)&l->addrs[i].ss)->sin_addr.s_addr,
			    htonl(INADDR_ANY));
		} else if (l->addrs[i].ss.ss_family == AF_INET6) {
			v6++;
			ck_assert(IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&l->addrs[i].ss)->sin6_addr));
		}
	}
	ck_assert_int_eq(v4, 1);
	ck_assert_int_eq(v6, 1);
	conf_free(c);
}
END_TEST

/* A host name gives every address it resolves to, duplicates removed. */
START_TEST(test_host_name)
{
	struct conf *c = load_ok("[listener a]\naddress = localhost\nport = 8083\n");
	struct conf_listener *l = c->listeners;

	ck_assert_int_ge(l->naddrs, 1);
	ck_assert(has_addr(l, "127.0.0.1:8083") || has_addr(l, "[::1]:8083"));
	for (int i = 0; i < l->naddrs; i++)
		for (int j = i + 1; j < l->naddrs; j++)
			ck_assert_msg(l->addrs[i].len != l->addrs[j].len ||
			    memcmp(&l->addrs[i].ss, &l->addrs[j].ss, l->addrs[i].len) != 0,
			    "duplicate address %d and %d", i, j);
	conf_free(c);
}
END_TEST

/* Keys the daemon does not own go to the listener's handler, in order. */
START_TEST(test_handler_keys_kept)
{
	/* The stub (and echo) take no keys; http takes status/body/content_type. */
	struct conf *c;

	if (!handler_http.conf_set) {
		printf("test_conf: SKIP test_handler_keys_kept: the http handler takes no keys yet "
		    "(daemon/handlers/http.c not built)\n");
		return;
	}
	c = load_ok("[listener a]\nport = 0\nhandler = http\nstatus = 404\n");
	ck_assert_ptr_nonnull(c->listeners->hkeys);
	ck_assert_str_eq(c->listeners->hkeys->key, "status");
	ck_assert_str_eq(c->listeners->hkeys->value, "404");
	ck_assert_int_eq(c->listeners->hkeys->line, 4);
	conf_free(c);
	/* HANDLER KEYS (needs the real http handler): a bad value names the key's line */
	expect_err("[listener a]\nport = 0\nhandler = http\n\nstatus = abc\n", 5, "status");
	/* the key order does not matter: handler after its keys */
	c = load_ok("[listener a]\nport = 0\nstatus = 404\nhandler = http\n");
	conf_free(c);
}
END_TEST

/* ---- -T dump round trip ----------------------------------------------- */

static char *
dump_to_string(const struct conf *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	conf_dump(c, f);
	fclose(f);
	return buf;
}

static void
round_trip(const char *text)
{
	struct conf *c = load_ok(text), *c2;
	char *d1 = dump_to_string(c), *d2, dpath[64];
	FILE *f;
	int fd;

	/* the dump goes to a temp file, as -T's output would be saved */
	snprintf(dpath, sizeof dpath, "/tmp/acceptd-unit-dump-XXXXXX");
	ck_assert_int_ge(fd = mkstemp(dpath), 0);
	ck_assert_ptr_nonnull(f = fdopen(fd, "w"));
	conf_dump(c, f);
	fclose(f);
	c2 = conf_load(dpath, err, sizeof err);
	unlink(dpath);
	ck_assert_msg(c2 != NULL, "the dump does not load: %s\n--- dump:\n%s", err, d1);
	d2 = dump_to_string(c2);
	/* the first line names the file; the rest must be identical */
	ck_assert_msg(strcmp(strchr(d1, '\n'), strchr(d2, '\n')) == 0,
	    "round trip differs:\n--- first:\n%s\n--- second:\n%s", d1, d2);
	ck_assert_ptr_nonnull(strstr(d1, "[daemon]\n"));
	free(d1);
	free(d2);
	conf_free(c);
	conf_free(c2);
}

START_TEST(test_dump_round_trip_defaults)
{
	struct conf *c = load_ok("[listener a]\n");
	char *d = dump_to_string(c), want[64];

	round_trip("[listener a]\n");
	/* every default spelled out */
	snprintf(want, sizeof want, "backlog = %d\n", somaxconn());
	ck_assert_ptr_nonnull(strstr(d, want));
	ck_assert_ptr_nonnull(strstr(d, "workers = auto"));
	ck_assert_ptr_nonnull(strstr(d, "mode = reuseport\n"));
	ck_assert_ptr_nonnull(strstr(d, "shutdown_timeout = 10s\n"));
	ck_assert_ptr_nonnull(strstr(d, "log = stderr\n"));
	ck_assert_ptr_nonnull(strstr(d, "log_level = info\n"));
	ck_assert_ptr_nonnull(strstr(d, "[listener a]\naddress = *\nport = 7007\nhandler = echo\n"));
	ck_assert_ptr_nonnull(strstr(d, "ipv6only = yes\nreuseport = yes\n"));
	ck_assert_ptr_nonnull(strstr(d, "proxy_protocol = off\n"));
	free(d);
	conf_free(c);
}
END_TEST

START_TEST(test_dump_round_trip_everything)
{
	round_trip("[daemon]\nworkers = 3\nmode = shared\nuser = root\ngroup = root\n"
	    "pidfile = /tmp/acceptd-unit.pid\nlog = syslog\nlog_level = debug\n"
	    "shutdown_timeout = 90500ms\nrlimit_nofile = 1024\ncpu_affinity = auto\n"
	    "[listener web]\naddress = 127.0.0.1\nport = 8080\nhandler = http\nbacklog = 100\n"
	    "ipv6only = no\nreuseport = yes\nkeepalive = yes\ndefer_accept = yes\nfastopen = 5\n"
	    "[listener v6]\naddress = [::1]\nport = 0\nhandler = discard\n"
	    "[listener sock]\naddress = unix:/tmp/acceptd-unit.sock\nhandler = daytime\n"
	    "[listener all]\nport = 9000\nhandler = chargen\nidle_timeout = 0\n");
	round_trip("[daemon]\nworkers = 1\nshutdown_timeout = 2m\n[listener x]\nport = 1\n");
	round_trip("[daemon]\nshutdown_timeout = 0\n[listener x]\naddress = localhost\nport = 0\n");
}
END_TEST

/* ---- value parsers ---------------------------------------------------- */

START_TEST(test_parse_bool)
{
	static const char *const bad[] = { "", "y", "n", "yess", " yes", "yes ", "2", "-1",
		"enable", "nope" };
	int v;

	for (size_t i = 0; i < sizeof bools / sizeof *bools; i++) {
		v = -7;
		ck_assert_msg(conf_parse_bool(bools[i].s, &v) == 0, "'%s' refused", bools[i].s);
		ck_assert_int_eq(v, bools[i].v);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		v = -7;
		ck_assert_msg(conf_parse_bool(bad[i], &v) == -1, "'%s' accepted", bad[i]);
		ck_assert_int_eq(v, -7);
	}
}
END_TEST

START_TEST(test_parse_int)
{
	long long v;

	ck_assert_int_eq(conf_parse_int("0", 0, 10, &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(conf_parse_int("10", 0, 10, &v), 0);
	ck_assert_int_eq(v, 10);
	/* no signs at all: every integer key is non-negative, and "-0" is not a number */
	ck_assert_int_eq(conf_parse_int("-3", -5, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("-0", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("+1", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("9223372036854775807", 0, LLONG_MAX, &v), 0);
	ck_assert(v == LLONG_MAX);
	v = 42;
	ck_assert_int_eq(conf_parse_int("11", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("-1", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("-", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("+1", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int(" 1", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("1 ", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("1x", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("0x1", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("1.0", 0, 10, &v), -1);
	ck_assert_int_eq(conf_parse_int("99999999999999999999", 0, LLONG_MAX, &v), -1);
	ck_assert_int_eq(conf_parse_int("-99999999999999999999", LLONG_MIN, 0, &v), -1);
	ck_assert_int_eq(v, 42);        /* untouched on failure */
}
END_TEST

START_TEST(test_parse_duration)
{
	static const struct {
		const char *s;
		long long ms;
	} good[] = {
		{ "500ms", 500 }, { "10s", 10000 }, { "2m", 120000 }, { "7", 7000 }, { "0", 0 },
		{ "0ms", 0 }, { "0s", 0 }, { "0m", 0 }, { "1ms", 1 }, { "604800s", 604800000 },
		{ "10080m", 604800000 }, { "604800", 604800000 }, { "604800000ms", 604800000 },
	};
	static const char *const bad[] = { "", "ms", "s", "-1", "-1s", "1h", "1d", "1.5s",
		"10 s", " 10s", "10sec", "10ss", "5mss", "x", "10080m1", "604801s", "10081m",
		"604800001ms", "99999999999999999999", "99999999999999999999ms" };
	long long v;

	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		v = -7;
		ck_assert_msg(conf_parse_duration_ms(good[i].s, &v) == 0, "'%s' refused", good[i].s);
		ck_assert_msg(v == good[i].ms, "'%s' gave %lld", good[i].s, v);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		v = -7;
		ck_assert_msg(conf_parse_duration_ms(bad[i], &v) == -1, "'%s' accepted (%lld)", bad[i], v);
		ck_assert_int_eq(v, -7);
	}
}
END_TEST

START_TEST(test_format_addr)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(80) };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	char buf[160];

	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	inet_pton(AF_INET6, "::1", &in6.sin6_addr);
	strcpy(un.sun_path, "/run/x.sock");
	conf_format_addr((struct sockaddr *)&in, sizeof in, buf, sizeof buf);
	ck_assert_str_eq(buf, "127.0.0.1:80");
	conf_format_addr((struct sockaddr *)&in6, sizeof in6, buf, sizeof buf);
	ck_assert_str_eq(buf, "[::1]:443");
	conf_format_addr((struct sockaddr *)&un, offsetof(struct sockaddr_un, sun_path) + 12, buf,
	    sizeof buf);
	ck_assert_str_eq(buf, "unix:/run/x.sock");
	conf_format_addr((struct sockaddr *)&un, sizeof un, buf, sizeof buf);
	ck_assert_str_eq(buf, "unix:/run/x.sock");
}
END_TEST

static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc;

	tc = tcase_create("defaults");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_empty_values_keep_defaults);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_test(tc, test_daemon_values);
	tcase_add_loop_test(tc, test_daemon_value_table, 0, sizeof daemon_vals / sizeof *daemon_vals);
	tcase_add_test(tc, test_listener_values);
	tcase_add_test(tc, test_backlog_above_somaxconn);
	tcase_add_loop_test(tc, test_bool_keys, 0, sizeof bools / sizeof *bools);
	tcase_add_test(tc, test_two_port0_listeners);
	tcase_add_test(tc, test_same_port_other_address);
	tcase_add_test(tc, test_reuseport_no_with_unix);
	tcase_add_test(tc, test_handler_keys_kept);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_error_table, 0, sizeof errs / sizeof *errs);
	tcase_add_test(tc, test_listener_without_name);
	tcase_add_test(tc, test_first_error_wins);
	tcase_add_test(tc, test_unterminated_header);
	tcase_add_loop_test(tc, test_duplicate_listener_key, 0, sizeof lkeys / sizeof *lkeys);
	tcase_add_test(tc, test_duplicate_handler_key);
	tcase_add_test(tc, test_reuseport_with_unix);
	tcase_add_test(tc, test_unresolvable_host);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_directory_as_file);
	tcase_add_test(tc, test_tiny_errbuf);
	suite_add_tcase(s, tc);

	tc = tcase_create("reader");
	tcase_add_test(tc, test_line_length);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_indented_and_comments);
	tcase_add_test(tc, test_crlf);
	tcase_add_test(tc, test_no_final_newline);
	tcase_add_test(tc, test_bracketed_v6);
	tcase_add_test(tc, test_star_both_families);
	tcase_add_test(tc, test_host_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("dump");
	tcase_add_test(tc, test_dump_round_trip_defaults);
	tcase_add_test(tc, test_dump_round_trip_everything);
	suite_add_tcase(s, tc);

	tc = tcase_create("parsers");
	tcase_add_test(tc, test_parse_bool);
	tcase_add_test(tc, test_parse_int);
	tcase_add_test(tc, test_parse_duration);
	tcase_add_test(tc, test_format_addr);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	/* conf_load logs warnings (backlog over somaxconn) to stderr; keep them */
	return unit_run(conf_suite());
}
