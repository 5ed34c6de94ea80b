/*
 * Fuzz target: the HTTP/1.x request head parser of the metrics endpoint
 * (relay_http.h). Invariants: the result is a head length within the
 * input and RELAY_HTTP_HEAD_MAX, or one of the parser's errors; a parsed
 * request's slices lie inside the head; and every prefix of the input
 * gives either "incomplete" or the same result (a client that sends its
 * head a byte at a time gets the same answer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_slice(const uint8_t *s, size_t n, const uint8_t *head, int hlen)
{
	if (s < head || s + n > head + hlen)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_http_request req, req2;
	int r = relay_http_head_parse(data, size, &req);

	if (r > 0) {
		if ((size_t)r > size || (size_t)r > RELAY_HTTP_HEAD_MAX)
			abort();
		check_slice(req.method, req.method_len, data, r);
		check_slice(req.target, req.target_len, data, r);
		/* path may be the static "/" of an authority-only target. */
		if (req.path_len > 1 || req.path[0] != '/')
			check_slice(req.path, req.path_len, data, r);
		if (req.minor > 1 || req.method_len == 0 || req.target_len == 0)
			abort();
	} else if (r != RELAY_HTTP_AGAIN && r != RELAY_HTTP_EBAD &&
	    r != RELAY_HTTP_ETOOBIG && r != RELAY_HTTP_EVERSION) {
		abort();
	}
	/* A few prefixes (all of them would make the fuzzer slow). */
	for (size_t k = 0; k < size; k += 1 + size / 16) {
		int rk = relay_http_head_parse(data, k, &req2);
		if (rk == RELAY_HTTP_AGAIN)
			continue;
		if (rk != r)
			abort();
		if (r > 0 &&
		    (req2.method_len != req.method_len ||
		        req2.target_len != req.target_len ||
		        req2.path_len != req.path_len ||
		        memcmp(req2.target, req.target, req.target_len) != 0))
			abort();
	}
	return 0;
}
