/* http: the http handler's request parser (RFC 9112 request head and
 * chunked framing), separate from the handler so tests and fuzzers can call it. */
#ifndef ACCEPTD_HTTP_H
#define ACCEPTD_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Request line plus field lines beyond this: 431. */
#define HTTP_HEAD_MAX 8192

enum http_body { HTTP_BODY_NONE, HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED };

struct http_req {
	const char *method, *target;  /* into the parsed buffer, not terminated */
	size_t method_len, target_len;
	int minor;                    /* HTTP/1.minor */
	int head;                     /* method HEAD: answer without content */
	int close, keep_alive;        /* Connection: close / keep-alive seen */
	enum http_body body;
	uint64_t length;              /* content length for HTTP_BODY_LENGTH */
};

/* Parse one request head: request line, field lines, empty line. Empty
 * lines before the request line are skipped (RFC 9112 2.2); bare LF ends a
 * line as well as CRLF (RFC 9112 2.2 allows it); nothing else is lenient.
 * Returns the head's length in bytes (skipped lines included) when complete,
 * 0 when more input is needed, or -STATUS (-400, -431, -505) to answer with
 * before closing. Reads only buf[0..len); keeps no state between calls. */
long http_parse(const char *buf, size_t len, struct http_req *req);

/* Chunked content (RFC 9112 7.1), consumed incrementally: zero the struct
 * before the first chunk. */
struct http_chunked {
	uint64_t left;                /* bytes left in the current chunk */
	unsigned state, count;
};
/* Consume framing and content from buf: returns the bytes consumed (less
 * than len only once the message is complete), or -1 on a framing error.
 * http_chunked_done() tells whether the last chunk and trailers were seen. */
long http_chunked(struct http_chunked *ch, const char *buf, size_t len);
int http_chunked_done(const struct http_chunked *ch);

#endif
