#ifndef REPLAY_CLOCK_H
#define REPLAY_CLOCK_H
/*
 * replay_clock: the one driven clock of the replay runner.
 *
 * Every scenario runs on virtual time: the wall clock starts at
 * REPLAY_CLOCK_EPOCH_S and the monotonic clock at a fixed value, and both
 * move only when the runner advances them (a scenario's `step`, or the
 * runner jumping to the next due libuv timer).
 *
 * The daemon takes its clock as a parameter (relay_clock.h):
 * replay_clock() is the one the runner passes to delivery, the queue and
 * the log. libuv's loop time, which runs every uv timer (scheduler
 * wake-ups, session timeouts, the connection cache), is not a parameter:
 * libuv reads clock_gettime(CLOCK_MONOTONIC*) itself. So this module also
 * defines clock_gettime(), whose definition in the executable wins over
 * libc's for libuv.so as well, and both readings stay one virtual time.
 */
#include <stdint.h>

#include "relay_clock.h"

/* 2025-06-01T00:00:00Z: the time the tlsa/ unit tests pin verification to,
 * inside the validity of the test PKI in tests/data/tlsa. */
#define REPLAY_CLOCK_EPOCH_S 1748736000u

/* Back to the start of time (each scenario begins here). */
void replay_clock_reset(void);

/* Move both clocks forward by ms. */
void replay_clock_advance_ms(uint64_t ms);

/* Virtual wall time, microseconds since the epoch. */
uint64_t replay_clock_wall_us(void);

/* Milliseconds since the scenario started. */
uint64_t replay_clock_elapsed_ms(void);

/* The virtual clock as a struct relay_clock (static; never NULL). */
const struct relay_clock *replay_clock(void);

#endif
