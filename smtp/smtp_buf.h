/*
 * struct smtp_buf: the one byte buffer of danerelay (STYLE.md section 4).
 *
 * A contiguous buffer with a read cursor (rpos), a write cursor (wpos) and a
 * hard ceiling (max) fixed at init. Unread bytes are [rpos, wpos). Storage
 * grows on demand (doubling) up to max; reaching max is an error the caller
 * turns into a protocol error ("line too long", "421 too much pipelined
 * input"), never unbounded growth. Consumed space is reclaimed by moving the
 * unread bytes to the front when needed.
 *
 * Pointers returned by smtp_buf_data() are valid until the next call that
 * writes to the buffer (append, reserve, printf) or frees it.
 */
/* Include "smtp.h", not this header. */
#ifndef SMTP_BUF_H
#define SMTP_BUF_H

#include <stdarg.h>

struct smtp_buf {
	/* private: use the functions below */
	uint8_t *data;
	size_t rpos;
	size_t wpos;
	size_t cap;
	size_t max;
};

/* Initialises b with ceiling max (> 0). No memory is allocated until the
 * first write. Cannot fail. */
void smtp_buf_init(struct smtp_buf *b, size_t max);

/* Releases the storage; b may be re-initialised. NULL is a no-op. */
void smtp_buf_free(struct smtp_buf *b);

/* Appends n bytes. Returns 0, SMTP_ERR_FULL when unread bytes + n would
 * exceed the ceiling (nothing is appended), or SMTP_ERR_NOMEM. */
SMTP_MUST_USE int smtp_buf_append(struct smtp_buf *b, const void *p, size_t n);

/* Appends a C string (without its NUL). Same returns as smtp_buf_append. */
SMTP_MUST_USE int smtp_buf_puts(struct smtp_buf *b, const char *s);

/* printf-style append. Returns 0, SMTP_ERR_FULL (nothing appended),
 * SMTP_ERR_NOMEM or SMTP_ERR_INVAL on a formatting error. */
SMTP_MUST_USE int smtp_buf_printf(struct smtp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For reading from a socket straight into the buffer: makes room for at
 * least n bytes and stores the write position in *wp. Write at most n bytes
 * there, then call smtp_buf_commit() with the count written. Returns 0,
 * SMTP_ERR_FULL or SMTP_ERR_NOMEM. */
SMTP_MUST_USE int smtp_buf_reserve(struct smtp_buf *b, size_t n, uint8_t **wp);

/* Marks n bytes written after smtp_buf_reserve(); n <= the reserved size. */
void smtp_buf_commit(struct smtp_buf *b, size_t n);

/* Unread bytes. smtp_buf_data() may return NULL when smtp_buf_len() is 0. */
static inline const uint8_t *
smtp_buf_data(const struct smtp_buf *b)
{
	return b->data == NULL ? NULL : b->data + b->rpos;
}

static inline size_t
smtp_buf_len(const struct smtp_buf *b)
{
	return b->wpos - b->rpos;
}

/* Room left before the ceiling. */
static inline size_t
smtp_buf_avail(const struct smtp_buf *b)
{
	return b->max - smtp_buf_len(b);
}

/* Marks n unread bytes as read (n <= smtp_buf_len()). */
void smtp_buf_consume(struct smtp_buf *b, size_t n);

/* Drops every unread byte; keeps the storage. */
void smtp_buf_reset(struct smtp_buf *b);

#endif /* SMTP_BUF_H */
