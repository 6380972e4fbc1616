/* log: the daemon's one log stream, to stderr or syslog, with a level filter.
 * log_warn/log_error append strerror(errno); the *x variants do not. */
#ifndef ACCEPTD_LOG_H
#define ACCEPTD_LOG_H

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_setup(int use_syslog, enum log_level level);
/* Open path for appending onto stderr (so exec'd programs log there too);
 * again on USR1, after logrotate moved the file. 0, or -1 with errno. */
int log_reopen(const char *path);
/* Whether a line at level would be logged (to skip costly formatting). */
int log_enabled(enum log_level level);
void log_msg(enum log_level level, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...)  log_msg(LOG_LEVEL_ERROR, errno, __VA_ARGS__)
#define log_errorx(...) log_msg(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_LEVEL_WARN, errno, __VA_ARGS__)
#define log_warnx(...)  log_msg(LOG_LEVEL_WARN, 0, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...)  log_msg(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)

#endif
