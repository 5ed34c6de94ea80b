#ifndef RELAY_DAEMON_H
#define RELAY_DAEMON_H
/*
 * relay_daemon: `danerelay serve` (relay_serve.c), the only place that
 * knows every layer and wires them together: the inbound sessions tell it
 * "message committed" and it kicks the scheduler; the control socket gets
 * hooks for kick, submit, dns flush and status.
 */
#include "relay_config.h"

/*
 * Runs the daemon until SIGTERM/SIGINT. cfg (loaded by the caller) is
 * taken over: its contents are freed before the return, whatever the
 * result. config_path (borrowed) is where SIGHUP reloads from. Returns 0
 * after a clean stop, 1 when the daemon could not start or the loop still
 * had open handles at the end (the exit status of `serve`).
 */
int relay_daemon_run(struct relay_config *cfg, const char *config_path)
    __attribute__((warn_unused_result));

#endif
