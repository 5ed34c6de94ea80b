/*
 * Integration test of relay/dns/relay_dns against the test world's signed DNS
 * tree (NSD on loopback, private root, one trust anchor): real libunbound
 * validation inside a real libuv loop. Run by run-dns-world.sh, which brings
 * the world up, exports world.env and brings it down again.
 *
 * Each case asserts the typed facts for one world fixture (secure, insecure,
 * bogus signatures, bogus DS, null MX, no MX, NXDOMAIN, two MX, bogus TLSA,
 * TLSA SERVFAIL) and, through tlsa/, the RFC 7672 verdict those facts lead
 * to; then the self-test with the right anchor, a wrong anchor and none,
 * forwarder mode, timeouts, cancellation and teardown (uv_loop_close() == 0
 * at the end: no handle leaks).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <unbound.h>
#include <uv.h>

#include "relay_dns.h"
#include "relay_log.h"
#include "tlsa.h"

/* --------------------------------------------------------------- env */

static const char *W_CONF, *W_TLD, *W_TA, *W_SELFTEST, *W_DNS, *W_NX;
static char tmpdir[256];

static const char *
env(const char *k)
{
	const char *v = getenv(k);
	if (v == NULL || v[0] == '\0') {
		fprintf(stderr, "missing %s (run through run-dns-world.sh)\n",
		    k);
		exit(1);
	}
	return v;
}

/* "<label>.<tld>" in one of a few rotating buffers. */
static const char *
nm(const char *label)
{
	static char buf[8][RELAY_DNS_HOST_MAX];
	static int i;
	char *b = buf[i++ % 8];
	snprintf(b, RELAY_DNS_HOST_MAX, "%s.%s", label, W_TLD);
	return b;
}

/* -------------------------------------------------------------- loop */

static uv_loop_t loop;
static uv_timer_t guard;
static bool guard_fired;

static void
guard_cb(uv_timer_t *t)
{
	(void)t;
	guard_fired = true;
}

/* Run the loop until *flag or ms pass. Returns *flag. */
static bool
run_until(const bool *flag, uint64_t ms)
{
	guard_fired = false;
	uv_timer_start(&guard, guard_cb, ms, 0);
	while (!*flag && !guard_fired)
		uv_run(&loop, UV_RUN_ONCE);
	uv_timer_stop(&guard);
	return *flag;
}

static void
set_flag(void *arg)
{
	*(bool *)arg = true;
}

struct selftest_seen {
	int runs;
	bool last_ok;
	char why[256];
};

static void
on_selftest(void *arg, bool ok, const char *why)
{
	struct selftest_seen *s = arg;
	s->runs++;
	s->last_ok = ok;
	snprintf(s->why, sizeof s->why, "%s", why);
}

static struct relay_dns *
mk(const struct relay_dns_opts *o)
{
	struct relay_dns *d = NULL;
	assert_int_equal(relay_dns_new(&loop, o, &d), 0);
	assert_non_null(d);
	assert_int_equal(relay_dns_start(d), 0);
	return d;
}

static void
close_dns(struct relay_dns *d)
{
	bool closed = false;
	relay_dns_close(d, set_flag, &closed);
	assert_true(run_until(&closed, 10000));
}

/* The shared context: the world's unbound.conf, as a daemon would use it. */
static struct relay_dns *G;
static struct selftest_seen G_seen;

static uint32_t
fixed_rng(void *arg)
{
	(void)arg;
	return 0;
}

static int
group_setup(void **state)
{
	(void)state;
	struct relay_dns_opts o = {
		.resolver_config = W_CONF,
		.selftest_name = W_SELFTEST,
		.query_timeout_ms = 8000,
		.rng = fixed_rng,
		.on_selftest = on_selftest,
		.selftest_arg = &G_seen,
	};
	if (relay_dns_new(&loop, &o, &G) != 0 || relay_dns_start(G) != 0)
		return -1;
	guard_fired = false;
	uv_timer_start(&guard, guard_cb, 20000, 0);
	while (G_seen.runs == 0 && !guard_fired)
		uv_run(&loop, UV_RUN_ONCE);
	uv_timer_stop(&guard);
	return G_seen.runs > 0 ? 0 : -1;
}

/* ---------------------------------------------------------- resolve */

struct got {
	bool done;
	struct relay_dns_result *res;
};

static void
got_cb(void *arg, struct relay_dns_result *res)
{
	struct got *g = arg;
	g->done = true;
	g->res = res;
}

static struct relay_dns_result *
resolve(struct relay_dns *d, const char *domain, enum tlsa_level level)
{
	struct got g = { false, NULL };
	struct relay_dns_req *req = NULL;
	assert_int_equal(relay_dns_resolve(d, domain, 25, level, got_cb, &g,
	                     &req),
	    0);
	assert_non_null(req);
	assert_true(run_until(&g.done, 30000));
	assert_non_null(g.res);
	return g.res;
}

static void
assert_st(const struct relay_dns_status *st, enum relay_dns_sec sec,
    enum relay_dns_kind kind)
{
	if (st->sec != sec || st->kind != kind)
		fail_msg("status %s/%s (why=%s rcode=%d), expected %s/%s",
		    relay_dns_sec_name(st->sec), relay_dns_kind_name(st->kind),
		    relay_dns_why_name(st->why), st->rcode,
		    relay_dns_sec_name(sec), relay_dns_kind_name(kind));
}

static void
decide(struct relay_dns_result *res, size_t i, struct tlsa_verdict *v)
{
	memset(v, 0, sizeof *v);
	int rc = tlsa_policy_decide(&res->dest, &res->hosts[i].in, NULL, v);
	if (rc != 0)
		fail_msg("tlsa_policy_decide: %s", tlsa_strerror(rc));
}

static void
assert_addr4(const struct relay_dns_host *h, const char *want)
{
	uint8_t b[4];
	assert_int_equal(inet_pton(AF_INET, want, b), 1);
	assert_int_equal(h->naddrs, 1);
	assert_int_equal(h->addrs[0].family, AF_INET);
	assert_memory_equal(h->addrs[0].bytes, b, 4);
}

/* One secure MX host with one secure TLSA record (usage, selector, mtype). */
static void
check_secure_dane(const char *domain, const char *mx, const char *addr,
    uint8_t usage, uint8_t selector, uint8_t mtype)
{
	struct relay_dns_result *res = resolve(G, nm(domain), TLSA_LEVEL_DANE);
	assert_st(&res->mx.st, RELAY_DNS_SECURE, RELAY_DNS_DATA);
	assert_int_equal(res->kind, RELAY_DNS_DEST_HOSTS);
	assert_null(res->mx.canon);
	assert_int_equal(res->nhosts, 1);
	const struct relay_dns_host *h = &res->hosts[0];
	assert_string_equal(h->name, nm(mx));
	assert_int_equal(h->pref, 10);
	assert_false(h->bad_name);
	assert_st(&h->a.st, RELAY_DNS_SECURE, RELAY_DNS_DATA);
	/* C04: the missing AAAA is a validated denial, not an error. */
	assert_st(&h->aaaa.st, RELAY_DNS_SECURE, RELAY_DNS_NODATA);
	assert_addr4(h, addr);
	assert_int_equal(h->in.addr.dnssec, TLSA_DNSSEC_SECURE);
	assert_int_equal(h->in.addr.answer, TLSA_ANSWER_DATA);
	assert_null(h->in.expanded);
	assert_false(h->cname.done);
	/* C11, C36: TLSA looked up after the secure address answer. */
	assert_int_equal(h->in.n_tlsa, 1);
	assert_string_equal(h->in.tlsa[0].base, nm(mx));
	assert_st(&h->tlsa[0].st, RELAY_DNS_SECURE, RELAY_DNS_DATA);
	assert_int_equal(h->in.tlsa[0].n_recs, 1);
	assert_int_equal(h->in.tlsa[0].recs[0].usage, usage);
	assert_int_equal(h->in.tlsa[0].recs[0].selector, selector);
	assert_int_equal(h->in.tlsa[0].recs[0].mtype, mtype);
	assert_int_equal(h->in.tlsa[0].recs[0].data_len, 32);

	struct tlsa_verdict v;
	decide(res, 0, &v);
	assert_int_equal(v.kind, TLSA_VERDICT_DANE); /* C18, C50 */
	assert_string_equal(v.base_domain, nm(mx));
	assert_int_equal(v.n_usable, 1);
	tlsa_verdict_release(&v);
	relay_dns_result_free(res);
}

static void
t_selftest_ok(void **state)
{
	(void)state;
	/* Good anchor: the self-test name validates as secure. */
	assert_int_equal(G_seen.runs, 1);
	assert_true(G_seen.last_ok);
	assert_true(relay_dns_validation_ok(G));
	assert_int_equal(relay_dns_validation_state(G),
	    RELAY_DNS_VALIDATION_OK);
}

static void
t_dane_ee(void **state)
{
	(void)state;
	check_secure_dane("dane-ee", "mx.dane-ee", getenv("WORLD_MXCA_ADDR"), 3,
	    1, 1);
}

static void
t_dane_ta(void **state)
{
	(void)state;
	check_secure_dane("dane-ta", "mx.dane-ta", getenv("WORLD_MXCA_ADDR"), 2,
	    0, 1);
}

/* Unsigned zone: everything insecure; its TLSA record is never fetched
 * (C37) and the verdict is opportunistic TLS (C22). */
static void
t_insecure(void **state)
{
	(void)state;
	struct relay_dns_result *res =
	    resolve(G, nm("insecure"), TLSA_LEVEL_DANE);
	assert_int_equal(res->kind, RELAY_DNS_DEST_HOSTS);
	assert_st(&res->mx.st, RELAY_DNS_INSECURE, RELAY_DNS_DATA);
	assert_int_equal(res->nhosts, 1);
	const struct relay_dns_host *h = &res->hosts[0];
	assert_string_equal(h->name, nm("mx.insecure"));
	assert_st(&h->a.st, RELAY_DNS_INSECURE, RELAY_DNS_DATA);
	assert_addr4(h, getenv("WORLD_MXSELF_ADDR"));
	assert_int_equal(h->in.addr.dnssec, TLSA_DNSSEC_INSECURE);
	assert_int_equal(h->in.n_tlsa, 0);
	assert_false(h->tlsa[0].done);
	struct tlsa_verdict v;
	decide(res, 0, &v);
	assert_int_equal(v.kind, TLSA_VERDICT_MAY);
	tlsa_verdict_release(&v);
	relay_dns_result_free(res);
}

/* Bogus MX (expired signatures / DS matching no key): defer (C09), with
 * libunbound's reason kept for the log. */
static void
check_bogus_mx(const char *label)
{
	struct relay_dns_result *res = resolve(G, nm(label), TLSA_LEVEL_DANE);
	assert_int_equal(res->kind, RELAY_DNS_DEST_DEFER);
	assert_st(&res->mx.st, RELAY_DNS_BOGUS, RELAY_DNS_FAILED);
	assert_non_null(res->mx.why);
	assert_true(strlen(res->mx.why) > 0);
	assert_int_equal(res->nhosts, 0);
	assert_int_equal(res->dest.mx.dnssec, TLSA_DNSSEC_BOGUS);
	struct tlsa_dest_verdict dv;
	assert_int_equal(tlsa_policy_destination(&res->dest, &dv), 0);
	assert_int_equal(dv.action, TLSA_DEST_DEFER);
	assert_string_equal(dv.status, "4.7.5");
	relay_dns_result_free(res);
}

static void
t_bogus_sig(void **state)
{
	(void)state;
	check_bogus_mx("bogus-sig");
}

static void
t_bogus_ds(void **state)
{
	(void)state;
	check_bogus_mx("bogus-ds");
}

/* RFC 7505 null MX: bounce 5.1.10 without looking anything else up. */
static void
t_null_mx(void **state)
{
	(void)state;
	struct relay_dns_result *res =
	    resolve(G, nm("nullmx"), TLSA_LEVEL_DANE);
	assert_int_equal(res->kind, RELAY_DNS_DEST_NULL_MX);
	assert_st(&res->mx.st, RELAY_DNS_SECURE, RELAY_DNS_DATA);
	assert_true(res->dest.mx_null);
	assert_int_equal(res->nhosts, 0);
	struct tlsa_dest_verdict dv;
	assert_int_equal(tlsa_policy_destination(&res->dest, &dv), 0);
	assert_int_equal(dv.action, TLSA_DEST_BOUNCE);
	assert_string_equal(dv.status, "5.1.10");
	relay_dns_result_free(res);
}

/* No MX: secure NODATA, the implicit MX is the domain itself (I27) and
 * its own TLSA applies. */
static void
t_no_mx(void **state)
{
	(void)state;
	struct relay_dns_result *res = resolve(G, nm("nomx"), TLSA_LEVEL_DANE);
	assert_int_equal(res->kind, RELAY_DNS_DEST_HOSTS);
	assert_true(res->implicit_mx);
	assert_st(&res->mx.st, RELAY_DNS_SECURE, RELAY_DNS_NODATA);
	assert_int_equal(res->nhosts, 1);
	const struct relay_dns_host *h = &res->hosts[0];
	assert_string_equal(h->name, nm("nomx"));
	assert_int_equal(h->pref, 0);
	assert_addr4(h, getenv("WORLD_MXCA_ADDR"));
	assert_int_equal(h->in.n_tlsa, 1);
	assert_st(&h->tlsa[0].st, RELAY_DNS_SECURE, RELAY_DNS_DATA);
	struct tlsa_verdict v;
	decide(res, 0, &v);
	assert_int_equal(v.kind, TLSA_VERDICT_DANE);
	tlsa_verdict_release(&v);
	relay_dns_result_free(res);
}

/* NXDOMAIN next-hop, validated: bounce (I25). */
static void
t_nxdomain(void **state)
{
	(void)state;
	struct relay_dns_result *res = resolve(G, W_NX, TLSA_LEVEL_DANE);
	assert_int_equal(res->kind, RELAY_DNS_DEST_NXDOMAIN);
	assert_st(&res->mx.st, RELAY_DNS_SECURE, RELAY_DNS_NXDOMAIN);
	struct tlsa_dest_verdict dv;
	assert_int_equal(tlsa_policy_destination(&res->dest, &dv), 0);
	assert_int_equal(dv.action, TLSA_DEST_BOUNCE);
	relay_dns_result_free(res);
}

/* Two MX hosts in preference order (C27), each with its own TLSA. */
static void
t_two_mx(void **state)
{
	(void)state;
	struct relay_dns_result *res = resolve(G, nm("twomx"), TLSA_LEVEL_DANE);
	assert_int_equal(res->kind, RELAY_DNS_DEST_HOSTS);
	assert_int_equal(res->nhosts, 2);
	assert_string_equal(res->hosts[0].name, nm("mx1.twomx"));
	assert_int_equal(res->hosts[0].pref, 10);
	assert_string_equal(res->hosts[1].name, nm("mx2.twomx"));
	assert_int_equal(res->hosts[1].pref, 20);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(res->hosts[i].in.n_tlsa, 1);
		assert_st(&res->hosts[i].tlsa[0].st, RELAY_DNS_SECURE,
		    RELAY_DNS_DATA);
		struct tlsa_verdict v;
		decide(res, i, &v);
		assert_int_equal(v.kind, TLSA_VERDICT_DANE);
		tlsa_verdict_release(&v);
	}
	assert_addr4(&res->hosts[0], getenv("WORLD_MXSELF_ADDR"));
	assert_addr4(&res->hosts[1], getenv("WORLD_MXCA_ADDR"));
	relay_dns_result_free(res);
}

/* TLSA RRset with a broken signature under a secure MX and address:
 * do not connect, 4.7.5 (C12, C13). */
static void
t_tlsa_bogus(void **state)
{
	(void)state;
	struct relay_dns_result *res =
	    resolve(G, nm("tlsa-bogus"), TLSA_LEVEL_DANE);
	assert_int_equal(res->kind, RELAY_DNS_DEST_HOSTS);
	const struct relay_dns_host *h = &res->hosts[0];
	assert_st(&h->a.st, RELAY_DNS_SECURE, RELAY_DNS_DATA);
	assert_int_equal(h->in.n_tlsa, 1);
	assert_st(&h->tlsa[0].st, RELAY_DNS_BOGUS, RELAY_DNS_FAILED);
	assert_non_null(h->tlsa[0].why);
	assert_int_equal(h->in.tlsa[0].res.dnssec, TLSA_DNSSEC_BOGUS);
	struct tlsa_verdict v;
	decide(res, 0, &v);
	assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
	assert_string_equal(v.status, "4.7.5");
	tlsa_verdict_release(&v);
	relay_dns_result_free(res);
}

/* TLSA lookup that cannot be answered (lame delegation): indeterminate,
 * never "no TLSA" (C05, C12). */
static void
t_tlsa_servfail(void **state)
{
	(void)state;
	struct relay_dns_result *res =
	    resolve(G, nm("tlsa-servfail"), TLSA_LEVEL_DANE);
	assert_int_equal(res->kind, RELAY_DNS_DEST_HOSTS);
	const struct relay_dns_host *h = &res->hosts[0];
	assert_st(&h->a.st, RELAY_DNS_SECURE, RELAY_DNS_DATA);
	assert_int_equal(h->in.n_tlsa, 1);
	assert_int_equal(h->tlsa[0].st.kind, RELAY_DNS_FAILED);
	struct tlsa_verdict v;
	decide(res, 0, &v);
	assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
	assert_string_equal(v.status, "4.7.5");
	tlsa_verdict_release(&v);
	relay_dns_result_free(res);
}

/* Level may: tlsa/ asks for no TLSA lookup, so none is made. */
static void
t_level_may(void **state)
{
	(void)state;
	struct relay_dns_result *res =
	    resolve(G, nm("dane-ee"), TLSA_LEVEL_MAY);
	assert_int_equal(res->nhosts, 1);
	assert_int_equal(res->hosts[0].in.n_tlsa, 0);
	assert_false(res->hosts[0].tlsa[0].done);
	relay_dns_result_free(res);
}

struct ans_seen {
	bool done;
	struct relay_dns_status st;
	bool had_why_bogus;
	int ub_bogus, ub_havedata;
	uint8_t a[4];
	size_t n;
};

static void
ans_cb(void *arg, const struct relay_dns_answer *ans)
{
	struct ans_seen *s = arg;
	s->done = true;
	s->st = ans->st;
	s->had_why_bogus = ans->why_bogus != NULL;
	if (ans->ub != NULL) {
		s->ub_bogus = ans->ub->bogus;
		s->ub_havedata = ans->ub->havedata;
		for (s->n = 0; ans->ub->data[s->n] != NULL; s->n++)
			;
		if (s->n > 0 && ans->ub->len[0] == 4)
			memcpy(s->a, ans->ub->data[0], 4);
	}
}

static struct ans_seen
lookup(struct relay_dns *d, const char *name, uint16_t type)
{
	struct ans_seen s;
	memset(&s, 0, sizeof s);
	struct relay_dns_query *q = NULL;
	assert_int_equal(relay_dns_lookup(d, name, type, ans_cb, &s, &q), 0);
	assert_non_null(q);
	assert_true(run_until(&s.done, 30000));
	return s;
}

/* A single lookup of the self-test name: secure data, 127.0.0.1. */
static void
t_lookup_secure_a(void **state)
{
	(void)state;
	struct ans_seen s = lookup(G, W_SELFTEST, RELAY_DNS_TYPE_A);
	assert_st(&s.st, RELAY_DNS_SECURE, RELAY_DNS_DATA);
	assert_int_equal(s.n, 1);
	const uint8_t want[4] = { 127, 0, 0, 1 };
	assert_memory_equal(s.a, want, 4);
}

/* The address of a host in the expired-signature zone: whatever rcode and
 * data libunbound hands back, bogus=1 wins. */
static void
t_lookup_bogus_a(void **state)
{
	(void)state;
	struct ans_seen s = lookup(G, nm("mx.bogus-sig"), RELAY_DNS_TYPE_A);
	assert_int_equal(s.ub_bogus, 1);
	assert_true(s.had_why_bogus);
	assert_st(&s.st, RELAY_DNS_BOGUS, RELAY_DNS_FAILED);
}

/* relay_dns_cancel(): the callback never runs, nothing leaks (ASan). */
static void
t_cancel(void **state)
{
	(void)state;
	struct got g = { false, NULL };
	struct relay_dns_req *req = NULL;
	assert_int_equal(relay_dns_resolve(G, nm("twomx"), 25, TLSA_LEVEL_DANE,
	                     got_cb, &g, &req),
	    0);
	/* Let the MX answer arrive and the host lookups start, then cancel
	 * in the middle. */
	bool never = false;
	run_until(&never, 5);
	if (!g.done)
		relay_dns_cancel(req);
	struct ans_seen s;
	memset(&s, 0, sizeof s);
	struct relay_dns_query *q = NULL;
	assert_int_equal(relay_dns_lookup(G, nm("dane-ee"), RELAY_DNS_TYPE_MX,
	                     ans_cb, &s, &q),
	    0);
	relay_dns_lookup_cancel(q);
	run_until(&never, 1500);
	assert_false(s.done);
	if (g.done) /* answered within 5 ms: nothing left to cancel */
		relay_dns_result_free(g.res);
	else
		assert_null(g.res);
	/* The context still works after cancellations. */
	struct ans_seen s2 = lookup(G, W_SELFTEST, RELAY_DNS_TYPE_A);
	assert_st(&s2.st, RELAY_DNS_SECURE, RELAY_DNS_DATA);
}

/* relay_dns_selftest_run() runs it again, asynchronously. */
static void
t_selftest_rerun(void **state)
{
	(void)state;
	int before = G_seen.runs;
	relay_dns_selftest_run(G);
	assert_int_equal(G_seen.runs, before); /* never from inside the call */
	guard_fired = false;
	uv_timer_start(&guard, guard_cb, 20000, 0);
	while (G_seen.runs == before && !guard_fired)
		uv_run(&loop, UV_RUN_ONCE);
	uv_timer_stop(&guard);
	assert_int_equal(G_seen.runs, before + 1);
	assert_true(G_seen.last_ok);
	assert_true(relay_dns_validation_ok(G));
}

/* Write an unbound.conf for the world's DNS with the given anchor line. */
static void
write_conf(const char *path, const char *anchor_line)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
	    "server:\n    do-not-query-localhost: no\n    do-ip6: no\n"
	    "%s\nstub-zone:\n    name: \".\"\n    stub-addr: %s\n",
	    anchor_line, W_DNS);
	assert_int_equal(fclose(f), 0);
}

static void
run_selftest_ctx(const char *conf, struct selftest_seen *seen,
    struct relay_dns **out)
{
	struct relay_dns_opts o = {
		.resolver_config = conf,
		.selftest_name = W_SELFTEST,
		.query_timeout_ms = 8000,
		.on_selftest = on_selftest,
		.selftest_arg = seen,
	};
	struct relay_dns *d = mk(&o);
	assert_int_equal(relay_dns_validation_state(d),
	    RELAY_DNS_VALIDATION_UNKNOWN);
	assert_false(relay_dns_validation_ok(d));
	guard_fired = false;
	uv_timer_start(&guard, guard_cb, 20000, 0);
	while (seen->runs == 0 && !guard_fired)
		uv_run(&loop, UV_RUN_ONCE);
	uv_timer_stop(&guard);
	assert_int_equal(seen->runs, 1);
	*out = d;
}

/* A wrong trust anchor (the right key tag, a changed digest): the
 * self-test fails, validation_ok() is false, and the MX of a secure
 * domain is now bogus. */
static void
t_selftest_wrong_anchor(void **state)
{
	(void)state;
	char ta[300], conf[300], line[400], ds[512];
	snprintf(ta, sizeof ta, "%s/wrong.ds", tmpdir);
	snprintf(conf, sizeof conf, "%s/wrong.conf", tmpdir);
	FILE *f = fopen(W_TA, "r");
	assert_non_null(f);
	assert_non_null(fgets(ds, sizeof ds, f));
	fclose(f);
	size_t n = strlen(ds);
	while (n > 0 && (ds[n - 1] == '\n' || ds[n - 1] == ' '))
		ds[--n] = '\0';
	assert_true(n > 10);
	ds[n - 1] = ds[n - 1] == '0' ? '1' : '0'; /* last digest hex digit */
	f = fopen(ta, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", ds);
	fclose(f);
	snprintf(line, sizeof line, "    trust-anchor-file: \"%s\"", ta);
	write_conf(conf, line);

	struct selftest_seen seen;
	memset(&seen, 0, sizeof seen);
	struct relay_dns *d;
	run_selftest_ctx(conf, &seen, &d);
	assert_false(seen.last_ok);
	assert_non_null(strstr(seen.why, "bogus"));
	assert_false(relay_dns_validation_ok(d));
	assert_int_equal(relay_dns_validation_state(d),
	    RELAY_DNS_VALIDATION_FAILED);
	struct relay_dns_result *res =
	    resolve(d, nm("dane-ee"), TLSA_LEVEL_DANE);
	assert_int_equal(res->kind, RELAY_DNS_DEST_DEFER);
	assert_int_equal(res->mx.st.sec, RELAY_DNS_BOGUS);
	relay_dns_result_free(res);
	close_dns(d);
}

/* No trust anchor at all: answers are insecure, which the self-test must
 * not accept (validation is not working). */
static void
t_selftest_no_anchor(void **state)
{
	(void)state;
	char conf[300];
	snprintf(conf, sizeof conf, "%s/noanchor.conf", tmpdir);
	write_conf(conf, "    # no trust anchor");
	struct selftest_seen seen;
	memset(&seen, 0, sizeof seen);
	struct relay_dns *d;
	run_selftest_ctx(conf, &seen, &d);
	assert_false(seen.last_ok);
	assert_non_null(strstr(seen.why, "insecure"));
	assert_false(relay_dns_validation_ok(d));
	close_dns(d);
}

/* dns_forwarders: queries go to the given server (here the world's NSD,
 * which holds every zone), validation still happens in process with the
 * configured anchor (C07). */
static void
t_forwarder_validates(void **state)
{
	(void)state;
	struct selftest_seen seen;
	memset(&seen, 0, sizeof seen);
	struct relay_dns_opts o = {
		.forwarders = W_DNS,
		.trust_anchor_file = W_TA,
		.selftest_name = W_SELFTEST,
		.query_timeout_ms = 8000,
		.on_selftest = on_selftest,
		.selftest_arg = &seen,
	};
	struct relay_dns *d = mk(&o);
	guard_fired = false;
	uv_timer_start(&guard, guard_cb, 20000, 0);
	while (seen.runs == 0 && !guard_fired)
		uv_run(&loop, UV_RUN_ONCE);
	uv_timer_stop(&guard);
	assert_true(seen.last_ok);
	struct ans_seen s = lookup(d, nm("dane-ee"), RELAY_DNS_TYPE_MX);
	assert_st(&s.st, RELAY_DNS_SECURE, RELAY_DNS_DATA);
	s = lookup(d, nm("bogus-sig"), RELAY_DNS_TYPE_MX);
	assert_st(&s.st, RELAY_DNS_BOGUS, RELAY_DNS_FAILED);
	s = lookup(d, nm("insecure"), RELAY_DNS_TYPE_MX);
	assert_st(&s.st, RELAY_DNS_INSECURE, RELAY_DNS_DATA);
	close_dns(d);
}

/* A forwarder that never answers: our deadline turns the lookup into
 * indeterminate/timeout, and the destination defers. */
static void
t_timeout(void **state)
{
	(void)state;
	uv_udp_t sink;
	struct sockaddr_in sin;
	struct sockaddr_storage bound;
	int blen = sizeof bound;
	char fwd[64];

	assert_int_equal(uv_udp_init(&loop, &sink), 0);
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
	assert_int_equal(uv_udp_bind(&sink, (const struct sockaddr *)&sin, 0),
	    0);
	assert_int_equal(uv_udp_getsockname(&sink, (struct sockaddr *)&bound,
	                     &blen),
	    0);
	snprintf(fwd, sizeof fwd, "127.0.0.1@%u",
	    ntohs(((struct sockaddr_in *)&bound)->sin_port));
	struct relay_dns_opts o = {
		.forwarders = fwd,
		.trust_anchor_file = W_TA,
		.query_timeout_ms = 300,
	};
	struct relay_dns *d = mk(&o);
	struct ans_seen s = lookup(d, nm("dane-ee"), RELAY_DNS_TYPE_MX);
	assert_st(&s.st, RELAY_DNS_INDETERMINATE, RELAY_DNS_FAILED);
	assert_int_equal(s.st.why, RELAY_DNS_WHY_TIMEOUT);
	struct relay_dns_result *res =
	    resolve(d, nm("dane-ee"), TLSA_LEVEL_DANE);
	assert_int_equal(res->kind, RELAY_DNS_DEST_DEFER);
	assert_int_equal(res->mx.st.why, RELAY_DNS_WHY_TIMEOUT);
	relay_dns_result_free(res);
	close_dns(d);
	/* sink lives on this stack frame: let its close complete here. */
	uv_close((uv_handle_t *)&sink, NULL);
	bool never = false;
	run_until(&never, 10);
}

/* Closing with requests in flight: no callback, everything freed. */
static void
t_close_outstanding(void **state)
{
	(void)state;
	struct relay_dns_opts o = { .resolver_config = W_CONF };
	struct relay_dns *d = mk(&o);
	/* Without a self-test, validation is assumed (and logged). */
	assert_true(relay_dns_validation_ok(d));
	struct got g = { false, NULL };
	assert_int_equal(relay_dns_resolve(d, nm("dane-ee"), 25,
	                     TLSA_LEVEL_DANE, got_cb, &g, NULL),
	    0);
	struct ans_seen s;
	memset(&s, 0, sizeof s);
	assert_int_equal(relay_dns_lookup(d, W_SELFTEST, RELAY_DNS_TYPE_A,
	                     ans_cb, &s, NULL),
	    0);
	close_dns(d);
	bool never = false;
	run_until(&never, 200);
	assert_false(g.done);
	assert_false(s.done);
}

/* Configuration errors surface from relay_dns_new() with nothing left
 * behind (no handle, no context). */
static void
t_config_errors(void **state)
{
	(void)state;
	struct relay_dns *d = G; /* non-NULL: relay_dns_new() must clear it */
	struct relay_dns_opts o1 = { .resolver_config = "/nonexistent/u.conf" };
	assert_int_equal(relay_dns_new(&loop, &o1, &d), RELAY_DNS_ERR_CONFIG);
	assert_null(d);
	struct relay_dns_opts o2 = { .trust_anchor_file =
		                         "/nonexistent/root.key" };
	assert_int_equal(relay_dns_new(&loop, &o2, &d), RELAY_DNS_ERR_CONFIG);
	struct relay_dns_opts o3 = { .resolver_config = W_CONF,
		.forwarders = "not-an-address" };
	assert_int_equal(relay_dns_new(&loop, &o3, &d), RELAY_DNS_ERR_CONFIG);
	struct relay_dns_opts o4 = { .resolver_config = W_CONF,
		.forwarders = "127.0.0.1@5353,," };
	assert_int_equal(relay_dns_new(&loop, &o4, &d), RELAY_DNS_ERR_CONFIG);
	/* Names refused before any query. */
	struct got g = { false, NULL };
	assert_int_equal(relay_dns_resolve(G, "[192.0.2.1]", 25,
	                     TLSA_LEVEL_DANE, got_cb, &g, NULL),
	    RELAY_DNS_ERR_NAME);
	assert_int_equal(relay_dns_resolve(G, "a..b", 25, TLSA_LEVEL_DANE,
	                     got_cb, &g, NULL),
	    RELAY_DNS_ERR_NAME);
	assert_false(g.done);
}

/* Last: close the shared context; the loop must have no handle left. */
static void
t_teardown(void **state)
{
	(void)state;
	close_dns(G);
	G = NULL;
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
	W_CONF = env("WORLD_UNBOUND_CONF");
	W_TLD = env("WORLD_TLD");
	W_TA = env("WORLD_TRUST_ANCHOR");
	W_SELFTEST = env("WORLD_SELFTEST_NAME");
	W_DNS = env("WORLD_DNS_SERVER");
	W_NX = env("WORLD_NXDOMAIN");
	(void)env("WORLD_MXCA_ADDR");
	(void)env("WORLD_MXSELF_ADDR");
	snprintf(tmpdir, sizeof tmpdir, "%s", env("DNS_TEST_TMPDIR"));
	relay_log_set_level(RELAY_LOG_DEBUG);

	if (uv_loop_init(&loop) != 0 || uv_timer_init(&loop, &guard) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_selftest_ok),
		cmocka_unit_test(t_dane_ee),
		cmocka_unit_test(t_dane_ta),
		cmocka_unit_test(t_insecure),
		cmocka_unit_test(t_bogus_sig),
		cmocka_unit_test(t_bogus_ds),
		cmocka_unit_test(t_null_mx),
		cmocka_unit_test(t_no_mx),
		cmocka_unit_test(t_nxdomain),
		cmocka_unit_test(t_two_mx),
		cmocka_unit_test(t_tlsa_bogus),
		cmocka_unit_test(t_tlsa_servfail),
		cmocka_unit_test(t_level_may),
		cmocka_unit_test(t_lookup_secure_a),
		cmocka_unit_test(t_lookup_bogus_a),
		cmocka_unit_test(t_cancel),
		cmocka_unit_test(t_selftest_rerun),
		cmocka_unit_test(t_selftest_wrong_anchor),
		cmocka_unit_test(t_selftest_no_anchor),
		cmocka_unit_test(t_forwarder_validates),
		cmocka_unit_test(t_timeout),
		cmocka_unit_test(t_close_outstanding),
		cmocka_unit_test(t_config_errors),
		cmocka_unit_test(t_teardown),
	};
	return cmocka_run_group_tests_name("relay_dns_world", tests,
	    group_setup, NULL);
}
