/* conf: the INI file read into plain structs, validated, with defaults
 * filled in; errors are "FILE:LINE: reason" and nothing is half-applied. */
#ifndef ACCEPTD_CONF_H
#define ACCEPTD_CONF_H

#include <stdio.h>
#include <sys/socket.h>

#include "cidr.h"
#include "log.h"

struct acceptd_handler;
struct handler_listener;
struct handler_module;

enum conf_mode { CONF_MODE_SHARED, CONF_MODE_REUSEPORT };
enum conf_proxy { CONF_PROXY_OFF, CONF_PROXY_V1, CONF_PROXY_V2, CONF_PROXY_ANY };

/* A key the daemon does not own, kept for the listener's handler. */
struct conf_kv {
	char *key, *value;
	int line;
	struct conf_kv *next;
};

/* One resolved address of a listener. */
struct conf_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct conf_listener {
	char *name;
	int line;                    /* of its [listener NAME] header */
	char *address;               /* "*", literal, host name or "unix:/path" */
	int address_line;
	int port;                    /* 0..65535; 0 = any free port */
	int port_line;
	char *handler_name;
	int handler_line;
	const struct acceptd_handler *handler;
	void *handler_conf;          /* the handler's, from conf_new/conf_set */
	struct handler_listener *hl; /* the handler's handle on the listener */
	int stats_id;                /* its slot in the shared counters */
	int backlog;                 /* filled in: net.core.somaxconn if unset */
	int ipv6only, keepalive, defer_accept;
	int fastopen;                /* TCP_FASTOPEN queue, 0 = off */
	int reuseport;               /* resolved: yes/no after [daemon] mode */
	int reuseport_set;           /* given in the listener */
	int reuseport_line;
	int max_connections;
	long long idle_timeout_ms;
	char *allow, *deny;          /* as written, for -T */
	struct cidr_list allow_list, deny_list;
	int allow_line, deny_line;
	enum conf_proxy proxy_protocol;
	struct conf_kv *hkeys;       /* handler keys in file order */
	struct conf_addr *addrs;     /* resolved, duplicates removed */
	int naddrs;
	struct conf_listener *next;
};

/* A [module NAME] section. */
struct conf_module {
	char *name;
	int line;                    /* of its header */
	char *path;                  /* as written */
	int path_line;
	struct conf_module *next;
};

struct conf {
	char *file;
	int workers;                 /* resolved: auto = online CPUs */
	int workers_auto;
	enum conf_mode mode;
	char *user, *group, *pidfile;
	int log_syslog;
	char *log_file;              /* log = /path: appended to, reopened on USR1 */
	enum log_level log_level;
	long long shutdown_timeout_ms;
	long rlimit_nofile;
	int cpu_affinity;
	struct conf_listener *listeners;
	int nlisteners;
	struct conf_module *module_secs; /* in file order */
	struct handler_module *modules;  /* loaded from them */
};

/* Read, validate and resolve FILE. NULL with "FILE:LINE: reason" (or
 * "FILE: reason") in err. Warnings (backlog over somaxconn) are logged. */
struct conf *conf_load(const char *file, char *err, size_t errlen);
void conf_free(struct conf *conf);
/* The effective configuration as INI, every default filled in (-T). */
void conf_dump(const struct conf *conf, FILE *out);

/* Value parsers shared with handlers: 0 or -1. */
int conf_parse_bool(const char *s, int *out);
int conf_parse_int(const char *s, long long min, long long max, long long *out); /* digits only */
int conf_parse_duration_ms(const char *s, long long *out);

/* "127.0.0.1:80", "[::1]:80" or "unix:/path" */
void conf_format_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t n);

#endif
