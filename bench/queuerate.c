/*
 * queuerate: CPU per 1,000 messages of the queue alone (relay_queue.c):
 * receive, commit and remove N messages of 4 KiB, ten at a time, in a real
 * spool, and print the process's user + system CPU per 1,000 messages
 * (thread-pool threads included). It isolates the spool from the SMTP, TLS
 * and DNS work of `bench/run.sh`, so an A/B of a queue change is not lost
 * in the noise of a shared machine (BENCHMARKS.md, "CPU profile of the
 * queue"). Build from the top of the tree after `ninja -C build`:
 *
 *   cc -O2 -Irelay/queue -Irelay/base -Ismtp -Itlsa -Ibuild \
 *     -o /tmp/queuerate bench/queuerate.c relay/queue/relay_queue.c \
 *     relay/queue/relay_queue_env.c relay/queue/relay_queue_pool.c \
 *     build/relay/base/librelay_base.a build/smtp/libsmtp.a \
 *     build/tlsa/libtlsa.a -luv -lssl -lcrypto -lunbound -lm
 *   /tmp/queuerate SPOOL_DIR N
 *
 * SPOOL_DIR must not exist yet (a fresh spool per run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "relay_log.h"
#include "relay_queue.h"

#define BATCH 10

static int pending;

static void
committed(struct relay_queue_writer *w, int status, const char *id, void *arg)
{
	(void)w;
	if (status != 0) {
		fprintf(stderr, "commit: %s\n", relay_queue_strerror(status));
		exit(1);
	}
	memcpy(arg, id, RELAY_QUEUE_ID_SIZE);
	pending--;
}

static void
removed(int status, void *arg)
{
	(void)arg;
	if (status != 0) {
		fprintf(stderr, "remove: %s\n", relay_queue_strerror(status));
		exit(1);
	}
	pending--;
}

static double
cpu_s(void)
{
	struct rusage r;

	(void)getrusage(RUSAGE_SELF, &r);
	return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
	    (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

int
main(int argc, char **argv)
{
	static char body[4096];
	char ids[BATCH][RELAY_QUEUE_ID_SIZE], err[256];
	struct relay_queue_envelope *env;
	struct relay_queue *q;
	uv_loop_t loop;
	double c0;
	int n = 0;

	if (argc == 3)
		n = (int)strtol(argv[2], NULL, 10);
	if (argc != 3 || n <= 0 || n > 1000000) {
		fprintf(stderr, "usage: queuerate SPOOL_DIR N\n");
		return 2;
	}
	relay_log_set_stderr(false);
	if (uv_loop_init(&loop) != 0 ||
	    relay_queue_open(&loop, argv[1], &q, err, sizeof(err)) != 0) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	env = relay_queue_envelope_new();
	if (env == NULL ||
	    relay_queue_set_str(&env->sender, "a@example.org") != 0 ||
	    relay_queue_rcpt_add(env, "b@example.net", "", 0, NULL) != 0)
		return 1;
	memset(body, 'x', sizeof(body));
	c0 = cpu_s();
	for (int i = 0; i < n; i += BATCH) {
		for (int k = 0; k < BATCH; k++) {
			struct relay_queue_writer *w;

			if (relay_queue_msg_begin(q, env, &w) != 0 ||
			    relay_queue_writer_write(w, body, sizeof(body),
			        NULL, NULL) != 0 ||
			    relay_queue_writer_commit(w, committed, ids[k]) !=
			        0)
				return 1;
			pending++;
		}
		(void)uv_run(&loop, UV_RUN_DEFAULT);
		for (int k = 0; k < BATCH; k++) {
			if (relay_queue_remove(q, ids[k], removed, NULL) != 0)
				return 1;
			pending++;
		}
		(void)uv_run(&loop, UV_RUN_DEFAULT);
	}
	printf("cpu_s_per_1000=%.3f\n", (cpu_s() - c0) / n * 1000);
	relay_queue_envelope_free(env);
	relay_queue_close(q, NULL, NULL);
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&loop);
	return pending == 0 ? 0 : 1;
}
