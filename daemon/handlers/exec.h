/* exec: the exec handler's pieces that need no process: the command line
 * split into argv, and the ucspi environment of a connection, separate
 * from the handler so tests (and fuzzers) can call them. */
#ifndef ACCEPTD_EXEC_H
#define ACCEPTD_EXEC_H

#include <stddef.h>
#include <sys/socket.h>

#define EXEC_MAX_ARGS 256
/* The clean PATH programs get, and are looked up in. */
#define EXEC_PATH "/usr/local/bin:/usr/bin:/bin"

/* Split cmd into words without a shell: blanks separate; '...' is taken as
 * it is; in "..." a backslash escapes " and \ (else it is kept); outside
 * quotes a backslash escapes any character. Returns argc (>= 1) with a
 * NULL-terminated malloc'd vector in *argv (exec_argv_free), or -1 with the
 * reason in err: empty, unterminated quote, trailing backslash, too many. */
int exec_split(const char *cmd, char ***argv, char *err, size_t errlen);
void exec_argv_free(char **argv);

/* The environment for one connection: PROTO=TCP with TCPREMOTEIP,
 * TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT (IPv4-mapped IPv6 shown as IPv4),
 * or PROTO=IPC with IPCLOCALPATH (and IPCREMOTEEUID, IPCREMOTEEGID when fd
 * is a unix socket that knows its peer); then PATH. */
struct exec_env {
	char *envp[12];                  /* NULL-terminated, into buf */
	char buf[512];
};
void exec_env_build(struct exec_env *e, int fd, const struct sockaddr *peer, socklen_t peer_len,
    const struct sockaddr *local, socklen_t local_len);

#endif
