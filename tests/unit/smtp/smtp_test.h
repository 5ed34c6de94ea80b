/* Shared helpers for the smtp/ unit tests: a growable list of cmocka cases
 * (one case per table row, so each row is counted and named), and string
 * helpers. Header-only; every test program includes it once. */
#ifndef SMTP_TEST_H
#define SMTP_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp.h"

struct case_list {
	struct CMUnitTest *v;
	size_t n, cap;
};

static inline void
case_add(struct case_list *l, const char *name, CMUnitTestFunction fn,
    void *state)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (l->v == NULL)
			abort();
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	l->v[l->n].name = name;
	l->v[l->n].test_func = fn;
	l->v[l->n].initial_state = state;
	l->n++;
}

static inline int
case_run(struct case_list *l, const char *group)
{
	int rc = _cmocka_run_group_tests(group, l->v, l->n, NULL, NULL);
	free(l->v);
	return rc;
}

#define CASES(list, table, fn)                                                 \
	for (size_t i_ = 0; i_ < sizeof(table) / sizeof((table)[0]); i_++)     \
	case_add(list, (table)[i_].name, fn, (void *)&(table)[i_])

static inline const uint8_t *
U(const char *s)
{
	return (const uint8_t *)s;
}

/* A growable string for transcript logs. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static inline void
sb_add(struct sbuf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	if (n > 0)
		/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): the first append reallocated b->p (len + n + 1 > cap = 0) */
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static inline void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		abort();
	sb_add(b, tmp, (size_t)n);
}

static inline const char *
sb_str(const struct sbuf *b)
{
	return b->p ? b->p : "";
}

static inline void
sb_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

#endif
