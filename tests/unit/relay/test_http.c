/*
 * Unit tests for relay_http: the HTTP/1.x request head parser of the
 * metrics endpoint. Table-driven; every input is parsed whole, as every
 * prefix (a split at every offset, which is what a byte-at-a-time client
 * hands the parser), and the results must agree (STYLE.md 9).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay_http.h"

struct http_case {
	const char *in;
	int want; /* > 0: length of the head; else an error */
	const char *method, *target, *path;
	unsigned minor;
};

#define HEAD(s) s, (int)(sizeof(s) - 1)

static const struct http_case cases[] = {
	{ HEAD("GET /metrics HTTP/1.1\r\nHost: localhost:9325\r\n"
	       "User-Agent: Prometheus/2.42.0\r\nAccept: text/plain;"
	       "version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n"),
	    "GET", "/metrics", "/metrics", 1 },
	{ HEAD("GET /metrics HTTP/1.0\r\n\r\n"), "GET", "/metrics", "/metrics",
	    0 },
	/* Bare LF line ends (RFC 9112 2.2). */
	{ HEAD("GET /metrics HTTP/1.1\nHost: x\n\n"), "GET", "/metrics",
	    "/metrics", 1 },
	/* Empty lines before the request line are skipped (2.2). */
	{ HEAD("\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"), "GET", "/metrics",
	    "/metrics", 1 },
	/* Query and absolute-form (3.2.2). */
	{ HEAD("GET /metrics?x=1 HTTP/1.1\r\n\r\n"), "GET", "/metrics?x=1",
	    "/metrics", 1 },
	{ HEAD("GET http://127.0.0.1:9325/metrics HTTP/1.1\r\n\r\n"), "GET",
	    "http://127.0.0.1:9325/metrics", "/metrics", 1 },
	{ HEAD("GET http://127.0.0.1:9325 HTTP/1.1\r\n\r\n"), "GET",
	    "http://127.0.0.1:9325", "/", 1 },
	{ HEAD("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), "POST",
	    "/metrics", "/metrics", 1 },
	{ HEAD("GET / HTTP/1.1\r\nX-Empty:\r\nX-Tab: a\tb\r\n\r\n"), "GET", "/",
	    "/", 1 },
	{ HEAD("GET /metrics HTTP/1.1\r\nX: \xc3\xa9\r\n\r\n"), "GET",
	    "/metrics", "/metrics", 1 },

	/* Malformed. */
	{ "GET /metrics HTTP/1.1\r\nBad Header: x\r\n\r\n", RELAY_HTTP_EBAD,
	    NULL, NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", RELAY_HTTP_EBAD, NULL,
	    NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n", RELAY_HTTP_EBAD, NULL,
	    NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", RELAY_HTTP_EBAD, NULL,
	    NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", RELAY_HTTP_EBAD, NULL,
	    NULL, NULL, 0 },
	{ "GET /metrics HTTP/1.1\r\nX: a\x01\r\n\r\n", RELAY_HTTP_EBAD, NULL,
	    NULL, NULL, 0 },
	{ "GET  /metrics HTTP/1.1\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL,
	    0 },
	{ "GET /metrics  HTTP/1.1\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL,
	    0 },
	{ "GET /metrics HTTP/1.1 \r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL,
	    0 },
	{ "GET /metrics http/1.1\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL,
	    0 },
	{ "GET /metrics\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL, 0 },
	{ "GET\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL, 0 },
	{ " GET /metrics HTTP/1.1\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL,
	    0 },
	{ "G(T /metrics HTTP/1.1\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL,
	    0 },
	{ "GET /met\x7frics HTTP/1.1\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL,
	    NULL, 0 },
	{ "GET metrics HTTP/1.1\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL,
	    0 },
	{ "GET /metrics HTTP/1.1\rX\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL,
	    0 },
	{ "\rGET /metrics HTTP/1.1\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL,
	    0 },
	{ "GET /metrics HTTP/1.x\r\n\r\n", RELAY_HTTP_EBAD, NULL, NULL, NULL,
	    0 },
	/* Versions other than 1.0 and 1.1. */
	{ "GET /metrics HTTP/2.0\r\n\r\n", RELAY_HTTP_EVERSION, NULL, NULL,
	    NULL, 0 },
	{ "GET /metrics HTTP/1.2\r\n\r\n", RELAY_HTTP_EVERSION, NULL, NULL,
	    NULL, 0 },
	{ "GET /metrics HTTP/0.9\r\n\r\n", RELAY_HTTP_EVERSION, NULL, NULL,
	    NULL, 0 },
	/* Never ends. */
	{ "GET /metrics HTTP/1.1\r\nHost: x\r\n", RELAY_HTTP_AGAIN, NULL, NULL,
	    NULL, 0 },
	{ "", RELAY_HTTP_AGAIN, NULL, NULL, NULL, 0 },
	{ "\r\n\r\n", RELAY_HTTP_AGAIN, NULL, NULL, NULL, 0 },
};

static void
expect(const struct http_case *c, const uint8_t *in, size_t len, int r,
    const struct relay_http_request *req)
{
	if (r != c->want)
		fail_msg("%.60s: got %d, want %d", c->in, r, c->want);
	if (r <= 0)
		return;
	assert_int_equal(req->method_len, strlen(c->method));
	assert_memory_equal(req->method, c->method, req->method_len);
	assert_int_equal(req->target_len, strlen(c->target));
	assert_memory_equal(req->target, c->target, req->target_len);
	assert_int_equal(req->path_len, strlen(c->path));
	assert_memory_equal(req->path, c->path, req->path_len);
	assert_int_equal(req->minor, c->minor);
	/* Slices point into the input. */
	assert_true(req->method >= in && req->method < in + len);
	assert_true(req->target >= in && req->target < in + len);
}

static void
test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct http_case *c = &cases[i];
		size_t len = strlen(c->in);
		/* A copy of exactly len bytes: no NUL after it to lean on. */
		uint8_t *in = malloc(len + 1);
		assert_non_null(in);
		memcpy(in, c->in, len);
		struct relay_http_request req;
		memset(&req, 0, sizeof(req));
		expect(c, in, len, relay_http_head_parse(in, len, &req), &req);
		/* Every prefix: incomplete, or (once the head is complete)
		 * the same result as the whole. */
		for (size_t k = 0; k < len; k++) {
			memset(&req, 0, sizeof(req));
			int r = relay_http_head_parse(in, k, &req);
			if (r == RELAY_HTTP_AGAIN) {
				assert_true(
				    c->want <= 0 || k < (size_t)c->want);
				continue;
			}
			expect(c, in, k, r, &req);
		}
		free(in);
	}
}

/* Bytes after the head (a body, a pipelined request) are not read. */
static void
test_trailing_bytes(void **state)
{
	static const char in[] = "GET /metrics HTTP/1.1\r\n\r\nGARBAGE\x01";
	struct relay_http_request req;
	(void)state;

	assert_int_equal(relay_http_head_parse((const uint8_t *)in,
	                     sizeof(in) - 1, &req),
	    (int)strlen("GET /metrics HTTP/1.1\r\n\r\n"));
}

/* The ceiling: a head that has not ended within RELAY_HTTP_HEAD_MAX
 * bytes is refused, one that ends at exactly that length is accepted. */
static void
test_head_max(void **state)
{
	static uint8_t buf[RELAY_HTTP_HEAD_MAX + 16];
	struct relay_http_request req;
	static const char line[] = "GET /metrics HTTP/1.1\r\nX: ";
	(void)state;

	memset(buf, 'a', sizeof(buf));
	memcpy(buf, line, sizeof(line) - 1);
	assert_int_equal(relay_http_head_parse(buf, RELAY_HTTP_HEAD_MAX - 1,
	                     &req),
	    RELAY_HTTP_AGAIN);
	assert_int_equal(relay_http_head_parse(buf, RELAY_HTTP_HEAD_MAX, &req),
	    RELAY_HTTP_ETOOBIG);
	assert_int_equal(relay_http_head_parse(buf, sizeof(buf), &req),
	    RELAY_HTTP_ETOOBIG);
	memcpy(buf + RELAY_HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
	assert_int_equal(relay_http_head_parse(buf, sizeof(buf), &req),
	    (int)RELAY_HTTP_HEAD_MAX);
	/* The end one byte past the ceiling is not looked for. */
	memset(buf + sizeof(line) - 1, 'a', sizeof(buf) - sizeof(line) + 1);
	memcpy(buf + RELAY_HTTP_HEAD_MAX - 3, "\r\n\r\n", 4);
	assert_int_equal(relay_http_head_parse(buf, sizeof(buf), &req),
	    RELAY_HTTP_ETOOBIG);
}

static void
test_strerror(void **state)
{
	(void)state;
	assert_string_equal(relay_http_strerror(RELAY_HTTP_ETOOBIG),
	    "request head too long");
	assert_string_equal(relay_http_strerror(12345), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_head_max),
		cmocka_unit_test(test_strerror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
