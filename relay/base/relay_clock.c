/*
 * relay_clock: see relay_clock.h. The only file of the daemon that reads
 * the system's clocks.
 */
#include <time.h>

#include "relay_clock.h"

static uint64_t
read_clock(clockid_t id)
{
	struct timespec ts;

	/* Both clocks exist on every system we build for (POSIX 2008); a
	 * failure would mean a bad clockid, not a runtime condition. */
	(void)clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t
system_mono_us(void *arg)
{
	(void)arg;
	return read_clock(CLOCK_MONOTONIC);
}

static uint64_t
system_wall_us(void *arg)
{
	(void)arg;
	return read_clock(CLOCK_REALTIME);
}

static const struct relay_clock system_clock = {
	.mono_us = system_mono_us,
	.wall_us = system_wall_us,
	.arg = NULL,
};

const struct relay_clock *
relay_clock_system(void)
{
	return &system_clock;
}

static uint64_t
manual_mono_us(void *arg)
{
	const struct relay_clock_manual *m = arg;
	return m->mono_us;
}

static uint64_t
manual_wall_us(void *arg)
{
	const struct relay_clock_manual *m = arg;
	return m->wall_us;
}

void
relay_clock_manual_init(struct relay_clock_manual *m, uint64_t mono_us,
    uint64_t wall_us)
{
	m->clock.mono_us = manual_mono_us;
	m->clock.wall_us = manual_wall_us;
	m->clock.arg = m;
	m->mono_us = mono_us;
	m->wall_us = wall_us;
}

void
relay_clock_manual_advance(struct relay_clock_manual *m, uint64_t us)
{
	m->mono_us += us;
	m->wall_us += us;
}

void
relay_clock_manual_set_wall(struct relay_clock_manual *m, uint64_t wall_us)
{
	m->wall_us = wall_us;
}
