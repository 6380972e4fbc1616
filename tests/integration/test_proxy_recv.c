/* Integration: PROXY protocol receive (proxy_protocol = v1 | v2 | any,
 * issue 8) as a client sees it: an exec handler prints the ucspi
 * environment, so the address the header names is what TCPREMOTEIP,
 * TCPREMOTEPORT, TCPLOCALIP and TCPLOCALPORT say: v1 TCP4 and TCP6, v2
 * over IPv4 and IPv6 (with TLVs), LOCAL and UNKNOWN (and v2 UNSPEC) keep
 * the real peer; allow/deny judge the header's address; a header and data
 * in one segment leave the data to the handler (echo); headers in pieces;
 * a malformed, wrong-version, oversized, missing, cut-short or never
 * finished (3 s) header closes the connection and is counted in
 * acceptd_proxy_header_errors_total (the stats listener and -s status). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "harness.h"

#define HEAD "[daemon]\nworkers = 1\nshutdown_timeout = 1s\npidfile = @DIR@/acceptd.pid\n\n"
/* prints the addresses on one line, then copies stdin to stdout */
#define ENV_CMD "command = /bin/sh -c 'echo \"[$TCPREMOTEIP|$TCPREMOTEPORT|$TCPLOCALIP|" \
	"$TCPLOCALPORT]\" && exec cat'\n"
#define EXEC_L(name, pp, extra) "[listener " name "]\naddress = 127.0.0.1\nport = 0\n" \
	"handler = exec\nproxy_protocol = " pp "\n" ENV_CMD extra "\n"
#define STATS_L "[listener s]\naddress = 127.0.0.1\nport = 0\nhandler = stats\n\n"
#define ALL_L EXEC_L("v1", "v1", "") EXEC_L("v2", "v2", "") EXEC_L("any", "any", "") \
	"[listener e]\naddress = 127.0.0.1\nport = 0\nproxy_protocol = any\n\n" STATS_L

/* ---- headers, built by hand from proxy-protocol.txt ---- */

static const unsigned char v2sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

struct hdr {
	unsigned char b[8192];
	size_t n;
};

static void
put(struct hdr *h, const void *p, size_t n)
{
	ck_assert(h->n + n <= sizeof h->b);
	memcpy(h->b + h->n, p, n);
	h->n += n;
}

static void
put16(struct hdr *h, unsigned v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	put(h, b, 2);
}

/* v2: ver_cmd (0x21 PROXY, 0x20 LOCAL), fam, then the address block and
 * TLVs given as is (the length is theirs). */
static void
v2(struct hdr *h, unsigned ver_cmd, unsigned fam, const void *rest, size_t len)
{
	unsigned char vc = (unsigned char)ver_cmd, f = (unsigned char)fam;

	h->n = 0;
	put(h, v2sig, sizeof v2sig);
	put(h, &vc, 1);
	put(h, &f, 1);
	put16(h, (unsigned)len);
	if (len)
		put(h, rest, len);
}

/* v2 PROXY TCP over IPv4 from src:sp to dst:dp, with tlvlen bytes of TLVs. */
static void
v2_inet(struct hdr *h, const char *src, unsigned sp, const char *dst, unsigned dp,
    const void *tlv, size_t tlvlen)
{
	struct hdr a = { .n = 0 };
	struct in_addr s, d;

	ck_assert(inet_pton(AF_INET, src, &s) == 1 && inet_pton(AF_INET, dst, &d) == 1);
	put(&a, &s, 4);
	put(&a, &d, 4);
	put16(&a, sp);
	put16(&a, dp);
	if (tlvlen)
		put(&a, tlv, tlvlen);
	v2(h, 0x21, 0x11, a.b, a.n);
}

static void
v2_inet6(struct hdr *h, const char *src, unsigned sp, const char *dst, unsigned dp)
{
	struct hdr a = { .n = 0 };
	struct in6_addr s, d;

	ck_assert(inet_pton(AF_INET6, src, &s) == 1 && inet_pton(AF_INET6, dst, &d) == 1);
	put(&a, &s, 16);
	put(&a, &d, 16);
	put16(&a, sp);
	put16(&a, dp);
	v2(h, 0x21, 0x21, a.b, a.n);
}

static void
v1(struct hdr *h, const char *line)
{
	h->n = 0;
	put(h, line, strlen(line));
}

/* ---- talking ---- */

/* Connect to 127.0.0.1:port; our own port into *myport. */
static int
conn(struct hd *d, int port, int *myport)
{
	struct sockaddr_in me;
	socklen_t len = sizeof me;
	int fd = h_connect("127.0.0.1", port);

	hd_assert(d, fd >= 0, "connect %d: %s", port, strerror(errno));
	if (myport) {
		ck_assert(getsockname(fd, (struct sockaddr *)&me, &len) == 0);
		*myport = ntohs(me.sin_port);
	}
	return fd;
}

/* Header and data in one send (one segment on loopback), our side shut,
 * everything read until the peer closes: the bytes read (out
 * NUL-terminated), -1 when it did not close. */
static ssize_t
talk(struct hd *d, int port, const struct hdr *h, const char *data, char *out, size_t cap,
    int *myport)
{
	struct hdr all = { .n = 0 };
	int fd = conn(d, port, myport);
	ssize_t n;

	if (h)
		put(&all, h->b, h->n);
	if (data)
		put(&all, data, strlen(data));
	hd_assert(d, h_send_all(fd, all.b, all.n) == 0, "send: %s", strerror(errno));
	shutdown(fd, SHUT_WR);
	n = h_recv_until_close(fd, out, cap - 1, H_WAIT_MS);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	return n;
}

/* The exec handler saw these addresses, and "ping" came through. */
static void
expect_env(struct hd *d, const char *listener, const struct hdr *h, const char *want)
{
	char out[1024], line[256];
	ssize_t n = talk(d, hd_port(d, listener), h, "ping\n", out, sizeof out, NULL);

	snprintf(line, sizeof line, "%s\nping\n", want);
	hd_assert(d, n >= 0 && strcmp(out, line) == 0, "listener %s: got '%s', want '%s'",
	    listener, out, line);
}

/* The real peer kept: 127.0.0.1, our port, the listener's address. */
static void
expect_real(struct hd *d, const char *listener, const struct hdr *h)
{
	char out[1024], want[256];
	int myport, port = hd_port(d, listener);
	ssize_t n = talk(d, port, h, "ping\n", out, sizeof out, &myport);

	snprintf(want, sizeof want, "[127.0.0.1|%d|127.0.0.1|%d]\nping\n", myport, port);
	hd_assert(d, n >= 0 && strcmp(out, want) == 0, "listener %s: got '%s', want '%s'",
	    listener, out, want);
}

/* Refused or failed: closed without a byte. */
static void
expect_closed(struct hd *d, const char *listener, const void *bytes, size_t len,
    const char *what)
{
	int fd = conn(d, hd_port(d, listener), NULL);
	char buf[256];
	ssize_t n;

	hd_assert(d, h_send_all(fd, bytes, len) == 0 || errno == EPIPE || errno == ECONNRESET,
	    "%s: send: %s", what, strerror(errno));
	n = h_recv_until_close(fd, buf, sizeof buf - 1, H_WAIT_MS);
	close(fd);
	if (n > 0)
		buf[n] = '\0';
	hd_assert(d, n == 0, "%s on %s: want a close without a byte, got %zd: '%s'", what,
	    listener, n, n > 0 ? buf : "");
}

/* ---- counters (the stats listener) ---- */

static long long
metric(struct hd *d, const char *name, const char *listener)
{
	char *body = malloc(1 << 20), prefix[200];
	int status, fd = h_connect("127.0.0.1", hd_port(d, "s"));
	long long sum = 0;
	ssize_t n;

	hd_assert(d, fd >= 0 && body, "stats connect");
	n = h_http_get(fd, "/metrics", &status, body, 1 << 20);
	close(fd);
	hd_assert(d, n > 0 && status == 200, "GET /metrics: %d", status);
	snprintf(prefix, sizeof prefix, "%s{listener=\"%s\",", name, listener);
	for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			sum += strtoll(strchr(p, '}') + 2, NULL, 10);
	free(body);
	return sum;
}

/* Wait (bounded) for name{listener} to be want; the last value. */
static long long
wait_metric(struct hd *d, const char *name, const char *listener, long long want)
{
	long long end = h_now_ms() + H_WAIT_MS, v;

	while ((v = metric(d, name, listener)) != want && h_now_ms() < end)
		usleep(10 * 1000);
	return v;
}

#define assert_metric(d, name, listener, want) do { \
	long long v_ = wait_metric(d, name, listener, want); \
	hd_assert(d, v_ == (want), "%s{listener=\"%s\"}: %lld, want %lld", name, listener, v_, \
	    (long long)(want)); \
} while (0)

#define ERRS "acceptd_proxy_header_errors_total"

/* ---- tests ---- */

START_TEST(v1_tcp4_tcp6)
{
	struct hd *d = hd_up(HEAD ALL_L);
	struct hdr h;

	v1(&h, "PROXY TCP4 192.0.2.7 198.51.100.1 4242 80\r\n");
	expect_env(d, "v1", &h, "[192.0.2.7|4242|198.51.100.1|80]");
	expect_env(d, "any", &h, "[192.0.2.7|4242|198.51.100.1|80]");
	v1(&h, "PROXY TCP6 2001:db8::7 2001:db8:ffff::1 4243 443\r\n");
	expect_env(d, "v1", &h, "[2001:db8::7|4243|2001:db8:ffff::1|443]");
	expect_env(d, "any", &h, "[2001:db8::7|4243|2001:db8:ffff::1|443]");
	/* the extremes: port 0 and 65535, a full IPv6 address */
	v1(&h, "PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n");
	expect_env(d, "v1", &h, "[255.255.255.255|65535|0.0.0.0|0]");
	v1(&h, "PROXY TCP6 2001:db8:1:2:3:4:5:6 ::1 1 65535\r\n");
	expect_env(d, "any", &h, "[2001:db8:1:2:3:4:5:6|1|::1|65535]");
	assert_metric(d, ERRS, "v1", 0);
	assert_metric(d, ERRS, "any", 0);
	hd_free(d);
}
END_TEST

START_TEST(v2_inet_inet6)
{
	struct hdr h;
	/* PP2_TYPE_AUTHORITY "example.com", PP2_TYPE_NOOP 3 bytes: skipped */
	static const unsigned char tlv[] = {
		0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
		0x04, 0x00, 0x03, 0, 0, 0,
	};
	struct hd *d = hd_up(HEAD ALL_L);

	v2_inet(&h, "192.0.2.7", 4242, "198.51.100.1", 80, NULL, 0);
	expect_env(d, "v2", &h, "[192.0.2.7|4242|198.51.100.1|80]");
	expect_env(d, "any", &h, "[192.0.2.7|4242|198.51.100.1|80]");
	v2_inet(&h, "203.0.113.9", 65535, "198.51.100.2", 8443, tlv, sizeof tlv);
	expect_env(d, "v2", &h, "[203.0.113.9|65535|198.51.100.2|8443]");
	v2_inet6(&h, "2001:db8::7", 4243, "2001:db8::1", 443);
	expect_env(d, "v2", &h, "[2001:db8::7|4243|2001:db8::1|443]");
	expect_env(d, "any", &h, "[2001:db8::7|4243|2001:db8::1|443]");
	/* an IPv4-mapped source reads as IPv4 (as for a direct peer) */
	v2_inet6(&h, "::ffff:192.0.2.8", 1000, "2001:db8::1", 443);
	expect_env(d, "v2", &h, "[192.0.2.8|1000|2001:db8::1|443]");
	assert_metric(d, ERRS, "v2", 0);
	hd_free(d);
}
END_TEST

/* Over an IPv6 connection the header's IPv4 addresses still win. */
START_TEST(v2_over_ipv6)
{
	struct hd *d;
	struct hdr h;
	char out[512];
	int fd;
	ssize_t n;

	if (!h_have_ipv6()) {
		fprintf(stderr, "v2_over_ipv6: no IPv6 here, skipped\n");
		return;
	}
	d = hd_up(HEAD "[listener x]\naddress = ::1\nport = 0\nhandler = exec\n"
	    "proxy_protocol = v2\n" ENV_CMD);
	v2_inet(&h, "192.0.2.7", 4242, "198.51.100.1", 80, NULL, 0);
	fd = h_connect("::1", hd_port(d, "x"));
	hd_assert(d, fd >= 0, "connect ::1");
	hd_assert(d, h_send_all(fd, h.b, h.n) == 0 && h_send_str(fd, "ping\n") == 0, "send");
	shutdown(fd, SHUT_WR);
	n = h_recv_until_close(fd, out, sizeof out - 1, H_WAIT_MS);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	hd_assert(d, strcmp(out, "[192.0.2.7|4242|198.51.100.1|80]\nping\n") == 0, "got '%s'", out);
	hd_free(d);
}
END_TEST

/* A unix listener takes a header too: then the connection is TCP's. */
START_TEST(unix_listener)
{
	struct hd *d = hd_up(HEAD "[listener u]\naddress = unix:@DIR@/p.sock\nhandler = exec\n"
	    "proxy_protocol = any\n" ENV_CMD);
	struct hdr h;
	char where[256], out[512];
	int fd;
	ssize_t n;

	hd_path(d, "p.sock", where + 5, sizeof where - 5);
	memcpy(where, "unix:", 5);
	v1(&h, "PROXY TCP4 192.0.2.7 198.51.100.1 4242 80\r\n");
	fd = h_connect(where, 0);
	hd_assert(d, fd >= 0, "connect %s: %s", where, strerror(errno));
	hd_assert(d, h_send_all(fd, h.b, h.n) == 0 && h_send_str(fd, "ping\n") == 0, "send");
	shutdown(fd, SHUT_WR);
	n = h_recv_until_close(fd, out, sizeof out - 1, H_WAIT_MS);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	hd_assert(d, strcmp(out, "[192.0.2.7|4242|198.51.100.1|80]\nping\n") == 0, "got '%s'", out);
	hd_free(d);
}
END_TEST

/* LOCAL (a health check), v1 UNKNOWN and v2 UNSPEC: the real peer stays. */
START_TEST(local_unknown_keep_peer)
{
	struct hd *d = hd_up(HEAD ALL_L);
	struct hdr h;
	/* LOCAL with an address block anyway: ignored */
	static const unsigned char junk[12] = { 10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0, 81 };

	v2(&h, 0x20, 0x00, NULL, 0);
	expect_real(d, "v2", &h);
	expect_real(d, "any", &h);
	v2(&h, 0x20, 0x11, junk, sizeof junk);
	expect_real(d, "v2", &h);
	v2(&h, 0x21, 0x00, NULL, 0);            /* PROXY, family UNSPEC */
	expect_real(d, "v2", &h);
	v1(&h, "PROXY UNKNOWN\r\n");
	expect_real(d, "v1", &h);
	expect_real(d, "any", &h);
	/* the specification's worst case: 107 bytes, ignored after UNKNOWN */
	v1(&h, "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
	ck_assert_uint_eq(h.n, 107);
	expect_real(d, "v1", &h);
	assert_metric(d, ERRS, "v1", 0);
	assert_metric(d, ERRS, "v2", 0);
	assert_metric(d, ERRS, "any", 0);
	hd_free(d);
}
END_TEST

/* allow/deny judge the address the header names, not the proxy's. */
START_TEST(acl_on_header_address)
{
	struct hd *d = hd_up(HEAD
	    EXEC_L("a", "any", "allow = 192.0.2.0/24") EXEC_L("n", "any", "deny = 127.0.0.0/8")
	    EXEC_L("l", "any", "allow = 127.0.0.0/8") STATS_L);
	struct hdr h;

	/* allow = 192.0.2.0/24 */
	v1(&h, "PROXY TCP4 192.0.2.7 198.51.100.1 4242 80\r\n");
	expect_env(d, "a", &h, "[192.0.2.7|4242|198.51.100.1|80]");
	v2_inet(&h, "192.0.2.200", 1, "198.51.100.1", 80, NULL, 0);
	expect_env(d, "a", &h, "[192.0.2.200|1|198.51.100.1|80]");
	v1(&h, "PROXY TCP4 10.0.0.1 198.51.100.1 4242 80\r\n");
	expect_closed(d, "a", h.b, h.n, "header naming 10.0.0.1, allow 192.0.2.0/24");
	v2_inet(&h, "10.1.2.3", 5, "198.51.100.1", 80, NULL, 0);
	expect_closed(d, "a", h.b, h.n, "v2 header naming 10.1.2.3, allow 192.0.2.0/24");
	/* LOCAL: judged as the real peer, 127.0.0.1, which is not allowed */
	v2(&h, 0x20, 0x00, NULL, 0);
	expect_closed(d, "a", h.b, h.n, "LOCAL from 127.0.0.1, allow 192.0.2.0/24");
	assert_metric(d, "acceptd_connections_rejected_total", "a", 3);
	assert_metric(d, "acceptd_connections_accepted_total", "a", 2);
	/* deny = 127.0.0.0/8: the proxy is on 127.0.0.1, the client is not */
	v1(&h, "PROXY TCP4 192.0.2.7 198.51.100.1 4242 80\r\n");
	expect_env(d, "n", &h, "[192.0.2.7|4242|198.51.100.1|80]");
	v1(&h, "PROXY TCP4 127.0.0.9 198.51.100.1 4242 80\r\n");
	expect_closed(d, "n", h.b, h.n, "header naming 127.0.0.9, deny 127.0.0.0/8");
	/* allow = 127.0.0.0/8: the proxy's own address admits nobody else */
	v1(&h, "PROXY TCP4 192.0.2.7 198.51.100.1 4242 80\r\n");
	expect_closed(d, "l", h.b, h.n, "header naming 192.0.2.7, allow 127.0.0.0/8");
	v1(&h, "PROXY UNKNOWN\r\n");
	expect_real(d, "l", &h);
	assert_metric(d, "acceptd_connections_rejected_total", "n", 1);
	assert_metric(d, "acceptd_connections_rejected_total", "l", 1);
	/* refusals are no header errors */
	assert_metric(d, ERRS, "a", 0);
	assert_metric(d, ERRS, "n", 0);
	assert_metric(d, ERRS, "l", 0);
	hd_free(d);
}
END_TEST

/* Header and data in one segment: the data is the handler's, all of it. */
START_TEST(data_after_header)
{
	struct hd *d = hd_up(HEAD ALL_L);
	struct hdr h;
	char out[8192], big[4001];
	ssize_t n;

	v1(&h, "PROXY TCP4 192.0.2.7 198.51.100.1 4242 80\r\n");
	n = talk(d, hd_port(d, "e"), &h, "hello after v1\n", out, sizeof out, NULL);
	hd_assert(d, n >= 0 && strcmp(out, "hello after v1\n") == 0, "v1 + data: '%s'", out);
	v2_inet(&h, "192.0.2.7", 4242, "198.51.100.1", 80, NULL, 0);
	n = talk(d, hd_port(d, "e"), &h, "hello after v2\n", out, sizeof out, NULL);
	hd_assert(d, n >= 0 && strcmp(out, "hello after v2\n") == 0, "v2 + data: '%s'", out);
	/* data that itself looks like a header is data */
	n = talk(d, hd_port(d, "e"), &h, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", out, sizeof out,
	    NULL);
	hd_assert(d, n >= 0 && strcmp(out, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n") == 0,
	    "header-like data: '%s'", out);
	/* more data than any header buffer */
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	v1(&h, "PROXY TCP6 2001:db8::7 2001:db8::1 4243 443\r\n");
	n = talk(d, hd_port(d, "e"), &h, big, out, sizeof out, NULL);
	hd_assert(d, n == (ssize_t)strlen(big) && strcmp(out, big) == 0, "v1 + 4000 bytes: %zd", n);
	/* and with exec: stdin starts right after the header */
	v2_inet(&h, "192.0.2.7", 4242, "198.51.100.1", 80, NULL, 0);
	n = talk(d, hd_port(d, "v2"), &h, "x\n", out, sizeof out, NULL);
	hd_assert(d, strcmp(out, "[192.0.2.7|4242|198.51.100.1|80]\nx\n") == 0, "exec: '%s'", out);
	/* bytes in: exactly the client's data, the header not counted as such */
	assert_metric(d, "acceptd_received_bytes_total", "e", 15 + 15 + 32 + 4000);
	assert_metric(d, ERRS, "e", 0);
	hd_free(d);
}
END_TEST

/* A header in pieces (as a slow proxy or a small MSS sends it). */
START_TEST(header_in_pieces)
{
	struct hd *d = hd_up(HEAD ALL_L);
	struct hdr h;
	char out[512];
	const size_t cuts[][3] = { { 1, 6, 20 }, { 5, 12, 13 }, { 11, 15, 27 } };

	for (int k = 0; k < 2; k++) {
		if (k == 0)
			v1(&h, "PROXY TCP4 192.0.2.7 198.51.100.1 4242 80\r\n");
		else
			v2_inet(&h, "192.0.2.7", 4242, "198.51.100.1", 80, NULL, 0);
		for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
			int fd = conn(d, hd_port(d, "any"), NULL);
			size_t at = 0;
			ssize_t n;

			for (int i = 0; i < 3; i++) {
				hd_assert(d, h_send_all(fd, h.b + at, cuts[c][i] - at) == 0, "send");
				at = cuts[c][i];
				usleep(30 * 1000);
			}
			hd_assert(d, h_send_all(fd, h.b + at, h.n - at) == 0, "send");
			usleep(30 * 1000);
			hd_assert(d, h_send_str(fd, "ping\n") == 0, "send");
			shutdown(fd, SHUT_WR);
			n = h_recv_until_close(fd, out, sizeof out - 1, H_WAIT_MS);
			close(fd);
			out[n > 0 ? n : 0] = '\0';
			hd_assert(d, strcmp(out, "[192.0.2.7|4242|198.51.100.1|80]\nping\n") == 0,
			    "v%d cut at %zu,%zu,%zu: '%s'", k + 1, cuts[c][0], cuts[c][1], cuts[c][2],
			    out);
		}
	}
	assert_metric(d, ERRS, "any", 0);
	hd_free(d);
}
END_TEST

/* Bad headers: closed without a byte, counted per listener. */
START_TEST(bad_headers)
{
	struct hd *d = hd_up(HEAD ALL_L);
	struct hdr h;
	char big[300];
	int nv1 = 0, nv2 = 0, nany = 0, fd;

	/* malformed v1 */
	expect_closed(d, "v1", "PROXY TCP4 192.0.2.7\r\nping\n", 27, "v1 without ports");
	nv1++;
	expect_closed(d, "v1", "PROXY TCP4 192.0.2.7 198.51.100.1 4242 99999\r\n", 46,
	    "v1 port above 65535");
	nv1++;
	expect_closed(d, "v1", "PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n", 41,
	    "v1 TCP4 with an IPv6 address");
	nv1++;
	expect_closed(d, "any", "PROXY SCTP 192.0.2.7 198.51.100.1 1 2\r\n", 39, "v1 SCTP");
	nany++;
	expect_closed(d, "any", "PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n", 38, "v1 LF only");
	nany++;
	/* no header at all */
	expect_closed(d, "any", "GET / HTTP/1.0\r\n\r\n", 18, "HTTP instead of a header");
	nany++;
	expect_closed(d, "v2", "GET / HTTP/1.0\r\n\r\n", 18, "HTTP on v2");
	nv2++;
	/* the wrong version for the listener */
	v2_inet(&h, "192.0.2.7", 4242, "198.51.100.1", 80, NULL, 0);
	expect_closed(d, "v1", h.b, h.n, "v2 header on a v1 listener");
	nv1++;
	v1(&h, "PROXY TCP4 192.0.2.7 198.51.100.1 4242 80\r\n");
	expect_closed(d, "v2", h.b, h.n, "v1 header on a v2 listener");
	nv2++;
	/* malformed v2 */
	v2_inet(&h, "192.0.2.7", 4242, "198.51.100.1", 80, NULL, 0);
	h.b[12] = 0x11;                                 /* version 1 */
	expect_closed(d, "v2", h.b, h.n, "v2 version nibble 1");
	nv2++;
	h.b[12] = 0x23;                                 /* command 3 */
	expect_closed(d, "v2", h.b, h.n, "v2 command 3");
	nv2++;
	v2(&h, 0x21, 0x11, "\x01\x02\x03\x04", 4);     /* too short for IPv4 */
	expect_closed(d, "v2", h.b, h.n, "v2 length below the addresses");
	nv2++;
	v2_inet(&h, "192.0.2.7", 4242, "198.51.100.1", 80, "\x02\x00\x09" "abc", 6);
	expect_closed(d, "any", h.b, h.n, "v2 TLV overrunning the header");
	nany++;
	/* oversized: a v1 line with no CRLF in 107 bytes; a v2 of 2000 */
	memset(big, 'a', sizeof big);
	memcpy(big, "PROXY UNKNOWN ", 14);
	expect_closed(d, "v1", big, sizeof big, "v1 longer than 107 bytes");
	nv1++;
	{
		static unsigned char tlv[1984];

		tlv[0] = 0x04;                          /* one NOOP TLV, 1981 bytes */
		tlv[1] = (1981 >> 8) & 0xff;
		tlv[2] = 1981 & 0xff;
		v2_inet(&h, "192.0.2.7", 4242, "198.51.100.1", 80, tlv, sizeof tlv);
		expect_closed(d, "v2", h.b, h.n, "v2 header of 2000 bytes");
		nv2++;
	}
	/* closed before the header ended */
	fd = conn(d, hd_port(d, "any"), NULL);
	hd_assert(d, h_send_str(fd, "PROXY TCP4 192.0.") == 0, "send");
	close(fd);
	nany++;
	fd = conn(d, hd_port(d, "v2"), NULL);
	hd_assert(d, h_send_all(fd, h.b, 14) == 0, "send");
	close(fd);
	nv2++;
	fd = conn(d, hd_port(d, "v1"), NULL);  /* not a byte */
	close(fd);
	nv1++;

	assert_metric(d, ERRS, "v1", nv1);
	assert_metric(d, ERRS, "v2", nv2);
	assert_metric(d, ERRS, "any", nany);
	/* none of them reached the handler */
	assert_metric(d, "acceptd_connections_accepted_total", "v1", 0);
	assert_metric(d, "acceptd_connections_accepted_total", "v2", 0);
	assert_metric(d, "acceptd_connections_accepted_total", "any", 0);
	assert_metric(d, "acceptd_connections_rejected_total", "any", 0);
	/* and the listeners still serve */
	v1(&h, "PROXY TCP4 192.0.2.7 198.51.100.1 4242 80\r\n");
	expect_env(d, "v1", &h, "[192.0.2.7|4242|198.51.100.1|80]");
	hd_free(d);
}
END_TEST

/* A header that never completes, or never starts: closed after 3 s. */
START_TEST(header_timeout)
{
	struct hd *d = hd_up(HEAD ALL_L);
	int part = conn(d, hd_port(d, "any"), NULL), none = conn(d, hd_port(d, "v2"), NULL);
	int ok = conn(d, hd_port(d, "v1"), NULL);
	long long t0 = h_now_ms(), t_part, t_none;
	char out[256], line[160];
	ssize_t n;

	hd_assert(d, h_send_str(part, "PROXY TCP4 192.0.2.7 198.51.100.1 ") == 0, "send");
	/* meanwhile, a slow but complete header is fine (under 3 s) */
	hd_assert(d, h_send_str(ok, "PROXY TCP4 192.0.2.7 ") == 0, "send");
	usleep(1000 * 1000);
	hd_assert(d, h_send_str(ok, "198.51.100.1 4242 80\r\nping\n") == 0, "send");
	shutdown(ok, SHUT_WR);
	n = h_recv_until_close(ok, out, sizeof out - 1, H_WAIT_MS);
	out[n > 0 ? n : 0] = '\0';
	snprintf(line, sizeof line, "[192.0.2.7|4242|198.51.100.1|80]\nping\n");
	hd_assert(d, strcmp(out, line) == 0, "slow header: '%s'", out);
	close(ok);

	hd_assert(d, h_recv_until_close(part, out, sizeof out, H_WAIT_MS) == 0,
	    "the half header was not closed without a byte");
	t_part = h_now_ms() - t0;
	hd_assert(d, h_recv_until_close(none, out, sizeof out, H_WAIT_MS) == 0,
	    "the silent one was not closed without a byte");
	t_none = h_now_ms() - t0;
	fprintf(stderr, "header_timeout: half a header closed after %lld ms, none after %lld ms\n",
	    t_part, t_none);
	hd_assert(d, t_part >= 2800 && t_part <= 4500, "half a header closed after %lld ms "
	    "(want 3 s)", t_part);
	hd_assert(d, t_none >= 2800 && t_none <= 4500, "no header closed after %lld ms (want 3 s)",
	    t_none);
	close(part);
	close(none);
	assert_metric(d, ERRS, "any", 1);
	assert_metric(d, ERRS, "v2", 1);
	assert_metric(d, ERRS, "v1", 0);
	hd_free(d);
}
END_TEST

/* A connection whose header is still coming when the worker is told to
 * stop is one it accepted: the worker waits for the header, hands the
 * connection over and stops it as it stopped the others (an http request
 * is answered with "Connection: close"), rather than exit and reset it. */
START_TEST(header_pending_at_stop)
{
	struct hd *d = hd_up(HEAD "[listener e]\naddress = 127.0.0.1\nport = 0\n"
	    "proxy_protocol = v1\n\n[listener h]\naddress = 127.0.0.1\nport = 0\n"
	    "handler = http\nproxy_protocol = v1\n\n");
	int e = conn(d, hd_port(d, "e"), NULL), h = conn(d, hd_port(d, "h"), NULL);
	static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
	struct hdr hh;
	char out[1024];
	ssize_t n;

	usleep(100 * 1000);
	hd_kill(d, SIGTERM);
	hd_assert(d, hd_wait_log(d, "draining", 1, H_WAIT_MS), "the worker did not wait");
	v1(&hh, "PROXY TCP4 192.0.2.7 198.51.100.1 4242 80\r\n");
	put(&hh, "ping\n", 5);
	hd_assert(d, h_send_all(e, hh.b, hh.n) == 0, "send");
	shutdown(e, SHUT_WR);
	n = h_recv_until_close(e, out, sizeof out - 1, H_WAIT_MS);
	out[n > 0 ? n : 0] = '\0';
	hd_assert(d, strcmp(out, "ping\n") == 0, "echo after the stop: '%s'", out);
	v1(&hh, "PROXY TCP4 192.0.2.7 198.51.100.1 4242 80\r\n");
	put(&hh, req, sizeof req - 1);
	hd_assert(d, h_send_all(h, hh.b, hh.n) == 0, "send");
	n = h_recv_until_close(h, out, sizeof out - 1, H_WAIT_MS);
	out[n > 0 ? n : 0] = '\0';
	hd_assert(d, strncmp(out, "HTTP/1.1 200 ", 13) == 0 && strstr(out, "\r\nConnection: close\r\n"),
	    "http after the stop: '%s'", out);
	close(e);
	close(h);
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_free(d);
}
END_TEST

/* -s status shows them too (the proxy_err column). */
START_TEST(status_proxy_errors)
{
	struct hd *d = hd_up(HEAD ALL_L);
	long long v[6];
	char l[64];
	int rc, found = 0;
	long long wk;

	for (int i = 0; i < 3; i++)
		expect_closed(d, "v2", "PROXY nonsense\r\n", 16, "v1 on v2");
	assert_metric(d, ERRS, "v2", 3);
	rc = hd_run(d, "-c", d->conf, "-s", "status", NULL);
	hd_assert(d, rc == 0, "-s status: %d: %s", rc, d->err);
	for (const char *p = d->out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (sscanf(p, "%63s %lld %lld %lld %lld %lld %lld %lld", l, &wk, &v[0], &v[1], &v[2],
		    &v[3], &v[4], &v[5]) == 8 && !strcmp(l, "v2")) {
			found = 1;
			hd_assert(d, v[0] == 0 && v[4] == 3, "row v2: accepted %lld proxy_err %lld:\n%s",
			    v[0], v[4], d->out);
		}
	hd_assert(d, found, "no row for v2:\n%s", d->out);
	hd_free(d);
}
END_TEST

static Suite *
proxy_recv_suite(void)
{
	Suite *s = suite_create("proxy_recv");
	TCase *tc = tcase_create("proxy_recv");

	tcase_add_test(tc, v1_tcp4_tcp6);
	tcase_add_test(tc, v2_inet_inet6);
	tcase_add_test(tc, v2_over_ipv6);
	tcase_add_test(tc, unix_listener);
	tcase_add_test(tc, local_unknown_keep_peer);
	tcase_add_test(tc, acl_on_header_address);
	tcase_add_test(tc, data_after_header);
	tcase_add_test(tc, header_in_pieces);
	tcase_add_test(tc, bad_headers);
	tcase_add_test(tc, header_timeout);
	tcase_add_test(tc, status_proxy_errors);
	tcase_add_test(tc, header_pending_at_stop);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(proxy_recv_suite());
}
