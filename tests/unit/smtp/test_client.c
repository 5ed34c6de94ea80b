/* Tests for smtp_client.c: transcript tests (server replies in, exact
 * client bytes and events out), each with the server's bytes fed whole,
 * split at every offset and byte by byte, with identical results. */
#include "smtp_test.h"

#define F_MAY 0x1u
#define F_REQ 0x2u
#define F_HELO 0x4u   /* allow_helo */
#define F_NOPIPE 0x8u /* no_pipelining */
#define F_CHUNK 0x10u /* use_chunking */
#define F_TWO 0x20u   /* a second message on the same connection */
#define F_UTF8 0x40u  /* UTF-8 sender */
#define F_DSN 0x80u   /* DSN parameters and SIZE=100 */
#define F_ONE 0x100u  /* one recipient */
#define F_RTLS 0x200u /* REQUIRETLS message (RFC 8689) */

#define SB "220 mx.test ESMTP\r\n"
#define SE "250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
#define SE_TLS "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
#define SE_NOPIPE "250-mx.test\r\n250 8BITMIME\r\n"
#define CE "EHLO relay.test\r\n"
#define CENV                                                                   \
	"MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nDATA\r\n"
#define SENV "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n"
#define CBODY "Subject: t\r\n\r\nhi\r\n.\r\n"
#define SDOT "250 2.0.0 queued\r\n"
#define CQ "QUIT\r\n"
#define SQ "221 2.0.0 bye\r\n"
#define EV_OK "R0:250 2.1.5 R1:250 2.1.5 B M:250 2.0.0 dot READY DONE:2 reply"

struct crow {
	const char *name;
	unsigned flags;
	const char *server; /* "<TLS>" separates cleartext; "<EOF>" ends */
	const char *body;
	const char *out;
	const char *events;
};

static const struct crow rows[] = {
	{ "pipelined delivery", 0, SB SE SENV SDOT SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE CENV CBODY CQ, EV_OK },
	{ "without pipelining", 0,
	    SB SE_NOPIPE
	    "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT
	        SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE CENV CBODY CQ, EV_OK },
	{ "pipelining disabled by config", F_NOPIPE, SB SE SENV SDOT SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE CENV CBODY CQ, EV_OK },
	{ "STARTTLS when offered (MAY)", F_MAY,
	    SB SE_TLS "220 2.0.0 go ahead\r\n<TLS>" SE SENV SDOT SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE "STARTTLS\r\n" CE CENV CBODY CQ,
	    "T " EV_OK },
	{ "STARTTLS required and done", F_REQ,
	    SB SE_TLS "220 2.0.0 go ahead\r\n<TLS>" SE SENV SDOT SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE "STARTTLS\r\n" CE CENV CBODY CQ,
	    "T " EV_OK },
	{ "STARTTLS response injection discarded", F_REQ,
	    SB SE_TLS
	    "220 2.0.0 go ahead\r\n250 2.1.0 injected\r\n<TLS>" SE SENV SDOT SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE "STARTTLS\r\n" CE CENV CBODY CQ,
	    "T " EV_OK },
	{ "required but not offered", F_REQ, SB SE SQ, "x\r\n", CE CQ,
	    "R0:0 4.7.5 (starttls-not-offered) R1:0 4.7.5 (starttls-not-offered) "
	    "M:0 4.7.5 ehlo (starttls-not-offered) DONE:4 starttls-not-offered" },
	{ "required but refused", F_REQ,
	    SB SE_TLS "454 4.7.0 TLS not available\r\n" SQ, "x\r\n",
	    CE "STARTTLS\r\n" CQ,
	    "R0:454 4.7.5 (starttls-refused) R1:454 4.7.5 (starttls-refused) "
	    "M:454 4.7.5 starttls (starttls-refused) DONE:4 starttls-refused" },
	{ "MAY and refused continues in clear", F_MAY,
	    SB SE_TLS "454 4.7.0 TLS not available\r\n" SENV SDOT SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE "STARTTLS\r\n" CENV CBODY CQ,
	    EV_OK },
	{ "NONE ignores STARTTLS", 0, SB SE_TLS SENV SDOT SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE CENV CBODY CQ, EV_OK },
	{ "capabilities forgotten after TLS", F_MAY,
	    SB SE_TLS
	    "220 go\r\n<TLS>" SE_NOPIPE
	    "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT
	        SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE "STARTTLS\r\n" CE CENV CBODY CQ,
	    "T " EV_OK },
	{ "one recipient rejected", 0,
	    SB SE
	    "250 2.1.0 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT
	        SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE CENV CBODY CQ,
	    "R0:550 5.1.1 R1:250 2.1.5 B M:250 2.0.0 dot READY DONE:2 reply" },
	{ "all recipients rejected", 0,
	    SB SE
	    "250 2.1.0 ok\r\n550 5.1.1 no\r\n450 4.2.0 later\r\n554 5.5.1 no valid rcpt\r\n" SQ,
	    "x\r\n", CE CENV CQ,
	    "R0:550 5.1.1 R1:450 4.2.0 M:450 4.2.0 rcpt READY DONE:2 reply" },
	{ "354 although no recipient accepted", 0,
	    SB SE
	    "250 2.1.0 ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n354 go\r\n554 5.5.1 empty\r\n" SQ,
	    "x\r\n", CE CENV ".\r\n" CQ,
	    "R0:550 5.1.1 R1:550 5.1.1 M:550 5.1.1 rcpt READY DONE:2 reply" },
	{ "BDAT chunk refused", F_CHUNK | F_ONE,
	    SB
	    "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
	    "250 2.1.0 ok\r\n250 2.1.5 ok\r\n552 5.3.4 too big\r\n554 5.5.0 bad\r\n" SQ,
	    "a\n.b",
	    CE "MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\n"
	       "BDAT 5\r\na\r\n.bBDAT 2 LAST\r\n\r\n" CQ,
	    "R0:250 2.1.5 B M:552 5.3.4 bdat READY DONE:2 reply" },
	{ "sender rejected pipelined", 0,
	    SB SE
	    "553 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n"
	    "503 5.5.1 need MAIL\r\n" SQ,
	    "x\r\n", CE CENV CQ,
	    "R0:553 5.7.1 R1:553 5.7.1 M:553 5.7.1 mail READY DONE:2 reply" },
	{ "sender rejected unpipelined", 0,
	    SB SE_NOPIPE "553 5.7.1 sender refused\r\n" SQ, "x\r\n",
	    CE "MAIL FROM:<s@a.test>\r\n" CQ,
	    "R0:553 5.7.1 R1:553 5.7.1 M:553 5.7.1 mail READY DONE:2 reply" },
	{ "DATA refused", 0,
	    SB SE
	    "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n451 4.3.0 no data now\r\n" SQ,
	    "x\r\n", CE CENV CQ,
	    "R0:250 2.1.5 R1:250 2.1.5 M:451 4.3.0 data READY DONE:2 reply" },
	{ "250 to DATA is a protocol failure, not a delivery", 0,
	    SB SE
	    "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n250 2.0.0 what body\r\n" SQ,
	    "x\r\n", CE CENV CQ,
	    "R0:250 2.1.5 R1:250 2.1.5 M:250 4.5.0 data (protocol) DONE:4 protocol" },
	{ "content rejected", 0, SB SE SENV "550 5.7.1 spam\r\n" SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE CENV CBODY CQ,
	    "R0:250 2.1.5 R1:250 2.1.5 B M:550 5.7.1 dot READY DONE:2 reply" },
	{ "421 during envelope", 0, SB SE "250 2.1.0 ok\r\n421 4.4.2 bye\r\n",
	    "x\r\n", CE CENV,
	    "R0:421 4.4.2 R1:421 4.4.2 M:421 4.4.2 rcpt DONE:4 reply" },
	{ "connection lost during content", 0, SB SE SENV "<EOF>",
	    "Subject: t\r\n\r\nhi\r\n", CE CENV CBODY,
	    "R0:250 2.1.5 R1:250 2.1.5 B M:0 4.4.2 dot (connection-lost) "
	    "DONE:4 connection-lost" },
	{ "banner 554", 0, "554 5.7.1 go away\r\n" SQ, "x\r\n", CQ,
	    "R0:554 5.7.1 R1:554 5.7.1 M:554 5.7.1 banner DONE:5 reply" },
	{ "EHLO refused, HELO allowed", F_HELO,
	    SB "502 5.5.2 what\r\n250 mx.test\r\n"
	       "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT
	           SQ,
	    "Subject: t\r\n\r\nhi\r\n", CE "HELO relay.test\r\n" CENV CBODY CQ,
	    EV_OK },
	{ "EHLO refused under REQUIRED", F_REQ | F_HELO,
	    SB "502 5.5.2 what\r\n" SQ, "x\r\n", CE CQ,
	    "R0:502 4.7.5 (starttls-not-offered) R1:502 4.7.5 (starttls-not-offered) "
	    "M:502 4.7.5 ehlo (starttls-not-offered) DONE:4 starttls-not-offered" },
	{ "SMTPUTF8 needed, not offered", F_UTF8 | F_ONE, SB SE SQ, "x\r\n",
	    CE CQ,
	    "R0:0 5.6.7 (smtputf8-not-offered) M:0 5.6.7 mail (smtputf8-not-offered) "
	    "READY DONE:2 reply" },
	/* RFC 8689 4.2.1: REQUIRETLS goes only over TLS, to a server that
	 * offered it in the EHLO after STARTTLS; otherwise nothing is sent
	 * (5.7.30, reason requiretls-not-offered). */
	{ "REQUIRETLS offered after STARTTLS", F_REQ | F_RTLS | F_ONE,
	    SB SE_TLS "220 2.0.0 go ahead\r\n<TLS>"
	              "250-mx.test\r\n250-PIPELINING\r\n250 REQUIRETLS\r\n"
	              "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT SQ,
	    "x\r\n",
	    CE
	    "STARTTLS\r\n" CE
	    "MAIL FROM:<s@a.test> REQUIRETLS\r\nRCPT TO:<r1@b.test>\r\nDATA\r\n"
	    "x\r\n.\r\n" CQ,
	    "T R0:250 2.1.5 B M:250 2.0.0 dot READY DONE:2 reply" },
	{ "REQUIRETLS not offered after STARTTLS", F_REQ | F_RTLS | F_ONE,
	    SB "250-mx.test\r\n250-REQUIRETLS\r\n250 STARTTLS\r\n"
	       "220 2.0.0 go ahead\r\n<TLS>" SE SQ,
	    "x\r\n", CE "STARTTLS\r\n" CE CQ,
	    "T R0:0 5.7.30 (requiretls-not-offered) "
	    "M:0 5.7.30 mail (requiretls-not-offered) READY DONE:2 reply" },
	{ "REQUIRETLS never in cleartext", F_MAY | F_RTLS | F_ONE,
	    SB "250-mx.test\r\n250 REQUIRETLS\r\n" SQ, "x\r\n", CE CQ,
	    "R0:0 5.7.30 (requiretls-not-offered) "
	    "M:0 5.7.30 mail (requiretls-not-offered) READY DONE:2 reply" },
	{ "SMTPUTF8 offered", F_UTF8 | F_ONE,
	    SB "250-mx.test\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n"
	       "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT SQ,
	    "x\r\n",
	    CE
	    "MAIL FROM:<s\xc3\xa9@a.test> SMTPUTF8\r\nRCPT TO:<r1@b.test>\r\nDATA\r\n"
	    "x\r\n.\r\n" CQ,
	    "R0:250 2.1.5 B M:250 2.0.0 dot READY DONE:2 reply" },
	{ "DSN and SIZE offered", F_DSN | F_ONE,
	    SB "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 DSN\r\n"
	       "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT SQ,
	    "x\r\n",
	    CE
	    "MAIL FROM:<s@a.test> SIZE=100 RET=HDRS ENVID=ID1\r\n"
	    "RCPT TO:<r1@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;r1@b.test\r\nDATA\r\n"
	    "x\r\n.\r\n" CQ,
	    "R0:250 2.1.5 B M:250 2.0.0 dot READY DONE:2 reply" },
	{ "DSN not offered: parameters omitted", F_DSN | F_ONE,
	    SB SE "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT SQ, "x\r\n",
	    CE
	    "MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nDATA\r\nx\r\n.\r\n" CQ,
	    "R0:250 2.1.5 B M:250 2.0.0 dot READY DONE:2 reply" },
	{ "SIZE exceeded", F_DSN | F_ONE,
	    SB "250-mx.test\r\n250 SIZE 50\r\n" SQ, "x\r\n", CE CQ,
	    "R0:0 5.3.4 (size-exceeded) M:0 5.3.4 mail (size-exceeded) READY DONE:2 reply" },
	{ "dot-stuffing and bare LF", F_ONE,
	    SB SE "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT SQ,
	    "a\n.b\n.\r\nc",
	    CE "MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nDATA\r\n"
	       "a\r\n..b\r\n..\r\nc\r\n.\r\n" CQ,
	    "R0:250 2.1.5 B M:250 2.0.0 dot READY DONE:2 reply" },
	{ "connection reuse", F_TWO | F_ONE,
	    SB SE "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT
	          "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT SQ,
	    "x\r\n",
	    CE
	    "MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nDATA\r\nx\r\n.\r\n"
	    "MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nDATA\r\nx\r\n.\r\n" CQ,
	    "R0:250 2.1.5 B M:250 2.0.0 dot READY R0:250 2.1.5 B M:250 2.0.0 dot READY "
	    "DONE:2 reply" },
	{ "reuse after failed transaction sends RSET", F_TWO | F_ONE,
	    SB SE
	    "250 2.1.0 ok\r\n550 5.1.1 no\r\n554 5.5.1 no rcpt\r\n"
	    "250 2.0.0 reset\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n" SDOT
	        SQ,
	    "x\r\n",
	    CE
	    "MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nDATA\r\n"
	    "RSET\r\nMAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nDATA\r\nx\r\n.\r\n" CQ,
	    "R0:550 5.1.1 M:550 5.1.1 rcpt READY R0:250 2.1.5 B M:250 2.0.0 dot READY "
	    "DONE:2 reply" },
	{ "BDAT when offered", F_CHUNK | F_ONE,
	    SB
	    "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
	    "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 chunk\r\n250 2.0.0 queued\r\n" SQ,
	    "a\n.b",
	    CE "MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\n"
	       "BDAT 5\r\na\r\n.bBDAT 2 LAST\r\n\r\n" CQ,
	    "R0:250 2.1.5 B M:250 2.0.0 bdat READY DONE:2 reply" },
	{ "malformed reply", 0, SB "250-mx.test\r\n251 x\r\n", "x\r\n", CE,
	    "R0:0 4.5.0 (protocol) R1:0 4.5.0 (protocol) M:0 4.5.0 ehlo (protocol) "
	    "DONE:4 protocol" },
	{ "bare LF in reply", 0, SB "250 mx.test\n", "x\r\n", CE,
	    "R0:0 4.5.0 (protocol) R1:0 4.5.0 (protocol) M:0 4.5.0 ehlo (protocol) "
	    "DONE:4 protocol" },
};

struct run {
	struct sbuf out, ev;
	bool done, tls_wanted;
	int messages;
};

static void
log_result(struct sbuf *b, const char *prefix, const struct smtp_result *r,
    bool stage)
{
	char st[16];
	sb_printf(b, "%s%u %s ", prefix, r->code,
	    smtp_status_format(&r->status, st, sizeof(st)));
	if (stage)
		sb_printf(b, "%s ", smtp_stage_name(r->stage));
	if (r->reason != SMTP_REASON_REPLY)
		sb_printf(b, "(%s) ", smtp_reason_name(r->reason));
}

static const struct smtp_client_rcpt rcpts[2] = {
	{ "r1@b.test", SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE,
	    "rfc822;r1@b.test" },
	{ "r2@b.test", 0, NULL },
};

static void
start(struct smtp_client *c, unsigned flags)
{
	struct smtp_envelope env = {
		.sender = (flags & F_UTF8) ? "s\xc3\xa9@a.test" : "s@a.test",
		.rcpts = rcpts,
		.nrcpts = (flags & F_ONE) ? 1 : 2,
	};
	env.requiretls = (flags & F_RTLS) != 0;
	if (flags & F_DSN) {
		env.size = 100;
		env.ret = SMTP_RET_HDRS;
		env.envid = "ID1";
	}
	assert_int_equal(smtp_client_start_message(c, &env), 0);
}

static void
pump(struct smtp_client *c, struct run *r, const char *body, unsigned flags)
{
	for (;;) {
		struct smtp_client_event e;
		assert_int_equal(smtp_client_next(c, &e), 0);
		switch (e.type) {
		case SMTP_CLIENT_EV_NONE: {
			size_t n;
			const uint8_t *p = smtp_client_output(c, &n);
			sb_add(&r->out, p, n);
			smtp_client_output_consume(c, n);
			return;
		}
		case SMTP_CLIENT_EV_STARTTLS:
			sb_printf(&r->ev, "T ");
			r->tls_wanted = true;
			/* output must be fully sent before the handshake */
			break;
		case SMTP_CLIENT_EV_READY:
			sb_printf(&r->ev, "READY ");
			if ((flags & F_TWO) && r->messages == 1)
				start(c, flags);
			else
				assert_int_equal(smtp_client_quit(c), 0);
			break;
		case SMTP_CLIENT_EV_RCPT: {
			char pre[32];
			snprintf(pre, sizeof(pre), "R%zu:", e.rcpt_index);
			log_result(&r->ev, pre, e.result, false);
			break;
		}
		case SMTP_CLIENT_EV_SEND_BODY: {
			sb_printf(&r->ev, "B ");
			size_t len = strlen(body);
			size_t step = (flags & F_CHUNK) ? len : 3;
			for (size_t i = 0; i < len; i += step) {
				size_t n = len - i < step ? len - i : step;
				assert_int_equal(smtp_client_body(c,
				                     U(body + i), n),
				    0);
			}
			assert_int_equal(smtp_client_body_end(c), 0);
			break;
		}
		case SMTP_CLIENT_EV_MESSAGE:
			log_result(&r->ev, "M:", e.result, true);
			r->messages++;
			break;
		case SMTP_CLIENT_EV_DONE:
			sb_printf(&r->ev, "DONE:%u %s", e.result->klass,
			    smtp_reason_name(e.result->reason));
			r->done = true;
			break;
		}
	}
}

static void
run_transcript(const struct crow *row, size_t split, size_t chunk,
    struct run *r)
{
	memset(r, 0, sizeof(*r));
	struct smtp_client_config cfg = { .helo_name = "relay.test" };
	cfg.tls = (row->flags & F_REQ) ? SMTP_TLS_REQUIRED
	    : (row->flags & F_MAY)     ? SMTP_TLS_MAY
	                               : SMTP_TLS_NONE;
	cfg.allow_helo = row->flags & F_HELO;
	cfg.no_pipelining = row->flags & F_NOPIPE;
	cfg.use_chunking = row->flags & F_CHUNK;
	struct smtp_client *c = smtp_client_new(&cfg);
	assert_non_null(c);
	start(c, row->flags);
	const char *tls = strstr(row->server, "<TLS>");
	const char *eof = strstr(row->server, "<EOF>");
	const char *end = eof ? eof : row->server + strlen(row->server);
	const char *parts[2] = { row->server, tls ? tls + 5 : NULL };
	size_t lens[2] = { tls ? (size_t)(tls - row->server)
		               : (size_t)(end - row->server),
		tls ? (size_t)(end - tls - 5) : 0 };
	pump(c, r, row->body, row->flags);
	for (int part = 0; part < 2 && parts[part] && !r->done; part++) {
		size_t pos = 0;
		while (pos < lens[part] && !r->done && !r->tls_wanted) {
			size_t n = lens[part] - pos;
			if (part == 0 && pos == 0 && split > 0 && split < n)
				n = split;
			else if (chunk > 0 && n > chunk)
				n = chunk;
			assert_int_equal(smtp_client_feed(c,
			                     U(parts[part] + pos), n),
			    0);
			pos += n;
			pump(c, r, row->body, row->flags);
		}
		if (r->tls_wanted) {
			r->tls_wanted = false;
			assert_int_equal(smtp_client_state(c), SMTP_CLIENT_TLS);
			assert_int_equal(smtp_client_tls_started(c), 0);
			assert_true(smtp_client_is_tls(c));
			pump(c, r, row->body, row->flags);
		}
	}
	if (eof && !r->done) {
		assert_int_equal(smtp_client_eof(c), 0);
		pump(c, r, row->body, row->flags);
	}
	smtp_client_free(c);
}

static void
free_run(struct run *r)
{
	sb_free(&r->out);
	sb_free(&r->ev);
}

static void
t_transcript(void **state)
{
	const struct crow *row = *state;
	struct run whole;
	run_transcript(row, 0, 0, &whole);
	assert_string_equal(sb_str(&whole.out), row->out);
	assert_string_equal(sb_str(&whole.ev), row->events);
	size_t len = strlen(row->server);
	for (size_t split = 1; split < len; split++) {
		struct run r;
		run_transcript(row, split, 0, &r);
		assert_string_equal(sb_str(&r.out), row->out);
		assert_string_equal(sb_str(&r.ev), row->events);
		free_run(&r);
	}
	struct run bytes;
	run_transcript(row, 0, 1, &bytes);
	assert_string_equal(sb_str(&bytes.out), row->out);
	assert_string_equal(sb_str(&bytes.ev), row->events);
	free_run(&bytes);
	free_run(&whole);
}

int
main(void)
{
	struct case_list l = { 0 };
	CASES(&l, rows, t_transcript);
	return case_run(&l, "smtp_client");
}
