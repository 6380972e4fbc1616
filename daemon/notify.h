/* notify: systemd's sd_notify protocol spoken directly (no libsystemd): one
 * datagram per message to the socket in NOTIFY_SOCKET, and WATCHDOG_USEC. */
#ifndef ACCEPTD_NOTIFY_H
#define ACCEPTD_NOTIFY_H

#include <stdint.h>
#include <sys/types.h>

/*
 * How the master uses it:
 *
 *   notify_init()           once, in the process that will be the master
 *                           (after daemonizing, before forking workers).
 *                           Reads NOTIFY_SOCKET, WATCHDOG_USEC and
 *                           WATCHDOG_PID and removes all three from the
 *                           environment, so that workers and exec'd
 *                           programs (the exec handler) never see them and
 *                           never speak for the service. The socket itself is
 *                           close-on-exec, and every send is a no-op in any
 *                           process but the one that called notify_init(), so
 *                           a forked worker cannot send READY=1 by mistake.
 *   notify_ready(status)    once every worker accepts (and after a reload).
 *   notify_reloading(st)    on HUP, before anything else (RELOADING=1 with
 *                           MONOTONIC_USEC, as Type=notify-reload expects).
 *   notify_stopping(st)     on TERM/QUIT/INT, before draining.
 *   notify_status(fmt, ...) "2 workers, 3 listeners", "draining 12 connections".
 *   notify_watchdog()       every notify_watchdog_usec()/2 from the master's
 *                           loop while the workers are healthy (0: no watchdog).
 *   notify_mainpid(pid)     when the pid systemd started is not the master
 *                           (daemonized under Type=notify, binary upgrade).
 *   notify_socket_path()    the saved NOTIFY_SOCKET value, to put back into
 *                           the environment of a new binary on USR2 upgrade.
 *
 * Every function returns 0 when the message was sent or there is nothing
 * to send to (no NOTIFY_SOCKET, or not the master), and -1 with errno when
 * sending failed; a failure is worth a warning, never a stop.
 */

/* 1 when NOTIFY_SOCKET is set and usable, 0 when unset (all sends are
 * no-ops), -1 with errno when it is set but unusable (not "/path" or
 * "@abstract", too long, socket() failed): sends are no-ops then too, and
 * the caller should log a warning. Called again in the same process it
 * returns the first answer; in a forked child it starts over and finds
 * nothing (the variables are gone). notify_close() forgets everything. */
int notify_init(void);
/* Close the socket and forget the saved state (tests; or after exec fails). */
void notify_close(void);
/* Whether messages go anywhere from this process. */
int notify_enabled(void);
/* The NOTIFY_SOCKET value notify_init() took, or NULL. */
const char *notify_socket_path(void);

/* One datagram, the protocol's "KEY=value\nKEY=value" text as is. */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* status may be NULL (no STATUS= line). */
int notify_ready(const char *status);
int notify_reloading(const char *status);
int notify_stopping(const char *status);
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int notify_mainpid(pid_t pid);
int notify_watchdog(void);

/* The watchdog interval notify_init() found in WATCHDOG_USEC, in µs; 0 when
 * there is none, it is malformed, or WATCHDOG_PID is set to another pid. */
uint64_t notify_watchdog_usec(void);

/* CLOCK_MONOTONIC in µs, the clock MONOTONIC_USEC is in. */
uint64_t notify_monotonic_usec(void);

#endif
