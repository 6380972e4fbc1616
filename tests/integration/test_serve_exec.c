/* Integration: the exec handler: the ucspi environment seen by a shell
 * script over 127.0.0.1, ::1, an IPv4-mapped peer and a unix socket; the
 * socket on stdin and stdout; stderr in the log; 200 connections in a row
 * leave no zombie and no descriptor behind in the worker. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "harness.h"

#define HEAD "[daemon]\nworkers = 1\nshutdown_timeout = 1s\n\n"
/* prints its environment on one line, then copies stdin to stdout */
#define ENV_CMD "command = /bin/sh -c 'echo \"[$PROTO|$TCPREMOTEIP|$TCPREMOTEPORT|$TCPLOCALIP|" \
	"$TCPLOCALPORT|$IPCLOCALPATH|$IPCREMOTEEUID|$PATH|$HOME]\" && exec cat'\n"

/* Connect, send msg and shut down our side, read everything until close. */
static ssize_t
talk(const char *where, int port, const char *msg, char *out, size_t cap)
{
	int fd = h_connect(where, port);
	ssize_t n;

	ck_assert_msg(fd >= 0, "connect %s %d: %s", where, port, strerror(errno));
	if (msg)
		ck_assert_int_eq(h_send_str(fd, msg), 0);
	shutdown(fd, SHUT_WR);
	n = h_recv_until_close(fd, out, cap - 1, H_WAIT_MS);
	close(fd);
	if (n >= 0)
		out[n] = '\0';
	return n;
}

/* The local port of a fresh connection is the peer port the script sees:
 * check the pattern, not the number. */
static void
check_env(struct hd *d, const char *where, int port, const char *want_prefix,
    const char *want_mid)
{
	char out[1024];
	ssize_t n = talk(where, port, "ping\n", out, sizeof out);

	hd_assert(d, n > 0, "%s: no answer", where);
	hd_assert(d, strncmp(out, want_prefix, strlen(want_prefix)) == 0,
	    "%s: got '%s', want prefix '%s'", where, out, want_prefix);
	hd_assert(d, strstr(out, want_mid) != NULL, "%s: got '%s', want '%s'", where, out, want_mid);
	/* stdin came through to cat and back out */
	hd_assert(d, strstr(out, "]\nping\n") != NULL, "%s: stdin/stdout: '%s'", where, out);
}

START_TEST(exec_env_ipv4)
{
	struct hd *d = hd_up(HEAD "[listener x]\naddress = 127.0.0.1\nport = 0\nhandler = exec\n"
	    ENV_CMD);
	int port = hd_port(d, "x");
	char mid[128];

	snprintf(mid, sizeof mid, "|127.0.0.1|%d|||/usr/local/bin:/usr/bin:/bin|]", port);
	check_env(d, "127.0.0.1", port, "[TCP|127.0.0.1|", mid);
	hd_free(d);
}
END_TEST

START_TEST(exec_env_ipv6)
{
	struct hd *d;
	char mid[128];
	int port;

	if (!h_have_ipv6()) {
		fprintf(stderr, "exec_env_ipv6: no IPv6 here, skipped\n");
		return;
	}
	d = hd_up(HEAD "[listener x]\naddress = ::1\nport = 0\nhandler = exec\n" ENV_CMD);
	port = hd_port(d, "x");
	snprintf(mid, sizeof mid, "|::1|%d|||/usr/local/bin:/usr/bin:/bin|]", port);
	check_env(d, "::1", port, "[TCP|::1|", mid);
	hd_free(d);
}
END_TEST

/* ipv6only = no: an IPv4 peer arrives IPv4-mapped and is shown as IPv4. */
START_TEST(exec_env_mapped)
{
	struct hd *d;
	char mid[128];
	int port;

	if (!h_have_ipv6()) {
		fprintf(stderr, "exec_env_mapped: no IPv6 here, skipped\n");
		return;
	}
	d = hd_up(HEAD "[listener x]\naddress = ::\nipv6only = no\nport = 0\nhandler = exec\n"
	    ENV_CMD);
	port = hd_port(d, "x");
	snprintf(mid, sizeof mid, "|127.0.0.1|%d||", port);
	check_env(d, "127.0.0.1", port, "[TCP|127.0.0.1|", mid);
	hd_free(d);
}
END_TEST

START_TEST(exec_env_unix)
{
	struct hd *d = hd_up(HEAD "[listener x]\naddress = unix:@DIR@/x.sock\nhandler = exec\n"
	    ENV_CMD);
	char where[256], want[512];

	hd_path(d, "x.sock", where + 5, sizeof where - 5);
	memcpy(where, "unix:", 5);
	snprintf(want, sizeof want, "[IPC|||||%s|%u|/usr/local/bin:/usr/bin:/bin|]", where + 5,
	    (unsigned)geteuid());
	check_env(d, where, 0, want, "|]");
	hd_free(d);
}
END_TEST

START_TEST(exec_stderr_logged)
{
	struct hd *d = hd_up(HEAD "[listener x]\naddress = 127.0.0.1\nport = 0\nhandler = exec\n"
	    "command = /bin/sh -c 'echo to-the-log >&2 && echo to-the-peer && exit 3'\n");
	char out[256];

	hd_assert(d, talk("127.0.0.1", hd_port(d, "x"), NULL, out, sizeof out) > 0, "no answer");
	hd_assert(d, strcmp(out, "to-the-peer\n") == 0, "peer got '%s'", out);
	hd_assert(d, hd_wait_log(d, "listener x: exec[", 1, H_WAIT_MS), "no exec line in the log");
	hd_assert(d, hd_wait_log(d, "]: to-the-log", 1, H_WAIT_MS), "stderr not in the log");
	hd_assert(d, hd_wait_log(d, "]: exited with status 3", 1, H_WAIT_MS), "exit not logged");
	hd_free(d);
}
END_TEST

/* Children of pid, zombies included. */
static int
all_children(pid_t pid)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir))) {
		char path[300], buf[512], *p;
		FILE *f;
		int ppid;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(buf, sizeof buf, f) && (p = strrchr(buf, ')')) &&
		    sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == pid)
			n++;
		fclose(f);
	}
	closedir(dir);
	return n;
}

START_TEST(exec_no_zombies_no_fds)
{
	struct hd *d = hd_up(HEAD "[listener x]\naddress = 127.0.0.1\nport = 0\nhandler = exec\n"
	    "command = /bin/echo hi\n");
	int port = hd_port(d, "x"), before, after = -1, kids = -1;
	pid_t w = hd_worker(d, 0);
	long long end;
	char out[64];

	hd_assert(d, w > 0, "no worker");
	/* one first, so that whatever is set up once is set up */
	hd_assert(d, talk("127.0.0.1", port, NULL, out, sizeof out) == 3, "first: '%s'", out);
	end = h_now_ms() + H_WAIT_MS;
	while (all_children(w) && h_now_ms() < end)
		usleep(10000);
	before = h_proc_fds(w);
	for (int i = 0; i < 200; i++) {
		ssize_t n = talk("127.0.0.1", port, NULL, out, sizeof out);

		hd_assert(d, n == 3 && strcmp(out, "hi\n") == 0, "connection %d: %zd '%s'", i, n,
		    n > 0 ? out : "");
	}
	/* every child reaped (no zombie), every pipe and socket closed */
	end = h_now_ms() + H_WAIT_MS;
	while (h_now_ms() < end) {
		kids = all_children(w);
		after = h_proc_fds(w);
		if (kids == 0 && after == before)
			break;
		usleep(10000);
	}
	hd_assert(d, kids == 0, "worker %d has %d children left (zombies?)", (int)w, kids);
	hd_assert(d, after == before, "worker fds: %d before, %d after 200 connections", before,
	    after);
	hd_assert(d, h_alive(w), "the worker died");
	hd_free(d);
}
END_TEST

/* A program that does not exist at run time any more: logged, the
 * connection closed, the worker fine. */
START_TEST(exec_program_vanishes)
{
	struct hd *d = hd_new();
	char prog[256], out[64];
	FILE *f;

	hd_path(d, "prog.sh", prog, sizeof prog);
	ck_assert_ptr_nonnull(f = fopen(prog, "w"));
	fputs("#!/bin/sh\necho ok\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(prog, 0755), 0);
	hd_conf(d, HEAD "[listener x]\naddress = 127.0.0.1\nport = 0\nhandler = exec\n"
	    "command = @DIR@/prog.sh\n");
	hd_start(d);
	hd_assert(d, talk("127.0.0.1", hd_port(d, "x"), NULL, out, sizeof out) == 3, "first");
	unlink(prog);
	hd_assert(d, talk("127.0.0.1", hd_port(d, "x"), NULL, out, sizeof out) == 0,
	    "got '%s' from a missing program", out);
	hd_assert(d, hd_wait_log(d, "cannot run", 1, H_WAIT_MS), "not logged");
	hd_assert(d, hd_wait_log(d, "exited with status 127", 1, H_WAIT_MS), "no 127");
	hd_free(d);
}
END_TEST

static Suite *
exec_suite(void)
{
	Suite *s = suite_create("exec");
	TCase *tc = tcase_create("exec");

	tcase_add_test(tc, exec_env_ipv4);
	tcase_add_test(tc, exec_env_ipv6);
	tcase_add_test(tc, exec_env_mapped);
	tcase_add_test(tc, exec_env_unix);
	tcase_add_test(tc, exec_stderr_logged);
	tcase_add_test(tc, exec_no_zombies_no_fds);
	tcase_add_test(tc, exec_program_vanishes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(exec_suite());
}
