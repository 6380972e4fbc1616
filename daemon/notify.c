/* notify: systemd's sd_notify protocol spoken directly (no libsystemd): one
 * datagram per message to the socket in NOTIFY_SOCKET, and WATCHDOG_USEC. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "notify.h"

/* systemd reads at most a page or so per datagram; our messages are short,
 * and a longer one is refused (EMSGSIZE) rather than cut. */
#define NOTIFY_MAX 2048

static struct {
	int fd;                       /* -1: nothing to send to */
	pid_t pid;                    /* the process that may send */
	struct sockaddr_un sun;
	socklen_t sunlen;
	char path[sizeof ((struct sockaddr_un *)0)->sun_path + 1];
	uint64_t watchdog_usec;
	int result;                   /* notify_init()'s answer */
} notify = { .fd = -1 };

uint64_t
notify_monotonic_usec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A positive decimal number and nothing else; 0 on anything malformed. */
static uint64_t
notify_parse_u64(const char *s)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return 0;
	return v;
}

/* WATCHDOG_USEC, for us only when WATCHDOG_PID is unset or our pid. */
static uint64_t
notify_read_watchdog(void)
{
	const char *pid = getenv("WATCHDOG_PID");
	uint64_t usec = notify_parse_u64(getenv("WATCHDOG_USEC"));

	if (pid && notify_parse_u64(pid) != (uint64_t)getpid())
		return 0;
	return usec;
}

/* "/path" or "@abstract" into an address; -1 with errno. */
static int
notify_address(const char *s)
{
	size_t n = strlen(s);

	memset(&notify.sun, 0, sizeof notify.sun);
	notify.sun.sun_family = AF_UNIX;
	if ((s[0] != '/' && s[0] != '@') || n < 2)
		return errno = EAFNOSUPPORT, -1;
	if (n >= sizeof notify.sun.sun_path)
		return errno = ENAMETOOLONG, -1;
	memcpy(notify.sun.sun_path, s, n);
	if (s[0] == '@') {
		/* Abstract: a leading NUL, and the length says where it ends. */
		notify.sun.sun_path[0] = '\0';
		notify.sunlen = offsetof(struct sockaddr_un, sun_path) + n;
	} else {
		notify.sunlen = offsetof(struct sockaddr_un, sun_path) + n + 1;
	}
	memcpy(notify.path, s, n + 1);
	return 0;
}

int
notify_init(void)
{
	const char *s;
	int e;

	/* pid: 0 until set here, and back to 0 in notify_close */
	if (notify.pid == getpid())
		return notify.result;
	notify_close();
	notify.pid = getpid();
	notify.watchdog_usec = notify_read_watchdog();
	s = getenv("NOTIFY_SOCKET");
	if (!s || !*s) {
		notify.result = 0;
	} else if (notify_address(s) < 0 ||
	    (notify.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
		notify.path[0] = '\0';
		notify.result = -1;
	} else {
		notify.result = 1;
	}
	/* Like sd_notify(unset_environment = 1): nobody we fork or exec
	 * inherits the right to speak for the service. */
	e = errno;
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	errno = e;
	return notify.result;
}

void
notify_close(void)
{
	if (notify.fd >= 0)
		close(notify.fd);
	memset(&notify, 0, sizeof notify);
	notify.fd = -1;
}

int
notify_enabled(void)
{
	return notify.fd >= 0 && notify.pid == getpid();
}

const char *
notify_socket_path(void)
{
	return notify.path[0] ? notify.path : NULL;
}

uint64_t
notify_watchdog_usec(void)
{
	return notify.pid == getpid() ? notify.watchdog_usec : 0;
}

static int
notify_vsend(const char *fmt, va_list ap)
{
	char buf[NOTIFY_MAX];
	ssize_t n;
	int len;

	if (!notify_enabled())
		return 0;
	len = vsnprintf(buf, sizeof buf, fmt, ap);
	if (len < 0)
		return -1;
	if ((size_t)len >= sizeof buf)
		return errno = EMSGSIZE, -1;
	do
		n = sendto(notify.fd, buf, len, MSG_NOSIGNAL,
		    (struct sockaddr *)&notify.sun, notify.sunlen);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	return 0;
}

int
notify_send(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = notify_vsend(fmt, ap);
	va_end(ap);
	return rc;
}

/* "\nSTATUS=..." with newlines flattened, so one status stays one field;
 * "" for none. */
static const char *
notify_status_field(const char *status, char *buf, size_t n)
{
	if (!status)
		return "";
	snprintf(buf, n, "\nSTATUS=%s", status);
	for (char *p = buf + 1; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return buf;
}

int
notify_ready(const char *status)
{
	char st[512];

	return notify_send("READY=1%s", notify_status_field(status, st, sizeof st));
}

int
notify_reloading(const char *status)
{
	char st[512];

	return notify_send("RELOADING=1\nMONOTONIC_USEC=%llu%s",
	    (unsigned long long)notify_monotonic_usec(),
	    notify_status_field(status, st, sizeof st));
}

int
notify_stopping(const char *status)
{
	char st[512];

	return notify_send("STOPPING=1%s", notify_status_field(status, st, sizeof st));
}

int
notify_status(const char *fmt, ...)
{
	char status[480], st[512];
	va_list ap;

	if (!notify_enabled())
		return 0;
	va_start(ap, fmt);
	vsnprintf(status, sizeof status, fmt, ap);
	va_end(ap);
	/* notify_status_field() adds "\nSTATUS="; drop that leading newline. */
	return notify_send("%s", notify_status_field(status, st, sizeof st) + 1);
}

int
notify_mainpid(pid_t pid)
{
	return notify_send("MAINPID=%ld", (long)pid);
}

int
notify_watchdog(void)
{
	return notify_send("WATCHDOG=1");
}
