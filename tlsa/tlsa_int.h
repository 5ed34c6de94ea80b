#ifndef TLSA_INT_H
#define TLSA_INT_H
/* Private to tlsa/: shared between its translation units. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsa.h"

/* Broken invariant: abort with file, line and condition (STYLE.md 3). */
#define TLSA__ASSERT(c) ((c) ? (void)0 : tlsa__abort(__FILE__, __LINE__, #c))
__attribute__((noreturn)) void tlsa__abort(const char *file, int line,
    const char *cond);

/* Validate a host name (RFC 1035 2.3.4 lengths, LDH plus '_', optional
 * final dot) and copy it without the final dot, lowercased. */
int tlsa__name_copy(const char *name, char out[TLSA_NAME_MAX + 1]);

/* Case-insensitive equality of two names, ignoring a final dot. */
bool tlsa__name_eq(const char *a, const char *b);

/* Bounded appender: text is always NUL-terminated; overflow is sticky. */
struct tlsa__buf {
	char *p;
	size_t size;
	size_t len;
	bool overflow;
};
void tlsa__buf_init(struct tlsa__buf *b, char *p, size_t size);
void tlsa__buf_add(struct tlsa__buf *b, const char *s);
__attribute__((format(printf, 2, 3))) void tlsa__buf_printf(struct tlsa__buf *b,
    const char *fmt, ...);
/* Append s as a quoted value: printable ASCII kept, '"' and '\\' escaped,
 * everything else as \xNN, at most max input bytes (then ".."). */
void tlsa__buf_quoted(struct tlsa__buf *b, const char *s, size_t max);
/* Append lowercase hex of p[0..n), at most max bytes (then ".."). */
void tlsa__buf_hex(struct tlsa__buf *b, const uint8_t *p, size_t n, size_t max);

/* "3 1 1 ab12..": record text truncated to fit out (size >= 16). */
void tlsa__record_text(const struct tlsa_record *r, char *out, size_t size);

#endif
