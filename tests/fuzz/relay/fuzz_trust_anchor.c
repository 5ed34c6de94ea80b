/*
 * Fuzz target: the trust anchor syntax check of `danerelay check`.
 * Invariants: it never reads past size; a success counts at least one
 * record; a failure has a reason.
 */
#include <stdint.h>
#include <stdlib.h>

#include "relay_dns_ta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_dns_ta_result res;
	int r = relay_dns_ta_check(data, size, &res);
	if (r == 0 && res.ds + res.dnskey == 0)
		abort();
	if (r != 0 && res.why[0] == '\0')
		abort();
	return 0;
}
