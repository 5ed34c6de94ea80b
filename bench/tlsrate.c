/*
 * tlsrate: machine limit for STARTTLS sessions against an SMTP server.
 *
 *   tlsrate HOST PORT WORKERS SECONDS MODE
 *
 * MODE "handshake": connect, read the greeting, EHLO, STARTTLS, full TLS
 * handshake (no session resumption, no certificate verification: only the
 * cost of the handshake itself), close.  MODE "message": the same, then EHLO,
 * MAIL, RCPT, DATA with a 4 KiB body and QUIT over TLS: one message per
 * connection, the most a sink can take from a relay that does not reuse
 * connections.  WORKERS processes run in parallel for SECONDS; the total
 * count and the rate go to stdout as "count=N seconds=S rate=R".
 * The RCPT address for MODE "message" is taken from the environment
 * (TLSRATE_RCPT), so the sink log can tell these messages apart.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read one complete SMTP reply (last line "DDD "); 1 if its code is 2xx/3xx. */
static int
plain_reply(int fd)
{
	char buf[4096];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			return 0;
		n += (size_t)r;
		buf[n] = '\0';
		char *last = buf, *nl;
		while ((nl = strstr(last, "\r\n")) != NULL && nl[2] != '\0')
			last = nl + 2;
		if (strstr(last, "\r\n") != NULL && strlen(last) >= 4 &&
		    last[3] == ' ')
			return buf[0] == '2' || buf[0] == '3';
		if (n >= sizeof(buf) - 1)
			return 0;
	}
}

static int
tls_reply(SSL *s)
{
	char buf[4096];
	size_t n = 0;
	for (;;) {
		int r = SSL_read(s, buf + n, (int)(sizeof(buf) - 1 - n));
		if (r <= 0)
			return 0;
		n += (size_t)r;
		buf[n] = '\0';
		char *last = buf, *nl;
		while ((nl = strstr(last, "\r\n")) != NULL && nl[2] != '\0')
			last = nl + 2;
		if (strstr(last, "\r\n") != NULL && strlen(last) >= 4 &&
		    last[3] == ' ')
			return buf[0] == '2' || buf[0] == '3';
		if (n >= sizeof(buf) - 1)
			return 0;
	}
}

static int
tls_cmd(SSL *s, const char *c)
{
	size_t len = strlen(c);
	return SSL_write(s, c, (int)len) == (int)len && tls_reply(s);
}

static int
one(SSL_CTX *ctx, const struct sockaddr_in *sa, int message, const char *rcpt,
    const char *body, size_t body_len)
{
	int ok = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0)
		goto out;
	if (!plain_reply(fd))
		goto out;
	static const char ehlo[] = "EHLO tlsrate.bench\r\n";
	static const char stls[] = "STARTTLS\r\n";
	if (write(fd, ehlo, sizeof(ehlo) - 1) != (ssize_t)(sizeof(ehlo) - 1) ||
	    !plain_reply(fd))
		goto out;
	if (write(fd, stls, sizeof(stls) - 1) != (ssize_t)(sizeof(stls) - 1) ||
	    !plain_reply(fd))
		goto out;
	SSL *s = SSL_new(ctx);
	if (s == NULL)
		goto out;
	SSL_set_fd(s, fd);
	if (SSL_connect(s) == 1) {
		if (!message) {
			ok = 1;
		} else {
			char rc[512];
			snprintf(rc, sizeof(rc), "RCPT TO:<%s>\r\n", rcpt);
			ok = tls_cmd(s, "EHLO tlsrate.bench\r\n") &&
			    tls_cmd(s,
			        "MAIL FROM:<tlsrate@bench.invalid>\r\n") &&
			    tls_cmd(s, rc) && tls_cmd(s, "DATA\r\n") &&
			    SSL_write(s, body, (int)body_len) ==
			        (int)body_len &&
			    tls_reply(s) && tls_cmd(s, "QUIT\r\n");
		}
		SSL_shutdown(s);
	}
	SSL_free(s);
out:
	close(fd);
	return ok;
}

int
main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr,
		    "usage: tlsrate HOST PORT WORKERS SECONDS handshake|message\n");
		return 2;
	}
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)strtoul(argv[2], NULL, 10));
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "tlsrate: bad address %s\n", argv[1]);
		return 2;
	}
	unsigned long workers = strtoul(argv[3], NULL, 10);
	double secs = strtod(argv[4], NULL);
	int message = strcmp(argv[5], "message") == 0;
	const char *rcpt = getenv("TLSRATE_RCPT");
	if (rcpt == NULL)
		rcpt = "tlsrate@bench0.drworld";
	if (workers < 1 || workers > 256 || secs <= 0) {
		fprintf(stderr, "tlsrate: bad workers or seconds\n");
		return 2;
	}
	/* 4 KiB message: headers, then lines of 'x', then the final dot. */
	static char body[4200];
	size_t bl = 0;
	bl += (size_t)snprintf(body, sizeof(body), "Subject: tlsrate\r\n\r\n");
	while (bl < 4096 - 80) {
		memset(body + bl, 'x', 76);
		bl += 76;
		body[bl++] = '\r';
		body[bl++] = '\n';
	}
	memcpy(body + bl, ".\r\n", 3);
	bl += 3;

	int pfd[2];
	if (pipe(pfd) != 0)
		return 1;
	double t0 = now();
	for (unsigned long w = 0; w < workers; w++) {
		pid_t p = fork();
		if (p < 0)
			return 1;
		if (p == 0) {
			close(pfd[0]);
			SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
			if (ctx == NULL)
				_exit(1);
			SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
			SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
			SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
			unsigned long cnt = 0, fail = 0;
			while (now() - t0 < secs) {
				if (one(ctx, &sa, message, rcpt, body, bl))
					cnt++;
				else if (++fail > 100)
					break;
			}
			unsigned long res[2] = { cnt, fail };
			if (write(pfd[1], res, sizeof(res)) !=
			    (ssize_t)sizeof(res))
				_exit(1);
			_exit(0);
		}
	}
	close(pfd[1]);
	unsigned long total = 0, fails = 0, res[2];
	while (read(pfd[0], res, sizeof(res)) == (ssize_t)sizeof(res)) {
		total += res[0];
		fails += res[1];
	}
	while (wait(NULL) > 0)
		;
	double el = now() - t0;
	printf("count=%lu failed=%lu seconds=%.2f rate=%.1f\n", total, fails,
	    el, (double)total / el);
	return 0;
}
