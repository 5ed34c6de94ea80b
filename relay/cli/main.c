/*
 * danerelay: command-line entry point and subcommand dispatch table.
 *
 *     danerelay [-c FILE] SUBCOMMAND [ARGS...]
 *
 * Exit status: 0 success, 1 error, 2 usage error (relay_cli.h).
 */
#include <ctype.h>
#include <getopt.h>
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
	/* relay_cli_check.c, relay_cli_status.c. */
	{ "check", relay_cli_check, "check [-c FILE] [--no-dns]" },
	{ "status", relay_cli_status, "status [-c FILE] [--json]" },
	/* relay_cli_queue.c. */
	{ "queue", relay_cli_queue,
	    "queue list [-c FILE] [--json] [--domain D] [--class C] "
	    "[--older-than DURATION]\n"
	    "  danerelay queue show [-c FILE] [--json] ID\n"
	    "  danerelay queue hold|release|delete|retry [-c FILE] ID... | --all" },
	{ "report", relay_cli_report, "report [-c FILE] [--json] [--mail]" },
	/* relay_cli_dns.c, relay_cli_tlsa.c. */
	{ "dns", relay_cli_dns, "dns flush [-c FILE] [NAME]" },
	{ "tlsa", relay_cli_tlsa, "tlsa [--chain] [--host MXHOST] CERT.pem" },
	/* relay_cli_metrics.c. */
	{ "metrics", relay_cli_metrics, "metrics [-c FILE]" },
	/* relay_cli_tlsrpt.c. */
	{ "tlsrpt", relay_cli_tlsrpt,
	    "tlsrpt show [-c FILE] [--date YYYY-MM-DD] [DOMAIN]\n"
	    "  danerelay tlsrpt send [-c FILE] [--date YYYY-MM-DD] "
	    "[--wait SECONDS]" },
	/* relay_probe.c. */
	{ "probe", relay_cli_probe, "probe [-c FILE] [--json] DOMAIN" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: danerelay [-c FILE] SUBCOMMAND [ARGS...]\n"
	    "subcommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  danerelay %s\n", commands[i].usage);
	fprintf(out,
	    "configuration: -c FILE, else $DANERELAY_CONF, else "
	    "%s\n",
	    RELAY_CLI_DEFAULT_CONF);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	/* Global options come before the subcommand: '+' stops at the first
	 * word that is not an option, which leaves the subcommand's own
	 * options to it. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			relay_cli_set_global_config(optarg);
			break;
		case 'h':
			usage(stdout);
			return fflush(stdout) == 0 ? RELAY_CLI_EXIT_OK
			                           : RELAY_CLI_EXIT_ERROR;
		case 'V': {
			char *v[] = { argv[0], NULL };
			return relay_cli_version(1, v);
		}
		case ':':
			fprintf(stderr,
			    "danerelay: option -c needs a file name "
			    "(try danerelay --help)\n");
			return RELAY_CLI_EXIT_USAGE;
		default:
			if (optopt > 0 && optopt < 128 && isprint(optopt))
				fprintf(stderr,
				    "danerelay: unknown option -%c (try "
				    "danerelay --help)\n",
				    optopt);
			else
				fprintf(stderr,
				    "danerelay: unknown option %s (try "
				    "danerelay --help)\n",
				    argv[optind - 1]);
			return RELAY_CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr,
		    "danerelay: missing subcommand (try danerelay "
		    "--help)\n");
		return RELAY_CLI_EXIT_USAGE;
	}
	for (size_t k = 0; k < NCOMMANDS; k++)
		if (strcmp(argv[optind], commands[k].name) == 0)
			return commands[k].run(argc - optind, argv + optind);
	fprintf(stderr,
	    "danerelay: unknown subcommand \"%s\" (try danerelay "
	    "--help)\n",
	    argv[optind]);
	return RELAY_CLI_EXIT_USAGE;
}
