/* The bounded byte buffer (STYLE.md section 4, curl's dynbuf ceiling). */
#include <string.h>

#include "smtp_int.h"

#define SMTP_BUF_MIN_CAP 256

void
smtp_buf_init(struct smtp_buf *b, size_t max)
{
	SMTP_ASSERT(max > 0);
	b->data = NULL;
	b->rpos = 0;
	b->wpos = 0;
	b->cap = 0;
	b->max = max;
}

void
smtp_buf_free(struct smtp_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->rpos = b->wpos = b->cap = 0;
}

/* Makes room for n more bytes after wpos, within the ceiling. */
static int
buf_room(struct smtp_buf *b, size_t n)
{
	size_t unread = b->wpos - b->rpos;
	if (n > b->max - unread)
		return SMTP_ERR_FULL;
	if (b->cap - b->wpos >= n)
		return 0;
	/* Reclaim consumed space first. */
	if (b->rpos > 0) {
		if (unread > 0)
			memmove(b->data, b->data + b->rpos, unread);
		b->rpos = 0;
		b->wpos = unread;
		if (b->cap - b->wpos >= n)
			return 0;
	}
	size_t need = unread + n;
	size_t ncap = b->cap ? b->cap : SMTP_BUF_MIN_CAP;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max)
		ncap = b->max;
	if (ncap < need)
		ncap = need;
	uint8_t *nd = realloc(b->data, ncap);
	if (nd == NULL)
		return SMTP_ERR_NOMEM;
	b->data = nd;
	b->cap = ncap;
	return 0;
}

int
smtp_buf_append(struct smtp_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	int rc = buf_room(b, n);
	if (rc < 0)
		return rc;
	memcpy(b->data + b->wpos, p, n);
	b->wpos += n;
	return 0;
}

int
smtp_buf_puts(struct smtp_buf *b, const char *s)
{
	return smtp_buf_append(b, s, strlen(s));
}

int
smtp_buf_printf(struct smtp_buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return SMTP_ERR_INVAL;
	if ((size_t)n < sizeof(tmp))
		return smtp_buf_append(b, tmp, (size_t)n);
	/* Long output: format straight into the buffer. */
	int rc = buf_room(b, (size_t)n + 1);
	if (rc < 0)
		return rc;
	va_start(ap, fmt);
	int m = vsnprintf((char *)b->data + b->wpos, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (m != n)
		return SMTP_ERR_INVAL;
	b->wpos += (size_t)n;
	return 0;
}

int
smtp_buf_reserve(struct smtp_buf *b, size_t n, uint8_t **wp)
{
	int rc = buf_room(b, n);
	if (rc < 0)
		return rc;
	*wp = b->data + b->wpos;
	return 0;
}

void
smtp_buf_commit(struct smtp_buf *b, size_t n)
{
	SMTP_ASSERT(n <= b->cap - b->wpos);
	b->wpos += n;
}

void
smtp_buf_consume(struct smtp_buf *b, size_t n)
{
	SMTP_ASSERT(n <= b->wpos - b->rpos);
	b->rpos += n;
	if (b->rpos == b->wpos)
		b->rpos = b->wpos = 0;
}

void
smtp_buf_reset(struct smtp_buf *b)
{
	b->rpos = b->wpos = 0;
}
