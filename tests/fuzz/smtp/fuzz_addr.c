/* Fuzz target: path and mailbox parser, domain normalisation. */
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned flags = data[0] & 7u;
	data++;
	size--;
	struct smtp_addr a;
	char buf[SMTP_PATH_MAX + 1];
	int n = smtp_addr_parse_path(data, size, flags, &a);
	if (n > 0) {
		if ((size_t)n > size || a.local.len > SMTP_LOCAL_PART_MAX ||
		    a.domain.len > SMTP_DOMAIN_MAX)
			abort();
		if (a.utf8 && !(flags & SMTP_ADDR_UTF8))
			abort();
		int k = smtp_addr_format(&a, buf, sizeof(buf));
		if (k < 0 || memchr(buf, '\r', (size_t)k) ||
		    memchr(buf, '\n', (size_t)k))
			abort();
		/* What we format parses again as a mailbox. */
		if (!a.null && !a.postmaster) {
			struct smtp_addr b;
			if (smtp_addr_parse_mailbox((const uint8_t *)buf,
			        (size_t)k, SMTP_ADDR_UTF8, &b) != 0)
				abort();
		}
	}
	if (smtp_addr_parse_mailbox(data, size, flags, &a) == 0 && !a.null) {
		if (smtp_addr_format(&a, buf, sizeof(buf)) < 0)
			abort();
	}
	return 0;
}
