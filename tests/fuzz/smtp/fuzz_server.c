/* Fuzz target: the server session. Byte 0 picks the configuration, byte 1
 * the feed chunk size; the rest is what the client sends. Invariant: the
 * output is always a sequence of well-formed replies. */
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_output(struct smtp_server *s, struct smtp_buf *acc)
{
	size_t n;
	const uint8_t *p = smtp_server_output(s, &n);
	if (n > 0) {
		if (smtp_buf_append(acc, p, n) < 0)
			abort();
		smtp_server_output_consume(s, n);
	}
	/* Every complete reply in the output parses. */
	for (;;) {
		struct smtp_reply r;
		int k =
		    smtp_reply_parse(smtp_buf_data(acc), smtp_buf_len(acc), &r);
		if (k == SMTP_ERR_AGAIN)
			break;
		if (k < 0)
			abort();
		smtp_buf_consume(acc, (size_t)k);
	}
}

struct state {
	unsigned verdicts;
	bool closed, tls;
};

static void
pump(struct smtp_server *s, struct smtp_buf *acc, struct state *st)
{
	for (;;) {
		struct smtp_server_event ev;
		if (smtp_server_next(s, &ev) != 0)
			abort();
		if (ev.type == SMTP_SERVER_EV_NONE) {
			size_t n;
			smtp_server_output(s, &n);
			check_output(s, acc);
			if (n == 0)
				return;
			continue;
		}
		if (ev.type == SMTP_SERVER_EV_CLOSE)
			st->closed = true;
		if (ev.type == SMTP_SERVER_EV_STARTTLS)
			st->tls = true;
		if (ev.needs_verdict) {
			int rc = (st->verdicts++ % 3 == 2)
			    ? smtp_server_reply(s, 451, "4.3.0", "later")
			    : smtp_server_accept(s);
			if (rc != 0)
				abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct smtp_server_config cfg = { .hostname = "fuzz.test" };
	cfg.starttls = data[0] & 1;
	cfg.decide_mail = data[0] & 2;
	cfg.decide_rcpt = data[0] & 4;
	cfg.reject = (data[0] & 0x18) == 0x18;
	if (data[0] & 0x20)
		cfg.max_message_size = 64;
	size_t chunk = data[1] ? data[1] : 1;
	data += 2;
	size -= 2;
	struct smtp_server *s = smtp_server_new(&cfg);
	if (s == NULL)
		abort();
	struct smtp_buf acc;
	smtp_buf_init(&acc, 1u << 20);
	struct state st = { 0 };
	pump(s, &acc, &st);
	size_t pos = 0;
	while (!st.closed) {
		if (st.tls) {
			st.tls = false;
			if (smtp_server_tls_started(s) != 0)
				abort();
		} else if (pos >= size) {
			if (smtp_server_eof(s) != 0)
				abort();
		} else {
			size_t n = size - pos < chunk ? size - pos : chunk;
			int rc = smtp_server_feed(s, data + pos, n);
			if (rc != 0 && rc != SMTP_ERR_FULL)
				abort();
			pos += n;
		}
		pump(s, &acc, &st);
	}
	smtp_buf_free(&acc);
	smtp_server_free(s);
	return 0;
}
