/*
 * replay_scenario: the scenario file parser (format: README.md here).
 *
 * Strict on purpose: a scenario is a specification, and a typo that made a
 * line mean nothing would make the scenario pass for the wrong reason.
 * Every unknown word, missing field or bad value is an error naming the
 * file and line.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "relay_config.h"
#include "relay_dns.h"
#include "relay_queue.h"
#include "replay.h"

#define LINE_MAX_LEN 4096
/* Words of one line: an expect dsn-text regex may quote a whole sentence
 * of DSN prose. */
#define TOK_MAX 128

struct parser {
	const char *path;
	const char *data_dir;
	unsigned line;
	char *err;
	size_t errlen;
	struct rpl_scenario *sc;
};

static int __attribute__((format(printf, 2, 3)))
perr(struct parser *ps, const char *fmt, ...)
{
	char msg[RPL_TEXT_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errlen, "%s:%u: %s", ps->path, ps->line, msg);
	return -1;
}

/* Split s in place at blanks; returns the count (at most max). */
static size_t
split(char *s, char **tok, size_t max)
{
	size_t n = 0;
	char *p = s;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (n == max)
			return max + 1;
		tok[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
	return n;
}

static int
copy_field(struct parser *ps, char *dst, size_t size, const char *src,
    const char *what)
{
	size_t n = strlen(src);
	if (n == 0 || n >= size)
		return perr(ps, "%s: empty or too long", what);
	memcpy(dst, src, n + 1);
	return 0;
}

/* Lowercase, one trailing dot dropped ("." stays "."). */
static int
dns_name(struct parser *ps, char *dst, const char *src)
{
	size_t n = strlen(src);
	dst[0] = '\0'; /* defined even on error (perr() is not inlined) */
	if (n > 1 && src[n - 1] == '.')
		n--;
	if (n == 0 || n >= RPL_NAME_MAX)
		return perr(ps, "bad DNS name '%s'", src);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];
		if (!(isalnum(c) || c == '-' || c == '_' || c == '.'))
			return perr(ps, "bad DNS name '%s'", src);
		dst[i] = (char)tolower(c);
	}
	dst[n] = '\0';
	return 0;
}

static int
parse_uint(struct parser *ps, const char *s, unsigned long max,
    unsigned long *out, const char *what)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-') {
		/* The -1 spelled out: the analyzer does not follow the variadic
		 * perr(), and callers read *out whenever this returns 0. */
		perr(ps, "%s: '%s' is not a number up to %lu", what, s, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int
parse_dur(struct parser *ps, const char *s, uint64_t *ms)
{
	if (relay_config_parse_duration(s, strlen(s), ms) != 0)
		return perr(ps,
		    "bad duration '%s' (digits and ms, s, m, h, d or w)", s);
	return 0;
}

static int
parse_sec(struct parser *ps, const char *s, enum rpl_sec *out)
{
	static const char *const names[] = { "secure", "insecure", "bogus",
		"indeterminate" };
	for (size_t i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum rpl_sec)i;
			return 0;
		}
	return perr(ps,
	    "DNSSEC status '%s': want secure, insecure, bogus or indeterminate",
	    s);
}

static const struct {
	const char *name;
	uint16_t type;
} types[] = {
	{ "A", RELAY_DNS_TYPE_A },
	{ "AAAA", RELAY_DNS_TYPE_AAAA },
	{ "MX", RELAY_DNS_TYPE_MX },
	{ "CNAME", RELAY_DNS_TYPE_CNAME },
	{ "TLSA", RELAY_DNS_TYPE_TLSA },
	{ "SOA", RELAY_DNS_TYPE_SOA },
};

const char *
rpl_type_name(uint16_t type)
{
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (types[i].type == type)
			return types[i].name;
	return "TYPE?";
}

/* ------------------------------------------------------------- rdata */

struct wbuf {
	uint8_t b[2048];
	size_t n;
};

static int
put(struct parser *ps, struct wbuf *w, const void *p, size_t len)
{
	if (w->n + len > sizeof w->b)
		return perr(ps, "record data too long");
	memcpy(w->b + w->n, p, len);
	w->n += len;
	return 0;
}

/* Wire form of a host name (RFC 1035 3.1), "." being the root. */
static int
put_name(struct parser *ps, struct wbuf *w, const char *text)
{
	char name[RPL_NAME_MAX];
	if (dns_name(ps, name, text) != 0)
		return -1;
	const char *s = name;
	if (strcmp(name, ".") != 0) {
		while (*s != '\0') {
			const char *dot = strchr(s, '.');
			size_t n = dot != NULL ? (size_t)(dot - s) : strlen(s);
			if (n == 0 || n > 63)
				return perr(ps, "bad label in '%s'", text);
			uint8_t l = (uint8_t)n;
			if (put(ps, w, &l, 1) != 0 || put(ps, w, s, n) != 0)
				return -1;
			s += n + (dot != NULL);
		}
	}
	uint8_t zero = 0;
	return put(ps, w, &zero, 1);
}

static int
put_hex(struct parser *ps, struct wbuf *w, const char *hex)
{
	size_t n = strlen(hex);
	if (n % 2 != 0)
		return perr(ps, "odd number of hex digits in '%s'", hex);
	for (size_t i = 0; i < n; i += 2) {
		char two[3] = { hex[i], hex[i + 1], '\0' };
		if (!isxdigit((unsigned char)two[0]) ||
		    !isxdigit((unsigned char)two[1]))
			return perr(ps, "not hex: '%s'", hex);
		uint8_t b = (uint8_t)strtoul(two, NULL, 16);
		if (put(ps, w, &b, 1) != 0)
			return -1;
	}
	return 0;
}

/* {sha256-spki:NAME} and friends: data computed from tests/data/tlsa. */
static int
put_cert_ref(struct parser *ps, struct wbuf *w, const char *tok)
{
	size_t n = strlen(tok);
	char what[32], name[64];
	const char *colon = strchr(tok, ':');
	if (tok[n - 1] != '}' || colon == NULL ||
	    (size_t)(colon - tok - 1) >= sizeof what ||
	    n - (size_t)(colon - tok) - 2 >= sizeof name ||
	    n - (size_t)(colon - tok) - 2 == 0)
		return perr(ps, "bad reference '%s': want {DIGEST-PART:CERT}",
		    tok);
	memcpy(what, tok + 1, (size_t)(colon - tok - 1));
	what[colon - tok - 1] = '\0';
	memcpy(name, colon + 1, n - (size_t)(colon - tok) - 2);
	name[n - (size_t)(colon - tok) - 2] = '\0';
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
			return perr(ps, "bad certificate name '%s'", name);

	const EVP_MD *md = NULL;
	bool spki;
	if (strcmp(what, "cert") == 0)
		spki = false;
	else if (strcmp(what, "spki") == 0)
		spki = true;
	else if (strcmp(what, "sha256-cert") == 0)
		spki = false, md = EVP_sha256();
	else if (strcmp(what, "sha256-spki") == 0)
		spki = true, md = EVP_sha256();
	else if (strcmp(what, "sha512-cert") == 0)
		spki = false, md = EVP_sha512();
	else if (strcmp(what, "sha512-spki") == 0)
		spki = true, md = EVP_sha512();
	else
		return perr(ps,
		    "unknown reference kind '%s' (cert, spki, sha256-cert, "
		    "sha256-spki, sha512-cert, sha512-spki)",
		    what);

	char path[1200];
	snprintf(path, sizeof path, "%s/%s.pem", ps->data_dir, name);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return perr(ps, "cannot read certificate %s", path);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return perr(ps, "no certificate in %s", path);
	unsigned char *der = NULL;
	int len = spki ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)
	               : i2d_X509(x, &der);
	X509_free(x);
	if (len <= 0)
		return perr(ps, "cannot encode %s", path);
	int r;
	if (md == NULL) {
		r = put(ps, w, der, (size_t)len);
	} else {
		unsigned char dg[EVP_MAX_MD_SIZE];
		unsigned int dl = 0;
		if (EVP_Digest(der, (size_t)len, dg, &dl, md, NULL) != 1) {
			OPENSSL_free(der);
			return perr(ps, "digest failed");
		}
		r = put(ps, w, dg, dl);
	}
	OPENSSL_free(der);
	return r;
}

static int
parse_rdata(struct parser *ps, uint16_t type, char **tok, size_t n,
    struct wbuf *w)
{
	if (n >= 1 && strcmp(tok[0], "raw") == 0) {
		/* Any bytes, for malformed-rdata cases. */
		for (size_t i = 1; i < n; i++)
			if (put_hex(ps, w, tok[i]) != 0)
				return -1;
		return 0;
	}
	unsigned long v;
	switch (type) {
	case RELAY_DNS_TYPE_A:
	case RELAY_DNS_TYPE_AAAA: {
		uint8_t b[16];
		bool six = type == RELAY_DNS_TYPE_AAAA;
		if (n != 1 ||
		    inet_pton(six ? AF_INET6 : AF_INET, tok[0], b) != 1)
			return perr(ps, "%s wants one %s address",
			    six ? "AAAA" : "A", six ? "IPv6" : "IPv4");
		return put(ps, w, b, six ? 16 : 4);
	}
	case RELAY_DNS_TYPE_MX: {
		if (n != 2)
			return perr(ps, "MX wants PREFERENCE HOST");
		if (parse_uint(ps, tok[0], 65535, &v, "MX preference") != 0)
			return -1;
		uint8_t pref[2] = { (uint8_t)(v >> 8), (uint8_t)v };
		if (put(ps, w, pref, 2) != 0)
			return -1;
		return put_name(ps, w, tok[1]);
	}
	case RELAY_DNS_TYPE_CNAME:
		if (n != 1)
			return perr(ps, "CNAME wants one target");
		return put_name(ps, w, tok[0]);
	case RELAY_DNS_TYPE_TLSA: {
		if (n < 4)
			return perr(ps, "TLSA wants USAGE SELECTOR MTYPE DATA");
		for (size_t i = 0; i < 3; i++) {
			if (parse_uint(ps, tok[i], 255, &v, "TLSA field") != 0)
				return -1;
			uint8_t b = (uint8_t)v;
			if (put(ps, w, &b, 1) != 0)
				return -1;
		}
		for (size_t i = 3; i < n; i++) {
			int r = tok[i][0] == '{' ? put_cert_ref(ps, w, tok[i])
			                         : put_hex(ps, w, tok[i]);
			if (r != 0)
				return -1;
		}
		return 0;
	}
	default:
		return perr(ps, "no record syntax for this type; use raw HEX");
	}
}

/* --------------------------------------------------------------- dns */

static struct rpl_rrset *
rrset_get(struct rpl_scenario *sc, const char *name, uint16_t type)
{
	for (size_t i = 0; i < sc->nrrsets; i++)
		if (sc->rrsets[i].type == type &&
		    strcmp(sc->rrsets[i].name, name) == 0)
			return &sc->rrsets[i];
	return NULL;
}

static int
parse_dns(struct parser *ps, char **tok, size_t n)
{
	struct rpl_scenario *sc = ps->sc;
	if (n == 2 && strcmp(tok[0], "selftest") == 0) {
		if (strcmp(tok[1], "failing") != 0)
			return perr(ps,
			    "selftest: only 'selftest failing' is known");
		sc->selftest_failing = true;
		return 0;
	}
	if (strcmp(tok[0], "zone") == 0) {
		if (n != 3)
			return perr(ps, "zone wants NAME STATUS");
		if (sc->nzones == RPL_MAX_ZONES)
			return perr(ps, "too many zones");
		struct rpl_zone *z = &sc->zones[sc->nzones];
		if (dns_name(ps, z->name, tok[1]) != 0 ||
		    parse_sec(ps, tok[2], &z->sec) != 0)
			return -1;
		if (z->sec == RPL_INDETERMINATE)
			return perr(ps,
			    "a zone's denials are secure, insecure or bogus");
		sc->nzones++;
		return 0;
	}
	if (n < 3)
		return perr(ps,
		    "dns line wants NAME TYPE STATUS [canon=NAME] [DATA|nodata|"
		    "nxdomain|servfail|refused|timeout]");
	char name[RPL_NAME_MAX];
	if (dns_name(ps, name, tok[0]) != 0)
		return -1;
	uint16_t type = 0;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcmp(tok[1], types[i].name) == 0)
			type = types[i].type;
	if (type == 0)
		return perr(ps, "unknown type '%s' (A AAAA MX CNAME TLSA SOA)",
		    tok[1]);
	enum rpl_sec sec = RPL_INSECURE;
	if (parse_sec(ps, tok[2], &sec) != 0)
		return -1;
	size_t i = 3;
	char canon[RPL_NAME_MAX] = "";
	if (i < n && strncmp(tok[i], "canon=", 6) == 0) {
		if (dns_name(ps, canon, tok[i] + 6) != 0)
			return -1;
		i++;
	}
	enum rpl_answer ans = RPL_ANS_DATA;
	static const struct {
		const char *w;
		enum rpl_answer a;
	} words[] = {
		{ "nodata", RPL_ANS_NODATA },
		{ "nxdomain", RPL_ANS_NXDOMAIN },
		{ "servfail", RPL_ANS_SERVFAIL },
		{ "refused", RPL_ANS_REFUSED },
		{ "timeout", RPL_ANS_TIMEOUT },
	};
	if (i < n)
		for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
			if (strcmp(tok[i], words[k].w) == 0) {
				ans = words[k].a;
				if (i + 1 != n)
					return perr(ps,
					    "nothing may follow '%s'", tok[i]);
				i++;
				break;
			}
	if (sec == RPL_INDETERMINATE && i == n && ans == RPL_ANS_DATA)
		ans = RPL_ANS_SERVFAIL;
	bool fail = ans == RPL_ANS_SERVFAIL || ans == RPL_ANS_REFUSED ||
	    ans == RPL_ANS_TIMEOUT;
	if (fail != (sec == RPL_INDETERMINATE))
		return perr(ps,
		    "servfail, refused and timeout go with indeterminate, and "
		    "indeterminate with them");
	if (ans == RPL_ANS_DATA && i == n && sec != RPL_BOGUS)
		return perr(ps, "no record data (or nodata, nxdomain ...)");

	struct rpl_rrset *rs = rrset_get(sc, name, type);
	if (rs == NULL) {
		if (sc->nrrsets == RPL_MAX_RRSETS)
			return perr(ps, "too many answers");
		rs = &sc->rrsets[sc->nrrsets++];
		memcpy(rs->name, name, sizeof rs->name);
		rs->type = type;
		rs->sec = sec;
		rs->ans = ans;
		memcpy(rs->canon, canon, sizeof rs->canon);
		rs->line = ps->line;
	} else if (rs->sec != sec || rs->ans != RPL_ANS_DATA ||
	    ans != RPL_ANS_DATA || strcmp(rs->canon, canon) != 0) {
		return perr(ps,
		    "%s %s was already given at line %u with another status, "
		    "answer or canon",
		    name, tok[1], rs->line);
	}
	if (ans != RPL_ANS_DATA || i == n)
		return 0;
	if (rs->nrr == RPL_RR_MAX)
		return perr(ps, "too many records for %s %s", name, tok[1]);
	struct wbuf w = { .n = 0 };
	if (parse_rdata(ps, type, tok + i, n - i, &w) != 0)
		return -1;
	rs->rr[rs->nrr].p = malloc(w.n ? w.n : 1);
	if (rs->rr[rs->nrr].p == NULL)
		return perr(ps, "out of memory");
	memcpy(rs->rr[rs->nrr].p, w.b, w.n);
	rs->rr[rs->nrr].len = w.n;
	rs->nrr++;
	return 0;
}

/* -------------------------------------------------------------- peers */

static const char *const stages[] = {
	"greeting",
	"EHLO",
	"HELO",
	"STARTTLS",
	"tls",
	"MAIL",
	"RCPT",
	"DATA",
	"DOT",
	"RSET",
	"QUIT",
};

static int
parse_stage(struct parser *ps, const char *s, char *out)
{
	for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
		if (strcmp(s, stages[i]) == 0) {
			snprintf(out, 16, "%s", s);
			return 0;
		}
	return perr(ps,
	    "unknown stage '%s' (greeting EHLO HELO STARTTLS tls MAIL RCPT "
	    "DATA DOT RSET QUIT)",
	    s);
}

/* The rest of a line from token i on, blanks between tokens as one space. */
static void
join(char **tok, size_t from, size_t n, char *out, size_t size)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = from; i < n; i++) {
		int w = snprintf(out + o, size - o, "%s%s", i > from ? " " : "",
		    tok[i]);
		if (w < 0 || (size_t)w >= size - o)
			return;
		o += (size_t)w;
	}
}

static int
parse_peer_line(struct parser *ps, struct rpl_peer *p, char **tok, size_t n)
{
	unsigned conn = 0;
	if (strcmp(tok[0], "conn") == 0) {
		unsigned long v;
		if (n < 3 || parse_uint(ps, tok[1], 1000, &v, "conn") != 0 ||
		    v == 0)
			return n < 3 ? perr(ps, "conn wants N DIRECTIVE") : -1;
		conn = (unsigned)v;
		tok += 2;
		n -= 2;
	}
	if (p->ndir == RPL_PDIR_MAX)
		return perr(ps, "too many peer directives");
	struct rpl_pdirective *d = &p->dir[p->ndir];
	memset(d, 0, sizeof *d);
	d->conn = conn;
	d->line = ps->line;
	const char *w = tok[0];
	if (strcmp(w, "refuse") == 0 && n == 1)
		d->kind = RPL_P_REFUSE;
	else if (strcmp(w, "connect-timeout") == 0 && n == 1)
		d->kind = RPL_P_CONNECT_TIMEOUT;
	else if (strcmp(w, "tls-garbage") == 0 && n == 1)
		d->kind = RPL_P_TLS_GARBAGE;
	else if (strcmp(w, "cert") == 0 && n >= 2) {
		d->kind = RPL_P_CERT;
		for (size_t i = 1; i < n; i++) {
			char path[1200];
			snprintf(path, sizeof path, "%s/%s.pem", ps->data_dir,
			    tok[i]);
			FILE *f = fopen(path, "r");
			if (f == NULL)
				return perr(ps, "cannot read certificate %s",
				    path);
			fclose(f);
		}
		join(tok, 1, n, d->text, sizeof d->text);
	} else if (strcmp(w, "ext") == 0 && n >= 2) {
		d->kind = RPL_P_EXT;
		join(tok, 1, n, d->text, sizeof d->text);
	} else if (strcmp(w, "no-ext") == 0 && n == 2) {
		d->kind = RPL_P_NO_EXT;
		join(tok, 1, n, d->text, sizeof d->text);
	} else if ((strcmp(w, "drop") == 0 || strcmp(w, "stall") == 0) &&
	    n == 2) {
		d->kind = w[0] == 'd' ? RPL_P_DROP : RPL_P_STALL;
		if (parse_stage(ps, tok[1], d->cmd) != 0)
			return -1;
	} else if (strcmp(w, "reply") == 0 && n >= 3) {
		d->kind = RPL_P_REPLY;
		if (parse_stage(ps, tok[1], d->cmd) != 0)
			return -1;
		if (strcmp(d->cmd, "tls") == 0)
			return perr(ps,
			    "tls has no reply (use drop, stall or tls-garbage)");
		size_t i = 2;
		if (strchr(tok[2], '@') != NULL) {
			if (strcmp(d->cmd, "RCPT") != 0)
				return perr(ps,
				    "only RCPT replies take an address");
			if (copy_field(ps, d->addr, sizeof d->addr, tok[2],
			        "address") != 0)
				return -1;
			i = 3;
		}
		if (i >= n || strlen(tok[i]) != 3 ||
		    !isdigit((unsigned char)tok[i][0]) || tok[i][0] < '2' ||
		    tok[i][0] > '5' || !isdigit((unsigned char)tok[i][1]) ||
		    !isdigit((unsigned char)tok[i][2]))
			return perr(ps,
			    "reply wants a three-digit code 2xx-5xx, then text");
		join(tok, i, n, d->text, sizeof d->text);
	} else {
		return perr(ps,
		    "unknown peer directive '%s' (refuse connect-timeout cert "
		    "reply drop stall tls-garbage ext no-ext, each optionally after conn N)",
		    w);
	}
	p->ndir++;
	return 0;
}

/* ---------------------------------------------------------------- run */

static int
parse_notify(struct parser *ps, const char *s, unsigned *out)
{
	char buf[64];
	if (copy_field(ps, buf, sizeof buf, s, "notify") != 0)
		return -1;
	*out = 0;
	for (char *save = NULL, *w = strtok_r(buf, ",", &save); w != NULL;
	     w = strtok_r(NULL, ",", &save)) {
		if (strcmp(w, "never") == 0)
			*out |= RELAY_QUEUE_NOTIFY_NEVER;
		else if (strcmp(w, "success") == 0)
			*out |= RELAY_QUEUE_NOTIFY_SUCCESS;
		else if (strcmp(w, "failure") == 0)
			*out |= RELAY_QUEUE_NOTIFY_FAILURE;
		else if (strcmp(w, "delay") == 0)
			*out |= RELAY_QUEUE_NOTIFY_DELAY;
		else
			return perr(ps,
			    "notify: '%s' (never, success, failure, delay)", w);
	}
	return 0;
}

static int
parse_submit(struct parser *ps, struct rpl_action *a, char **tok, size_t n)
{
	struct rpl_submit *s = calloc(1, sizeof *s);
	if (s == NULL)
		return perr(ps, "out of memory");
	a->submit = s;
	for (size_t i = 1; i < n; i++) {
		const char *t = tok[i];
		unsigned long v;
		if (strncmp(t, "from=", 5) == 0) {
			/* "from=" alone is the null sender. */
			snprintf(s->from, sizeof s->from, "%s", t + 5);
		} else if (strncmp(t, "to=", 3) == 0) {
			if (s->nto == RPL_RCPT_MAX)
				return perr(ps, "too many recipients");
			if (copy_field(ps, s->to[s->nto], RPL_NAME_MAX, t + 3,
			        "to") != 0)
				return -1;
			s->nto++;
		} else if (strncmp(t, "notify=", 7) == 0) {
			if (s->nto == 0)
				return perr(ps,
				    "notify= belongs to the to= before it");
			if (parse_notify(ps, t + 7, &s->notify[s->nto - 1]) !=
			    0)
				return -1;
		} else if (strcmp(t, "ret=full") == 0) {
			s->ret_full = true;
		} else if (strcmp(t, "ret=hdrs") == 0) {
			s->ret_hdrs = true;
		} else if (strncmp(t, "envid=", 6) == 0) {
			if (copy_field(ps, s->envid, sizeof s->envid, t + 6,
			        "envid") != 0)
				return -1;
		} else if (strncmp(t, "body-bytes=", 11) == 0) {
			if (parse_uint(ps, t + 11, 50u * 1024 * 1024, &v,
			        "body-bytes") != 0)
				return -1;
			s->body_bytes = v;
		} else if (strncmp(t, "copies=", 7) == 0) {
			if (parse_uint(ps, t + 7, 100000, &v, "copies") != 0)
				return -1;
			s->copies = (unsigned)v;
		} else if (strcmp(t, "smtputf8") == 0) {
			s->smtputf8 = true;
		} else if (strcmp(t, "8bit") == 0) {
			s->eightbit = true;
		} else if (strcmp(t, "requiretls") == 0) {
			s->requiretls = true;
		} else if (strcmp(t, "tls-required-no") == 0) {
			s->tls_required_no = true;
		} else {
			return perr(ps,
			    "submit: unknown '%s' (from= to= notify= ret= envid= "
			    "body-bytes= copies= smtputf8 8bit requiretls tls-required-no)",
			    t);
		}
	}
	if (s->nto == 0)
		return perr(ps, "submit needs at least one to=");
	return 0;
}

static int
set_regex(struct parser *ps, struct rpl_action *a, char **tok, size_t from,
    size_t n)
{
	if (from >= n)
		return perr(ps, "missing regular expression");
	char re[RPL_TEXT_MAX * 2];
	join(tok, from, n, re, sizeof re);
	regex_t rx;
	int r = regcomp(&rx, re, REG_EXTENDED | REG_NOSUB);
	if (r != 0) {
		char m[128];
		regerror(r, &rx, m, sizeof m);
		return perr(ps, "bad regular expression: %s", m);
	}
	regfree(&rx);
	a->regex = strdup(re);
	if (a->regex == NULL)
		return perr(ps, "out of memory");
	return 0;
}

static int
parse_expect(struct parser *ps, struct rpl_action *a, char **tok, size_t n)
{
	unsigned long v;
	if (n < 2)
		return perr(ps, "expect what?");
	const char *w = tok[1];
	a->attempts = -1;
	if (strcmp(w, "log") == 0) {
		a->kind = RPL_A_EXPECT_LOG;
		return set_regex(ps, a, tok, 2, n);
	}
	if (strcmp(w, "no-log") == 0) {
		a->kind = RPL_A_EXPECT_NO_LOG;
		return set_regex(ps, a, tok, 2, n);
	}
	if (strcmp(w, "log-apart") == 0) {
		a->kind = RPL_A_EXPECT_LOG_APART;
		if (n < 3)
			return perr(ps, "log-apart wants REGEX");
		return set_regex(ps, a, tok, 2, n);
	}
	if (strcmp(w, "log-count") == 0) {
		a->kind = RPL_A_EXPECT_LOG_COUNT;
		if (n < 4 || parse_uint(ps, tok[2], 10000, &v, "count") != 0)
			return n < 4 ? perr(ps, "log-count wants N REGEX") : -1;
		a->count = (unsigned)v;
		return set_regex(ps, a, tok, 3, n);
	}
	if (strcmp(w, "transcript") == 0 || strcmp(w, "no-transcript") == 0) {
		a->kind = w[0] == 'n' ? RPL_A_EXPECT_NO_TRANSCRIPT
		                      : RPL_A_EXPECT_TRANSCRIPT;
		if (n < 4)
			return perr(ps, "%s wants ADDRESS REGEX", w);
		if (copy_field(ps, a->arg, sizeof a->arg, tok[2], "address") !=
		    0)
			return -1;
		return set_regex(ps, a, tok, 3, n);
	}
	if (strcmp(w, "query") == 0 || strcmp(w, "no-query") == 0) {
		a->kind =
		    w[0] == 'n' ? RPL_A_EXPECT_NO_QUERY : RPL_A_EXPECT_QUERY;
		return set_regex(ps, a, tok, 2, n);
	}
	if (strcmp(w, "connections") == 0 || strcmp(w, "messages") == 0) {
		a->kind = w[0] == 'c' ? RPL_A_EXPECT_CONNECTIONS
		                      : RPL_A_EXPECT_MESSAGES;
		if (n != 4)
			return perr(ps, "%s wants ADDRESS N", w);
		if (copy_field(ps, a->arg, sizeof a->arg, tok[2], "address") !=
		        0 ||
		    parse_uint(ps, tok[3], 10000, &v, "count") != 0)
			return -1;
		a->count = (unsigned)v;
		return 0;
	}
	if (strcmp(w, "dsn-text") == 0 || strcmp(w, "no-dsn-text") == 0) {
		a->kind = w[0] == 'n' ? RPL_A_EXPECT_NO_DSN_TEXT
		                      : RPL_A_EXPECT_DSN_TEXT;
		return set_regex(ps, a, tok, 2, n);
	}
	if (strcmp(w, "no-dsn") == 0) {
		a->kind = RPL_A_EXPECT_NO_DSN;
		if (n > 3)
			return perr(ps, "no-dsn takes at most a recipient");
		if (n == 3 &&
		    copy_field(ps, a->arg, sizeof a->arg, tok[2],
		        "recipient") != 0)
			return -1;
		return 0;
	}
	if (strcmp(w, "dsn") == 0) {
		a->kind = RPL_A_EXPECT_DSN;
		if (n != 5)
			return perr(ps, "dsn wants RCPT failed|delayed STATUS");
		if (strcmp(tok[3], "failed") != 0 &&
		    strcmp(tok[3], "delayed") != 0)
			return perr(ps, "dsn action '%s': failed or delayed",
			    tok[3]);
		if (copy_field(ps, a->arg, sizeof a->arg, tok[2],
		        "recipient") != 0 ||
		    copy_field(ps, a->state, sizeof a->state, tok[3],
		        "action") != 0 ||
		    copy_field(ps, a->dsn, sizeof a->dsn, tok[4], "status") !=
		        0)
			return -1;
		return 0;
	}
	if (strcmp(w, "queue") == 0) {
		a->kind = RPL_A_EXPECT_QUEUE;
		if (n < 4)
			return perr(ps,
			    "queue wants RCPT STATE [dsn=X] [class=Y] [attempts=N]");
		static const char *const st[] = { "pending", "deferred", "sent",
			"bounced", "removed" };
		bool ok = false;
		for (size_t i = 0; i < 5; i++)
			ok |= strcmp(tok[3], st[i]) == 0;
		if (!ok)
			return perr(ps,
			    "queue state '%s' (pending deferred sent bounced removed)",
			    tok[3]);
		if (copy_field(ps, a->arg, sizeof a->arg, tok[2],
		        "recipient") != 0 ||
		    copy_field(ps, a->state, sizeof a->state, tok[3],
		        "state") != 0)
			return -1;
		for (size_t i = 4; i < n; i++) {
			if (strncmp(tok[i], "dsn=", 4) == 0) {
				if (copy_field(ps, a->dsn, sizeof a->dsn,
				        tok[i] + 4, "dsn") != 0)
					return -1;
			} else if (strncmp(tok[i], "class=", 6) == 0) {
				if (copy_field(ps, a->klass, sizeof a->klass,
				        tok[i] + 6, "class") != 0)
					return -1;
			} else if (strncmp(tok[i], "attempts=", 9) == 0) {
				if (parse_uint(ps, tok[i] + 9, 1000, &v,
				        "attempts") != 0)
					return -1;
				a->attempts = (int)v;
			} else {
				return perr(ps, "queue: unknown '%s'", tok[i]);
			}
		}
		if (strcmp(a->state, "removed") == 0 && n > 4)
			return perr(ps,
			    "a removed message has no fields to check");
		return 0;
	}
	return perr(ps,
	    "unknown expectation '%s' (log no-log log-count log-apart queue dsn "
	    "no-dsn "
	    "connections messages transcript no-transcript query no-query)",
	    w);
}

/* `dns LINE` in the run section: the answer LINE (as in the dns section)
 * takes effect at that point. Parsed into a scratch scenario, whose one
 * answer the action keeps. */
static int
parse_run_dns(struct parser *ps, struct rpl_action *a, char **tok, size_t n)
{
	struct rpl_scenario *tmp = calloc(1, sizeof *tmp);
	if (tmp == NULL)
		return perr(ps, "out of memory");
	struct rpl_scenario *sc = ps->sc;
	ps->sc = tmp;
	int r = n > 0 ? parse_dns(ps, tok, n) : perr(ps, "dns wants a line");
	ps->sc = sc;
	if (r == 0 &&
	    (tmp->nrrsets != 1 || tmp->nzones != 0 || tmp->selftest_failing))
		r = perr(ps,
		    "a run dns line changes one answer (no zone, "
		    "no selftest)");
	if (r == 0) {
		a->rrset = malloc(sizeof *a->rrset);
		if (a->rrset == NULL)
			r = perr(ps, "out of memory");
		else
			*a->rrset = tmp->rrsets[0];
	}
	if (r != 0)
		for (size_t i = 0; i < tmp->nrrsets; i++)
			for (size_t k = 0; k < tmp->rrsets[i].nrr; k++)
				free(tmp->rrsets[i].rr[k].p);
	free(tmp);
	return r;
}

static int
parse_run(struct parser *ps, char **tok, size_t n)
{
	struct rpl_scenario *sc = ps->sc;
	if (sc->nactions == RPL_MAX_ACTIONS)
		return perr(ps, "too many run lines");
	struct rpl_action *a = &sc->actions[sc->nactions];
	memset(a, 0, sizeof *a);
	a->line = ps->line;
	int r;
	if (strcmp(tok[0], "submit") == 0) {
		a->kind = RPL_A_SUBMIT;
		r = parse_submit(ps, a, tok, n);
	} else if (strcmp(tok[0], "step") == 0 || strcmp(tok[0], "stop") == 0) {
		a->kind = tok[0][2] == 'e' ? RPL_A_STEP : RPL_A_STOP;
		r = n == 2 ? parse_dur(ps, tok[1], &a->ms)
		           : perr(ps, "%s wants one duration", tok[0]);
	} else if (strcmp(tok[0], "expect") == 0) {
		r = parse_expect(ps, a, tok, n);
	} else if (strcmp(tok[0], "dns") == 0) {
		a->kind = RPL_A_DNS;
		r = parse_run_dns(ps, a, tok + 1, n - 1);
	} else {
		r = perr(ps,
		    "unknown run line '%s' (submit step stop expect dns)",
		    tok[0]);
	}
	sc->nactions++; /* so that rpl_scenario_free() frees what was set */
	return r;
}

/* ------------------------------------------------------------ the file */

enum section {
	S_NONE,
	S_CONFIG,
	S_DNS,
	S_PEER,
	S_FILE,
	S_RUN
};

static int
append(struct parser *ps, char **buf, size_t *len, const char *text)
{
	size_t n = strlen(text);
	char *nb = realloc(*buf, *len + n + 2);
	if (nb == NULL)
		return perr(ps, "out of memory");
	memcpy(nb + *len, text, n);
	nb[*len + n] = '\n';
	nb[*len + n + 1] = '\0';
	*buf = nb;
	*len += n + 1;
	return 0;
}

static int
parse_header(struct parser *ps, char *line, enum section *sec,
    struct rpl_peer **peer, struct rpl_file **file, bool *have_run)
{
	struct rpl_scenario *sc = ps->sc;
	char *tok[TOK_MAX];
	if (strncmp(line, "title", 5) == 0 &&
	    (line[5] == ' ' || line[5] == '\t')) {
		if (sc->title[0] != '\0')
			return perr(ps, "a second title");
		char *t = line + 5;
		while (*t == ' ' || *t == '\t')
			t++;
		if (copy_field(ps, sc->title, sizeof sc->title, t, "title") !=
		    0)
			return -1;
		*sec = S_NONE;
		return 0;
	}
	if (strncmp(line, "todo", 4) == 0 &&
	    (line[4] == ' ' || line[4] == '\t')) {
		if (sc->todo[0] != '\0')
			return perr(ps, "a second todo");
		char *t = line + 4;
		while (*t == ' ' || *t == '\t')
			t++;
		if (copy_field(ps, sc->todo, sizeof sc->todo, t, "todo") != 0)
			return -1;
		*sec = S_NONE;
		return 0;
	}
	size_t n = split(line, tok, TOK_MAX);
	if (n == 1 && strcmp(tok[0], "config") == 0) {
		*sec = S_CONFIG;
	} else if (n == 1 && strcmp(tok[0], "dns") == 0) {
		*sec = S_DNS;
	} else if (n == 1 && strcmp(tok[0], "run") == 0) {
		if (*have_run)
			return perr(ps, "a second run section");
		*have_run = true;
		*sec = S_RUN;
	} else if ((n == 2 || n == 3) && strcmp(tok[0], "peer") == 0) {
		uint8_t b[16];
		if (inet_pton(AF_INET, tok[1], b) != 1 &&
		    inet_pton(AF_INET6, tok[1], b) != 1)
			return perr(ps,
			    "peer wants a numeric address, not '%s'", tok[1]);
		for (size_t i = 0; i < sc->npeers; i++)
			if (strcmp(sc->peers[i].addr, tok[1]) == 0)
				return perr(ps,
				    "peer %s was declared at line %u", tok[1],
				    sc->peers[i].line);
		if (sc->npeers == RPL_MAX_PEERS)
			return perr(ps, "too many peers");
		*peer = &sc->peers[sc->npeers++];
		memset(*peer, 0, sizeof **peer);
		(*peer)->line = ps->line;
		snprintf((*peer)->addr, sizeof(*peer)->addr, "%s", tok[1]);
		if (n == 3) {
			if (dns_name(ps, (*peer)->name, tok[2]) != 0)
				return -1;
		} else {
			snprintf((*peer)->name, sizeof(*peer)->name,
			    "mx.replay.test");
		}
		*sec = S_PEER;
	} else if (n == 2 && strcmp(tok[0], "file") == 0) {
		for (const char *c = tok[1]; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '-' &&
			    *c != '_' && *c != '.')
				return perr(ps, "bad file name '%s'", tok[1]);
		if (sc->nfiles == RPL_MAX_FILES)
			return perr(ps, "too many files");
		*file = &sc->files[sc->nfiles++];
		if (copy_field(ps, (*file)->name, sizeof(*file)->name, tok[1],
		        "file name") != 0)
			return -1;
		*sec = S_FILE;
	} else {
		return perr(ps,
		    "unknown section '%s' (title todo config dns peer file run)",
		    n > 0 ? tok[0] : "");
	}
	return 0;
}

int
rpl_scenario_load(const char *path, const char *data_dir,
    struct rpl_scenario **out, char *err, size_t errlen)
{
	*out = NULL;
	struct rpl_scenario *sc = calloc(1, sizeof *sc);
	struct parser ps = {
		.path = path,
		.data_dir = data_dir,
		.err = err,
		.errlen = errlen,
		.sc = sc,
	};
	if (sc == NULL)
		return perr(&ps, "out of memory");
	snprintf(sc->path, sizeof sc->path, "%s", path);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		perr(&ps, "cannot open: %s", strerror(errno));
		free(sc);
		return -1;
	}
	enum section sec = S_NONE;
	struct rpl_peer *peer = NULL;
	struct rpl_file *file = NULL;
	bool have_run = false;
	char line[LINE_MAX_LEN];
	int r = 0;
	while (r == 0 && fgets(line, sizeof line, f) != NULL) {
		ps.line++;
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			r = perr(&ps, "line too long");
			break;
		}
		while (len > 0 &&
		    (line[len - 1] == ' ' || line[len - 1] == '\t' ||
		        line[len - 1] == '\r'))
			line[--len] = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		if (p == line) {
			r = parse_header(&ps, line, &sec, &peer, &file,
			    &have_run);
			continue;
		}
		char *tok[TOK_MAX];
		switch (sec) {
		case S_NONE:
			r = perr(&ps, "indented line outside a section");
			break;
		case S_CONFIG:
			r = append(&ps, &sc->config, &sc->config_len, p);
			break;
		case S_FILE:
			r = append(&ps, &file->text, &file->len, p);
			break;
		case S_DNS:
		case S_PEER:
		case S_RUN: {
			size_t n = split(p, tok, TOK_MAX);
			if (n > TOK_MAX) {
				r = perr(&ps, "too many words");
				break;
			}
			r = sec == S_DNS    ? parse_dns(&ps, tok, n)
			    : sec == S_PEER ? parse_peer_line(&ps, peer, tok, n)
			                    : parse_run(&ps, tok, n);
			break;
		}
		}
	}
	fclose(f);
	if (r == 0 && sc->title[0] == '\0') {
		ps.line = 1;
		r = perr(&ps, "no title line");
	}
	if (r == 0 && !have_run) {
		ps.line++;
		r = perr(&ps, "no run section");
	}
	if (r == 0) {
		bool submit = false;
		for (size_t i = 0; i < sc->nactions; i++)
			submit |= sc->actions[i].kind == RPL_A_SUBMIT;
		if (!submit) {
			ps.line++;
			r = perr(&ps, "the run section submits nothing");
		}
	}
	if (r != 0) {
		rpl_scenario_free(sc);
		return -1;
	}
	*out = sc;
	return 0;
}

void
rpl_scenario_free(struct rpl_scenario *sc)
{
	if (sc == NULL)
		return;
	free(sc->config);
	for (size_t i = 0; i < sc->nfiles; i++)
		free(sc->files[i].text);
	for (size_t i = 0; i < sc->nrrsets; i++)
		for (size_t k = 0; k < sc->rrsets[i].nrr; k++)
			free(sc->rrsets[i].rr[k].p);
	for (size_t i = 0; i < sc->npeers; i++)
		for (size_t k = 0; k < sc->peers[i].ntranscript; k++)
			free(sc->peers[i].transcript[k]);
	for (size_t i = 0; i < sc->nactions; i++) {
		free(sc->actions[i].regex);
		free(sc->actions[i].submit);
		if (sc->actions[i].rrset != NULL) {
			for (size_t k = 0; k < sc->actions[i].rrset->nrr; k++)
				free(sc->actions[i].rrset->rr[k].p);
			free(sc->actions[i].rrset);
		}
	}
	free(sc);
}
