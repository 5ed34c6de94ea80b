/*
 * relay_text: see relay_text.h.
 */
#include <stdarg.h>
#include <stdio.h>

#include "relay_text.h"

void
relay_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 && size > 0)
		buf[0] = '\0';
}
