/* Private helpers shared by the files of smtp/ (STYLE.md 2: smtp__ prefix). */
#ifndef SMTP_INT_H
#define SMTP_INT_H

#include <stdio.h>
#include <stdlib.h>

#include "smtp.h"

/* Broken invariants abort with file, line and condition (STYLE.md 3);
 * never used on network input. */
#define SMTP_ASSERT(cond)                                                      \
	do {                                                                   \
		if (!(cond))                                                   \
			smtp__abort(__FILE__, __LINE__, #cond);                \
	} while (0)

_Noreturn void smtp__abort(const char *file, int line, const char *cond);

static inline bool
smtp__is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static inline bool
smtp__is_alpha(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline uint8_t
smtp__lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* Case-insensitive ASCII compare of a slice with a C string. */
bool smtp__ieq(const uint8_t *p, size_t len, const char *s);

/* Text allowed in our own replies: printable ASCII, no CR/LF. */
bool smtp__text_ok(const char *s, size_t max);

/* Length of a well-formed UTF-8 sequence starting at p (2..4), or 0. */
size_t smtp__utf8_seq(const uint8_t *p, size_t len);

#endif /* SMTP_INT_H */
