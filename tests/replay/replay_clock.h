#ifndef REPLAY_CLOCK_H
#define REPLAY_CLOCK_H
/*
 * replay_clock: the one driven clock of the replay runner.
 *
 * Every scenario runs on virtual time: the wall clock starts at
 * REPLAY_CLOCK_EPOCH_S and the monotonic clock at a fixed value, and both
 * move only when the runner advances them (a scenario's `step`, or the
 * runner jumping to the next due libuv timer). Today the daemon reads time
 * in three ways: relay_now_us() (wall, provided here instead of
 * base/relay_clock.c), clock_gettime()
 * directly (queue arrival times, log time stamps) and libuv's loop time
 * (uv_now(), timers), which libuv takes from clock_gettime(CLOCK_MONOTONIC*).
 * This module therefore defines clock_gettime() itself: a definition in the
 * executable wins over libc's for the executable and for libuv.so alike.
 *
 * When the daemon takes its clock as a parameter, this file is the only
 * one to change: hand the scheduler and the sessions a clock that reads
 * replay_clock_wall_us()/replay_clock_mono_ms(), and drop the
 * clock_gettime() override.
 */
#include <stdint.h>

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

#endif
