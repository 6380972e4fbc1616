/* test_proxy_proto: the PROXY protocol v1/v2 parser against the examples of
 * HAProxy's proxy-protocol.txt, malformed headers, prefixes, and the builders. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "conf.h"
#include "proxy_proto.h"
#include "util.h"

static const char sig[12] = {
	'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'
};

/* A v2 header: signature, ver_cmd, fam, length, then body. */
static size_t
v2(char *buf, unsigned char vc, unsigned char fam, const void *body, size_t n)
{
	memcpy(buf, sig, 12);
	buf[12] = (char)vc;
	buf[13] = (char)fam;
	buf[14] = (char)(n >> 8);
	buf[15] = (char)n;
	if (n)
		memcpy(buf + 16, body, n);
	return 16 + n;
}

/* Every strict prefix of buf[0..n) needs more; the whole parses to n, with
 * or without bytes after it. */
static void
check_prefixes(const char *buf, size_t n, int accept)
{
	struct proxy_proto_result r;
	char more[PROXY_PROTO_MAX + 64];

	for (size_t k = 0; k < n; k++)
		ck_assert_msg(proxy_proto_parse(buf, k, accept, &r) == 0,
		    "prefix %zu of %zu: %s", k, n, r.reason ? r.reason : "(parsed)");
	ck_assert_int_eq(proxy_proto_parse(buf, n, accept, &r), (int)n);
	ck_assert_ptr_null(r.reason);
	ck_assert_uint_le(n + 32, sizeof more);
	memcpy(more, buf, n);
	memset(more + n, 'x', 32);
	ck_assert_int_eq(proxy_proto_parse(more, n + 32, accept, &r), (int)n);
}

static int
parse_s(const char *s, struct proxy_proto_result *r)
{
	return proxy_proto_parse(s, strlen(s), PROXY_PROTO_ANY, r);
}

static void
check_in4(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
	char text[INET_ADDRSTRLEN];

	ck_assert_int_eq(a->sin_family, AF_INET);
	ck_assert_ptr_nonnull(inet_ntop(AF_INET, &a->sin_addr, text, sizeof text));
	ck_assert_str_eq(text, ip);
	ck_assert_uint_eq(ntohs(a->sin_port), port);
}

static void
check_in6(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
	struct in6_addr want;

	ck_assert_int_eq(a->sin6_family, AF_INET6);
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &want), 1);
	ck_assert(memcmp(&a->sin6_addr, &want, 16) == 0);
	ck_assert_uint_eq(ntohs(a->sin6_port), port);
}

START_TEST(test_enum_matches_conf)
{
	ck_assert_int_eq(CONF_PROXY_V1, PROXY_PROTO_V1);
	ck_assert_int_eq(CONF_PROXY_V2, PROXY_PROTO_V2);
	ck_assert_int_eq(CONF_PROXY_ANY, PROXY_PROTO_ANY);
}
END_TEST

/* ---- v1 ---------------------------------------------------------------- */

START_TEST(test_v1_tcp4)
{
	const char *h = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
	struct proxy_proto_result r;

	ck_assert_int_eq(parse_s(h, &r), (int)strlen(h));
	ck_assert_int_eq(r.version, 1);
	ck_assert_int_eq(r.command, PROXY_PROTO_CMD_PROXY);
	ck_assert_int_eq(r.family, AF_INET);
	ck_assert_int_eq(r.transport, PROXY_PROTO_STREAM);
	ck_assert(proxy_proto_has_addrs(&r));
	check_in4(&r.src, "192.168.0.1", 56324);
	check_in4(&r.dst, "192.168.0.11", 443);
	check_prefixes(h, strlen(h), PROXY_PROTO_V1);
	check_prefixes(h, strlen(h), PROXY_PROTO_ANY);

	h = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
	ck_assert_int_eq(parse_s(h, &r), 56);
	check_in4(&r.src, "255.255.255.255", 65535);
	h = "PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n";
	ck_assert_int_eq(parse_s(h, &r), (int)strlen(h));
	check_in4(&r.src, "0.0.0.0", 0);
	check_in4(&r.dst, "10.0.0.1", 0);
}
END_TEST

START_TEST(test_v1_tcp6)
{
	const char *h = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	struct proxy_proto_result r;

	ck_assert_uint_eq(strlen(h), 104);
	ck_assert_int_eq(parse_s(h, &r), 104);
	ck_assert_int_eq(r.version, 1);
	ck_assert_int_eq(r.family, AF_INET6);
	ck_assert_int_eq(r.transport, PROXY_PROTO_STREAM);
	check_in6(&r.src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	check_in6(&r.dst, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	check_prefixes(h, strlen(h), PROXY_PROTO_V1);

	h = "PROXY TCP6 2001:db8::1 ::1 1 80\r\n";
	ck_assert_int_eq(parse_s(h, &r), (int)strlen(h));
	check_in6(&r.src, "2001:db8::1", 1);
	check_in6(&r.dst, "::1", 80);
	h = "PROXY TCP6 ::ffff:192.0.2.1 2001:DB8::A 4000 8080\r\n";
	ck_assert_int_eq(parse_s(h, &r), (int)strlen(h));
	check_in6(&r.src, "::ffff:192.0.2.1", 4000);
	check_in6(&r.dst, "2001:db8::a", 8080);
	check_prefixes(h, strlen(h), PROXY_PROTO_ANY);
}
END_TEST

START_TEST(test_v1_unknown)
{
	/* The specification's worst case: exactly 107 bytes. */
	const char *max = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	const char *h = "PROXY UNKNOWN\r\n";
	struct proxy_proto_result r;
	char line[200];

	ck_assert_int_eq(parse_s(h, &r), 15);
	ck_assert_int_eq(r.version, 1);
	ck_assert_int_eq(r.command, PROXY_PROTO_CMD_PROXY);
	ck_assert_int_eq(r.family, AF_UNSPEC);
	ck_assert_int_eq(r.transport, PROXY_PROTO_UNSPEC);
	ck_assert(!proxy_proto_has_addrs(&r));
	ck_assert_int_eq(r.src.ss_family, AF_UNSPEC);
	check_prefixes(h, strlen(h), PROXY_PROTO_V1);

	ck_assert_uint_eq(strlen(max), PROXY_PROTO_V1_MAX);
	ck_assert_int_eq(parse_s(max, &r), PROXY_PROTO_V1_MAX);
	ck_assert_int_eq(r.family, AF_UNSPEC);
	check_prefixes(max, strlen(max), PROXY_PROTO_ANY);
	/* Anything up to the CRLF is ignored, even a lone CR. */
	h = "PROXY UNKNOWN what\rever\r\n";
	ck_assert_int_eq(parse_s(h, &r), (int)strlen(h));
	check_prefixes(h, strlen(h), PROXY_PROTO_ANY);
	/* One byte over the maximum: its CR is the 107th byte. Refused once
	 * 107 bytes are in, not before. */
	snprintf(line, sizeof line, "PROXY UNKNOWN %0*d\r\n", 92, 0);
	ck_assert_uint_eq(strlen(line), PROXY_PROTO_V1_MAX + 1);
	ck_assert_int_eq(parse_s(line, &r), -1);
	ck_assert_ptr_nonnull(r.reason);
	ck_assert_int_eq(proxy_proto_parse(line, PROXY_PROTO_V1_MAX, PROXY_PROTO_ANY, &r), -1);
	ck_assert_int_eq(proxy_proto_parse(line, PROXY_PROTO_V1_MAX - 1, PROXY_PROTO_ANY, &r), 0);
	/* One byte shorter is exactly the maximum. */
	snprintf(line, sizeof line, "PROXY UNKNOWN %0*d\r\n", 91, 0);
	ck_assert_int_eq(parse_s(line, &r), PROXY_PROTO_V1_MAX);
	/* No CRLF at all. */
	memset(line, ' ', sizeof line);
	memcpy(line, "PROXY UNKNOWN", 13);
	ck_assert_int_eq(proxy_proto_parse(line, PROXY_PROTO_V1_MAX - 1, PROXY_PROTO_ANY, &r), 0);
	ck_assert_int_eq(proxy_proto_parse(line, PROXY_PROTO_V1_MAX, PROXY_PROTO_ANY, &r), -1);
	ck_assert_int_eq(proxy_proto_parse(line, sizeof line, PROXY_PROTO_ANY, &r), -1);
}
END_TEST

START_TEST(test_v1_malformed)
{
	static const char *const bad[] = {
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",           /* no CR */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r",         /* CR, no LF */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx",
		"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",        /* double spaces */
		"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",        /* trailing space */
		" PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",           /* missing field */
		"PROXY TCP4 1.2.3.4 5.6.7.8\r\n",
		"PROXY TCP4 1.2.3.4\r\n",
		"PROXY TCP4\r\n",
		"PROXY\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",       /* extra field */
		"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",         /* case */
		"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY UNKNOWNX\r\n",
		"PROXY UNKNOWN\rX",
		"PROXY UNKNOWN\n",
		"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n",       /* bad addresses */
		"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
		"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8. 1 2\r\n",
		"PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 localhost 1 2\r\n",
		"PROXY TCP4 ::1 ::1 1 2\r\n",                 /* family mismatch */
		"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP6 ::1 ::g 1 2\r\n",
		"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
		"PROXY TCP6 1::2::3 ::1 1 2\r\n",
		"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
		"PROXY TCP6 [::1] ::1 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",     /* bad ports */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 123456 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 0000001 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 0x2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n",
		"GET / HTTP/1.1\r\n",                          /* not PROXY at all */
		"\r\n\r\nGET",                               /* not v2 either */
		"SSH-2.0-OpenSSH_9.2\r\n",
	};
	struct proxy_proto_result r;
	char line[200];

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ck_assert_msg(parse_s(bad[i], &r) == -1, "accepted: %s", bad[i]);
		ck_assert_ptr_nonnull(r.reason);
		ck_assert_uint_gt(strlen(r.reason), 0);
	}
	/* A blank line is a prefix of the v2 signature: it waits. */
	ck_assert_int_eq(parse_s("\r\n", &r), 0);
	ck_assert_int_eq(proxy_proto_parse("\r\n", 2, PROXY_PROTO_V1, &r), -1);
	/* A NUL inside an address. */
	ck_assert_int_eq(proxy_proto_parse("PROXY TCP4 1.2\0.3.4 5.6.7.8 1 2\r\n", 33,
	    PROXY_PROTO_ANY, &r), -1);
	/* An address token that never ends: refused at 107 bytes. */
	memset(line, '1', sizeof line);
	memcpy(line, "PROXY TCP6 ", 11);
	ck_assert_int_eq(proxy_proto_parse(line, 20, PROXY_PROTO_ANY, &r), 0);
	ck_assert_int_eq(proxy_proto_parse(line, sizeof line, PROXY_PROTO_ANY, &r), -1);
	memcpy(line, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", 31);
	ck_assert_int_eq(proxy_proto_parse(line, sizeof line, PROXY_PROTO_ANY, &r), -1);
	/* A valid IPv4-mapped TCP6 line that would be 116 bytes. */
	snprintf(line, sizeof line, "PROXY TCP6 %s %s 65535 65535\r\n",
	    "0000:0000:0000:0000:0000:ffff:192.168.100.200",
	    "0000:0000:0000:0000:0000:ffff:192.168.100.201");
	ck_assert_int_eq(parse_s(line, &r), -1);
	/* Early failure: garbage is refused from the first wrong byte. */
	ck_assert_int_eq(proxy_proto_parse("G", 1, PROXY_PROTO_ANY, &r), -1);
	ck_assert_int_eq(proxy_proto_parse("PROXY X", 7, PROXY_PROTO_ANY, &r), -1);
	ck_assert_int_eq(proxy_proto_parse("PROXY TCP4 1.2.3.4 5.6.7.8 70000", 32,
	    PROXY_PROTO_ANY, &r), -1);
	ck_assert_int_eq(proxy_proto_parse("PROXY TCP4 1.2.3.4 5.6.7.8 0", 28,
	    PROXY_PROTO_ANY, &r), 0);
	ck_assert_int_eq(proxy_proto_parse("PROXY TCP4 1.2.3.4 5.6.7.8 01", 29,
	    PROXY_PROTO_ANY, &r), -1);
}
END_TEST

/* ---- v2 ---------------------------------------------------------------- */

static size_t
v2_inet(char *buf, unsigned char fam, const char *tlvs, size_t tlvlen)
{
	char body[PROXY_PROTO_MAX];

	ck_assert_uint_le(12 + tlvlen, sizeof body);
	memcpy(body, "\xc0\x00\x02\x01" "\xc6\x33\x64\x07" "\xdc\x04" "\x01\xbb", 12);
	memcpy(body + 12, tlvs, tlvlen);
	return v2(buf, 0x21, fam, body, 12 + tlvlen);
}

START_TEST(test_v2_proxy_inet)
{
	struct proxy_proto_result r;
	char buf[PROXY_PROTO_MAX + 64];
	size_t n = v2_inet(buf, 0x11, "", 0);

	ck_assert_uint_eq(n, 28);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), 28);
	ck_assert_int_eq(r.version, 2);
	ck_assert_int_eq(r.command, PROXY_PROTO_CMD_PROXY);
	ck_assert_int_eq(r.family, AF_INET);
	ck_assert_int_eq(r.transport, PROXY_PROTO_STREAM);
	ck_assert(proxy_proto_has_addrs(&r));
	check_in4(&r.src, "192.0.2.1", 56324);
	check_in4(&r.dst, "198.51.100.7", 443);
	ck_assert_uint_eq(r.tlv_len, 0);
	check_prefixes(buf, n, PROXY_PROTO_V2);
	check_prefixes(buf, n, PROXY_PROTO_ANY);

	n = v2_inet(buf, 0x12, "", 0);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_ANY, &r), 28);
	ck_assert_int_eq(r.transport, PROXY_PROTO_DGRAM);
}
END_TEST

START_TEST(test_v2_proxy_inet6)
{
	struct proxy_proto_result r;
	char buf[PROXY_PROTO_MAX + 64], body[36];
	struct in6_addr a, b;
	size_t n;

	inet_pton(AF_INET6, "2001:db8::1", &a);
	inet_pton(AF_INET6, "2001:db8:ffff::abcd", &b);
	memcpy(body, &a, 16);
	memcpy(body + 16, &b, 16);
	memcpy(body + 32, "\x00\x50\xff\xff", 4);
	n = v2(buf, 0x21, 0x21, body, 36);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_ANY, &r), 52);
	ck_assert_int_eq(r.family, AF_INET6);
	ck_assert_int_eq(r.transport, PROXY_PROTO_STREAM);
	check_in6(&r.src, "2001:db8::1", 80);
	check_in6(&r.dst, "2001:db8:ffff::abcd", 65535);
	check_prefixes(buf, n, PROXY_PROTO_V2);

	n = v2(buf, 0x21, 0x22, body, 36);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_ANY, &r), 52);
	ck_assert_int_eq(r.transport, PROXY_PROTO_DGRAM);
}
END_TEST

START_TEST(test_v2_proxy_unix)
{
	struct proxy_proto_result r;
	char buf[PROXY_PROTO_MAX + 64], body[216 + 8];
	const struct sockaddr_un *s = (const struct sockaddr_un *)&r.src;
	const struct sockaddr_un *d = (const struct sockaddr_un *)&r.dst;
	size_t n;

	memset(body, 0, sizeof body);
	strcpy(body, "/run/client.sock");
	strcpy(body + 108, "/run/acceptd.sock");
	memcpy(body + 216, "\x04\x00\x05" "\0\0\0\0\0", 8);  /* a NOOP TLV */
	n = v2(buf, 0x21, 0x31, body, sizeof body);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), 16 + 224);
	ck_assert_int_eq(r.family, AF_UNIX);
	ck_assert_int_eq(r.transport, PROXY_PROTO_STREAM);
	ck_assert_int_eq(s->sun_family, AF_UNIX);
	ck_assert_str_eq(s->sun_path, "/run/client.sock");
	ck_assert_str_eq(d->sun_path, "/run/acceptd.sock");
	ck_assert_uint_eq(r.tlv_off, 16 + 216);
	ck_assert_uint_eq(r.tlv_len, 8);
	check_prefixes(buf, n, PROXY_PROTO_ANY);

	/* A path of the full 108 bytes, no NUL. */
	memset(body, 'a', 216);
	n = v2(buf, 0x21, 0x32, body, 216);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), 232);
	ck_assert_int_eq(r.transport, PROXY_PROTO_DGRAM);
	ck_assert(memcmp(s->sun_path, body, 108) == 0);
}
END_TEST

START_TEST(test_v2_local)
{
	struct proxy_proto_result r;
	char buf[PROXY_PROTO_MAX + 64];
	size_t n = v2(buf, 0x20, 0x00, NULL, 0);

	/* HAProxy's health check: LOCAL, UNSPEC, no addresses. */
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), 16);
	ck_assert_int_eq(r.version, 2);
	ck_assert_int_eq(r.command, PROXY_PROTO_CMD_LOCAL);
	ck_assert_int_eq(r.family, AF_UNSPEC);
	ck_assert(!proxy_proto_has_addrs(&r));
	check_prefixes(buf, n, PROXY_PROTO_V2);
	/* LOCAL ignores the family (even an invalid one) and the block. */
	n = v2(buf, 0x20, 0xff, "\x01\x02\x03\x04\x05", 5);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), 21);
	ck_assert_int_eq(r.command, PROXY_PROTO_CMD_LOCAL);
	ck_assert_int_eq(r.family, AF_UNSPEC);
	ck_assert(!proxy_proto_has_addrs(&r));
	n = v2_inet(buf, 0x11, "", 0);
	buf[12] = 0x20;
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), 28);
	ck_assert(!proxy_proto_has_addrs(&r));
	ck_assert_int_eq(r.src.ss_family, AF_UNSPEC);
	/* PROXY with family UNSPEC: the real addresses too, block opaque. */
	n = v2(buf, 0x21, 0x00, "\x01\x02", 2);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), 18);
	ck_assert_int_eq(r.command, PROXY_PROTO_CMD_PROXY);
	ck_assert(!proxy_proto_has_addrs(&r));
}
END_TEST

START_TEST(test_v2_tlvs)
{
	static const char tlvs[] =
	    "\x01\x00\x02" "h2"                        /* ALPN */
	    "\x02\x00\x0b" "example.com"               /* AUTHORITY */
	    "\x05\x00\x00"                             /* UNIQUE_ID, empty */
	    "\x20\x00\x05" "\x01" "\x00\x00\x00\x00"   /* SSL, no sub-TLVs */
	    "\x04\x00\x03" "\0\0\0";                   /* NOOP */
	struct proxy_proto_result r;
	char buf[PROXY_PROTO_MAX + 64], big[PROXY_PROTO_MAX];
	size_t n = v2_inet(buf, 0x11, tlvs, sizeof tlvs - 1);

	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), (int)n);
	check_in4(&r.src, "192.0.2.1", 56324);
	ck_assert_uint_eq(r.tlv_off, 28);
	ck_assert_uint_eq(r.tlv_len, sizeof tlvs - 1);
	ck_assert(memcmp(buf + r.tlv_off, tlvs, r.tlv_len) == 0);
	check_prefixes(buf, n, PROXY_PROTO_ANY);

	/* The cap: exactly 1024 bytes in all is fine, 1025 is not. */
	memset(big, 0, sizeof big);
	big[0] = 0x04;
	big[1] = (char)((1024 - 28 - 3) >> 8);
	big[2] = (char)((1024 - 28 - 3) & 0xff);
	n = v2_inet(buf, 0x11, big, 1024 - 28);
	ck_assert_uint_eq(n, PROXY_PROTO_V2_MAX);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), PROXY_PROTO_V2_MAX);
	check_prefixes(buf, n, PROXY_PROTO_V2);
	big[2]++;
	n = v2_inet(buf, 0x11, big, 1024 - 28 + 1);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), -1);
	/* Oversized is known from the fixed part alone. */
	ck_assert_int_eq(proxy_proto_parse(buf, 16, PROXY_PROTO_V2, &r), -1);
	ck_assert_ptr_nonnull(r.reason);
}
END_TEST

START_TEST(test_v2_malformed)
{
	struct proxy_proto_result r;
	char buf[PROXY_PROTO_MAX + 64], good[64], zero[300] = { 0 };
	size_t n = v2_inet(good, 0x11, "", 0), m;
	unsigned char bad_fams[] = { 0x01, 0x02, 0x10, 0x13, 0x1f, 0x20, 0x23, 0x30,
	    0x33, 0x40, 0x41, 0xf1, 0xff };

	/* Each signature byte wrong; refused as soon as it arrives. */
	for (int i = 0; i < 12; i++) {
		memcpy(buf, good, n);
		buf[i] ^= 0x40;
		ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), -1);
		ck_assert_int_eq(proxy_proto_parse(buf, (size_t)i + 1, PROXY_PROTO_ANY, &r), -1);
		ck_assert_ptr_nonnull(r.reason);
	}
	/* Versions other than 2, commands other than LOCAL and PROXY. */
	for (int v = 0; v < 16; v++) {
		if (v == 2)
			continue;
		memcpy(buf, good, n);
		buf[12] = (char)(v << 4 | 1);
		ck_assert_int_eq(proxy_proto_parse(buf, 13, PROXY_PROTO_V2, &r), -1);
		ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), -1);
	}
	for (int c = 2; c < 16; c++) {
		memcpy(buf, good, n);
		buf[12] = (char)(0x20 | c);
		ck_assert_int_eq(proxy_proto_parse(buf, 13, PROXY_PROTO_V2, &r), -1);
	}
	for (size_t i = 0; i < sizeof bad_fams; i++) {
		memcpy(buf, good, n);
		buf[13] = (char)bad_fams[i];
		ck_assert_int_eq(proxy_proto_parse(buf, 14, PROXY_PROTO_V2, &r), -1);
		ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), -1);
	}
	/* Length too short for the family's addresses. */
	m = v2(buf, 0x21, 0x11, zero, 11);
	ck_assert_int_eq(proxy_proto_parse(buf, m, PROXY_PROTO_V2, &r), -1);
	ck_assert_int_eq(proxy_proto_parse(buf, 16, PROXY_PROTO_V2, &r), -1);
	m = v2(buf, 0x21, 0x21, zero, 35);
	ck_assert_int_eq(proxy_proto_parse(buf, m, PROXY_PROTO_V2, &r), -1);
	m = v2(buf, 0x21, 0x31, zero, 215);
	ck_assert_int_eq(proxy_proto_parse(buf, m, PROXY_PROTO_V2, &r), -1);
	m = v2(buf, 0x21, 0x11, zero, 0);
	ck_assert_int_eq(proxy_proto_parse(buf, m, PROXY_PROTO_V2, &r), -1);
	/* Length too big. */
	memcpy(buf, good, n);
	buf[14] = (char)0xff;
	buf[15] = (char)0xff;
	ck_assert_int_eq(proxy_proto_parse(buf, 16, PROXY_PROTO_V2, &r), -1);
	buf[14] = 0x03;
	buf[15] = (char)0xf1;               /* 16 + 1009 */
	ck_assert_int_eq(proxy_proto_parse(buf, 16, PROXY_PROTO_V2, &r), -1);
	/* Truncated: the length claims more than arrived, so it waits... */
	memcpy(buf, good, n);
	ck_assert_int_eq(proxy_proto_parse(buf, n - 1, PROXY_PROTO_V2, &r), 0);
	/* ...and TLVs that do not fit: 1 and 2 stray bytes, a long length. */
	m = v2_inet(buf, 0x11, "\x04", 1);
	ck_assert_int_eq(proxy_proto_parse(buf, m, PROXY_PROTO_V2, &r), -1);
	m = v2_inet(buf, 0x11, "\x04\x00", 2);
	ck_assert_int_eq(proxy_proto_parse(buf, m, PROXY_PROTO_V2, &r), -1);
	m = v2_inet(buf, 0x11, "\x04\x00\x02" "x", 4);
	ck_assert_int_eq(proxy_proto_parse(buf, m, PROXY_PROTO_V2, &r), -1);
	ck_assert_ptr_nonnull(r.reason);
	m = v2_inet(buf, 0x11, "\x01\x00\x02" "h2" "\x04\xff\xff", 8);
	ck_assert_int_eq(proxy_proto_parse(buf, m, PROXY_PROTO_V2, &r), -1);
	m = v2_inet(buf, 0x11, "\x01\x00\x02" "h2" "\x04\x00\x00", 8);
	ck_assert_int_eq(proxy_proto_parse(buf, m, PROXY_PROTO_V2, &r), (int)m);
}
END_TEST

/* ---- the accept mask --------------------------------------------------- */

START_TEST(test_accept_mask)
{
	const char *v1 = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
	struct proxy_proto_result r;
	char buf[64];
	size_t n = v2(buf, 0x20, 0x00, NULL, 0);

	ck_assert_int_eq(proxy_proto_parse(v1, strlen(v1), PROXY_PROTO_V2, &r), -1);
	ck_assert_ptr_nonnull(r.reason);
	ck_assert_int_eq(proxy_proto_parse(v1, 1, PROXY_PROTO_V2, &r), -1);
	ck_assert_int_eq(proxy_proto_parse(v1, strlen(v1), PROXY_PROTO_V1, &r), (int)strlen(v1));
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V1, &r), -1);
	ck_assert_ptr_nonnull(r.reason);
	ck_assert_int_eq(proxy_proto_parse(buf, 1, PROXY_PROTO_V1, &r), -1);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), 16);
	/* Nothing accepted: nothing parses, not even an empty buffer. */
	ck_assert_int_eq(proxy_proto_parse(v1, strlen(v1), 0, &r), -1);
	ck_assert_int_eq(proxy_proto_parse(buf, 0, 0, &r), -1);
	ck_assert_int_eq(proxy_proto_parse(buf, 0, PROXY_PROTO_V1, &r), 0);
}
END_TEST

/* ---- builders ---------------------------------------------------------- */

static void
in4(struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof *ss);
	a->sin_family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1);
	a->sin_port = htons((uint16_t)port);
}

static void
in6(struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	a->sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
	a->sin6_port = htons((uint16_t)port);
}

/* Build v1 and v2 from src/dst, parse them back. */
static void
round_trip(const struct sockaddr_storage *s, const struct sockaddr_storage *d,
    struct proxy_proto_result *r1, struct proxy_proto_result *r2, char *line)
{
	char buf[PROXY_PROTO_BUILD_MAX];
	size_t n;

	n = proxy_proto_build_v1(buf, sizeof buf, (const struct sockaddr *)s,
	    (const struct sockaddr *)d);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_le(n, PROXY_PROTO_V1_MAX);
	memcpy(line, buf, n);
	line[n] = '\0';
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V1, r1), (int)n);
	check_prefixes(buf, n, PROXY_PROTO_ANY);
	ck_assert_uint_eq(proxy_proto_build_v1(buf, n - 1, (const struct sockaddr *)s,
	    (const struct sockaddr *)d), 0);

	n = proxy_proto_build_v2(buf, sizeof buf, PROXY_PROTO_CMD_PROXY,
	    (const struct sockaddr *)s, (const struct sockaddr *)d);
	ck_assert_uint_ge(n, 16);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, r2), (int)n);
	ck_assert_int_eq(r2->command, PROXY_PROTO_CMD_PROXY);
	check_prefixes(buf, n, PROXY_PROTO_ANY);
	ck_assert_uint_eq(proxy_proto_build_v2(buf, n - 1, PROXY_PROTO_CMD_PROXY,
	    (const struct sockaddr *)s, (const struct sockaddr *)d), 0);
}

START_TEST(test_build_round_trip)
{
	struct proxy_proto_result r1, r2;
	struct sockaddr_storage s, d;
	char line[PROXY_PROTO_BUILD_MAX + 1];

	in4(&s, "203.0.113.9", 51000);
	in4(&d, "10.1.2.3", 8080);
	round_trip(&s, &d, &r1, &r2, line);
	ck_assert_str_eq(line, "PROXY TCP4 203.0.113.9 10.1.2.3 51000 8080\r\n");
	ck_assert(memcmp(&r1.src, &s, sizeof(struct sockaddr_in)) == 0);
	ck_assert(memcmp(&r1.dst, &d, sizeof(struct sockaddr_in)) == 0);
	ck_assert(memcmp(&r2.src, &s, sizeof(struct sockaddr_in)) == 0);
	ck_assert(memcmp(&r2.dst, &d, sizeof(struct sockaddr_in)) == 0);
	ck_assert_int_eq(r2.family, AF_INET);
	ck_assert_int_eq(r2.transport, PROXY_PROTO_STREAM);

	in6(&s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	in6(&d, "2001:db8:1:2:3:4:5:6", 0);
	round_trip(&s, &d, &r1, &r2, line);
	ck_assert_uint_eq(strlen(line), 11 + 39 + 1 + 20 + 1 + 5 + 1 + 1 + 2);
	ck_assert(memcmp(&r1.src, &s, sizeof(struct sockaddr_in6)) == 0);
	ck_assert(memcmp(&r1.dst, &d, sizeof(struct sockaddr_in6)) == 0);
	ck_assert(memcmp(&r2.src, &s, sizeof(struct sockaddr_in6)) == 0);
	ck_assert(memcmp(&r2.dst, &d, sizeof(struct sockaddr_in6)) == 0);

	/* One of each: written as IPv6, the IPv4 one v4-mapped. */
	in4(&s, "192.0.2.7", 1234);
	in6(&d, "::1", 443);
	round_trip(&s, &d, &r1, &r2, line);
	ck_assert_str_eq(line, "PROXY TCP6 ::ffff:192.0.2.7 ::1 1234 443\r\n");
	check_in6(&r2.src, "::ffff:192.0.2.7", 1234);
	check_in6(&r2.dst, "::1", 443);

	/* AF_UNIX: v1 has no way to say it, v2 carries the paths. */
	memset(&s, 0, sizeof s);
	memset(&d, 0, sizeof d);
	s.ss_family = d.ss_family = AF_UNIX;
	strcpy(((struct sockaddr_un *)&d)->sun_path, "/run/acceptd.sock");
	((struct sockaddr_un *)&s)->sun_path[1] = 'x';   /* abstract, "\0x" */
	round_trip(&s, &d, &r1, &r2, line);
	ck_assert_str_eq(line, "PROXY UNKNOWN\r\n");
	ck_assert_int_eq(r1.family, AF_UNSPEC);
	ck_assert_int_eq(r2.family, AF_UNIX);
	ck_assert(memcmp(&r2.src, &s, sizeof(struct sockaddr_un)) == 0);
	ck_assert(memcmp(&r2.dst, &d, sizeof(struct sockaddr_un)) == 0);
}
END_TEST

START_TEST(test_build_other)
{
	struct proxy_proto_result r;
	struct sockaddr_storage s, d;
	char buf[PROXY_PROTO_BUILD_MAX];
	size_t n;

	/* No addresses, or families that do not go together. */
	n = proxy_proto_build_v1(buf, sizeof buf, NULL, NULL);
	ck_assert_uint_eq(n, 15);
	ck_assert(memcmp(buf, "PROXY UNKNOWN\r\n", 15) == 0);
	n = proxy_proto_build_v2(buf, sizeof buf, PROXY_PROTO_CMD_PROXY, NULL, NULL);
	ck_assert_uint_eq(n, 16);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), 16);
	ck_assert_int_eq(r.command, PROXY_PROTO_CMD_PROXY);
	ck_assert_int_eq(r.family, AF_UNSPEC);
	in4(&s, "1.2.3.4", 1);
	memset(&d, 0, sizeof d);
	d.ss_family = AF_UNIX;
	n = proxy_proto_build_v1(buf, sizeof buf, (struct sockaddr *)&s, (struct sockaddr *)&d);
	ck_assert_uint_eq(n, 15);
	n = proxy_proto_build_v2(buf, sizeof buf, PROXY_PROTO_CMD_PROXY,
	    (struct sockaddr *)&s, (struct sockaddr *)&d);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_V2, &r), 16);
	ck_assert_int_eq(r.family, AF_UNSPEC);
	/* LOCAL: 16 bytes, addresses ignored; unknown commands refused. */
	n = proxy_proto_build_v2(buf, sizeof buf, PROXY_PROTO_CMD_LOCAL,
	    (struct sockaddr *)&s, (struct sockaddr *)&s);
	ck_assert_uint_eq(n, 16);
	ck_assert(memcmp(buf, sig, 12) == 0);
	ck_assert_int_eq(buf[12], 0x20);
	ck_assert_int_eq(proxy_proto_parse(buf, n, PROXY_PROTO_ANY, &r), 16);
	ck_assert_int_eq(r.command, PROXY_PROTO_CMD_LOCAL);
	ck_assert_uint_eq(proxy_proto_build_v2(buf, sizeof buf, 2, NULL, NULL), 0);
	ck_assert_uint_eq(proxy_proto_build_v2(buf, 15, PROXY_PROTO_CMD_LOCAL, NULL, NULL), 0);
	ck_assert_uint_eq(proxy_proto_build_v1(buf, 14, NULL, NULL), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("proxy_proto");
	TCase *tc = tcase_create("proxy_proto");

	tcase_add_test(tc, test_enum_matches_conf);
	tcase_add_test(tc, test_v1_tcp4);
	tcase_add_test(tc, test_v1_tcp6);
	tcase_add_test(tc, test_v1_unknown);
	tcase_add_test(tc, test_v1_malformed);
	tcase_add_test(tc, test_v2_proxy_inet);
	tcase_add_test(tc, test_v2_proxy_inet6);
	tcase_add_test(tc, test_v2_proxy_unix);
	tcase_add_test(tc, test_v2_local);
	tcase_add_test(tc, test_v2_tlvs);
	tcase_add_test(tc, test_v2_malformed);
	tcase_add_test(tc, test_accept_mask);
	tcase_add_test(tc, test_build_round_trip);
	tcase_add_test(tc, test_build_other);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
