/*
 * Fuzz the RFC 7672 decision: input bytes choose every DNS fact, the
 * daemon protocol (tlsa_policy_tlsa_next until done) is followed, and the
 * verdict is checked against invariants that must hold for any input:
 * DANE only with usable DANE-TA/EE records from a secure TLSA answer, never
 * a connection after a bogus/failed lookup, never "Verified" via an
 * insecure MX (C33), errors never permit a connection.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct rd {
	const uint8_t *p;
	size_t n;
};

static uint8_t
take(struct rd *r)
{
	if (r->n == 0)
		return 0;
	r->n--;
	return *r->p++;
}

static struct tlsa_lookup
lookup(struct rd *r)
{
	uint8_t b = take(r);
	return (struct tlsa_lookup){ (enum tlsa_answer)(b & 3),
		(enum tlsa_dnssec)((b >> 2) & 3) };
}

static const char *const names[] = { "mx.example.net", "example.com",
	"mail.example.org", "x", "a.b.c.d" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd r = { data, size };
	uint8_t f = take(&r);
	struct tlsa_dest_in d = {
		.level = (enum tlsa_level)(
		    take(&r) % 6), /* 5 is invalid on purpose */
		.nexthop = names[take(&r) % 5],
		.nexthop_literal = f & 1,
		.no_mx = (f >> 1) & 1,
		.mx_null = (f >> 2) & 1,
		.port = 25,
	};
	d.mx = lookup(&r);
	if ((f >> 3) & 1)
		d.mx_expanded = names[take(&r) % 5];
	struct tlsa_host_in h = { .name = names[take(&r) % 5],
		.name_numeric = (f >> 4) & 1 };
	h.addr = lookup(&r);
	if ((f >> 5) & 1)
		h.expanded = names[take(&r) % 5];
	h.first_cname = (enum tlsa_dnssec)(take(&r) & 3);

	struct tlsa_record recs[TLSA_BASES_MAX][8];
	const char *base = NULL;
	int more;
	while ((more = tlsa_policy_tlsa_next(&d, &h, &base)) == 1) {
		if (h.n_tlsa >= TLSA_BASES_MAX)
			abort();
		struct tlsa_tlsa_in *t = &h.tlsa[h.n_tlsa];
		t->base = base;
		t->res = lookup(&r);
		uint8_t k = take(&r);
		t->malformed = (k & 0x80) != 0;
		size_t n = k & 7;
		for (size_t i = 0; i < n; i++) {
			size_t len = take(&r);
			if (len > r.n)
				len = r.n;
			if (tlsa_rdata_parse(r.p, len,
			        &recs[h.n_tlsa][t->n_recs]) > 0)
				t->n_recs++;
			r.p += len;
			r.n -= len;
		}
		t->recs = recs[h.n_tlsa];
		h.n_tlsa++;
	}

	struct tlsa_verdict v;
	int rc = tlsa_policy_decide(&d, &h, NULL, &v);
	if (rc < 0 && v.kind != TLSA_VERDICT_DO_NOT_CONNECT)
		abort();
	if (rc == 0 && more < 0)
		abort(); /* next() rejected facts that decide() accepted */
	if (v.kind == TLSA_VERDICT_DANE) {
		if (h.n_tlsa == 0)
			abort();
		const struct tlsa_tlsa_in *t = &h.tlsa[h.n_tlsa - 1];
		if (v.n_usable == 0 || t->res.dnssec != TLSA_DNSSEC_SECURE ||
		    t->res.answer != TLSA_ANSWER_DATA || t->malformed ||
		    d.nexthop_literal)
			abort();
		for (size_t i = 0; i < v.n_usable; i++)
			if (v.usable[i].usage < 2 || v.usable[i].usage > 3)
				abort();
		if (v.n_refs == 0 || strcmp(v.refs[0], v.base_domain) != 0)
			abort();
	}
	if (v.kind != TLSA_VERDICT_DO_NOT_CONNECT) {
		/* C09, C12, C40: no connection after a bogus or failed lookup. */
		if (!d.nexthop_literal && !d.no_mx &&
		    (d.mx.answer == TLSA_ANSWER_ERROR ||
		        d.mx.dnssec >= TLSA_DNSSEC_BOGUS))
			abort();
		for (size_t i = 0; i < h.n_tlsa; i++)
			if (h.tlsa[i].res.answer == TLSA_ANSWER_ERROR ||
			    h.tlsa[i].res.dnssec >= TLSA_DNSSEC_BOGUS ||
			    h.tlsa[i].malformed)
				abort();
		/* C30 and C62: dane-only connects only with DANE. */
		if (d.level == TLSA_LEVEL_DANE_ONLY &&
		    v.kind != TLSA_VERDICT_DANE)
			abort();
	}
	/* C33 */
	if (v.log_as == TLSA_TRUST_VERIFIED && !d.no_mx && !d.nexthop_literal &&
	    d.mx.answer == TLSA_ANSWER_DATA &&
	    d.mx.dnssec != TLSA_DNSSEC_SECURE)
		abort();
	char line[2048];
	if (tlsa_verdict_format(&v, line, sizeof(line)) != 0)
		abort();
	uint8_t key[32];
	if (tlsa_verdict_cache_key(&v, TLSA_CHANNEL_TLS, key) != 0)
		abort();
	tlsa_verdict_release(&v);
	return 0;
}
