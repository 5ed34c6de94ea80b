#ifndef RELAY_CLOCK_H
#define RELAY_CLOCK_H
/*
 * relay_clock: the daemon's one clock, passed in (STYLE.md sections 1, 11).
 *
 * A clock has two readings:
 *
 *   monotonic  for timers, timeouts, deadlines and measured durations: it
 *              never steps, so a wall-clock correction (NTP, an operator's
 *              `date -s`) neither fires a timeout early nor holds one off.
 *   wall       for what people read, and for what must survive a restart:
 *              log and header dates, queue ids, arrival and next-attempt
 *              times in envelopes, ages in `queue list`, the report.
 *
 * Nothing outside this file reads the system's clocks (scripts/
 * check-clock.sh): the daemon passes relay_clock_system() down through the
 * contexts it wires (struct relay_deliver_ctx, relay_smtpd_ctx,
 * relay_control_ctx, the queue), and a test passes a struct
 * relay_clock_manual instead, which moves only when told. libuv timers stay
 * the wake-up mechanism: code computes durations from its clock and hands
 * them to uv_timer_start().
 */
#include <stdint.h>

/* A source of time. Both callbacks are required and get arg; they return
 * microseconds: since an arbitrary fixed point (mono_us, never decreasing)
 * or since the epoch (wall_us, may step either way). */
struct relay_clock {
	uint64_t (*mono_us)(void *arg);
	uint64_t (*wall_us)(void *arg);
	void *arg;
};

/* The system's clocks: CLOCK_MONOTONIC (the base systemd's MONOTONIC_USEC
 * expects) and CLOCK_REALTIME. Static; never NULL. */
const struct relay_clock *relay_clock_system(void);

static inline uint64_t
relay_clock_mono_us(const struct relay_clock *c)
{
	return c->mono_us(c->arg);
}

static inline uint64_t
relay_clock_mono_ms(const struct relay_clock *c)
{
	return c->mono_us(c->arg) / 1000u;
}

static inline uint64_t
relay_clock_wall_us(const struct relay_clock *c)
{
	return c->wall_us(c->arg);
}

/* Whole seconds since the epoch, for dates people read. */
static inline int64_t
relay_clock_wall_s(const struct relay_clock *c)
{
	return (int64_t)(c->wall_us(c->arg) / 1000000u);
}

/* Milliseconds from now until the point `at` of the same reading, 0 when
 * it has passed: the duration to give a uv timer. Rounded up so a timer
 * never fires before `at`. */
static inline uint64_t
relay_clock_until_ms(uint64_t now_us, uint64_t at_us)
{
	return at_us > now_us ? (at_us - now_us + 999u) / 1000u : 0;
}

/*
 * A clock that moves only when told, for tests and replay: fill it with
 * relay_clock_manual_init() and pass &m.clock wherever a clock goes.
 */
struct relay_clock_manual {
	/* public */
	struct relay_clock clock; /* reads the two fields below */
	uint64_t mono_us;
	uint64_t wall_us;
};

/* Start at the given readings. */
void relay_clock_manual_init(struct relay_clock_manual *m, uint64_t mono_us,
    uint64_t wall_us);

/* Time passes: both readings move forward by us. */
void relay_clock_manual_advance(struct relay_clock_manual *m, uint64_t us);

/* The wall clock is set (forward or back); the monotonic one does not
 * notice. */
void relay_clock_manual_set_wall(struct relay_clock_manual *m,
    uint64_t wall_us);

#endif
