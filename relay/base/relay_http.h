#ifndef RELAY_HTTP_H
#define RELAY_HTTP_H
/*
 * relay_http: the parser of an HTTP/1.0 or HTTP/1.1 request head (RFC 9112
 * sections 2 to 5), for the metrics endpoint. Pure: no I/O, no
 * allocation, no logging (STYLE.md 5). It reads the request line and checks
 * that every header field line is well formed; it keeps no field, because
 * the endpoint needs none (it always closes the connection and reads no
 * body).
 */
#include <stddef.h>
#include <stdint.h>

/* Longest request head accepted (request line, fields, empty line). Our
 * one resource needs a few hundred bytes; RFC 9112 3 leaves the limit to
 * the server (and RFC 6585 5 names the status: 431). */
#define RELAY_HTTP_HEAD_MAX 8192u

enum relay_http_err {
	RELAY_HTTP_AGAIN = -1,   /* head incomplete: feed more bytes */
	RELAY_HTTP_EBAD = -2,    /* not a well-formed HTTP/1.x request head */
	RELAY_HTTP_ETOOBIG = -3, /* no end of head within RELAY_HTTP_HEAD_MAX */
	RELAY_HTTP_EVERSION = -4, /* HTTP-version other than 1.0 or 1.1 */
};

/* Static text for a relay_http_err. */
const char *relay_http_strerror(int err);

/* The request line; slices of the parser's input (borrowed). */
struct relay_http_request {
	const uint8_t *method;
	size_t method_len;
	const uint8_t *target; /* request-target as sent */
	size_t target_len;
	const uint8_t *path; /* target without the query, and without the
	                      * scheme and authority of an absolute-form
	                      * target (RFC 9112 3.2.2) */
	size_t path_len;
	unsigned minor; /* 0 or 1 */
};

/*
 * Parses the request head at p (len bytes, not NUL-terminated). Empty
 * lines before the request line are skipped (RFC 9112 2.2); lines may end
 * in CRLF or a bare LF (2.2). Returns the length of the head up to and
 * including the empty line that ends it (> 0) and fills *req, or
 * RELAY_HTTP_AGAIN (no end yet, len < RELAY_HTTP_HEAD_MAX),
 * RELAY_HTTP_ETOOBIG, RELAY_HTTP_EBAD or RELAY_HTTP_EVERSION. Bytes after
 * the head are not looked at.
 */
int relay_http_head_parse(const uint8_t *p, size_t len,
    struct relay_http_request *req) __attribute__((warn_unused_result));

#endif
