/*
 * Fuzz target: the tls_policy_file parser (domain, level, until=, reason=).
 * Invariants: an error comes with one line naming the file and leaves no
 * entries; on success every entry has a lower-case domain, a reason
 * without control characters, an until= text that is a date whose day
 * number the lookup functions accept, and a lookup of each domain finds an
 * entry at a time before its date.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_tls_policy_entry *e = NULL;
	size_t n = 0;
	char err[RELAY_CONFIG_ERRMAX];
	err[0] = '\0';
	int r = relay_tls_policy_parse("p", data, size, &e, &n, err);
	if (r != 0) {
		if (strncmp(err, "p:", 2) != 0 || strchr(err, '\n') != NULL ||
		    e != NULL || n != 0)
			abort();
		return 0;
	}
	struct relay_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.tls_policy = e;
	cfg.tls_policy_count = n;
	for (size_t i = 0; i < n; i++) {
		const struct relay_tls_policy_entry *x = &e[i];
		for (const char *p = x->domain; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				abort();
		for (const char *p = x->reason; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		if (x->has_until != (x->until[0] != '\0') ||
		    (x->has_until &&
		        (strlen(x->until) != 10 || x->until_day < 0)))
			abort();
		uint64_t at = x->has_until
		    ? (uint64_t)x->until_day * 86400u * 1000000u
		    : 0;
		const char *d = x->domain[0] == '.' ? x->domain + 1 : x->domain;
		/* The lookup takes names of at most 253 characters (RFC 1035
		 * 2.3.4); the file allows a trailing dot beyond that. */
		if (x->domain[0] != '.' && strlen(d) <= 253 &&
		    relay_config_tls_policy_entry(&cfg, d, strlen(d), at,
		        NULL) != x)
			abort();
	}
	relay_tls_policy_free(e, n);
	return 0;
}
