/*
 * danerelay: command-line entry point and subcommand dispatch table.
 *
 *     danerelay [-c FILE] SUBCOMMAND [ARGS...]
 *
 * Exit status: 0 success, 1 error, 2 usage error (relay_cli.h).
 */
#include <stdio.h>
#include <string.h>

#include "relay_cli.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{ "version", relay_cli_version, "version" },
	{ "config", relay_cli_config,
	  "config [-c FILE] [-n | -d | --doc] [NAME...]" },
	{ "serve", relay_cli_serve, "serve [-c FILE]" },
	/* issue 6: relay_cli_queue.c. */
	{ "queue", relay_cli_queue,
	  "queue list [-c FILE] [--json] [--domain D] [--class C] "
	  "[--older-than DURATION]\n"
	  "  danerelay queue show [-c FILE] [--json] ID\n"
	  "  danerelay queue hold|release|delete|retry [-c FILE] ID... | --all" },
	{ "report", relay_cli_report, "report [-c FILE] [--json] [--mail]" },
	/* issue 6 item 7: relay_cli_dns.c, relay_cli_tlsa.c. */
	{ "dns", relay_cli_dns, "dns flush [-c FILE] [NAME]" },
	{ "tlsa", relay_cli_tlsa, "tlsa [--chain] [--host MXHOST] CERT.pem" },
	/* issue 6 item 6: relay_probe.c. */
	{ "probe", relay_cli_probe, "probe [-c FILE] [--json] DOMAIN" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *out)
{
	fprintf(out, "usage: danerelay [-c FILE] SUBCOMMAND [ARGS...]\n"
	    "subcommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  danerelay %s\n", commands[i].usage);
	fprintf(out, "configuration: -c FILE, else $DANERELAY_CONF, else "
	    "%s\n", RELAY_CLI_DEFAULT_CONF);
}

int
main(int argc, char **argv)
{
	int i = 1;

	/* Global options come before the subcommand. */
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0) {
			if (i + 1 >= argc)
				return relay_cli_usage("-c",
				    "option -c needs a file name");
			relay_cli_set_global_config(argv[i + 1]);
			i += 2;
		} else if (strncmp(argv[i], "-c", 2) == 0) {
			relay_cli_set_global_config(argv[i] + 2);
			i++;
		} else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return RELAY_CLI_EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0 ||
		    strcmp(argv[i], "-V") == 0) {
			char *v[] = { argv[i], NULL };
			return relay_cli_version(1, v);
		} else {
			fprintf(stderr, "danerelay: unknown option %s (try "
			    "danerelay --help)\n", argv[i]);
			return RELAY_CLI_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "danerelay: missing subcommand (try danerelay "
		    "--help)\n");
		return RELAY_CLI_EXIT_USAGE;
	}
	for (size_t k = 0; k < NCOMMANDS; k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			return commands[k].run(argc - i, argv + i);
	fprintf(stderr, "danerelay: unknown subcommand \"%s\" (try danerelay "
	    "--help)\n", argv[i]);
	return RELAY_CLI_EXIT_USAGE;
}
