/* main: the command line: test the config (-t, -T), signal a running
 * master (-s), or start one, in the foreground or daemonized. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "conf.h"
#include "handler.h"
#include "log.h"
#include "master.h"
#include "proctitle.h"
#include "stats.h"

#define MAIN_CONF SYSCONFDIR "/acceptd/acceptd.conf"
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif
#define MAIN_PIDFILE RUNSTATEDIR "/acceptd.pid"
/* How long -s reload waits for the master to say how the reload went. */
#define MAIN_RELOAD_WAIT_MS 30000

static void
main_usage(FILE *out)
{
	fprintf(out,
	    "usage: acceptd [-f] [-c FILE] [-t | -T] [-s SIGNAL] [-V] [-h]\n"
	    "  -c FILE    configuration file (default %s)\n"
	    "  -f         stay in the foreground, log to stderr unless log = syslog\n"
	    "  -t         test the configuration and exit\n"
	    "  -T         test, then print the effective configuration\n"
	    "  -s SIGNAL  send reload, stop, quit, reopen or upgrade to the running master;\n"
	    "             -s status prints its counters\n"
	    "  -V         print the version, libev version and built-in handlers\n"
	    "  -h         this help\n", MAIN_CONF);
}

/* The number of the last reload and its outcome, from PIDFILE.reload. */
static unsigned
main_reload_status(const char *pidfile, char *text, size_t n)
{
	char path[4096], buf[1300];
	unsigned seq = 0;
	ssize_t len;
	int fd;

	snprintf(path, sizeof path, "%s.reload", pidfile);
	*text = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	len = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[len > 0 ? len : 0] = '\0';
	if (sscanf(buf, "%u %1023[^\n]", &seq, text) < 2)
		return 0;
	(void)n;
	return seq;
}

static int
main_signal(const struct conf *conf, const char *name)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{ "reload", SIGHUP }, { "stop", SIGINT }, { "quit", SIGQUIT },
		{ "reopen", SIGUSR1 }, { "upgrade", SIGUSR2 },
		{ "status", 0 },        /* no signal: read the shared counters */
	};
	const char *path = conf->pidfile ? conf->pidfile : MAIN_PIDFILE;
	char before[1024], after[1024];
	unsigned seq = 0;
	long pid = 0;
	FILE *f;

	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
		if (strcmp(name, sigs[i].name) != 0)
			continue;
		if (!(f = fopen(path, "r"))) {
			fprintf(stderr, "acceptd: no master running? pidfile %s: %s\n", path,
			    strerror(errno));
			return 1;
		}
		if (fscanf(f, "%ld", &pid) != 1 || pid < 2 || pid > INT_MAX) {
			fprintf(stderr, "acceptd: pidfile %s: no pid in it\n", path);
			fclose(f);
			return 1;
		}
		fclose(f);
		if (sigs[i].sig == 0)
			return stats_print_status(pid, stdout) < 0;
		if (sigs[i].sig == SIGHUP)
			seq = main_reload_status(path, before, sizeof before);
		if (kill((pid_t)pid, sigs[i].sig) < 0) {
			fprintf(stderr, "acceptd: signal %s to pid %ld: %s\n", name, pid,
			    errno == ESRCH ? "no such process (stale pidfile?)" : strerror(errno));
			return 1;
		}
		if (sigs[i].sig != SIGHUP)
			return 0;
		/* Wait for the master's verdict: nobody should have to read a
		 * log to learn that a reload failed. */
		for (int waited = 0; waited < MAIN_RELOAD_WAIT_MS; waited += 10) {
			if (main_reload_status(path, after, sizeof after) != seq) {
				if (strncmp(after, "ok", 2) == 0)
					return 0;
				fprintf(stderr, "acceptd: reload %s\n", after);
				return 1;
			}
			if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
				break;
			usleep(10000);
		}
		fprintf(stderr, "acceptd: reload: no answer from pid %ld\n", pid);
		return 1;
	}
	fprintf(stderr, "acceptd: -s: unknown signal '%s' (reload, stop, quit, reopen, upgrade, status)\n", name);
	return 2;
}

/* A pidfile naming a live acceptd means one runs: refuse to start a
 * second on the same pidfile (and sockets). */
static int
main_running(const char *pidfile, long *pid)
{
	char path[64], cmd[64] = "";
	FILE *f;
	size_t n = 0;

	if (!(f = fopen(pidfile, "r")))
		return 0;
	if (fscanf(f, "%ld", pid) != 1 || *pid < 2 || *pid > INT_MAX || *pid == (long)getpid()) {
		fclose(f);
		return 0;
	}
	fclose(f);
	snprintf(path, sizeof path, "/proc/%ld/cmdline", *pid);
	if ((f = fopen(path, "r"))) {
		n = fread(cmd, 1, sizeof cmd - 1, f);
		fclose(f);
	}
	cmd[n] = '\0';
	/* a recycled pid is not us: the title or argv[0] says acceptd */
	return strstr(cmd, "acceptd") != NULL;
}

/* Detach, but keep the caller waiting until the master serves or fails,
 * so "acceptd && echo started" tells the truth. */
static int
main_daemonize(void)
{
	int p[2], null;
	pid_t pid;
	char c = 1;  /* a master that dies before it reports is a failure */

	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		fprintf(stderr, "acceptd: daemonize: %s\n", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(c == 0 ? 0 : 1);
	}
	close(p[0]);
	/* fork, setsid, fork: the master is no session leader, so opening a
	 * terminal can never make it that session's controlling one. */
	setsid();
	if ((pid = fork()) < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		(void)0;
	if ((null = open("/dev/null", O_RDWR)) >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	return p[1];
}

int
main(int argc, char **argv)
{
	const char *file = MAIN_CONF, *sig = NULL, *rfd = getenv("ACCEPTD_READY_FD");
	int opt, foreground = 0, test = 0, ready_fd = -1, rc;
	char err[1024], path[PATH_MAX], exe[PATH_MAX], **args;
	struct conf *conf;
	ssize_t n;
	long running;

	/* For USR2: our path (a newly installed binary replaces the file, and
	 * this path then names it) and argv, before the title overwrites it. */
	if ((n = readlink("/proc/self/exe", exe, sizeof exe - 1)) > 0 &&
	    (args = calloc(argc + 1, sizeof *args))) {
		exe[n] = '\0';
		for (int i = 0; i < argc; i++)
			args[i] = strdup(argv[i]);
		master_exec_args(strdup(exe), args);
	}
	/* Started by an older master on USR2: report to it like a daemon does
	 * to its shell, and stay its child. */
	if (rfd) {
		ready_fd = atoi(rfd);
		unsetenv("ACCEPTD_READY_FD");
	}
	proctitle_init(argc, argv);
	while ((opt = getopt(argc, argv, "c:fs:tTVh")) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 'f': foreground = 1; break;
		case 's': sig = optarg; break;
		case 't': test = test ? test : 1; break;
		case 'T': test = 2; break;
		case 'V':
			printf("acceptd %s\nlibev %d.%d\nhandlers: %s\n", ACCEPTD_VERSION,
			    ev_version_major(), ev_version_minor(), handler_builtin_names());
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	if (optind < argc || (test && sig)) {
		fprintf(stderr, "acceptd: %s\n", optind < argc ? "unexpected argument" :
		    "-t/-T and -s do not go together");
		main_usage(stderr);
		return 2;
	}
	/* Absolute, so a daemon that chdir'd to / still finds it on reload. */
	if (realpath(file, path))
		file = path;
	if (!(conf = conf_load(file, err, sizeof err))) {
		fprintf(stderr, "acceptd: %s\n", err);
		return 1;
	}
	if (test) {
		if (test == 2)
			conf_dump(conf, stdout);
		fprintf(stderr, "acceptd: configuration %s is ok\n", file);
		conf_free(conf);
		return 0;
	}
	if (sig) {
		rc = main_signal(conf, sig);
		conf_free(conf);
		return rc;
	}
	if (!foreground && !conf->pidfile && !(conf->pidfile = strdup(MAIN_PIDFILE))) {
		fprintf(stderr, "acceptd: out of memory\n");
		return 1;
	}
	if (!rfd && conf->pidfile && main_running(conf->pidfile, &running)) {
		fprintf(stderr, "acceptd: already running (pid %ld, pidfile %s)\n", running,
		    conf->pidfile);
		conf_free(conf);
		return 1;
	}
	/* Before detaching, so a log that cannot be opened is said here. */
	if (conf->log_file && log_reopen(conf->log_file) < 0) {
		fprintf(stderr, "acceptd: log %s: %s\n", conf->log_file, strerror(errno));
		conf_free(conf);
		return 1;
	}
	if (!foreground && !rfd) {
		ready_fd = main_daemonize();
		master_daemonized();
	}
	log_setup(conf->log_syslog, conf->log_level);
	return master_run(conf, ready_fd);   /* it owns conf now */
}
