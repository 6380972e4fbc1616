/* log: the daemon's one log stream, to stderr or syslog, with a level filter.
 * Every line is one write(2), so lines of concurrent workers never interleave. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_syslog;
static enum log_level log_max = LOG_LEVEL_INFO;
static const char *const log_names[] = { "error", "warn", "info", "debug" };

void
log_setup(int use_syslog, enum log_level level)
{
	if (use_syslog && !log_syslog)
		openlog("acceptd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!use_syslog && log_syslog)
		closelog();
	log_syslog = use_syslog;
	log_max = level;
}

int
log_reopen(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -1;
	if (fd != STDERR_FILENO && dup2(fd, STDERR_FILENO) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	if (fd != STDERR_FILENO)
		close(fd);
	return 0;
}

int
log_enabled(enum log_level level)
{
	return level <= log_max;
}

void
log_msg(enum log_level level, int errnum, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[1024], line[1200], stamp[40], zone[8];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n, saved = errno;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (errnum && (size_t)n < sizeof msg)
		snprintf(msg + n, sizeof msg - n, ": %s", strerror(errnum));

	if (log_syslog) {
		syslog(prio[level], "%s", msg);
	} else {
		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		strftime(zone, sizeof zone, "%z", &tm);
		n = snprintf(line, sizeof line, "%s.%03d%s acceptd[%d] %s: %s\n",
		    stamp, (int)(tv.tv_usec / 1000), zone, (int)getpid(),
		    log_names[level], msg);
		if (n > (int)sizeof line - 1)
			n = sizeof line - 1, line[n - 1] = '\n';
		/* A short write to stderr is not worth retrying: nobody to tell. */
		if (write(STDERR_FILENO, line, n) < 0)
			(void)0;
	}
	errno = saved;
}
