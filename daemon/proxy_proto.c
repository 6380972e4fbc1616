/* proxy_proto: the PROXY protocol v1/v2 header parser and builders. Parsing
 * is incremental: whatever has arrived is checked, so garbage fails early. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "proxy_proto.h"

#define NEED 0
#define BAD  (-1)

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
#define V2_FIXED 16
#define V2_LEN_INET  12   /* 2 x 4 address bytes, 2 x 2 port bytes */
#define V2_LEN_INET6 36   /* 2 x 16, 2 x 2 */
#define V2_LEN_UNIX  216  /* 2 x 108 */
#define UNIX_PATH 108

static int
bad(struct proxy_proto_result *out, const char *reason)
{
	out->reason = reason;
	return BAD;
}

static size_t
min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ---- v1 ---------------------------------------------------------------- */

/* The line so far: lim is len capped at PROXY_PROTO_V1_MAX; capped says
 * that cap was reached, so running out of bytes is an error, not a wait. */
struct v1 {
	const char *buf;
	size_t lim, pos;
	int capped;
	struct proxy_proto_result *out;
};

/* Ran out of bytes mid-line. */
static int
v1_more(struct v1 *p)
{
	return p->capped ? bad(p->out, "v1 line without CRLF within 107 bytes") : NEED;
}

/* An address token up to the next space: charset and length checked as it
 * arrives, inet_pton once it is complete. */
static int
v1_addr(struct v1 *p, int af, void *dst)
{
	const char *ok = af == AF_INET ? "0123456789." : "0123456789abcdefABCDEF:.";
	size_t max = af == AF_INET ? 15 : 45;     /* INET_ADDRSTRLEN - 1, INET6_... */
	char tok[48];
	size_t n = 0;

	for (;;) {
		if (p->pos >= p->lim)
			return v1_more(p);
		char c = p->buf[p->pos];
		if (c == ' ')
			break;
		if (c == '\0' || !strchr(ok, c))
			return bad(p->out, "v1 bad address");
		if (n == max)
			return bad(p->out, "v1 address too long");
		tok[n++] = c;
		p->pos++;
	}
	if (n == 0)
		return bad(p->out, "v1 empty field (double space?)");
	tok[n] = '\0';
	if (inet_pton(af, tok, dst) != 1)
		return bad(p->out, "v1 bad address");
	p->pos++;                                 /* the space */
	return 1;
}

/* A port up to term: 0..65535 in decimal, no sign, no leading zero. */
static int
v1_port(struct v1 *p, char term, uint16_t *port)
{
	unsigned long v = 0;
	size_t n = 0;

	for (;;) {
		if (p->pos >= p->lim)
			return v1_more(p);
		char c = p->buf[p->pos];
		if (c == term)
			break;
		if (c < '0' || c > '9')
			return bad(p->out, "v1 bad port");
		if (n == 1 && v == 0)
			return bad(p->out, "v1 port with a leading zero");
		v = v * 10 + (unsigned long)(c - '0');
		if (v > 65535)
			return bad(p->out, "v1 port above 65535");
		n++;
		p->pos++;
	}
	if (n == 0)
		return bad(p->out, "v1 empty field (double space?)");
	*port = htons((uint16_t)v);
	p->pos++;                                 /* the terminator */
	return 1;
}

/* Match a literal; a partial match at the end of the bytes waits. */
static int
v1_lit(struct v1 *p, const char *s, const char *reason)
{
	for (; *s; s++, p->pos++) {
		if (p->pos >= p->lim)
			return v1_more(p);
		if (p->buf[p->pos] != *s)
			return bad(p->out, reason);
	}
	return 1;
}

static int
parse_v1(const char *buf, size_t len, struct proxy_proto_result *out)
{
	static const char *const protos[] = { "TCP4 ", "TCP6 ", "UNKNOWN" };
	struct v1 p = { buf, min_size(len, PROXY_PROTO_V1_MAX), 0,
	    len >= PROXY_PROTO_V1_MAX, out };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
	struct sockaddr_in *d4 = (struct sockaddr_in *)&out->dst;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
	struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&out->dst;
	size_t avail, i;
	int r, which = -1, af;

	if ((r = v1_lit(&p, "PROXY ", "not a PROXY header")) <= 0)
		return r;
	avail = p.lim - p.pos;
	for (i = 0; i < 3; i++) {
		size_t n = strlen(protos[i]);
		if (memcmp(buf + p.pos, protos[i], min_size(avail, n)) != 0)
			continue;
		if (avail < n)
			return v1_more(&p);       /* "TCP" may be either */
		which = (int)i;
		p.pos += n;
		break;
	}
	if (which < 0)
		return bad(out, "v1 protocol not TCP4, TCP6 or UNKNOWN");
	out->version = 1;
	out->command = PROXY_PROTO_CMD_PROXY;
	if (which == 2) {
		/* UNKNOWN: the receiver ignores anything up to the CRLF. */
		out->family = AF_UNSPEC;
		out->transport = PROXY_PROTO_UNSPEC;
		if (p.pos >= p.lim)
			return v1_more(&p);
		if (buf[p.pos] == '\r') {
			p.pos++;
		} else if (buf[p.pos] == ' ') {
			for (p.pos++;; p.pos++) {
				if (p.pos >= p.lim)
					return v1_more(&p);
				if (buf[p.pos] != '\r')
					continue;
				if (p.pos + 1 >= p.lim)
					return v1_more(&p);
				if (buf[p.pos + 1] == '\n')
					break;
			}
			p.pos++;
		} else {
			return bad(out, "v1 protocol not TCP4, TCP6 or UNKNOWN");
		}
		if ((r = v1_lit(&p, "\n", "v1 CR without LF")) <= 0)
			return r;
		return (int)p.pos;
	}
	af = which == 0 ? AF_INET : AF_INET6;
	out->family = af;
	out->transport = PROXY_PROTO_STREAM;
	s4->sin_family = d4->sin_family = (sa_family_t)af;
	if (af == AF_INET) {
		if ((r = v1_addr(&p, af, &s4->sin_addr)) <= 0 ||
		    (r = v1_addr(&p, af, &d4->sin_addr)) <= 0 ||
		    (r = v1_port(&p, ' ', &s4->sin_port)) <= 0 ||
		    (r = v1_port(&p, '\r', &d4->sin_port)) <= 0)
			return r;
	} else {
		if ((r = v1_addr(&p, af, &s6->sin6_addr)) <= 0 ||
		    (r = v1_addr(&p, af, &d6->sin6_addr)) <= 0 ||
		    (r = v1_port(&p, ' ', &s6->sin6_port)) <= 0 ||
		    (r = v1_port(&p, '\r', &d6->sin6_port)) <= 0)
			return r;
	}
	if ((r = v1_lit(&p, "\n", "v1 CR without LF")) <= 0)
		return r;
	return (int)p.pos;
}

/* ---- v2 ---------------------------------------------------------------- */

static unsigned
be16(const char *p)
{
	return (unsigned)(unsigned char)p[0] << 8 | (unsigned char)p[1];
}

static int
parse_v2(const char *buf, size_t len, struct proxy_proto_result *out)
{
	const unsigned char *u = (const unsigned char *)buf;
	const char *a;
	size_t total, addrlen = 0, off;
	int cmd, fam = 0, tr = 0;

	/* The signature itself was checked by the caller as far as it came. */
	if (len <= 12)
		return NEED;
	if ((u[12] >> 4) != 2)
		return bad(out, "v2 version not 2");
	cmd = u[12] & 0x0f;
	if (cmd != PROXY_PROTO_CMD_LOCAL && cmd != PROXY_PROTO_CMD_PROXY)
		return bad(out, "v2 command not LOCAL or PROXY");
	if (len <= 13)
		return NEED;
	/* LOCAL: "the family is ignored". PROXY: only these seven values. */
	if (cmd == PROXY_PROTO_CMD_PROXY) {
		switch (u[13]) {
		case 0x00:
			break;
		case 0x11: case 0x12:
			fam = AF_INET, addrlen = V2_LEN_INET;
			break;
		case 0x21: case 0x22:
			fam = AF_INET6, addrlen = V2_LEN_INET6;
			break;
		case 0x31: case 0x32:
			fam = AF_UNIX, addrlen = V2_LEN_UNIX;
			break;
		default:
			return bad(out, "v2 bad address family or transport");
		}
		tr = u[13] & 0x0f;
	}
	if (len < V2_FIXED)
		return NEED;
	total = V2_FIXED + be16(buf + 14);
	if (total > PROXY_PROTO_V2_MAX)
		return bad(out, "v2 header longer than 1024 bytes");
	if (total - V2_FIXED < addrlen)
		return bad(out, "v2 length too short for the addresses");
	if (len < total)
		return NEED;

	/* TLVs after the addresses: type, 16-bit length, value; each must fit
	 * exactly. Not walked for LOCAL and UNSPEC, whose block is opaque. */
	if (fam != AF_UNSPEC) {
		for (off = V2_FIXED + addrlen; off < total; ) {
			if (total - off < 3)
				return bad(out, "v2 truncated TLV");
			off += 3 + be16(buf + off + 1);
			if (off > total)
				return bad(out, "v2 TLV overruns the header");
		}
		out->tlv_off = V2_FIXED + addrlen;
		out->tlv_len = total - out->tlv_off;
	}

	out->version = 2;
	out->command = cmd;
	out->family = fam;
	out->transport = tr;
	a = buf + V2_FIXED;
	if (fam == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);
		memcpy(&d->sin_port, a + 10, 2);
	} else if (fam == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
	} else if (fam == AF_UNIX) {
		struct sockaddr_un *s = (struct sockaddr_un *)&out->src;
		struct sockaddr_un *d = (struct sockaddr_un *)&out->dst;
		_Static_assert(sizeof s->sun_path == UNIX_PATH, "sun_path is 108 bytes");
		s->sun_family = d->sun_family = AF_UNIX;
		memcpy(s->sun_path, a, UNIX_PATH);
		memcpy(d->sun_path, a + UNIX_PATH, UNIX_PATH);
	}
	return (int)total;
}

int
proxy_proto_parse(const char *buf, size_t len, int accept,
    struct proxy_proto_result *out)
{
	memset(out, 0, sizeof *out);
	if (!(accept & PROXY_PROTO_ANY))
		return bad(out, "no PROXY protocol version accepted");
	if (len == 0)
		return NEED;
	if (memcmp(buf, "PROXY ", min_size(len, 6)) == 0) {
		if (!(accept & PROXY_PROTO_V1))
			return bad(out, "v1 header where only v2 is accepted");
		return parse_v1(buf, len, out);
	}
	if (memcmp(buf, v2_sig, min_size(len, sizeof v2_sig)) == 0) {
		if (!(accept & PROXY_PROTO_V2))
			return bad(out, "v2 header where only v1 is accepted");
		return parse_v2(buf, len, out);
	}
	if ((accept & PROXY_PROTO_ANY) == PROXY_PROTO_ANY)
		return bad(out, "not a PROXY header");
	return bad(out, accept & PROXY_PROTO_V1 ? "not a PROXY v1 header" : "bad v2 signature");
}

/* ---- builders ---------------------------------------------------------- */

/* Both addresses as IPv6 when they are one of each (v4-mapped). Returns the
 * family to write: AF_INET, AF_INET6, or AF_UNSPEC. */
static int
ip_pair(const struct sockaddr *src, const struct sockaddr *dst,
    struct sockaddr_in6 *s6, struct sockaddr_in6 *d6)
{
	const struct sockaddr *in[2] = { src, dst };
	struct sockaddr_in6 *o[2] = { s6, d6 };

	if (!src || !dst)
		return AF_UNSPEC;
	if (src->sa_family == AF_INET && dst->sa_family == AF_INET)
		return AF_INET;
	for (int i = 0; i < 2; i++) {
		memset(o[i], 0, sizeof *o[i]);
		o[i]->sin6_family = AF_INET6;
		if (in[i]->sa_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)in[i];
			o[i]->sin6_addr = a->sin6_addr;
			o[i]->sin6_port = a->sin6_port;
		} else if (in[i]->sa_family == AF_INET) {
			const struct sockaddr_in *a = (const struct sockaddr_in *)in[i];
			o[i]->sin6_addr.s6_addr[10] = 0xff;
			o[i]->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&o[i]->sin6_addr.s6_addr[12], &a->sin_addr, 4);
			o[i]->sin6_port = a->sin_port;
		} else {
			return AF_UNSPEC;
		}
	}
	return AF_INET6;
}

size_t
proxy_proto_build_v1(char *buf, size_t cap, const struct sockaddr *src,
    const struct sockaddr *dst)
{
	struct sockaddr_in6 s6, d6;
	char line[160], sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	int af = ip_pair(src, dst, &s6, &d6), n;

	if (af == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)src;
		const struct sockaddr_in *d = (const struct sockaddr_in *)dst;
		inet_ntop(AF_INET, &s->sin_addr, sa, sizeof sa);
		inet_ntop(AF_INET, &d->sin_addr, da, sizeof da);
		n = snprintf(line, sizeof line, "PROXY TCP4 %s %s %u %u\r\n", sa, da,
		    ntohs(s->sin_port), ntohs(d->sin_port));
	} else if (af == AF_INET6) {
		inet_ntop(AF_INET6, &s6.sin6_addr, sa, sizeof sa);
		inet_ntop(AF_INET6, &d6.sin6_addr, da, sizeof da);
		n = snprintf(line, sizeof line, "PROXY TCP6 %s %s %u %u\r\n", sa, da,
		    ntohs(s6.sin6_port), ntohs(d6.sin6_port));
	} else {
		n = snprintf(line, sizeof line, "PROXY UNKNOWN\r\n");
	}
	/* inet_ntop's IPv6 text is at most 39 characters here (the dotted form
	 * only for ::ffff:a.b.c.d and ::a.b.c.d), so n <= 104; checked anyway. */
	if (n < 0 || (size_t)n > PROXY_PROTO_V1_MAX || (size_t)n > cap)
		return 0;
	memcpy(buf, line, (size_t)n);
	return (size_t)n;
}

size_t
proxy_proto_build_v2(char *buf, size_t cap, int command,
    const struct sockaddr *src, const struct sockaddr *dst)
{
	unsigned char h[PROXY_PROTO_BUILD_MAX];
	struct sockaddr_in6 s6, d6;
	size_t alen = 0;
	int af;

	if (command != PROXY_PROTO_CMD_LOCAL && command != PROXY_PROTO_CMD_PROXY)
		return 0;
	memcpy(h, v2_sig, sizeof v2_sig);
	h[12] = (unsigned char)(0x20 | command);
	h[13] = 0x00;
	if (command == PROXY_PROTO_CMD_PROXY) {
		af = ip_pair(src, dst, &s6, &d6);
		if (af == AF_INET) {
			const struct sockaddr_in *s = (const struct sockaddr_in *)src;
			const struct sockaddr_in *d = (const struct sockaddr_in *)dst;
			h[13] = 0x11;
			memcpy(h + 16, &s->sin_addr, 4);
			memcpy(h + 20, &d->sin_addr, 4);
			memcpy(h + 24, &s->sin_port, 2);
			memcpy(h + 26, &d->sin_port, 2);
			alen = V2_LEN_INET;
		} else if (af == AF_INET6) {
			h[13] = 0x21;
			memcpy(h + 16, &s6.sin6_addr, 16);
			memcpy(h + 32, &d6.sin6_addr, 16);
			memcpy(h + 48, &s6.sin6_port, 2);
			memcpy(h + 50, &d6.sin6_port, 2);
			alen = V2_LEN_INET6;
		} else if (src && dst && src->sa_family == AF_UNIX &&
		    dst->sa_family == AF_UNIX) {
			h[13] = 0x31;
			memcpy(h + 16, ((const struct sockaddr_un *)src)->sun_path, UNIX_PATH);
			memcpy(h + 16 + UNIX_PATH,
			    ((const struct sockaddr_un *)dst)->sun_path, UNIX_PATH);
			alen = V2_LEN_UNIX;
		}
	}
	h[14] = (unsigned char)(alen >> 8);
	h[15] = (unsigned char)alen;
	if (V2_FIXED + alen > cap)
		return 0;
	memcpy(buf, h, V2_FIXED + alen);
	return V2_FIXED + alen;
}
