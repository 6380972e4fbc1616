/* test_notify: notify.c against a datagram socket standing in for systemd's
 * manager: exact datagrams on a path and an abstract socket, the no-op
 * without NOTIFY_SOCKET, MONOTONIC_USEC, WATCHDOG_USEC/WATCHDOG_PID. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <check.h>

#include "notify.h"
#include "unit.h"

/* The stand-in manager: a bound datagram socket and the NOTIFY_SOCKET
 * value that names it. */
struct manager {
	int fd;
	char dir[64];
	char env[100];
};

static void
manager_open(struct manager *m, int abstract)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	struct timeval tv = { 2, 0 };

	memset(m->dir, 0, sizeof m->dir);
	m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(m->fd, 0);
	if (abstract) {
		snprintf(m->env, sizeof m->env, "@acceptd-test-notify-%d-%ld", (int)getpid(),
		    (long)random());
		memcpy(sun.sun_path, m->env, strlen(m->env));
		sun.sun_path[0] = '\0';
		len = offsetof(struct sockaddr_un, sun_path) + strlen(m->env);
	} else {
		snprintf(m->dir, sizeof m->dir, "/tmp/acceptd-notify-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(m->dir));
		snprintf(m->env, sizeof m->env, "%s/notify", m->dir);
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s", m->env);
		len = sizeof sun;
	}
	ck_assert_int_eq(bind(m->fd, (struct sockaddr *)&sun, len), 0);
	ck_assert_int_eq(setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", m->env, 1), 0);
	notify_close();
}

static void
manager_close(struct manager *m)
{
	close(m->fd);
	if (m->dir[0]) {
		unlink(m->env);
		rmdir(m->dir);
	}
	notify_close();
	unsetenv("NOTIFY_SOCKET");
}

/* The next datagram, as a string; "" when none arrived. */
static const char *
manager_recv(struct manager *m, int wait)
{
	static char buf[4096];
	ssize_t n = recv(m->fd, buf, sizeof buf - 1, wait ? 0 : MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

START_TEST(test_path_socket)
{
	struct manager m;

	manager_open(&m, 0);
	ck_assert_int_eq(notify_init(), 1);
	ck_assert_int_eq(notify_enabled(), 1);
	ck_assert_str_eq(notify_socket_path(), m.env);
	/* Gone from the environment: workers and exec'd programs can't see it. */
	ck_assert_ptr_null(getenv("NOTIFY_SOCKET"));

	ck_assert_int_eq(notify_ready("2 workers, 3 listeners"), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "READY=1\nSTATUS=2 workers, 3 listeners");
	ck_assert_int_eq(notify_ready(NULL), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "READY=1");
	ck_assert_int_eq(notify_stopping("draining 12 connections"), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "STOPPING=1\nSTATUS=draining 12 connections");
	ck_assert_int_eq(notify_status("%d workers, %d listeners", 4, 1), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "STATUS=4 workers, 1 listeners");
	ck_assert_int_eq(notify_mainpid(1234), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "MAINPID=1234");
	ck_assert_int_eq(notify_watchdog(), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "WATCHDOG=1");
	ck_assert_int_eq(notify_send("READY=1\nSTATUS=%s", "raw"), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "READY=1\nSTATUS=raw");
	/* A newline in a status must not start a new field. */
	ck_assert_int_eq(notify_status("a\nREADY=1"), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "STATUS=a READY=1");
	ck_assert_str_eq(manager_recv(&m, 0), "");
	manager_close(&m);
}
END_TEST

START_TEST(test_abstract_socket)
{
	struct manager m;

	manager_open(&m, 1);
	ck_assert_int_eq(notify_init(), 1);
	ck_assert_int_eq(notify_ready("up"), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "READY=1\nSTATUS=up");
	ck_assert_int_eq(notify_stopping(NULL), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "STOPPING=1");
	manager_close(&m);
}
END_TEST

START_TEST(test_reloading_monotonic)
{
	struct manager m;
	unsigned long long usec;
	uint64_t before, after;
	const char *d;
	char status[64];

	manager_open(&m, 0);
	ck_assert_int_eq(notify_init(), 1);
	before = notify_monotonic_usec();
	ck_assert_int_eq(notify_reloading("reloading"), 0);
	after = notify_monotonic_usec();
	d = manager_recv(&m, 1);
	ck_assert_msg(sscanf(d, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%63[^\n]", &usec,
	    status) == 2, "datagram '%s'", d);
	ck_assert_str_eq(status, "reloading");
	ck_assert_msg(usec >= before && usec <= after, "MONOTONIC_USEC %llu not in [%" PRIu64
	    ", %" PRIu64 "]", usec, before, after);
	/* And notify_monotonic_usec() is CLOCK_MONOTONIC itself. */
	{
		struct timespec ts;
		uint64_t now;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
		ck_assert_msg(now >= after && now - after < 1000000, "clock skew %" PRIu64 " %" PRIu64,
		    now, after);
	}
	ck_assert_int_eq(notify_reloading(NULL), 0);
	d = manager_recv(&m, 1);
	ck_assert_msg(strncmp(d, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0 && !strchr(d + 27, '\n'),
	    "datagram '%s'", d);
	ck_assert_int_eq(notify_ready("2 workers, 1 listeners"), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "READY=1\nSTATUS=2 workers, 1 listeners");
	manager_close(&m);
}
END_TEST

START_TEST(test_noop_without_socket)
{
	unsetenv("NOTIFY_SOCKET");
	notify_close();
	ck_assert_int_eq(notify_init(), 0);
	ck_assert_int_eq(notify_enabled(), 0);
	ck_assert_ptr_null(notify_socket_path());
	ck_assert_int_eq(notify_ready("x"), 0);
	ck_assert_int_eq(notify_reloading("x"), 0);
	ck_assert_int_eq(notify_stopping("x"), 0);
	ck_assert_int_eq(notify_status("x %d", 1), 0);
	ck_assert_int_eq(notify_mainpid(1), 0);
	ck_assert_int_eq(notify_watchdog(), 0);
	ck_assert_int_eq(notify_send("READY=1"), 0);
	/* Without notify_init() at all, the same. */
	notify_close();
	ck_assert_int_eq(notify_ready("x"), 0);
	/* Empty is unset, as for sd_notify. */
	setenv("NOTIFY_SOCKET", "", 1);
	ck_assert_int_eq(notify_init(), 0);
	ck_assert_int_eq(notify_enabled(), 0);
	notify_close();
}
END_TEST

START_TEST(test_bad_socket_values)
{
	static const char *const bad[] = { "relative/path", "@", "/", "vsock:2:1234" };
	char longp[200];

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		setenv("NOTIFY_SOCKET", bad[i], 1);
		notify_close();
		ck_assert_msg(notify_init() == -1, "NOTIFY_SOCKET=%s accepted", bad[i]);
		ck_assert_int_eq(notify_enabled(), 0);
		ck_assert_int_eq(notify_ready("x"), 0);
		ck_assert_ptr_null(getenv("NOTIFY_SOCKET"));
	}
	memset(longp, 'a', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = '\0';
	setenv("NOTIFY_SOCKET", longp, 1);
	notify_close();
	ck_assert_int_eq(notify_init(), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	notify_close();
}
END_TEST

/* A manager that went away: sends fail and say why; nothing crashes. */
START_TEST(test_send_fails_when_nobody_listens)
{
	struct manager m;

	manager_open(&m, 0);
	ck_assert_int_eq(notify_init(), 1);
	close(m.fd);
	unlink(m.env);
	m.fd = socket(AF_UNIX, SOCK_DGRAM, 0);   /* for manager_close */
	errno = 0;
	ck_assert_int_eq(notify_ready("x"), -1);
	ck_assert_msg(errno == ENOENT || errno == ECONNREFUSED, "errno %d", errno);
	manager_close(&m);
}
END_TEST

/* Only the process that called notify_init() speaks: a forked worker's
 * READY=1 goes nowhere, and it cannot re-read a variable that is gone. */
START_TEST(test_forked_child_is_silent)
{
	struct manager m;
	pid_t pid;
	int st;

	manager_open(&m, 0);
	ck_assert_int_eq(notify_init(), 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int ok = notify_enabled() == 0 && notify_ready("from a worker") == 0 &&
		    notify_watchdog() == 0 && notify_watchdog_usec() == 0 &&
		    notify_init() == 0 && notify_ready("again") == 0;

		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	ck_assert_str_eq(manager_recv(&m, 0), "");
	ck_assert_int_eq(notify_ready("master"), 0);
	ck_assert_str_eq(manager_recv(&m, 1), "READY=1\nSTATUS=master");
	manager_close(&m);
}
END_TEST

static uint64_t
watchdog_with(const char *usec, const char *pid)
{
	uint64_t v;

	unsetenv("NOTIFY_SOCKET");
	if (usec)
		setenv("WATCHDOG_USEC", usec, 1);
	else
		unsetenv("WATCHDOG_USEC");
	if (pid)
		setenv("WATCHDOG_PID", pid, 1);
	else
		unsetenv("WATCHDOG_PID");
	notify_close();
	notify_init();
	v = notify_watchdog_usec();
	ck_assert_ptr_null(getenv("WATCHDOG_USEC"));
	ck_assert_ptr_null(getenv("WATCHDOG_PID"));
	notify_close();
	return v;
}

START_TEST(test_watchdog_usec)
{
	char me[32], other[32];

	snprintf(me, sizeof me, "%d", (int)getpid());
	snprintf(other, sizeof other, "%d", (int)getpid() + 1);
	ck_assert_uint_eq(watchdog_with(NULL, NULL), 0);
	ck_assert_uint_eq(watchdog_with("30000000", NULL), 30000000);
	ck_assert_uint_eq(watchdog_with("30000000", me), 30000000);
	ck_assert_uint_eq(watchdog_with("30000000", other), 0);
	ck_assert_uint_eq(watchdog_with("30000000", "garbage"), 0);
	ck_assert_uint_eq(watchdog_with("18446744073709551615", NULL), UINT64_MAX);
	ck_assert_uint_eq(watchdog_with("18446744073709551616", NULL), 0);
	ck_assert_uint_eq(watchdog_with("", NULL), 0);
	ck_assert_uint_eq(watchdog_with("12x", NULL), 0);
	ck_assert_uint_eq(watchdog_with("-5", NULL), 0);
	ck_assert_uint_eq(watchdog_with(" 5", NULL), 0);
	ck_assert_uint_eq(watchdog_with("0", NULL), 0);
	/* Without notify_init() there is no watchdog. */
	notify_close();
	setenv("WATCHDOG_USEC", "1000", 1);
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_USEC");
}
END_TEST

static Suite *
notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("notify");

	tcase_add_test(tc, test_path_socket);
	tcase_add_test(tc, test_abstract_socket);
	tcase_add_test(tc, test_reloading_monotonic);
	tcase_add_test(tc, test_noop_without_socket);
	tcase_add_test(tc, test_bad_socket_values);
	tcase_add_test(tc, test_send_fails_when_nobody_listens);
	tcase_add_test(tc, test_forked_child_is_silent);
	tcase_add_test(tc, test_watchdog_usec);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	/* Whatever the environment running the tests says (a CI job run
	 * under systemd has NOTIFY_SOCKET), the tests decide. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	srandom((unsigned)getpid());
	return unit_run(notify_suite());
}
