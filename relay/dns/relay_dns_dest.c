/*
 * relay_dns_dest: resolve one next-hop domain into the complete DNS facts
 * RFC 7672 policy needs, as one struct relay_dns_result.
 *
 *   MX (RFC 5321 5.1, RFC 7505, RFC 7672 2.1.2 / 2.2.1)
 *     bogus or indeterminate      -> DEFER (C09, C05)
 *     NXDOMAIN                    -> NXDOMAIN (I25)
 *     NODATA                      -> implicit MX: the domain itself (I27)
 *     any exchange "."            -> NULL_MX (RFC 7505; checklist note 3)
 *     data                        -> hosts sorted, equal preferences shuffled
 *   per host, in parallel:
 *     A and AAAA (C36: before any TLSA lookup), combined with
 *     tlsa_lookup_combine()
 *     insecure answer through CNAMEs, and the policy would look for TLSA
 *     if the first CNAME were secure -> ask the original name's CNAME
 *     alone for that fact (C39)
 *     then, while tlsa_policy_tlsa_next() asks for a base domain, look up
 *     _port._tcp.<base> (tlsa/ owns C37-C40, C44, C45: which names, in
 *     which order, when to stop; this file only performs the lookups)
 *
 * libunbound's secure flag for an answer reached through CNAMEs is the
 * weakest status of every RRset in the chain, which is exactly the C17 rule
 * (once an insecure CNAME appears, the rest is insecure); the separate CNAME
 * lookup recovers the one extra fact C39 needs, the status of the first link.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <unbound.h>

#include "dns_int.h"

enum slot_kind {
	SLOT_A,
	SLOT_AAAA,
	SLOT_CNAME,
	SLOT_TLSA,
	SLOT_COUNT,
};

struct slot {
	struct relay_dns_req *req;
	size_t host; /* index into res->hosts */
	enum slot_kind kind;
	struct relay_dns_query *q;
};

struct host_state {
	struct slot slots[SLOT_COUNT];
	bool a_done, aaaa_done;
	/* Addresses gathered per family before they are merged. */
	struct relay_dns_addr *addr6, *addr4;
	size_t n6, n4;
};

struct relay_dns_req {
	/* private */
	struct relay_dns *dns;
	struct relay_dns_req *prev, *next;
	relay_dns_dest_cb *cb;
	void *arg;
	struct relay_dns_result *res;
	struct slot mx;
	struct host_state *hs; /* one per res->hosts entry */
	size_t nhs;
	size_t pending;                            /* lookups in flight */
	const struct relay_dns_progress *progress; /* or NULL */
	void *progress_arg;
};

void
relay_dns_set_progress(struct relay_dns_req *req,
    const struct relay_dns_progress *pg, void *arg)
{
	req->progress = pg;
	req->progress_arg = arg;
}

/* Host i has every lookup it will get: tell the progress hook. */
static void
host_complete(struct relay_dns_req *req, size_t i)
{
	if (req->progress != NULL && req->progress->host_done != NULL)
		req->progress->host_done(req->progress_arg, req->res, i);
}

static void
lookup_clear(struct relay_dns_lookup *l)
{
	free(l->canon);
	free(l->why);
	/* An assignment rather than memset: the analyzer then sees the freed
	 * pointers replaced by NULL, which later clears free harmlessly. */
	*l = (struct relay_dns_lookup){ 0 };
}

void
relay_dns_result_free(struct relay_dns_result *res)
{
	if (res == NULL)
		return;
	lookup_clear(&res->mx);
	for (size_t i = 0; i < res->nhosts; i++) {
		struct relay_dns_host *h = &res->hosts[i];
		lookup_clear(&h->a);
		lookup_clear(&h->aaaa);
		lookup_clear(&h->cname);
		for (size_t k = 0; k < TLSA_BASES_MAX; k++) {
			lookup_clear(&h->tlsa[k]);
			/* One block: the records, then their data. */
			free(h->recs_[k]);
		}
		free(h->addrs);
	}
	free(res->hosts);
	free(res);
}

static void
lookup_fail(struct relay_dns_lookup *l, enum relay_dns_why why, int rcode,
    const char *text)
{
	lookup_clear(l);
	l->done = true;
	l->st.sec = RELAY_DNS_INDETERMINATE;
	l->st.kind = RELAY_DNS_FAILED;
	l->st.why = why;
	l->st.rcode = rcode;
	if (text != NULL)
		l->why = strdup(text); /* best effort: text is only for logs */
}

/* Copy an answer's facts into l. An allocation failure turns the lookup
 * into an indeterminate failure rather than losing a fact. */
static void
lookup_set(struct relay_dns_lookup *l, const struct relay_dns_answer *ans)
{
	lookup_clear(l);
	l->done = true;
	l->st = ans->st;
	const char *why = ans->why_bogus;
	if (why == NULL && ans->st.why == RELAY_DNS_WHY_LIBERR)
		why = ub_strerror(ans->st.rcode);
	if ((ans->canon != NULL && (l->canon = strdup(ans->canon)) == NULL) ||
	    (why != NULL && (l->why = strdup(why)) == NULL))
		lookup_fail(l, RELAY_DNS_WHY_LIBERR, UB_NOMEM, NULL);
}

static void
req_unlink(struct relay_dns_req *req)
{
	struct relay_dns *dns = req->dns;

	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		dns->reqs = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
}

static void
req_free(struct relay_dns_req *req)
{
	for (size_t i = 0; i < req->nhs; i++) {
		free(req->hs[i].addr6);
		free(req->hs[i].addr4);
	}
	free(req->hs);
	relay_dns_result_free(req->res);
	free(req);
}

static void
finish_if_done(struct relay_dns_req *req)
{
	if (req->pending > 0)
		return;
	struct relay_dns_result *res = req->res;
	struct relay_log_line l;
	if (relay_log_begin(&l, RELAY_LOG_DEBUG, "dns-destination")) {
		relay_log_str(&l, "domain", res->domain);
		relay_log_str(&l, "mx", relay_dns_sec_name(res->mx.st.sec));
		relay_log_str(&l, "mx_answer",
		    relay_dns_kind_name(res->mx.st.kind));
		relay_log_str(&l, "result",
		    relay_dns_dest_kind_name(res->kind));
		relay_log_u64(&l, "hosts", res->nhosts);
		relay_log_end(&l);
	}
	req->res = NULL;
	req_unlink(req);
	relay_dns_dest_cb *cb = req->cb;
	void *arg = req->arg;
	req_free(req);
	cb(arg, res);
}

static void slot_cb(void *arg, const struct relay_dns_answer *ans);

/* Start a lookup for a slot. On failure the lookup is recorded as failed
 * in l and false is returned; no callback will come. */
static bool
slot_start(struct slot *s, const char *name, uint16_t type,
    struct relay_dns_lookup *l)
{
	struct relay_dns *dns = s->req->dns;
	int r = dns->ops->lookup(dns, name, type, slot_cb, s, &s->q);
	if (r != 0) {
		lookup_fail(l,
		    r == RELAY_DNS_ERR_NAME ? RELAY_DNS_WHY_MALFORMED
		                            : RELAY_DNS_WHY_LIBERR,
		    r, relay_dns_strerror(r));
		return false;
	}
	s->req->pending++;
	return true;
}

/* Record a failed TLSA lookup that could not even start as an answer, so
 * tlsa/ sees the failure (C12). */
static void
tlsa_record_failure(struct relay_dns_host *h, size_t k)
{
	struct tlsa_tlsa_in *t = &h->in.tlsa[k];

	t->base = h->base_[k];
	t->res = relay_dns_to_tlsa(&h->tlsa[k].st);
	t->recs = NULL;
	t->n_recs = 0;
	t->malformed = h->tlsa[k].st.why == RELAY_DNS_WHY_MALFORMED;
	h->in.n_tlsa = k + 1;
}

/* Ask tlsa/ whether another TLSA lookup is due, and start it. */
static void
tlsa_step(struct relay_dns_req *req, size_t i)
{
	struct relay_dns_host *h = &req->res->hosts[i];
	const char *base = NULL;
	char qname[RELAY_DNS_HOST_MAX + 16];

	for (;;) {
		int r = tlsa_policy_tlsa_next(&req->res->dest, &h->in, &base);
		if (r < 0) {
			/* Inconsistent facts; tlsa_policy_decide() will refuse
			 * the host the same way, so only log here. */
			dns__log(req->dns, RELAY_LOG_WARNING,
			    "tlsa_policy_tlsa_next host=%s: %s", h->name,
			    tlsa_strerror(r));
			host_complete(req, i);
			return;
		}
		size_t k = h->in.n_tlsa;
		if (r == 0 || k >= TLSA_BASES_MAX) {
			host_complete(req, i);
			return;
		}
		snprintf(h->base_[k], sizeof h->base_[k], "%s", base);
		r = tlsa_qname(h->base_[k], req->res->dest.port, qname,
		    sizeof qname);
		if (r != 0) {
			lookup_fail(&h->tlsa[k], RELAY_DNS_WHY_MALFORMED, 0,
			    tlsa_strerror(r));
		} else if (slot_start(&req->hs[i].slots[SLOT_TLSA], qname,
		               RELAY_DNS_TYPE_TLSA, &h->tlsa[k])) {
			return; /* tlsa_answer() continues */
		}
		tlsa_record_failure(h, k);
		/* Loop: tlsa/ sees the error and stops (C40). */
	}
}

static void
tlsa_answer(struct relay_dns_req *req, size_t i,
    const struct relay_dns_answer *ans)
{
	struct relay_dns_host *h = &req->res->hosts[i];
	size_t k = h->in.n_tlsa;

	if (k >= TLSA_BASES_MAX)
		abort(); /* tlsa_step() never starts more */
	lookup_set(&h->tlsa[k], ans);
	if (h->tlsa[k].st.kind == RELAY_DNS_DATA) {
		size_t n = 0, total = 0;
		while (ans->ub->data[n] != NULL) {
			total += (size_t)ans->ub->len[n];
			n++;
		}
		struct tlsa_record *v = NULL;
		if (n > TLSA_RRSET_MAX) {
			lookup_fail(&h->tlsa[k], RELAY_DNS_WHY_MALFORMED, 0,
			    "too many TLSA records");
		} else if ((v = malloc(n * sizeof *v + total + 1)) == NULL) {
			lookup_fail(&h->tlsa[k], RELAY_DNS_WHY_LIBERR, UB_NOMEM,
			    NULL);
		} else {
			uint8_t *blob = (uint8_t *)(v + n);
			for (size_t j = 0; j < n; j++) {
				const uint8_t *p =
				    (const uint8_t *)ans->ub->data[j];
				size_t len = (size_t)ans->ub->len[j];
				if (tlsa_rdata_parse(p, len, &v[j]) < 0) {
					/* C12: a malformed TLSA RRset is a
					 * lookup failure. */
					free(v);
					v = NULL;
					lookup_fail(&h->tlsa[k],
					    RELAY_DNS_WHY_MALFORMED, 0,
					    "malformed TLSA record");
					break;
				}
				memcpy(blob, v[j].data, v[j].data_len);
				v[j].data = blob;
				blob += v[j].data_len;
			}
			if (v != NULL) {
				h->recs_[k] = v;
				h->in.tlsa[k].recs = v;
				h->in.tlsa[k].n_recs = n;
			}
		}
	}
	if (h->recs_[k] == NULL) {
		tlsa_record_failure(h, k);
	} else {
		h->in.tlsa[k].base = h->base_[k];
		h->in.tlsa[k].res = relay_dns_to_tlsa(&h->tlsa[k].st);
		h->in.tlsa[k].malformed = false;
		h->in.n_tlsa = k + 1;
	}
	tlsa_step(req, i);
}

static bool
numeric_name(const char *name)
{
	struct in_addr a;

	/* C26: MX data that is an IPv4 address in disguise. IPv6 literals
	 * cannot get here: ':' is not a host name character. */
	return inet_pton(AF_INET, name, &a) == 1;
}

/* Both address lookups are in: merge, fill tlsa/'s host input, go on. */
static void
addresses_done(struct relay_dns_req *req, size_t i)
{
	struct relay_dns_host *h = &req->res->hosts[i];
	struct host_state *hs = &req->hs[i];

	/* In smtp_address_preference order (relay_dns_addr_order()). */
	h->naddrs = hs->n6 + hs->n4;
	if (h->naddrs > 0) {
		h->addrs = calloc(h->naddrs, sizeof *h->addrs);
		if (h->addrs == NULL) {
			h->naddrs = 0;
			lookup_fail(&h->a, RELAY_DNS_WHY_LIBERR, UB_NOMEM,
			    NULL);
			lookup_fail(&h->aaaa, RELAY_DNS_WHY_LIBERR, UB_NOMEM,
			    NULL);
		} else {
			(void)relay_dns_addr_order(hs->addr6, hs->n6, hs->addr4,
			    hs->n4, req->dns->address_preference, req->dns->rng,
			    req->dns->rng_arg, h->addrs);
		}
	}

	/* inet_protocols: a family that is off was never asked, and its
	 * absent answer must not count (tlsa.h: one family alone). */
	switch (req->dns->inet_protocols) {
	case RELAY_INET_IPV4:
		h->in.addr = relay_dns_to_tlsa(&h->a.st);
		break;
	case RELAY_INET_IPV6:
		h->in.addr = relay_dns_to_tlsa(&h->aaaa.st);
		break;
	case RELAY_INET_ALL:
		h->in.addr = tlsa_lookup_combine(relay_dns_to_tlsa(&h->a.st),
		    relay_dns_to_tlsa(&h->aaaa.st));
		break;
	}
	if (req->progress != NULL && req->progress->addresses != NULL)
		req->progress->addresses(req->progress_arg, req->res, i);
	/* The expanded name, preferably from a family with data. */
	if (h->a.st.kind == RELAY_DNS_DATA && h->a.canon != NULL)
		h->in.expanded = h->a.canon;
	else if (h->aaaa.st.kind == RELAY_DNS_DATA && h->aaaa.canon != NULL)
		h->in.expanded = h->aaaa.canon;
	else
		h->in.expanded =
		    h->a.canon != NULL ? h->a.canon : h->aaaa.canon;
	/* libunbound's secure flag covers the whole chain (C17), so a secure
	 * answer has a secure first CNAME. For an insecure one it is unknown
	 * until asked, and treated as insecure meanwhile. */
	h->in.first_cname = h->in.addr.dnssec;

	if (h->in.expanded != NULL && h->in.addr.answer == TLSA_ANSWER_DATA &&
	    h->in.addr.dnssec == TLSA_DNSSEC_INSECURE) {
		/* Would a secure first CNAME lead to a TLSA lookup? Only then
		 * is it worth asking (C39). */
		struct tlsa_host_in probe = h->in;
		const char *base;
		probe.first_cname = TLSA_DNSSEC_SECURE;
		if (tlsa_policy_tlsa_next(&req->res->dest, &probe, &base) ==
		    1) {
			if (slot_start(&hs->slots[SLOT_CNAME], h->name,
			        RELAY_DNS_TYPE_CNAME, &h->cname))
				return; /* cname_answer() continues */
			/* Could not even ask: fail the host (C16, C40). */
			h->in.first_cname = TLSA_DNSSEC_INDETERMINATE;
			h->in.addr = relay_dns_to_tlsa(&h->cname.st);
		}
	}
	tlsa_step(req, i);
}

static void
cname_answer(struct relay_dns_req *req, size_t i,
    const struct relay_dns_answer *ans)
{
	struct relay_dns_host *h = &req->res->hosts[i];

	lookup_set(&h->cname, ans);
	switch (h->cname.st.sec) {
	case RELAY_DNS_BOGUS:
		/* C16, C40: an error at any stage of CNAME expansion fails the
		 * whole address lookup. tlsa/ refuses a host whose first CNAME
		 * is bogus or indeterminate (4.7.5, next MX); it must never be
		 * mistaken for an insecure one, which only means "no DANE". */
		h->in.first_cname = TLSA_DNSSEC_BOGUS;
		break;
	case RELAY_DNS_INDETERMINATE:
		/* SERVFAIL, timeout, malformed answer: the same (C05). */
		h->in.first_cname = TLSA_DNSSEC_INDETERMINATE;
		break;
	case RELAY_DNS_SECURE:
	case RELAY_DNS_INSECURE:
		/* Without a CNAME of its own the name's address answer came
		 * through one all the same: nothing secure to stand on. */
		h->in.first_cname = h->cname.st.kind == RELAY_DNS_DATA &&
		        h->cname.st.sec == RELAY_DNS_SECURE
		    ? TLSA_DNSSEC_SECURE
		    : TLSA_DNSSEC_INSECURE;
		break;
	}
	tlsa_step(req, i);
}

static void
addr_answer(struct relay_dns_req *req, size_t i, bool six,
    const struct relay_dns_answer *ans)
{
	struct relay_dns_host *h = &req->res->hosts[i];
	struct host_state *hs = &req->hs[i];
	struct relay_dns_lookup *l = six ? &h->aaaa : &h->a;

	lookup_set(l, ans);
	if (l->st.kind == RELAY_DNS_DATA) {
		size_t n = 0;
		while (ans->ub->data[n] != NULL)
			n++;
		if (n > RELAY_DNS_MAX_ADDRS)
			n = RELAY_DNS_MAX_ADDRS;
		/* classify() gives DATA only with at least one record; should
		 * that ever change, no records is a failure, not an empty set. */
		struct relay_dns_addr *v = NULL;
		if (n == 0)
			lookup_fail(l, RELAY_DNS_WHY_INCONSISTENT,
			    ans->st.rcode, NULL);
		else if ((v = calloc(n, sizeof *v)) == NULL)
			lookup_fail(l, RELAY_DNS_WHY_LIBERR, UB_NOMEM, NULL);
		for (size_t k = 0; v != NULL && k < n; k++) {
			const uint8_t *p = (const uint8_t *)ans->ub->data[k];
			size_t len = (size_t)ans->ub->len[k];
			int r = six ? relay_dns_aaaa_parse(p, len, v[k].bytes)
			            : relay_dns_a_parse(p, len, v[k].bytes);
			v[k].family = six ? AF_INET6 : AF_INET;
			if (r != 0) {
				/* C12, C40: malformed data fails the lookup. */
				free(v);
				v = NULL;
				n = 0;
				lookup_fail(l, RELAY_DNS_WHY_MALFORMED, 0,
				    "malformed address record");
			}
		}
		if (v != NULL) {
			if (six) {
				hs->addr6 = v;
				hs->n6 = n;
			} else {
				hs->addr4 = v;
				hs->n4 = n;
			}
		}
	}
	if (six)
		hs->aaaa_done = true;
	else
		hs->a_done = true;
	if (hs->a_done && hs->aaaa_done)
		addresses_done(req, i);
}

static void
slot_cb(void *arg, const struct relay_dns_answer *ans)
{
	struct slot *s = arg;
	struct relay_dns_req *req = s->req;

	s->q = NULL;
	req->pending--;
	switch (s->kind) {
	case SLOT_A:
		addr_answer(req, s->host, false, ans);
		break;
	case SLOT_AAAA:
		addr_answer(req, s->host, true, ans);
		break;
	case SLOT_CNAME:
		cname_answer(req, s->host, ans);
		break;
	case SLOT_TLSA:
		tlsa_answer(req, s->host, ans);
		break;
	case SLOT_COUNT:
		abort();
	}
	finish_if_done(req);
}

/* Set up hosts[] from the ordered MX list and start their lookups. */
static void
hosts_start(struct relay_dns_req *req, const struct relay_dns_mx *mx, size_t n)
{
	struct relay_dns_result *res = req->res;

	res->hosts = calloc(n, sizeof *res->hosts);
	req->hs = calloc(n, sizeof *req->hs);
	if (res->hosts == NULL || req->hs == NULL) {
		free(res->hosts);
		free(req->hs);
		res->hosts = NULL;
		req->hs = NULL;
		res->kind = RELAY_DNS_DEST_DEFER;
		lookup_fail(&res->mx, RELAY_DNS_WHY_LIBERR, UB_NOMEM, NULL);
		res->dest.mx = relay_dns_to_tlsa(&res->mx.st);
		return;
	}
	res->nhosts = n;
	req->nhs = n;
	res->kind = RELAY_DNS_DEST_HOSTS;
	for (size_t i = 0; i < n; i++) {
		struct relay_dns_host *h = &res->hosts[i];
		struct host_state *hs = &req->hs[i];
		memcpy(h->name, mx[i].host, sizeof h->name);
		h->pref = mx[i].pref;
		h->in.name = h->name;
		h->in.preference = h->pref;
		for (int k = 0; k < SLOT_COUNT; k++) {
			hs->slots[k].req = req;
			hs->slots[k].host = i;
			hs->slots[k].kind = (enum slot_kind)k;
		}
		/* Only relay_dns_mx_parse()'s replacement makes a '?'. */
		if (strchr(h->name, '?') != NULL) {
			h->bad_name = true;
			lookup_fail(&h->a, RELAY_DNS_WHY_MALFORMED, 0,
			    "MX exchange is not a host name");
			lookup_fail(&h->aaaa, RELAY_DNS_WHY_MALFORMED, 0,
			    "MX exchange is not a host name");
			h->in.addr = relay_dns_to_tlsa(&h->a.st);
			h->in.first_cname = h->in.addr.dnssec;
			continue;
		}
		h->in.name_numeric = numeric_name(h->name);
	}
	/* Every host is named before any answer can arrive. */
	if (req->progress != NULL && req->progress->mx != NULL)
		req->progress->mx(req->progress_arg, res);
	for (size_t i = 0; i < n; i++) {
		struct relay_dns_host *h = &res->hosts[i];
		struct host_state *hs = &req->hs[i];
		if (h->bad_name)
			continue;
		/* inet_protocols: no query at all for a family that is off
		 * (Postfix makes none either); its lookup stays "not made". */
		enum relay_inet_protocols inet = req->dns->inet_protocols;
		bool a_ok = inet != RELAY_INET_IPV6 &&
		    slot_start(&hs->slots[SLOT_A], h->name, RELAY_DNS_TYPE_A,
		        &h->a);
		bool q_ok = inet != RELAY_INET_IPV4 &&
		    slot_start(&hs->slots[SLOT_AAAA], h->name,
		        RELAY_DNS_TYPE_AAAA, &h->aaaa);
		hs->a_done = !a_ok;
		hs->aaaa_done = !q_ok;
		if (!a_ok && !q_ok)
			addresses_done(req, i);
	}
}

static void
mx_answer(struct relay_dns_req *req, const struct relay_dns_answer *ans)
{
	struct relay_dns_result *res = req->res;

	lookup_set(&res->mx, ans);
	if (res->mx.canon != NULL) {
		/* Owned by the result: the error paths below free mx.canon. */
		snprintf(res->mx_expanded_, sizeof res->mx_expanded_, "%s",
		    res->mx.canon);
		res->dest.mx_expanded = res->mx_expanded_;
	}
	res->dest.mx = relay_dns_to_tlsa(&res->mx.st);
	switch (ans->st.sec) {
	case RELAY_DNS_BOGUS:
	case RELAY_DNS_INDETERMINATE:
		res->kind = RELAY_DNS_DEST_DEFER; /* C09, C05 */
		return;
	case RELAY_DNS_SECURE:
	case RELAY_DNS_INSECURE:
		break;
	}
	switch (ans->st.kind) {
	case RELAY_DNS_FAILED:
		abort(); /* classify() pairs FAILED with bogus/indeterminate */
	case RELAY_DNS_NXDOMAIN:
		res->kind = RELAY_DNS_DEST_NXDOMAIN; /* I25 */
		return;
	case RELAY_DNS_NODATA: {
		/* RFC 5321 5.1 (I27): the domain is its own MX, preference 0.
		 * C56: its CNAME expansion is found by the address lookup. */
		struct relay_dns_mx self = { .pref = 0 };
		memcpy(self.host, res->domain, sizeof self.host);
		res->implicit_mx = true;
		hosts_start(req, &self, 1);
		return;
	}
	case RELAY_DNS_DATA:
		break;
	}

	size_t total = 0;
	while (ans->ub->data[total] != NULL)
		total++;
	/* classify() gives DATA only with at least one record; should that
	 * ever change, no records is a failure, not an empty MX set. */
	struct relay_dns_mx *mx = total > 0 ? calloc(total, sizeof *mx) : NULL;
	if (mx == NULL) {
		lookup_fail(&res->mx,
		    total > 0 ? RELAY_DNS_WHY_LIBERR
		              : RELAY_DNS_WHY_INCONSISTENT,
		    total > 0 ? UB_NOMEM : ans->st.rcode, NULL);
		res->dest.mx = relay_dns_to_tlsa(&res->mx.st);
		res->kind = RELAY_DNS_DEST_DEFER;
		return;
	}
	for (size_t k = 0; k < total; k++) {
		int r = relay_dns_mx_parse((const uint8_t *)ans->ub->data[k],
		    (size_t)ans->ub->len[k], &mx[k]);
		if (r == RELAY_DNS_ERR_MALFORMED) {
			free(mx);
			lookup_fail(&res->mx, RELAY_DNS_WHY_MALFORMED, 0,
			    "malformed MX record");
			res->dest.mx = relay_dns_to_tlsa(&res->mx.st);
			res->kind = RELAY_DNS_DEST_DEFER;
			return;
		}
		if (r == 0 && relay_dns_mx_is_null(&mx[k])) {
			/* RFC 7505 3; a null MX among others is still a null
			 * MX (checklist note 3). */
			free(mx);
			res->dest.mx_null = true;
			res->kind = RELAY_DNS_DEST_NULL_MX;
			return;
		}
		/* r == RELAY_DNS_ERR_NAME: kept as an unusable host so the
		 * logs show it; its text carries '?' for the bad bytes. */
	}
	size_t n =
	    relay_dns_mx_order(mx, total, req->dns->rng, req->dns->rng_arg);
	if (n > RELAY_DNS_MAX_MX) {
		res->mx_truncated = true;
		n = RELAY_DNS_MAX_MX;
	}
	hosts_start(req, mx, n);
	free(mx);
}

static void
mx_cb(void *arg, const struct relay_dns_answer *ans)
{
	struct relay_dns_req *req = arg;

	req->mx.q = NULL;
	req->pending--;
	mx_answer(req, ans);
	finish_if_done(req);
}

/*
 * A new request for name (normalised into its result's domain) with the
 * destination facts every request starts with. Returns 0 and *out, or a
 * relay_dns_err; nothing is linked into dns yet.
 */
static int
req_new(struct relay_dns *dns, const char *name, uint16_t port,
    enum tlsa_level level, relay_dns_dest_cb *cb, void *arg,
    struct relay_dns_req **out)
{
	if (dns->closing)
		return RELAY_DNS_ERR_CLOSING;
	struct relay_dns_req *req = calloc(1, sizeof *req);
	if (req == NULL)
		return RELAY_DNS_ERR_NOMEM;
	req->res = calloc(1, sizeof *req->res);
	if (req->res == NULL) {
		free(req);
		return RELAY_DNS_ERR_NOMEM;
	}
	struct relay_dns_result *res = req->res;
	int r = relay_dns_host_normalize(name, strlen(name), res->domain);
	if (r != 0) {
		req_free(req);
		return r;
	}
	req->dns = dns;
	req->cb = cb;
	req->arg = arg;
	res->dest.level = level;
	res->dest.nexthop = res->domain;
	res->dest.port = port;
	*out = req;
	return 0;
}

/* Link req, whose lookups are under way, into dns's list (cancel on
 * close) and hand it to the caller. */
static void
req_link(struct relay_dns *dns, struct relay_dns_req *req,
    struct relay_dns_req **out)
{
	req->next = dns->reqs;
	if (dns->reqs != NULL)
		dns->reqs->prev = req;
	dns->reqs = req;
	if (out != NULL)
		*out = req;
}

int
relay_dns_resolve(struct relay_dns *dns, const char *domain, uint16_t port,
    enum tlsa_level level, relay_dns_dest_cb *cb, void *arg,
    struct relay_dns_req **out)
{
	if (out != NULL)
		*out = NULL;
	struct relay_dns_req *req;
	int r = req_new(dns, domain, port, level, cb, arg, &req);
	if (r != 0)
		return r;
	struct relay_dns_result *res = req->res;
	res->kind = RELAY_DNS_DEST_DEFER;
	res->dest.mx.answer = TLSA_ANSWER_ERROR;
	res->dest.mx.dnssec = TLSA_DNSSEC_INDETERMINATE;
	r = dns->ops->lookup(dns, res->domain, RELAY_DNS_TYPE_MX, mx_cb, req,
	    &req->mx.q);
	if (r != 0) {
		req_free(req);
		return r;
	}
	req->pending = 1;
	req_link(dns, req, out);
	return 0;
}

int
relay_dns_resolve_host(struct relay_dns *dns, const char *host, uint16_t port,
    enum tlsa_level level, relay_dns_dest_cb *cb, void *arg,
    struct relay_dns_req **out)
{
	if (out != NULL)
		*out = NULL;
	struct relay_dns_req *req;
	int r = req_new(dns, host, port, level, cb, arg, &req);
	if (r != 0)
		return r;
	struct relay_dns_result *res = req->res;
	/* "[host]": the name comes from configuration; no MX lookup, so the
	 * MX facts stay "not asked" and tlsa/ reads dest.no_mx instead. */
	res->dest.no_mx = true;
	res->implicit_mx = true;
	res->dest.mx.answer = TLSA_ANSWER_NODATA;
	res->dest.mx.dnssec = TLSA_DNSSEC_INSECURE;
	struct relay_dns_mx self = { .pref = 0 };
	memcpy(self.host, res->domain, sizeof self.host);
	hosts_start(req, &self, 1);
	if (req->pending == 0) {
		/* Nothing could even be asked: no callback will come. */
		r = res->nhosts == 0 ? RELAY_DNS_ERR_NOMEM
		                     : RELAY_DNS_ERR_RESOLVER;
		req_free(req);
		return r;
	}
	req_link(dns, req, out);
	return 0;
}

void
relay_dns_cancel(struct relay_dns_req *req)
{
	if (req == NULL)
		return;
	struct relay_dns *dns = req->dns;
	if (req->mx.q != NULL)
		dns->ops->cancel(req->mx.q);
	for (size_t i = 0; i < req->nhs; i++)
		for (int k = 0; k < SLOT_COUNT; k++)
			if (req->hs[i].slots[k].q != NULL)
				dns->ops->cancel(req->hs[i].slots[k].q);
	req_unlink(req);
	req_free(req);
	dns__drain_check(dns); /* a retired context */
}

const struct relay_dns_req *
dns__req_next(const struct relay_dns_req *req)
{
	return req->next;
}

void
dns__cancel_all_reqs(struct relay_dns *dns)
{
	/* Called by relay_dns_close() once dns->closing is set, so no cancel
	 * below can close (and re-enter) the context: each frees only its own
	 * request and lookups, and the saved next stays valid. */
	struct relay_dns_req *req = dns->reqs;
	while (req != NULL) {
		struct relay_dns_req *next = req->next;
		relay_dns_cancel(req);
		req = next;
	}
}
