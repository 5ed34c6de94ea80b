/*
 * relay_cli_dns: `danerelay dns flush [-c FILE] [NAME]`.
 *
 * Asks the running `serve` over its control socket (relay_control.h,
 * request "dns-flush [NAME]") to empty its DNS cache. libunbound cannot
 * drop one name or flush a context, so the daemon builds a fresh resolver
 * context from the same configuration and retires the old one once the
 * lookups in flight on it are answered (serve_dns_flush() in
 * daemon/relay_serve.c). NAME is checked and logged; the whole cache goes
 * either way.
 *
 * There is no cache without a daemon: with no control socket answering,
 * this says so and exits 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "relay_cli.h"
#include "relay_control.h"

static const char dns_synopsis[] = "danerelay dns flush [-c FILE] [NAME]";

int
relay_cli_dns(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sub_conf = NULL, *name = NULL;
	int c;

	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
		return relay_cli_help(dns_synopsis);
	if (argc >= 2 && argv[1][0] == '-')
		return relay_cli_usage("dns",
		    "unknown option %s before the "
		    "action; usage: %s",
		    argv[1], dns_synopsis);
	if (argc < 2 || strcmp(argv[1], "flush") != 0)
		return relay_cli_usage("dns", "%s%s%s; usage: %s",
		    argc < 2 ? "missing action" : "unknown action \"",
		    argc < 2 ? "" : argv[1], argc < 2 ? "" : "\"",
		    dns_synopsis);
	/* argv[1] (the action) plays argv[0] for getopt. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":c:h", longopts, NULL)) !=
	    -1) {
		if (c == 'c')
			sub_conf = optarg;
		else if (c == 'h')
			return relay_cli_help(dns_synopsis);
		else
			return relay_cli_bad_option("dns flush", dns_synopsis,
			    c, argv + 1);
	}
	if (argc - 1 - optind > 1)
		return relay_cli_usage("dns flush",
		    "at most one NAME; usage: %s", dns_synopsis);
	if (argc - 1 - optind == 1)
		name = argv[1 + optind];
	if (name != NULL && (strlen(name) == 0 || strlen(name) > 254))
		return relay_cli_usage("dns", "not a domain name: %s", name);

	struct relay_config cfg;
	if (relay_cli_load_config("dns", sub_conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;

	const char *args[1] = { name };
	int rc = relay_cli_control_lines("dns flush", cfg.spool_dir,
	    "dns-flush", args, name != NULL ? 1 : 0, "a DNS cache");
	relay_config_free(&cfg);
	return rc;
}
