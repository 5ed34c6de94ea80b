/*
 * relay_clock: see relay_clock.h.
 */
#include <time.h>

#include "relay_clock.h"

uint64_t
relay_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
