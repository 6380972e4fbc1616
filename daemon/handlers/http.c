/* http: a fixed HTTP/1.1 response to every request, with RFC 9112 framing,
 * keep-alive and pipelining; the request parser is in http.h's interface. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <ev.h>

#include <acceptd/module.h>

#include "conf.h"
#include "handler.h"
#include "handlers/http.h"

/* ---- parser ---- */

/* Character classes, one table lookup per byte:
 * HTTP_C_TOKEN  tchar (RFC 9110 5.6.2): methods and field names;
 * HTTP_C_TARGET any visible octet, obs-text too (raw UTF-8 paths);
 * HTTP_C_VALUE  field-value octets (RFC 9110 5.5): VCHAR, obs-text, SP,
 *               HTAB; no other control, so no CR, LF or NUL. */
#define HTTP_C_TOKEN  0x01
#define HTTP_C_TARGET 0x02
#define HTTP_C_VALUE  0x04
#define HTTP_ALNUM(c) (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') || \
	((c) >= 'a' && (c) <= 'z'))
#define HTTP_TOKEN(c) (HTTP_ALNUM(c) || (c) == '!' || (c) == '#' || (c) == '$' || \
	(c) == '%' || (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || \
	(c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' || (c) == '`' || \
	(c) == '|' || (c) == '~')
#define HTTP_CC(c) ((HTTP_TOKEN(c) ? HTTP_C_TOKEN : 0) | \
	((c) > ' ' && (c) != 0x7f ? HTTP_C_TARGET : 0) | \
	(((c) >= ' ' && (c) != 0x7f) || (c) == '\t' ? HTTP_C_VALUE : 0))
#define HTTP_CC4(c) HTTP_CC(c), HTTP_CC((c) + 1), HTTP_CC((c) + 2), HTTP_CC((c) + 3)
#define HTTP_CC16(c) HTTP_CC4(c), HTTP_CC4((c) + 4), HTTP_CC4((c) + 8), HTTP_CC4((c) + 12)
#define HTTP_CC64(c) HTTP_CC16(c), HTTP_CC16((c) + 16), HTTP_CC16((c) + 32), HTTP_CC16((c) + 48)
static const unsigned char http_cc[256] = {
	HTTP_CC64(0), HTTP_CC64(64), HTTP_CC64(128), HTTP_CC64(192),
};

#define http_is_token(c) (http_cc[(unsigned char)(c)] & HTTP_C_TOKEN)

static inline uint32_t
http_load4(const char *p)
{
	uint32_t x;

	memcpy(&x, p, 4);
	return x;
}

static inline uint64_t
http_load8(const char *p)
{
	uint64_t x;

	memcpy(&x, p, 8);
	return x;
}

/* s[0..n) equals lower (lower case letters and '-', at least 4 bytes)
 * ignoring case, a word at a time. Exact for what it is given here
 * (tokens, field values: no CR): | 0x20 maps only a letter's upper case
 * onto it, and onto '-' only CR. */
static inline int
http_is(const char *s, size_t n, const char *lower, size_t len)
{
	size_t i;

	if (n != len)
		return 0;
	if (len < 8)
		return (http_load4(s) | 0x20202020u) == http_load4(lower) &&
		    (http_load4(s + len - 4) | 0x20202020u) == http_load4(lower + len - 4);
	for (i = 0; i + 8 <= len; i += 8)
		if ((http_load8(s + i) | 0x2020202020202020u) != http_load8(lower + i))
			return 0;
	return i == len ||
	    (http_load8(s + len - 8) | 0x2020202020202020u) == http_load8(lower + len - 8);
}
#define HTTP_IS(s, n, lit) http_is(s, n, lit, sizeof lit - 1)

/* Scanning a word at a time (little-endian only, where the first flagged
 * byte is the lowest): HTTP_LESS(x, n) flags the bytes of x below n (n <=
 * 128; exact up to the first flagged byte, which is all we use), HTTP_DEL
 * the bytes that are 0x7f. */
#define HTTP_ONES 0x0101010101010101u
#define HTTP_LESS(x, n) (((x) - HTTP_ONES * (n)) & ~(x) & (HTTP_ONES * 0x80))
#define HTTP_DEL(x) HTTP_LESS((x) ^ (HTTP_ONES * 0x7f), 1)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HTTP_SWAR 1
#endif

/* The first byte at or after q (before limit) that is not a
 * request-target octet (HTTP_C_TARGET), or limit. */
static inline const char *
http_target_end(const char *q, const char *limit)
{
#ifdef HTTP_SWAR
	while (limit - q >= 8) {
		uint64_t x = http_load8(q), m = HTTP_LESS(x, 0x21) | HTTP_DEL(x);

		if (m)
			return q + (__builtin_ctzll(m) >> 3);
		q += 8;
	}
#endif
	while (q < limit && (http_cc[(unsigned char)*q] & HTTP_C_TARGET))
		q++;
	return q;
}

/* The first byte at or after q (before limit) that is not a field-value
 * octet (HTTP_C_VALUE), or limit. */
static inline const char *
http_value_end(const char *q, const char *limit)
{
#ifdef HTTP_SWAR
	while (limit - q >= 8) {
		uint64_t x = http_load8(q), m = HTTP_LESS(x, 0x20) | HTTP_DEL(x);

		if (m == 0) {
			q += 8;
			continue;
		}
		q += __builtin_ctzll(m) >> 3;
		if (*q != '\t')         /* the one control a value may hold */
			return q;
		q++;
	}
#endif
	while (q < limit && (http_cc[(unsigned char)*q] & HTTP_C_VALUE))
		q++;
	return q;
}

/* The first byte at or after q (before limit) that is not a tchar, or
 * limit. (Names are short: unrolling this by four costs more than it saves.) */
static inline const char *
http_token_end(const char *q, const char *limit)
{
	while (q < limit && http_is_token(*q))
		q++;
	return q;
}

/* Each element of a comma-separated list (RFC 9110 5.6.1), OWS trimmed,
 * empty elements skipped. Returns 0 at the end. */
static inline int
http_list_next(const char **p, const char *end, const char **el, size_t *el_len)
{
	const char *s = *p, *e;

	while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
		s++;
	if (s == end)
		return 0;
	for (e = s + 1; e < end && *e != ','; e++)
		;
	*p = e;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*el = s;
	*el_len = e - s;
	return 1;
}

/* Input ran out at the limit, or before it: 431, or wait for more. */
static long
http_more(const char *start, const char *end)
{
	return end - start >= HTTP_HEAD_MAX ? -431 : 0;
}

/* A byte at q breaks the line it is in. The line is judged once complete
 * (its LF within the limit): 400 then, else wait for it (or 431). */
static long
http_bad(const char *q, const char *limit, const char *start, const char *end)
{
	if (q < limit && memchr(q, '\n', limit - q))
		return -400;
	return http_more(start, end);
}

/* The line ends at q: LF or CRLF. The byte after it, or NULL. A CR is
 * allowed only right before the LF: a bare CR is a request smuggling
 * vector (RFC 9112 2.2). */
static inline const char *
http_eol(const char *q, const char *limit)
{
	if (q < limit) {
		if (*q == '\n')
			return q + 1;
		if (*q == '\r' && q + 1 < limit && q[1] == '\n')
			return q + 2;
	}
	return NULL;
}

/* One pass over the head: each byte is looked at once (table lookups),
 * field names are told apart by length first. */
long
http_parse(const char *buf, size_t len, struct http_req *req)
{
	const char *p = buf, *end = buf + len, *start, *limit, *q, *v, *ve, *el;
	int hosts = 0, te = 0, te_chunked = 0, cl = 0;
	uint64_t length = 0;
	size_t el_len;

	memset(req, 0, sizeof *req);
	while (p < end && (*p == '\n' || *p == '\r')) {
		if (*p == '\r' && (p + 1 == end || p[1] != '\n'))
			return p + 1 == end ? 0 : -400;
		p += *p == '\r' ? 2 : 1;
	}
	start = p;
	/* Search no further than the limit: a peer trickling an endless line
	 * must not make every new byte cost a rescan of everything. */
	limit = end - start > HTTP_HEAD_MAX ? start + HTTP_HEAD_MAX : end;

	/* request-line: method SP request-target SP HTTP-version */
	q = http_token_end(p, limit);
	if (q == p || q == limit || *q != ' ')
		return http_bad(q, limit, start, end);
	req->method = p;
	req->method_len = q - p;
	p = ++q;
	q = http_target_end(q, limit);
	if (q == p || q == limit || *q != ' ')
		return http_bad(q, limit, start, end);
	req->target = p;
	req->target_len = q - p;
	p = q + 1;
	if (limit - p < 8)
		return http_bad(p, limit, start, end);
	if (memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' ||
	    p[7] < '0' || p[7] > '9')
		return http_bad(p, limit, start, end);
	if ((q = http_eol(p + 8, limit)) == NULL)
		return http_bad(p + 8, limit, start, end);
	if (p[5] != '1')
		return -505;
	req->minor = p[7] - '0';
	/* Methods are case-sensitive (RFC 9110 9.1): "head" is not HEAD. */
	req->head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
	p = q;

	/* field-line: name ":" OWS value OWS, until the empty line */
	for (;;) {
		if ((q = http_eol(p, limit)) != NULL)
			break;
		/* obs-fold (a line starting with whitespace) is refused, as is
		 * whitespace between name and colon (RFC 9112 5.1, 5.2). */
		q = http_token_end(p, limit);
		if (q == p || q == limit || *q != ':')
			return http_bad(q, limit, start, end);
		el = p;
		el_len = q - p;
		v = ++q;
		ve = q = http_value_end(q, limit);
		if ((p = http_eol(q, limit)) == NULL)
			return http_bad(q, limit, start, end);
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		switch (el_len) {
		case 4:
			if (HTTP_IS(el, el_len, "host"))
				hosts++;
			break;
		case 10:
			if (!HTTP_IS(el, el_len, "connection"))
				break;
			/* the usual value is one of the two alone */
			if (HTTP_IS(v, ve - v, "close")) {
				req->close = 1;
				break;
			}
			while (http_list_next(&v, ve, &el, &el_len)) {
				if (HTTP_IS(el, el_len, "close"))
					req->close = 1;
				else if (HTTP_IS(el, el_len, "keep-alive"))
					req->keep_alive = 1;
			}
			break;
		case 14: {
			uint64_t x = 0;

			if (!HTTP_IS(el, el_len, "content-length"))
				break;
			if (v == ve)
				return -400;
			for (; v < ve; v++) {
				if (*v < '0' || *v > '9' || x > (UINT64_MAX - 9) / 10)
					return -400;
				x = x * 10 + (*v - '0');
			}
			/* Repeated with one value is a harmless duplicate (RFC
			 * 9110 8.6); different values are a smuggling attempt. */
			if (cl && x != length)
				return -400;
			cl = 1;
			length = x;
			break;
		}
		case 17:
			if (!HTTP_IS(el, el_len, "transfer-encoding"))
				break;
			/* Only the final coding matters: chunked last or 400. */
			te = 1;
			te_chunked = 0;
			while (http_list_next(&v, ve, &el, &el_len))
				te_chunked = HTTP_IS(el, el_len, "chunked");
			break;
		}
	}
	/* RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one anyway. */
	if (hosts > 1 || (hosts == 0 && req->minor >= 1))
		return -400;
	if (te) {
		/* RFC 9112 6.1, 6.3: with Content-Length as well we may reject;
		 * in HTTP/1.0 the framing is faulty; chunked not last: 400. */
		if (cl || req->minor == 0 || !te_chunked)
			return -400;
		req->body = HTTP_BODY_CHUNKED;
	} else if (cl && length) {
		req->body = HTTP_BODY_LENGTH;
		req->length = length;
	}
	return q - buf;
}

enum {
	CH_SIZE0, CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
	CH_TRAILER, CH_TRAILER_LINE, CH_END_LF, CH_DONE,
};
#define CH_EXT_MAX 4096  /* one chunk-size line with extensions */

int
http_chunked_done(const struct http_chunked *ch)
{
	return ch->state == CH_DONE;
}

long
http_chunked(struct http_chunked *ch, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;
	unsigned d;

	while (p < end && ch->state != CH_DONE) {
		unsigned char b = *p;

		switch (ch->state) {
		case CH_SIZE0:
		case CH_SIZE:
			if (b >= '0' && b <= '9')
				d = b - '0';
			else if ((b | 0x20) >= 'a' && (b | 0x20) <= 'f')
				d = (b | 0x20) - 'a' + 10;
			else if (ch->state == CH_SIZE0)
				return -1;
			else if (b == ';' || b == ' ' || b == '\t') {
				ch->state = CH_EXT;
				ch->count = 0;
				p++;
				continue;
			} else if (b == '\r') {
				ch->state = CH_SIZE_LF;
				p++;
				continue;
			} else if (b == '\n') {
				goto size_line_done;
			} else
				return -1;
			if (ch->left > (UINT64_MAX >> 4))
				return -1;
			ch->left = ch->left << 4 | d;
			ch->state = CH_SIZE;
			p++;
			continue;
		case CH_EXT:
			/* Extensions are meaningless to us: skip to the LF. */
			if (b == '\n')
				goto size_line_done;
			if (++ch->count > CH_EXT_MAX)
				return -1;
			p++;
			continue;
		case CH_SIZE_LF:
			if (b != '\n')
				return -1;
		size_line_done:
			p++;
			ch->state = ch->left ? CH_DATA : CH_TRAILER;
			ch->count = 0;
			continue;
		case CH_DATA: {
			size_t k = (size_t)(end - p) < ch->left ? (size_t)(end - p) : ch->left;

			p += k;
			ch->left -= k;
			if (ch->left == 0)
				ch->state = CH_DATA_CR;
			continue;
		}
		case CH_DATA_CR:
			if (b == '\n') {
				ch->state = CH_SIZE0;
			} else if (b == '\r') {
				ch->state = CH_DATA_LF;
			} else
				return -1;
			p++;
			continue;
		case CH_DATA_LF:
			if (b != '\n')
				return -1;
			ch->state = CH_SIZE0;
			p++;
			continue;
		case CH_TRAILER:
			/* Start of a trailer line, or of the final empty line. */
			if (b == '\n')
				ch->state = CH_DONE;
			else if (b == '\r')
				ch->state = CH_END_LF;
			else
				ch->state = CH_TRAILER_LINE;
			if (ch->state != CH_TRAILER_LINE)
				p++;
			continue;
		case CH_TRAILER_LINE:
			/* Trailers are skipped, not interpreted; bounded like a head. */
			if (++ch->count > HTTP_HEAD_MAX)
				return -1;
			if (b == '\n')
				ch->state = CH_TRAILER;
			p++;
			continue;
		case CH_END_LF:
			if (b != '\n')
				return -1;
			ch->state = CH_DONE;
			p++;
			continue;
		}
	}
	return p - buf;
}

/* ---- responses ---- */

/* One precomputed response: status line and fields (head_len bytes), then
 * the content. The Date value (IMF-fixdate, always 29 bytes) sits at
 * date_off and is rewritten in place once a second. */
struct http_resp {
	char *buf;
	size_t len, head_len, date_off;
};

enum { HTTP_KEEP, HTTP_KEEP10, HTTP_CLOSE, HTTP_NRESP };

/* header_timeout's default: from the connection's opening (first request)
 * or the request's first byte (later ones) to the end of its head. */
#define HTTP_HEADER_TIMEOUT_MS 10000
/* After a 408 we send our FIN and read until the peer's; a peer that
 * never sends one is closed this much later. */
#define HTTP_TIMEOUT_GRACE 1.0

struct http_conf {
	int status;
	long long header_timeout_ms;  /* 0: none */
	int body_set;
	char *body;
	size_t body_len;
	char *content_type;
	struct http_resp resp[HTTP_NRESP];
	time_t date;                  /* second the Date values were written for */
	/* The connections whose header clock runs, oldest first. They all
	 * have the same timeout, so the list is in deadline order and one
	 * timer for its head serves them all (ev.pod's "be smart about
	 * timeouts", strategy 4): starting and stopping a clock is a list
	 * append and unlink, where a timer each cost two heap operations on
	 * every new connection whose request is not in at accept. */
	struct http_conn *clock_head, *clock_tail;
	ev_timer clock;
	struct ev_loop *clock_loop;
};

struct http_conn {
	struct http_conf *conf;
	struct acceptd_conn *c;
	struct http_conn *clock_prev, *clock_next; /* in conf's clock list */
	ev_tstamp deadline;           /* of header_timeout, while listed */
	ev_timer grace;               /* after a 408: the peer's FIN, or close */
	unsigned char clocked;        /* in the list */
	unsigned char timed_out;
	unsigned char partial;        /* part of a request head is buffered */
	struct http_chunked ch;
	uint64_t left;                /* content left to skip, HTTP_BODY_LENGTH */
	unsigned char body;           /* enum http_body of the request in progress */
	unsigned char stopping;       /* next response is the last */
	unsigned char served;         /* a request was answered: idle now means keep-alive */
};

#define HTTP_DATE_LEN 29

static const struct {
	int code;
	const char *reason;
} http_reasons[] = {
	{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
	{ 203, "Non-Authoritative Information" }, { 204, "No Content" },
	{ 205, "Reset Content" }, { 206, "Partial Content" },
	{ 300, "Multiple Choices" }, { 301, "Moved Permanently" }, { 302, "Found" },
	{ 303, "See Other" }, { 304, "Not Modified" }, { 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" }, { 400, "Bad Request" },
	{ 401, "Unauthorized" }, { 402, "Payment Required" }, { 403, "Forbidden" },
	{ 404, "Not Found" }, { 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" }, { 408, "Request Timeout" }, { 409, "Conflict" },
	{ 410, "Gone" }, { 411, "Length Required" },
	{ 412, "Precondition Failed" }, { 413, "Content Too Large" },
	{ 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
	{ 416, "Range Not Satisfiable" }, { 417, "Expectation Failed" },
	{ 418, "I'm a teapot" }, { 421, "Misdirected Request" },
	{ 422, "Unprocessable Content" }, { 425, "Too Early" },
	{ 426, "Upgrade Required" }, { 428, "Precondition Required" },
	{ 429, "Too Many Requests" }, { 431, "Request Header Fields Too Large" },
	{ 451, "Unavailable For Legal Reasons" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
};

/* Unknown codes get an empty reason phrase, which RFC 9112 4 allows
 * ("HTTP/1.1 299 \r\n"); clients must not depend on the phrase. */
static const char *
http_reason(int code)
{
	for (size_t i = 0; i < sizeof http_reasons / sizeof *http_reasons; i++)
		if (http_reasons[i].code == code)
			return http_reasons[i].reason;
	return "";
}

/* 204 and 304 carry no content and, for 204, no Content-Length (RFC 9110
 * 8.6, 15.3.5, 15.4.5). 1xx never gets here: conf_set refuses it. */
static int
http_no_content(int status)
{
	return status == 204 || status == 304;
}

static void
http_resp_date(struct http_resp *r, time_t now)
{
	char d[HTTP_DATE_LEN + 1];
	struct tm tm;

	gmtime_r(&now, &tm);
	/* C locale day and month names, as the IMF-fixdate grammar wants. */
	if (strftime(d, sizeof d, "%a, %d %b %Y %H:%M:%S GMT", &tm) == HTTP_DATE_LEN)
		memcpy(r->buf + r->date_off, d, HTTP_DATE_LEN);
}

static int
http_resp_build(struct http_resp *r, int status, const char *ctype,
    const char *body, size_t body_len, const char *connection)
{
	size_t cap = 256 + strlen(ctype) + body_len;
	char *b = malloc(cap);
	int n, m;

	if (b == NULL)
		return -1;
	n = snprintf(b, cap, "HTTP/1.1 %03d %s\r\n", status, http_reason(status));
	m = n + 6;
	n += snprintf(b + n, cap - n, "Date: %*s\r\n", HTTP_DATE_LEN, "");
	if (!http_no_content(status))
		n += snprintf(b + n, cap - n, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		    ctype, body_len);
	else
		body_len = 0;
	if (connection)
		n += snprintf(b + n, cap - n, "Connection: %s\r\n", connection);
	n += snprintf(b + n, cap - n, "\r\n");
	memcpy(b + n, body, body_len);
	free(r->buf);
	r->buf = b;
	r->head_len = n;
	r->len = n + body_len;
	r->date_off = m;
	http_resp_date(r, time(NULL));
	return 0;
}

static int
http_build(struct http_conf *hc)
{
	/* HTTP/1.1 keeps alive by default; an HTTP/1.0 client asked for
	 * keep-alive and must be told it got it. */
	static const char *const conn[HTTP_NRESP] = { NULL, "keep-alive", "close" };

	for (int i = 0; i < HTTP_NRESP; i++)
		if (http_resp_build(&hc->resp[i], hc->status, hc->content_type,
		    hc->body, hc->body_len, conn[i]) < 0)
			return -1;
	hc->date = time(NULL);
	return 0;
}

/* Answers to malformed requests, shared by every listener of the process. */
#define HTTP_NERRS 4
static struct http_resp http_errs[HTTP_NERRS];
static time_t http_errs_date;

static struct http_resp *
http_err_resp(int status, time_t now)
{
	static const struct {
		int status;
		const char *body;
	} errs[HTTP_NERRS] = {
		{ 400, "bad request\n" },
		{ 431, "request header fields too large\n" },
		{ 505, "HTTP version not supported\n" },
		{ 408, "request timeout\n" },
	};
	int i = status == 431 ? 1 : status == 505 ? 2 : status == 408 ? 3 : 0;
	struct http_resp *r = &http_errs[i];

	if (r->buf == NULL && http_resp_build(r, errs[i].status, "text/plain",
	    errs[i].body, strlen(errs[i].body), "close") < 0)
		return NULL;
	if (now != http_errs_date) {
		for (int j = 0; j < HTTP_NERRS; j++)
			if (http_errs[j].buf)
				http_resp_date(&http_errs[j], now);
		http_errs_date = now;
	}
	return r;
}

/* ---- the connection ---- */

/* Responses to one batch of pipelined requests leave in one send(), as a
 * hand-written epoll server's would. Per process: http_read never nests,
 * and empties it before returning. */
static char http_batch[16 * 1024];
static size_t http_batch_len;
static const struct acceptd_api *http_api;

/* -1: c is closing and its http_conn freed; touch neither. */
static int
http_flush(struct acceptd_conn *c)
{
	size_t n = http_batch_len;

	http_batch_len = 0;
	return n ? http_api->conn_write(c, http_batch, n) : 0;
}

static int
http_queue(struct acceptd_conn *c, const char *p, size_t n)
{
	if (http_batch_len + n > sizeof http_batch && http_flush(c) < 0)
		return -1;
	if (n > sizeof http_batch)
		return http_api->conn_write(c, p, n);
	memcpy(http_batch + http_batch_len, p, n);
	http_batch_len += n;
	return 0;
}

/* After the 408: the peer had its grace to send its FIN. */
static void
http_grace_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	http_api->conn_close(((struct http_conn *)((char *)t -
	    offsetof(struct http_conn, grace)))->c);
}

/* header_timeout: a partial head gets 408 and our FIN, then the grace to
 * read the peer's; a connection that sent nothing is just closed. */
static void
http_clock_expired(struct ev_loop *loop, struct http_conn *h)
{
	struct acceptd_conn *c = h->c;
	struct http_resp *r;

	if (!h->partial || (r = http_err_resp(408, (time_t)ev_now(loop))) == NULL) {
		http_api->conn_close(c);
		return;
	}
	h->timed_out = 1;
	/* Armed first: conn_write and conn_close_after_write may close c,
	 * and then http_free stops it. */
	ev_timer_set(&h->grace, HTTP_TIMEOUT_GRACE, 0.);
	ev_timer_start(loop, &h->grace);
	if (http_api->conn_write(c, r->buf, r->len) == 0)
		http_api->conn_close_after_write(c);
}

static void
http_clock_stop(struct http_conn *h)
{
	struct http_conf *hc = h->conf;

	if (!h->clocked)
		return;
	h->clocked = 0;
	*(h->clock_prev ? &h->clock_prev->clock_next : &hc->clock_head) = h->clock_next;
	*(h->clock_next ? &h->clock_next->clock_prev : &hc->clock_tail) = h->clock_prev;
}

/* The head's deadline came: expire everyone due, sleep until the next.
 * Trap: ev_now follows the wall clock (libev re-syncs it every half
 * second), so a deadline further off than the timeout itself means the
 * clock was set back: due now, rather than the defence gone for as long. */
static void
http_clock_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct http_conf *hc = (struct http_conf *)((char *)t - offsetof(struct http_conf, clock));
	ev_tstamp to = hc->header_timeout_ms / 1000.0;
	struct http_conn *h;

	while ((h = hc->clock_head) != NULL &&
	    (h->deadline <= ev_now(loop) || h->deadline - ev_now(loop) > to)) {
		http_clock_stop(h);
		http_clock_expired(loop, h);    /* may free h */
	}
	if (hc->clock_head) {
		ev_timer_set(t, hc->clock_head->deadline - ev_now(loop), 0.);
		ev_timer_start(loop, t);
	}
}

/* A request head is incomplete: its clock runs from now, unless it runs
 * already (it does not restart with every byte: a trickle is no defence). */
static void
http_clock_start(struct acceptd_conn *c, struct http_conn *h)
{
	struct http_conf *hc = h->conf;
	struct ev_loop *loop;

	if (!hc->header_timeout_ms || h->clocked || h->timed_out)
		return;
	loop = http_api->conn_loop(c);
	h->deadline = ev_now(loop) + hc->header_timeout_ms / 1000.0;
	h->clocked = 1;
	h->clock_next = NULL;
	h->clock_prev = hc->clock_tail;
	*(hc->clock_tail ? &hc->clock_tail->clock_next : &hc->clock_head) = h;
	hc->clock_tail = h;
	/* Running, it is due no later than this one: it will get to it. */
	if (!ev_is_active(&hc->clock)) {
		hc->clock_loop = loop;
		ev_timer_set(&hc->clock, h->deadline - ev_now(loop), 0.);
		ev_timer_start(loop, &hc->clock);
	}
}

static size_t
http_read(struct acceptd_conn *c, const char *buf, size_t len)
{
	struct http_conn *h = http_api->conn_data(c);
	struct http_conf *hc = h->conf;
	struct http_resp *r;
	struct http_req req;
	size_t off = 0;
	time_t now;
	int close;
	long n;

	while (off < len) {
		if (h->body == HTTP_BODY_LENGTH) {
			size_t k = len - off < h->left ? len - off : (size_t)h->left;

			off += k;
			if ((h->left -= k) == 0)
				h->body = HTTP_BODY_NONE;
			continue;
		}
		if (h->body == HTTP_BODY_CHUNKED) {
			/* The response went out already; broken framing leaves
			 * no way to find the next request: just close. */
			if ((n = http_chunked(&h->ch, buf + off, len - off)) < 0) {
				if (http_flush(c) == 0)
					http_api->conn_close_after_write(c);
				return off;
			}
			off += n;
			if (http_chunked_done(&h->ch))
				h->body = HTTP_BODY_NONE;
			continue;
		}
		/* Pipelining: stop producing; conn.c offers the rest again.
		 * (The batch may add up to its size above the mark.) */
		if (http_api->conn_blocked(c))
			break;
		if ((n = http_parse(buf + off, len - off, &req)) == 0) {
			h->partial = 1;
			http_clock_start(c, h);
			break;
		}
		now = (time_t)ev_now(http_api->conn_loop(c));
		if (n < 0) {
			if ((r = http_err_resp(-n, now)) == NULL) {
				http_batch_len = 0;
				http_api->conn_close(c);
				return off;
			}
			/* Leave the bad bytes unconsumed: conn.c then lingers. */
			if (http_queue(c, r->buf, r->len) == 0 && http_flush(c) == 0)
				http_api->conn_close_after_write(c);
			return off;
		}
		off += n;
		h->partial = 0;
		h->served = 1;
		http_clock_stop(h);
		/* HTTP/1.1 persists unless "close"; HTTP/1.0 only with
		 * "keep-alive" (RFC 9112 9.3). */
		close = h->stopping || req.close || (req.minor == 0 && !req.keep_alive);
		r = &hc->resp[close ? HTTP_CLOSE : req.minor == 0 ? HTTP_KEEP10 : HTTP_KEEP];
		if (now != hc->date) {
			for (int i = 0; i < HTTP_NRESP; i++)
				http_resp_date(&hc->resp[i], now);
			hc->date = now;
		}
		/* The response goes out as soon as the head is in; the content
		 * is skipped after it (RFC 9110 10.1.1: we say we keep reading). */
		if (http_queue(c, r->buf, req.head ? r->head_len : r->len) < 0)
			return off;
		if (close) {
			if (http_flush(c) == 0)
				http_api->conn_close_after_write(c);
			return off;
		}
		h->body = req.body;
		h->left = req.length;
		memset(&h->ch, 0, sizeof h->ch);
	}
	if (http_flush(c) < 0)
		return off;
	if (h->stopping && off == len && h->body == HTTP_BODY_NONE)
		http_api->conn_close_after_write(c);
	return off;
}

/* Worker stopping: an idle connection (no partial request, no content
 * being skipped) closes now, or once the response in flight is written; a
 * busy one answers its current request with "Connection: close". */
static void
http_stop(struct acceptd_conn *c)
{
	struct http_conn *h = http_api->conn_data(c);
	char b;

	/* Idle between keep-alive requests, and nothing arrived meanwhile: a
	 * fresh connection waits for its first request (header_timeout and
	 * shutdown_timeout bound it); bytes queued but not read yet are a
	 * request coming, to be answered rather than reset. */
	if (h->served && http_api->conn_pending(c) == 0 && h->body == HTTP_BODY_NONE &&
	    recv(http_api->conn_fd(c), &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN)
		http_api->conn_close_after_write(c);
	else
		h->stopping = 1;
}

/* h itself goes with c (conn_new_data). */
static void
http_free(struct acceptd_conn *c)
{
	struct http_conn *h = http_api->conn_data(c);

	http_clock_stop(h);
	ev_timer_stop(http_api->conn_loop(c), &h->grace);
}

static const struct acceptd_conn_ops http_ops = {
	.read = http_read,
	.stop = http_stop,
	.free = http_free,
};

static void
http_accept(void *conf, const struct acceptd_accept *a)
{
	struct http_conn *h;
	struct acceptd_conn *c;
	void *d;

	http_api = a->listener->api;
	/* One allocation for both; conn_new_data logs and counts a failure.
	 * Nothing is read before we return: h is set up in time. */
	if ((c = http_api->conn_new_data(a, &http_ops, sizeof *h, &d)) == NULL)
		return;
	h = d;
	h->c = c;
	h->conf = conf;
	ev_init(&h->grace, http_grace_cb);
	/* The request is often here already (the client sends it right after
	 * its connect): serve it now, not after a round through the loop; and
	 * when it was complete, the header clock needs no starting. */
	if (http_api->conn_read_now(c) < 0)
		return;         /* served and closed (Connection: close) */
	/* The first request's clock starts with the connection (a partial
	 * one has started it already). */
	if (!h->served)
		http_clock_start(c, h);
}

/* ---- configuration ---- */

static void
http_conf_free(void *conf)
{
	struct http_conf *hc = conf;

	if (hc == NULL)
		return;
	if (hc->clock_loop)
		ev_timer_stop(hc->clock_loop, &hc->clock);
	for (int i = 0; i < HTTP_NRESP; i++)
		free(hc->resp[i].buf);
	free(hc->body);
	free(hc->content_type);
	free(hc);
}

static void *
http_conf_new(const struct acceptd_listener *l)
{
	struct http_conf *hc = calloc(1, sizeof *hc);

	if (hc == NULL)
		return NULL;
	hc->status = 200;
	hc->header_timeout_ms = HTTP_HEADER_TIMEOUT_MS;
	ev_init(&hc->clock, http_clock_cb);
	hc->body = strdup("ok\n");
	hc->body_len = 3;
	hc->content_type = strdup("text/plain");
	if (hc->body == NULL || hc->content_type == NULL || http_build(hc) < 0) {
		http_conf_free(hc);
		return NULL;
	}
	return hc;
}

/* body takes \n \r \t \\ escapes, since an INI value is one line. */
static int
http_unescape(const char *s, char **out, size_t *out_len, char *err, size_t errlen)
{
	char *b = malloc(strlen(s) + 1), *p = b;

	if (b == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (; *s; s++) {
		if (*s != '\\') {
			*p++ = *s;
			continue;
		}
		switch (*++s) {
		case 'n': *p++ = '\n'; break;
		case 'r': *p++ = '\r'; break;
		case 't': *p++ = '\t'; break;
		case '\\': *p++ = '\\'; break;
		default:
			snprintf(err, errlen, "bad escape \"\\%.1s\" (use \\n \\r \\t \\\\)", s);
			free(b);
			return -1;
		}
	}
	*out = b;
	*out_len = p - b;
	return 0;
}

/* type "/" subtype, then parameters of visible characters: enough to keep
 * a CR, LF or control out of the response head. */
static int
http_media_type(const char *s)
{
	const char *p = s;

	while (http_is_token(*p))
		p++;
	if (p == s || *p++ != '/')
		return 0;
	s = p;
	while (http_is_token(*p))
		p++;
	if (p == s)
		return 0;
	for (; *p; p++)
		if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
			return 0;
	return strlen(s) < 200;
}

static int
http_conf_set(void *conf, const char *key, const char *value, char *err, size_t errlen)
{
	struct http_conf *hc = conf;
	char *s;
	size_t n;

	if (strcmp(key, "status") == 0) {
		if (strlen(value) != 3 || strspn(value, "0123456789") != 3 ||
		    value[0] < '1') {
			snprintf(err, errlen, "\"%s\" is not an HTTP status code (200..999)",
			    value);
			return -1;
		}
		if (value[0] == '1') {
			snprintf(err, errlen, "%s is an interim (1xx) code; a client "
			    "would wait forever for the final response", value);
			return -1;
		}
		hc->status = atoi(value);
	} else if (strcmp(key, "body") == 0) {
		if (http_unescape(value, &s, &n, err, errlen) < 0)
			return -1;
		free(hc->body);
		hc->body = s;
		hc->body_len = n;
		hc->body_set = 1;
	} else if (strcmp(key, "content_type") == 0) {
		if (!http_media_type(value)) {
			snprintf(err, errlen, "\"%s\" is not a media type "
			    "(type/subtype[; parameter=value])", value);
			return -1;
		}
		if ((s = strdup(value)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		free(hc->content_type);
		hc->content_type = s;
	} else if (strcmp(key, "header_timeout") == 0) {
		if (conf_parse_duration_ms(value, &hc->header_timeout_ms) < 0) {
			snprintf(err, errlen, "bad value '%s' (a duration like "
			    "500ms, 10s, 1m; 0 = none)", value);
			return -1;
		}
		return 0;
	} else {
		return ACCEPTD_KEY_UNKNOWN;
	}
	if (http_build(hc) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
http_conf_check(void *conf, char *err, size_t errlen)
{
	struct http_conf *hc = conf;

	if (hc->body_set && http_no_content(hc->status)) {
		snprintf(err, errlen, "body: a %d response has no content", hc->status);
		return -1;
	}
	return 0;
}

static void
http_conf_dump(const void *conf, FILE *out)
{
	const struct http_conf *hc = conf;

	fprintf(out, "status = %d\nbody = ", hc->status);
	for (size_t i = 0; i < hc->body_len; i++) {
		switch (hc->body[i]) {
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		case '\\': fputs("\\\\", out); break;
		default: fputc(hc->body[i], out);
		}
	}
	fprintf(out, "\ncontent_type = %s\n", hc->content_type);
	if (hc->header_timeout_ms % 1000)
		fprintf(out, "header_timeout = %lldms\n", hc->header_timeout_ms);
	else
		fprintf(out, "header_timeout = %llds\n", hc->header_timeout_ms / 1000);
}


const struct acceptd_handler handler_http = {
	ACCEPTD_HANDLER_V1,
	.name = "http",
	.conf_new = http_conf_new,
	.conf_set = http_conf_set,
	.conf_check = http_conf_check,
	.conf_dump = http_conf_dump,
	.conf_free = http_conf_free,
	.accept = http_accept,
};
