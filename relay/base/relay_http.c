/*
 * relay_http: HTTP/1.x request head parser (RFC 9112). See relay_http.h.
 *
 * Written as a schema: find the end of the head, then expect the request
 * line (method SP request-target SP HTTP-version), then field lines
 * (field-name ":" OWS field-value OWS), each ending in CRLF or LF.
 */
#include "relay_http.h"

#include <stdbool.h>
#include <string.h>

const char *
relay_http_strerror(int err)
{
	switch (err) {
	case RELAY_HTTP_AGAIN:
		return "request head incomplete";
	case RELAY_HTTP_EBAD:
		return "malformed request head";
	case RELAY_HTTP_ETOOBIG:
		return "request head too long";
	case RELAY_HTTP_EVERSION:
		return "HTTP version not supported";
	default:
		return "unknown error";
	}
}

/* RFC 9110 5.6.2: tchar. */
static bool
is_tchar(uint8_t c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* One line [p, end of line) without its terminator; *next is where the
 * following line starts. The caller knows a LF follows. */
static size_t
line_len(const uint8_t *p, size_t len, size_t *next)
{
	const uint8_t *lf = memchr(p, '\n', len);
	size_t n = (size_t)(lf - p);

	*next = n + 1;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	return n;
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 3). */
static int
parse_request_line(const uint8_t *p, size_t n, struct relay_http_request *req)
{
	size_t i = 0, t0, t1;

	while (i < n && is_tchar(p[i]))
		i++;
	if (i == 0 || i >= n || p[i] != ' ')
		return RELAY_HTTP_EBAD;
	req->method = p;
	req->method_len = i;
	t0 = ++i;
	/* request-target: visible ASCII (RFC 9112 3.2; RFC 3986 characters
	 * are a subset). */
	while (i < n && p[i] > 0x20 && p[i] < 0x7f)
		i++;
	t1 = i;
	if (t1 == t0 || i >= n || p[i] != ' ')
		return RELAY_HTTP_EBAD;
	i++;
	/* HTTP-version = "HTTP" "/" DIGIT "." DIGIT (RFC 9112 2.3), case
	 * sensitive. */
	if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 || p[i + 6] != '.' ||
	    p[i + 5] < '0' || p[i + 5] > '9' || p[i + 7] < '0' ||
	    p[i + 7] > '9')
		return RELAY_HTTP_EBAD;
	if (p[i + 5] != '1' || p[i + 7] > '1')
		return RELAY_HTTP_EVERSION;
	req->minor = (unsigned)(p[i + 7] - '0');
	req->target = p + t0;
	req->target_len = t1 - t0;

	/* origin-form "/path?query", or absolute-form
	 * "http://authority/path?query" (RFC 9112 3.2.1, 3.2.2). */
	const uint8_t *path = req->target;
	size_t plen = req->target_len;
	if (path[0] != '/') {
		const uint8_t *s = memchr(path, ':', plen);
		if (s == NULL || plen - (size_t)(s - path) < 3 || s[1] != '/' ||
		    s[2] != '/')
			return RELAY_HTTP_EBAD;
		const uint8_t *auth = s + 3;
		size_t rest = plen - (size_t)(auth - path);
		const uint8_t *slash = memchr(auth, '/', rest);
		if (slash == NULL) {
			path = (const uint8_t *)"/";
			plen = 1;
		} else {
			plen = rest - (size_t)(slash - auth);
			path = slash;
		}
	}
	const uint8_t *q = memchr(path, '?', plen);
	if (q != NULL)
		plen = (size_t)(q - path);
	req->path = path;
	req->path_len = plen;
	return 0;
}

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 5). A line
 * starting with whitespace is obs-fold, which a server may reject (5.2);
 * whitespace before the colon must be rejected (5.1). */
static int
check_field_line(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && is_tchar(p[i]))
		i++;
	if (i == 0 || i >= n || p[i] != ':')
		return RELAY_HTTP_EBAD;
	/* field-value: VCHAR, obs-text, SP, HTAB; no other controls
	 * (RFC 9110 5.5). */
	for (i++; i < n; i++)
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return RELAY_HTTP_EBAD;
	return 0;
}

int
relay_http_head_parse(const uint8_t *p, size_t len,
    struct relay_http_request *req)
{
	size_t off = 0, next, n, end;
	const uint8_t *lf;

	if (len > RELAY_HTTP_HEAD_MAX)
		len = RELAY_HTTP_HEAD_MAX;
	/* Empty lines before the request line (RFC 9112 2.2). */
	while (off < len && (p[off] == '\r' || p[off] == '\n')) {
		if (p[off] == '\r' && off + 1 < len && p[off + 1] != '\n')
			return RELAY_HTTP_EBAD;
		off++;
	}
	/* The end of the head: the first empty line after the request line. */
	end = 0;
	for (size_t i = off; i < len && (lf = memchr(p + i, '\n', len - i));) {
		size_t at = (size_t)(lf - p) + 1;
		if (at < len && p[at] == '\n') {
			end = at + 1;
			break;
		}
		if (at + 1 < len && p[at] == '\r' && p[at + 1] == '\n') {
			end = at + 2;
			break;
		}
		i = at;
	}
	if (end == 0)
		return len >= RELAY_HTTP_HEAD_MAX ? RELAY_HTTP_ETOOBIG
		                                  : RELAY_HTTP_AGAIN;

	n = line_len(p + off, end - off, &next);
	int r = parse_request_line(p + off, n, req);
	if (r != 0)
		return r;
	off += next;
	for (;;) {
		n = line_len(p + off, end - off, &next);
		if (n == 0)
			break; /* the empty line: end of the head */
		/* A CR inside a line is not a line ending (RFC 9112 2.2). */
		if (memchr(p + off, '\r', n) != NULL)
			return RELAY_HTTP_EBAD;
		if (check_field_line(p + off, n) != 0)
			return RELAY_HTTP_EBAD;
		off += next;
	}
	return (int)end;
}
