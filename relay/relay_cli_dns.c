/*
 * relay_cli_dns: `danerelay dns flush [-c FILE] [NAME]` (issue 6 item 7).
 *
 * Asks the running `serve` over its control socket (relay_control.h,
 * request "dns-flush [NAME]") to empty its DNS cache. libunbound cannot
 * drop one name or flush a context, so the daemon builds a fresh resolver
 * context from the same configuration and retires the old one once the
 * lookups in flight on it are answered (relay_serve_dns_flush()). NAME is
 * checked and logged; the whole cache goes either way.
 *
 * There is no cache without a daemon: with no control socket answering,
 * this says so and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "relay_cli.h"
#include "relay_control.h"

static int
dns_usage(void)
{
	return relay_cli_usage("dns", "usage: danerelay dns flush [-c FILE] "
	    "[NAME]");
}

static void
flush_result(void *arg, const char *id, int status, const char *text)
{
	int *failed = arg;

	(void)id;
	if (status != 0) {
		*failed = 1;
		fprintf(stderr, "danerelay dns flush: %s\n", text);
	} else {
		printf("%s\n", text);
	}
}

int
relay_cli_dns(int argc, char **argv)
{
	const char *sub_conf = NULL, *name = NULL;

	if (argc < 2 || strcmp(argv[1], "flush") != 0)
		return dns_usage();
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			sub_conf = argv[++i];
		else if (argv[i][0] == '-' || name != NULL)
			return dns_usage();
		else
			name = argv[i];
	}
	if (name != NULL && (strlen(name) == 0 || strlen(name) > 254))
		return relay_cli_usage("dns", "not a domain name: %s", name);

	struct relay_config cfg;
	if (relay_cli_load_config("dns", sub_conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;

	struct relay_control_client cl;
	char err[512] = "";
	int failed = 0;
	int rc = RELAY_CLI_EXIT_ERROR;
	int r = relay_control_client_connect(&cl, cfg.spool_dir, err, sizeof(err));
	if (r == RELAY_CONTROL_ENOENT) {
		fprintf(stderr, "danerelay dns flush: no running serve for spool "
		    "%s (no control socket answers); only a running daemon has "
		    "a DNS cache\n", cfg.spool_dir);
		goto out;
	}
	if (r != 0) {
		fprintf(stderr, "danerelay dns flush: %s\n", err);
		goto out;
	}
	const char *ids[1] = { name };
	r = relay_control_client_run(&cl, "dns-flush", ids, name != NULL ? 1 : 0,
	    false, flush_result, &failed, err, sizeof(err));
	relay_control_client_close(&cl);
	if (r != 0) {
		fprintf(stderr, "danerelay dns flush: %s\n", err);
		goto out;
	}
	if (!failed && fflush(stdout) == 0)
		rc = RELAY_CLI_EXIT_OK;
out:
	relay_config_free(&cfg);
	return rc;
}
