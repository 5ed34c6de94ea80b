/*
 * replay_base: what relay/relay_serve.c provides to the delivery code,
 * for the runner, which links delivery without the daemon around it.
 * relay_now_us() is the driven clock's (replay_clock.c).
 */
#include <stdarg.h>
#include <stdio.h>

#include "relay_int.h"

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
