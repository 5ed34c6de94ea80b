#ifndef RELAY_CLOCK_H
#define RELAY_CLOCK_H
/*
 * relay_clock: the daemon's reading of time. Only relay/ reads a clock
 * (STYLE.md section 1); the pure modules below get time passed in.
 */
#include <stdint.h>

/* Microseconds since the epoch (the wall clock). */
uint64_t relay_now_us(void);

#endif
