/* master: the master process: binds, drops privileges, forks the workers,
 * replaces those that die, and turns signals into stops. */
#ifndef ACCEPTD_MASTER_H
#define ACCEPTD_MASTER_H

struct conf;

/* Serve conf until stopped. ready_fd (or -1) gets one byte, 0 when serving,
 * 1 when start-up failed, for a daemonizing parent waiting on it.
 * Returns the process exit status. */
int master_run(struct conf *conf, int ready_fd);
/* The binary's path and argv, for USR2 to start again. */
void master_exec_args(char *exe, char **argv);
/* The master was daemonized (forked away from the pid that was started):
 * under systemd's Type=notify it then names itself with MAINPID=. */
void master_daemonized(void);

#endif
