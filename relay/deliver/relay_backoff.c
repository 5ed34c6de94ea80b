/*
 * relay_backoff: see relay_backoff.h.
 */
#include "relay_backoff.h"

uint64_t
relay_backoff_delay_us(const struct relay_config *cfg, uint32_t attempts)
{
	uint64_t ms = cfg->retry_min_ms;
	for (uint32_t i = 1; i < attempts && ms < cfg->retry_max_ms; i++)
		ms *= 2;
	if (ms > cfg->retry_max_ms)
		ms = cfg->retry_max_ms;
	/* The configuration refuses a retry_min below one second; a zero
	 * here would retry in a tight loop, so it never is. */
	if (ms == 0)
		ms = 1000;
	return ms * 1000;
}

uint64_t
relay_backoff_next_us(const struct relay_config *cfg, uint32_t attempts,
    uint64_t now_us)
{
	return now_us + relay_backoff_delay_us(cfg, attempts);
}

uint64_t
relay_backoff_expires_us(const struct relay_config *cfg, uint64_t arrival_us)
{
	return arrival_us + cfg->max_queue_lifetime_ms * 1000;
}

bool
relay_backoff_expired(const struct relay_config *cfg, uint64_t arrival_us,
    uint64_t now_us)
{
	return now_us >= relay_backoff_expires_us(cfg, arrival_us);
}

bool
relay_backoff_warn_due(const struct relay_config *cfg, uint64_t arrival_us,
    uint64_t now_us)
{
	return cfg->delay_warning_time_ms > 0 &&
	    now_us >= arrival_us + cfg->delay_warning_time_ms * 1000;
}
