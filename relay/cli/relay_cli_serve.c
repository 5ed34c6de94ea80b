/*
 * relay_cli_serve: `danerelay serve [-c FILE]`: the command line of the
 * daemon. Everything after loading the configuration is daemon/'s.
 */
#include <stddef.h>

#include "relay_cli.h"
#include "relay_daemon.h"

static const char serve_synopsis[] = "danerelay serve [-c FILE]";

int
relay_cli_serve(int argc, char **argv)
{
	const char *sub_conf;
	int ex = relay_cli_conf_only("serve", serve_synopsis, argc, argv,
	    &sub_conf, NULL, 0);
	if (ex >= 0)
		return ex;
	struct relay_config cfg;
	if (relay_cli_load_config("serve", sub_conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;
	return relay_daemon_run(&cfg, relay_cli_config_path(sub_conf)) == 0
	    ? RELAY_CLI_EXIT_OK
	    : RELAY_CLI_EXIT_ERROR;
}
