/* libFuzzer target: the http handler's request parser (http_parse) and
 * chunked framing (http_chunked), as the handler drives them: heads one
 * after another, content skipped by Content-Length or chunks, input fed
 * in two pieces to exercise the incremental chunked state. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes: ASan catches any read past the end */
	char *buf = malloc(size ? size : 1);
	size_t off = 0, split = size ? data[0] % (size + 1) : 0;
	struct http_req req;
	long n;

	memcpy(buf, data, size);
	while (off < size) {
		n = http_parse(buf + off, size - off, &req);
		if (n <= 0) {
			if (n < 0 && n != -400 && n != -431 && n != -505)
				abort();
			/* more input only ever makes it complete or an error */
			if (n == 0 && size - off >= HTTP_HEAD_MAX)
				abort();
			break;
		}
		if ((size_t)n > size - off || req.method_len == 0 || req.target_len == 0 ||
		    req.method < buf + off || req.target + req.target_len > buf + off + n)
			abort();
		off += n;
		if (req.body == HTTP_BODY_LENGTH) {
			off += req.length < size - off ? req.length : size - off;
		} else if (req.body == HTTP_BODY_CHUNKED) {
			struct http_chunked ch = { 0 };
			size_t s = split > off ? split - off : 0, k = 0;
			long m;

			if (s > size - off)
				s = size - off;
			/* in two pieces: the state must carry across */
			if ((m = http_chunked(&ch, buf + off, s)) < 0)
				break;
			if ((size_t)m > s)
				abort();
			k = m;
			if (!http_chunked_done(&ch)) {
				if ((size_t)m != s)
					abort();        /* consumed less, yet not done */
				if ((m = http_chunked(&ch, buf + off + k, size - off - k)) < 0)
					break;
				if ((size_t)m > size - off - k)
					abort();
				k += m;
			}
			off += k;
			if (!http_chunked_done(&ch))
				break;
		}
	}
	free(buf);
	return 0;
}
