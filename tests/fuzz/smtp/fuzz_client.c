/* Fuzz target: the client session. Byte 0 picks the configuration, byte 1
 * the feed chunk size; the rest is what the server sends. Invariant: every
 * started message gets one RCPT event per recipient, then one MESSAGE
 * event, and the session ends with exactly one DONE. */
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct smtp_client_rcpt rcpts[3] = {
	{ "a@x.test", SMTP_NOTIFY_FAILURE, "rfc822;a@x.test" },
	{ "b@y.test", 0, NULL },
	{ "c@z.test", SMTP_NOTIFY_NEVER, NULL },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct smtp_client_config cfg = { .helo_name = "relay.test" };
	cfg.tls = (enum smtp_tls_mode)(data[0] % 3);
	cfg.allow_helo = data[0] & 4;
	cfg.no_pipelining = data[0] & 8;
	cfg.use_chunking = data[0] & 16;
	size_t chunk = data[1] ? data[1] : 1;
	data += 2;
	size -= 2;
	struct smtp_client *c = smtp_client_new(&cfg);
	if (c == NULL)
		abort();
	struct smtp_envelope env = { .sender = "s@a.test",
		.rcpts = rcpts,
		.nrcpts = 3,
		.size = 10,
		.ret = SMTP_RET_FULL,
		.envid = "E1",
		.body = SMTP_BODY_8BITMIME };
	if (smtp_client_start_message(c, &env) != 0)
		abort();
	size_t next_rcpt = 0;
	int messages = 0, started = 1, dones = 0;
	bool tls = false, eof_sent = false;
	size_t pos = 0;
	while (dones == 0) {
		if (tls) {
			tls = false;
			if (smtp_client_tls_started(c) != 0)
				abort();
		}
		for (;;) {
			struct smtp_client_event ev;
			if (smtp_client_next(c, &ev) != 0)
				abort();
			if (ev.type == SMTP_CLIENT_EV_NONE)
				break;
			switch (ev.type) {
			case SMTP_CLIENT_EV_NONE:
				break;
			case SMTP_CLIENT_EV_STARTTLS:
				tls = true;
				break;
			case SMTP_CLIENT_EV_READY:
				if (started < 2) {
					started++;
					if (smtp_client_start_message(c,
					        &env) != 0)
						abort();
				} else if (smtp_client_quit(c) != 0) {
					abort();
				}
				break;
			case SMTP_CLIENT_EV_RCPT:
				if (ev.rcpt_index != next_rcpt++ ||
				    ev.result == NULL)
					abort();
				break;
			case SMTP_CLIENT_EV_SEND_BODY:
				if (smtp_client_body(c,
				        (const uint8_t *)"a\n.\r\nb", 6) != 0 ||
				    smtp_client_body_end(c) != 0)
					abort();
				break;
			case SMTP_CLIENT_EV_MESSAGE:
				if (next_rcpt != 3)
					abort();
				next_rcpt = 0;
				messages++;
				break;
			case SMTP_CLIENT_EV_DONE:
				dones++;
				break;
			}
			if (tls)
				break;
		}
		size_t n;
		smtp_client_output(c, &n);
		smtp_client_output_consume(c, n);
		if (dones || tls)
			continue;
		if (pos >= size) {
			if (eof_sent)
				abort(); /* EOF must always lead to DONE */
			eof_sent = true;
			if (smtp_client_eof(c) != 0)
				abort();
			continue;
		}
		n = size - pos < chunk ? size - pos : chunk;
		int rc = smtp_client_feed(c, data + pos, n);
		if (rc != 0 && rc != SMTP_ERR_FULL)
			abort();
		pos += n;
	}
	if (messages != started || next_rcpt != 0)
		abort();
	struct smtp_client_event ev;
	if (smtp_client_next(c, &ev) != 0 || ev.type != SMTP_CLIENT_EV_NONE)
		abort();
	smtp_client_free(c);
	return 0;
}
