/* test_exec: the exec handler's command split (no shell: blanks, quotes,
 * backslashes, errors) and the ucspi environment for IPv4, IPv6, mapped
 * and unix peers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "handlers/exec.h"
#include "util.h"

/* The words of cmd joined by '|'. */
static const char *
split(const char *cmd)
{
	static char out[1024];
	char **argv, err[128];
	int argc = exec_split(cmd, &argv, err, sizeof err);

	ck_assert_msg(argc > 0, "'%s': %s", cmd, err);
	out[0] = '\0';
	for (int i = 0; i < argc; i++) {
		strcat(out, i ? "|" : "");
		strcat(out, argv[i]);
	}
	ck_assert_ptr_null(argv[argc]);
	exec_argv_free(argv);
	return out;
}

static const char *
split_err(const char *cmd)
{
	static char err[128];
	char **argv = NULL;

	ck_assert_msg(exec_split(cmd, &argv, err, sizeof err) == -1, "'%s' split", cmd);
	return err;
}

START_TEST(test_split)
{
	ck_assert_str_eq(split("/bin/cat"), "/bin/cat");
	ck_assert_str_eq(split("  sh   -c\t'echo $X; exit 3'  "), "sh|-c|echo $X; exit 3");
	ck_assert_str_eq(split("a\"b c\"d"), "ab cd");
	ck_assert_str_eq(split("\"say \\\"hi\\\" \\\\ \\n\""), "say \"hi\" \\ \\n");
	ck_assert_str_eq(split("a\\ b c\\'d"), "a b|c'd");
	ck_assert_str_eq(split("'' x"), "|x");            /* an empty word is a word */
	ck_assert_str_eq(split("'it''s'"), "its");
	ck_assert_str_eq(split("$HOME ~ * ; | >x"), "$HOME|~|*|;|||>x");
	ck_assert_str_eq(split_err(""), "empty command");
	ck_assert_str_eq(split_err("   \t "), "empty command");
	ck_assert_str_eq(split_err("echo 'oops"), "unterminated ' quote");
	ck_assert_str_eq(split_err("echo \"oops"), "unterminated \" quote");
	ck_assert_str_eq(split_err("echo oops\\"), "trailing backslash");
}
END_TEST

START_TEST(test_split_many)
{
	char cmd[4096] = "x";

	for (int i = 1; i < EXEC_MAX_ARGS; i++)
		strcat(cmd, " y");
	ck_assert_str_eq(split(cmd) + 2 * (EXEC_MAX_ARGS - 1) - 1, "|y");
	strcat(cmd, " z");
	ck_assert_msg(strstr(split_err(cmd), "more than") != NULL, "too many words accepted");
}
END_TEST

/* The environment as one string "A=1 B=2 ...". */
static const char *
env_of(int fd, const char *peer, int pport, const char *local, int lport)
{
	static char out[1024];
	struct sockaddr_storage p = { 0 }, l = { 0 };
	socklen_t plen, llen;
	struct exec_env e;

	for (int k = 0; k < 2; k++) {
		const char *ip = k ? local : peer;
		struct sockaddr_storage *ss = k ? &l : &p;
		socklen_t *len = k ? &llen : &plen;

		if (strchr(ip, ':')) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(k ? lport : pport);
			ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
			*len = sizeof *in6;
		} else {
			struct sockaddr_in *in = (struct sockaddr_in *)ss;

			in->sin_family = AF_INET;
			in->sin_port = htons(k ? lport : pport);
			ck_assert_int_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
			*len = sizeof *in;
		}
	}
	exec_env_build(&e, fd, (struct sockaddr *)&p, plen, (struct sockaddr *)&l, llen);
	out[0] = '\0';
	for (int i = 0; e.envp[i]; i++) {
		strcat(out, i ? " " : "");
		strcat(out, e.envp[i]);
	}
	return out;
}

START_TEST(test_env_tcp)
{
	ck_assert_str_eq(env_of(-1, "192.0.2.7", 40000, "127.0.0.1", 7007),
	    "PROTO=TCP TCPREMOTEIP=192.0.2.7 TCPREMOTEPORT=40000 TCPLOCALIP=127.0.0.1 "
	    "TCPLOCALPORT=7007 PATH=" EXEC_PATH);
	ck_assert_str_eq(env_of(-1, "2001:db8::1", 1, "::1", 65535),
	    "PROTO=TCP TCPREMOTEIP=2001:db8::1 TCPREMOTEPORT=1 TCPLOCALIP=::1 "
	    "TCPLOCALPORT=65535 PATH=" EXEC_PATH);
	/* an IPv4 peer on an IPv6 socket (ipv6only = no) is shown as IPv4 */
	ck_assert_str_eq(env_of(-1, "::ffff:198.51.100.2", 5555, "::ffff:127.0.0.1", 80),
	    "PROTO=TCP TCPREMOTEIP=198.51.100.2 TCPREMOTEPORT=5555 TCPLOCALIP=127.0.0.1 "
	    "TCPLOCALPORT=80 PATH=" EXEC_PATH);
}
END_TEST

START_TEST(test_env_unix)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "/run/x.sock" };
	struct sockaddr_un peer = { .sun_family = AF_UNIX };
	char want[256], got[512] = "";
	struct exec_env e;
	int sv[2];

	util_pair(sv);
	exec_env_build(&e, sv[1], (struct sockaddr *)&peer, sizeof(sa_family_t),
	    (struct sockaddr *)&un, offsetof(struct sockaddr_un, sun_path) + 12);
	for (int i = 0; e.envp[i]; i++) {
		strcat(got, i ? " " : "");
		strcat(got, e.envp[i]);
	}
	snprintf(want, sizeof want, "PROTO=IPC IPCLOCALPATH=/run/x.sock IPCREMOTEEUID=%u "
	    "IPCREMOTEEGID=%u PATH=" EXEC_PATH, (unsigned)geteuid(), (unsigned)getegid());
	ck_assert_str_eq(got, want);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

static Suite *
exec_suite(void)
{
	Suite *s = suite_create("exec");
	TCase *tc = tcase_create("exec");

	tcase_add_test(tc, test_split);
	tcase_add_test(tc, test_split_many);
	tcase_add_test(tc, test_env_tcp);
	tcase_add_test(tc, test_env_unix);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(exec_suite());
}
