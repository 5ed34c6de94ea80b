/* Tests for smtp_server.c: transcript tests (client bytes in, exact server
 * bytes and events out), each run with the input fed whole, split at every
 * offset and byte by byte, with identical results. Includes the SMTP
 * smuggling variants, STARTTLS injection and the reject mode. */
#include "smtp_test.h"

#define F_TLS 0x1u       /* cfg.starttls */
#define F_RCPT 0x2u      /* cfg.decide_rcpt */
#define F_REJECT 0x4u    /* cfg.reject */
#define F_SMALL 0x8u     /* max size 100, max errors 3 */
#define F_MAIL 0x10u     /* cfg.decide_mail */
#define F_LONGLINE 0x20u /* max_line 50 */
#define F_RTLS 0x40u     /* cfg.requiretls */

#define BANNER "220 relay.test ESMTP\r\n"
#define EHLO_BODY                                                              \
	"250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n"              \
	"250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-SMTPUTF8\r\n"
#define EHLO_R "250-relay.test\r\n" EHLO_BODY "250 CHUNKING\r\n"
#define EHLO_TLS_R                                                             \
	"250-relay.test\r\n" EHLO_BODY "250-CHUNKING\r\n250 STARTTLS\r\n"
#define EHLO_SMALL_R                                                           \
	"250-relay.test\r\n250-PIPELINING\r\n250-SIZE 100\r\n250-8BITMIME\r\n" \
	"250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
#define MAIL_OK "250 2.1.0 Ok\r\n"
#define RCPT_OK "250 2.1.5 Ok\r\n"
#define GO "354 End data with <CR><LF>.<CR><LF>\r\n"
#define QUEUED "250 2.0.0 Ok: queued as Q1\r\n"
#define BYE "221 2.0.0 Bye\r\n"
#define ENV "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
#define ENV_R EHLO_R MAIL_OK RCPT_OK
#define ENV_EV "H(c.test)M(<a@x.test>)R(<b@y.test>)"
#define NUL_R                                                                  \
	"554 5.6.0 Error: NUL octet in message content (allowed only with BINARYMIME)\r\n"

struct srow {
	const char *name;
	unsigned flags;
	const char *in; /* "<TLS>" separates the cleartext part */
	const char *out;
	const char *events;
	const char *refusals; /* REFUSED events "!(code enhanced reason)";
	                       * NULL: not checked */
	size_t inlen;         /* 0: strlen(in) (set for inputs with NUL) */
};

static const struct srow rows[] = {
	{ "basic transaction", 0,
	    ENV "DATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n",
	    BANNER ENV_R GO QUEUED BYE,
	    ENV_EV "D MSG(21)[Subject: hi\r\n\r\nbody\r\n]C(quit)", NULL, 0 },
	{ "HELO", 0, "HELO c.test\r\nQUIT\r\n", BANNER "250 relay.test\r\n" BYE,
	    "H(c.test)C(quit)", NULL, 0 },
	{ "MAIL before EHLO", 0, "MAIL FROM:<a@x.test>\r\n",
	    BANNER "503 5.5.1 Error: send HELO/EHLO first\r\n", "", 0, 0 },
	{ "RCPT before MAIL", 0, "EHLO c.test\r\nRCPT TO:<b@y.test>\r\n",
	    BANNER EHLO_R "503 5.5.1 Error: need MAIL command\r\n", "H(c.test)",
	    NULL, 0 },
	{ "DATA before MAIL", 0, "EHLO c.test\r\nDATA\r\n",
	    BANNER EHLO_R "503 5.5.1 Error: need MAIL command\r\n", "H(c.test)",
	    NULL, 0 },
	{ "nested MAIL", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nMAIL FROM:<a@x.test>\r\n",
	    BANNER EHLO_R MAIL_OK "503 5.5.1 Error: nested MAIL command\r\n",
	    "H(c.test)M(<a@x.test>)", NULL, 0 },
	{ "unknown command", 0, "XYZZY\r\nNOOP\r\n",
	    BANNER
	    "500 5.5.2 Error: command not recognized\r\n250 2.0.0 Ok\r\n",
	    "", 0, 0 },
	{ "bad sender syntax", 0, "EHLO c.test\r\nMAIL FROM:<a@@x>\r\n",
	    BANNER EHLO_R "501 5.1.7 Bad sender address syntax\r\n",
	    "H(c.test)", NULL, 0 },
	{ "bad recipient syntax", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b>\r\n",
	    BANNER EHLO_R MAIL_OK "501 5.1.3 Bad recipient address syntax\r\n",
	    "H(c.test)M(<a@x.test>)", NULL, 0 },
	{ "unknown parameter", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@x.test> XFOO=1\r\n",
	    BANNER EHLO_R "555 5.5.4 Unsupported option: XFOO\r\n", "H(c.test)",
	    NULL, 0 },
	{ "declared size too large", F_SMALL,
	    "EHLO c.test\r\nMAIL FROM:<a@x.test> SIZE=101\r\n",
	    BANNER EHLO_SMALL_R
	    "552 5.3.4 Error: message size exceeds fixed limit\r\n",
	    "H(c.test)", NULL, 0 },
	{ "content too large", F_SMALL,
	    ENV
	    "DATA\r\n"
	    "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	    "0123456789012345678901234567890123456789\r\n.\r\nNOOP\r\n",
	    BANNER EHLO_SMALL_R MAIL_OK RCPT_OK GO
	    "552 5.3.4 Error: message size exceeds fixed limit\r\n250 2.0.0 Ok\r\n",
	    ENV_EV "D X(message too large)", "!(552 5.3.4 message too large)",
	    0 },
	{ "dot unstuffing", 0, ENV "DATA\r\n..x\r\n..\r\na.b\r\n.\r\n",
	    BANNER ENV_R GO QUEUED, ENV_EV "D MSG(12)[.x\r\n.\r\na.b\r\n]",
	    NULL, 0 },
	{ "empty message", 0, ENV "DATA\r\n.\r\n", BANNER ENV_R GO QUEUED,
	    ENV_EV "D MSG(0)[]", NULL, 0 },
	/* SMTP smuggling (2023): the smuggled commands stay content. */
	{ "smuggle LF.LF", 0,
	    ENV
	    "DATA\r\nx\n.\nMAIL FROM:<evil@e.test>\nRCPT TO:<v@y.test>\nDATA\nevil\n.\n"
	    "\r\n.\r\nNOOP\r\n",
	    BANNER ENV_R GO
	    "550 5.5.2 Error: bare <CR> or <LF> in message content\r\n"
	    "250 2.0.0 Ok\r\n",
	    ENV_EV "D X(bare CR/LF in content)",
	    "!(550 5.5.2 bare CR/LF in content)", 0 },
	{ "smuggle CRLF.LF", 0,
	    ENV "DATA\r\nx\r\n.\nMAIL FROM:<evil@e.test>\r\n\r\n.\r\n",
	    BANNER ENV_R GO
	    "550 5.5.2 Error: bare <CR> or <LF> in message content\r\n",
	    ENV_EV "D X(bare CR/LF in content)", NULL, 0 },
	{ "smuggle LF.CRLF", 0,
	    ENV "DATA\r\nx\n.\r\nMAIL FROM:<evil@e.test>\r\n.\r\n",
	    BANNER ENV_R GO
	    "550 5.5.2 Error: bare <CR> or <LF> in message content\r\n",
	    ENV_EV "D X(bare CR/LF in content)", NULL, 0 },
	{ "smuggle CR.CR", 0,
	    ENV "DATA\r\nx\r.\rMAIL FROM:<evil@e.test>\r\n.\r\n",
	    BANNER ENV_R GO
	    "550 5.5.2 Error: bare <CR> or <LF> in message content\r\n",
	    ENV_EV "D X(bare CR/LF in content)", NULL, 0 },
	{ "smuggle CRLF.CR", 0,
	    ENV "DATA\r\nx\r\n.\rMAIL FROM:<evil@e.test>\r\n.\r\n",
	    BANNER ENV_R GO
	    "550 5.5.2 Error: bare <CR> or <LF> in message content\r\n",
	    ENV_EV "D X(bare CR/LF in content)", NULL, 0 },
	{ "smuggle unterminated", 0,
	    ENV "DATA\r\nx\n.\nMAIL FROM:<evil@e.test>\nQUIT\n",
	    BANNER ENV_R GO, ENV_EV "D ", NULL, 0 },
	{ "RSET in transaction", 0, ENV "RSET\r\nMAIL FROM:<c@x.test>\r\n",
	    BANNER ENV_R "250 2.0.0 Ok\r\n" MAIL_OK,
	    ENV_EV "X(rset)M(<c@x.test>)", NULL, 0 },
	{ "EHLO in transaction", 0, ENV "EHLO c.test\r\n", BANNER ENV_R EHLO_R,
	    ENV_EV "X(ehlo)H(c.test)", NULL, 0 },
	{ "too many errors", F_SMALL, "X1\r\nX2\r\nX3\r\nNOOP\r\n",
	    BANNER "500 5.5.2 Error: command not recognized\r\n"
	           "500 5.5.2 Error: command not recognized\r\n"
	           "500 5.5.2 Error: command not recognized\r\n"
	           "421 4.7.0 relay.test Error: too many errors\r\n",
	    "C(too many errors)", "!(421 4.7.0 too many errors)", 0 },
	{ "bare LF in command", 0, "NOOP\nNOOP\r\n",
	    BANNER
	    "500 5.5.2 Error: bare <CR> or <LF> received\r\n250 2.0.0 Ok\r\n",
	    "", "!(500 5.5.2 bare CR/LF in command)", 0 },
	{ "STARTTLS", F_TLS,
	    "EHLO c.test\r\nSTARTTLS\r\nMAIL FROM:<evil@e.test>\r\n<TLS>"
	    "MAIL FROM:<a@x.test>\r\nEHLO c.test\r\nSTARTTLS\r\n",
	    BANNER EHLO_TLS_R "220 2.0.0 Ready to start TLS\r\n"
	                      "503 5.5.1 Error: send HELO/EHLO first\r\n" EHLO_R
	                      "502 5.5.1 Error: command not implemented\r\n",
	    "H(c.test)T H(c.test)", NULL, 0 },
	/* RFC 8689 2: REQUIRETLS only in a session that employs TLS; before
	 * STARTTLS it is neither offered nor accepted (RFC 5321 4.1.1.11). */
	{ "REQUIRETLS offered and accepted after STARTTLS", F_TLS | F_RTLS,
	    "EHLO c.test\r\nMAIL FROM:<a@x.test> REQUIRETLS\r\nSTARTTLS\r\n"
	    "<TLS>EHLO c.test\r\nMAIL FROM:<a@x.test> REQUIRETLS\r\n",
	    BANNER EHLO_TLS_R "555 5.5.4 Unsupported option: REQUIRETLS\r\n"
	                      "220 2.0.0 Ready to start TLS\r\n"
	                      "250-relay.test\r\n" EHLO_BODY
	                      "250-CHUNKING\r\n250 REQUIRETLS\r\n" MAIL_OK,
	    "H(c.test)T H(c.test)M(<a@x.test> REQUIRETLS)", NULL, 0 },
	{ "REQUIRETLS not configured: unknown after STARTTLS too", F_TLS,
	    "EHLO c.test\r\nSTARTTLS\r\n"
	    "<TLS>EHLO c.test\r\nMAIL FROM:<a@x.test> REQUIRETLS\r\n",
	    BANNER EHLO_TLS_R "220 2.0.0 Ready to start TLS\r\n" EHLO_R
	                      "555 5.5.4 Unsupported option: REQUIRETLS\r\n",
	    "H(c.test)T H(c.test)", NULL, 0 },
	{ "STARTTLS not offered", 0, "EHLO c.test\r\nSTARTTLS\r\n",
	    BANNER EHLO_R "502 5.5.1 Error: command not implemented\r\n",
	    "H(c.test)", NULL, 0 },
	{ "STARTTLS with argument", F_TLS, "EHLO c.test\r\nSTARTTLS x\r\n",
	    BANNER EHLO_TLS_R
	    "501 5.5.4 Syntax error in parameters or arguments\r\n",
	    "H(c.test)", NULL, 0 },
	{ "STARTTLS after HELO", F_TLS, "HELO c.test\r\nSTARTTLS\r\n",
	    BANNER "250 relay.test\r\n503 5.5.1 Error: send EHLO first\r\n",
	    "H(c.test)", NULL, 0 },
	{ "reject mode", F_REJECT,
	    "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nQUIT\r\n",
	    "554 5.7.1 relay.test Relay access denied\r\n"
	    "503 5.5.1 Error: access denied, send QUIT\r\n"
	    "503 5.5.1 Error: access denied, send QUIT\r\n" BYE,
	    "C(quit)", NULL, 0 },
	{ "recipient verdicts", F_RCPT,
	    "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<bad@y.test>\r\n"
	    "RCPT TO:<b@y.test>\r\nDATA\r\nx\r\n.\r\n",
	    BANNER EHLO_R MAIL_OK
	    "550 5.1.1 no such user\r\n" RCPT_OK GO QUEUED,
	    "H(c.test)M(<a@x.test>)R(<bad@y.test>)R(<b@y.test>)D MSG(3)[x\r\n]",
	    NULL, 0 },
	{ "all recipients rejected", F_RCPT,
	    "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<bad@y.test>\r\nDATA\r\n",
	    BANNER EHLO_R MAIL_OK "550 5.1.1 no such user\r\n"
	                          "554 5.5.1 Error: no valid recipients\r\n",
	    "H(c.test)M(<a@x.test>)R(<bad@y.test>)", NULL, 0 },
	{ "sender verdict", F_MAIL,
	    "EHLO c.test\r\nMAIL FROM:<bad@x.test>\r\nRCPT TO:<b@y.test>\r\n",
	    BANNER EHLO_R
	    "451 4.3.0 try later\r\n503 5.5.1 Error: need MAIL command\r\n",
	    "H(c.test)M(<bad@x.test>)", NULL, 0 },
	{ "message tempfail verdict", 0,
	    ENV "DATA\r\ntempfail\r\n.\r\nQUIT\r\n",
	    BANNER ENV_R GO "452 4.3.1 Insufficient system storage\r\n" BYE,
	    ENV_EV "D MSG(10)[tempfail\r\n]C(quit)", NULL, 0 },
	{ "two pipelined messages", 0,
	    ENV
	    "DATA\r\none\r\n.\r\nMAIL FROM:<c@x.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\n"
	    "two\r\n.\r\nQUIT\r\n",
	    BANNER ENV_R GO QUEUED MAIL_OK RCPT_OK GO QUEUED BYE,
	    ENV_EV
	    "D MSG(5)[one\r\n]M(<c@x.test>)R(<d@y.test>)D MSG(5)[two\r\n]C(quit)",
	    NULL, 0 },
	{ "BDAT", 0, ENV "BDAT 9\r\nab\r\n.\r\ncdBDAT 2 LAST\r\n\r\n",
	    BANNER ENV_R "250 2.0.0 9 octets received\r\n" QUEUED,
	    ENV_EV "D MSG(11)[ab\r\n.\r\ncd\r\n]", NULL, 0 },
	{ "BDAT without MAIL skips chunk", 0,
	    "EHLO c.test\r\nBDAT 12\r\nQUIT\r\nQUIT\r\nNOOP\r\n",
	    BANNER EHLO_R
	    "503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n",
	    "H(c.test)", NULL, 0 },
	{ "BDAT bare LF", 0, ENV "BDAT 3 LAST\r\na\nbNOOP\r\n",
	    BANNER ENV_R
	    "550 5.5.2 Error: bare <CR> or <LF> in message content\r\n"
	    "250 2.0.0 Ok\r\n",
	    ENV_EV "D X(bare CR/LF in content)", NULL, 0 },
	{ "DATA after BDAT", 0, ENV "BDAT 3\r\nabcDATA\r\n",
	    BANNER ENV_R
	    "250 2.0.0 3 octets received\r\n503 5.5.1 Error: DATA after BDAT\r\n",
	    ENV_EV "D ", NULL, 0 },
	{ "UTF-8 sender needs SMTPUTF8", 0,
	    "EHLO c.test\r\nMAIL FROM:<\xc3\xa9@x.test>\r\nMAIL FROM:<\xc3\xa9@x.test> SMTPUTF8\r\n",
	    BANNER EHLO_R
	    "553 5.6.7 Error: non-ASCII address needs SMTPUTF8\r\n" MAIL_OK,
	    "H(c.test)M(<\xc3\xa9@x.test> SMTPUTF8)", NULL, 0 },
	{ "UTF-8 recipient needs SMTPUTF8", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<\xc3\xa9@y.test>\r\n",
	    BANNER EHLO_R MAIL_OK
	    "553 5.6.7 Error: non-ASCII address needs SMTPUTF8\r\n",
	    "H(c.test)M(<a@x.test>)", NULL, 0 },
	{ "VRFY HELP NOOP EXPN", 0, "VRFY x\r\nHELP\r\nNOOP\r\nEXPN x\r\n",
	    BANNER
	    "252 2.0.0 Cannot VRFY user; try RCPT\r\n214 2.0.0 See RFC 5321\r\n"
	    "250 2.0.0 Ok\r\n502 5.5.1 Error: command not implemented\r\n",
	    "", 0, 0 },
	{ "DSN parameters carried", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@x.test> RET=HDRS ENVID=Q1+2B SIZE=50 BODY=8BITMIME\r\n"
	    "RCPT TO:<b@y.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@y.test\r\n",
	    BANNER EHLO_R MAIL_OK RCPT_OK,
	    "H(c.test)M(<a@x.test> SIZE=50 BODY=2 RET=2 ENVID=Q1+2B)"
	    "R(<b@y.test> NOTIFY=12 ORCPT=rfc822;b@y.test)",
	    NULL, 0 },
	{ "postmaster", 0,
	    "EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\n",
	    BANNER EHLO_R MAIL_OK RCPT_OK, "H(c.test)M(<>)R(<Postmaster>)",
	    NULL, 0 },
	{ "line too long", 0,
	    "NOOP xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "\r\nNOOP\r\n",
	    BANNER "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n", "",
	    "!(500 5.5.2 command line too long)", 0 },
	{ "content line too long", F_LONGLINE,
	    ENV
	    "DATA\r\n"
	    "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
	    ".\r\nNOOP\r\n",
	    BANNER ENV_R GO
	    "500 5.5.2 Error: line too long in message content\r\n"
	    "250 2.0.0 Ok\r\n",
	    ENV_EV "D X(line too long)", "!(500 5.5.2 line too long)", 0 },
	{ "accepted message refuses nothing", 0, ENV "DATA\r\nx\r\n.\r\n",
	    BANNER ENV_R GO QUEUED, ENV_EV "D MSG(3)[x\r\n]", "", 0 },
	/* RFC 5321 2.3.8, RFC 6152: NUL is not allowed without BINARYMIME. */
	{ "NUL in DATA content", 0,
	    ENV "DATA\r\nSubject: x\r\n\r\na\0b\r\n.\r\nNOOP\r\n",
	    BANNER ENV_R GO NUL_R "250 2.0.0 Ok\r\n",
	    ENV_EV "D X(NUL in content)", "!(554 5.6.0 NUL in content)",
	    sizeof(ENV "DATA\r\nSubject: x\r\n\r\na\0b\r\n.\r\nNOOP\r\n") - 1 },
	{ "NUL in a BDAT chunk", 0, ENV "BDAT 4 LAST\r\na\0\r\nNOOP\r\n",
	    BANNER ENV_R NUL_R "250 2.0.0 Ok\r\n", ENV_EV "D X(NUL in content)",
	    "!(554 5.6.0 NUL in content)",
	    sizeof(ENV "BDAT 4 LAST\r\na\0\r\nNOOP\r\n") - 1 },
	/* A CR ending the LAST chunk is bare, as anywhere else. */
	{ "BDAT LAST chunk ends in bare CR", 0,
	    ENV "BDAT 3 LAST\r\nab\rNOOP\r\n",
	    BANNER ENV_R
	    "550 5.5.2 Error: bare <CR> or <LF> in message content\r\n"
	    "250 2.0.0 Ok\r\n",
	    ENV_EV "D X(bare CR/LF in content)",
	    "!(550 5.5.2 bare CR/LF in content)", 0 },
	{ "BDAT CR then empty LAST chunk", 0,
	    ENV "BDAT 3\r\nab\rBDAT 0 LAST\r\nNOOP\r\n",
	    BANNER ENV_R
	    "250 2.0.0 3 octets received\r\n"
	    "550 5.5.2 Error: bare <CR> or <LF> in message content\r\n250 2.0.0 Ok\r\n",
	    ENV_EV "D X(bare CR/LF in content)",
	    "!(550 5.5.2 bare CR/LF in content)", 0 },
	{ "BDAT CRLF split across chunks", 0,
	    ENV "BDAT 3\r\nab\rBDAT 1 LAST\r\n\n",
	    BANNER ENV_R "250 2.0.0 3 octets received\r\n" QUEUED,
	    ENV_EV "D MSG(4)[ab\r\n]", "", 0 },
	/* RFC 6152: 8-bit content is noted whatever BODY= said. */
	{ "8-bit DATA content noted", 0,
	    ENV "DATA\r\n\xc3\xa9t\xc3\xa9\r\n.\r\n", BANNER ENV_R GO QUEUED,
	    ENV_EV "D MSG(7 8bit)[\xc3\xa9t\xc3\xa9\r\n]", "", 0 },
	{ "8-bit BDAT content noted", 0,
	    ENV "BDAT 2\r\nx\xff"
	        "BDAT 2 LAST\r\n\r\n",
	    BANNER ENV_R "250 2.0.0 2 octets received\r\n" QUEUED,
	    ENV_EV "D MSG(4 8bit)[x\xff\r\n]", "", 0 },
	{ "7-bit content not noted", 0, ENV "DATA\r\n~\x7f\r\n.\r\n",
	    BANNER ENV_R GO QUEUED, ENV_EV "D MSG(4)[~\x7f\r\n]", "", 0 },
};

struct run {
	struct sbuf out, ev, body, refusals;
	bool closed;
	bool tls_wanted;
};

static void
log_mail(struct run *r, const struct smtp_server_event *e)
{
	char a[SMTP_PATH_MAX + 1];
	assert_true(smtp_addr_format(&e->addr, a, sizeof(a)) >= 0);
	sb_printf(&r->ev, "M(<%s>", a);
	if (e->mail.has_size)
		sb_printf(&r->ev, " SIZE=%llu",
		    (unsigned long long)e->mail.size);
	if (e->mail.body)
		sb_printf(&r->ev, " BODY=%d", (int)e->mail.body);
	if (e->mail.ret)
		sb_printf(&r->ev, " RET=%d", (int)e->mail.ret);
	if (e->mail.envid.len)
		sb_printf(&r->ev, " ENVID=%.*s", (int)e->mail.envid.len,
		    (const char *)e->mail.envid.p);
	if (e->mail.smtputf8)
		sb_printf(&r->ev, " SMTPUTF8");
	if (e->mail.requiretls)
		sb_printf(&r->ev, " REQUIRETLS");
	sb_printf(&r->ev, ")");
}

static void
log_rcpt(struct run *r, const struct smtp_server_event *e)
{
	char a[SMTP_PATH_MAX + 1];
	assert_true(smtp_addr_format(&e->addr, a, sizeof(a)) >= 0);
	sb_printf(&r->ev, "R(<%s>", a);
	if (e->rcpt.notify)
		sb_printf(&r->ev, " NOTIFY=%u", e->rcpt.notify);
	if (e->rcpt.orcpt.len)
		sb_printf(&r->ev, " ORCPT=%.*s", (int)e->rcpt.orcpt.len,
		    (const char *)e->rcpt.orcpt.p);
	sb_printf(&r->ev, ")");
}

static void
pump(struct smtp_server *s, struct run *r)
{
	for (;;) {
		struct smtp_server_event e;
		assert_int_equal(smtp_server_next(s, &e), 0);
		switch (e.type) {
		case SMTP_SERVER_EV_NONE: {
			size_t n;
			const uint8_t *p = smtp_server_output(s, &n);
			if (n == 0)
				return;
			sb_add(&r->out, p, n);
			smtp_server_output_consume(s, n);
			continue; /* output drained: the machine may go on */
		}
		case SMTP_SERVER_EV_HELO:
			sb_printf(&r->ev, "H(%.*s)", (int)e.helo.len,
			    (const char *)e.helo.p);
			break;
		case SMTP_SERVER_EV_MAIL:
			log_mail(r, &e);
			if (e.needs_verdict) {
				if (e.addr.local.len == 3 &&
				    memcmp(e.addr.local.p, "bad", 3) == 0)
					assert_int_equal(smtp_server_reply(s,
					                     451, "4.3.0",
					                     "try later"),
					    0);
				else
					assert_int_equal(smtp_server_accept(s),
					    0);
			}
			break;
		case SMTP_SERVER_EV_RCPT:
			log_rcpt(r, &e);
			if (e.needs_verdict) {
				if (e.addr.local.len == 3 &&
				    memcmp(e.addr.local.p, "bad", 3) == 0)
					assert_int_equal(smtp_server_reply(s,
					                     550, "5.1.1",
					                     "no such user"),
					    0);
				else
					assert_int_equal(smtp_server_accept(s),
					    0);
			}
			break;
		case SMTP_SERVER_EV_DATA:
			sb_printf(&r->ev, "D ");
			r->body.len = 0;
			sb_add(&r->body, "", 0);
			break;
		case SMTP_SERVER_EV_BODY:
			sb_add(&r->body, e.data.p, e.data.len);
			break;
		case SMTP_SERVER_EV_MESSAGE:
			assert_true(e.needs_verdict);
			assert_int_equal(e.size, r->body.len);
			sb_printf(&r->ev, "MSG(%llu%s)[%s]",
			    (unsigned long long)e.size,
			    e.eightbit ? " 8bit" : "", sb_str(&r->body));
			if (strstr(sb_str(&r->body), "tempfail"))
				assert_int_equal(
				    smtp_server_reply(s, 452, "4.3.1",
				        "Insufficient system storage"),
				    0);
			else
				assert_int_equal(smtp_server_reply(s, 250,
				                     "2.0.0",
				                     "Ok: queued as Q1"),
				    0);
			break;
		case SMTP_SERVER_EV_RESET:
			sb_printf(&r->ev, "X(%s)", e.reason);
			break;
		case SMTP_SERVER_EV_STARTTLS:
			sb_printf(&r->ev, "T ");
			r->tls_wanted = true;
			break;
		case SMTP_SERVER_EV_CLOSE:
			sb_printf(&r->ev, "C(%s)", e.reason);
			r->closed = true;
			break;
		case SMTP_SERVER_EV_REFUSED:
			sb_printf(&r->refusals, "!(%u %s %s)", (unsigned)e.code,
			    e.enhanced, e.reason);
			break;
		}
	}
}

static struct smtp_server *
make(unsigned flags)
{
	struct smtp_server_config cfg = { .hostname = "relay.test" };
	cfg.starttls = flags & F_TLS;
	cfg.decide_rcpt = flags & F_RCPT;
	cfg.decide_mail = flags & F_MAIL;
	cfg.reject = flags & F_REJECT;
	cfg.requiretls = flags & F_RTLS;
	if (flags & F_SMALL) {
		cfg.max_message_size = 100;
		cfg.max_errors = 3;
	}
	if (flags & F_LONGLINE)
		cfg.max_line = 50;
	struct smtp_server *s = smtp_server_new(&cfg);
	assert_non_null(s);
	return s;
}

static size_t
row_inlen(const struct srow *row)
{
	return row->inlen ? row->inlen : strlen(row->in);
}

/* Runs a transcript: the cleartext part fed in pieces (first piece of
 * `split` bytes, then pieces of `chunk`, 0 = rest), then the TLS part. */
static void
run_transcript(const struct srow *row, size_t split, size_t chunk,
    struct run *r)
{
	memset(r, 0, sizeof(*r));
	struct smtp_server *s = make(row->flags);
	const char *tls = strstr(row->in, "<TLS>");
	size_t plen = tls ? (size_t)(tls - row->in) : row_inlen(row);
	const char *parts[2] = { row->in, tls ? tls + 5 : NULL };
	size_t lens[2] = { plen, tls ? strlen(tls + 5) : 0 };
	pump(s, r);
	for (int part = 0; part < 2 && parts[part] && !r->closed; part++) {
		size_t pos = 0;
		while (pos < lens[part] && !r->closed && !r->tls_wanted) {
			size_t n = lens[part] - pos;
			if (part == 0 && pos == 0 && split > 0 && split < n)
				n = split;
			else if (chunk > 0 && n > chunk)
				n = chunk;
			assert_int_equal(smtp_server_feed(s,
			                     U(parts[part] + pos), n),
			    0);
			pos += n;
			pump(s, r);
		}
		if (r->tls_wanted) {
			/* The handshake runs; then the session starts over. */
			r->tls_wanted = false;
			assert_int_equal(smtp_server_state(s),
			    SMTP_SERVER_STARTTLS);
			assert_int_equal(smtp_server_tls_started(s), 0);
			assert_true(smtp_server_is_tls(s));
			pump(s, r);
		}
	}
	smtp_server_free(s);
}

static void
free_run(struct run *r)
{
	sb_free(&r->out);
	sb_free(&r->ev);
	sb_free(&r->body);
	sb_free(&r->refusals);
}

static void
t_transcript(void **state)
{
	const struct srow *row = *state;
	struct run whole;
	run_transcript(row, 0, 0, &whole);
	assert_string_equal(sb_str(&whole.out), row->out);
	assert_string_equal(sb_str(&whole.ev), row->events);
	if (row->refusals != NULL)
		assert_string_equal(sb_str(&whole.refusals), row->refusals);
	size_t len = row_inlen(row);
	for (size_t split = 1; split < len; split++) {
		struct run r;
		run_transcript(row, split, 0, &r);
		assert_string_equal(sb_str(&r.out), row->out);
		assert_string_equal(sb_str(&r.ev), row->events);
		assert_string_equal(sb_str(&r.refusals),
		    sb_str(&whole.refusals));
		free_run(&r);
	}
	struct run bytes;
	run_transcript(row, 0, 1, &bytes);
	assert_string_equal(sb_str(&bytes.out), row->out);
	assert_string_equal(sb_str(&bytes.ev), row->events);
	assert_string_equal(sb_str(&bytes.refusals), sb_str(&whole.refusals));
	free_run(&bytes);
	free_run(&whole);
}

static void
drain(struct smtp_server *s, struct sbuf *out)
{
	size_t n;
	const uint8_t *p = smtp_server_output(s, &n);
	sb_add(out, p, n);
	smtp_server_output_consume(s, n);
}

static void
t_deferred_verdict(void **state)
{
	/* The 250 waits for the driver; pipelined input waits behind it. */
	struct smtp_server *s = make(0);
	const char *in = ENV "DATA\r\nx\r\n.\r\nNOOP\r\nQUIT\r\n";
	assert_int_equal(smtp_server_feed(s, U(in), strlen(in)), 0);
	struct smtp_server_event e;
	struct sbuf out = { 0 };
	do {
		assert_int_equal(smtp_server_next(s, &e), 0);
	} while (e.type != SMTP_SERVER_EV_MESSAGE);
	assert_int_equal(smtp_server_next(s, &e), 0);
	assert_int_equal(e.type, SMTP_SERVER_EV_NONE);
	assert_int_equal(smtp_server_state(s), SMTP_SERVER_VERDICT);
	assert_string_equal(smtp_server_state_name(smtp_server_state(s)),
	    "verdict");
	assert_false(smtp_server_wants_input(s));
	drain(s, &out);
	assert_string_equal(sb_str(&out), BANNER ENV_R GO);
	/* fsync done */
	assert_int_equal(smtp_server_accept(s), 0);
	assert_int_equal(smtp_server_accept(s), SMTP_ERR_STATE);
	assert_int_equal(smtp_server_next(s, &e), 0);
	assert_int_equal(e.type, SMTP_SERVER_EV_CLOSE);
	drain(s, &out);
	assert_string_equal(sb_str(&out),
	    BANNER ENV_R GO "250 2.0.0 Ok: queued\r\n250 2.0.0 Ok\r\n" BYE);
	sb_free(&out);
	smtp_server_free(s);
}

static void
t_verdict_validation(void **state)
{
	struct smtp_server *s = make(F_RCPT);
	assert_int_equal(smtp_server_accept(s), SMTP_ERR_STATE);
	const char *in =
	    "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n";
	assert_int_equal(smtp_server_feed(s, U(in), strlen(in)), 0);
	struct smtp_server_event e;
	do {
		assert_int_equal(smtp_server_next(s, &e), 0);
	} while (e.type != SMTP_SERVER_EV_RCPT);
	assert_int_equal(smtp_server_reply(s, 354, NULL, NULL), SMTP_ERR_INVAL);
	assert_int_equal(smtp_server_reply(s, 550, "4.1.1", NULL),
	    SMTP_ERR_INVAL);
	assert_int_equal(smtp_server_reply(s, 550, "5.1.1", "a\r\nb"),
	    SMTP_ERR_INVAL);
	assert_int_equal(smtp_server_reply(s, 550, NULL, NULL), 0);
	struct sbuf out = { 0 };
	drain(s, &out);
	assert_non_null(strstr(sb_str(&out), "550 5.0.0 Error: rejected\r\n"));
	sb_free(&out);
	smtp_server_free(s);
}

static void
t_verdict_421_closes(void **state)
{
	struct smtp_server *s = make(F_RCPT);
	const char *in =
	    "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n";
	assert_int_equal(smtp_server_feed(s, U(in), strlen(in)), 0);
	struct smtp_server_event e;
	do {
		assert_int_equal(smtp_server_next(s, &e), 0);
	} while (e.type != SMTP_SERVER_EV_RCPT);
	assert_int_equal(smtp_server_reply(s, 421, "4.3.2", "shutting down"),
	    0);
	assert_int_equal(smtp_server_next(s, &e), 0);
	assert_int_equal(e.type, SMTP_SERVER_EV_RESET);
	assert_int_equal(smtp_server_next(s, &e), 0);
	assert_int_equal(e.type, SMTP_SERVER_EV_CLOSE);
	assert_int_equal(smtp_server_state(s), SMTP_SERVER_CLOSED);
	smtp_server_free(s);
}

static void
t_abort_timeout(void **state)
{
	struct smtp_server *s = make(0);
	const char *in = ENV "DATA\r\npartial";
	assert_int_equal(smtp_server_feed(s, U(in), strlen(in)), 0);
	struct smtp_server_event e;
	do {
		assert_int_equal(smtp_server_next(s, &e), 0);
	} while (e.type != SMTP_SERVER_EV_NONE);
	assert_int_equal(smtp_server_abort(s, NULL, NULL), 0);
	assert_int_equal(smtp_server_next(s, &e), 0);
	assert_int_equal(e.type, SMTP_SERVER_EV_RESET);
	assert_int_equal(smtp_server_next(s, &e), 0);
	assert_int_equal(e.type, SMTP_SERVER_EV_CLOSE);
	struct sbuf out = { 0 };
	drain(s, &out);
	assert_non_null(strstr(sb_str(&out),
	    "421 4.4.2 relay.test Error: timeout exceeded\r\n"));
	assert_int_equal(smtp_server_abort(s, "5.0.0", NULL), SMTP_ERR_INVAL);
	sb_free(&out);
	smtp_server_free(s);
}

static void
t_eof_in_data(void **state)
{
	struct smtp_server *s = make(0);
	const char *in = ENV "DATA\r\npartial";
	assert_int_equal(smtp_server_feed(s, U(in), strlen(in)), 0);
	struct smtp_server_event e;
	do {
		assert_int_equal(smtp_server_next(s, &e), 0);
	} while (e.type != SMTP_SERVER_EV_NONE);
	assert_int_equal(smtp_server_eof(s), 0);
	assert_int_equal(smtp_server_next(s, &e), 0);
	assert_int_equal(e.type, SMTP_SERVER_EV_RESET);
	assert_string_equal(e.reason, "eof");
	assert_int_equal(smtp_server_next(s, &e), 0);
	assert_int_equal(e.type, SMTP_SERVER_EV_CLOSE);
	assert_int_equal(smtp_server_next(s, &e), 0);
	assert_int_equal(e.type, SMTP_SERVER_EV_NONE);
	smtp_server_free(s);
}

static void
t_input_overflow(void **state)
{
	struct smtp_server_config cfg = { .hostname = "relay.test",
		.in_max = 2048 };
	struct smtp_server *s = smtp_server_new(&cfg);
	assert_non_null(s);
	uint8_t junk[3000];
	memset(junk, 'N', sizeof(junk));
	assert_int_equal(smtp_server_feed(s, junk, sizeof(junk)),
	    SMTP_ERR_FULL);
	struct smtp_server_event e;
	assert_int_equal(smtp_server_next(s, &e), 0);
	assert_int_equal(e.type, SMTP_SERVER_EV_CLOSE);
	struct sbuf out = { 0 };
	drain(s, &out);
	assert_non_null(strstr(sb_str(&out), "421 4.3.0"));
	sb_free(&out);
	smtp_server_free(s);
}

static void
t_too_many_recipients(void **state)
{
	/* RFC 5321 4.5.3.1.8/4.5.3.1.10: 100 accepted, then 452. */
	struct smtp_server_config cfg = { .hostname = "relay.test",
		.max_recipients = 5 };
	struct smtp_server *s = smtp_server_new(&cfg);
	assert_non_null(s);
	struct sbuf in = { 0 };
	sb_printf(&in, "EHLO c\r\nMAIL FROM:<a@x.test>\r\n");
	for (int i = 0; i < 101; i++)
		sb_printf(&in, "RCPT TO:<r%d@y.test>\r\n", i);
	assert_int_equal(smtp_server_feed(s, U(sb_str(&in)), in.len), 0);
	struct smtp_server_event e;
	int rcpts = 0;
	struct sbuf out = { 0 };
	for (;;) {
		assert_int_equal(smtp_server_next(s, &e), 0);
		if (e.type == SMTP_SERVER_EV_RCPT)
			rcpts++;
		if (e.type == SMTP_SERVER_EV_NONE) {
			size_t before = out.len;
			drain(s, &out);
			if (out.len == before)
				break;
		}
	}
	assert_int_equal(rcpts, 100);
	assert_non_null(
	    strstr(sb_str(&out), "452 4.5.3 Error: too many recipients\r\n"));
	sb_free(&in);
	sb_free(&out);
	smtp_server_free(s);
}

static void
t_bad_config(void **state)
{
	struct smtp_server_config cfg = { .hostname = "bad\r\nhost" };
	assert_null(smtp_server_new(&cfg));
	cfg.hostname = "";
	assert_null(smtp_server_new(&cfg));
	cfg.hostname = NULL;
	assert_null(smtp_server_new(&cfg));
	smtp_server_free(NULL);
}

static void
t_state_names(void **state)
{
	assert_string_equal(smtp_server_state_name(SMTP_SERVER_INIT), "init");
	assert_string_equal(smtp_server_state_name(SMTP_SERVER_DATA), "data");
	assert_string_equal(smtp_server_state_name(SMTP_SERVER_CLOSED),
	    "closed");
}

int
main(void)
{
	struct case_list l = { 0 };
	CASES(&l, rows, t_transcript);
	case_add(&l, "message verdict deferred until fsync", t_deferred_verdict,
	    NULL);
	case_add(&l, "verdict validation", t_verdict_validation, NULL);
	case_add(&l, "421 verdict closes", t_verdict_421_closes, NULL);
	case_add(&l, "abort on timeout", t_abort_timeout, NULL);
	case_add(&l, "EOF during DATA", t_eof_in_data, NULL);
	case_add(&l, "input ceiling", t_input_overflow, NULL);
	case_add(&l, "too many recipients", t_too_many_recipients, NULL);
	case_add(&l, "bad configuration", t_bad_config, NULL);
	case_add(&l, "state names", t_state_names, NULL);
	return case_run(&l, "smtp_server");
}
