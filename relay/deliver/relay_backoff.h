#ifndef RELAY_BACKOFF_H
#define RELAY_BACKOFF_H
/*
 * relay_backoff: when a deferred recipient is tried again, when it has
 * been queued too long, and when its sender is warned of the delay. Pure
 * functions of the configuration and times passed in (no clock, no I/O),
 * so a test drives them with any `now` (tests/unit/relay/test_backoff.c).
 *
 * The times are the envelope's: wall time in microseconds since the epoch
 * (relay_deliver.h, "Time"), because arrival and next attempt survive a
 * restart and people read them. Durations come from the configuration in
 * milliseconds.
 */
#include <stdbool.h>
#include <stdint.h>

#include "relay_config.h"

/*
 * How long to wait after the attempts-th failed attempt (1 for the first):
 * retry_min, doubled per further attempt, at most retry_max (Postfix's
 * minimal_backoff_time / maximal_backoff_time). Microseconds; never 0.
 */
uint64_t relay_backoff_delay_us(const struct relay_config *cfg,
    uint32_t attempts);

/* The next attempt after a failure at now_us: now_us plus the delay. */
uint64_t relay_backoff_next_us(const struct relay_config *cfg,
    uint32_t attempts, uint64_t now_us);

/*
 * When a message that arrived at arrival_us stops being retried
 * (arrival + max_queue_lifetime): the "Will-Retry-Until" of a delay DSN
 * (RFC 3464 2.3.9).
 */
uint64_t relay_backoff_expires_us(const struct relay_config *cfg,
    uint64_t arrival_us);

/*
 * Whether a recipient still failing temporarily at now_us has outlived
 * its queue lifetime and bounces with its 4.x.x status (RFC 3464 2.3.4).
 */
bool relay_backoff_expired(const struct relay_config *cfg, uint64_t arrival_us,
    uint64_t now_us);

/*
 * Whether a message that arrived at arrival_us is delayed enough at now_us
 * for the "delayed" DSN (RFC 3464 2.3.3 action delayed): delay_warning_time
 * has passed, and the warning is enabled (non-zero).
 */
bool relay_backoff_warn_due(const struct relay_config *cfg, uint64_t arrival_us,
    uint64_t now_us);

#endif
