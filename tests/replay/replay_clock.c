/*
 * replay_clock: virtual wall and monotonic time (see replay_clock.h).
 */
#define _GNU_SOURCE
#include "replay_clock.h"

#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The monotonic clock starts well above zero: libuv and OpenSSL treat 0 as
 * "unset" in places. */
#define MONO_START_NS (1000ull * 1000000000ull)

static uint64_t elapsed_ns;

void
replay_clock_reset(void)
{
	elapsed_ns = 0;
}

void
replay_clock_advance_ms(uint64_t ms)
{
	elapsed_ns += ms * 1000000ull;
}

uint64_t
replay_clock_wall_us(void)
{
	return (uint64_t)REPLAY_CLOCK_EPOCH_S * 1000000ull + elapsed_ns / 1000u;
}

uint64_t
replay_clock_elapsed_ms(void)
{
	return elapsed_ns / 1000000u;
}

static uint64_t
mono_us(void *arg)
{
	(void)arg;
	return (MONO_START_NS + elapsed_ns) / 1000u;
}

static uint64_t
wall_us(void *arg)
{
	(void)arg;
	return replay_clock_wall_us();
}

const struct relay_clock *
replay_clock(void)
{
	static const struct relay_clock clock = {
		.mono_us = mono_us,
		.wall_us = wall_us,
	};
	return &clock;
}

static void
to_timespec(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

/*
 * The override, for libuv's loop time (see replay_clock.h). Wall and
 * monotonic clocks (all their variants) are virtual; anything else
 * (CPU-time clocks) is the kernel's.
 */
int
clock_gettime(clockid_t id, struct timespec *ts)
{
	switch (id) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
		to_timespec((uint64_t)REPLAY_CLOCK_EPOCH_S * 1000000000ull +
		        elapsed_ns,
		    ts);
		return 0;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_BOOTTIME:
		to_timespec(MONO_START_NS + elapsed_ns, ts);
		return 0;
	default:
		break;
	}
	long r = syscall(SYS_clock_gettime, id, ts);
	if (r != 0)
		return -1;
	return 0;
}
