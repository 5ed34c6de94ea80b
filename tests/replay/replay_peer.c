/*
 * replay_peer: the server side of one scripted SMTP session.
 *
 * A small, well-behaved ESMTP server (RFC 5321 4.3.2 reply codes, RFC 2920
 * pipelining: commands are answered in order, RFC 3207 STARTTLS) whose
 * behaviour a scenario bends with directives: another reply at one stage
 * (for one recipient), a dropped connection, a stall, no STARTTLS, extra
 * EHLO keywords. It sees plaintext only; fake_conn.c runs the transport
 * and the TLS server. Every command it receives, and every event of the
 * connection, becomes a transcript line of the peer for `expect transcript`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "replay.h"

#define LINE_MAX_IN 1024
#define OUT_MAX (64u * 1024)

enum pstate {
	P_CMD,
	P_BODY,
	P_DEAD
};

struct peer_sess {
	struct rpl_peer *p;
	unsigned conn;
	enum pstate st;
	bool in_tls;
	bool starttls_now;
	bool close_after_output;
	bool stalled;
	bool have_mail;
	unsigned rcpts_ok;
	size_t body_bytes;
	char line[LINE_MAX_IN];
	size_t linelen;
	bool line_too_long;
	uint8_t out[OUT_MAX];
	size_t outlen;
};

void
replay_peer_note(struct rpl_peer *p, const char *fmt, ...)
{
	if (p->ntranscript == RPL_TRANSCRIPT_MAX)
		return;
	char buf[RPL_TEXT_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	p->transcript[p->ntranscript] = strdup(buf);
	if (p->transcript[p->ntranscript] != NULL)
		p->ntranscript++;
}

/* The directive of kind for stage (and recipient) that applies to this
 * connection: one for this connection number wins over a general one. */
static const struct rpl_pdirective *
find(const struct peer_sess *ps, enum rpl_pdir kind, const char *stage,
    const char *rcpt)
{
	const struct rpl_pdirective *general = NULL;
	for (size_t i = 0; i < ps->p->ndir; i++) {
		const struct rpl_pdirective *d = &ps->p->dir[i];
		if (d->kind != kind || (d->conn != 0 && d->conn != ps->conn))
			continue;
		if (stage != NULL && strcmp(d->cmd, stage) != 0)
			continue;
		if (d->addr[0] != '\0' &&
		    (rcpt == NULL || strcasecmp(d->addr, rcpt) != 0))
			continue;
		if (d->conn != 0)
			return d;
		if (general == NULL)
			general = d;
	}
	return general;
}

bool
peer_sess_has(const struct peer_sess *ps, enum rpl_pdir kind, const char *stage)
{
	return find(ps, kind, stage, NULL) != NULL;
}

const char *
peer_sess_cert(const struct peer_sess *ps)
{
	const struct rpl_pdirective *d = find(ps, RPL_P_CERT, NULL, NULL);
	return d != NULL ? d->text : "";
}

struct peer_sess *
peer_sess_new(struct rpl_peer *p, unsigned conn_no)
{
	struct peer_sess *ps = calloc(1, sizeof *ps);
	if (ps == NULL)
		return NULL;
	ps->p = p;
	ps->conn = conn_no;
	return ps;
}

void
peer_sess_free(struct peer_sess *ps)
{
	free(ps);
}

static void
say(struct peer_sess *ps, const char *text)
{
	size_t n = strlen(text);
	if (ps->outlen + n + 2 > sizeof ps->out)
		return;
	memcpy(ps->out + ps->outlen, text, n);
	memcpy(ps->out + ps->outlen + n, "\r\n", 2);
	ps->outlen += n + 2;
}

/* Stage hooks: true when the session stops here (drop or stall). */
static bool
stops_at(struct peer_sess *ps, const char *stage)
{
	if (find(ps, RPL_P_DROP, stage, NULL) != NULL) {
		replay_peer_note(ps->p, "drop at %s", stage);
		ps->st = P_DEAD;
		ps->close_after_output = true;
		return true;
	}
	if (find(ps, RPL_P_STALL, stage, NULL) != NULL) {
		replay_peer_note(ps->p, "stall at %s", stage);
		ps->st = P_DEAD;
		ps->stalled = true;
		return true;
	}
	return false;
}

/* The scripted reply for stage, or dflt. */
static const char *
reply_for(const struct peer_sess *ps, const char *stage, const char *rcpt,
    const char *dflt)
{
	const struct rpl_pdirective *d = find(ps, RPL_P_REPLY, stage, rcpt);
	return d != NULL ? d->text : dflt;
}

void
peer_sess_start(struct peer_sess *ps)
{
	replay_peer_note(ps->p, "connect %u", ps->conn);
	if (stops_at(ps, "greeting"))
		return;
	char dflt[RPL_NAME_MAX + 32];
	snprintf(dflt, sizeof dflt, "220 %s ESMTP replay", ps->p->name);
	const char *g = reply_for(ps, "greeting", NULL, dflt);
	say(ps, g);
	if (g[0] != '2') {
		/* RFC 5321 3.1: a 554 greeting is followed by QUIT handling only;
		 * this server simply closes after any refusing greeting. */
		ps->st = P_DEAD;
		ps->close_after_output = true;
	}
}

static bool
keyword_dropped(const struct peer_sess *ps, const char *kw)
{
	for (size_t i = 0; i < ps->p->ndir; i++) {
		const struct rpl_pdirective *d = &ps->p->dir[i];
		if (d->kind == RPL_P_NO_EXT &&
		    (d->conn == 0 || d->conn == ps->conn) &&
		    strcasecmp(d->text, kw) == 0)
			return true;
	}
	return false;
}

static void
ehlo_reply(struct peer_sess *ps)
{
	const struct rpl_pdirective *d = find(ps, RPL_P_REPLY, "EHLO", NULL);
	if (d != NULL) {
		say(ps, d->text);
		return;
	}
	const char *kw[24];
	size_t n = 0;
	static const char *const dflt[] = { "PIPELINING", "8BITMIME",
		"ENHANCEDSTATUSCODES" };
	for (size_t i = 0; i < 3; i++)
		if (!keyword_dropped(ps, dflt[i]))
			kw[n++] = dflt[i];
	if (!ps->in_tls && peer_sess_cert(ps)[0] != '\0' &&
	    !keyword_dropped(ps, "STARTTLS"))
		kw[n++] = "STARTTLS";
	for (size_t i = 0; i < ps->p->ndir && n < 24; i++) {
		const struct rpl_pdirective *e = &ps->p->dir[i];
		if (e->kind == RPL_P_EXT &&
		    (e->conn == 0 || e->conn == ps->conn))
			kw[n++] = e->text;
	}
	char line[RPL_TEXT_MAX + 8];
	snprintf(line, sizeof line, "250%c%s", n > 0 ? '-' : ' ', ps->p->name);
	say(ps, line);
	for (size_t i = 0; i < n; i++) {
		snprintf(line, sizeof line, "250%c%s", i + 1 < n ? '-' : ' ',
		    kw[i]);
		say(ps, line);
	}
}

/* The mailbox inside "TO:<a@b> ..." (for per-recipient replies). */
static void
path_of(const char *arg, char *out, size_t size)
{
	const char *lt = strchr(arg, '<');
	const char *gt = lt != NULL ? strchr(lt, '>') : NULL;
	size_t n = lt != NULL && gt != NULL ? (size_t)(gt - lt - 1) : 0;
	if (n >= size)
		n = size - 1;
	if (n > 0)
		memcpy(out, lt + 1, n);
	out[n] = '\0';
}

static void
command(struct peer_sess *ps, const char *line)
{
	replay_peer_note(ps->p, "%s%s", ps->in_tls ? "tls " : "", line);
	char verb[16];
	size_t v = 0;
	while (line[v] != '\0' && line[v] != ' ' && v + 1 < sizeof verb) {
		verb[v] = (char)(line[v] >= 'a' && line[v] <= 'z' ? line[v] - 32
		                                                  : line[v]);
		v++;
	}
	verb[v] = '\0';

	if (strcmp(verb, "EHLO") == 0 || strcmp(verb, "HELO") == 0) {
		if (stops_at(ps, verb))
			return;
		ps->have_mail = false;
		ps->rcpts_ok = 0;
		if (verb[0] == 'E') {
			ehlo_reply(ps);
		} else {
			char dflt[RPL_NAME_MAX + 8];
			snprintf(dflt, sizeof dflt, "250 %s", ps->p->name);
			say(ps, reply_for(ps, "HELO", NULL, dflt));
		}
	} else if (strcmp(verb, "STARTTLS") == 0) {
		if (stops_at(ps, "STARTTLS"))
			return;
		bool offered = !ps->in_tls && peer_sess_cert(ps)[0] != '\0';
		const char *r = reply_for(ps, "STARTTLS", NULL,
		    offered ? "220 2.0.0 Ready to start TLS"
		            : "502 5.5.1 STARTTLS not offered");
		say(ps, r);
		if (r[0] == '2' && !ps->in_tls)
			ps->starttls_now = true;
	} else if (strcmp(verb, "MAIL") == 0) {
		if (stops_at(ps, "MAIL"))
			return;
		const char *r = reply_for(ps, "MAIL", NULL, "250 2.1.0 Ok");
		say(ps, r);
		ps->have_mail = r[0] == '2';
		ps->rcpts_ok = 0;
	} else if (strcmp(verb, "RCPT") == 0) {
		if (stops_at(ps, "RCPT"))
			return;
		char rcpt[RPL_NAME_MAX];
		path_of(line, rcpt, sizeof rcpt);
		const char *r = !ps->have_mail
		    ? "503 5.5.1 Error: need MAIL command"
		    : reply_for(ps, "RCPT", rcpt, "250 2.1.5 Ok");
		say(ps, r);
		if (r[0] == '2')
			ps->rcpts_ok++;
	} else if (strcmp(verb, "DATA") == 0) {
		if (stops_at(ps, "DATA"))
			return;
		if (ps->rcpts_ok == 0) {
			say(ps, "554 5.5.1 Error: no valid recipients");
			return;
		}
		const char *r = reply_for(ps, "DATA", NULL,
		    "354 End data with <CR><LF>.<CR><LF>");
		say(ps, r);
		if (r[0] == '3') {
			ps->st = P_BODY;
			ps->body_bytes = 0;
		}
	} else if (strcmp(verb, "RSET") == 0) {
		if (stops_at(ps, "RSET"))
			return;
		ps->have_mail = false;
		ps->rcpts_ok = 0;
		say(ps, reply_for(ps, "RSET", NULL, "250 2.0.0 Ok"));
	} else if (strcmp(verb, "NOOP") == 0) {
		say(ps, "250 2.0.0 Ok");
	} else if (strcmp(verb, "QUIT") == 0) {
		if (stops_at(ps, "QUIT"))
			return;
		say(ps, reply_for(ps, "QUIT", NULL, "221 2.0.0 Bye"));
		ps->st = P_DEAD;
		ps->close_after_output = true;
	} else {
		say(ps, "502 5.5.2 Error: command not recognized");
	}
}

static void
body_line(struct peer_sess *ps, const char *line, size_t len)
{
	if (len == 1 && line[0] == '.') {
		ps->st = P_CMD;
		replay_peer_note(ps->p, "%smessage bytes=%zu",
		    ps->in_tls ? "tls " : "", ps->body_bytes);
		if (stops_at(ps, "DOT"))
			return;
		char dflt[64];
		snprintf(dflt, sizeof dflt, "250 2.0.0 Ok: queued as REPLAY%u",
		    ps->p->messages + 1);
		const char *r = reply_for(ps, "DOT", NULL, dflt);
		say(ps, r);
		if (r[0] == '2')
			ps->p->messages++;
		ps->have_mail = false;
		ps->rcpts_ok = 0;
		return;
	}
	ps->body_bytes += len + 2;
}

size_t
peer_sess_input(struct peer_sess *ps, const uint8_t *p, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if (ps->st == P_DEAD || ps->starttls_now)
			return len; /* nothing more is read */
		uint8_t c = p[i++];
		if (c != '\n') {
			if (ps->linelen + 1 < sizeof ps->line)
				ps->line[ps->linelen++] = (char)c;
			else
				ps->line_too_long = true;
			continue;
		}
		size_t n = ps->linelen;
		if (n > 0 && ps->line[n - 1] == '\r')
			n--;
		ps->line[n] = '\0';
		ps->linelen = 0;
		if (ps->line_too_long) {
			ps->line_too_long = false;
			if (ps->st == P_CMD)
				say(ps, "500 5.5.2 Error: line too long");
			continue;
		}
		if (ps->st == P_BODY)
			body_line(ps, ps->line, n);
		else
			command(ps, ps->line);
		if (ps->starttls_now)
			return i; /* the rest is discarded by the transport */
	}
	return i;
}

const uint8_t *
peer_sess_output(struct peer_sess *ps, size_t *len)
{
	*len = ps->outlen;
	return ps->out;
}

void
peer_sess_output_done(struct peer_sess *ps)
{
	ps->outlen = 0;
}

bool
peer_sess_take_starttls(struct peer_sess *ps)
{
	if (!ps->starttls_now)
		return false;
	ps->starttls_now = false;
	ps->in_tls = true;
	ps->linelen = 0;
	return true;
}

void
peer_sess_tls_up(struct peer_sess *ps, const char *sni)
{
	replay_peer_note(ps->p, "tls up sni=%s", sni != NULL ? sni : "(none)");
	ps->have_mail = false;
	ps->rcpts_ok = 0;
}

bool
peer_sess_closed(const struct peer_sess *ps)
{
	return ps->close_after_output;
}
