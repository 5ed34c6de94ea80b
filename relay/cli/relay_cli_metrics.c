/*
 * relay_cli_metrics: `danerelay metrics [-c FILE]`.
 *
 * Prints the running `serve`'s counters in the Prometheus text format
 * 0.0.4, the same text its metrics_listen endpoint answers GET /metrics
 * with, fetched over the control socket (request "metrics",
 * relay_control.h). Counters live in the daemon: with no control socket
 * answering this says so and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "relay_cli.h"
#include "relay_control.h"

static const char metrics_synopsis[] = "danerelay metrics [-c FILE]";

int
relay_cli_metrics(int argc, char **argv)
{
	const char *sub_conf;
	int ex = relay_cli_conf_only("metrics", metrics_synopsis, argc, argv,
	    &sub_conf, NULL, 0);
	if (ex >= 0)
		return ex;

	struct relay_config cfg;
	if (relay_cli_load_config("metrics", sub_conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;

	int rc = relay_cli_control_lines("metrics", cfg.spool_dir, "metrics",
	    NULL, 0, "counters");
	relay_config_free(&cfg);
	return rc;
}
