/* proxy_proto: the PROXY protocol header (HAProxy's proxy-protocol.txt), v1
 * text and v2 binary: a strict incremental parser, and builders for senders. */
#ifndef ACCEPTD_PROXY_PROTO_H
#define ACCEPTD_PROXY_PROTO_H

#include <stddef.h>
#include <sys/socket.h>

/* The accept mask of proxy_proto_parse(); the same values as enum
 * conf_proxy's V1, V2 and ANY, so a listener's setting can be passed as is. */
#define PROXY_PROTO_V1  1
#define PROXY_PROTO_V2  2
#define PROXY_PROTO_ANY (PROXY_PROTO_V1 | PROXY_PROTO_V2)

/* A v1 line is at most 107 bytes, CRLF included (the specification's
 * worst case, "PROXY UNKNOWN" with two full IPv6 addresses and ports). */
#define PROXY_PROTO_V1_MAX 107
/* Our cap on a whole v2 header: the 16-byte fixed part plus at most 1008
 * bytes of addresses (216 at most, for AF_UNIX) and TLVs. That leaves room
 * for every TLV HAProxy and the cloud load balancers send in practice
 * (ALPN, authority, unique id, SSL, AWS/Azure/GCP ids); a longer header is
 * refused as oversized rather than buffered. */
#define PROXY_PROTO_V2_MAX 1024
/* The most a caller ever needs to buffer before parse() decides. */
#define PROXY_PROTO_MAX PROXY_PROTO_V2_MAX
/* Room enough for anything the builders write (a v2 header for AF_UNIX,
 * 16 + 216 bytes, no TLVs; a v1 line is at most 107). */
#define PROXY_PROTO_BUILD_MAX 232

/* v2 commands. A v1 header is always PROXY_PROTO_CMD_PROXY. */
enum proxy_proto_cmd { PROXY_PROTO_CMD_LOCAL = 0, PROXY_PROTO_CMD_PROXY = 1 };
/* What the proxied connection was: v1 TCP4/TCP6 are STREAM, UNKNOWN is UNSPEC. */
enum proxy_proto_transport {
	PROXY_PROTO_UNSPEC = 0, PROXY_PROTO_STREAM = 1, PROXY_PROTO_DGRAM = 2
};

struct proxy_proto_result {
	int version;              /* 1 or 2 */
	int command;              /* enum proxy_proto_cmd */
	/* AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC. AF_UNSPEC for LOCAL, for
	 * v1 UNKNOWN and for v2 PROXY with family UNSPEC. */
	int family;
	int transport;            /* enum proxy_proto_transport */
	/* The original client (src) and the address it connected to (dst), of
	 * the family above, ports in network order; all zero for AF_UNSPEC. A
	 * unix address carries the header's 108 bytes as sun_path, as is. */
	struct sockaddr_storage src, dst;
	/* v2 TLVs: at buf + tlv_off, tlv_len bytes, already bounds-checked
	 * (every TLV's length fits). 0 and 0 when none or when not walked
	 * (LOCAL, or family UNSPEC: then the block is skipped unread). */
	size_t tlv_off, tlv_len;
	/* After -1: a short static description ("bad v2 signature", ...) for
	 * logs; NULL otherwise. */
	const char *reason;
};

/* Parse the PROXY header at the start of buf[0..len), accepting the
 * versions in accept (PROXY_PROTO_V1, _V2 or both). Returns
 *   >0  the header's length: it is complete and valid, *out is filled, and
 *       the bytes after it are the client's;
 *    0  need more bytes: buf is a strict prefix of what may still be a
 *       valid header (never returned once len >= PROXY_PROTO_MAX);
 *   -1  malformed, oversized, or a version accept does not allow:
 *       out->reason says which. Close the connection.
 * After 0 or -1 only out->reason is meaningful (the rest may be half set).
 * Never reads past buf + len, never allocates. A prefix of a header that
 * parses returns 0, and once -1 is returned every longer buf is -1 too. */
int proxy_proto_parse(const char *buf, size_t len, int accept,
    struct proxy_proto_result *out);

/* Whether the connection's addresses are the header's (src and dst), as
 * opposed to the real peer's: LOCAL, v1 UNKNOWN and v2 UNSPEC keep the
 * real ones. */
static inline int
proxy_proto_has_addrs(const struct proxy_proto_result *r)
{
	return r->command == PROXY_PROTO_CMD_PROXY && r->family != AF_UNSPEC;
}

/* Write a v1 line for a connection from src to dst: "PROXY TCP4 ..." when
 * both are AF_INET, "PROXY TCP6 ..." when both are AF_INET6 or one of each
 * (the IPv4 one written v4-mapped), else "PROXY UNKNOWN\r\n" (AF_UNIX, a
 * NULL address). No NUL is written. Returns the length, or 0 when cap is
 * too small (PROXY_PROTO_V1_MAX always suffices). */
size_t proxy_proto_build_v1(char *buf, size_t cap, const struct sockaddr *src,
    const struct sockaddr *dst);

/* Write a v2 header (no TLVs, transport STREAM). command LOCAL writes the
 * 16-byte LOCAL header and ignores src and dst. PROXY: AF_INET/AF_INET6
 * as for v1, AF_UNIX (both) with each sun_path's 108 bytes as they are, so
 * zero the storage before getpeername()/getsockname(); anything else
 * family UNSPEC. Returns the length, or 0 when cap is too small
 * (PROXY_PROTO_BUILD_MAX always suffices) or command is unknown. */
size_t proxy_proto_build_v2(char *buf, size_t cap, int command,
    const struct sockaddr *src, const struct sockaddr *dst);

#endif
