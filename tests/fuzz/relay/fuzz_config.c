/*
 * Fuzz target: the configuration file parser. Invariants: an error always
 * comes with a one-line message naming the file; a success leaves a
 * configuration that formats (danerelay config) without failing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
contains(const uint8_t *p, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(p + i, needle, n) == 0)
			return 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* tls_policy_file names a file on disk; keep the fuzzer off the
	 * file system. */
	if (contains(data, size, "tls_policy_file"))
		return 0;
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX];
	err[0] = '\0';
	int r = relay_config_load_buf(&cfg, "fuzz.conf", data, size, err);
	if (r != 0) {
		if (strncmp(err, "fuzz.conf", 9) != 0 ||
		    strchr(err, '\n') != NULL)
			abort();
		return 0;
	}
	FILE *out = fopen("/dev/null", "w");
	if (out != NULL) {
		if (relay_config_print(out, &cfg, RELAY_CONFIG_PRINT_ALL) != 0)
			abort();
		fclose(out);
	}
	relay_config_free(&cfg);
	return 0;
}
