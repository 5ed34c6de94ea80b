/*
 * relay_cli_serve: `danerelay serve [-c FILE]`: the command line of the
 * daemon. Everything after loading the configuration is daemon/'s.
 */
#include <getopt.h>
#include <stddef.h>

#include "relay_cli.h"
#include "relay_daemon.h"

static const char serve_synopsis[] = "danerelay serve [-c FILE]";

int
relay_cli_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sub_conf = NULL;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (c == 'c')
			sub_conf = optarg;
		else if (c == 'h')
			return relay_cli_help(serve_synopsis);
		else
			return relay_cli_bad_option("serve", serve_synopsis, c,
			    argv);
	}
	if (optind < argc)
		return relay_cli_usage("serve", "takes no arguments; usage: %s",
		    serve_synopsis);
	struct relay_config cfg;
	if (relay_cli_load_config("serve", sub_conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;
	return relay_daemon_run(&cfg, relay_cli_config_path(sub_conf)) == 0
	    ? RELAY_CLI_EXIT_OK
	    : RELAY_CLI_EXIT_ERROR;
}
