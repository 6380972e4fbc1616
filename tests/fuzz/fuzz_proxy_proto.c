/* fuzz_proxy_proto: libFuzzer target for proxy_proto_parse(): every mask,
 * consistency of the three answers, prefixes, and build/parse round trips. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "proxy_proto.h"

/* abort() rather than assert(): kept under -DNDEBUG too. */
#define CHECK(c) do { if (!(c)) abort(); } while (0)

static int
same_addrs(const struct proxy_proto_result *a, const struct proxy_proto_result *b)
{
	return a->family == b->family &&
	    memcmp(&a->src, &b->src, sizeof a->src) == 0 &&
	    memcmp(&a->dst, &b->dst, sizeof a->dst) == 0;
}

/* Rebuild a parsed PROXY header and parse that: the addresses survive. */
static void
round_trip(const struct proxy_proto_result *r)
{
	struct proxy_proto_result r2;
	char buf[PROXY_PROTO_BUILD_MAX];
	size_t n;

	if (!proxy_proto_has_addrs(r))
		return;
	n = proxy_proto_build_v2(buf, sizeof buf, PROXY_PROTO_CMD_PROXY,
	    (const struct sockaddr *)&r->src, (const struct sockaddr *)&r->dst);
	CHECK(n >= 16);
	CHECK(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r2) == (int)n);
	CHECK(same_addrs(r, &r2));
	if (r->family == AF_UNIX)
		return;                   /* v1 says UNKNOWN for those */
	n = proxy_proto_build_v1(buf, sizeof buf, (const struct sockaddr *)&r->src,
	    (const struct sockaddr *)&r->dst);
	CHECK(n > 0 && n <= PROXY_PROTO_V1_MAX);
	CHECK(proxy_proto_parse(buf, n, PROXY_PROTO_V1, &r2) == (int)n);
	CHECK(same_addrs(r, &r2));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int masks[] = { PROXY_PROTO_V1, PROXY_PROTO_V2, PROXY_PROTO_ANY };
	const char *buf = (const char *)data;
	struct proxy_proto_result r[3], p;
	int n[3];

	for (int m = 0; m < 3; m++) {
		n[m] = proxy_proto_parse(buf, size, masks[m], &r[m]);
		CHECK(n[m] >= -1);
		CHECK(n[m] <= (int)size);
		CHECK((n[m] == -1) == (r[m].reason != NULL));
		if (n[m] == 0)
			CHECK(size < PROXY_PROTO_MAX);
		if (n[m] > 0) {
			CHECK(n[m] <= PROXY_PROTO_MAX);
			CHECK(masks[m] & r[m].version);
			CHECK(r[m].version != 1 || n[m] <= PROXY_PROTO_V1_MAX);
			CHECK(r[m].tlv_off + r[m].tlv_len <= (size_t)n[m]);
		}
	}
	/* ANY answers what the matching single version answers. */
	CHECK(n[0] == -1 || n[1] == -1 || (n[0] == 0 && n[1] == 0) || size == 0);
	if (n[0] != -1)
		CHECK(n[2] == n[0]);
	else if (n[1] != -1)
		CHECK(n[2] == n[1]);
	else
		CHECK(n[2] == -1);

	/* Every strict prefix of a header, or of bytes still waiting, waits;
	 * the header alone parses the same as with whatever follows it. */
	int len = n[2] > 0 ? n[2] : n[2] == 0 ? (int)size : 0;
	for (int k = 0; k < len; k++)
		CHECK(proxy_proto_parse(buf, (size_t)k, PROXY_PROTO_ANY, &p) == 0);
	if (n[2] > 0) {
		CHECK(proxy_proto_parse(buf, (size_t)n[2], PROXY_PROTO_ANY, &p) == n[2]);
		CHECK(p.version == r[2].version && p.command == r[2].command &&
		    p.transport == r[2].transport && same_addrs(&p, &r[2]));
		round_trip(&r[2]);
	}
	return 0;
}
