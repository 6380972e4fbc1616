/* cidr: address blocks ("10.0.0.0/8", "2001:db8::/32", "::1") parsed from
 * text and matched against peers; IPv4-mapped IPv6 addresses, in a block
 * or in a peer, are taken as the IPv4 address they carry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "cidr.h"

static const unsigned char cidr_v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

static void
cidr_mask(struct cidr *c)
{
	size_t n = c->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < n; i++) {
		unsigned keep = c->bits > i * 8 ? c->bits - i * 8 : 0;

		if (keep < 8)
			c->addr[i] &= (unsigned char)(0xff00u >> keep);
	}
}

int
cidr_parse(const char *s, size_t len, struct cidr *out)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	struct cidr c = { 0 };
	unsigned max;

	if (alen == 0 || alen >= sizeof addr)
		return -1;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	c.family = memchr(addr, ':', alen) ? AF_INET6 : AF_INET;
	if (inet_pton(c.family, addr, c.addr) != 1)
		return -1;
	max = c.family == AF_INET ? 32 : 128;
	c.bits = max;
	if (slash) {
		const char *p = slash + 1, *end = s + len;
		unsigned v = 0;

		/* 1 to 3 digits: no sign, no blanks, no "0x" for strtoul to allow */
		if (p == end || end - p > 3)
			return -1;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			v = v * 10 + (*p - '0');
		}
		if (v > max)
			return -1;
		c.bits = v;
	}
	/* ::ffff:10.0.0.0/104 is the IPv4 block 10.0.0.0/8: peers are matched
	 * as IPv4 too, so keep every mapped thing in one form. */
	if (c.family == AF_INET6 && c.bits >= 96 &&
	    memcmp(c.addr, cidr_v4mapped, sizeof cidr_v4mapped) == 0) {
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		c.bits -= 96;
	}
	cidr_mask(&c);
	*out = c;
	return 0;
}

int
cidr_list_parse(const char *s, struct cidr_list *out, char *bad, size_t badlen)
{
	struct cidr_list l = { 0 };
	struct cidr c, *v;

	if (badlen)
		bad[0] = '\0';
	while (*s) {
		size_t n;

		s += strspn(s, ", \t");
		n = strcspn(s, ", \t");
		if (n == 0)
			break;
		if (cidr_parse(s, n, &c) < 0) {
			if (badlen)
				snprintf(bad, badlen, "%.*s", (int)(n < 64 ? n : 64), s);
			goto fail;
		}
		if (!(v = realloc(l.v, (l.n + 1) * sizeof *l.v)))
			goto fail;
		l.v = v;
		l.v[l.n++] = c;
		s += n;
	}
	*out = l;
	return 0;
fail:
	free(l.v);
	return -1;
}

void
cidr_list_free(struct cidr_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* The address in sa, IPv4-mapped IPv6 as IPv4: its family, or 0. */
static int
cidr_addr_of(const struct sockaddr *sa, socklen_t len, const unsigned char **addr)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		*addr = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const unsigned char *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, cidr_v4mapped, sizeof cidr_v4mapped) == 0) {
			*addr = a + 12;
			return AF_INET;
		}
		*addr = a;
		return AF_INET6;
	}
	return 0;
}

static int
cidr_match_addr(const struct cidr *c, int family, const unsigned char *a)
{
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (c->family != family)
		return 0;
	if (memcmp(c->addr, a, full) != 0)
		return 0;
	return rest == 0 || ((a[full] ^ c->addr[full]) & (0xff00u >> rest) & 0xff) == 0;
}

int
cidr_match(const struct cidr *c, const struct sockaddr *sa, socklen_t len)
{
	const unsigned char *a;
	int family = cidr_addr_of(sa, len, &a);

	return family && cidr_match_addr(c, family, a);
}

int
cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa, socklen_t len)
{
	const unsigned char *a;
	int family = cidr_addr_of(sa, len, &a);

	for (size_t i = 0; family && i < l->n; i++)
		if (cidr_match_addr(&l->v[i], family, a))
			return 1;
	return 0;
}

void
cidr_format(const struct cidr *c, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(c->family, c->addr, a, sizeof a);
	snprintf(buf, n, "%s/%u", a, c->bits);
}
