/* proctitle: the process title ps shows ("acceptd: master", "acceptd:
 * worker N"), written over argv as nginx and PostgreSQL do. */
#ifndef ACCEPTD_PROCTITLE_H
#define ACCEPTD_PROCTITLE_H

/* Call first thing in main: moves environ out of the way of argv. */
void proctitle_init(int argc, char **argv);
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
