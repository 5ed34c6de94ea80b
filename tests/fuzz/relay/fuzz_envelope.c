/*
 * Fuzz target: the queue's envelope file parser (relay/QUEUE.md format).
 * Invariant: whatever parses formats back to a file that parses again to
 * the same text (format/parse round trip), so a daemon restart never
 * changes a recipient's state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_queue_envelope *env = NULL;
	if (relay_queue_envelope_parse(data, size, &env) != 0)
		return 0;
	size_t len1 = 0, len2 = 0;
	char *t1 = relay_queue_envelope_format(env, &len1);
	relay_queue_envelope_free(env);
	if (t1 == NULL)
		return 0; /* out of memory */
	struct relay_queue_envelope *env2 = NULL;
	if (relay_queue_envelope_parse((const uint8_t *)t1, len1, &env2) != 0)
		abort(); /* our own output must parse */
	char *t2 = relay_queue_envelope_format(env2, &len2);
	relay_queue_envelope_free(env2);
	if (t2 != NULL && (len1 != len2 || memcmp(t1, t2, len1) != 0))
		abort();
	free(t1);
	free(t2);
	return 0;
}
