/* exec: one program per connection, the ucspi-tcp way (as tcpserver and
 * s6-tcpserver run them): the socket on stdin and stdout, stderr to the
 * log, the peer in the environment; children reaped through the loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <ev.h>

#include <acceptd/module.h>

#include "handler.h"
#include "handlers/exec.h"

/* A line of the child's stderr longer than this is logged in pieces. */
#define EXEC_LINE 512

struct exec_conf {
	const struct acceptd_listener *l;
	char *command;                   /* as written, for -T */
	char **argv;
	char *prog;                      /* argv[0] found in EXEC_PATH */
};

/* One running program: its exit and its stderr, each watched until done. */
struct exec_child {
	ev_child cw;
	ev_io errw;
	const struct acceptd_listener *l;
	pid_t pid;
	size_t len;
	char line[EXEC_LINE];
};

/* ---- argv and environment ---- */

void
exec_argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

int
exec_split(const char *cmd, char ***out, char *err, size_t errlen)
{
	size_t cap = strlen(cmd) + 1;
	char **argv = calloc(EXEC_MAX_ARGS + 1, sizeof *argv);
	char *word = malloc(cap);
	const char *s = cmd;
	int argc = 0;

	if (!argv || !word) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (;;) {
		size_t n = 0;
		int have = 0;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		while (*s && *s != ' ' && *s != '\t') {
			have = 1;
			if (*s == '\'') {
				const char *e = strchr(s + 1, '\'');

				if (!e) {
					snprintf(err, errlen, "unterminated ' quote");
					goto fail;
				}
				memcpy(word + n, s + 1, e - s - 1);
				n += e - s - 1;
				s = e + 1;
			} else if (*s == '"') {
				for (s++; *s != '"'; s++) {
					if (!*s) {
						snprintf(err, errlen, "unterminated \" quote");
						goto fail;
					}
					if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
						s++;
					word[n++] = *s;
				}
				s++;
			} else if (*s == '\\') {
				if (!s[1]) {
					snprintf(err, errlen, "trailing backslash");
					goto fail;
				}
				word[n++] = s[1];
				s += 2;
			} else {
				word[n++] = *s++;
			}
		}
		if (!have)
			continue;
		if (argc == EXEC_MAX_ARGS) {
			snprintf(err, errlen, "more than %d words", EXEC_MAX_ARGS);
			goto fail;
		}
		if (!(argv[argc] = strndup(word, n))) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		argc++;
	}
	if (argc == 0) {
		snprintf(err, errlen, "empty command");
		goto fail;
	}
	free(word);
	*out = argv;
	return argc;
fail:
	free(word);
	exec_argv_free(argv);
	return -1;
}

/* An address as ucspi shows it: IPv6 in its usual text form, except that
 * an IPv4-mapped one is the IPv4 address it carries. */
static int
exec_ip(const struct sockaddr *sa, socklen_t len, char *ip, size_t n, unsigned *port)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, n);
		*port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			inet_ntop(AF_INET, in6->sin6_addr.s6_addr + 12, ip, n);
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, n);
		*port = ntohs(in6->sin6_port);
		return 0;
	}
	return -1;
}

void
exec_env_build(struct exec_env *e, int fd, const struct sockaddr *peer, socklen_t peer_len,
    const struct sockaddr *local, socklen_t local_len)
{
	char ip[INET6_ADDRSTRLEN];
	size_t off = 0;
	int k = 0;
	unsigned port;

#define EXEC_PUT(...) do { \
	int w_ = snprintf(e->buf + off, sizeof e->buf - off, __VA_ARGS__); \
	if (w_ >= 0 && (size_t)w_ < sizeof e->buf - off) { \
		e->envp[k++] = e->buf + off; \
		off += w_ + 1; \
	} \
} while (0)

	if (peer && peer->sa_family == AF_UNIX) {
		struct ucred cred;
		socklen_t cl = sizeof cred;

		EXEC_PUT("PROTO=IPC");
		if (local && local->sa_family == AF_UNIX &&
		    local_len > offsetof(struct sockaddr_un, sun_path)) {
			const struct sockaddr_un *un = (const void *)local;

			EXEC_PUT("IPCLOCALPATH=%.*s", (int)strnlen(un->sun_path,
			    local_len - offsetof(struct sockaddr_un, sun_path)), un->sun_path);
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
			EXEC_PUT("IPCREMOTEEUID=%u", (unsigned)cred.uid);
			EXEC_PUT("IPCREMOTEEGID=%u", (unsigned)cred.gid);
		}
	} else {
		EXEC_PUT("PROTO=TCP");
		if (peer && exec_ip(peer, peer_len, ip, sizeof ip, &port) == 0) {
			EXEC_PUT("TCPREMOTEIP=%s", ip);
			EXEC_PUT("TCPREMOTEPORT=%u", port);
		}
		if (local && exec_ip(local, local_len, ip, sizeof ip, &port) == 0) {
			EXEC_PUT("TCPLOCALIP=%s", ip);
			EXEC_PUT("TCPLOCALPORT=%u", port);
		}
	}
	EXEC_PUT("PATH=" EXEC_PATH);
#undef EXEC_PUT
	e->envp[k] = NULL;
}

/* ---- children ---- */

static void
exec_child_free(struct exec_child *ch)
{
	if (!ev_is_active(&ch->cw) && !ev_is_active(&ch->errw))
		free(ch);
}

static void
exec_log_line(struct exec_child *ch)
{
	const struct acceptd_api *api = ch->l->api;

	api->log(ch->l, ACCEPTD_LOG_INFO, "exec[%d]: %.*s", (int)ch->pid, (int)ch->len, ch->line);
	ch->len = 0;
}

static void
exec_err_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct exec_child *ch = (struct exec_child *)((char *)w - offsetof(struct exec_child, errw));
	char buf[4096];
	ssize_t n = read(w->fd, buf, sizeof buf);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (ch->len)
			exec_log_line(ch);
		ev_io_stop(loop, w);
		close(w->fd);
		exec_child_free(ch);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			exec_log_line(ch);
			continue;
		}
		ch->line[ch->len++] = buf[i];
		if (ch->len == sizeof ch->line)
			exec_log_line(ch);
	}
}

static void
exec_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct exec_child *ch = (struct exec_child *)w;
	const struct acceptd_api *api = ch->l->api;
	int st = w->rstatus;

	ev_child_stop(loop, w);
	if (WIFSIGNALED(st))
		api->log(ch->l, ACCEPTD_LOG_INFO, "exec[%d]: killed by signal %d", (int)ch->pid,
		    WTERMSIG(st));
	else if (WIFEXITED(st) && WEXITSTATUS(st))
		api->log(ch->l, ACCEPTD_LOG_INFO, "exec[%d]: exited with status %d", (int)ch->pid,
		    WEXITSTATUS(st));
	else
		api->log(ch->l, ACCEPTD_LOG_DEBUG, "exec[%d]: exited", (int)ch->pid);
	api->conn_done(ch->l);
	exec_child_free(ch);
}

/* In the child, between fork and exec: nothing that allocates or locks. */
static void
exec_child_run(const struct exec_conf *ec, int fd, int errfd, char **envp)
{
	sigset_t none;

	/* The worker ignores SIGPIPE and libev may block signals: a program
	 * starts with neither (ignored dispositions survive execve). */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Above 2 first, so the dup2s below cannot clobber one another. */
	if (fd < 3)
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (errfd < 3)
		errfd = fcntl(errfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0 || errfd < 0 || dup2(errfd, 2) < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
		_exit(126);
	/* The accepted socket is non-blocking; ucspi programs expect blocking
	 * stdio. (The flag is the open file's: the worker's copy is closed.) */
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) & ~O_NONBLOCK);
	execve(ec->prog, ec->argv, envp);
	dprintf(2, "cannot run %s: %s\n", ec->prog, strerror(errno));
	_exit(127);
}

static void
exec_accept(void *conf, const struct acceptd_accept *a)
{
	const struct exec_conf *ec = conf;
	const struct acceptd_api *api = a->listener->api;
	struct exec_child *ch = calloc(1, sizeof *ch);
	struct exec_env env;
	int p[2] = { -1, -1 };
	pid_t pid;

	if (!ch || pipe2(p, O_CLOEXEC) < 0) {
		api->log(a->listener, ACCEPTD_LOG_WARN, "exec: connection dropped: %s",
		    ch ? strerror(errno) : "out of memory");
		goto drop;
	}
	exec_env_build(&env, a->fd, a->peer, a->peer_len, a->local, a->local_len);
	if ((pid = fork()) < 0) {
		api->log(a->listener, ACCEPTD_LOG_WARN, "exec: fork: %s", strerror(errno));
		goto drop;
	}
	if (pid == 0)
		exec_child_run(ec, a->fd, p[1], env.envp);
	/* The socket is the child's now; our copy would keep it open. */
	close(a->fd);
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	ch->l = a->listener;
	ch->pid = pid;
	/* Started before the loop runs again, so the child's SIGCHLD cannot
	 * be reaped by libev without a watcher to report to. */
	ev_child_init(&ch->cw, exec_child_cb, pid, 0);
	ev_child_start(a->loop, &ch->cw);
	ev_io_init(&ch->errw, exec_err_cb, p[0], EV_READ);
	ev_io_start(a->loop, &ch->errw);
	return;
drop:
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	free(ch);
	close(a->fd);
	api->conn_done(a->listener);
}

static int
exec_start(void *conf, struct ev_loop *loop)
{
	const struct exec_conf *ec = conf;

	/* ev_child watchers only work in libev's default loop. */
	if (!ev_is_default_loop(loop)) {
		ec->l->api->log(ec->l, ACCEPTD_LOG_ERROR, "exec: needs libev's default loop");
		return -1;
	}
	return 0;
}

/* ---- configuration ---- */

static void *
exec_conf_new(const struct acceptd_listener *l)
{
	struct exec_conf *ec = calloc(1, sizeof *ec);

	if (ec)
		ec->l = l;
	return ec;
}

static void
exec_conf_free(void *conf)
{
	struct exec_conf *ec = conf;

	if (!ec)
		return;
	free(ec->command);
	exec_argv_free(ec->argv);
	free(ec->prog);
	free(ec);
}

static int
exec_conf_set(void *conf, const char *key, const char *value, char *err, size_t errlen)
{
	struct exec_conf *ec = conf;
	char **argv, *command;

	if (strcmp(key, "command") != 0)
		return ACCEPTD_KEY_UNKNOWN;
	if (exec_split(value, &argv, err, errlen) < 0)
		return -1;
	if (!(command = strdup(value))) {
		exec_argv_free(argv);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	exec_argv_free(ec->argv);
	free(ec->command);
	ec->argv = argv;
	ec->command = command;
	return 0;
}

/* The program, found now: a typo is a config error, not a log line per
 * connection. Without a '/', it is looked up in EXEC_PATH. */
static int
exec_conf_check(void *conf, char *err, size_t errlen)
{
	struct exec_conf *ec = conf;
	const char *name, *dir, *end;
	char path[4096];

	if (!ec->argv) {
		snprintf(err, errlen, "handler exec needs command = PROGRAM [ARGS...]");
		return -1;
	}
	name = ec->argv[0];
	if (strchr(name, '/')) {
		if (access(name, X_OK) < 0) {
			snprintf(err, errlen, "command: cannot run %s: %s", name, strerror(errno));
			return -1;
		}
		snprintf(path, sizeof path, "%s", name);
	} else {
		for (dir = EXEC_PATH;; dir = end + 1) {
			end = strchr(dir, ':');
			if (!end)
				end = dir + strlen(dir);
			snprintf(path, sizeof path, "%.*s/%s", (int)(end - dir), dir, name);
			if (access(path, X_OK) == 0)
				break;
			if (!*end) {
				snprintf(err, errlen, "command: %s not found in %s", name, EXEC_PATH);
				return -1;
			}
		}
	}
	free(ec->prog);
	if (!(ec->prog = strdup(path))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void
exec_conf_dump(const void *conf, FILE *out)
{
	const struct exec_conf *ec = conf;

	fprintf(out, "command = %s\n", ec->command ? ec->command : "");
}

const struct acceptd_handler handler_exec = {
	ACCEPTD_HANDLER_V1,
	.name = "exec",
	.conf_new = exec_conf_new,
	.conf_set = exec_conf_set,
	.conf_check = exec_conf_check,
	.conf_dump = exec_conf_dump,
	.conf_free = exec_conf_free,
	.start = exec_start,
	.accept = exec_accept,
};
