/* Fuzz target: line scanner, command parser and the DATA decoder. */
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = 0;
	while (pos < size) {
		size_t ll = 0;
		int n = smtp_line_scan(data + pos, size - pos,
		    SMTP_CMD_LINE_MAX, &ll);
		if (n == SMTP_ERR_BARE_NL) {
			pos += ll;
			continue;
		}
		if (n <= 0)
			break;
		struct smtp_cmd c;
		int rc = smtp_cmd_parse(data + pos, (size_t)n, &c);
		if (rc == 0 &&
		    (c.verb == SMTP_VERB_MAIL || c.verb == SMTP_VERB_RCPT)) {
			char buf[SMTP_PATH_MAX + 1];
			if (smtp_addr_format(&c.addr, buf, sizeof(buf)) < 0)
				abort();
		}
		pos += (size_t)n;
	}
	/* The same bytes as DATA content, in place, in two pieces. */
	uint8_t *copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	struct smtp_data_dec d;
	smtp_data_dec_init(&d, 0);
	size_t half = size / 2, out = 0, used = 0;
	long u = smtp_data_decode(&d, copy, half, copy, &out);
	if (u < 0 || (size_t)u > half || out > (size_t)u)
		abort();
	used = (size_t)u;
	if (!d.done) {
		u = smtp_data_decode(&d, copy + used, size - used, copy + used,
		    &out);
		if (u < 0 || out > (size_t)u)
			abort();
	}
	free(copy);
	return 0;
}
