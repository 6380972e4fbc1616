/* test_http: the http handler: its request parser and chunked decoder on
 * their own, then whole exchanges over a socket pair (keep-alive,
 * pipelining, bodies, errors, back-pressure, stop) and its handler keys. */
#include <stdio.h>

#include "conn.h"
#include "handler.h"
#include "handlers/http.h"
#include "util.h"

/* ---- the parser ---- */

static long
parse(const char *s, struct http_req *req)
{
	return http_parse(s, strlen(s), req);
}

START_TEST(test_parse_simple)
{
	const char *s = "GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nGET";
	struct http_req req;

	ck_assert_int_eq(parse(s, &req), (long)strlen(s) - 3);
	ck_assert_uint_eq(req.method_len, 3);
	ck_assert(memcmp(req.method, "GET", 3) == 0);
	ck_assert_uint_eq(req.target_len, 6);
	ck_assert(memcmp(req.target, "/a?b=c", 6) == 0);
	ck_assert_int_eq(req.minor, 1);
	ck_assert_int_eq(req.head, 0);
	ck_assert_int_eq(req.close, 0);
	ck_assert_int_eq(req.body, HTTP_BODY_NONE);
}
END_TEST

START_TEST(test_parse_incomplete)
{
	const char *s = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
	struct http_req req;
	size_t len = strlen(s);

	/* Every proper prefix needs more; the whole is complete. */
	for (size_t i = 0; i < len; i++)
		ck_assert_msg(http_parse(s, i, &req) == 0, "prefix %zu", i);
	ck_assert_int_eq(http_parse(s, len, &req), (long)len);
	ck_assert_int_eq(req.body, HTTP_BODY_LENGTH);
	ck_assert_uint_eq(req.length, 5);
}
END_TEST

START_TEST(test_parse_lenient)
{
	struct http_req req;

	/* Bare LF line ends, and empty lines before the request line. */
	ck_assert_int_eq(parse("GET / HTTP/1.1\nHost: x\n\n", &req), 24);
	ck_assert_int_eq(parse("\r\n\nGET / HTTP/1.0\r\n\r\n", &req), 21);
	ck_assert_int_eq(req.minor, 0);
	ck_assert_int_eq(parse("\r\n", &req), 0);
	ck_assert_int_eq(parse("\r", &req), 0);
	/* Field values: OWS trimmed, HTAB and obs-text allowed. */
	ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost:x\r\nX-A: \t a\tb \xff \r\n\r\n", &req), 0);
	ck_assert_int_gt(parse("HEAD * HTTP/1.1\r\nHost: x\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.head, 1);
	ck_assert_int_gt(parse("head / HTTP/1.1\r\nHost: x\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.head, 0);
	/* HTTP/1.0 needs no Host. */
	ck_assert_int_gt(parse("GET / HTTP/1.0\r\n\r\n", &req), 0);
	/* Duplicate identical Content-Length is one value. */
	ck_assert_int_gt(parse("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	    "content-length: 3\r\n\r\n", &req), 0);
	ck_assert_uint_eq(req.length, 3);
	ck_assert_int_gt(parse("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.body, HTTP_BODY_NONE);
}
END_TEST

START_TEST(test_parse_connection)
{
	struct http_req req;

	ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, CLOSE\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.close, 1);
	ck_assert_int_gt(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.keep_alive, 1);
	ck_assert_int_eq(req.close, 0);
	ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.close, 0);
}
END_TEST

START_TEST(test_parse_transfer_encoding)
{
	struct http_req req;

	ck_assert_int_gt(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.body, HTTP_BODY_CHUNKED);
	/* Chunked must be last (RFC 9112 6.3), and not with Content-Length. */
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", &req), -400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n", &req), -400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 3\r\n\r\n", &req), -400);
	ck_assert_int_eq(parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", &req), -400);
}
END_TEST

START_TEST(test_parse_errors)
{
	static const char *const bad[] = {
		"GARBAGE\r\n\r\n",
		"GET /\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
		"GET / http/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.11\r\nHost: x\r\n\r\n",
		"GET / HTTP/1\r\nHost: x\r\n\r\n",
		"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
		" GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\rHost: x\r\n\r\n",           /* bare CR */
		"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n",
		"\rGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : x\r\n\r\n",         /* space before colon */
		"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", /* obs-fold */
		"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nA: \x7f\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nA: \x00\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",                     /* no Host */
		"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
	};
	struct http_req req;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		/* The NUL case: strlen would stop at it. */
		size_t len = i == 18 ? 33 : strlen(bad[i]);

		ck_assert_msg(http_parse(bad[i], len, &req) == -400, "case %zu", i);
	}
	ck_assert_int_eq(parse("GET / HTTP/2.0\r\nHost: x\r\n\r\n", &req), -505);
	ck_assert_int_eq(parse("GET / HTTP/0.9\r\n\r\n", &req), -505);
}
END_TEST

START_TEST(test_parse_too_large)
{
	char *s = malloc(HTTP_HEAD_MAX + 100);
	struct http_req req;
	int n;

	n = sprintf(s, "GET / HTTP/1.1\r\nHost: x\r\nX: ");
	memset(s + n, 'a', HTTP_HEAD_MAX + 100 - n);
	/* Incomplete below the limit, 431 at it, with or without an end. */
	ck_assert_int_eq(http_parse(s, HTTP_HEAD_MAX - 1, &req), 0);
	ck_assert_int_eq(http_parse(s, HTTP_HEAD_MAX, &req), -431);
	memcpy(s + HTTP_HEAD_MAX + 96, "\r\n\r\n", 4);
	ck_assert_int_eq(http_parse(s, HTTP_HEAD_MAX + 100, &req), -431);
	/* A head of exactly the limit is fine. */
	memcpy(s + HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
	ck_assert_int_eq(http_parse(s, HTTP_HEAD_MAX + 100, &req), HTTP_HEAD_MAX);
	free(s);
}
END_TEST

static long
chunked_all(const char *s, size_t len, int bytewise, struct http_chunked *ch)
{
	long n, total = 0;

	memset(ch, 0, sizeof *ch);
	if (!bytewise)
		return http_chunked(ch, s, len);
	for (size_t i = 0; i < len && !http_chunked_done(ch); i++) {
		if ((n = http_chunked(ch, s + i, 1)) < 0)
			return n;
		total += n;
	}
	return total;
}

START_TEST(test_chunked)
{
	static const char good[] = "5\r\nhello\r\nA;name=\"v\"\r\n0123456789\r\n"
	    "1 ; x\r\n!\n0\r\nTrailer: yes\r\nMore: no\r\n\r\nGET";
	static const char *const bad[] = {
		"\r\n", "x\r\n", "5\r\nhelloX\r\n", "5\r\nhello\rX", "5x\r\n",
		"0\r\n\rX", "0\rX", "fffffffffffffffff\r\n",
	};
	struct http_chunked ch;

	for (int bytewise = 0; bytewise < 2; bytewise++) {
		ck_assert_int_eq(chunked_all(good, sizeof good - 1, bytewise, &ch),
		    (long)sizeof good - 4);
		ck_assert(http_chunked_done(&ch));
		ck_assert_int_eq(chunked_all("0\r\n\r\n", 5, bytewise, &ch), 5);
		ck_assert(http_chunked_done(&ch));
		ck_assert_int_eq(chunked_all("0\n\n", 3, bytewise, &ch), 3);
		ck_assert(http_chunked_done(&ch));
		ck_assert_int_eq(chunked_all("5\r\nhel", 6, bytewise, &ch), 6);
		ck_assert(!http_chunked_done(&ch));
		for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
			ck_assert_msg(chunked_all(bad[i], strlen(bad[i]), bytewise, &ch) < 0,
			    "case %zu", i);
	}
}
END_TEST

/* ---- exchanges ---- */

static struct ev_loop *loop;
static void *conf;
static int sv[2];
static struct util_rd rd;

static void
open_conn(void)
{

	util_pair(sv);
	util_handoff(&handler_http, conf, loop, sv[1]);
	ck_assert_uint_eq(conn_active, 1);
	util_rd_init(&rd, sv[0]);
}

static void
setup(void)
{
	loop = ev_loop_new(0);
	ck_assert_ptr_nonnull(loop);
	ck_assert_ptr_eq(handler_find(NULL, "http")->accept, handler_http.accept);
	conf = handler_http.conf_new(&util_listener()->pub);
	ck_assert_ptr_nonnull(conf);
	sv[0] = -1;
}

static void
teardown(void)
{
	conn_close_all();
	if (sv[0] >= 0)
		close(sv[0]);
	util_rd_free(&rd);
	handler_http.conf_free(conf);
	ev_loop_destroy(loop);
}

/* Check one response at p: status line, a 29-byte IMF-fixdate, the other
 * fields as given (extra: e.g. "Connection: close\r\n"), the content unless
 * head. Returns its length. */
static size_t
expect_resp(const char *p, const char *status, const char *ctype,
    const char *body, const char *extra, int head)
{
	char want[1024];
	int n;

	ck_assert_ptr_nonnull(p);
	n = snprintf(want, sizeof want, "HTTP/1.1 %s\r\nDate: ", status);
	ck_assert_msg(strncmp(p, want, n) == 0, "got \"%.60s\"", p);
	p += n;
	ck_assert_msg(strlen(p) >= 29 && memcmp(p + 25, " GMT\r\n", 6) == 0 &&
	    p[3] == ',', "date \"%.31s\"", p);
	p += 31;
	if (ctype)
		n = snprintf(want, sizeof want, "Content-Type: %s\r\nContent-Length: %zu\r\n"
		    "%s\r\n%s", ctype, strlen(body), extra, head ? "" : body);
	else
		n = snprintf(want, sizeof want, "%s\r\n", extra);
	ck_assert_msg(strncmp(p, want, n) == 0, "got \"%.200s\", want \"%s\"", p, want);
	return strlen(status) + 17 + 31 + n;
}

static size_t
expect_ok(const char *p, const char *extra)
{
	return expect_resp(p, "200 OK", "text/plain", "ok\n", extra, 0);
}

#define GET "GET / HTTP/1.1\r\nHost: test\r\n\r\n"

START_TEST(test_get)
{
	open_conn();
	util_write_str(loop, sv[0], GET);
	ck_assert(util_read_str(loop, &rd, "ok\n", 2000));
	ck_assert_uint_eq(expect_ok(rd.buf, ""), rd.len);
	pump_for(loop, 10);
	util_rd_poll(&rd);
	ck_assert(!rd.eof);
	ck_assert_uint_eq(conn_active, 1);
}
END_TEST

START_TEST(test_keepalive)
{
	size_t n;

	open_conn();
	util_write_str(loop, sv[0], GET);
	ck_assert(util_read_str(loop, &rd, "ok\n", 2000));
	n = rd.len;
	util_write_str(loop, sv[0], "GET /second HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\r\n");
	ck_assert_uint_eq(util_read_len(loop, &rd, 2 * n, 2000), 2 * n);
	expect_ok(rd.buf, "");
	expect_ok(rd.buf + n, "");
	ck_assert(!rd.eof);
}
END_TEST

START_TEST(test_pipelined)
{
	open_conn();
	util_write_str(loop, sv[0], GET GET "GET /3 HTTP/1.1\r\nHost: test\r\n\r\n");
	pump_for(loop, 30);
	util_rd_poll(&rd);
	ck_assert_int_eq(util_count(&rd, "HTTP/1.1 200 OK\r\n"), 3);
	size_t n = expect_ok(rd.buf, "");
	n += expect_ok(rd.buf + n, "");
	n += expect_ok(rd.buf + n, "");
	ck_assert_uint_eq(n, rd.len);
	ck_assert_ptr_null(conn_first()->in);
}
END_TEST

START_TEST(test_bytewise)
{
	const char *req = "GET /slow HTTP/1.1\r\nHost: test\r\nUser-Agent: x\r\n\r\n";

	open_conn();
	for (size_t i = 0; req[i]; i++) {
		ck_assert_uint_eq(util_write_all(loop, sv[0], req + i, 1, 1000), 1);
		pump_for(loop, 1);
		util_rd_poll(&rd);
		ck_assert_msg(rd.len == 0 || req[i + 1] == 0, "answered after %zu bytes", i + 1);
	}
	ck_assert(util_read_str(loop, &rd, "ok\n", 2000));
	ck_assert_uint_eq(expect_ok(rd.buf, ""), rd.len);
}
END_TEST

START_TEST(test_head)
{
	size_t n;

	open_conn();
	util_write_str(loop, sv[0], "HEAD / HTTP/1.1\r\nHost: test\r\n\r\n" GET);
	ck_assert(util_read_str(loop, &rd, "ok\n", 2000));
	n = expect_resp(rd.buf, "200 OK", "text/plain", "ok\n", "", 1);
	n += expect_ok(rd.buf + n, "");
	ck_assert_uint_eq(n, rd.len);
}
END_TEST

START_TEST(test_post_length)
{
	open_conn();
	/* The content looks like a request: it must be skipped, not parsed. */
	util_write_str(loop, sv[0], "POST /form HTTP/1.1\r\nHost: test\r\nContent-Length: 30\r\n\r\n"
	    "GET /x HTTP/1.1\r\nHost: y\r\n\r\n");
	pump_for(loop, 10);
	util_write_str(loop, sv[0], "xx" GET);
	pump_for(loop, 30);
	util_rd_poll(&rd);
	ck_assert_int_eq(util_count(&rd, "HTTP/1.1 "), 2);
	size_t n = expect_ok(rd.buf, "");
	n += expect_ok(rd.buf + n, "");
	ck_assert_uint_eq(n, rd.len);
	ck_assert_uint_eq(conn_active, 1);
}
END_TEST

START_TEST(test_post_chunked)
{
	open_conn();
	util_write_str(loop, sv[0], "POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "1e\r\nGET /x HTTP/1.1\r\nHost: y\r\n\r\n\r\n\r\n3;ext=1\r\nabc\r\n");
	pump_for(loop, 10);
	util_write_str(loop, sv[0], "0\r\nX-Trailer: 1\r\n\r\n" GET);
	pump_for(loop, 30);
	util_rd_poll(&rd);
	ck_assert_int_eq(util_count(&rd, "HTTP/1.1 "), 2);
	ck_assert_int_eq(util_count(&rd, "HTTP/1.1 200 OK\r\n"), 2);
	ck_assert_uint_eq(conn_active, 1);
}
END_TEST

START_TEST(test_chunked_error_closes)
{
	open_conn();
	util_write_str(loop, sv[0], "POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "zz\r\n");
	ck_assert(util_read_eof(loop, &rd, 2000));
	ck_assert_int_eq(util_count(&rd, "HTTP/1.1 200 OK\r\n"), 1);
	close(sv[0]);
	sv[0] = -1;
	ck_assert(util_wait_active(loop, 0, 2000));
}
END_TEST

START_TEST(test_http10)
{
	open_conn();
	util_write_str(loop, sv[0], "GET / HTTP/1.0\r\n\r\n");
	ck_assert(util_read_eof(loop, &rd, 2000));
	ck_assert_uint_eq(expect_ok(rd.buf, "Connection: close\r\n"), rd.len);
	ck_assert(util_wait_active(loop, 0, 2000));
}
END_TEST

START_TEST(test_http10_keepalive)
{
	size_t n;

	open_conn();
	util_write_str(loop, sv[0], "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	ck_assert(util_read_str(loop, &rd, "ok\n", 2000));
	n = expect_ok(rd.buf, "Connection: keep-alive\r\n");
	ck_assert_uint_eq(n, rd.len);
	util_write_str(loop, sv[0], "GET / HTTP/1.0\r\n\r\n");
	ck_assert(util_read_eof(loop, &rd, 2000));
	ck_assert_uint_eq(expect_ok(rd.buf + n, "Connection: close\r\n"), rd.len - n);
}
END_TEST

START_TEST(test_connection_close)
{
	open_conn();
	/* What follows the closing request is never answered. */
	util_write_str(loop, sv[0], "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n" GET);
	ck_assert(util_read_eof(loop, &rd, 2000));
	ck_assert_uint_eq(expect_ok(rd.buf, "Connection: close\r\n"), rd.len);
	close(sv[0]);
	sv[0] = -1;
	ck_assert(util_wait_active(loop, 0, 2000));
}
END_TEST

START_TEST(test_malformed)
{
	open_conn();
	util_write_str(loop, sv[0], GET "GARBAGE\r\n\r\n" GET);
	ck_assert(util_read_eof(loop, &rd, 2000));
	size_t n = expect_ok(rd.buf, "");
	n += expect_resp(rd.buf + n, "400 Bad Request", "text/plain", "bad request\n",
	    "Connection: close\r\n", 0);
	ck_assert_uint_eq(n, rd.len);
	close(sv[0]);
	sv[0] = -1;
	ck_assert(util_wait_active(loop, 0, 2000));
}
END_TEST

START_TEST(test_bad_version)
{
	open_conn();
	util_write_str(loop, sv[0], "GET / HTTP/3.0\r\nHost: test\r\n\r\n");
	ck_assert(util_read_eof(loop, &rd, 2000));
	expect_resp(rd.buf, "505 HTTP Version Not Supported", "text/plain",
	    "HTTP version not supported\n", "Connection: close\r\n", 0);
}
END_TEST

START_TEST(test_too_large)
{
	char big[9 * 1024 + 64];
	int n;

	open_conn();
	n = sprintf(big, "GET / HTTP/1.1\r\nHost: test\r\nX-Big: ");
	memset(big + n, 'b', sizeof big - n - 5);
	memcpy(big + sizeof big - 5, "\r\n\r\n", 5);
	util_write_str(loop, sv[0], big);
	ck_assert(util_read_eof(loop, &rd, 2000));
	ck_assert_int_eq(rd.err, 0);
	ck_assert_uint_eq(expect_resp(rd.buf, "431 Request Header Fields Too Large", "text/plain",
	    "request header fields too large\n", "Connection: close\r\n", 0), rd.len);
	close(sv[0]);
	sv[0] = -1;
	ck_assert(util_wait_active(loop, 0, 2000));
}
END_TEST

static int
set(const char *key, const char *value, char *err, size_t errlen)
{
	err[0] = 0;
	return handler_http.conf_set(conf, key, value, err, errlen);
}

START_TEST(test_keys)
{
	char err[256];

	ck_assert_int_eq(set("status", "404", err, sizeof err), 0);
	ck_assert_int_eq(set("body", "not here\\r\\n\\ttab \\\\ done\\n", err, sizeof err), 0);
	ck_assert_int_eq(set("content_type", "application/json; charset=utf-8", err, sizeof err), 0);
	ck_assert_int_eq(handler_http.conf_check(conf, err, sizeof err), 0);
	open_conn();
	util_write_str(loop, sv[0], GET);
	ck_assert(util_read_str(loop, &rd, "done\n", 2000));
	ck_assert_uint_eq(expect_resp(rd.buf, "404 Not Found", "application/json; charset=utf-8",
	    "not here\r\n\ttab \\ done\n", "", 0), rd.len);
}
END_TEST

START_TEST(test_unknown_reason)
{
	char err[256];

	ck_assert_int_eq(set("status", "299", err, sizeof err), 0);
	open_conn();
	util_write_str(loop, sv[0], GET);
	ck_assert(util_read_str(loop, &rd, "ok\n", 2000));
	ck_assert_uint_eq(expect_resp(rd.buf, "299 ", "text/plain", "ok\n", "", 0), rd.len);
}
END_TEST

START_TEST(test_no_content)
{
	char err[256];

	ck_assert_int_eq(set("status", "204", err, sizeof err), 0);
	ck_assert_int_eq(handler_http.conf_check(conf, err, sizeof err), 0);
	open_conn();
	util_write_str(loop, sv[0], GET GET);
	pump_for(loop, 30);
	util_rd_poll(&rd);
	size_t n = expect_resp(rd.buf, "204 No Content", NULL, NULL, "", 0);
	n += expect_resp(rd.buf + n, "204 No Content", NULL, NULL, "", 0);
	ck_assert_uint_eq(n, rd.len);
	/* An explicit body cannot go with 204. */
	ck_assert_int_eq(set("body", "x", err, sizeof err), 0);
	ck_assert_int_eq(handler_http.conf_check(conf, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "204") != NULL, "err \"%s\"", err);
}
END_TEST

START_TEST(test_bad_keys)
{
	static const char *const bad[][2] = {
		{ "status", "" }, { "status", "abc" }, { "status", "99" },
		{ "status", "1000" }, { "status", "150" }, { "status", "20x" },
		{ "status", "-200" }, { "status", "099" }, { "status", " 200" },
		{ "content_type", "" }, { "content_type", "plain" },
		{ "content_type", "text/" }, { "content_type", "/plain" },
		{ "content_type", "text/plain\r\nX-Injected: 1" },
		{ "content_type", "te xt/plain" },
		{ "body", "bad \\q escape" }, { "body", "trailing \\" },
	};
	char err[256];
	FILE *f;
	char *dump = NULL;
	size_t dlen = 0;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ck_assert_msg(set(bad[i][0], bad[i][1], err, sizeof err) == -1,
		    "%s = %s", bad[i][0], bad[i][1]);
		/* a reason, without the key: conf.c puts "KEY: " in front */
		ck_assert_msg(err[0] && strncmp(err, bad[i][0], strlen(bad[i][0])) != 0,
		    "err \"%s\"", err);
	}
	ck_assert_int_eq(set("port", "80", err, sizeof err), ACCEPTD_KEY_UNKNOWN);
	ck_assert_int_eq(set("Status", "200", err, sizeof err), ACCEPTD_KEY_UNKNOWN);
	/* The defaults survived every refusal. */
	f = open_memstream(&dump, &dlen);
	handler_http.conf_dump(conf, f);
	fclose(f);
	ck_assert_str_eq(dump, "status = 200\nbody = ok\\n\ncontent_type = text/plain\n"
	    "header_timeout = 10s\n");
	free(dump);
}
END_TEST

START_TEST(test_dump)
{
	char err[256], *dump = NULL;
	size_t dlen = 0;
	FILE *f;

	ck_assert_int_eq(set("status", "503", err, sizeof err), 0);
	ck_assert_int_eq(set("body", "a\\tb\\\\c\\r\\n", err, sizeof err), 0);
	ck_assert_int_eq(set("content_type", "text/html", err, sizeof err), 0);
	f = open_memstream(&dump, &dlen);
	handler_http.conf_dump(conf, f);
	fclose(f);
	ck_assert_str_eq(dump, "status = 503\nbody = a\\tb\\\\c\\r\\n\ncontent_type = text/html\n"
	    "header_timeout = 10s\n");
	free(dump);
}
END_TEST

/* Thousands of pipelined requests and a client that does not read: the
 * server's output and held input stay bounded; then all get answered. */
START_TEST(test_backpressure)
{
	enum { N = 5000, RESP = 104 }; /* RESP: one default response */
	size_t len = N * (sizeof GET - 1), off = 0;
	char *reqs = malloc(len);
	struct acceptd_conn *c;
	ssize_t n;

	for (int i = 0; i < N; i++)
		memcpy(reqs + i * (sizeof GET - 1), GET, sizeof GET - 1);
	open_conn();
	c = conn_first();
	for (int i = 0; i < 100 && off < len; i++) {
		if ((n = send(sv[0], reqs + off, len - off, MSG_NOSIGNAL)) > 0)
			off += n;
		pump_for(loop, 2);
		ck_assert_uint_le(c->out_len, CONN_OUT_HIGH + 16 * 1024 + 256);
		ck_assert_uint_le(c->in_len, CONN_IN_MAX);
	}
	ck_assert(conn_blocked(c));
	ck_assert_int_eq(c->io.events & EV_READ, 0);
	for (double end = util_now() + 10; util_now() < end; ) {
		if (off < len && (n = send(sv[0], reqs + off, len - off, MSG_NOSIGNAL)) > 0)
			off += n;
		pump_for(loop, 1);
		util_rd_poll_max(&rd, 32768);
		ck_assert_uint_le(c->out_len, CONN_OUT_HIGH + 16 * 1024 + 256);
		if (off == len && c->in_len == 0 && c->out_len == 0 && rd.len >= N * RESP)
			break;
	}
	ck_assert_uint_eq(off, len);
	ck_assert_int_eq(util_count(&rd, "HTTP/1.1 200 OK\r\n"), N);
	ck_assert_uint_eq(expect_ok(rd.buf, ""), RESP);
	ck_assert_uint_eq(rd.len, N * RESP);
	free(reqs);
}
END_TEST

START_TEST(test_stop_idle)
{
	open_conn();
	util_write_str(loop, sv[0], GET);
	ck_assert(util_read_str(loop, &rd, "ok\n", 2000));
	conn_stop_all();
	ck_assert_uint_eq(conn_active, 0);
	ck_assert(util_read_eof(loop, &rd, 2000));
}
END_TEST

START_TEST(test_stop_busy)
{
	size_t n;

	open_conn();
	util_write_str(loop, sv[0], GET "GET / HTTP/1.1\r\nHo");
	ck_assert(util_read_str(loop, &rd, "ok\n", 2000));
	n = rd.len;
	conn_stop_all();
	ck_assert_uint_eq(conn_active, 1);
	/* The request in progress is answered, and is the last. */
	util_write_str(loop, sv[0], "st: test\r\n\r\n");
	ck_assert(util_read_eof(loop, &rd, 2000));
	ck_assert_uint_eq(expect_ok(rd.buf + n, "Connection: close\r\n"), rd.len - n);
	ck_assert(util_wait_active(loop, 0, 2000));
}
END_TEST

/* ---- header_timeout ---- */

START_TEST(test_header_timeout_keys)
{
	char err[256], *dump = NULL;
	size_t dlen = 0;
	FILE *f;

	ck_assert_int_eq(set("header_timeout", "1m", err, sizeof err), 0);
	ck_assert_int_eq(set("header_timeout", "250ms", err, sizeof err), 0);
	f = open_memstream(&dump, &dlen);
	handler_http.conf_dump(conf, f);
	fclose(f);
	ck_assert_msg(strstr(dump, "header_timeout = 250ms\n") != NULL, "dump \"%s\"", dump);
	free(dump);
	for (int i = 0; i < 4; i++) {
		static const char *const bad[] = { "", "x", "-1s", "10h" };

		ck_assert_msg(set("header_timeout", bad[i], err, sizeof err) == -1, "'%s'", bad[i]);
		ck_assert_msg(strstr(err, "duration") != NULL, "err \"%s\"", err);
	}
}
END_TEST

/* A head that does not complete: 408, our FIN, and the connection gone
 * after the grace even though the peer never closes. */
START_TEST(test_header_timeout_partial)
{
	char err[256];
	double t0;

	ck_assert_int_eq(set("header_timeout", "200ms", err, sizeof err), 0);
	open_conn();
	t0 = util_now();
	util_write_str(loop, sv[0], "GET / HTTP/1.1\r\nHo");
	ck_assert(util_read_eof(loop, &rd, 3000));
	ck_assert_msg(util_now() - t0 >= 0.15 && util_now() - t0 < 1.5, "after %.3f s",
	    util_now() - t0);
	expect_resp(rd.buf, "408 Request Timeout", "text/plain", "request timeout\n",
	    "Connection: close\r\n", 0);
	ck_assert(util_wait_active(loop, 0, 3000));
}
END_TEST

/* A trickle (a byte every 50 ms) does not restart the clock. */
START_TEST(test_header_timeout_trickle)
{
	static const char req[] = "GET /a/very/long/path/that/trickles/in HTTP/1.1\r\n";
	char err[256];
	size_t i;

	ck_assert_int_eq(set("header_timeout", "300ms", err, sizeof err), 0);
	open_conn();
	for (i = 0; i < sizeof req - 1 && !rd.eof; i++) {
		ck_assert_int_eq(write(sv[0], req + i, 1), 1);
		pump_for(loop, 50);
		util_rd_poll(&rd);
	}
	ck_assert_msg(rd.eof && i < 12, "still open after %zu bytes (%.1f s)", i, i * 0.05);
	ck_assert_msg(rd.buf && strstr(rd.buf, "408") != NULL, "no 408");
}
END_TEST

/* Nothing at all within the timeout: closed without a word. */
START_TEST(test_header_timeout_silent)
{
	char err[256];

	ck_assert_int_eq(set("header_timeout", "200ms", err, sizeof err), 0);
	open_conn();
	ck_assert(util_read_eof(loop, &rd, 2000));
	ck_assert_uint_eq(rd.len, 0);
	ck_assert_uint_eq(conn_active, 0);
}
END_TEST

/* Between keep-alive requests the clock does not run (that is
 * idle_timeout's business); nor with header_timeout = 0. */
START_TEST(test_header_timeout_idle_keepalive)
{
	char err[256];

	ck_assert_int_eq(set("header_timeout", "200ms", err, sizeof err), 0);
	open_conn();
	util_write_str(loop, sv[0], GET);
	ck_assert(util_read_str(loop, &rd, "ok\n", 2000));
	pump_for(loop, 500);
	util_rd_poll(&rd);
	ck_assert(!rd.eof);
	util_write_str(loop, sv[0], GET);
	pump_for(loop, 200);
	util_rd_poll(&rd);
	ck_assert_int_eq(util_count(&rd, "ok\n"), 2);
	ck_assert_uint_eq(conn_active, 1);
}
END_TEST

START_TEST(test_header_timeout_off)
{
	char err[256];

	ck_assert_int_eq(set("header_timeout", "0", err, sizeof err), 0);
	open_conn();
	util_write_str(loop, sv[0], "GET / HTTP/1.1\r\n");
	pump_for(loop, 400);
	util_rd_poll(&rd);
	ck_assert(!rd.eof);
	ck_assert_uint_eq(conn_active, 1);
}
END_TEST

/* One clock list serves every connection: each expires on its own
 * deadline, in order, whatever leaves the list before it (served, closed
 * by its peer, from the middle); emptied and refilled, it runs again. */
START_TEST(test_header_timeout_many)
{
	struct util_rd r[4];
	int p[4][2];
	char err[256];
	double t0;

	ck_assert_int_eq(set("header_timeout", "300ms", err, sizeof err), 0);
	t0 = util_now();
	for (int i = 0; i < 3; i++) {
		util_pair(p[i]);
		util_handoff(&handler_http, conf, loop, p[i][1]);
		util_rd_init(&r[i], p[i][0]);
		pump_for(loop, 50);
	}
	/* 0 says nothing; 1 completes its head; 2's peer goes away */
	util_write_str(loop, p[1][0], "GET / HTTP/1.1\r\nHo");
	util_write_str(loop, p[1][0], "st: t\r\n\r\n");
	ck_assert(util_read_str(loop, &r[1], "ok\n", 2000));
	close(p[2][0]);
	ck_assert(util_wait_active(loop, 2, 2000));
	ck_assert(util_read_eof(loop, &r[0], 2000));
	ck_assert_msg(util_now() - t0 >= 0.25, "0 closed after %.3f s", util_now() - t0);
	ck_assert_uint_eq(r[0].len, 0);
	pump_for(loop, 400);
	util_rd_poll(&r[1]);
	ck_assert(!r[1].eof);
	ck_assert_uint_eq(conn_active, 1);
	/* the list ran empty and its timer stopped: a new clock starts it */
	util_pair(p[3]);
	util_handoff(&handler_http, conf, loop, p[3][1]);
	util_rd_init(&r[3], p[3][0]);
	util_write_str(loop, p[3][0], "GET / HTTP/1.1\r\n");
	ck_assert(util_read_eof(loop, &r[3], 3000));
	ck_assert_msg(r[3].buf && strstr(r[3].buf, " 408 ") != NULL, "no 408");
	for (int i = 0; i < 4; i++) {
		if (i != 2)
			close(p[i][0]);
		util_rd_free(&r[i]);
	}
}
END_TEST

/* A request already there at accept is served inside the hand-off, before
 * the loop runs: with "close" the connection is gone at once; kept alive,
 * the header clock never started (a complete head), so it stays open. */
START_TEST(test_first_read_at_accept)
{
	char err[256], buf[1024];
	ssize_t n;

	ck_assert_int_eq(set("header_timeout", "200ms", err, sizeof err), 0);
	util_pair(sv);
	util_write_str(loop, sv[0], "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	util_handoff(&handler_http, conf, loop, sv[1]);
	ck_assert_uint_eq(conn_active, 0);
	n = read(sv[0], buf, sizeof buf - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "got \"%s\"", buf);
	close(sv[0]);

	util_pair(sv);
	util_write_str(loop, sv[0], GET);
	util_handoff(&handler_http, conf, loop, sv[1]);
	ck_assert_uint_eq(conn_active, 1);
	n = read(sv[0], buf, sizeof buf - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_msg(strstr(buf, "ok\n") != NULL, "got \"%s\"", buf);
	util_rd_init(&rd, sv[0]);
	pump_for(loop, 400);
	util_rd_poll(&rd);
	ck_assert(!rd.eof);
	ck_assert_uint_eq(conn_active, 1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("http");
	TCase *tp = tcase_create("parser"), *tc = tcase_create("handler");

	tcase_add_test(tp, test_parse_simple);
	tcase_add_test(tp, test_parse_incomplete);
	tcase_add_test(tp, test_parse_lenient);
	tcase_add_test(tp, test_parse_connection);
	tcase_add_test(tp, test_parse_transfer_encoding);
	tcase_add_test(tp, test_parse_errors);
	tcase_add_test(tp, test_parse_too_large);
	tcase_add_test(tp, test_chunked);
	suite_add_tcase(s, tp);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_get);
	tcase_add_test(tc, test_keepalive);
	tcase_add_test(tc, test_pipelined);
	tcase_add_test(tc, test_bytewise);
	tcase_add_test(tc, test_head);
	tcase_add_test(tc, test_post_length);
	tcase_add_test(tc, test_post_chunked);
	tcase_add_test(tc, test_chunked_error_closes);
	tcase_add_test(tc, test_http10);
	tcase_add_test(tc, test_http10_keepalive);
	tcase_add_test(tc, test_connection_close);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_bad_version);
	tcase_add_test(tc, test_too_large);
	tcase_add_test(tc, test_keys);
	tcase_add_test(tc, test_unknown_reason);
	tcase_add_test(tc, test_no_content);
	tcase_add_test(tc, test_bad_keys);
	tcase_add_test(tc, test_dump);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_stop_idle);
	tcase_add_test(tc, test_stop_busy);
	tcase_add_test(tc, test_header_timeout_keys);
	tcase_add_test(tc, test_header_timeout_partial);
	tcase_add_test(tc, test_header_timeout_trickle);
	tcase_add_test(tc, test_header_timeout_silent);
	tcase_add_test(tc, test_header_timeout_idle_keepalive);
	tcase_add_test(tc, test_header_timeout_off);
	tcase_add_test(tc, test_header_timeout_many);
	tcase_add_test(tc, test_first_read_at_accept);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
