/* libFuzzer target: the CIDR parser (cidr_parse, cidr_list_parse) as the
 * allow/deny keys use it, and the matcher against addresses taken from the
 * input. Checks: a parsed block is well formed (family, prefix length,
 * host bits clear, no IPv4-mapped block left in IPv6 form); its text form
 * parses back to the same block; the block contains its own network
 * address, and an IPv4 peer matches the same as its IPv4-mapped IPv6 form;
 * a list parses item by item the same as cidr_parse, and matches as the
 * OR of its blocks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "cidr.h"

/* abort() rather than assert(): kept under -DNDEBUG too. */
#define CHECK(c) do { if (!(c)) abort(); } while (0)

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void
sa_of(int family, const unsigned char *a, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, a, 4);
		*len = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, a, 16);
		*len = sizeof *in6;
	}
}

static void
check_block(const struct cidr *c)
{
	unsigned max = c->family == AF_INET ? 32 : 128;
	struct sockaddr_storage ss;
	struct cidr c2;
	char text[64];
	socklen_t len;

	CHECK(c->family == AF_INET || c->family == AF_INET6);
	CHECK(c->bits <= max);
	/* host bits are clear, and so is everything past the address */
	for (unsigned i = c->bits; i < 128; i++)
		CHECK(!(c->addr[i / 8] & (0x80u >> (i % 8))));
	if (c->family == AF_INET6)
		CHECK(c->bits < 96 || memcmp(c->addr, v4mapped, sizeof v4mapped) != 0);
	/* the text form round-trips */
	cidr_format(c, text, sizeof text);
	CHECK(strlen(text) < 48);
	CHECK(cidr_parse(text, strlen(text), &c2) == 0);
	CHECK(c2.family == c->family && c2.bits == c->bits &&
	    memcmp(c2.addr, c->addr, sizeof c->addr) == 0);
	/* its own network address is in it */
	sa_of(c->family, c->addr, &ss, &len);
	CHECK(cidr_match(c, (struct sockaddr *)&ss, len) == 1);
	if (c->family == AF_INET) {
		unsigned char m[16];

		memcpy(m, v4mapped, 12);
		memcpy(m + 12, c->addr, 4);
		sa_of(AF_INET6, m, &ss, &len);
		CHECK(cidr_match(c, (struct sockaddr *)&ss, len) == 1);
	}
}

/* A peer from 16 input bytes, as IPv4, IPv4-mapped and IPv6: the list
 * matches as the OR of its blocks, and IPv4 the same as IPv4-mapped. */
static void
check_match(const struct cidr_list *l, const unsigned char *a16)
{
	struct sockaddr_storage s4, sm, s6;
	socklen_t n4, nm, n6;
	unsigned char m[16];
	int any4 = 0, anym = 0, any6 = 0;

	memcpy(m, v4mapped, 12);
	memcpy(m + 12, a16, 4);
	sa_of(AF_INET, a16, &s4, &n4);
	sa_of(AF_INET6, m, &sm, &nm);
	sa_of(AF_INET6, a16, &s6, &n6);
	for (size_t i = 0; i < l->n; i++) {
		int r4 = cidr_match(&l->v[i], (struct sockaddr *)&s4, n4);
		int rm = cidr_match(&l->v[i], (struct sockaddr *)&sm, nm);
		int r6 = cidr_match(&l->v[i], (struct sockaddr *)&s6, n6);

		CHECK(r4 == 0 || r4 == 1);
		CHECK(r4 == rm);
		CHECK(r6 == 0 || r6 == 1);
		any4 |= r4;
		anym |= rm;
		any6 |= r6;
	}
	CHECK(cidr_list_match(l, (struct sockaddr *)&s4, n4) == any4);
	CHECK(cidr_list_match(l, (struct sockaddr *)&sm, nm) == anym);
	CHECK(cidr_list_match(l, (struct sockaddr *)&s6, n6) == any6);
	/* too short an address is in no block */
	CHECK(cidr_list_match(l, (struct sockaddr *)&s4, n4 - 1) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exactly size bytes, no terminator: ASan catches a read past the end */
	char *buf = malloc(size ? size : 1), *str;
	struct cidr_list l;
	struct cidr c;
	char bad[80];
	int r;

	memcpy(buf, data, size);
	if ((r = cidr_parse(buf, size, &c)) == 0)
		check_block(&c);
	else
		CHECK(r == -1);
	free(buf);

	/* the same bytes as a list (up to the first NUL, as a config value) */
	str = malloc(size + 1);
	memcpy(str, data, size);
	str[size] = '\0';
	r = cidr_list_parse(str, &l, bad, sizeof bad);
	if (r == 0) {
		/* each item of the list is a block cidr_parse takes alike */
		const char *s = str;
		size_t k = 0;

		for (;;) {
			size_t n;

			s += strspn(s, ", \t");
			if ((n = strcspn(s, ", \t")) == 0)
				break;
			CHECK(k < l.n);
			CHECK(cidr_parse(s, n, &c) == 0);
			CHECK(memcmp(&c, &l.v[k], sizeof c) == 0);
			check_block(&l.v[k]);
			k++;
			s += n;
		}
		CHECK(k == l.n);
		if (l.n) {
			unsigned char a16[16] = { 0 };

			memcpy(a16, data, size < 16 ? size : 16);
			check_match(&l, a16);
			/* and the network address of each block */
			for (size_t i = 0; i < l.n && i < 8; i++)
				check_match(&l, l.v[i].addr);
		}
		cidr_list_free(&l);
	} else {
		CHECK(r == -1);
		/* the offending item is named (never empty: a list has no empty items) */
		CHECK(bad[0] != '\0' && strlen(bad) <= 64);
		CHECK(strstr(str, bad) != NULL);
	}
	free(str);
	return 0;
}
