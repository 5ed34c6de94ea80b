#ifndef RELAY_TEXT_H
#define RELAY_TEXT_H
/*
 * relay_text: fixed-buffer text helpers shared by every layer above base/.
 * Texts built from server replies, hostnames and paths are cut to fit on
 * purpose; these are the one place that says so.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* For results that carry no decision at the call site (a state machine
 * records the failure itself); gcc does not accept a (void) cast for
 * warn_unused_result. */
static inline void
rc_ignore(int rc)
{
	(void)rc;
}

/* Copy a C string (borrowed; NULL reads as "") into a fixed buffer, cut to
 * fit, always NUL-terminated. */
static inline void
relay_copy(char *dst, size_t size, const char *src)
{
	if (size == 0)
		return;
	if (src == NULL)
		src = "";
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* The value of one hex digit of a %-encoding (RFC 3986 2.1: either case),
 * or -1 when c is not one. */
static inline int
relay_hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* snprintf for texts that are cut on purpose (reasons and messages built
 * from server replies, paths): truncation is the intent, so it goes through
 * this one function instead of silencing -Wformat-truncation per call. An
 * encoding error leaves "" in buf. */
void relay_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
