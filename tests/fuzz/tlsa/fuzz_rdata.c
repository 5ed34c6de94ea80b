/*
 * Fuzz the TLSA rdata parser and classification. Input: a sequence of
 * records, each a 1-octet length then that many rdata octets (an RRset);
 * the whole input is also tried as one rdata and as presentation text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlsa_record one;
	int rc = tlsa_rdata_parse(data, size, &one);
	if (size < 3 && rc != TLSA_ERR_TRUNCATED)
		abort();
	if (size >= 3 && size <= TLSA_RDATA_MAX &&
	    (rc != (int)size || one.data_len != size - 3))
		abort();
	if (rc > 0) {
		enum tlsa_unusable why;
		int u = tlsa_rrset_classify(&one, 1, NULL, &why);
		if (u != (why == TLSA_USABLE ? 1 : 0))
			abort();
	}

	struct tlsa_record recs[TLSA_RRSET_MAX];
	size_t n = 0, off = 0;
	while (off < size && n < TLSA_RRSET_MAX) {
		size_t len = data[off++];
		if (len > size - off)
			len = size - off;
		if (tlsa_rdata_parse(data + off, len, &recs[n]) > 0)
			n++;
		off += len;
	}
	enum tlsa_unusable why[TLSA_RRSET_MAX];
	int usable = tlsa_rrset_classify(recs, n, NULL, why);
	if (usable < 0 || (size_t)usable > n)
		abort();
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		if (why[i] == TLSA_USABLE) {
			count++;
			if (recs[i].usage < 2 || recs[i].usage > 3) /* C49 */
				abort();
		}
	}
	if (count != usable)
		abort();
	uint8_t d[32];
	if (tlsa_rrset_digest(recs, n, d) != 0)
		abort();

	uint8_t buf[512];
	struct tlsa_record t;
	rc = tlsa_record_from_text((const char *)data, size, buf, sizeof(buf),
	    &t);
	if (rc == 0 && t.data_len > sizeof(buf))
		abort();
	struct tlsa_digests ds;
	if (tlsa_digests_parse((const char *)data, size, &ds) == 0 &&
	    (ds.n == 0 || ds.n > TLSA_DIGESTS_MAX))
		abort();
	return 0;
}
