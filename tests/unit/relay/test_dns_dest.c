/*
 * Unit tests for relay/dns/relay_dns_dest.c, the destination driver: next-hop
 * domain -> MX -> A/AAAA -> first CNAME -> TLSA, as one relay_dns_result.
 *
 * The driver starts its lookups through dns->ops (dns_int.h). Here a
 * scripted resolver stands in for libunbound: it records every lookup the
 * driver starts, and each case answers them in order with struct ub_result
 * values shaped as libunbound hands them back, turned into answers by the
 * same dns__answer_from_ub() the daemon uses. The real resolver above
 * that seam is covered by tests/integration/dns (signed zones) and the
 * cname_bogus end-to-end test (a corrupting DNS proxy).
 *
 * Each case then asks tlsa/ what the relay would do with the result, the
 * way relay_dest.c does: tlsa_policy_destination(), tlsa_policy_decide()
 * per host; DO_NOT_CONNECT with scope host is "skip this MX host".
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

#include "relay_class.h"
#include "dns_int.h"

/* ------------------------------------------------- scripted resolver */

#define PENDING_MAX 32

struct pending {
	bool live;
	char name[RELAY_DNS_HOST_MAX + 16];
	uint16_t type;
	relay_dns_lookup_cb *cb;
	void *arg;
};

static struct pending pend[PENDING_MAX];
static size_t npend;

static int
fake_lookup(struct relay_dns *dns, const char *name, uint16_t rrtype,
    relay_dns_lookup_cb *cb, void *arg, struct relay_dns_query **out)
{
	(void)dns;
	assert_true(npend < PENDING_MAX);
	struct pending *p = &pend[npend++];
	assert_true(strlen(name) < sizeof p->name);
	snprintf(p->name, sizeof p->name, "%s", name);
	p->type = rrtype;
	p->cb = cb;
	p->arg = arg;
	p->live = true;
	if (out != NULL)
		*out = (struct relay_dns_query *)(void *)p;
	return 0;
}

static void
fake_cancel(struct relay_dns_query *q)
{
	((struct pending *)(void *)q)->live = false;
}

static const struct dns__lookup_ops fake_ops = {
	.lookup = fake_lookup,
	.cancel = fake_cancel,
};

static size_t
live_count(void)
{
	size_t n = 0;
	for (size_t i = 0; i < npend; i++)
		n += pend[i].live;
	return n;
}

static bool
is_pending(const char *name, uint16_t type)
{
	for (size_t i = 0; i < npend; i++)
		if (pend[i].live && pend[i].type == type &&
		    strcmp(pend[i].name, name) == 0)
			return true;
	return false;
}

/* Answer the one outstanding lookup of name/type with r (NULL and err for
 * a library error), as relay_dns.c's libunbound callback would. */
static void
answer(const char *name, uint16_t type, int err, const struct ub_result *r)
{
	struct pending *p = NULL;
	for (size_t i = 0; i < npend; i++)
		if (pend[i].live && pend[i].type == type &&
		    strcmp(pend[i].name, name) == 0) {
			assert_null(p); /* asked twice at once */
			p = &pend[i];
		}
	if (p == NULL)
		fail_msg("the driver did not ask %s/%u", name, type);
	/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): cmocka's failing assertion longjmps out, the analyzer cannot see it */
	p->live = false;
	char canon[RELAY_DNS_HOST_MAX];
	struct relay_dns_answer ans;
	dns__answer_from_ub(p->name, p->type, err, r, canon, &ans);
	p->cb(p->arg, &ans);
}

/* ----------------------------------------------- libunbound results */

enum sec {
	SECURE,
	INSECURE,
	BOGUS
};

struct fake_result {
	struct ub_result ub;
	char *data[9];
	int len[9];
	uint8_t rr[8][300];
	char canon[RELAY_DNS_HOST_MAX + 1];
	char qname[RELAY_DNS_HOST_MAX + 16];
};

/* Wire form of a host name (RFC 1035 3.1) at p; returns its length. */
static size_t
name_wire(const char *name, uint8_t *p)
{
	size_t o = 0;
	const char *s = name;
	while (*s != '\0') {
		const char *dot = strchr(s, '.');
		size_t n = dot != NULL ? (size_t)(dot - s) : strlen(s);
		assert_true(n > 0 && n < 64);
		p[o++] = (uint8_t)n;
		memcpy(p + o, s, n);
		o += n;
		s += n + (dot != NULL);
	}
	p[o++] = 0;
	return o;
}

/* A NOERROR result: rcode 0, security sec, canonical name canon (NULL: no
 * CNAME), no records yet (add them with add_rr; none is NODATA). */
static struct fake_result *
result(const char *qname, int qtype, enum sec sec, const char *canon)
{
	struct fake_result *f = calloc(1, sizeof *f);
	assert_non_null(f);
	snprintf(f->qname, sizeof f->qname, "%s", qname);
	f->ub.qname = f->qname;
	f->ub.qtype = qtype;
	f->ub.qclass = 1;
	f->ub.data = f->data;
	f->ub.len = f->len;
	f->ub.secure = sec == SECURE;
	f->ub.bogus = sec == BOGUS;
	f->ub.why_bogus =
	    sec == BOGUS ? (char *)"signature crypto failed" : NULL;
	f->ub.ttl = 300;
	if (canon != NULL) {
		snprintf(f->canon, sizeof f->canon, "%s.", canon);
		f->ub.canonname = f->canon;
	}
	return f;
}

static void
add_rr(struct fake_result *f, const uint8_t *rdata, size_t len)
{
	size_t i = 0;
	while (f->data[i] != NULL)
		i++;
	assert_true(i < 8 && len <= sizeof f->rr[i]);
	memcpy(f->rr[i], rdata, len);
	f->data[i] = (char *)f->rr[i];
	f->len[i] = (int)len;
	f->ub.havedata = 1;
}

static void
add_mx(struct fake_result *f, uint16_t pref, const char *host)
{
	uint8_t b[300] = { (uint8_t)(pref >> 8), (uint8_t)pref };
	add_rr(f, b, 2 + name_wire(host, b + 2));
}

static void
add_cname(struct fake_result *f, const char *target)
{
	uint8_t b[300];
	add_rr(f, b, name_wire(target, b));
}

static const uint8_t A_192_0_2_1[] = { 192, 0, 2, 1 };
/* TLSA 3 1 1 with a 32-octet digest: usable for DANE-EE. */
static const uint8_t TLSA_311[35] = { 3, 1, 1, 0xab };

static struct fake_result *
servfail(const char *qname, int qtype)
{
	struct fake_result *f = result(qname, qtype, INSECURE, NULL);
	f->ub.rcode = 2; /* SERVFAIL */
	return f;
}

/* Answer and free. */
static void
give(const char *name, uint16_t type, struct fake_result *f)
{
	answer(name, type, 0, &f->ub);
	free(f);
}

/* ----------------------------------------------------- the driver */

static struct relay_dns dns;
static struct relay_dns_result *got;
static int got_calls;

static uint32_t
fixed_rng(void *arg)
{
	(void)arg;
	return 0;
}

static void
dest_cb(void *arg, struct relay_dns_result *res)
{
	(void)arg;
	got_calls++;
	got = res;
}

static int
setup(void **state)
{
	(void)state;
	memset(&dns, 0, sizeof dns);
	dns.ops = &fake_ops;
	dns.rng = fixed_rng;
	memset(pend, 0, sizeof pend);
	npend = 0;
	got = NULL;
	got_calls = 0;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	relay_dns_result_free(got);
	got = NULL;
	assert_null(dns.reqs);
	return 0;
}

static void
resolve(const char *domain, enum tlsa_level level)
{
	assert_int_equal(relay_dns_resolve(&dns, domain, 25, level, dest_cb,
	                     NULL, NULL),
	    0);
	assert_true(is_pending(domain, RELAY_DNS_TYPE_MX));
}

/* The relay's verdict for host i, checked for internal consistency. */
static void
decide(size_t i, struct tlsa_verdict *v)
{
	struct tlsa_dest_verdict dv;
	assert_non_null(got);
	assert_int_equal(got_calls, 1);
	assert_int_equal(live_count(), 0);
	assert_int_equal(tlsa_policy_destination(&got->dest, &dv), 0);
	assert_int_equal(dv.action, TLSA_DEST_USE_MX);
	assert_true(i < got->nhosts);
	assert_int_equal(tlsa_policy_decide(&got->dest, &got->hosts[i].in, NULL,
	                     v),
	    0);
}

#define D "example.net"
#define MXH "mx.example.net"
#define HOSTER "mx.hoster.example"

/* MX secure -> A insecure through a CNAME -> AAAA NODATA through the same
 * CNAME: the driver must ask the first CNAME of MXH (C39). */
static void
mx_then_addresses_via_cname(enum tlsa_level level)
{
	resolve(D, level);
	struct fake_result *f = result(D, RELAY_DNS_TYPE_MX, SECURE, NULL);
	add_mx(f, 10, MXH);
	give(D, RELAY_DNS_TYPE_MX, f);
	f = result(MXH, RELAY_DNS_TYPE_A, INSECURE, HOSTER);
	add_rr(f, A_192_0_2_1, sizeof A_192_0_2_1);
	give(MXH, RELAY_DNS_TYPE_A, f);
	assert_null(got);
	give(MXH, RELAY_DNS_TYPE_AAAA,
	    result(MXH, RELAY_DNS_TYPE_AAAA, INSECURE, HOSTER));
	assert_null(got);
	assert_true(is_pending(MXH, RELAY_DNS_TYPE_CNAME));
}

/* RFC 7672 2.1.3 (C16) and 2.2.2 (C40): a bogus first CNAME is a failed
 * lookup. Before, it was read as an insecure one: verdict may. */
static void
cname_bogus_skips_host(void **state)
{
	(void)state;
	mx_then_addresses_via_cname(TLSA_LEVEL_DANE);
	struct fake_result *f = result(MXH, RELAY_DNS_TYPE_CNAME, BOGUS, NULL);
	add_cname(f, HOSTER);
	give(MXH, RELAY_DNS_TYPE_CNAME, f);

	struct tlsa_verdict v;
	decide(0, &v);
	const struct relay_dns_host *h = &got->hosts[0];
	assert_true(h->cname.done);
	assert_int_equal(h->cname.st.sec, RELAY_DNS_BOGUS);
	assert_int_equal(h->in.n_tlsa, 0);
	assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
	assert_int_equal(v.scope, TLSA_SCOPE_HOST);
	assert_false(v.permanent);
	assert_string_equal(v.status, "4.7.5");
	assert_int_equal(v.fclass, TLSA_FAIL_DNSSEC_INVALID);
	assert_string_equal(relay_fail_class_name(
	                        relay_class_dns(v.fclass, got, h)),
	    "dnssec-bogus");
	tlsa_verdict_release(&v);
}

/* The same under dane-only: a DNSSEC failure, not "DANE required". */
static void
cname_bogus_dane_only_skips_host(void **state)
{
	(void)state;
	mx_then_addresses_via_cname(TLSA_LEVEL_DANE_ONLY);
	struct fake_result *f = result(MXH, RELAY_DNS_TYPE_CNAME, BOGUS, NULL);
	add_cname(f, HOSTER);
	give(MXH, RELAY_DNS_TYPE_CNAME, f);

	struct tlsa_verdict v;
	decide(0, &v);
	assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
	assert_int_equal(v.scope, TLSA_SCOPE_HOST);
	assert_string_equal(v.status, "4.7.5");
	assert_int_equal(v.fclass, TLSA_FAIL_DNSSEC_INVALID);
	tlsa_verdict_release(&v);
}

/* SERVFAIL (indeterminate, C05) for the first CNAME: skip the host with
 * 4.7.5 like a bogus one. */
static void
cname_servfail_skips_host(void **state)
{
	(void)state;
	mx_then_addresses_via_cname(TLSA_LEVEL_DANE);
	give(MXH, RELAY_DNS_TYPE_CNAME, servfail(MXH, RELAY_DNS_TYPE_CNAME));

	struct tlsa_verdict v;
	decide(0, &v);
	const struct relay_dns_host *h = &got->hosts[0];
	assert_int_equal(h->cname.st.sec, RELAY_DNS_INDETERMINATE);
	assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
	assert_int_equal(v.scope, TLSA_SCOPE_HOST);
	assert_string_equal(v.status, "4.7.5");
	assert_int_equal(v.fclass, TLSA_FAIL_DNSSEC_INVALID);
	assert_string_equal(relay_fail_class_name(
	                        relay_class_dns(v.fclass, got, h)),
	    "dns-lookup");
	tlsa_verdict_release(&v);
}

/* A library error (no result at all) for the first CNAME: the same. */
static void
cname_liberr_skips_host(void **state)
{
	(void)state;
	mx_then_addresses_via_cname(TLSA_LEVEL_DANE);
	answer(MXH, RELAY_DNS_TYPE_CNAME, UB_SERVFAIL, NULL);

	struct tlsa_verdict v;
	decide(0, &v);
	assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
	assert_int_equal(v.scope, TLSA_SCOPE_HOST);
	assert_string_equal(v.status, "4.7.5");
	tlsa_verdict_release(&v);
}

/* Control: a secure first CNAME leads to the original name's TLSA (C39),
 * and a secure usable record to DANE. */
static void
cname_secure_looks_up_original_tlsa(void **state)
{
	(void)state;
	mx_then_addresses_via_cname(TLSA_LEVEL_DANE);
	struct fake_result *f = result(MXH, RELAY_DNS_TYPE_CNAME, SECURE, NULL);
	add_cname(f, HOSTER);
	give(MXH, RELAY_DNS_TYPE_CNAME, f);
	assert_null(got);
	const char *q = "_25._tcp." MXH;
	f = result(q, RELAY_DNS_TYPE_TLSA, SECURE, NULL);
	add_rr(f, TLSA_311, sizeof TLSA_311);
	give(q, RELAY_DNS_TYPE_TLSA, f);

	struct tlsa_verdict v;
	decide(0, &v);
	assert_int_equal(got->hosts[0].in.first_cname, TLSA_DNSSEC_SECURE);
	assert_int_equal(v.kind, TLSA_VERDICT_DANE);
	assert_string_equal(v.base_domain, MXH);
	tlsa_verdict_release(&v);
}

/* Control: an insecure first CNAME means no DANE (C39): opportunistic. */
static void
cname_insecure_is_may(void **state)
{
	(void)state;
	mx_then_addresses_via_cname(TLSA_LEVEL_DANE);
	struct fake_result *f =
	    result(MXH, RELAY_DNS_TYPE_CNAME, INSECURE, NULL);
	add_cname(f, HOSTER);
	give(MXH, RELAY_DNS_TYPE_CNAME, f);

	struct tlsa_verdict v;
	decide(0, &v);
	assert_int_equal(got->hosts[0].in.first_cname, TLSA_DNSSEC_INSECURE);
	assert_int_equal(v.kind, TLSA_VERDICT_MAY);
	tlsa_verdict_release(&v);
}

/* A bogus first CNAME on the first MX host only: the relay goes on to the
 * second, whose DANE verdict stands. */
static void
cname_bogus_next_mx(void **state)
{
	(void)state;
	const char *mx2 = "mx2.example.net";
	resolve(D, TLSA_LEVEL_DANE);
	struct fake_result *f = result(D, RELAY_DNS_TYPE_MX, SECURE, NULL);
	add_mx(f, 10, MXH);
	add_mx(f, 20, mx2);
	give(D, RELAY_DNS_TYPE_MX, f);
	f = result(MXH, RELAY_DNS_TYPE_A, INSECURE, HOSTER);
	add_rr(f, A_192_0_2_1, sizeof A_192_0_2_1);
	give(MXH, RELAY_DNS_TYPE_A, f);
	give(MXH, RELAY_DNS_TYPE_AAAA,
	    result(MXH, RELAY_DNS_TYPE_AAAA, INSECURE, HOSTER));
	f = result(MXH, RELAY_DNS_TYPE_CNAME, BOGUS, NULL);
	add_cname(f, HOSTER);
	give(MXH, RELAY_DNS_TYPE_CNAME, f);
	f = result(mx2, RELAY_DNS_TYPE_A, SECURE, NULL);
	add_rr(f, A_192_0_2_1, sizeof A_192_0_2_1);
	give(mx2, RELAY_DNS_TYPE_A, f);
	give(mx2, RELAY_DNS_TYPE_AAAA,
	    result(mx2, RELAY_DNS_TYPE_AAAA, SECURE, NULL));
	const char *q = "_25._tcp.mx2.example.net";
	f = result(q, RELAY_DNS_TYPE_TLSA, SECURE, NULL);
	add_rr(f, TLSA_311, sizeof TLSA_311);
	give(q, RELAY_DNS_TYPE_TLSA, f);

	struct tlsa_verdict v;
	decide(0, &v);
	assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
	assert_int_equal(v.scope, TLSA_SCOPE_HOST);
	tlsa_verdict_release(&v);
	decide(1, &v);
	assert_int_equal(v.kind, TLSA_VERDICT_DANE);
	tlsa_verdict_release(&v);
}

/* ------------------------------------ answers freed on error paths */

/*
 * An MX RRset reached through a CNAME (so the result holds the expanded
 * next-hop, RFC 7672 3.2.2 C54) whose rdata is malformed. The MX lookup
 * fails (C12), and the expanded name the policy reads must still be valid
 * memory: run under ASan, this used to read freed memory.
 */
struct bad_mx {
	const char *id;
	uint8_t rdata[40];
	size_t len;
};

static const struct bad_mx bad_mx[] = {
	{ "rdlength_0", { 0 }, 0 },
	{ "rdlength_2", { 0, 10 }, 2 },
	{ "trailing_bytes", { 0, 10, 2, 'm', 'x', 0, 0xff }, 7 },
};

static void
mx_malformed_via_cname(void **state)
{
	const struct bad_mx *c = *state;
	resolve(D, TLSA_LEVEL_DANE);
	struct fake_result *f =
	    result(D, RELAY_DNS_TYPE_MX, SECURE, "mail.example.com");
	add_mx(f, 10, MXH);
	add_rr(f, c->rdata, c->len);
	give(D, RELAY_DNS_TYPE_MX, f);

	assert_non_null(got);
	assert_int_equal(live_count(), 0);
	assert_int_equal(got->kind, RELAY_DNS_DEST_DEFER);
	assert_int_equal(got->mx.st.why, RELAY_DNS_WHY_MALFORMED);
	/* What relay_dest.c and relay_probe.c do first with a result. */
	struct tlsa_dest_verdict dv;
	assert_int_equal(tlsa_policy_destination(&got->dest, &dv), 0);
	assert_int_equal(dv.action, TLSA_DEST_DEFER);
	assert_non_null(got->dest.mx_expanded);
	assert_string_equal(got->dest.mx_expanded, "mail.example.com");
}

/* A and AAAA through a CNAME, A malformed: the host fails, and its
 * expanded name (if any is kept) is valid memory. */
static void
addr_malformed_via_cname(void **state)
{
	(void)state;
	resolve(D, TLSA_LEVEL_DANE);
	struct fake_result *f = result(D, RELAY_DNS_TYPE_MX, SECURE, NULL);
	add_mx(f, 10, MXH);
	give(D, RELAY_DNS_TYPE_MX, f);
	f = result(MXH, RELAY_DNS_TYPE_A, SECURE, HOSTER);
	add_rr(f, A_192_0_2_1, 3);
	give(MXH, RELAY_DNS_TYPE_A, f);
	give(MXH, RELAY_DNS_TYPE_AAAA,
	    result(MXH, RELAY_DNS_TYPE_AAAA, SECURE, HOSTER));

	struct tlsa_verdict v;
	decide(0, &v);
	const struct relay_dns_host *h = &got->hosts[0];
	if (h->in.expanded != NULL)
		assert_string_equal(h->in.expanded, HOSTER);
	assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
	assert_int_equal(v.scope, TLSA_SCOPE_HOST);
	tlsa_verdict_release(&v);
}

/* ---- progress hooks (the probe's streamed output) ---- */

static char events[512];

static void
ev_add(const char *what, size_t i)
{
	size_t n = strlen(events);
	snprintf(events + n, sizeof events - n, "%s%zu ", what, i);
}

static void
ev_mx(void *arg, const struct relay_dns_result *res)
{
	(void)arg;
	ev_add("mx", res->nhosts);
	/* Hosts are named before any of their answers is in. */
	assert_string_equal(res->hosts[0].name, "mx1.example.net");
	assert_int_equal(res->hosts[0].naddrs, 0);
}

static void
ev_addresses(void *arg, const struct relay_dns_result *res, size_t i)
{
	(void)arg;
	assert_true(res->hosts[i].naddrs > 0);
	ev_add("addr", i);
}

static void
ev_host_done(void *arg, const struct relay_dns_result *res, size_t i)
{
	(void)arg;
	/* Complete: tlsa/ asks for nothing more. */
	const char *base;
	assert_int_equal(tlsa_policy_tlsa_next(&res->dest, &res->hosts[i].in,
	                     &base),
	    0);
	ev_add("done", i);
}

static const struct relay_dns_progress ev_progress = {
	.mx = ev_mx,
	.addresses = ev_addresses,
	.host_done = ev_host_done,
};

/* Each step is reported once, as its answer arrives, hosts answering out
 * of order; the final result comes after all of them. */
static void
progress_in_answer_order(void **state)
{
	(void)state;
	struct relay_dns_req *req = NULL;
	events[0] = '\0';
	assert_int_equal(relay_dns_resolve(&dns, D, 25, TLSA_LEVEL_DANE,
	                     dest_cb, NULL, &req),
	    0);
	relay_dns_set_progress(req, &ev_progress, NULL);
	struct fake_result *f = result(D, RELAY_DNS_TYPE_MX, SECURE, NULL);
	add_mx(f, 10, "mx1.example.net");
	add_mx(f, 20, "mx2.example.net");
	give(D, RELAY_DNS_TYPE_MX, f);
	assert_string_equal(events, "mx2 ");
	const char *const hosts[] = { "mx2.example.net", "mx1.example.net" };
	for (size_t k = 0; k < 2; k++) {
		f = result(hosts[k], RELAY_DNS_TYPE_A, SECURE, NULL);
		add_rr(f, A_192_0_2_1, sizeof A_192_0_2_1);
		give(hosts[k], RELAY_DNS_TYPE_A, f);
		give(hosts[k], RELAY_DNS_TYPE_AAAA,
		    result(hosts[k], RELAY_DNS_TYPE_AAAA, SECURE, NULL));
	}
	assert_string_equal(events, "mx2 addr1 addr0 ");
	char q[64];
	snprintf(q, sizeof q, "_25._tcp.%s", hosts[0]);
	f = result(q, RELAY_DNS_TYPE_TLSA, SECURE, NULL);
	add_rr(f, TLSA_311, sizeof TLSA_311);
	give(q, RELAY_DNS_TYPE_TLSA, f);
	assert_string_equal(events, "mx2 addr1 addr0 done1 ");
	assert_null(got);
	snprintf(q, sizeof q, "_25._tcp.%s", hosts[1]);
	give(q, RELAY_DNS_TYPE_TLSA,
	    result(q, RELAY_DNS_TYPE_TLSA, SECURE, NULL));
	assert_string_equal(events, "mx2 addr1 addr0 done1 done0 ");
	assert_non_null(got);
}

/* inet_protocols = ipv4: no AAAA query; the host's address facts are the
 * A answer's alone. */
static void
inet_ipv4_no_aaaa_query(void **state)
{
	(void)state;
	dns.inet_protocols = RELAY_INET_IPV4;
	resolve(D, TLSA_LEVEL_DANE);
	struct fake_result *f = result(D, RELAY_DNS_TYPE_MX, SECURE, NULL);
	add_mx(f, 10, MXH);
	give(D, RELAY_DNS_TYPE_MX, f);
	assert_true(is_pending(MXH, RELAY_DNS_TYPE_A));
	assert_false(is_pending(MXH, RELAY_DNS_TYPE_AAAA));
	f = result(MXH, RELAY_DNS_TYPE_A, SECURE, NULL);
	add_rr(f, A_192_0_2_1, sizeof A_192_0_2_1);
	give(MXH, RELAY_DNS_TYPE_A, f);
	give("_25._tcp." MXH, RELAY_DNS_TYPE_TLSA,
	    result("_25._tcp." MXH, RELAY_DNS_TYPE_TLSA, SECURE, NULL));
	struct tlsa_verdict v;
	decide(0, &v);
	assert_false(got->hosts[0].aaaa.done);
	assert_int_equal(got->hosts[0].naddrs, 1);
	assert_int_equal(got->hosts[0].in.addr.dnssec, TLSA_DNSSEC_SECURE);
	for (size_t i = 0; i < npend; i++)
		assert_int_not_equal(pend[i].type, RELAY_DNS_TYPE_AAAA);
	tlsa_verdict_release(&v);
}

int
main(void)
{
	struct CMUnitTest tests[18];
	size_t n = 0;
#define T(f)                                                                   \
	tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(f,     \
	    setup, teardown)
	T(cname_bogus_skips_host);
	T(cname_bogus_dane_only_skips_host);
	T(cname_servfail_skips_host);
	T(cname_liberr_skips_host);
	T(cname_secure_looks_up_original_tlsa);
	T(cname_insecure_is_may);
	T(cname_bogus_next_mx);
	T(addr_malformed_via_cname);
	T(progress_in_answer_order);
	T(inet_ipv4_no_aaaa_query);
#undef T
	for (size_t i = 0; i < sizeof bad_mx / sizeof bad_mx[0]; i++) {
		tests[n] =
		    (struct CMUnitTest)cmocka_unit_test_prestate_setup_teardown(
		        mx_malformed_via_cname, setup, teardown,
		        (void *)&bad_mx[i]);
		tests[n].name = bad_mx[i].id;
		n++;
	}
	return _cmocka_run_group_tests("relay_dns_dest", tests, n, NULL, NULL);
}
