/*
 * RFC 7672 policy as a pure function: DNS facts + configured level ->
 * verdict per MX host. Row ids refer to docs/rfc7672-checklist.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tlsa_int.h"

struct tlsa_lookup
tlsa_lookup_combine(struct tlsa_lookup a, struct tlsa_lookup aaaa)
{
	struct tlsa_lookup r;
	/* A failure in either family is a failure of the host's address
	 * lookup (C40): the daemon must not act on half an answer. */
	if (a.answer == TLSA_ANSWER_ERROR || aaaa.answer == TLSA_ANSWER_ERROR) {
		r.answer = TLSA_ANSWER_ERROR;
		r.dnssec = TLSA_DNSSEC_INDETERMINATE;
		return r;
	}
	if (a.dnssec == TLSA_DNSSEC_BOGUS || aaaa.dnssec == TLSA_DNSSEC_BOGUS)
		r.dnssec = TLSA_DNSSEC_BOGUS;
	else if (a.dnssec == TLSA_DNSSEC_INDETERMINATE ||
	    aaaa.dnssec == TLSA_DNSSEC_INDETERMINATE)
		r.dnssec = TLSA_DNSSEC_INDETERMINATE;
	else if (a.dnssec == TLSA_DNSSEC_INSECURE ||
	    aaaa.dnssec == TLSA_DNSSEC_INSECURE)
		r.dnssec = TLSA_DNSSEC_INSECURE;
	else
		r.dnssec = TLSA_DNSSEC_SECURE;
	if (a.answer == TLSA_ANSWER_DATA || aaaa.answer == TLSA_ANSWER_DATA)
		r.answer = TLSA_ANSWER_DATA;
	else if (a.answer == TLSA_ANSWER_NODATA ||
	    aaaa.answer == TLSA_ANSWER_NODATA)
		r.answer = TLSA_ANSWER_NODATA;
	else
		r.answer = TLSA_ANSWER_NXDOMAIN;
	return r;
}

static bool
level_ok(enum tlsa_level l)
{
	switch (l) {
	case TLSA_LEVEL_DANE:
	case TLSA_LEVEL_DANE_ONLY:
	case TLSA_LEVEL_MAY:
	case TLSA_LEVEL_ENCRYPT:
	case TLSA_LEVEL_VERIFY:
		return true;
	}
	return false;
}

static bool
lookup_ok(const struct tlsa_lookup *l)
{
	bool a = false, d = false;
	switch (l->answer) {
	case TLSA_ANSWER_DATA:
	case TLSA_ANSWER_NODATA:
	case TLSA_ANSWER_NXDOMAIN:
	case TLSA_ANSWER_ERROR:
		a = true;
		break;
	}
	switch (l->dnssec) {
	case TLSA_DNSSEC_SECURE:
	case TLSA_DNSSEC_INSECURE:
	case TLSA_DNSSEC_BOGUS:
	case TLSA_DNSSEC_INDETERMINATE:
		d = true;
		break;
	}
	return a && (d || l->answer == TLSA_ANSWER_ERROR);
}

/* C05: indeterminate is bogus. */
static bool
is_bogus(enum tlsa_dnssec s)
{
	return s == TLSA_DNSSEC_BOGUS || s == TLSA_DNSSEC_INDETERMINATE;
}

static bool
dane_level(enum tlsa_level l)
{
	return l == TLSA_LEVEL_DANE || l == TLSA_LEVEL_DANE_ONLY;
}

static void
set_status(char status[TLSA_STATUS_MAX + 1], const char *code)
{
	size_t n = strlen(code);
	TLSA__ASSERT(n <= TLSA_STATUS_MAX);
	memcpy(status, code, n + 1);
}

static void
dest_fail(struct tlsa_dest_verdict *out, enum tlsa_dest_action a,
    const char *code, enum tlsa_failure f, const char *why)
{
	out->action = a;
	set_status(out->status, code);
	out->fclass = f;
	int w = snprintf(out->reason, sizeof(out->reason), "%s", why);
	TLSA__ASSERT(w >= 0 && (size_t)w < sizeof(out->reason));
}

int
tlsa_policy_destination(const struct tlsa_dest_in *dest,
    struct tlsa_dest_verdict *out)
{
	if (dest == NULL || out == NULL)
		return TLSA_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	if (!level_ok(dest->level))
		return TLSA_ERR_INVAL;
	if (dest->nexthop == NULL)
		return TLSA_ERR_INVAL;
	if (dest->nexthop_literal) {
		/* RFC 7672 2.2 (C26): DANE does not apply to address literals. */
		if (dest->level == TLSA_LEVEL_DANE_ONLY) {
			dest_fail(out, TLSA_DEST_DEFER, "4.7.5",
			    TLSA_FAIL_DANE_REQUIRED,
			    "DANE required, but DANE does not apply to an address literal (RFC 7672 2.2)");
			return 0;
		}
		out->action = TLSA_DEST_LITERAL;
		out->mx_secure =
		    true; /* the address comes from configuration */
		return 0;
	}
	char name[TLSA_NAME_MAX + 1];
	if (tlsa__name_copy(dest->nexthop, name) < 0)
		return TLSA_ERR_NAME;
	if (dest->no_mx) {
		/* "[host]": the host name comes from configuration, not DNS. */
		out->action = TLSA_DEST_IMPLICIT;
		out->mx_secure = true;
		return 0;
	}
	if (dest->mx_expanded != NULL &&
	    tlsa__name_copy(dest->mx_expanded, name) < 0)
		return TLSA_ERR_NAME;
	if (!lookup_ok(&dest->mx))
		return TLSA_ERR_INVAL;
	/* RFC 7672 2.1.2 (C09): a failed MX lookup prevents choosing servers. */
	if (dest->mx.answer == TLSA_ANSWER_ERROR) {
		dest_fail(out, TLSA_DEST_DEFER, "4.4.3", TLSA_FAIL_DNS_ERROR,
		    "MX lookup failed (RFC 7672 2.1.2)");
		return 0;
	}
	if (is_bogus(dest->mx.dnssec)) {
		dest_fail(out, TLSA_DEST_DEFER, "4.7.5",
		    TLSA_FAIL_DNSSEC_INVALID,
		    dest->mx.dnssec == TLSA_DNSSEC_BOGUS
		        ? "MX lookup DNSSEC-bogus (RFC 7672 2.1.2)"
		        : "MX lookup DNSSEC-indeterminate, treated as bogus (RFC 7672 2.1.1)");
		return 0;
	}
	/* RFC 7672 2.2.1 (C30): mandatory DANE needs a secure MX RRset (and
	 * a secure CNAME leading to it; dnssec already covers the chain). */
	if (dest->level == TLSA_LEVEL_DANE_ONLY &&
	    dest->mx.dnssec != TLSA_DNSSEC_SECURE) {
		dest_fail(out, TLSA_DEST_DEFER, "4.7.5",
		    TLSA_FAIL_DANE_REQUIRED,
		    "DANE required, but the MX lookup is insecure (RFC 7672 2.2.1)");
		return 0;
	}
	if (dest->mx.answer == TLSA_ANSWER_DATA && dest->mx_null) {
		/* RFC 7505 3/4.1 (I32, I33): no mail accepted; 5.1.10 rather than
		 * Postfix's 5.1.0 (checklist departure 3). Mixed: still null MX. */
		dest_fail(out, TLSA_DEST_BOUNCE, "5.1.10", TLSA_FAIL_NULL_MX,
		    "domain publishes a null MX: it accepts no mail (RFC 7505)");
		return 0;
	}
	switch (dest->mx.answer) {
	case TLSA_ANSWER_NXDOMAIN:
		/* RFC 5321 5.1 (I25): a non-existent domain is an error. */
		dest_fail(out, TLSA_DEST_BOUNCE, "5.1.2",
		    TLSA_FAIL_HOST_NOT_FOUND,
		    "next-hop domain does not exist (NXDOMAIN, RFC 5321 5.1)");
		return 0;
	case TLSA_ANSWER_NODATA:
		/* RFC 5321 5.1 (I27): implicit MX, the domain itself. The name is
		 * the next-hop, not data from DNS, so it is trustworthy (C33). */
		out->action = TLSA_DEST_IMPLICIT;
		out->mx_secure = true;
		return 0;
	case TLSA_ANSWER_DATA:
		out->action = TLSA_DEST_USE_MX;
		out->mx_secure = dest->mx.dnssec == TLSA_DNSSEC_SECURE;
		return 0;
	case TLSA_ANSWER_ERROR:
		break;
	}
	return TLSA_ERR_INVAL;
}

/*
 * RFC 7672 2.2.2 (C39, C44, C45): candidate TLSA base domains, in lookup
 * order. Returns the count (0: no TLSA lookups) or a negative error.
 */
static int
candidates(const struct tlsa_dest_in *dest, const struct tlsa_dest_verdict *dv,
    const struct tlsa_host_in *host, const char *c[TLSA_BASES_MAX])
{
	if (dv->action != TLSA_DEST_USE_MX && dv->action != TLSA_DEST_IMPLICIT)
		return 0;
	if (!dane_level(dest->level))
		return 0; /* the level makes TLSA moot */
	if (host->name_numeric)
		return 0; /* C26 */
	/* C36: address records first; C38: none found, unreachable. */
	if (host->addr.answer != TLSA_ANSWER_DATA ||
	    is_bogus(host->addr.dnssec))
		return 0;
	if (host->expanded == NULL) {
		/* C37: no TLSA lookups after an insecure address response. */
		if (host->addr.dnssec != TLSA_DNSSEC_SECURE)
			return 0;
		c[0] = host->name;
		return 1;
	}
	if (host->addr.dnssec == TLSA_DNSSEC_SECURE) {
		/* Secure expansion: expanded name, then the original (C44);
		 * never an intermediate name (C45). */
		c[0] = host->expanded;
		c[1] = host->name;
		return 2;
	}
	/* Insecure expansion: the original name if the first CNAME is secure,
	 * else no DANE (C39; C17 for the rest of the chain). A bogus or
	 * indeterminate first CNAME asks for nothing either: decide() refuses
	 * the host (C16, C40). */
	if (host->first_cname == TLSA_DNSSEC_SECURE) {
		c[0] = host->name;
		return 1;
	}
	return 0;
}

/* After answer t, another candidate is consulted only when t holds no
 * secure TLSA records (C44). Errors stop the walk (C40). */
static bool
wants_fallback(const struct tlsa_tlsa_in *t)
{
	if (t->malformed || t->res.answer == TLSA_ANSWER_ERROR ||
	    is_bogus(t->res.dnssec))
		return false;
	if (t->res.dnssec == TLSA_DNSSEC_INSECURE)
		return true;
	return t->res.answer == TLSA_ANSWER_NODATA ||
	    t->res.answer == TLSA_ANSWER_NXDOMAIN;
}

static int
check_host(const struct tlsa_dest_in *dest, const struct tlsa_host_in *host)
{
	char name[TLSA_NAME_MAX + 1];
	if (host == NULL || host->name == NULL || host->n_tlsa > TLSA_BASES_MAX)
		return TLSA_ERR_INVAL;
	if (!lookup_ok(&host->addr))
		return TLSA_ERR_INVAL;
	if (!dest->nexthop_literal && !host->name_numeric) {
		if (tlsa__name_copy(host->name, name) < 0)
			return TLSA_ERR_NAME;
		if (host->expanded != NULL &&
		    tlsa__name_copy(host->expanded, name) < 0)
			return TLSA_ERR_NAME;
	}
	for (size_t i = 0; i < host->n_tlsa; i++) {
		const struct tlsa_tlsa_in *t = &host->tlsa[i];
		if (t->base == NULL || !lookup_ok(&t->res) ||
		    (t->recs == NULL && t->n_recs > 0))
			return TLSA_ERR_INVAL;
	}
	return 0;
}

/* Walk the answers; returns 1 with *base set if another lookup is due. */
static int
next_lookup(const struct tlsa_dest_in *dest, const struct tlsa_dest_verdict *dv,
    const struct tlsa_host_in *host, const char **base)
{
	const char *c[TLSA_BASES_MAX] = { NULL, NULL };
	int k = candidates(dest, dv, host, c);
	if (k < 0)
		return k;
	if (host->n_tlsa > (size_t)k)
		return TLSA_ERR_INVAL;
	for (size_t i = 0; i < host->n_tlsa; i++) {
		if (!tlsa__name_eq(host->tlsa[i].base, c[i]))
			return TLSA_ERR_INVAL;
		if (!wants_fallback(&host->tlsa[i]) && i + 1 < host->n_tlsa)
			return TLSA_ERR_INVAL; /* an answer after a final one */
	}
	if (host->n_tlsa == 0 && k > 0) {
		*base = c[0];
		return 1;
	}
	if (host->n_tlsa > 0 && host->n_tlsa < (size_t)k &&
	    wants_fallback(&host->tlsa[host->n_tlsa - 1])) {
		*base = c[host->n_tlsa];
		return 1;
	}
	return 0;
}

int
tlsa_policy_tlsa_next(const struct tlsa_dest_in *dest,
    const struct tlsa_host_in *host, const char **base)
{
	struct tlsa_dest_verdict dv;
	if (base == NULL)
		return TLSA_ERR_INVAL;
	*base = NULL;
	int rc = tlsa_policy_destination(dest, &dv);
	if (rc < 0)
		return rc;
	if ((rc = check_host(dest, host)) < 0)
		return rc;
	return next_lookup(dest, &dv, host, base);
}

__attribute__((format(printf, 6, 7))) static void
dnc(struct tlsa_verdict *v, enum tlsa_scope scope, bool permanent,
    const char *code, enum tlsa_failure f, const char *fmt, ...)
{
	v->kind = TLSA_VERDICT_DO_NOT_CONNECT;
	v->log_as = TLSA_TRUST_NONE;
	v->scope = scope;
	v->permanent = permanent;
	set_status(v->status, code);
	v->fclass = f;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
	if (w < 0)
		v->reason[0] = '\0';
}

static void
add_ref(struct tlsa_verdict *v, const char *name)
{
	char n[TLSA_NAME_MAX + 1];
	if (name == NULL || tlsa__name_copy(name, n) < 0)
		return;
	for (size_t i = 0; i < v->n_refs; i++)
		if (strcmp(v->refs[i], n) == 0)
			return;
	TLSA__ASSERT(v->n_refs < TLSA_REFS_MAX);
	memcpy(v->refs[v->n_refs++], n, strlen(n) + 1);
}

static int
take_records(struct tlsa_verdict *v, const struct tlsa_record *recs, size_t n,
    const enum tlsa_unusable *why)
{
	size_t count = 0, bytes = 0;
	for (size_t i = 0; i < n; i++)
		if (why[i] == TLSA_USABLE) {
			count++;
			bytes += recs[i].data_len;
		}
	size_t hdr = count * sizeof(struct tlsa_record);
	v->blob_ = malloc(hdr + bytes + 1);
	if (v->blob_ == NULL)
		return TLSA_ERR_NOMEM;
	v->usable = (struct tlsa_record *)(void *)v->blob_;
	uint8_t *d = v->blob_ + hdr;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (why[i] != TLSA_USABLE)
			continue;
		v->usable[j] = recs[i];
		if (recs[i].data_len > 0)
			memcpy(d, recs[i].data, recs[i].data_len);
		v->usable[j].data = d;
		d += recs[i].data_len;
		j++;
	}
	v->n_usable = count;
	return tlsa_rrset_digest(v->usable, v->n_usable, v->rrset_digest);
}

/* Outcome of the secure TLSA answer t for base domain `base` (C18, C20). */
static int
decide_tlsa(const struct tlsa_dest_in *dest, const struct tlsa_dest_verdict *dv,
    const struct tlsa_host_in *host, const struct tlsa_tlsa_in *t,
    const char *base, const struct tlsa_digests *digests,
    struct tlsa_verdict *v)
{
	bool only = dest->level == TLSA_LEVEL_DANE_ONLY;
	if (t->n_recs == 0 || t->n_recs > TLSA_RRSET_MAX) {
		dnc(v, TLSA_SCOPE_HOST, false, "4.7.5", TLSA_FAIL_TLSA_INVALID,
		    "TLSA answer for %s has %zu records (RFC 7672 2.1.2)", base,
		    t->n_recs);
		return 0;
	}
	enum tlsa_unusable why[TLSA_RRSET_MAX];
	int usable = tlsa_rrset_classify(t->recs, t->n_recs, digests, why);
	if (usable < 0)
		return usable;
	/* RFC 7672 8.1: SNI carries the base domain whenever TLSA records were
	 * found, usable or not. */
	int rc = tlsa__name_copy(base, v->base_domain);
	if (rc < 0)
		return rc;
	if (usable == 0) {
		if (only) {
			/* C62, I15, checklist departure 5: do not connect at all. */
			dnc(v, TLSA_SCOPE_HOST, false, "4.7.5",
			    TLSA_FAIL_TLSA_INVALID,
			    "DANE required, but none of the %zu TLSA records for %s is usable (RFC 7671 10.3)",
			    t->n_recs, base);
			return 0;
		}
		/* C20, C43, I16: TLS required, no authentication. */
		v->kind = TLSA_VERDICT_ENCRYPT;
		v->log_as = TLSA_TRUST_UNTRUSTED;
		return 0;
	}
	rc = take_records(v, t->recs, t->n_recs, why);
	if (rc < 0)
		return rc;
	v->kind = TLSA_VERDICT_DANE;
	/* RFC 7672 3.2.2: the base domain is the primary reference identifier
	 * (C53, I11). */
	add_ref(v, base);
	if (!dv->mx_secure) {
		/* C55: via an insecure MX the MX host name is the only reference
		 * identifier (RFC text; Postfix also adds the recipient domain,
		 * checklist departure 2). C33: never "Verified". */
		v->log_as = TLSA_TRUST_TRUSTED;
		return 0;
	}
	v->log_as = TLSA_TRUST_VERIFIED;
	if (dv->action == TLSA_DEST_USE_MX) {
		/* C54: the original next-hop (2nd) and its CNAME expansion (3rd). */
		add_ref(v, dest->nexthop);
		add_ref(v, dest->mx_expanded);
	} else {
		/* C56 (checklist departure 1, RFC followed): no MX and the base
		 * domain is the expanded next-hop: add the original next-hop. */
		add_ref(v, host->name);
	}
	return 0;
}

static int
decide(const struct tlsa_dest_in *dest, const struct tlsa_host_in *host,
    const struct tlsa_digests *digests, struct tlsa_verdict *v)
{
	struct tlsa_dest_verdict dv;
	int rc = tlsa_policy_destination(dest, &dv);
	if (rc < 0)
		return rc;
	if ((rc = check_host(dest, host)) < 0)
		return rc;
	v->level = dest->level;
	v->mx_secure = dv.mx_secure;
	v->addr_secure = host->addr.answer != TLSA_ANSWER_ERROR &&
	    host->addr.dnssec == TLSA_DNSSEC_SECURE;
	switch (dv.action) {
	case TLSA_DEST_DEFER:
	case TLSA_DEST_BOUNCE:
		dnc(v, TLSA_SCOPE_DESTINATION, dv.action == TLSA_DEST_BOUNCE,
		    dv.status, dv.fclass, "%s", dv.reason);
		return 0;
	case TLSA_DEST_LITERAL:
		switch (dest->level) {
		case TLSA_LEVEL_DANE:
		case TLSA_LEVEL_MAY:
			v->kind = TLSA_VERDICT_MAY; /* C26 */
			v->log_as = TLSA_TRUST_UNTRUSTED;
			return 0;
		case TLSA_LEVEL_ENCRYPT:
			v->kind = TLSA_VERDICT_ENCRYPT;
			v->log_as = TLSA_TRUST_UNTRUSTED;
			return 0;
		case TLSA_LEVEL_VERIFY:
			/* PKIX against the literal address (IP SAN). */
			if (strlen(host->name) > TLSA_NAME_MAX)
				return TLSA_ERR_NAME;
			memcpy(v->base_domain, host->name,
			    strlen(host->name) + 1);
			memcpy(v->refs[0], host->name, strlen(host->name) + 1);
			v->n_refs = 1;
			v->kind = TLSA_VERDICT_VERIFY;
			v->log_as = TLSA_TRUST_VERIFIED;
			return 0;
		case TLSA_LEVEL_DANE_ONLY:
			break; /* deferred by tlsa_policy_destination() */
		}
		return TLSA_ERR_INVAL;
	case TLSA_DEST_USE_MX:
	case TLSA_DEST_IMPLICIT:
		break;
	}

	/* Address lookup of this host (C10, C14, C38, C40): skip the host. */
	if (host->addr.answer == TLSA_ANSWER_ERROR) {
		dnc(v, TLSA_SCOPE_HOST, false, "4.4.3", TLSA_FAIL_DNS_ERROR,
		    "address lookup for %s failed (RFC 7672 2.1.2)",
		    host->name);
		return 0;
	}
	if (is_bogus(host->addr.dnssec)) {
		dnc(v, TLSA_SCOPE_HOST, false, "4.7.5",
		    TLSA_FAIL_DNSSEC_INVALID,
		    "address lookup for %s is DNSSEC-%s (RFC 7672 2.1.2)",
		    host->name,
		    host->addr.dnssec == TLSA_DNSSEC_BOGUS ? "bogus"
		                                           : "indeterminate");
		return 0;
	}
	/* RFC 7672 2.1.3 (C16) and 2.2.2 (C40): the first CNAME of the
	 * expansion is part of the address lookup. A bogus or indeterminate
	 * answer for it is a failed lookup, which skips the host; read as
	 * "no DANE" it would let an attacker who can break that one signature
	 * turn DANE into opportunistic TLS. */
	if (host->expanded != NULL && is_bogus(host->first_cname)) {
		dnc(v, TLSA_SCOPE_HOST, false, "4.7.5",
		    TLSA_FAIL_DNSSEC_INVALID,
		    "CNAME lookup for %s is DNSSEC-%s (RFC 7672 2.1.3, 2.2.2)",
		    host->name,
		    host->first_cname == TLSA_DNSSEC_BOGUS ? "bogus"
		                                           : "indeterminate");
		return 0;
	}
	if (host->addr.answer != TLSA_ANSWER_DATA) {
		dnc(v, TLSA_SCOPE_HOST, false, "4.4.4",
		    TLSA_FAIL_HOST_NOT_FOUND,
		    "no address records for %s (RFC 7672 2.2.2)", host->name);
		return 0;
	}

	switch (dest->level) {
	case TLSA_LEVEL_MAY:
		v->kind = TLSA_VERDICT_MAY;
		v->log_as = TLSA_TRUST_UNTRUSTED;
		return 0;
	case TLSA_LEVEL_ENCRYPT:
		v->kind = TLSA_VERDICT_ENCRYPT;
		v->log_as = TLSA_TRUST_UNTRUSTED;
		return 0;
	case TLSA_LEVEL_VERIFY:
		/* PKIX with the MX host name as the reference identifier. The name
		 * is only as good as the MX lookup, so an insecure MX is logged
		 * "Trusted" (same reasoning as C33). */
		if ((rc = tlsa__name_copy(host->name, v->base_domain)) < 0)
			return rc;
		add_ref(v, host->name);
		v->kind = TLSA_VERDICT_VERIFY;
		v->log_as =
		    dv.mx_secure ? TLSA_TRUST_VERIFIED : TLSA_TRUST_TRUSTED;
		return 0;
	case TLSA_LEVEL_DANE:
	case TLSA_LEVEL_DANE_ONLY:
		break;
	}

	bool only = dest->level == TLSA_LEVEL_DANE_ONLY;
	const char *base = NULL;
	rc = next_lookup(dest, &dv, host, &base);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return TLSA_ERR_INCOMPLETE;
	if (host->n_tlsa == 0) {
		/* No TLSA lookup is allowed (C26, C37, C39). */
		if (only) {
			dnc(v, TLSA_SCOPE_HOST, false, "4.7.5",
			    TLSA_FAIL_DANE_REQUIRED,
			    host->name_numeric
			        ? "DANE required, but the MX data %s is numeric (RFC 7672 2.2)"
			        : "DANE required, but the address records of %s are insecure (RFC 7672 2.2.2)",
			    host->name);
			return 0;
		}
		v->kind = TLSA_VERDICT_MAY; /* C22 */
		v->log_as = TLSA_TRUST_UNTRUSTED;
		return 0;
	}
	const struct tlsa_tlsa_in *t = &host->tlsa[host->n_tlsa - 1];
	v->tlsa_looked_up = true;
	v->tlsa_answer = t->res.answer;
	v->tlsa_dnssec = t->res.dnssec;
	v->n_tlsa = t->n_recs;
	if (t->malformed) {
		dnc(v, TLSA_SCOPE_HOST, false, "4.7.5", TLSA_FAIL_TLSA_INVALID,
		    "malformed TLSA answer for %s (RFC 7672 2.1.2)", t->base);
		return 0;
	}
	if (t->res.answer == TLSA_ANSWER_ERROR) {
		/* C12, C13, C15, C35: a failed TLSA lookup makes the host unreachable. */
		dnc(v, TLSA_SCOPE_HOST, false, "4.7.5",
		    TLSA_FAIL_DNSSEC_INVALID,
		    "TLSA lookup for %s failed (RFC 7672 2.1.2)", t->base);
		return 0;
	}
	if (is_bogus(t->res.dnssec)) {
		/* C24, I20. */
		dnc(v, TLSA_SCOPE_HOST, false, "4.7.5",
		    TLSA_FAIL_DNSSEC_INVALID,
		    "TLSA lookup for %s is DNSSEC-%s (RFC 7672 2.1.2)", t->base,
		    t->res.dnssec == TLSA_DNSSEC_BOGUS ? "bogus"
		                                       : "indeterminate");
		return 0;
	}
	if (t->res.dnssec == TLSA_DNSSEC_SECURE &&
	    t->res.answer == TLSA_ANSWER_DATA)
		return decide_tlsa(dest, &dv, host, t, t->base, digests, v);
	/* Insecure TLSA (I21) or a secure denial: pre-DANE opportunistic TLS (C22). */
	if (only) {
		dnc(v, TLSA_SCOPE_HOST, false, "4.7.5", TLSA_FAIL_DANE_REQUIRED,
		    "DANE required, but %s has no secure TLSA records (RFC 7672 6)",
		    t->base);
		return 0;
	}
	v->kind = TLSA_VERDICT_MAY;
	v->log_as = TLSA_TRUST_UNTRUSTED;
	return 0;
}

int
tlsa_policy_decide(const struct tlsa_dest_in *dest,
    const struct tlsa_host_in *host, const struct tlsa_digests *digests,
    struct tlsa_verdict *out)
{
	if (out == NULL)
		return TLSA_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	if (dest == NULL || host == NULL)
		return TLSA_ERR_INVAL;
	int rc = decide(dest, host, digests, out);
	if (rc < 0) {
		tlsa_verdict_release(out);
		/* A caller bug must still never connect: leave a safe verdict. */
		dnc(out, TLSA_SCOPE_HOST, false, "4.7.5", TLSA_FAIL_VALIDATION,
		    "internal error: %s", tlsa_strerror(rc));
	}
	return rc;
}

void
tlsa_verdict_release(struct tlsa_verdict *v)
{
	if (v == NULL)
		return;
	free(v->blob_);
	memset(v, 0, sizeof(*v));
}

int
tlsa_verdict_copy(struct tlsa_verdict *dst, const struct tlsa_verdict *src)
{
	if (dst == NULL || src == NULL)
		return TLSA_ERR_INVAL;
	*dst = *src;
	dst->blob_ = NULL;
	dst->usable = NULL;
	dst->n_usable = 0;
	if (src->n_usable == 0)
		return 0;
	enum tlsa_unusable why[TLSA_RRSET_MAX];
	if (src->n_usable > TLSA_RRSET_MAX)
		return TLSA_ERR_INVAL;
	for (size_t i = 0; i < src->n_usable; i++)
		why[i] = TLSA_USABLE;
	int rc = take_records(dst, src->usable, src->n_usable, why);
	if (rc < 0)
		tlsa_verdict_release(dst);
	return rc;
}

static bool
channel_ok(enum tlsa_channel c)
{
	switch (c) {
	case TLSA_CHANNEL_TLS:
	case TLSA_CHANNEL_CLEARTEXT:
	case TLSA_CHANNEL_CLEARTEXT_POLICY:
		return true;
	}
	return false;
}

int
tlsa_verdict_cache_key(const struct tlsa_verdict *v, enum tlsa_channel channel,
    uint8_t out[32])
{
	if (v == NULL || out == NULL || !channel_ok(channel))
		return TLSA_ERR_INVAL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL)
		return TLSA_ERR_NOMEM;
	/* The level and the channel come first: a connection made under one
	 * TLS level, or without TLS, never serves another (a `may` verdict is
	 * met by cleartext, so kind alone cannot tell them apart). */
	uint8_t head[3] = { (uint8_t)v->level, (uint8_t)channel,
		(uint8_t)v->kind };
	unsigned int olen = 0;
	int ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, head, sizeof(head)) == 1 &&
	    EVP_DigestUpdate(md, v->base_domain, strlen(v->base_domain) + 1) ==
	        1;
	for (size_t i = 0; ok && i < v->n_refs; i++)
		ok = EVP_DigestUpdate(md, v->refs[i], strlen(v->refs[i]) + 1) ==
		    1;
	ok = ok &&
	    EVP_DigestUpdate(md, v->rrset_digest, sizeof(v->rrset_digest)) ==
	        1 &&
	    EVP_DigestFinal_ex(md, out, &olen) == 1 && olen == 32;
	EVP_MD_CTX_free(md);
	return ok ? 0 : TLSA_ERR_OPENSSL;
}

static const char *
dnssec_name(enum tlsa_dnssec s)
{
	switch (s) {
	case TLSA_DNSSEC_SECURE:
		return "secure";
	case TLSA_DNSSEC_INSECURE:
		return "insecure";
	case TLSA_DNSSEC_BOGUS:
		return "bogus";
	case TLSA_DNSSEC_INDETERMINATE:
		return "indeterminate";
	}
	return "?";
}

static const char *
answer_name(enum tlsa_answer a)
{
	switch (a) {
	case TLSA_ANSWER_DATA:
		return "data";
	case TLSA_ANSWER_NODATA:
		return "nodata";
	case TLSA_ANSWER_NXDOMAIN:
		return "nxdomain";
	case TLSA_ANSWER_ERROR:
		return "error";
	}
	return "?";
}

int
tlsa_verdict_format(const struct tlsa_verdict *v, char *buf, size_t size)
{
	if (v == NULL || buf == NULL || size == 0)
		return TLSA_ERR_INVAL;
	struct tlsa__buf b;
	tlsa__buf_init(&b, buf, size);
	tlsa__buf_printf(&b, "level=%s mx_secure=%s addr_secure=%s",
	    tlsa_level_name(v->level), v->mx_secure ? "yes" : "no",
	    v->addr_secure ? "yes" : "no");
	if (v->tlsa_looked_up)
		tlsa__buf_printf(&b, " tlsa=%s/%s n_tlsa=%zu",
		    dnssec_name(v->tlsa_dnssec), answer_name(v->tlsa_answer),
		    v->n_tlsa);
	else
		tlsa__buf_add(&b, " tlsa=none");
	tlsa__buf_printf(&b, " usable=%zu verdict=%s", v->n_usable,
	    tlsa_verdict_kind_name(v->kind));
	if (v->kind == TLSA_VERDICT_DO_NOT_CONNECT) {
		tlsa__buf_printf(&b, " scope=%s dsn=%s class=%s why=",
		    v->scope == TLSA_SCOPE_HOST ? "host" : "destination",
		    v->status, tlsa_failure_name(v->fclass));
		tlsa__buf_quoted(&b, v->reason, TLSA_REASON_MAX);
		return b.overflow ? TLSA_ERR_SPACE : 0;
	}
	if (v->base_domain[0] != '\0') {
		tlsa__buf_add(&b, " sni=");
		tlsa__buf_add(&b, v->base_domain);
		tlsa__buf_add(&b, " refs=");
		for (size_t i = 0; i < v->n_refs; i++) {
			if (i > 0)
				tlsa__buf_add(&b, ",");
			tlsa__buf_add(&b, v->refs[i]);
		}
	}
	if (v->kind == TLSA_VERDICT_DANE) {
		tlsa__buf_add(&b, " rrset=");
		tlsa__buf_hex(&b, v->rrset_digest, sizeof(v->rrset_digest), 8);
	}
	tlsa__buf_printf(&b, " log_as=%s", tlsa_trust_name(v->log_as));
	return b.overflow ? TLSA_ERR_SPACE : 0;
}
