/* conf: the INI file read into plain structs, validated, with defaults
 * filled in; errors are "FILE:LINE: reason" and nothing is half-applied. */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <ini.h>

#include "conf.h"
#include "handler.h"

#define CONF_MAX_FILE (4 * 1024 * 1024)
#define CONF_PORT_DEFAULT 7007

enum conf_section { SEC_NONE, SEC_DAEMON, SEC_LISTENER, SEC_MODULE };

/* The parse in progress. Debian's inih passes no line numbers to the
 * handler (INI_HANDLER_LINENO 0), so our reader hands it one line at a
 * time and remembers which line and which section that was. */
struct conf_parse {
	struct conf *conf;
	const char *buf;
	size_t len, pos;
	int line;                       /* the line inih is looking at */
	enum conf_section sec;
	struct conf_listener *cur, **tail;
	struct conf_module *mod, **mtail;
	int daemon_line;
	int seen[32];                   /* [daemon] key -> line seen */
	int lseen[32];                  /* current listener's key -> line seen */
	int err_line;                   /* first error; 0: none */
	char *err;
	size_t errlen;
};

static const char *const conf_daemon_keys[] = {
	"workers", "mode", "user", "group", "pidfile", "log", "log_level",
	"shutdown_timeout", "rlimit_nofile", "cpu_affinity", NULL,
};

static void conf_fail(struct conf_parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conf_fail(struct conf_parse *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err_line)
		return;
	p->err_line = line > 0 ? line : 1;
	n = snprintf(p->err, p->errlen, "%s:%d: ", p->conf->file, p->err_line);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
}

int
conf_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "yes", "on", "true", "1" };
	static const char *const no[] = { "no", "off", "false", "0" };

	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

int
conf_parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	/* digits only: no sign, blanks or "-0" for strtoll to be kind to */
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "250ms", "10s", "2m"; a bare number is seconds, as in nginx. */
int
conf_parse_duration_ms(const char *s, long long *out)
{
	long long v, mult = 1000;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno)
		return -1;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else
		return -1;
	if (v > 7LL * 24 * 3600 * 1000 / mult)  /* a week is plenty */
		return -1;
	*out = v * mult;
	return 0;
}

static void
conf_format_duration(long long ms, char *buf, size_t n)
{
	if (ms && ms % 60000 == 0)
		snprintf(buf, n, "%lldm", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, n, "%llds", ms / 1000);
	else
		snprintf(buf, n, "%lldms", ms);
}

static int
conf_valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return 0;
	return 1;
}

static int
conf_enum(const char *s, const char *const *names, int *out)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(s, names[i]) == 0)
			return *out = i, 0;
	return -1;
}

static char *
conf_strdup(struct conf_parse *p, const char *s)
{
	char *d = strdup(s);

	if (!d)
		conf_fail(p, p->line, "out of memory");
	return d;
}

static void
conf_module_start(struct conf_parse *p, const char *name)
{
	struct conf_module *m;

	if (!conf_valid_name(name)) {
		conf_fail(p, p->line, "bad module name '%s': use letters, digits, '_' and '-'", name);
		return;
	}
	for (m = p->conf->module_secs; m; m = m->next)
		if (strcmp(m->name, name) == 0) {
			conf_fail(p, p->line, "duplicate module '%s' (first at line %d)", name, m->line);
			return;
		}
	if (!(m = calloc(1, sizeof *m)) || !(m->name = strdup(name))) {
		free(m);
		conf_fail(p, p->line, "out of memory");
		return;
	}
	m->line = p->line;
	*p->mtail = m;
	p->mtail = &m->next;
	p->mod = m;
	p->sec = SEC_MODULE;
}

static void
conf_section_start(struct conf_parse *p, const char *hdr, size_t n)
{
	char name[256];
	struct conf_listener *l;

	if (n >= sizeof name) {
		conf_fail(p, p->line, "section name too long");
		return;
	}
	memcpy(name, hdr, n);
	name[n] = '\0';
	if (strcmp(name, "daemon") == 0) {
		if (p->daemon_line)
			conf_fail(p, p->line, "duplicate [daemon] section (first at line %d)",
			    p->daemon_line);
		p->daemon_line = p->line;
		p->sec = SEC_DAEMON;
		return;
	}
	if (strncmp(name, "module", 6) == 0 && (name[6] == ' ' || name[6] == '\t' || !name[6])) {
		conf_module_start(p, name + 6 + strspn(name + 6, " \t"));
		return;
	}
	if (strncmp(name, "listener", 8) != 0 || (name[8] != ' ' && name[8] != '\t')) {
		conf_fail(p, p->line, "unknown section [%s]", name);
		return;
	}
	hdr = name + 8 + strspn(name + 8, " \t");
	if (!conf_valid_name(hdr)) {
		conf_fail(p, p->line, "bad listener name '%s': use letters, digits, '_' and '-'",
		    hdr);
		return;
	}
	for (l = p->conf->listeners; l; l = l->next)
		if (strcmp(l->name, hdr) == 0) {
			conf_fail(p, p->line, "duplicate listener '%s' (first at line %d)",
			    hdr, l->line);
			return;
		}
	if (!(l = calloc(1, sizeof *l)) || !(l->name = strdup(hdr))) {
		free(l);
		conf_fail(p, p->line, "out of memory");
		return;
	}
	memset(p->lseen, 0, sizeof p->lseen);
	l->line = p->line;
	l->port = CONF_PORT_DEFAULT;
	l->ipv6only = 1;
	*p->tail = l;
	p->tail = &l->next;
	p->conf->nlisteners++;
	p->cur = l;
	p->sec = SEC_LISTENER;
}

/* inih's reader: one line per call. Refuses what inih would silently
 * mangle: lines over its INI_MAX_LINE (split in two), NUL bytes (cut),
 * and indentation (INI_ALLOW_MULTILINE would glue an indented key onto the
 * previous value), so leading blanks are dropped here. */
static char *
conf_reader(char *str, int num, void *stream)
{
	struct conf_parse *p = stream;
	const char *s, *nl;
	size_t n;

	if (p->err_line || p->pos >= p->len)
		return NULL;
	s = p->buf + p->pos;
	nl = memchr(s, '\n', p->len - p->pos);
	n = nl ? (size_t)(nl - s) : p->len - p->pos;
	p->pos += n + (nl != NULL);
	p->line++;
	if (n && s[n - 1] == '\r')
		n--;
	if (memchr(s, '\0', n)) {
		conf_fail(p, p->line, "binary data (NUL byte) in the file");
		return NULL;
	}
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	if (n + 2 > (size_t)num) {
		conf_fail(p, p->line, "line too long (over %d characters)", num - 2);
		return NULL;
	}
	if (n && *s == '[') {
		const char *close = memchr(s, ']', n);

		if (close)
			conf_section_start(p, s + 1, close - s - 1);
		if (p->err_line)
			return NULL;
	}
	memcpy(str, s, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

static int
conf_daemon_key(struct conf_parse *p, const char *key, const char *v)
{
	static const char *const modes[] = { "shared", "reuseport", NULL };
	static const char *const logs[] = { "stderr", "syslog", NULL };
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	static const char *const affinity[] = { "off", "auto", NULL };
	struct conf *c = p->conf;
	long long n;
	int i, e;

	if (conf_enum(key, conf_daemon_keys, &i) < 0)
		return conf_fail(p, p->line, "unknown key '%s' in [daemon]", key), 0;
	if (p->seen[i])
		return conf_fail(p, p->line, "duplicate key '%s' (first at line %d)", key,
		    p->seen[i]), 0;
	p->seen[i] = p->line;
	if (!*v)
		return 1;       /* empty: keep the default */

	if (strcmp(key, "workers") == 0) {
		if (strcmp(v, "auto") == 0)
			c->workers_auto = 1;
		else if (conf_parse_int(v, 1, 1024, &n) < 0)
			goto bad;
		else
			c->workers = n, c->workers_auto = 0;
	} else if (strcmp(key, "mode") == 0) {
		if (conf_enum(v, modes, &e) < 0)
			goto bad;
		c->mode = e;
	} else if (strcmp(key, "user") == 0) {
		if (!getpwnam(v))
			return conf_fail(p, p->line, "user: no such user '%s'", v), 0;
		free(c->user);
		c->user = conf_strdup(p, v);
	} else if (strcmp(key, "group") == 0) {
		if (!getgrnam(v))
			return conf_fail(p, p->line, "group: no such group '%s'", v), 0;
		free(c->group);
		c->group = conf_strdup(p, v);
	} else if (strcmp(key, "pidfile") == 0) {
		free(c->pidfile);
		c->pidfile = conf_strdup(p, v);
	} else if (strcmp(key, "log") == 0) {
		free(c->log_file);
		c->log_file = NULL;
		c->log_syslog = 0;
		if (*v == '/')
			c->log_file = conf_strdup(p, v);
		else if (conf_enum(v, logs, &c->log_syslog) < 0)
			goto bad;
	} else if (strcmp(key, "log_level") == 0) {
		if (conf_enum(v, levels, &e) < 0)
			goto bad;
		c->log_level = e;
	} else if (strcmp(key, "shutdown_timeout") == 0) {
		if (conf_parse_duration_ms(v, &c->shutdown_timeout_ms) < 0)
			goto bad;
	} else if (strcmp(key, "rlimit_nofile") == 0) {
		if (conf_parse_int(v, 0, INT_MAX, &n) < 0)
			goto bad;
		c->rlimit_nofile = n;
	} else if (strcmp(key, "cpu_affinity") == 0) {
		if (conf_enum(v, affinity, &c->cpu_affinity) < 0)
			goto bad;
	}
	return 1;
bad:
	conf_fail(p, p->line, "%s: bad value '%s' (%s)", key, v,
	    strcmp(key, "workers") == 0 ? "1..1024 or auto" :
	    strcmp(key, "mode") == 0 ? "shared or reuseport" :
	    strcmp(key, "log") == 0 ? "stderr, syslog or an absolute path" :
	    strcmp(key, "log_level") == 0 ? "error, warn, info or debug" :
	    strcmp(key, "shutdown_timeout") == 0 ? "a duration like 500ms, 10s, 1m" :
	    strcmp(key, "cpu_affinity") == 0 ? "off or auto" : "0..2147483647");
	return 0;
}

/* The listener's own keys; everything else is its handler's. */
static const char *const conf_listener_keys[] = {
	"address", "port", "handler", "backlog", "ipv6only", "reuseport",
	"keepalive", "defer_accept", "fastopen", "max_connections",
	"idle_timeout", "allow", "deny", "proxy_protocol", NULL,
};

static int
conf_listener_key(struct conf_parse *p, const char *key, const char *v)
{
	static const char *const proxies[] = { "off", "v1", "v2", "any", NULL };
	struct conf_listener *l = p->cur;
	struct conf_kv *kv, **tail;
	const char *want = NULL;
	char bad[80];
	long long n;
	int i, b;

	if (conf_enum(key, conf_listener_keys, &i) < 0) {
		for (tail = &l->hkeys; *tail; tail = &(*tail)->next)
			if (strcmp((*tail)->key, key) == 0)
				return conf_fail(p, p->line, "duplicate key '%s' (first at line %d)",
				    key, (*tail)->line), 0;
		if (!(kv = calloc(1, sizeof *kv)) || !(kv->key = strdup(key)) ||
		    !(kv->value = strdup(v))) {
			if (kv)
				free(kv->key);
			free(kv);
			return conf_fail(p, p->line, "out of memory"), 0;
		}
		kv->line = p->line;
		*tail = kv;
		return 1;
	}
	if (p->lseen[i])
		return conf_fail(p, p->line, "duplicate key '%s' (first at line %d)", key, p->lseen[i]), 0;
	p->lseen[i] = p->line;
	if (!*v && strcmp(key, "address") != 0 && strcmp(key, "handler") != 0)
		return 1;

	if (strcmp(key, "address") == 0) {
		l->address_line = p->line;
		if (!*v)
			return 1;
		free(l->address);
		l->address = conf_strdup(p, v);
	} else if (strcmp(key, "port") == 0) {
		l->port_line = p->line;
		if (conf_parse_int(v, 0, 65535, &n) < 0)
			want = "0..65535";
		else
			l->port = n;
	} else if (strcmp(key, "handler") == 0) {
		l->handler_line = p->line;
		if (!*v)
			return 1;
		free(l->handler_name);
		l->handler_name = conf_strdup(p, v);
	} else if (strcmp(key, "backlog") == 0) {
		if (conf_parse_int(v, 1, INT_MAX, &n) < 0)
			want = "1..2147483647";
		else
			l->backlog = n;
	} else if (strcmp(key, "fastopen") == 0) {
		if (conf_parse_int(v, 0, INT_MAX, &n) < 0)
			want = "0..2147483647";
		else
			l->fastopen = n;
	} else if (strcmp(key, "max_connections") == 0) {
		if (conf_parse_int(v, 0, INT_MAX, &n) < 0)
			want = "0..2147483647";
		else
			l->max_connections = n;
	} else if (strcmp(key, "idle_timeout") == 0) {
		if (conf_parse_duration_ms(v, &l->idle_timeout_ms) < 0)
			want = "a duration like 500ms, 10s, 1m";
	} else if (strcmp(key, "allow") == 0 || strcmp(key, "deny") == 0) {
		int allow = key[0] == 'a';
		struct cidr_list cl;
		char **text = allow ? &l->allow : &l->deny;

		if (cidr_list_parse(v, &cl, bad, sizeof bad) < 0)
			return bad[0] ? conf_fail(p, p->line, "%s: bad CIDR '%s' (want an address or "
			    "address/bits, IPv4 or IPv6)", key, bad) :
			    conf_fail(p, p->line, "out of memory"), 0;
		cidr_list_free(allow ? &l->allow_list : &l->deny_list);
		*(allow ? &l->allow_list : &l->deny_list) = cl;
		if (allow)
			l->allow_line = p->line;
		else
			l->deny_line = p->line;
		free(*text);
		*text = conf_strdup(p, v);
	} else if (strcmp(key, "proxy_protocol") == 0) {
		if (conf_enum(v, proxies, &b) < 0)
			want = "off, v1, v2 or any";
		else
			l->proxy_protocol = b;
	} else {
		/* the booleans */
		if (conf_parse_bool(v, &b) < 0)
			want = "yes or no";
		else if (strcmp(key, "ipv6only") == 0)
			l->ipv6only = b;
		else if (strcmp(key, "reuseport") == 0)
			l->reuseport = b, l->reuseport_set = 1, l->reuseport_line = p->line;
		else if (strcmp(key, "keepalive") == 0)
			l->keepalive = b;
		else
			l->defer_accept = b;
	}
	if (want)
		return conf_fail(p, p->line, "%s: bad value '%s' (%s)", key, v, want), 0;
	return 1;
}

static int
conf_module_key(struct conf_parse *p, const char *key, const char *v)
{
	struct conf_module *m = p->mod;

	if (strcmp(key, "path") != 0)
		return conf_fail(p, p->line, "unknown key '%s' in [module %s] (only path)", key,
		    m->name), 0;
	if (m->path_line)
		return conf_fail(p, p->line, "duplicate key 'path' (first at line %d)",
		    m->path_line), 0;
	m->path_line = p->line;
	if (!*v)
		return conf_fail(p, p->line, "path: empty; name the module's .so file"), 0;
	m->path = conf_strdup(p, v);
	return 1;
}

static int
conf_ini_handler(void *user, const char *section, const char *key, const char *value)
{
	struct conf_parse *p = user;

	(void)section;  /* the reader tracked it, with its line */
	if (p->err_line)
		return 0;
	switch (p->sec) {
	case SEC_DAEMON:
		return conf_daemon_key(p, key, value);
	case SEC_LISTENER:
		return conf_listener_key(p, key, value);
	case SEC_MODULE:
		return conf_module_key(p, key, value);
	default:
		conf_fail(p, p->line, "key '%s' outside any section", key);
		return 0;
	}
}

static int
conf_somaxconn(void)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
	int v = 4096;

	if (f) {
		if (fscanf(f, "%d", &v) != 1 || v < 1)
			v = 4096;
		fclose(f);
	}
	return v;
}

/* Resolve the listener's address the way Tornado's bind_sockets() does:
 * getaddrinfo(AF_UNSPEC, SOCK_STREAM, AI_PASSIVE), duplicates removed. */
static void
conf_resolve(struct conf_parse *p, struct conf_listener *l)
{
	struct addrinfo hints = { 0 }, *res, *ai;
	char host[256], port[8];
	const char *a = l->address ? l->address : "*";
	int line = l->address_line ? l->address_line : l->line, rc, n = 0;
	size_t len;

	if (strncmp(a, "unix:", 5) == 0) {
		struct sockaddr_un *sun;

		if (l->port_line)
			return conf_fail(p, l->port_line, "port does not apply to unix address '%s'", a);
		if (l->reuseport_set && l->reuseport)
			return conf_fail(p, l->reuseport_line, "reuseport does not apply to unix address '%s'", a);
		l->reuseport = 0;
		len = strlen(a + 5);
		if (a[5] != '/' || len >= sizeof sun->sun_path)
			return conf_fail(p, line, "address: unix socket path must be absolute and under %zu bytes",
			    sizeof sun->sun_path);
		if (!(l->addrs = calloc(1, sizeof *l->addrs)))
			return conf_fail(p, line, "out of memory");
		sun = (struct sockaddr_un *)&l->addrs[0].ss;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, a + 5, len + 1);
		l->addrs[0].len = offsetof(struct sockaddr_un, sun_path) + len + 1;
		l->naddrs = 1;
		return;
	}
	len = strlen(a);
	if (a[0] == '[' && len > 2 && a[len - 1] == ']')  /* "[::1]" */
		snprintf(host, sizeof host, "%.*s", (int)(len - 2), a + 1);
	else
		snprintf(host, sizeof host, "%s", a);
	snprintf(port, sizeof port, "%d", l->port);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res);
	if (rc)
		return conf_fail(p, line, "address: cannot resolve '%s': %s", a,
		    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next)
		n++;
	if (!(l->addrs = calloc(n, sizeof *l->addrs))) {
		freeaddrinfo(res);
		return conf_fail(p, line, "out of memory");
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int dup = 0;

		if (ai->ai_addrlen > sizeof l->addrs[0].ss)
			continue;
		for (int i = 0; i < l->naddrs && !dup; i++)
			dup = l->addrs[i].len == ai->ai_addrlen &&
			    memcmp(&l->addrs[i].ss, ai->ai_addr, ai->ai_addrlen) == 0;
		if (dup)
			continue;
		memcpy(&l->addrs[l->naddrs].ss, ai->ai_addr, ai->ai_addrlen);
		l->addrs[l->naddrs++].len = ai->ai_addrlen;
	}
	freeaddrinfo(res);
}

void
conf_format_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t n)
{
	char host[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		snprintf(buf, n, "%s:%d", host, ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		snprintf(buf, n, "[%s]:%d", host, ntohs(in6->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *un = (const void *)sa;
		size_t plen = len > offsetof(struct sockaddr_un, sun_path) ?
		    len - offsetof(struct sockaddr_un, sun_path) : 0;

		snprintf(buf, n, "unix:%.*s", (int)strnlen(un->sun_path, plen), un->sun_path);
		break;
	}
	default:
		snprintf(buf, n, "(family %d)", sa->sa_family);
	}
}

static int
conf_same_addr(const struct conf_addr *a, const struct conf_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* A relative module path is relative to the config file's directory. */
static void
conf_module_path(const char *file, const char *path, char *out, size_t n)
{
	const char *slash = strrchr(file, '/');

	if (path[0] == '/' || !slash)
		snprintf(out, n, "%s", path);
	else
		snprintf(out, n, "%.*s/%s", (int)(slash - file), file, path);
}

/* Everything that needs the whole file: handlers, addresses, defaults. */
static void
conf_finish(struct conf_parse *p)
{
	struct conf *c = p->conf;
	struct conf_listener *l, *o;
	char herr[256], a[160];
	int somaxconn = conf_somaxconn();

	if (c->workers_auto) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		c->workers = n < 1 ? 1 : n > 1024 ? 1024 : n;
	}
	/* Modules first: listeners anywhere in the file may name their handlers. */
	for (struct conf_module *m = c->module_secs; m; m = m->next) {
		char path[PATH_MAX];

		if (!m->path)
			return conf_fail(p, m->line, "[module %s] has no path", m->name);
		conf_module_path(c->file, m->path, path, sizeof path);
		if (handler_module_load(&c->modules, m->name, path, herr, sizeof herr) < 0)
			return conf_fail(p, m->path_line, "%s", herr);
	}
	if (!c->listeners)
		return conf_fail(p, 1, "no [listener NAME] section: nothing to serve");
	for (l = c->listeners; l && !p->err_line; l = l->next) {
		const char *hname = l->handler_name ? l->handler_name : "echo";
		int hline = l->handler_line ? l->handler_line : l->line;

		if (!(l->handler = handler_find(c->modules, hname))) {
			char mnames[256];

			handler_module_names(c->modules, mnames, sizeof mnames);
			return conf_fail(p, hline, "unknown handler '%s' (built in: %s%s%s)", hname,
			    handler_builtin_names(), mnames[0] ? "; from modules: " : "", mnames);
		}
		if (!(l->hl = handler_listener_new(l->name, l->idle_timeout_ms)))
			return conf_fail(p, hline, "out of memory");
		if (l->handler->conf_new && !(l->handler_conf = l->handler->conf_new(&l->hl->pub)))
			return conf_fail(p, hline, "listener %s: handler %s failed to configure "
			    "(out of memory)", l->name, hname);
		for (struct conf_kv *kv = l->hkeys; kv; kv = kv->next) {
			size_t klen = strlen(kv->key);
			int rc;

			herr[0] = '\0';
			rc = l->handler->conf_set ?
			    l->handler->conf_set(l->handler_conf, kv->key, kv->value, herr, sizeof herr) :
			    ACCEPTD_KEY_UNKNOWN;
			if (rc == ACCEPTD_KEY_UNKNOWN)
				return conf_fail(p, kv->line, "unknown key '%s' in [listener %s] (handler %s does not take it)",
				    kv->key, l->name, hname);
			/* "key: reason", whether or not the handler named the key */
			if (rc && strncmp(herr, kv->key, klen) == 0 && herr[klen] == ':')
				return conf_fail(p, kv->line, "%s", herr);
			if (rc)
				return conf_fail(p, kv->line, "%s: %s", kv->key,
				    herr[0] ? herr : "bad value");
		}
		herr[0] = '\0';
		if (l->handler->conf_check && l->handler->conf_check(l->handler_conf, herr, sizeof herr))
			return conf_fail(p, l->line, "listener %s: %s", l->name,
			    herr[0] ? herr : "handler configuration refused");
		if (!l->reuseport_set)
			l->reuseport = c->mode == CONF_MODE_REUSEPORT;
		if (!l->backlog)
			l->backlog = somaxconn;
		else if (l->backlog > somaxconn)
			log_warnx("%s:%d: backlog %d is above net.core.somaxconn (%d): the kernel uses %d",
			    c->file, l->line, l->backlog, somaxconn, somaxconn);
		conf_resolve(p, l);
		if (p->err_line)
			return;
		if (!l->naddrs)
			return conf_fail(p, l->address_line ? l->address_line : l->line,
			    "address '%s' resolves to nothing", l->address ? l->address : "*");
		if (l->addrs[0].ss.ss_family == AF_UNIX && (l->allow_list.n || l->deny_list.n))
			return conf_fail(p, l->allow_list.n ? l->allow_line : l->deny_line,
			    "%s does not apply to unix address '%s'", l->allow_list.n ? "allow" : "deny",
			    l->address);
		/* Port 0 means "some free port": never a clash. */
		if (l->port == 0 && l->addrs[0].ss.ss_family != AF_UNIX)
			continue;
		for (o = c->listeners; o != l; o = o->next)
			for (int i = 0; i < l->naddrs; i++)
				for (int j = 0; j < o->naddrs; j++)
					if (conf_same_addr(&l->addrs[i], &o->addrs[j])) {
						conf_format_addr((struct sockaddr *)&l->addrs[i].ss,
						    l->addrs[i].len, a, sizeof a);
						return conf_fail(p, l->address_line ? l->address_line :
						    l->port_line ? l->port_line : l->line,
						    "listener %s: address %s is already listener %s's (line %d)",
						    l->name, a, o->name, o->line);
					}
	}
}

struct conf *
conf_load(const char *file, char *err, size_t errlen)
{
	struct conf_parse p = { .err = err, .errlen = errlen };
	struct conf *c;
	char *buf = NULL;
	size_t cap = 0, len = 0;
	struct stat st;
	FILE *f;
	int rc;

	if (!(c = calloc(1, sizeof *c)) || !(c->file = strdup(file))) {
		free(c);
		snprintf(err, errlen, "%s: out of memory", file);
		return NULL;
	}
	c->workers_auto = 1;
	c->mode = CONF_MODE_REUSEPORT;
	c->log_level = LOG_LEVEL_INFO;
	c->shutdown_timeout_ms = 10000;
	p.conf = c;
	p.tail = &c->listeners;
	p.mtail = &c->module_secs;

	if (!(f = fopen(file, "r"))) {
		snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
		goto fail;
	}
	/* As sshd's StrictModes: a file anyone may rewrite is no configuration
	 * for a daemon started as root. */
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IWOTH)) {
		snprintf(err, errlen, "%s: writable by others (mode %04o): refusing it; "
		    "chmod o-w it", file, (unsigned)(st.st_mode & 07777));
		fclose(f);
		goto fail;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			char *nb = cap >= CONF_MAX_FILE ? NULL : realloc(buf, cap = cap ? cap * 2 : 8192);

			if (!nb) {
				snprintf(err, errlen, "%s: %s", file, cap >= CONF_MAX_FILE ?
				    "file too large (over 4 MiB)" : "out of memory");
				fclose(f);
				goto fail;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: cannot read: %s", file, strerror(errno));
		fclose(f);
		goto fail;
	}
	fclose(f);

	p.buf = buf;
	p.len = len;
	rc = ini_parse_stream(conf_reader, &p, conf_ini_handler, &p);
	/* inih reports its own syntax errors by line; ours are recorded
	 * first because the reader stops at the first one. */
	if (rc > 0 && (!p.err_line || rc < p.err_line)) {
		p.err_line = 0;
		conf_fail(&p, rc, "syntax error: expected [section] or key = value");
	} else if (rc < 0 && !p.err_line)
		conf_fail(&p, 1, "cannot parse");
	if (!p.err_line)
		conf_finish(&p);
	free(buf);
	if (p.err_line) {
		conf_free(c);
		return NULL;
	}
	return c;
fail:
	free(buf);
	conf_free(c);
	return NULL;
}

void
conf_free(struct conf *c)
{
	struct conf_listener *l, *ln;
	struct conf_kv *kv, *kn;

	if (!c)
		return;
	for (l = c->listeners; l; l = ln) {
		ln = l->next;
		for (kv = l->hkeys; kv; kv = kn) {
			kn = kv->next;
			free(kv->key);
			free(kv->value);
			free(kv);
		}
		if (l->handler && l->handler->conf_free && l->handler_conf)
			l->handler->conf_free(l->handler_conf);
		free(l->hl);
		cidr_list_free(&l->allow_list);
		cidr_list_free(&l->deny_list);
		free(l->name);
		free(l->address);
		free(l->handler_name);
		free(l->allow);
		free(l->deny);
		free(l->addrs);
		free(l);
	}
	/* After every listener: their handlers' code may live in a module. */
	handler_modules_free(c->modules);
	for (struct conf_module *m = c->module_secs, *mn; m; m = mn) {
		mn = m->next;
		free(m->name);
		free(m->path);
		free(m);
	}
	free(c->file);
	free(c->user);
	free(c->group);
	free(c->pidfile);
	free(c->log_file);
	free(c);
}

void
conf_dump(const struct conf *c, FILE *out)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	static const char *const proxies[] = { "off", "v1", "v2", "any" };
	const struct conf_listener *l;
	char d[32];

	fprintf(out, "; effective configuration of %s\n[daemon]\n", c->file);
	if (c->workers_auto)
		fprintf(out, "workers = auto ; %d here\n", c->workers);
	else
		fprintf(out, "workers = %d\n", c->workers);
	fprintf(out, "mode = %s\n", c->mode == CONF_MODE_SHARED ? "shared" : "reuseport");
	fprintf(out, "user = %s\ngroup = %s\npidfile = %s\n", c->user ? c->user : "",
	    c->group ? c->group : "", c->pidfile ? c->pidfile : "");
	fprintf(out, "log = %s\nlog_level = %s\n", c->log_file ? c->log_file :
	    c->log_syslog ? "syslog" : "stderr",
	    levels[c->log_level]);
	conf_format_duration(c->shutdown_timeout_ms, d, sizeof d);
	fprintf(out, "shutdown_timeout = %s\nrlimit_nofile = %ld\ncpu_affinity = %s\n", d,
	    c->rlimit_nofile, c->cpu_affinity ? "auto" : "off");
	for (const struct conf_module *m = c->module_secs; m; m = m->next)
		fprintf(out, "\n[module %s]\npath = %s\n", m->name, m->path);
	for (l = c->listeners; l; l = l->next) {
		fprintf(out, "\n[listener %s]\naddress = %s\n", l->name, l->address ? l->address : "*");
		if (l->addrs[0].ss.ss_family != AF_UNIX)
			fprintf(out, "port = %d\n", l->port);
		fprintf(out, "handler = %s\nbacklog = %d\nipv6only = %s\nreuseport = %s\n",
		    l->handler->name, l->backlog, l->ipv6only ? "yes" : "no",
		    l->reuseport ? "yes" : "no");
		fprintf(out, "keepalive = %s\ndefer_accept = %s\nfastopen = %d\nmax_connections = %d\n",
		    l->keepalive ? "yes" : "no", l->defer_accept ? "yes" : "no", l->fastopen,
		    l->max_connections);
		conf_format_duration(l->idle_timeout_ms, d, sizeof d);
		fprintf(out, "idle_timeout = %s\nallow = %s\ndeny = %s\nproxy_protocol = %s\n", d,
		    l->allow ? l->allow : "", l->deny ? l->deny : "", proxies[l->proxy_protocol]);
		if (l->handler->conf_dump)
			l->handler->conf_dump(l->handler_conf, out);
	}
}
