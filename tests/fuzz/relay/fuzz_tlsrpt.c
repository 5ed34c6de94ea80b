/*
 * Fuzz target: the TLS reporting parsers (relay_tlsrpt.h): the _smtp._tls
 * TXT record (RFC 8460 3) and the journal lines a restart reads back.
 * Invariants: the record parser never reads past len and gives only
 * mailto:/https: URIs without control bytes; a journal that loads
 * re-serialises to lines that load to the same counts (the store's replay
 * is exact), and its good length never exceeds the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_record(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);
	if (p == NULL)
		return;
	memcpy(p, data, size); /* exactly size bytes: ASan sees an overread */
	struct relay_tlsrpt_record rec;
	if (relay_tlsrpt_record_parse(p, size, &rec) == 0) {
		if (rec.nrua == 0 || rec.nrua > RELAY_TLSRPT_RUA_MAX)
			abort();
		for (size_t i = 0; i < rec.nrua; i++) {
			const char *u = rec.rua[i].uri;
			if (memchr(u, '\0', sizeof(rec.rua[i].uri)) == NULL)
				abort();
			for (; *u; u++)
				if ((unsigned char)*u <= 0x20 ||
				    (unsigned char)*u >= 0x7f)
					abort();
		}
	}
	free(p);
}

static void
check_journal(const uint8_t *data, size_t size)
{
	struct relay_tlsrpt_table t, u;
	relay_tlsrpt_table_init(&t);
	relay_tlsrpt_table_init(&u);
	size_t good = 0;
	if (relay_tlsrpt_table_load(&t, (const char *)data, size, &good,
	        NULL) == 0) {
		if (good > size)
			abort();
		for (size_t i = 0; i < t.nrows; i++) {
			char line[RELAY_TLSRPT_LINE_MAX];
			size_t n = relay_tlsrpt_table_line(&t.rows[i],
			    t.rows[i].count, line, sizeof(line));
			if (n == 0 ||
			    relay_tlsrpt_table_load(&u, line, n, NULL, NULL) !=
			        0)
				abort();
		}
		if (u.nrows != t.nrows)
			abort();
		for (size_t i = 0; i < t.nrows; i++)
			if (u.rows[i].count != t.rows[i].count)
				abort();
	}
	relay_tlsrpt_table_free(&t);
	relay_tlsrpt_table_free(&u);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_record(data, size);
	check_journal(data, size);
	return 0;
}
