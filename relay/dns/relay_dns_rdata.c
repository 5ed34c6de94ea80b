/*
 * relay_dns_rdata: the pure half of relay_dns. Parsers for the rdata that
 * libunbound returns, the DNSSEC classification of a struct ub_result, MX
 * ordering and host name normalisation. No I/O, no allocation, no logging.
 */
#include <assert.h>
#include <string.h>

#include <unbound.h>

#include "relay_dns.h"

/* RFC 1035 3.1: a label is at most 63 octets, a name at most 255 octets
 * including the length octets and the root label. */
#define DNS_LABEL_MAX 63
#define DNS_NAME_WIRE_MAX 255
/* Text form: 255 wire octets make at most 253 characters. */
#define DNS_NAME_TEXT_MAX 253

#define RCODE_NOERROR 0
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3

const char *
relay_dns_strerror(int err)
{
	switch (err) {
	case RELAY_DNS_OK:
		return "success";
	case RELAY_DNS_ERR_NOMEM:
		return "out of memory";
	case RELAY_DNS_ERR_CONFIG:
		return "resolver configuration refused";
	case RELAY_DNS_ERR_RESOLVER:
		return "resolver error";
	case RELAY_DNS_ERR_MALFORMED:
		return "malformed DNS data";
	case RELAY_DNS_ERR_NAME:
		return "not a valid host name";
	case RELAY_DNS_ERR_LOOP:
		return "event loop error";
	case RELAY_DNS_ERR_CLOSING:
		return "resolver is shutting down";
	default:
		return "unknown error";
	}
}

const char *
relay_dns_sec_name(enum relay_dns_sec s)
{
	switch (s) {
	case RELAY_DNS_SECURE:
		return "secure";
	case RELAY_DNS_INSECURE:
		return "insecure";
	case RELAY_DNS_BOGUS:
		return "bogus";
	case RELAY_DNS_INDETERMINATE:
		return "indeterminate";
	}
	return "?";
}

const char *
relay_dns_kind_name(enum relay_dns_kind k)
{
	switch (k) {
	case RELAY_DNS_DATA:
		return "data";
	case RELAY_DNS_NODATA:
		return "nodata";
	case RELAY_DNS_NXDOMAIN:
		return "nxdomain";
	case RELAY_DNS_FAILED:
		return "failed";
	}
	return "?";
}

const char *
relay_dns_why_name(enum relay_dns_why w)
{
	switch (w) {
	case RELAY_DNS_WHY_NONE:
		return "none";
	case RELAY_DNS_WHY_BOGUS:
		return "bogus";
	case RELAY_DNS_WHY_SERVFAIL:
		return "servfail";
	case RELAY_DNS_WHY_RCODE:
		return "rcode";
	case RELAY_DNS_WHY_TIMEOUT:
		return "timeout";
	case RELAY_DNS_WHY_LIBERR:
		return "resolver-error";
	case RELAY_DNS_WHY_MALFORMED:
		return "malformed";
	case RELAY_DNS_WHY_INCONSISTENT:
		return "inconsistent";
	}
	return "?";
}

static struct relay_dns_status
failed(enum relay_dns_sec sec, enum relay_dns_why why, int rcode)
{
	struct relay_dns_status st = {
		.sec = sec,
		.kind = RELAY_DNS_FAILED,
		.why = why,
		.rcode = rcode,
	};
	return st;
}

struct relay_dns_status
relay_dns_classify(int err, const struct ub_result *r)
{
	if (err != 0 || r == NULL)
		return failed(RELAY_DNS_INDETERMINATE, RELAY_DNS_WHY_LIBERR,
		    err);
	/* Bogus first: libunbound hands back bogus answers with rcode NOERROR,
	 * havedata=1 and bogus=1 (and SERVFAIL for others). Neither the rcode
	 * nor the data of such an answer may be used (RFC 7672 2.1.1, C04). A
	 * result claiming both secure and bogus is treated as bogus. */
	if (r->bogus)
		return failed(RELAY_DNS_BOGUS, RELAY_DNS_WHY_BOGUS, r->rcode);

	switch (r->rcode) {
	case RCODE_NOERROR:
	case RCODE_NXDOMAIN:
		break;
	case RCODE_SERVFAIL:
		/* C05: indeterminate is handled like bogus by the caller. */
		return failed(RELAY_DNS_INDETERMINATE, RELAY_DNS_WHY_SERVFAIL,
		    r->rcode);
	default:
		return failed(RELAY_DNS_INDETERMINATE, RELAY_DNS_WHY_RCODE,
		    r->rcode);
	}

	bool has_rdata = r->data != NULL && r->data[0] != NULL;
	struct relay_dns_status st = {
		.sec = r->secure ? RELAY_DNS_SECURE : RELAY_DNS_INSECURE,
		.why = RELAY_DNS_WHY_NONE,
		.rcode = r->rcode,
	};
	if (r->rcode == RCODE_NXDOMAIN || r->nxdomain) {
		/* Both flags must agree and an NXDOMAIN carries no data. */
		if (r->rcode != RCODE_NXDOMAIN || !r->nxdomain || r->havedata ||
		    has_rdata)
			return failed(RELAY_DNS_INDETERMINATE,
			    RELAY_DNS_WHY_INCONSISTENT, r->rcode);
		st.kind = RELAY_DNS_NXDOMAIN;
	} else if (r->havedata) {
		if (!has_rdata || r->len == NULL)
			return failed(RELAY_DNS_INDETERMINATE,
			    RELAY_DNS_WHY_INCONSISTENT, r->rcode);
		st.kind = RELAY_DNS_DATA;
	} else {
		if (has_rdata)
			return failed(RELAY_DNS_INDETERMINATE,
			    RELAY_DNS_WHY_INCONSISTENT, r->rcode);
		/* With secure=1 this is a validated denial (NSEC/NSEC3). */
		st.kind = RELAY_DNS_NODATA;
	}
	return st;
}

static bool
host_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static char
lower(uint8_t c)
{
	return (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
}

/* Walk a wire name; write its text form; *bad is set when a label holds a
 * byte that is not a host name character. Returns consumed or MALFORMED. */
static int
name_walk(const uint8_t *p, size_t len, char *out, bool *bad)
{
	size_t off = 0, o = 0, wire = 0;

	*bad = false;
	for (;;) {
		if (off >= len)
			return RELAY_DNS_ERR_MALFORMED;
		uint8_t l = p[off++];
		wire += 1u + l;
		if (l == 0)
			break;
		/* 0x40..0xFF are compression pointers or extended label types:
		 * never valid in the uncompressed rdata libunbound returns.
		 * The + 1 counts the root label still to come. */
		if (l > DNS_LABEL_MAX || wire + 1 > DNS_NAME_WIRE_MAX ||
		    l > len - off)
			return RELAY_DNS_ERR_MALFORMED;
		if (o > 0)
			out[o++] = '.';
		for (size_t i = 0; i < l; i++) {
			uint8_t c = p[off + i];
			if (!host_char(c)) {
				*bad = true;
				c = '?';
			}
			out[o++] = lower(c);
		}
		off += l;
	}
	if (o == 0)
		out[o++] = '.';
	assert(o <= DNS_NAME_TEXT_MAX);
	out[o] = '\0';
	return (int)off;
}

int
relay_dns_name_parse(const uint8_t *p, size_t len, char *out, size_t outsz)
{
	bool bad;

	assert(outsz >= RELAY_DNS_HOST_MAX);
	int r = name_walk(p, len, out, &bad);
	if (r < 0) {
		out[0] = '\0';
		return r;
	}
	return bad ? RELAY_DNS_ERR_NAME : r;
}

int
relay_dns_mx_parse(const uint8_t *p, size_t len, struct relay_dns_mx *out)
{
	bool bad;

	/* RFC 1035 3.3.9: PREFERENCE (16 bits), EXCHANGE (domain name). */
	out->host[0] = '\0';
	if (len < 3)
		return RELAY_DNS_ERR_MALFORMED;
	out->pref = (uint16_t)((uint16_t)p[0] << 8 | p[1]);
	int r = name_walk(p + 2, len - 2, out->host, &bad);
	if (r < 0 || (size_t)r != len - 2) {
		out->host[0] = '\0';
		return RELAY_DNS_ERR_MALFORMED;
	}
	return bad ? RELAY_DNS_ERR_NAME : 0;
}

int
relay_dns_a_parse(const uint8_t *p, size_t len, uint8_t out[4])
{
	/* RFC 1035 3.4.1: a 32-bit address. */
	if (len != 4)
		return RELAY_DNS_ERR_MALFORMED;
	memcpy(out, p, 4);
	return 0;
}

int
relay_dns_aaaa_parse(const uint8_t *p, size_t len, uint8_t out[16])
{
	/* RFC 3596 2.2: a 128-bit address. */
	if (len != 16)
		return RELAY_DNS_ERR_MALFORMED;
	memcpy(out, p, 16);
	return 0;
}

int
relay_dns_host_normalize(const char *in, size_t len,
    char out[RELAY_DNS_HOST_MAX])
{
	size_t label = 0;

	out[0] = '\0';
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_TEXT_MAX)
		return RELAY_DNS_ERR_NAME;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)in[i];
		if (c == '.') {
			if (label == 0)
				return RELAY_DNS_ERR_NAME;
			label = 0;
		} else if (host_char(c)) {
			if (++label > DNS_LABEL_MAX)
				return RELAY_DNS_ERR_NAME;
		} else {
			out[0] = '\0';
			return RELAY_DNS_ERR_NAME;
		}
		out[i] = lower(c);
	}
	if (label == 0) {
		out[0] = '\0';
		return RELAY_DNS_ERR_NAME;
	}
	out[len] = '\0';
	return 0;
}

/* Uniform value in [0, bound) by rejection, so no index is favoured. */
static uint32_t
rng_below(relay_dns_rng_fn *rng, void *arg, uint32_t bound)
{
	uint32_t limit = UINT32_MAX - (UINT32_MAX % bound);
	for (;;) {
		uint32_t v = rng(arg);
		if (v < limit)
			return v % bound;
	}
}

size_t
relay_dns_mx_order(struct relay_dns_mx *mx, size_t n, relay_dns_rng_fn *rng,
    void *rng_arg)
{
	struct relay_dns_mx tmp;

	/* Stable insertion sort by preference (RFC 5321 5.1; C27). The sets
	 * are small (one DNS answer). */
	for (size_t i = 1; i < n; i++) {
		size_t j = i;
		if (mx[j - 1].pref <= mx[j].pref)
			continue;
		tmp = mx[i];
		while (j > 0 && mx[j - 1].pref > tmp.pref) {
			mx[j] = mx[j - 1];
			j--;
		}
		mx[j] = tmp;
	}
	/* A host listed twice keeps its best (first) preference. */
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t k = 0; k < m && !dup; k++)
			dup = strcmp(mx[k].host, mx[i].host) == 0;
		if (!dup) {
			if (m != i)
				mx[m] = mx[i];
			m++;
		}
	}
	/* RFC 5321 5.1: randomise among equal preferences (Fisher-Yates on
	 * each run); never across preferences (C29). */
	for (size_t s = 0; s < m;) {
		size_t e = s + 1;
		while (e < m && mx[e].pref == mx[s].pref)
			e++;
		for (size_t i = e - 1; i > s; i--) {
			size_t j =
			    s + rng_below(rng, rng_arg, (uint32_t)(i - s + 1));
			if (j != i) {
				tmp = mx[i];
				mx[i] = mx[j];
				mx[j] = tmp;
			}
		}
		s = e;
	}
	return m;
}

const char *
relay_dns_validation_name(enum relay_dns_validation v)
{
	switch (v) {
	case RELAY_DNS_VALIDATION_UNKNOWN:
		return "unknown";
	case RELAY_DNS_VALIDATION_OK:
		return "ok";
	case RELAY_DNS_VALIDATION_FAILED:
		return "failed";
	}
	return "?";
}

const char *
relay_dns_dest_kind_name(enum relay_dns_dest_kind k)
{
	switch (k) {
	case RELAY_DNS_DEST_HOSTS:
		return "hosts";
	case RELAY_DNS_DEST_NULL_MX:
		return "null-mx";
	case RELAY_DNS_DEST_NXDOMAIN:
		return "nxdomain";
	case RELAY_DNS_DEST_DEFER:
		return "defer";
	}
	return "?";
}

struct tlsa_lookup
relay_dns_to_tlsa(const struct relay_dns_status *st)
{
	struct tlsa_lookup l = {
		.answer = TLSA_ANSWER_ERROR,
		.dnssec = TLSA_DNSSEC_INDETERMINATE,
	};

	switch (st->sec) {
	case RELAY_DNS_SECURE:
		l.dnssec = TLSA_DNSSEC_SECURE;
		break;
	case RELAY_DNS_INSECURE:
		l.dnssec = TLSA_DNSSEC_INSECURE;
		break;
	case RELAY_DNS_BOGUS:
		/* tlsa/ keeps ERROR for DNS failures (SERVFAIL, timeouts: 4.4.3)
		 * and reads dnssec for validation failures (4.7.5). The content
		 * of a bogus answer is never used; DATA is the fail-safe filler
		 * (were it ever read, "records present" cannot downgrade). */
		l.dnssec = TLSA_DNSSEC_BOGUS;
		l.answer = TLSA_ANSWER_DATA;
		return l;
	case RELAY_DNS_INDETERMINATE:
		return l; /* ERROR / INDETERMINATE */
	}
	switch (st->kind) {
	case RELAY_DNS_DATA:
		l.answer = TLSA_ANSWER_DATA;
		break;
	case RELAY_DNS_NODATA:
		l.answer = TLSA_ANSWER_NODATA;
		break;
	case RELAY_DNS_NXDOMAIN:
		l.answer = TLSA_ANSWER_NXDOMAIN;
		break;
	case RELAY_DNS_FAILED:
		l.answer = TLSA_ANSWER_ERROR;
		break;
	}
	return l;
}

/* Fisher-Yates over a[0..n). */
static void
addr_shuffle(struct relay_dns_addr *a, size_t n, relay_dns_rng_fn *rng,
    void *rng_arg)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = rng_below(rng, rng_arg, (uint32_t)i);
		if (j != i - 1) {
			struct relay_dns_addr tmp = a[i - 1];
			a[i - 1] = a[j];
			a[j] = tmp;
		}
	}
}

size_t
relay_dns_addr_order(const struct relay_dns_addr *v6, size_t n6,
    const struct relay_dns_addr *v4, size_t n4,
    enum relay_address_preference pref, relay_dns_rng_fn *rng, void *rng_arg,
    struct relay_dns_addr *out)
{
	size_t n = 0;

	switch (pref) {
	case RELAY_ADDRPREF_IPV6:
		for (size_t i = 0; i < n6; i++)
			out[n++] = v6[i];
		for (size_t i = 0; i < n4; i++)
			out[n++] = v4[i];
		return n;
	case RELAY_ADDRPREF_IPV4:
		for (size_t i = 0; i < n4; i++)
			out[n++] = v4[i];
		for (size_t i = 0; i < n6; i++)
			out[n++] = v6[i];
		return n;
	case RELAY_ADDRPREF_ANY:
		break;
	}
	/* Postfix's `any` with smtp_randomize_addresses and
	 * smtp_balance_inet_protocols (both on by default): random order, but
	 * the families alternate from a random first one, so that the first
	 * two attempts at a host use both whatever the per-host address limit
	 * (an outage of one family never blocks the other). */
	struct relay_dns_addr *s6 = out, *s4 = out + n6;
	for (size_t i = 0; i < n6; i++)
		s6[i] = v6[i];
	for (size_t i = 0; i < n4; i++)
		s4[i] = v4[i];
	addr_shuffle(s6, n6, rng, rng_arg);
	addr_shuffle(s4, n4, rng, rng_arg);
	if (n6 == 0 || n4 == 0)
		return n6 + n4;
	/* Interleave through a copy: out holds both runs. */
	struct relay_dns_addr tmp[2 * RELAY_DNS_MAX_ADDRS];
	size_t i6 = 0, i4 = 0;
	bool six = rng_below(rng, rng_arg, 2) == 0;
	while (i6 < n6 || i4 < n4) {
		if ((six && i6 < n6) || i4 == n4)
			tmp[n++] = s6[i6++];
		else
			tmp[n++] = s4[i4++];
		six = !six;
	}
	memcpy(out, tmp, n * sizeof *out);
	return n;
}
