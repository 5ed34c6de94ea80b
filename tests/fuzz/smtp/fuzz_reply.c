/* Fuzz target: reply parser, line iterator, capabilities, results. */
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = 0;
	while (pos < size) {
		struct smtp_reply r;
		int n = smtp_reply_parse(data + pos, size - pos, &r);
		if (n <= 0)
			break;
		if ((size_t)n > size - pos || r.code < 200 || r.code > 559 ||
		    r.nlines == 0)
			abort();
		/* A shorter prefix never gives a different success. */
		struct smtp_reply r2;
		int n2 = smtp_reply_parse(data + pos, (size_t)n - 1, &r2);
		if (n2 > 0)
			abort();
		size_t lp = 0, lines = 0;
		struct smtp_slice l;
		while (smtp_reply_line(&r, &lp, &l))
			lines++;
		if (lines != r.nlines)
			abort();
		struct smtp_caps caps;
		smtp_caps_parse(&r, &caps);
		struct smtp_result res;
		smtp_result_from_reply(&res, &r, SMTP_STAGE_RCPT);
		if (strlen(res.text) >= sizeof(res.text) ||
		    strchr(res.text, '\r') || strchr(res.text, '\n'))
			abort();
		pos += (size_t)n;
	}
	return 0;
}
