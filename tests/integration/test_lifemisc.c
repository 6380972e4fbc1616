/* Integration: a second start on a live pidfile is refused; cpu_affinity
 * pins worker N to CPU N mod n; a daemonized master names itself to systemd
 * with MAINPID=. */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/stat.h>

#include "harness.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

START_TEST(second_start_refused)
{
	struct hd *d = hd_up("[daemon]\nworkers = 1\npidfile = @DIR@/acceptd.pid\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n");
	int rc;

	/* -f or daemonized: both refuse while the pidfile names a live acceptd */
	rc = hd_run(d, "-f", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 1 && strstr(d->err, "already running"),
	    "second -f start: exit %d, stderr '%s'", rc, d->err);
	rc = hd_run(d, "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 1 && strstr(d->err, "already running"),
	    "second daemonized start: exit %d, stderr '%s'", rc, d->err);
	hd_assert(d, h_alive(d->master), "the first master is gone");
	hd_assert(d, h_echo_at("127.0.0.1", hd_port(d, "e")), "the first master stopped serving");
	hd_free(d);
}
END_TEST

START_TEST(stale_pidfile_ignored)
{
	struct hd *d = hd_new();
	char pidf[256];
	FILE *f;

	hd_path(d, "acceptd.pid", pidf, sizeof pidf);
	/* pid 1 is alive but no acceptd: a stale file from another life */
	f = fopen(pidf, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "1\n");
	fclose(f);
	hd_conf(d, "[daemon]\nworkers = 1\npidfile = @DIR@/acceptd.pid\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n");
	hd_start(d);
	hd_assert(d, h_echo_at("127.0.0.1", hd_port(d, "e")), "no service");
	hd_free(d);
}
END_TEST

START_TEST(cpu_affinity_pins_workers)
{
	cpu_set_t set;
	struct hd *d;
	int ncpu, first = -1;

	if (sched_getaffinity(0, sizeof set, &set) < 0 || (ncpu = CPU_COUNT(&set)) < 2) {
		fprintf(stderr, "cpu_affinity_pins_workers: skipped: fewer than 2 CPUs\n");
		return;
	}
	for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
		if (CPU_ISSET(c, &set))
			first = c;
	d = hd_up("[daemon]\nworkers = %d\ncpu_affinity = auto\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", ncpu + 1);
	for (int i = 0; i <= ncpu; i++) {
		char want[16], got[64];
		pid_t w = hd_worker(d, i);
		int k = i % ncpu, cpu = -1;

		/* the k-th CPU this process may use */
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set) && k-- == 0) {
				cpu = c;
				break;
			}
		snprintf(want, sizeof want, "%d", cpu);
		/* the worker pins itself right after fork: give it a moment */
		for (int t = 0; t < 100; t++) {
			if (h_proc_status(w, "Cpus_allowed_list", got, sizeof got) == 0 &&
			    strcmp(got, want) == 0)
				break;
			usleep(10000);
		}
		hd_assert(d, strcmp(got, want) == 0, "worker %d: Cpus_allowed_list '%s', want '%s'",
		    i, got, want);
	}
	(void)first;
	hd_free(d);
}
END_TEST

/* A stand-in for systemd: the datagrams a daemonized master sends. */
START_TEST(daemonized_master_sends_mainpid)
{
	struct hd *d = hd_new();
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char pidf[256], buf[512], all[4096] = "", want[64];
	int s, rc;
	pid_t master;
	FILE *f;

	hd_path(d, "notify.sock", sun.sun_path, sizeof sun.sun_path);
	hd_path(d, "acceptd.pid", pidf, sizeof pidf);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sun, sizeof sun), 0);
	setenv("NOTIFY_SOCKET", sun.sun_path, 1);
	hd_conf(d, "[daemon]\nworkers = 1\npidfile = %s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", pidf);
	rc = hd_run(d, "-c", d->conf, (char *)NULL);
	unsetenv("NOTIFY_SOCKET");
	hd_assert(d, rc == 0, "daemonized start: exit %d: %s", rc, d->err);
	f = fopen(pidf, "r");
	hd_assert(d, f && fscanf(f, "%d", &master) == 1, "no pidfile");
	fclose(f);
	for (long long end = h_now_ms() + H_WAIT_MS; h_now_ms() < end && !strstr(all, "READY=1"); ) {
		ssize_t n = recv(s, buf, sizeof buf - 1, MSG_DONTWAIT);

		if (n > 0) {
			buf[n] = '\0';
			strncat(all, buf, sizeof all - strlen(all) - 2);
			strcat(all, "\n");
		} else {
			usleep(10000);
		}
	}
	snprintf(want, sizeof want, "MAINPID=%d", (int)master);
	hd_assert(d, strstr(all, want) && strstr(all, "READY=1"),
	    "datagrams '%s' lack '%s' and READY=1", all, want);
	kill(master, SIGTERM);
	hd_assert(d, h_wait_gone(master, H_WAIT_MS), "the master did not stop");
	close(s);
	hd_free(d);
}
END_TEST


/* Stands in for systemd: "--activate PORT ACCEPTD CONF" makes a listening
 * SO_REUSEPORT socket on 127.0.0.1:PORT, puts it at fd 3 and execs the
 * daemon with LISTEN_PID (its own pid: exec keeps it) and LISTEN_FDS. */
static int
activate_launch(char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char pid[16];
	int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(atoi(argv[2]));
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 16) < 0 ||
	    dup2(fd, 3) < 0) {
		perror("activate");
		return 127;
	}
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_FDNAMES", "e", 1);
	execl(argv[3], argv[3], "-f", "-c", argv[4], (char *)NULL);
	perror("exec");
	return 127;
}

/* Socket activation with an inherited socket that has SO_REUSEPORT: in
 * reuseport mode the master adds a copy per worker on its address. */
START_TEST(activation_reuseport_copies)
{
	struct hd *d = hd_new();
	char self[256], portbuf[16], conf[300], want[96];
	char *argv[7];
	int port = h_free_port();
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	ck_assert(n > 0 && port > 0);
	self[n] = '\0';
	hd_conf(d, "[daemon]\nworkers = 2\nmode = reuseport\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = %d\n", port);
	snprintf(portbuf, sizeof portbuf, "%d", port);
	snprintf(conf, sizeof conf, "%s", d->conf);
	argv[0] = self;
	argv[1] = "--activate";
	argv[2] = portbuf;
	argv[3] = (char *)h_acceptd();
	argv[4] = conf;
	argv[5] = NULL;
	hd_spawn_argv(d, argv);
	hd_assert(d, hd_wait_ready(d, H_WAIT_MS), "no 'master ready'");
	snprintf(want, sizeof want, "listening: e 127.0.0.1:%d (2 reuseport sockets)", port);
	hd_assert(d, hd_log_has(d, "%s", want), "no '%s'", want);
	hd_assert(d, !hd_log_has(d, "shared by all workers"), "it fell back to shared");
	for (int i = 0; i < 8; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "no echo on the inherited port");
	hd_free(d);
}
END_TEST


/* As sshd: a config or module file anyone may write is refused. */
START_TEST(writable_by_others_refused)
{
	struct hd *d = hd_new();
	char so[256], cmd[600], want[300];
	int rc;

	hd_conf(d, "[daemon]\nworkers = 1\n\n[listener e]\naddress = 127.0.0.1\nport = 0\n");
	ck_assert_int_eq(chmod(d->conf, 0666), 0);
	rc = hd_run(d, "-t", "-c", d->conf, (char *)NULL);
	snprintf(want, sizeof want, "%s: writable by others (mode 0666)", d->conf);
	hd_assert(d, rc == 1 && strstr(d->err, want), "-t on a 0666 file: exit %d, '%s'", rc, d->err);

	/* a module: copy the example one, make it writable by all */
	hd_path(d, "hello.so", so, sizeof so);
	snprintf(cmd, sizeof cmd, "cp \"$(dirname %s)/modules/hello.so\" %s && chmod 0666 %s",
	    h_acceptd(), so, so);
	if (system(cmd) != 0) {
		fprintf(stderr, "writable_by_others_refused: skipped the module part: no hello.so\n");
		hd_free(d);
		return;
	}
	hd_conf(d, "[module hello]\npath = %s\n\n[listener e]\naddress = 127.0.0.1\nport = 0\n"
	    "handler = hello\n", so);
	ck_assert_int_eq(chmod(d->conf, 0644), 0);
	rc = hd_run(d, "-t", "-c", d->conf, (char *)NULL);
	snprintf(want, sizeof want, "%s:2:", d->conf);
	hd_assert(d, rc == 1 && strstr(d->err, want) && strstr(d->err, "writable by others"),
	    "-t with a 0666 module: exit %d, '%s'", rc, d->err);
	ck_assert_int_eq(chmod(so, 0644), 0);
	rc = hd_run(d, "-t", "-c", d->conf, (char *)NULL);
	hd_assert(d, rc == 0, "-t with a 0644 module: exit %d, '%s'", rc, d->err);
	hd_free(d);
}
END_TEST

static Suite *
lifemisc_suite(void)
{
	Suite *s = suite_create("lifemisc");
	TCase *tc = tcase_create("lifemisc");

	tcase_add_test(tc, second_start_refused);
	tcase_add_test(tc, stale_pidfile_ignored);
	tcase_add_test(tc, cpu_affinity_pins_workers);
	tcase_add_test(tc, daemonized_master_sends_mainpid);
	tcase_add_test(tc, activation_reuseport_copies);
	tcase_add_test(tc, writable_by_others_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--activate") == 0)
		return activate_launch(argv);
	return h_main(lifemisc_suite());
}
