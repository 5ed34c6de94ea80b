/*
 * Unit tests for relay/dns/relay_dns_rdata.c: rdata parsers (fed whole, cut at
 * every offset, and with a byte appended), the DNSSEC classification of
 * struct ub_result (RFC 7672 2.1.1, C04/C05), host name normalisation and
 * MX ordering (RFC 5321 5.1, C27/C29, I30). One cmocka case per table row.
 *
 * rdata is a complete unit handed over by libunbound, so "split at every
 * offset" (STYLE.md 9) means: every proper prefix must be refused as
 * MALFORMED, never accepted as a shorter record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unbound.h>

#include "relay_dns.h"

/* ------------------------------------------------------------ names */

struct name_case {
	const char *id;
	const uint8_t *wire;
	size_t len;
	int rc;           /* expected: consumed (>0) or error */
	const char *text; /* expected text when rc > 0 or rc == ERR_NAME */
};

#define W(...)                                                                 \
	(const uint8_t[]){ __VA_ARGS__ },                                      \
	    sizeof((const uint8_t[]){ __VA_ARGS__ })

static uint8_t long_ok[255];  /* 255 octets: 3 x 63 + 61 labels + root */
static uint8_t long_bad[257]; /* 256 octets, well formed otherwise */
static char long_ok_text[254];

static void
build_long_names(void)
{
	/* 63+1 three times (192) + 61+1 (62) + root (1) = 255 octets. */
	size_t o = 0, t = 0;
	const size_t labels[] = { 63, 63, 63, 61 };
	for (size_t i = 0; i < 4; i++) {
		long_ok[o++] = (uint8_t)labels[i];
		if (i > 0)
			long_ok_text[t++] = '.';
		for (size_t k = 0; k < labels[i]; k++) {
			long_ok[o++] = 'a';
			long_ok_text[t++] = 'a';
		}
	}
	long_ok[o++] = 0;
	long_ok_text[t] = '\0';
	/* 62-octet last label: 256 octets. */
	o = 0;
	const size_t labels2[] = { 63, 63, 63, 62 };
	for (size_t i = 0; i < 4; i++) {
		long_bad[o++] = (uint8_t)labels2[i];
		for (size_t k = 0; k < labels2[i]; k++)
			long_bad[o++] = 'a';
	}
	long_bad[o++] = 0;
}

static struct name_case name_cases[] = {
	{ "root", W(0), 1, "." },
	{ "two labels", W(2, 'm', 'x', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0),
	    12, "mx.example" },
	{ "uppercase is lowered", W(2, 'M', 'X', 2, 'E', 'x', 0), 7, "mx.ex" },
	{ "underscore and hyphen", W(4, '_', '2', '5', '-', 1, 'x', 0), 8,
	    "_25-.x" },
	{ "digits only (numeric MX data)", W(3, '1', '9', '2', 1, '0', 0), 7,
	    "192.0" },
	{ "space in label is not a host name", W(3, 'a', ' ', 'b', 0),
	    RELAY_DNS_ERR_NAME, "a?b" },
	{ "dot inside a label", W(3, 'a', '.', 'b', 0), RELAY_DNS_ERR_NAME,
	    "a?b" },
	{ "NUL inside a label", W(2, 'a', 0, 0), RELAY_DNS_ERR_NAME, "a?" },
	{ "high byte inside a label", W(1, 0xc3, 0), RELAY_DNS_ERR_NAME, "?" },
	{ "compression pointer", W(0xc0, 0x0c), RELAY_DNS_ERR_MALFORMED, NULL },
	{ "pointer after a label", W(1, 'a', 0xc0, 0x0c),
	    RELAY_DNS_ERR_MALFORMED, NULL },
	{ "extended label type 0x40", W(0x41, 'a'), RELAY_DNS_ERR_MALFORMED,
	    NULL },
	{ "label of 64", W(64), RELAY_DNS_ERR_MALFORMED, NULL },
	{ "empty input", W(0), 0, NULL }, /* len set to 0 in main() */
	{ "label longer than the input", W(5, 'a', 'b'),
	    RELAY_DNS_ERR_MALFORMED, NULL },
	{ "255-octet name", NULL, 0, 0, NULL }, /* filled in main() */
	{ "256-octet name", NULL, 0, 0, NULL }, /* filled in main() */
};

static void
test_name(void **state)
{
	const struct name_case *c = *state;
	char out[RELAY_DNS_HOST_MAX];

	int rc = relay_dns_name_parse(c->wire, c->len, out, sizeof out);
	assert_int_equal(rc, c->rc);
	if (c->text != NULL)
		assert_string_equal(out, c->text);
	if (rc > 0 || rc == RELAY_DNS_ERR_NAME) {
		/* Every proper prefix lacks the root label: MALFORMED. */
		for (size_t cut = 0; cut < c->len; cut++) {
			char o2[RELAY_DNS_HOST_MAX];
			assert_int_equal(relay_dns_name_parse(c->wire, cut, o2,
			                     sizeof o2),
			    RELAY_DNS_ERR_MALFORMED);
		}
	}
	if (rc > 0) {
		/* Trailing bytes are not consumed: the name ends where it
		 * ends, whatever follows. */
		uint8_t *buf = malloc(c->len + 1);
		assert_non_null(buf);
		memcpy(buf, c->wire, c->len);
		buf[c->len] = 0xff;
		assert_int_equal(relay_dns_name_parse(buf, c->len + 1, out,
		                     sizeof out),
		    rc);
		free(buf);
	}
}

/* -------------------------------------------------------------- MX */

struct mx_case {
	const char *id;
	const uint8_t *wire;
	size_t len;
	int rc;
	uint16_t pref;
	const char *host;
	bool is_null;
};

static const struct mx_case mx_cases[] = {
	{ "MX 10 mx.example",
	    W(0, 10, 2, 'm', 'x', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0), 0,
	    10, "mx.example", false },
	{ "MX 65535 a", W(0xff, 0xff, 1, 'a', 0), 0, 65535, "a", false },
	{ "null MX 0 . (RFC 7505)", W(0, 0, 0), 0, 0, ".", true },
	{ "dot with preference 5 still null", W(0, 5, 0), 0, 5, ".", true },
	{ "exchange with a space", W(0, 1, 3, 'a', ' ', 'b', 0),
	    RELAY_DNS_ERR_NAME, 1, "a?b", false },
	{ "trailing byte after the name", W(0, 1, 1, 'a', 0, 0),
	    RELAY_DNS_ERR_MALFORMED, 0, "", false },
	{ "compressed exchange", W(0, 1, 0xc0, 0x0c), RELAY_DNS_ERR_MALFORMED,
	    0, "", false },
	{ "preference only", W(0, 1), RELAY_DNS_ERR_MALFORMED, 0, "", false },
};

static void
test_mx(void **state)
{
	const struct mx_case *c = *state;
	struct relay_dns_mx mx;

	int rc = relay_dns_mx_parse(c->wire, c->len, &mx);
	assert_int_equal(rc, c->rc);
	if (rc == 0 || rc == RELAY_DNS_ERR_NAME) {
		assert_int_equal(mx.pref, c->pref);
		assert_string_equal(mx.host, c->host);
		assert_int_equal(relay_dns_mx_is_null(&mx), c->is_null);
		for (size_t cut = 0; cut < c->len; cut++)
			assert_int_equal(relay_dns_mx_parse(c->wire, cut, &mx),
			    RELAY_DNS_ERR_MALFORMED);
		uint8_t *buf = malloc(c->len + 1);
		assert_non_null(buf);
		memcpy(buf, c->wire, c->len);
		buf[c->len] = 0;
		assert_int_equal(relay_dns_mx_parse(buf, c->len + 1, &mx),
		    RELAY_DNS_ERR_MALFORMED);
		free(buf);
	} else {
		assert_string_equal(mx.host, "");
	}
}

/* ---------------------------------------------------------- A/AAAA */

static void
test_a_lengths(void **state)
{
	const uint8_t in[20] = { 192, 0, 2, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
		9, 9, 9, 9, 9 };
	uint8_t out[4];

	(void)state;
	for (size_t len = 0; len <= sizeof in; len++) {
		int rc = relay_dns_a_parse(in, len, out);
		if (len == 4) {
			assert_int_equal(rc, 0);
			assert_memory_equal(out, in, 4);
		} else {
			assert_int_equal(rc, RELAY_DNS_ERR_MALFORMED);
		}
	}
}

static void
test_aaaa_lengths(void **state)
{
	uint8_t in[40], out[16];

	(void)state;
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (uint8_t)(0x20 + i);
	for (size_t len = 0; len <= sizeof in; len++) {
		int rc = relay_dns_aaaa_parse(in, len, out);
		if (len == 16) {
			assert_int_equal(rc, 0);
			assert_memory_equal(out, in, 16);
		} else {
			assert_int_equal(rc, RELAY_DNS_ERR_MALFORMED);
		}
	}
}

/* --------------------------------------------------- classification */

struct cls_case {
	const char *id;
	int err;
	bool null_result;
	int rcode, havedata, nxdomain, secure, bogus;
	int ndata; /* rdata items present in data[] */
	enum relay_dns_sec sec;
	enum relay_dns_kind kind;
	enum relay_dns_why why;
};

#define SEC RELAY_DNS_SECURE
#define INS RELAY_DNS_INSECURE
#define BOG RELAY_DNS_BOGUS
#define IND RELAY_DNS_INDETERMINATE

static const struct cls_case cls_cases[] = {
	{ "C04 secure data", 0, false, 0, 1, 0, 1, 0, 1, SEC, RELAY_DNS_DATA,
	    RELAY_DNS_WHY_NONE },
	{ "C04 insecure data", 0, false, 0, 1, 0, 0, 0, 2, INS, RELAY_DNS_DATA,
	    RELAY_DNS_WHY_NONE },
	{ "C04 secure denial NODATA", 0, false, 0, 0, 0, 1, 0, 0, SEC,
	    RELAY_DNS_NODATA, RELAY_DNS_WHY_NONE },
	{ "C04 insecure NODATA", 0, false, 0, 0, 0, 0, 0, 0, INS,
	    RELAY_DNS_NODATA, RELAY_DNS_WHY_NONE },
	{ "C04 secure NXDOMAIN", 0, false, 3, 0, 1, 1, 0, 0, SEC,
	    RELAY_DNS_NXDOMAIN, RELAY_DNS_WHY_NONE },
	{ "C04 insecure NXDOMAIN", 0, false, 3, 0, 1, 0, 0, 0, INS,
	    RELAY_DNS_NXDOMAIN, RELAY_DNS_WHY_NONE },
	{ "bogus with NOERROR and data is bogus, not data", 0, false, 0, 1, 0,
	    0, 1, 1, BOG, RELAY_DNS_FAILED, RELAY_DNS_WHY_BOGUS },
	{ "bogus with SERVFAIL", 0, false, 2, 0, 0, 0, 1, 0, BOG,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_BOGUS },
	{ "bogus NXDOMAIN", 0, false, 3, 0, 1, 0, 1, 0, BOG, RELAY_DNS_FAILED,
	    RELAY_DNS_WHY_BOGUS },
	{ "secure and bogus both set is bogus", 0, false, 0, 1, 0, 1, 1, 1, BOG,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_BOGUS },
	{ "C05 SERVFAIL is indeterminate", 0, false, 2, 0, 0, 0, 0, 0, IND,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_SERVFAIL },
	{ "SERVFAIL with secure flag is still indeterminate", 0, false, 2, 0, 0,
	    1, 0, 0, IND, RELAY_DNS_FAILED, RELAY_DNS_WHY_SERVFAIL },
	{ "REFUSED is indeterminate", 0, false, 5, 0, 0, 0, 0, 0, IND,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_RCODE },
	{ "FORMERR is indeterminate", 0, false, 1, 0, 0, 0, 0, 0, IND,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_RCODE },
	{ "library error", UB_SERVFAIL, false, 0, 1, 0, 1, 0, 1, IND,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_LIBERR },
	{ "library error without result", UB_NOMEM, true, 0, 0, 0, 0, 0, 0, IND,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_LIBERR },
	{ "no error but no result", 0, true, 0, 0, 0, 0, 0, 0, IND,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_LIBERR },
	{ "rcode NXDOMAIN without nxdomain flag", 0, false, 3, 0, 0, 1, 0, 0,
	    IND, RELAY_DNS_FAILED, RELAY_DNS_WHY_INCONSISTENT },
	{ "nxdomain flag with NOERROR", 0, false, 0, 0, 1, 1, 0, 0, IND,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_INCONSISTENT },
	{ "NXDOMAIN with data", 0, false, 3, 1, 1, 1, 0, 1, IND,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_INCONSISTENT },
	{ "havedata without rdata", 0, false, 0, 1, 0, 1, 0, 0, IND,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_INCONSISTENT },
	{ "rdata without havedata", 0, false, 0, 0, 0, 1, 0, 1, IND,
	    RELAY_DNS_FAILED, RELAY_DNS_WHY_INCONSISTENT },
};

static void
test_classify(void **state)
{
	const struct cls_case *c = *state;
	char rd[2][4] = { { 1, 2, 3, 4 }, { 5, 6, 7, 8 } };
	char *data[3] = { NULL, NULL, NULL };
	int len[3] = { 4, 4, 0 };
	struct ub_result r;

	memset(&r, 0, sizeof r);
	for (int i = 0; i < c->ndata; i++)
		data[i] = rd[i];
	r.qname = (char *)"x.example";
	r.data = data;
	r.len = len;
	r.rcode = c->rcode;
	r.havedata = c->havedata;
	r.nxdomain = c->nxdomain;
	r.secure = c->secure;
	r.bogus = c->bogus;
	struct relay_dns_status st =
	    relay_dns_classify(c->err, c->null_result ? NULL : &r);
	assert_string_equal(relay_dns_sec_name(st.sec),
	    relay_dns_sec_name(c->sec));
	assert_string_equal(relay_dns_kind_name(st.kind),
	    relay_dns_kind_name(c->kind));
	assert_string_equal(relay_dns_why_name(st.why),
	    relay_dns_why_name(c->why));
	/* Invariant: FAILED exactly for bogus/indeterminate. */
	assert_int_equal(st.kind == RELAY_DNS_FAILED,
	    st.sec == RELAY_DNS_BOGUS || st.sec == RELAY_DNS_INDETERMINATE);
	if (c->why == RELAY_DNS_WHY_LIBERR)
		assert_int_equal(st.rcode, c->err);

	/* The tlsa/ mapping keeps the same facts. */
	struct tlsa_lookup l = relay_dns_to_tlsa(&st);
	switch (st.sec) {
	case RELAY_DNS_SECURE:
	case RELAY_DNS_INSECURE:
		break;
	case RELAY_DNS_BOGUS:
		/* Validation failure: dnssec carries it, never ERROR. */
		assert_int_equal(l.answer, TLSA_ANSWER_DATA);
		assert_int_equal(l.dnssec, TLSA_DNSSEC_BOGUS);
		return;
	case RELAY_DNS_INDETERMINATE:
		assert_int_equal(l.answer, TLSA_ANSWER_ERROR);
		assert_int_equal(l.dnssec, TLSA_DNSSEC_INDETERMINATE);
		return;
	}
	switch (st.kind) {
	case RELAY_DNS_DATA:
		assert_int_equal(l.answer, TLSA_ANSWER_DATA);
		break;
	case RELAY_DNS_NODATA:
		assert_int_equal(l.answer, TLSA_ANSWER_NODATA);
		break;
	case RELAY_DNS_NXDOMAIN:
		assert_int_equal(l.answer, TLSA_ANSWER_NXDOMAIN);
		break;
	case RELAY_DNS_FAILED:
		assert_int_equal(l.answer, TLSA_ANSWER_ERROR);
		break;
	}
	switch (st.sec) {
	case RELAY_DNS_SECURE:
		assert_int_equal(l.dnssec, TLSA_DNSSEC_SECURE);
		break;
	case RELAY_DNS_INSECURE:
		assert_int_equal(l.dnssec, TLSA_DNSSEC_INSECURE);
		break;
	case RELAY_DNS_BOGUS:
		assert_int_equal(l.dnssec, TLSA_DNSSEC_BOGUS);
		break;
	case RELAY_DNS_INDETERMINATE:
		assert_int_equal(l.dnssec, TLSA_DNSSEC_INDETERMINATE);
		break;
	}
}

/* ---------------------------------------------------- normalisation */

struct norm_case {
	const char *id;
	const char *in;
	const char *out; /* NULL: ERR_NAME */
};

static char n253[254], n254[255], label63[80], label64[80];

static struct norm_case norm_cases[] = {
	{ "lowercase and trailing dot", "MX.Example.COM.", "mx.example.com" },
	{ "plain", "example", "example" },
	{ "underscore", "_25._tcp.mx.example", "_25._tcp.mx.example" },
	{ "empty", "", NULL },
	{ "root alone", ".", NULL },
	{ "two trailing dots", "a..", NULL },
	{ "empty label", "a..b", NULL },
	{ "leading dot", ".a", NULL },
	{ "C26 address literal", "[192.0.2.1]", NULL },
	{ "IPv6 literal", "[IPv6:2001:db8::1]", NULL },
	{ "space", "a b", NULL },
	{ "253 characters", n253, n253 },
	{ "254 characters", n254, NULL },
	{ "63-octet label", label63, label63 },
	{ "64-octet label", label64, NULL },
};

static void
build_norm_names(void)
{
	/* 253 = 63.63.63.61 */
	memset(n253, 'a', 253);
	n253[63] = n253[127] = n253[191] = '.';
	n253[253] = '\0';
	memset(n254, 'a', 254);
	n254[63] = n254[127] = n254[191] = '.';
	n254[254] = '\0';
	memset(label63, 'b', 63);
	memcpy(label63 + 63, ".x", 3);
	memset(label64, 'b', 64);
	memcpy(label64 + 64, ".x", 3);
}

static void
test_normalize(void **state)
{
	const struct norm_case *c = *state;
	char out[RELAY_DNS_HOST_MAX];

	int rc = relay_dns_host_normalize(c->in, strlen(c->in), out);
	if (c->out == NULL) {
		assert_int_equal(rc, RELAY_DNS_ERR_NAME);
		return;
	}
	assert_int_equal(rc, 0);
	assert_string_equal(out, c->out);
	/* Only len bytes are read: a prefix normalises as its own text. */
	size_t n = strlen(c->in);
	if (n > 1 && c->in[n - 1] != '.' && c->in[n - 2] != '.') {
		assert_int_equal(relay_dns_host_normalize(c->in, n - 1, out),
		    0);
		assert_int_equal(strlen(out), strlen(c->out) - 1);
	}
}

/* ---------------------------------------------------------- ordering */

struct script_rng {
	const uint32_t *v;
	size_t n, i;
};

static uint32_t
script_next(void *arg)
{
	struct script_rng *s = arg;
	return s->i < s->n ? s->v[s->i++] : 0;
}

static struct relay_dns_mx
mk(uint16_t pref, const char *host)
{
	struct relay_dns_mx m = { .pref = pref };
	snprintf(m.host, sizeof m.host, "%s", host);
	return m;
}

/* C27/C29: preferences ascend; equal runs stay inside their run. */
static void
test_order_sorted(void **state)
{
	struct relay_dns_mx mx[] = {
		mk(30, "c"),
		mk(10, "a1"),
		mk(20, "b"),
		mk(10, "a2"),
		mk(5, "z"),
		mk(10, "a3"),
	};
	(void)state;
	for (uint32_t seed = 0; seed < 64; seed++) {
		struct relay_dns_mx m[6];
		uint32_t vals[8];
		for (int i = 0; i < 8; i++)
			vals[i] = seed * 2654435761u + (uint32_t)i * 40503u;
		struct script_rng s = { vals, 8, 0 };
		memcpy(m, mx, sizeof m);
		size_t n = relay_dns_mx_order(m, 6, script_next, &s);
		assert_int_equal(n, 6);
		assert_string_equal(m[0].host, "z");
		for (size_t i = 1; i < 4; i++) {
			assert_int_equal(m[i].pref, 10);
			assert_int_equal(m[i].host[0], 'a');
		}
		assert_string_equal(m[4].host, "b");
		assert_string_equal(m[5].host, "c");
	}
}

/* I30: every order of an equal-preference run is reachable, each once for
 * the 3! rng outcomes (no bias from the shuffle itself). */
static void
test_order_uniform(void **state)
{
	int seen[6] = { 0 };
	(void)state;
	for (uint32_t x = 0; x < 3; x++) {
		for (uint32_t y = 0; y < 2; y++) {
			struct relay_dns_mx m[3] = { mk(10, "a"), mk(10, "b"),
				mk(10, "c") };
			uint32_t vals[2] = { x, y };
			struct script_rng s = { vals, 2, 0 };
			assert_int_equal(relay_dns_mx_order(m, 3, script_next,
			                     &s),
			    3);
			assert_int_equal(s.i, 2); /* n-1 draws for n items */
			int code = (m[0].host[0] - 'a') * 2 +
			    (m[1].host[0] - 'a' > m[2].host[0] - 'a');
			assert_true(code >= 0 && code < 6);
			seen[code]++;
		}
	}
	for (int i = 0; i < 6; i++)
		assert_int_equal(seen[i], 1);
}

/* A draw at or above the rejection limit is discarded, not folded. */
static void
test_order_rejection(void **state)
{
	struct relay_dns_mx m[3] = { mk(1, "a"), mk(1, "b"), mk(1, "c") };
	uint32_t vals[] = { UINT32_MAX, 2, UINT32_MAX, 1 };
	struct script_rng s = { vals, 4, 0 };
	(void)state;
	/* UINT32_MAX % 3 == 0, so limit = UINT32_MAX: UINT32_MAX rejected. */
	relay_dns_mx_order(m, 3, script_next, &s);
	assert_int_equal(s.i, 4);
	/* i=2: j=2 (no swap); i=1: j=1 (no swap). */
	assert_string_equal(m[0].host, "a");
	assert_string_equal(m[1].host, "b");
	assert_string_equal(m[2].host, "c");
}

/* A host listed twice keeps its best preference only. */
static void
test_order_dedupe(void **state)
{
	struct relay_dns_mx m[] = { mk(20, "mx1"), mk(10, "mx2"), mk(5, "mx1"),
		mk(10, "mx2") };
	uint32_t z = 0;
	struct script_rng s = { &z, 1, 0 };
	(void)state;
	size_t n = relay_dns_mx_order(m, 4, script_next, &s);
	assert_int_equal(n, 2);
	assert_string_equal(m[0].host, "mx1");
	assert_int_equal(m[0].pref, 5);
	assert_string_equal(m[1].host, "mx2");
	assert_int_equal(m[1].pref, 10);
}

static void
test_order_empty_and_one(void **state)
{
	struct relay_dns_mx m[1] = { mk(7, "only") };
	(void)state;
	assert_int_equal(relay_dns_mx_order(m, 0, script_next, NULL), 0);
	assert_int_equal(relay_dns_mx_order(m, 1, script_next, NULL), 1);
	assert_string_equal(m[0].host, "only");
}

static void
test_names_of_enums(void **state)
{
	(void)state;
	assert_string_equal(relay_dns_strerror(RELAY_DNS_ERR_MALFORMED),
	    "malformed DNS data");
	assert_string_equal(relay_dns_strerror(12345), "unknown error");
	assert_string_equal(relay_dns_dest_kind_name(RELAY_DNS_DEST_NULL_MX),
	    "null-mx");
	assert_string_equal(relay_dns_validation_name(
	                        RELAY_DNS_VALIDATION_FAILED),
	    "failed");
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- smtp_address_preference (relay_dns_addr_order) ---- */

static struct relay_dns_addr
addr4(uint8_t last)
{
	struct relay_dns_addr a = { .family = AF_INET };
	a.bytes[0] = 192;
	a.bytes[1] = 0;
	a.bytes[2] = 2;
	a.bytes[3] = last;
	return a;
}

static struct relay_dns_addr
addr6(uint8_t last)
{
	struct relay_dns_addr a = { .family = AF_INET6 };
	a.bytes[0] = 0x20;
	a.bytes[1] = 0x01;
	a.bytes[15] = last;
	return a;
}

static bool
addr_eq(const struct relay_dns_addr *x, const struct relay_dns_addr *y)
{
	return x->family == y->family && memcmp(x->bytes, y->bytes, 16) == 0;
}

/* ipv6 / ipv4: that family first, each family in answer order; no random
 * numbers are drawn (the rng would abort the test). */
static uint32_t
rng_unused(void *arg)
{
	(void)arg;
	fail_msg("rng called for a fixed preference");
	return 0;
}

static void
test_addr_order_family_first(void **state)
{
	const struct relay_dns_addr v6[] = { addr6(1), addr6(2) };
	const struct relay_dns_addr v4[] = { addr4(1), addr4(2), addr4(3) };
	struct relay_dns_addr out[5];
	(void)state;

	assert_int_equal(relay_dns_addr_order(v6, 2, v4, 3, RELAY_ADDRPREF_IPV6,
	                     rng_unused, NULL, out),
	    5);
	assert_true(addr_eq(&out[0], &v6[0]));
	assert_true(addr_eq(&out[1], &v6[1]));
	assert_true(addr_eq(&out[2], &v4[0]));
	assert_true(addr_eq(&out[3], &v4[1]));
	assert_true(addr_eq(&out[4], &v4[2]));

	assert_int_equal(relay_dns_addr_order(v6, 2, v4, 3, RELAY_ADDRPREF_IPV4,
	                     rng_unused, NULL, out),
	    5);
	assert_true(addr_eq(&out[0], &v4[0]));
	assert_true(addr_eq(&out[1], &v4[1]));
	assert_true(addr_eq(&out[2], &v4[2]));
	assert_true(addr_eq(&out[3], &v6[0]));
	assert_true(addr_eq(&out[4], &v6[1]));

	/* A preferred family with no addresses: the other one alone. */
	assert_int_equal(relay_dns_addr_order(v6, 0, v4, 1, RELAY_ADDRPREF_IPV6,
	                     rng_unused, NULL, out),
	    1);
	assert_true(addr_eq(&out[0], &v4[0]));
}

/* any: every address exactly once, the families alternating while both
 * last, and over many draws both families come first and every address
 * of a family takes every place within it. */
static void
test_addr_order_any_alternates(void **state)
{
	const struct relay_dns_addr v6[] = { addr6(1), addr6(2), addr6(3) };
	const struct relay_dns_addr v4[] = { addr4(1) };
	unsigned first6 = 0, first4 = 0, v6_first_pos[3] = { 0 };
	(void)state;

	for (uint32_t seed = 0; seed < 200; seed++) {
		/* xorshift32 from the seed: every bit of each draw varies
		 * (a linear mix of the seed would fix the low bit). */
		uint32_t vals[16], x = seed * 2654435761u + 1u;
		for (int i = 0; i < 16; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			vals[i] = x;
		}
		struct script_rng s = { vals, 16, 0 };
		struct relay_dns_addr out[4];
		assert_int_equal(relay_dns_addr_order(v6, 3, v4, 1,
		                     RELAY_ADDRPREF_ANY, script_next, &s, out),
		    4);
		/* The IPv4 address is among the first two: a host gets two
		 * attempts (DEST_ADDRS_PER_HOST), so both families are tried. */
		assert_true(out[0].family != out[1].family);
		if (out[0].family == AF_INET6)
			first6++;
		else
			first4++;
		bool seen[3] = { false, false, false }, seen4 = false;
		bool first_v6 = true;
		for (int i = 0; i < 4; i++) {
			if (out[i].family == AF_INET) {
				assert_true(addr_eq(&out[i], &v4[0]));
				assert_false(seen4);
				seen4 = true;
				continue;
			}
			int k = out[i].bytes[15] - 1;
			assert_true(k >= 0 && k < 3);
			assert_false(seen[k]);
			seen[k] = true;
			if (first_v6) {
				v6_first_pos[k]++;
				first_v6 = false;
			}
		}
		assert_true(seen4 && seen[0] && seen[1] && seen[2]);
	}
	assert_true(first6 > 0 && first4 > 0);
	for (int k = 0; k < 3; k++)
		assert_true(v6_first_pos[k] > 0);
}

static void
test_addr_order_any_one_family(void **state)
{
	const struct relay_dns_addr v4[] = { addr4(1), addr4(2) };
	uint32_t vals[] = { 0, 0, 0, 0 };
	struct script_rng s = { vals, 4, 0 };
	struct relay_dns_addr out[2];
	(void)state;

	assert_int_equal(relay_dns_addr_order(NULL, 0, v4, 2,
	                     RELAY_ADDRPREF_ANY, script_next, &s, out),
	    2);
	assert_true((addr_eq(&out[0], &v4[0]) && addr_eq(&out[1], &v4[1])) ||
	    (addr_eq(&out[0], &v4[1]) && addr_eq(&out[1], &v4[0])));
	assert_int_equal(relay_dns_addr_order(NULL, 0, NULL, 0,
	                     RELAY_ADDRPREF_ANY, script_next, &s, out),
	    0);
}

int
main(void)
{
	build_long_names();
	build_norm_names();
	/* Rows whose data is built at run time. */
	for (size_t i = 0; i < N(name_cases); i++) {
		struct name_case *c = &name_cases[i];
		if (strcmp(c->id, "empty input") == 0) {
			c->len = 0;
			c->rc = RELAY_DNS_ERR_MALFORMED;
		} else if (strcmp(c->id, "255-octet name") == 0) {
			c->wire = long_ok;
			c->len = sizeof long_ok;
			c->rc = 255;
			c->text = long_ok_text;
		} else if (strcmp(c->id, "256-octet name") == 0) {
			c->wire = long_bad;
			c->len = sizeof long_bad - 1;
			c->rc = RELAY_DNS_ERR_MALFORMED;
		} else if (c->rc == 0) {
			c->rc = (int)c->len; /* valid rows: all consumed */
		}
	}

	size_t total =
	    N(name_cases) + N(mx_cases) + N(cls_cases) + N(norm_cases) + 11;
	struct CMUnitTest *t = calloc(total, sizeof *t);
	size_t k = 0;
	if (t == NULL)
		return 1;
	for (size_t i = 0; i < N(name_cases); i++)
		t[k++] = (struct CMUnitTest){ name_cases[i].id, test_name, NULL,
			NULL, &name_cases[i] };
	for (size_t i = 0; i < N(mx_cases); i++)
		t[k++] = (struct CMUnitTest){ mx_cases[i].id, test_mx, NULL,
			NULL, (void *)&mx_cases[i] };
	for (size_t i = 0; i < N(cls_cases); i++)
		t[k++] = (struct CMUnitTest){ cls_cases[i].id, test_classify,
			NULL, NULL, (void *)&cls_cases[i] };
	for (size_t i = 0; i < N(norm_cases); i++)
		t[k++] = (struct CMUnitTest){ norm_cases[i].id, test_normalize,
			NULL, NULL, &norm_cases[i] };
	t[k++] = (struct CMUnitTest)cmocka_unit_test(test_a_lengths);
	t[k++] = (struct CMUnitTest)cmocka_unit_test(test_aaaa_lengths);
	t[k++] = (struct CMUnitTest)cmocka_unit_test(test_order_sorted);
	t[k++] = (struct CMUnitTest)cmocka_unit_test(test_order_uniform);
	t[k++] = (struct CMUnitTest)cmocka_unit_test(test_order_rejection);
	t[k++] = (struct CMUnitTest)cmocka_unit_test(test_order_dedupe);
	t[k++] = (struct CMUnitTest)cmocka_unit_test(test_order_empty_and_one);
	t[k++] = (struct CMUnitTest)cmocka_unit_test(test_names_of_enums);
	t[k++] =
	    (struct CMUnitTest)cmocka_unit_test(test_addr_order_family_first);
	t[k++] =
	    (struct CMUnitTest)cmocka_unit_test(test_addr_order_any_alternates);
	t[k++] =
	    (struct CMUnitTest)cmocka_unit_test(test_addr_order_any_one_family);
	int rc = _cmocka_run_group_tests("relay_dns_rdata", t, k, NULL, NULL);
	free(t);
	return rc;
}
