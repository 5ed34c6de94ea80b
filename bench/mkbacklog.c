/*
 * mkbacklog: writes N deferred messages straight into a spool's queue/,
 * as `serve` would have left them after one failed attempt each (QUEUE.md:
 * content queue/ID.msg, envelope queue/ID.env made by the queue's own
 * formatter), so that the backlog benchmark can build a large queue in
 * seconds instead of through SMTP. A bench tool only: nothing is fsync'd
 * and the spool must not be in use by a running `serve`.
 *
 *   mkbacklog SPOOL_DIR N DOMAIN [SIZE [RETRY_SPREAD_S]]
 *
 * Ids are consecutive microseconds ending a little before now, so that the
 * ids a later `serve` hands out sort after them. Each recipient was
 * deferred once with 4.7.5 (TLSA mismatch) and is due again between 1 h
 * and 1 h + RETRY_SPREAD_S (default 3600) from now.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "relay_queue.h"

static int
die(const char *what, const char *path)
{
	fprintf(stderr, "mkbacklog: %s %s: %s\n", what, path, strerror(errno));
	return 1;
}

static int
put_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, buf, len);
	if (close(fd) != 0 || n < 0 || (size_t)n != len)
		return -1;
	return 0;
}

static uint64_t
wall_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The content: a short header block, then lines of 'x' up to size bytes. */
static char *
make_content(const char *domain, size_t size, size_t *len)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
	    "From: <load@sender.example>\r\nTo: <bl@%s>\r\n"
	    "Subject: backlog\r\n\r\n",
	    domain);
	size_t hl = n > 0 ? (size_t)n : 0;
	size_t total = size > hl + 2 ? size : hl + 2;
	char *buf = malloc(total);

	if (buf == NULL)
		return NULL;
	memcpy(buf, head, hl);
	for (size_t i = hl; i < total; i++)
		buf[i] = (i - hl) % 78 == 76 ? '\r'
		    : (i - hl) % 78 == 77    ? '\n'
		                             : 'x';
	buf[total - 2] = '\r';
	buf[total - 1] = '\n';
	*len = total;
	return buf;
}

static int
fill(struct relay_queue_envelope *env, const char *domain, uint64_t now)
{
	struct relay_queue_rcpt *r;
	struct relay_queue_attempt *a;
	char rcpt[300];

	(void)snprintf(rcpt, sizeof(rcpt), "bl@%s", domain);
	if (relay_queue_set_str(&env->sender, "load@sender.example") != 0 ||
	    relay_queue_set_str(&env->client_addr, "127.0.0.1") != 0 ||
	    relay_queue_set_str(&env->client_name, "localhost") != 0 ||
	    relay_queue_set_str(&env->helo, "localhost") != 0 ||
	    relay_queue_rcpt_add(env, rcpt, "", 0, &r) != 0 ||
	    relay_queue_attempt_add(r, &a) != 0)
		return -1;
	r->status = RELAY_QUEUE_RCPT_DEFERRED;
	a->time_us = now;
	if (relay_queue_set_str(&r->dsn, "4.7.5") != 0 ||
	    relay_queue_set_str(&r->reason, "no TLSA record matched") != 0 ||
	    relay_queue_set_str(&r->failure_class, "tlsa-mismatch") != 0 ||
	    relay_queue_set_str(&a->mx_host, "mx1.mismatch.example") != 0 ||
	    relay_queue_set_str(&a->addr, "127.0.0.1") != 0 ||
	    relay_queue_set_str(&a->dnssec_mx, "secure") != 0 ||
	    relay_queue_set_str(&a->dnssec_addr, "secure") != 0 ||
	    relay_queue_set_str(&a->dnssec_tlsa, "secure") != 0 ||
	    relay_queue_set_str(&a->tlsa,
	        "3 1 1 "
	        "0000000000000000000000000000000000000000000000000000000000000000") !=
	        0 ||
	    relay_queue_set_str(&a->tls, "dane") != 0 ||
	    relay_queue_set_str(&a->matched, "mismatch") != 0 ||
	    relay_queue_set_str(&a->dsn, "4.7.5") != 0 ||
	    relay_queue_set_str(&a->status, "deferred") != 0 ||
	    relay_queue_set_str(&a->failure_class, "tlsa-mismatch") != 0 ||
	    relay_queue_set_str(&a->reason, "no TLSA record matched") != 0 ||
	    relay_queue_set_str(&a->policy, "dane") != 0)
		return -1;
	return 0;
}

/* Writes the n messages; returns the exit status. */
static int
write_all(const char *spool, struct relay_queue_envelope *env,
    const char *content, size_t clen, unsigned long long n, uint64_t now,
    unsigned long long spread)
{
	char path[4096];
	/* One microsecond apart, the last one a second before now. */
	uint64_t first = now - 1000000u - n;

	for (unsigned long long i = 0; i < n; i++) {
		char *text;
		size_t tlen;
		int bad;

		env->arrival_us = first + i;
		(void)snprintf(env->id, sizeof(env->id), "%014" PRIX64,
		    env->arrival_us);
		/* Spread the due times over the window, as retries of
		 * messages that arrived over time would be. */
		env->rcpt[0].next_attempt_us =
		    now + 3600u * 1000000u + (i * spread * 1000000u) / n;
		env->rcpt[0].attempts = 1;
		text = relay_queue_envelope_format(env, &tlen);
		if (text == NULL) {
			fprintf(stderr, "mkbacklog: out of memory\n");
			return 1;
		}
		(void)snprintf(path, sizeof(path), "%s/queue/%s.msg", spool,
		    env->id);
		bad = put_file(path, content, clen);
		if (bad == 0) {
			(void)snprintf(path, sizeof(path), "%s/queue/%s.env",
			    spool, env->id);
			bad = put_file(path, text, tlen);
		}
		free(text);
		if (bad != 0)
			return die("cannot write", path);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	char path[4096], *content;
	struct relay_queue_envelope *env;
	unsigned long long n, size = 4096, spread = 3600;
	size_t clen;
	uint64_t now = wall_us();
	int rc;

	if (argc < 4 || argc > 6) {
		fprintf(stderr,
		    "usage: mkbacklog SPOOL_DIR N DOMAIN [SIZE "
		    "[RETRY_SPREAD_S]]\n");
		return 2;
	}
	n = strtoull(argv[2], NULL, 10);
	if (argc > 4)
		size = strtoull(argv[4], NULL, 10);
	if (argc > 5)
		spread = strtoull(argv[5], NULL, 10);
	if (n == 0 || n > 100000000ull || spread == 0) {
		fprintf(stderr, "mkbacklog: bad N or RETRY_SPREAD_S\n");
		return 2;
	}
	static const char *const subs[] = { "", "/tmp", "/queue" };
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		(void)snprintf(path, sizeof(path), "%s%s", argv[1], subs[i]);
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return die("cannot create", path);
	}
	content = make_content(argv[3], (size_t)size, &clen);
	env = relay_queue_envelope_new();
	if (content == NULL || env == NULL || fill(env, argv[3], now) != 0) {
		fprintf(stderr, "mkbacklog: out of memory\n");
		rc = 1;
	} else {
		env->size = clen;
		rc = write_all(argv[1], env, content, clen, n, now, spread);
	}
	relay_queue_envelope_free(env);
	free(content);
	return rc;
}
