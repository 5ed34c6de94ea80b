/*
 * Fuzz target: the bounded rdata parsers of relay_dns (MX, A, AAAA, wire-format
 * names; TLSA rdata is tlsa/'s, fuzzed there). Invariants: never read past len; a name that parses
 * is NUL-terminated within the output and made of the documented bytes.
 */
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#include "relay_dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[RELAY_DNS_HOST_MAX];
	int r = relay_dns_name_parse(data, size, name, sizeof(name));
	if (r > 0) {
		if ((size_t)r > size ||
		    memchr(name, '\0', sizeof(name)) == NULL)
			abort();
		for (const char *p = name; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') ||
			        (*p >= '0' && *p <= '9') || *p == '-' ||
			        *p == '_' || *p == '.' || *p == '?'))
				abort();
	}
	struct relay_dns_mx mx;
	if (relay_dns_mx_parse(data, size, &mx) == 0 &&
	    memchr(mx.host, '\0', sizeof(mx.host)) == NULL)
		abort();
	uint8_t a4[4], a6[16];
	if (relay_dns_a_parse(data, size, a4) == 0 && size != 4)
		abort();
	if (relay_dns_aaaa_parse(data, size, a6) == 0 && size != 16)
		abort();
	return 0;
}
