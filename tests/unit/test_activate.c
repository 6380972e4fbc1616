/* test_activate: activate.c with real sockets put at fds 3, 4, ... in a
 * forked child as systemd would pass them: parsing LISTEN_*, names, flags,
 * matching by name and by address, the errors, a foreign LISTEN_PID. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <check.h>

#include "activate.h"
#include "conf.h"
#include "unit.h"

/* ---- sockets the test passes on ---- */

/* A TCP socket on addr (an IPv4 or IPv6 literal), port 0, listening or
 * not, with SO_REUSEPORT or not; v6only for IPv6. -1 if the family is
 * missing here (no IPv6 in a container). The port goes to *port. */
static int
tcp_sock(const char *addr, int listening, int reuseport, int v6only, int *port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, on = 1, v6 = strchr(addr, ':') != NULL;

	if (v6) {
		struct sockaddr_in6 *in6 = (void *)&ss;

		in6->sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
		len = sizeof *in6;
	} else {
		struct sockaddr_in *in = (void *)&ss;

		in->sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, addr, &in->sin_addr), 1);
		len = sizeof *in;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
		return -1;
	if (reuseport)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on), 0);
	if (v6)
		ck_assert_int_eq(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only), 0);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;      /* ::1 without IPv6 configured */
	}
	if (listening)
		ck_assert_int_eq(listen(fd, 16), 0);
	len = sizeof ss;
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static char unix_dir[64];

static int
unix_sock(const char *name, char *path, size_t n)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (!unix_dir[0]) {
		snprintf(unix_dir, sizeof unix_dir, "/tmp/acceptd-activate-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(unix_dir));
	}
	snprintf(path, n, "%s/%s", unix_dir, name);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	return fd;
}

static void
unix_cleanup(const char *path)
{
	unlink(path);
	rmdir(unix_dir);
	unix_dir[0] = '\0';
}

/* ---- a hand-made struct conf, independent of the config parser ---- */

struct fake_conf {
	struct conf conf;
	struct conf_listener l[8];
	struct conf_addr a[8][2];
};

static void
fake_addr(struct conf_addr *ca, const char *addr, int port)
{
	memset(ca, 0, sizeof *ca);
	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (void *)&ca->ss;

		sun->sun_family = AF_UNIX;
		snprintf(sun->sun_path, sizeof sun->sun_path, "%s", addr + 5);
		ca->len = offsetof(struct sockaddr_un, sun_path) + strlen(addr + 5) + 1;
	} else if (strchr(addr, ':')) {
		struct sockaddr_in6 *in6 = (void *)&ca->ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
		ca->len = sizeof *in6;
	} else {
		struct sockaddr_in *in = (void *)&ca->ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET, addr, &in->sin_addr), 1);
		ca->len = sizeof *in;
	}
}

/* A listener NAME on ADDRESS:PORT; "*" is 0.0.0.0 and ::, as conf resolves it. */
static struct conf_listener *
fake_listener(struct fake_conf *f, const char *name, const char *address, int port,
    int reuseport)
{
	int i = f->conf.nlisteners++;
	struct conf_listener *l = &f->l[i];

	ck_assert_int_lt(i, 8);
	l->name = (char *)name;
	l->address = (char *)address;
	l->port = port;
	l->reuseport = reuseport;
	l->addrs = f->a[i];
	if (strcmp(address, "*") == 0) {
		fake_addr(&l->addrs[0], "0.0.0.0", port);
		fake_addr(&l->addrs[1], "::", port);
		l->naddrs = 2;
	} else {
		fake_addr(&l->addrs[0], address, port);
		l->naddrs = 1;
	}
	if (i > 0)
		f->l[i - 1].next = l;
	else
		f->conf.listeners = l;
	return l;
}

/* ---- the child that systemd started ---- */

typedef void child_fn(struct activate_set *s, int rc, const char *err, FILE *out, void *arg);

/* Fork; in the child put fds[i] at 3 + i, set LISTEN_PID (the child's pid,
 * or pid_delta added to it), LISTEN_FDS = n (or fds_env), LISTEN_FDNAMES
 * (unless NULL), run activate_take() and fn, and send what fn prints back.
 * The test process's own descriptors are never touched. fn must not use
 * ck_assert: Check would write its bookkeeping to a descriptor that is a
 * passed socket in the child (and a TCP socket answers that with SIGPIPE). */
static char *
run_child(const int *fds, int n, const char *fds_env, const char *names, int pid_delta,
    child_fn *fn, void *arg)
{
	static char result[8192];
	size_t got = 0;
	ssize_t r;
	pid_t pid;
	int p[2], st;

	ck_assert_int_eq(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct activate_set s;
		char err[512], v[32];
		int high[16], w, rc;
		FILE *out;

		/* Out of the way first, then into place. */
		w = fcntl(p[1], F_DUPFD, 200);
		for (int i = 0; i < n; i++)
			high[i] = fcntl(fds[i], F_DUPFD, 100);
		for (int i = 0; i < n; i++) {
			dup2(high[i], 3 + i);
			close(high[i]);
		}
		/* Nothing after the passed sockets may be open at 3 + n: a
		 * test relies on that to check a missing descriptor. */
		for (int fd = 3 + n; fd < 100; fd++)
			close(fd);
		if (!(out = fdopen(w, "w")))
			_exit(2);
		snprintf(v, sizeof v, "%ld", (long)getpid() + pid_delta);
		setenv("LISTEN_PID", v, 1);
		snprintf(v, sizeof v, "%d", n);
		setenv("LISTEN_FDS", fds_env ? fds_env : v, 1);
		if (names)
			setenv("LISTEN_FDNAMES", names, 1);
		else
			unsetenv("LISTEN_FDNAMES");
		rc = activate_take(&s, err, sizeof err);
		fn(&s, rc, err, out, arg);
		activate_free(&s);
		fclose(out);
		_exit(0);
	}
	close(p[1]);
	while (got < sizeof result - 1 && (r = read(p[0], result + got, sizeof result - 1 - got)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		ck_assert_int_gt(r, 0);
		got += r;
	}
	result[got] = '\0';
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d: %s", st, result);
	return result;
}

static const char *
env_left(void)
{
	return getenv("LISTEN_PID") || getenv("LISTEN_FDS") || getenv("LISTEN_FDNAMES") ?
	    "env left" : "env gone";
}

/* Everything activate_take() found, one line per socket. */
static void
print_take(struct activate_set *s, int rc, const char *err, FILE *out, void *arg)
{
	char d[400];

	fprintf(out, "rc=%d err='%s' %s\n", rc, err, env_left());
	for (int i = 0; rc > 0 && i < s->n; i++) {
		struct activate_sock *as = &s->socks[i];
		int fdfl = fcntl(as->fd, F_GETFD), fl = fcntl(as->fd, F_GETFL);

		activate_describe(as, d, sizeof d);
		fprintf(out, "%s type=%d listening=%d reuseport=%d v6only=%d cloexec=%d nonblock=%d\n",
		    d, as->type, as->listening, as->reuseport, as->v6only,
		    (fdfl & FD_CLOEXEC) != 0, (fl & O_NONBLOCK) != 0);
	}
}

START_TEST(test_take_names_and_flags)
{
	char path[128], want[2048];
	int fds[3], p1, p2, have6;
	char *got;

	fds[0] = tcp_sock("127.0.0.1", 1, 1, 0, &p1);
	ck_assert_int_ge(fds[0], 0);
	fds[1] = tcp_sock("::1", 1, 0, 1, &p2);
	have6 = fds[1] >= 0;
	if (!have6)                     /* no IPv6 here: a second IPv4 one */
		fds[1] = tcp_sock("127.0.0.1", 1, 0, 0, &p2);
	fds[2] = unix_sock("s", path, sizeof path);
	got = run_child(fds, 3, NULL, "web:echo:local", 0, print_take, NULL);
	snprintf(want, sizeof want,
	    "rc=3 err='' env gone\n"
	    "inherited socket 3 (name 'web', 127.0.0.1:%d) type=1 listening=1 reuseport=1 v6only=0 cloexec=1 nonblock=1\n"
	    "inherited socket 4 (name 'echo', %s:%d) type=1 listening=1 reuseport=0 v6only=%d cloexec=1 nonblock=1\n"
	    "inherited socket 5 (name 'local', unix:%s) type=1 listening=1 reuseport=0 v6only=0 cloexec=1 nonblock=1\n",
	    p1, have6 ? "[::1]" : "127.0.0.1", p2, have6, path);
	ck_assert_str_eq(got, want);

	/* Without LISTEN_FDNAMES: no names. Empty entries are no names too. */
	got = run_child(fds, 2, NULL, NULL, 0, print_take, NULL);
	ck_assert_msg(strstr(got, "rc=2 err='' env gone\ninherited socket 3 (127.0.0.1:") == got, "%s", got);
	got = run_child(fds, 2, NULL, ":echo", 0, print_take, NULL);
	ck_assert_msg(strstr(got, "inherited socket 3 (127.0.0.1:") &&
	    strstr(got, "inherited socket 4 (name 'echo', "), "%s", got);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	unix_cleanup(path);
}
END_TEST

/* Sockets meant for another process: left alone, variables removed. */
static void
print_foreign(struct activate_set *s, int rc, const char *err, FILE *out, void *arg)
{
	fprintf(out, "rc=%d n=%d %s cloexec=%d nonblock=%d\n", rc, s->n, env_left(),
	    (fcntl(3, F_GETFD) & FD_CLOEXEC) != 0, (fcntl(3, F_GETFL) & O_NONBLOCK) != 0);
	fprintf(out, "%s", err);
}

START_TEST(test_take_foreign_pid)
{
	int fds[1], port;
	char *got;

	fds[0] = tcp_sock("127.0.0.1", 1, 0, 0, &port);
	got = run_child(fds, 1, NULL, "web", 1, print_foreign, NULL);
	ck_assert_msg(strncmp(got, "rc=0 n=0 env gone cloexec=0 nonblock=0\nLISTEN_PID ", 50) == 0 &&
	    strstr(got, "is not this process"), "%s", got);
	got = run_child(fds, 1, NULL, "web", -1000000, print_foreign, NULL);
	ck_assert_msg(strncmp(got, "rc=0 n=0 env gone cloexec=0 nonblock=0\n", 39) == 0, "%s", got);
	close(fds[0]);
}
END_TEST

static void
print_rc(struct activate_set *s, int rc, const char *err, FILE *out, void *arg)
{
	fprintf(out, "rc=%d n=%d %s: %s", rc, s->n, env_left(), err);
}

START_TEST(test_take_errors)
{
	int fds[2], port;
	char *got;

	fds[0] = tcp_sock("127.0.0.1", 1, 0, 0, &port);
	fds[1] = tcp_sock("127.0.0.1", 1, 0, 0, &port);
	got = run_child(fds, 1, "abc", NULL, 0, print_rc, NULL);
	ck_assert_str_eq(got, "rc=-1 n=0 env gone: LISTEN_FDS: bad value 'abc' (0..4096)");
	got = run_child(fds, 1, "-1", NULL, 0, print_rc, NULL);
	ck_assert_str_eq(got, "rc=-1 n=0 env gone: LISTEN_FDS: bad value '-1' (0..4096)");
	got = run_child(fds, 1, "0", NULL, 0, print_rc, NULL);
	ck_assert_str_eq(got, "rc=0 n=0 env gone: ");
	/* Fd 4 is not open in the child. */
	got = run_child(fds, 1, "2", NULL, 0, print_rc, NULL);
	ck_assert_str_eq(got, "rc=-1 n=0 env gone: LISTEN_FDS: inherited descriptor 4: Bad file descriptor");
	got = run_child(fds, 2, NULL, "a", 0, print_rc, NULL);
	ck_assert_str_eq(got, "rc=-1 n=0 env gone: LISTEN_FDNAMES has 1 names for 2 sockets (LISTEN_FDS)");
	got = run_child(fds, 2, NULL, "a:b:c", 0, print_rc, NULL);
	ck_assert_str_eq(got, "rc=-1 n=0 env gone: LISTEN_FDNAMES has more names than the 2 sockets of LISTEN_FDS");
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/* ---- matching ---- */

static const char *const slot_names[] = { "bind", "inherited", "covered" };

/* The match result: per socket its listener, how, and its address index;
 * per listener and address the slot. */
static void
print_match(struct activate_set *s, int rc, const char *err, FILE *out, void *arg)
{
	struct fake_conf *f = arg;
	struct activate_sock *by[8], *as, *why;
	char e[512];

	if (rc < 0) {
		fprintf(out, "take: %s\n", err);
		return;
	}
	if (activate_match(s, &f->conf, e, sizeof e) < 0) {
		fprintf(out, "match: %s\n", e);
		return;
	}
	for (int i = 0; i < s->n; i++)
		fprintf(out, "%d->%s/%s/%d ", s->socks[i].fd, s->socks[i].listener->name,
		    s->socks[i].by_name ? "name" : "addr", s->socks[i].addr);
	for (struct conf_listener *l = f->conf.listeners; l; l = l->next) {
		int n = activate_by_name(s, l, by, 8);

		fprintf(out, "| %s copies=%d", l->name, activate_copies(s, l, 4, &why));
		if (why)
			fprintf(out, " (%d has no reuseport)", why->fd);
		if (n) {
			fprintf(out, " byname");
			for (int i = 0; i < n; i++)
				fprintf(out, " %d", by[i]->fd);
			continue;
		}
		for (int a = 0; a < l->naddrs; a++) {
			enum activate_slot sl = activate_slot(s, l, a, &as);

			fprintf(out, " %s", slot_names[sl]);
			if (as)
				fprintf(out, ":%d", as->fd);
		}
	}
	fprintf(out, "| inherited(3)=%d inherited(9)=%d\n", activate_inherited(s, 3),
	    activate_inherited(s, 9));
}

START_TEST(test_match_by_name_and_address)
{
	struct fake_conf f = { 0 };
	int fds[3], p1, p2;
	char path[128], a[160], want[1024];
	char *got;

	fds[0] = tcp_sock("127.0.0.1", 1, 1, 0, &p1);    /* by name, reuseport */
	fds[1] = tcp_sock("127.0.0.1", 1, 0, 0, &p2);    /* by address */
	fds[2] = unix_sock("u", path, sizeof path);      /* by unix path */
	snprintf(a, sizeof a, "unix:%s", path);
	/* web: named, at an address other than the socket's: the name wins. */
	fake_listener(&f, "web", "127.0.0.2", 80, 1);
	fake_listener(&f, "echo", "127.0.0.1", p2, 1);
	fake_listener(&f, "local", a, 7007, 0);
	fake_listener(&f, "other", "*", 7007, 1);
	got = run_child(fds, 3, NULL, "web:nosuch:", 0, print_match, &f);
	snprintf(want, sizeof want,
	    "3->web/name/-1 4->echo/addr/0 5->local/addr/0 "
	    "| web copies=4 byname 3"
	    "| echo copies=1 (4 has no reuseport) inherited:4"
	    "| local copies=1 inherited:5"
	    "| other copies=4 bind bind"
	    "| inherited(3)=1 inherited(9)=0\n");
	ck_assert_str_eq(got, want);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	unix_cleanup(path);
}
END_TEST

START_TEST(test_match_none)
{
	struct fake_conf f = { 0 };
	int fds[2], p1, p2;
	char want[256];
	char *got;

	fds[0] = tcp_sock("127.0.0.1", 1, 0, 0, &p1);
	fds[1] = tcp_sock("127.0.0.1", 1, 0, 0, &p2);
	fake_listener(&f, "echo", "127.0.0.1", p1, 0);
	got = run_child(fds, 2, NULL, ":x", 0, print_match, &f);
	snprintf(want, sizeof want,
	    "match: inherited socket 4 (name 'x', 127.0.0.1:%d) matches no listener\n", p2);
	ck_assert_str_eq(got, want);
	got = run_child(fds, 2, NULL, NULL, 0, print_match, &f);
	snprintf(want, sizeof want, "match: inherited socket 4 (127.0.0.1:%d) matches no listener\n", p2);
	ck_assert_str_eq(got, want);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/* Port 0 means "any free port": such a listener matches by name only. */
START_TEST(test_match_port0_by_name_only)
{
	struct fake_conf f = { 0 };
	int fds[1], p;
	char want[256];
	char *got;

	fds[0] = tcp_sock("127.0.0.1", 1, 0, 0, &p);
	fake_listener(&f, "any", "127.0.0.1", 0, 0);
	got = run_child(fds, 1, NULL, NULL, 0, print_match, &f);
	snprintf(want, sizeof want, "match: inherited socket 3 (127.0.0.1:%d) matches no listener\n", p);
	ck_assert_str_eq(got, want);
	got = run_child(fds, 1, NULL, "any", 0, print_match, &f);
	ck_assert_str_eq(got, "3->any/name/-1 | any copies=1 byname 3| inherited(3)=1 inherited(9)=0\n");
	close(fds[0]);
}
END_TEST

START_TEST(test_match_not_listening)
{
	struct fake_conf f = { 0 };
	int fds[1], p;
	char want[256];
	char *got;

	fds[0] = tcp_sock("127.0.0.1", 0, 0, 0, &p);    /* bound, no listen() */
	fake_listener(&f, "echo", "127.0.0.1", p, 0);
	got = run_child(fds, 1, NULL, "echo", 0, print_match, &f);
	snprintf(want, sizeof want,
	    "match: inherited socket 3 (name 'echo', 127.0.0.1:%d) is not a listening stream socket\n", p);
	ck_assert_str_eq(got, want);
	close(fds[0]);
	/* A datagram socket. */
	fds[0] = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(fds[0], 0);
	got = run_child(fds, 1, NULL, "echo", 0, print_match, &f);
	ck_assert_msg(strstr(got, "is not a listening stream socket"), "%s", got);
	close(fds[0]);
	/* Not a socket at all (a pipe, as ListenFIFO= would pass). */
	{
		int pp[2];

		ck_assert_int_eq(pipe(pp), 0);
		got = run_child(pp, 1, NULL, "echo", 0, print_match, &f);
		ck_assert_str_eq(got, "match: inherited socket 3 (name 'echo', not a socket) is not a listening stream socket\n");
		close(pp[0]);
		close(pp[1]);
	}
}
END_TEST

/* systemd's ListenStream=PORT is one dual-stack [::]:PORT socket: it fills
 * the [::] slot of a "*" listener and covers its 0.0.0.0 slot. */
START_TEST(test_match_wildcard_dual_stack)
{
	struct fake_conf f = { 0 };
	int fds[1], p;
	char want[256];
	char *got;

	fds[0] = tcp_sock("::", 1, 1, 0, &p);
	if (fds[0] < 0)
		return;         /* no IPv6 here */
	fake_listener(&f, "all", "*", p, 1);
	got = run_child(fds, 1, NULL, NULL, 0, print_match, &f);
	snprintf(want, sizeof want,
	    "3->all/addr/1 | all copies=4 covered:3 inherited:3| inherited(3)=1 inherited(9)=0\n");
	ck_assert_str_eq(got, want);
	close(fds[0]);
	/* v6only: 0.0.0.0 is the master's to bind. */
	fds[0] = tcp_sock("::", 1, 0, 1, &p);
	f.l[0].port = p;
	fake_addr(&f.a[0][0], "0.0.0.0", p);
	fake_addr(&f.a[0][1], "::", p);
	got = run_child(fds, 1, NULL, NULL, 0, print_match, &f);
	ck_assert_str_eq(got, "3->all/addr/1 | all copies=1 (3 has no reuseport) bind inherited:3| inherited(3)=1 inherited(9)=0\n");
	close(fds[0]);
}
END_TEST

/* A failed match leaves the previous assignment (reload safety). No
 * ck_assert in a child: Check would write to fd 3, a passed socket now. */
static void
rematch(struct activate_set *s, int rc, const char *err, FILE *out, void *arg)
{
	struct fake_conf *f = arg, *g = f + 1;
	char e[512];

	fprintf(out, "first=%d ", activate_match(s, &f->conf, e, sizeof e));
	fprintf(out, "second=%d ", activate_match(s, &g->conf, e, sizeof e));
	fprintf(out, "%s/%s/%d\n", s->socks[0].listener == &f->l[0] ? "old" : "new",
	    s->socks[0].by_name ? "name" : "addr", s->socks[0].addr);
}

START_TEST(test_match_all_or_nothing)
{
	struct fake_conf f[2] = { 0 };
	int fds[1], p;
	char *got;

	fds[0] = tcp_sock("127.0.0.1", 1, 0, 0, &p);
	fake_listener(&f[0], "echo", "127.0.0.1", p, 0);
	fake_listener(&f[1], "elsewhere", "127.0.0.3", 1, 0);
	got = run_child(fds, 1, NULL, NULL, 0, rematch, f);
	ck_assert_str_eq(got, "first=0 second=-1 old/addr/0\n");
	close(fds[0]);
}
END_TEST

/* Not socket-activated at all: nothing, no error, no descriptor touched. */
START_TEST(test_not_activated)
{
	struct activate_set s;
	char err[256] = "junk";

	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	ck_assert_int_eq(activate_take(&s, err, sizeof err), 0);
	ck_assert_int_eq(s.n, 0);
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(activate_match(&s, NULL, err, sizeof err), 0);
	activate_free(&s);
	/* LISTEN_FDS without LISTEN_PID: not for us, but still removed. */
	setenv("LISTEN_FDS", "2", 1);
	ck_assert_int_eq(activate_take(&s, err, sizeof err), 0);
	ck_assert_ptr_null(getenv("LISTEN_FDS"));
	activate_free(&s);
}
END_TEST

static Suite *
activate_suite(void)
{
	Suite *s = suite_create("activate");
	TCase *tc = tcase_create("activate");

	tcase_add_test(tc, test_take_names_and_flags);
	tcase_add_test(tc, test_take_foreign_pid);
	tcase_add_test(tc, test_take_errors);
	tcase_add_test(tc, test_match_by_name_and_address);
	tcase_add_test(tc, test_match_none);
	tcase_add_test(tc, test_match_port0_by_name_only);
	tcase_add_test(tc, test_match_not_listening);
	tcase_add_test(tc, test_match_wildcard_dual_stack);
	tcase_add_test(tc, test_match_all_or_nothing);
	tcase_add_test(tc, test_not_activated);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return unit_run(activate_suite());
}
