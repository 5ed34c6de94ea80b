/*
 * Fuzz target: the MTA-STS parsers (RFC 8461): TXT record, policy file and
 * the cache file around it. Invariants: never read past size; an id that
 * parses is 1..32 alphanumerics; a policy that parses has a known mode,
 * max_age within the cap, mx patterns NUL-terminated and matchable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char id[RELAY_STS_ID_MAX + 1];
	if (relay_sts_txt_parse(data, size, id) == 0) {
		size_t n = strlen(id);
		if (n < 1 || n > RELAY_STS_ID_MAX)
			abort();
	}
	struct relay_sts_policy p;
	if (relay_sts_policy_parse(data, size, &p) == 0) {
		if (p.max_age > RELAY_STS_MAX_AGE_CAP ||
		    p.n_mx > RELAY_STS_MX_MAX ||
		    (p.mode != RELAY_STS_MODE_NONE && p.n_mx == 0))
			abort();
		for (size_t i = 0; i < p.n_mx; i++) {
			const char *m = p.mx[i];
			if (memchr(m, '\0', sizeof(p.mx[i])) == NULL)
				abort();
			/* A pattern matches the name it describes: itself, or
			 * for "*.rest" one more label on rest (RFC 8461 4.1). */
			char host[RELAY_STS_NAME_MAX + 2];
			if (m[0] == '*') {
				host[0] = 'x';
				memcpy(host + 1, m + 1, strlen(m));
			} else {
				memcpy(host, m, strlen(m) + 1);
			}
			if (!relay_sts_mx_match(&p, host))
				abort();
		}
	}
	uint64_t fetched;
	if (relay_sts_cache_parse(data, size, id, &fetched, &p) == 0 &&
	    p.max_age > RELAY_STS_MAX_AGE_CAP)
		abort();
	return 0;
}
