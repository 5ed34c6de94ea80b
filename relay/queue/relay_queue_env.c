/*
 * relay_queue_env: the envelope value type and its file format.
 *
 * Envelope file, version 1 (relay/QUEUE.md has the full description):
 *
 *     danerelay-queue 1
 *     id 064A1B2C3D4E5F
 *     arrival 1732288081123456
 *     size 1234
 *     sender alice@example.org
 *     ...
 *     rcpt bob@example.net
 *     r.status deferred
 *     ...
 *     attempt 1732288090000000
 *     a.mx_host mx.example.net
 *     ...
 *     end
 *
 * One "key value" per line, LF terminated. Values are percent-encoded
 * (bytes <= 0x20, >= 0x7f and '%' become %XX), so a value is one token
 * with no white space and any byte string round-trips. "rcpt" starts a
 * recipient, "attempt" an attempt of the current recipient; r.* and a.*
 * keys belong to the most recent one. The final "end" line proves the file
 * is complete. Unknown keys are ignored (a newer version may add fields);
 * a malformed known key, a missing "end" or a missing mandatory field makes
 * the whole file corrupt.
 */
#include "relay_queue.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "relay_text.h"

#define ENV_MAGIC "danerelay-queue 1"

static char empty_string[] = "";

/*
 * Every string of an envelope is either a malloc'd copy or the shared
 * empty_string, so "never NULL" costs no allocation; free_str knows.
 */
static void
free_str(char *s)
{
	if (s != empty_string)
		free(s);
}

int
relay_queue_set_str(char **field, const char *s)
{
	char *n;
	size_t len;

	if (s == NULL || s[0] == '\0') {
		free_str(*field);
		*field = empty_string;
		return 0;
	}
	len = strlen(s);
	n = malloc(len + 1);
	if (n == NULL)
		return RELAY_QUEUE_ENOMEM;
	memcpy(n, s, len + 1);
	free_str(*field);
	*field = n;
	return 0;
}

static int
set_mem(char **field, const char *p, size_t len)
{
	char *n;

	if (len == 0) {
		free_str(*field);
		*field = empty_string;
		return 0;
	}
	n = malloc(len + 1);
	if (n == NULL)
		return RELAY_QUEUE_ENOMEM;
	memcpy(n, p, len);
	n[len] = '\0';
	free_str(*field);
	*field = n;
	return 0;
}

/* String fields, so that init/free/dup/format/parse are loops. */
struct str_field {
	const char *key;
	size_t off;
};

static const struct str_field env_strs[] = {
	{ "sender", offsetof(struct relay_queue_envelope, sender) },
	{ "envid", offsetof(struct relay_queue_envelope, envid) },
	{ "client_addr", offsetof(struct relay_queue_envelope, client_addr) },
	{ "client_name", offsetof(struct relay_queue_envelope, client_name) },
	{ "helo", offsetof(struct relay_queue_envelope, helo) },
};

static const struct str_field rcpt_strs[] = {
	{ "r.orcpt", offsetof(struct relay_queue_rcpt, orcpt) },
	{ "r.dsn", offsetof(struct relay_queue_rcpt, dsn) },
	{ "r.reason", offsetof(struct relay_queue_rcpt, reason) },
	{ "r.class", offsetof(struct relay_queue_rcpt, failure_class) },
};

#define AF(name)                                                               \
	{                                                                      \
		"a." #name, offsetof(struct relay_queue_attempt, name)         \
	}
static const struct str_field att_strs[] = {
	AF(mx_host),
	AF(addr),
	AF(dnssec_mx),
	AF(dnssec_addr),
	AF(dnssec_tlsa),
	AF(tlsa),
	AF(tls),
	AF(peer_spki),
	AF(peer_names),
	AF(matched),
	AF(reply),
	AF(dsn),
	AF(status),
	AF(failure_class),
	AF(reason),
	AF(policy),
	AF(policy_entry),
	AF(routing_change),
	AF(hint),
	AF(policy_reason),
};
#undef AF

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static char **
str_at(void *base, size_t off)
{
	return (char **)(void *)((char *)base + off);
}

static void
strs_init(void *base, const struct str_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		*str_at(base, f[i].off) = empty_string;
}

static void
strs_free(void *base, const struct str_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free_str(*str_at(base, f[i].off));
		*str_at(base, f[i].off) = empty_string;
	}
}

static int
strs_copy(void *dst, const void *src, const struct str_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *s = *str_at((void *)(uintptr_t)src, f[i].off);
		if (relay_queue_set_str(str_at(dst, f[i].off), s) != 0)
			return RELAY_QUEUE_ENOMEM;
	}
	return 0;
}

const char *
relay_queue_rcpt_status_name(enum relay_queue_rcpt_status s)
{
	switch (s) {
	case RELAY_QUEUE_RCPT_PENDING:
		return "pending";
	case RELAY_QUEUE_RCPT_DEFERRED:
		return "deferred";
	case RELAY_QUEUE_RCPT_SENT:
		return "sent";
	case RELAY_QUEUE_RCPT_BOUNCED:
		return "bounced";
	}
	return "?";
}

struct relay_queue_envelope *
relay_queue_envelope_new(void)
{
	struct relay_queue_envelope *env = calloc(1, sizeof(*env));

	if (env != NULL)
		strs_init(env, env_strs, NELEM(env_strs));
	return env;
}

static void
attempt_clear(struct relay_queue_attempt *a)
{
	strs_free(a, att_strs, NELEM(att_strs));
}

static void
rcpt_clear(struct relay_queue_rcpt *r)
{
	free_str(r->address);
	r->address = empty_string;
	strs_free(r, rcpt_strs, NELEM(rcpt_strs));
	for (size_t i = 0; i < r->attempt_count; i++)
		attempt_clear(&r->attempt[i]);
	free(r->attempt);
	r->attempt = NULL;
	r->attempt_count = 0;
}

void
relay_queue_envelope_free(struct relay_queue_envelope *env)
{
	if (env == NULL)
		return;
	strs_free(env, env_strs, NELEM(env_strs));
	for (size_t i = 0; i < env->rcpt_count; i++)
		rcpt_clear(&env->rcpt[i]);
	free(env->rcpt);
	free(env);
}

static struct relay_queue_rcpt *
rcpt_new(struct relay_queue_envelope *env)
{
	struct relay_queue_rcpt *n =
	    realloc(env->rcpt, (env->rcpt_count + 1) * sizeof(*n));
	struct relay_queue_rcpt *r;

	if (n == NULL)
		return NULL;
	env->rcpt = n;
	r = &n[env->rcpt_count++];
	memset(r, 0, sizeof(*r));
	r->address = empty_string;
	strs_init(r, rcpt_strs, NELEM(rcpt_strs));
	return r;
}

int
relay_queue_rcpt_add(struct relay_queue_envelope *env, const char *address,
    const char *orcpt, unsigned notify, struct relay_queue_rcpt **out)
{
	struct relay_queue_rcpt *r = rcpt_new(env);

	if (r == NULL)
		return RELAY_QUEUE_ENOMEM;
	r->notify = notify;
	if (relay_queue_set_str(&r->address, address) != 0 ||
	    relay_queue_set_str(&r->orcpt, orcpt) != 0) {
		rcpt_clear(r);
		env->rcpt_count--;
		return RELAY_QUEUE_ENOMEM;
	}
	if (out != NULL)
		*out = r;
	return 0;
}

static struct relay_queue_attempt *
attempt_new(struct relay_queue_rcpt *r)
{
	struct relay_queue_attempt *a;

	if (r->attempt_count == RELAY_QUEUE_ATTEMPTS_KEPT) {
		/* Keep the most recent ones: drop the oldest. */
		attempt_clear(&r->attempt[0]);
		memmove(&r->attempt[0], &r->attempt[1],
		    (r->attempt_count - 1) * sizeof(*a));
		r->attempt_count--;
	} else {
		a = realloc(r->attempt, (r->attempt_count + 1) * sizeof(*a));
		if (a == NULL)
			return NULL;
		r->attempt = a;
	}
	a = &r->attempt[r->attempt_count++];
	memset(a, 0, sizeof(*a));
	strs_init(a, att_strs, NELEM(att_strs));
	return a;
}

int
relay_queue_attempt_add(struct relay_queue_rcpt *rcpt,
    struct relay_queue_attempt **out)
{
	struct relay_queue_attempt *a = attempt_new(rcpt);

	if (a == NULL)
		return RELAY_QUEUE_ENOMEM;
	rcpt->attempts++;
	if (out != NULL)
		*out = a;
	return 0;
}

bool
relay_queue_envelope_final(const struct relay_queue_envelope *env)
{
	for (size_t i = 0; i < env->rcpt_count; i++) {
		switch (env->rcpt[i].status) {
		case RELAY_QUEUE_RCPT_PENDING:
		case RELAY_QUEUE_RCPT_DEFERRED:
			return false;
		case RELAY_QUEUE_RCPT_SENT:
		case RELAY_QUEUE_RCPT_BOUNCED:
			break;
		}
	}
	return true;
}

struct relay_queue_envelope *
relay_queue_envelope_dup(const struct relay_queue_envelope *env)
{
	struct relay_queue_envelope *d = relay_queue_envelope_new();

	if (d == NULL)
		return NULL;
	memcpy(d->id, env->id, sizeof(d->id));
	d->ret = env->ret;
	d->body = env->body;
	d->content_8bit = env->content_8bit;
	d->smtputf8 = env->smtputf8;
	d->requiretls = env->requiretls;
	d->arrival_us = env->arrival_us;
	d->size = env->size;
	d->hold = env->hold;
	d->delay_warned = env->delay_warned;
	d->origin = env->origin;
	if (strs_copy(d, env, env_strs, NELEM(env_strs)) != 0)
		goto fail;
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct relay_queue_rcpt *s = &env->rcpt[i];
		struct relay_queue_rcpt *r;

		if (relay_queue_rcpt_add(d, s->address, s->orcpt, s->notify,
		        &r) != 0)
			goto fail;
		r->status = s->status;
		r->attempts = s->attempts;
		r->next_attempt_us = s->next_attempt_us;
		r->delay_warned = s->delay_warned;
		if (strs_copy(r, s, rcpt_strs, NELEM(rcpt_strs)) != 0)
			goto fail;
		for (size_t k = 0; k < s->attempt_count; k++) {
			struct relay_queue_attempt *a = attempt_new(r);
			if (a == NULL)
				goto fail;
			a->time_us = s->attempt[k].time_us;
			if (strs_copy(a, &s->attempt[k], att_strs,
			        NELEM(att_strs)) != 0)
				goto fail;
		}
	}
	return d;
fail:
	relay_queue_envelope_free(d);
	return NULL;
}

/* ---- formatting ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *np;
		while (cap < b->len + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
sb_val(struct sbuf *b, const char *key, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";

	sb_str(b, key);
	sb_add(b, " ", 1);
	for (const unsigned char *v = (const unsigned char *)val; *v; v++) {
		if (*v <= 0x20 || *v >= 0x7f || *v == '%') {
			char e[3] = { '%', hex[*v >> 4], hex[*v & 15] };
			sb_add(b, e, 3);
		} else {
			sb_add(b, (const char *)v, 1);
		}
	}
	sb_add(b, "\n", 1);
}

static void
sb_u64(struct sbuf *b, const char *key, uint64_t v)
{
	char num[32];

	(void)snprintf(num, sizeof(num), "%" PRIu64, v);
	sb_val(b, key, num);
}

static const char *const ret_words[] = { "none", "full", "hdrs" };
static const char *const body_words[] = { "7bit", "8bitmime", "binarymime" };
static const char *const status_words[] = { "pending", "deferred", "sent",
	"bounced" };
static const char *const notify_words[] = { "never", "success", "failure",
	"delay" };
static const char *const origin_words[] = { "smtp", "local" };

const char *
relay_queue_origin_name(enum relay_queue_origin o)
{
	return (size_t)o < NELEM(origin_words) ? origin_words[o] : "?";
}

char *
relay_queue_envelope_format(const struct relay_queue_envelope *env, size_t *len)
{
	struct sbuf b = { NULL, 0, 0, false };

	sb_str(&b, ENV_MAGIC "\n");
	sb_val(&b, "id", env->id);
	sb_u64(&b, "arrival", env->arrival_us);
	sb_u64(&b, "size", env->size);
	for (size_t i = 0; i < NELEM(env_strs); i++)
		sb_val(&b, env_strs[i].key,
		    *str_at((void *)(uintptr_t)env, env_strs[i].off));
	sb_val(&b, "ret", ret_words[env->ret]);
	sb_val(&b, "body", body_words[env->body]);
	sb_val(&b, "content_8bit", env->content_8bit ? "yes" : "no");
	sb_val(&b, "smtputf8", env->smtputf8 ? "yes" : "no");
	sb_val(&b, "requiretls", env->requiretls ? "yes" : "no");
	sb_val(&b, "hold", env->hold ? "yes" : "no");
	sb_val(&b, "delay_warned", env->delay_warned ? "yes" : "no");
	sb_val(&b, "origin", origin_words[env->origin]);
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct relay_queue_rcpt *r = &env->rcpt[i];
		char notify[64] = "";
		size_t nl = 0;

		for (unsigned k = 0; k < NELEM(notify_words); k++) {
			if (r->notify & (1u << k)) {
				int n =
				    snprintf(notify + nl, sizeof(notify) - nl,
				        "%s%s", nl ? "," : "", notify_words[k]);
				if (n > 0)
					nl += (size_t)n;
			}
		}
		sb_val(&b, "rcpt", r->address);
		for (size_t k = 0; k < NELEM(rcpt_strs); k++)
			sb_val(&b, rcpt_strs[k].key,
			    *str_at((void *)(uintptr_t)r, rcpt_strs[k].off));
		sb_val(&b, "r.notify", notify);
		sb_val(&b, "r.status", status_words[r->status]);
		sb_u64(&b, "r.attempts", r->attempts);
		sb_u64(&b, "r.next_attempt", r->next_attempt_us);
		sb_val(&b, "r.delay_warned", r->delay_warned ? "yes" : "no");
		for (size_t k = 0; k < r->attempt_count; k++) {
			const struct relay_queue_attempt *a = &r->attempt[k];
			sb_u64(&b, "attempt", a->time_us);
			for (size_t f = 0; f < NELEM(att_strs); f++) {
				const char *v = *str_at((void *)(uintptr_t)a,
				    att_strs[f].off);
				/* Written only when set, so that envelopes
				 * without an exception stay as before. */
				if (att_strs[f].off ==
				        offsetof(struct relay_queue_attempt,
				            policy_reason) &&
				    v[0] == '\0')
					continue;
				sb_val(&b, att_strs[f].key, v);
			}
		}
	}
	sb_str(&b, "end\n");
	sb_add(&b, "", 1); /* NUL terminator, not counted in *len */
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len - 1;
	return b.p;
}

/* ---- parsing ---- */

/* Decodes a percent-encoded value into a new string in *field. */
static int
set_decoded(char **field, const uint8_t *p, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;
	int rc;

	if (out == NULL)
		return RELAY_QUEUE_ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '%') {
			int h, l;
			if (i + 2 >= len) {
				free(out);
				return RELAY_QUEUE_ECORRUPT;
			}
			h = relay_hex_digit(p[i + 1]);
			l = relay_hex_digit(p[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0)) {
				free(out);
				return RELAY_QUEUE_ECORRUPT;
			}
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else if (p[i] <= 0x20 || p[i] >= 0x7f) {
			free(out);
			return RELAY_QUEUE_ECORRUPT;
		} else {
			out[o++] = (char)p[i];
		}
	}
	rc = set_mem(field, out, o);
	free(out);
	return rc;
}

static bool
val_u64(const uint8_t *p, size_t len, uint64_t *v)
{
	uint64_t n = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		if (n > (UINT64_MAX - (p[i] - '0')) / 10)
			return false;
		n = n * 10 + (p[i] - '0');
	}
	*v = n;
	return true;
}

static int
val_word(const uint8_t *p, size_t len, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(words[i]) == len && memcmp(words[i], p, len) == 0)
			return (int)i;
	return -1;
}

static bool
val_bool(const uint8_t *p, size_t len, bool *v)
{
	static const char *const yn[] = { "no", "yes" };
	int w = val_word(p, len, yn, 2);

	if (w < 0)
		return false;
	*v = w == 1;
	return true;
}

static bool
key_is(const uint8_t *k, size_t klen, const char *key)
{
	return strlen(key) == klen && memcmp(k, key, klen) == 0;
}

static int
find_field(const struct str_field *f, size_t n, const uint8_t *k, size_t klen)
{
	for (size_t i = 0; i < n; i++)
		if (key_is(k, klen, f[i].key))
			return (int)i;
	return -1;
}

static bool
notify_parse(const uint8_t *p, size_t len, unsigned *mask)
{
	unsigned m = 0;

	for (size_t i = 0; i < len;) {
		size_t j = i;
		int w;

		while (j < len && p[j] != ',')
			j++;
		w = val_word(p + i, j - i, notify_words, NELEM(notify_words));
		if (w < 0)
			return false;
		m |= 1u << w;
		i = j + 1;
	}
	*mask = m;
	return true;
}

/* One "key value" line into env; r/a are the current recipient/attempt. */
static int
parse_line(struct relay_queue_envelope *env, const uint8_t *k, size_t klen,
    const uint8_t *v, size_t vlen, bool *have_id, bool *have_arrival)
{
	struct relay_queue_rcpt *r =
	    env->rcpt_count ? &env->rcpt[env->rcpt_count - 1] : NULL;
	struct relay_queue_attempt *a =
	    r && r->attempt_count ? &r->attempt[r->attempt_count - 1] : NULL;
	uint64_t u;
	bool b;
	int i;

	if (key_is(k, klen, "id")) {
		if (!relay_queue_id_valid((const char *)v, vlen))
			return RELAY_QUEUE_ECORRUPT;
		memcpy(env->id, v, vlen);
		env->id[vlen] = '\0';
		*have_id = true;
		return 0;
	}
	if (key_is(k, klen, "arrival")) {
		if (!val_u64(v, vlen, &env->arrival_us))
			return RELAY_QUEUE_ECORRUPT;
		*have_arrival = true;
		return 0;
	}
	if (key_is(k, klen, "size"))
		return val_u64(v, vlen, &env->size) ? 0 : RELAY_QUEUE_ECORRUPT;
	if ((i = find_field(env_strs, NELEM(env_strs), k, klen)) >= 0)
		return set_decoded(str_at(env, env_strs[i].off), v, vlen);
	if (key_is(k, klen, "ret")) {
		i = val_word(v, vlen, ret_words, NELEM(ret_words));
		if (i < 0)
			return RELAY_QUEUE_ECORRUPT;
		env->ret = (enum relay_queue_ret)i;
		return 0;
	}
	if (key_is(k, klen, "body")) {
		i = val_word(v, vlen, body_words, NELEM(body_words));
		if (i < 0)
			return RELAY_QUEUE_ECORRUPT;
		env->body = (enum relay_queue_body)i;
		return 0;
	}
	/* Absent in envelopes written before it existed: "no". */
	if (key_is(k, klen, "content_8bit"))
		return val_bool(v, vlen, &env->content_8bit)
		    ? 0
		    : RELAY_QUEUE_ECORRUPT;
	if (key_is(k, klen, "smtputf8"))
		return val_bool(v, vlen, &env->smtputf8) ? 0
		                                         : RELAY_QUEUE_ECORRUPT;
	/* Absent in envelopes written before it existed: "no". */
	if (key_is(k, klen, "requiretls"))
		return val_bool(v, vlen, &env->requiretls)
		    ? 0
		    : RELAY_QUEUE_ECORRUPT;
	if (key_is(k, klen, "hold"))
		return val_bool(v, vlen, &env->hold) ? 0 : RELAY_QUEUE_ECORRUPT;
	if (key_is(k, klen, "delay_warned"))
		return val_bool(v, vlen, &env->delay_warned)
		    ? 0
		    : RELAY_QUEUE_ECORRUPT;
	/* Absent in envelopes written before it existed: "smtp". */
	if (key_is(k, klen, "origin")) {
		i = val_word(v, vlen, origin_words, NELEM(origin_words));
		if (i < 0)
			return RELAY_QUEUE_ECORRUPT;
		env->origin = (enum relay_queue_origin)i;
		return 0;
	}
	if (key_is(k, klen, "rcpt")) {
		r = rcpt_new(env);
		if (r == NULL)
			return RELAY_QUEUE_ENOMEM;
		return set_decoded(&r->address, v, vlen);
	}
	if (klen > 2 && k[0] == 'r' && k[1] == '.') {
		if (r == NULL)
			return RELAY_QUEUE_ECORRUPT;
		if ((i = find_field(rcpt_strs, NELEM(rcpt_strs), k, klen)) >= 0)
			return set_decoded(str_at(r, rcpt_strs[i].off), v,
			    vlen);
		if (key_is(k, klen, "r.notify"))
			return notify_parse(v, vlen, &r->notify)
			    ? 0
			    : RELAY_QUEUE_ECORRUPT;
		if (key_is(k, klen, "r.status")) {
			i = val_word(v, vlen, status_words,
			    NELEM(status_words));
			if (i < 0)
				return RELAY_QUEUE_ECORRUPT;
			r->status = (enum relay_queue_rcpt_status)i;
			return 0;
		}
		if (key_is(k, klen, "r.attempts")) {
			if (!val_u64(v, vlen, &u) || u > UINT32_MAX)
				return RELAY_QUEUE_ECORRUPT;
			r->attempts = (uint32_t)u;
			return 0;
		}
		if (key_is(k, klen, "r.next_attempt"))
			return val_u64(v, vlen, &r->next_attempt_us)
			    ? 0
			    : RELAY_QUEUE_ECORRUPT;
		if (key_is(k, klen, "r.delay_warned")) {
			if (!val_bool(v, vlen, &b))
				return RELAY_QUEUE_ECORRUPT;
			r->delay_warned = b;
			return 0;
		}
		return 0; /* unknown recipient field: newer version */
	}
	if (key_is(k, klen, "attempt")) {
		if (r == NULL || r->attempt_count >= RELAY_QUEUE_ATTEMPTS_KEPT)
			return RELAY_QUEUE_ECORRUPT;
		a = attempt_new(r);
		if (a == NULL)
			return RELAY_QUEUE_ENOMEM;
		return val_u64(v, vlen, &a->time_us) ? 0 : RELAY_QUEUE_ECORRUPT;
	}
	if (klen > 2 && k[0] == 'a' && k[1] == '.') {
		if (a == NULL)
			return RELAY_QUEUE_ECORRUPT;
		if ((i = find_field(att_strs, NELEM(att_strs), k, klen)) >= 0)
			return set_decoded(str_at(a, att_strs[i].off), v, vlen);
		return 0;
	}
	return 0; /* unknown envelope field: newer version */
}

int
relay_queue_envelope_parse(const uint8_t *p, size_t len,
    struct relay_queue_envelope **out)
{
	struct relay_queue_envelope *env;
	bool have_id = false, have_arrival = false, ended = false;
	size_t i = 0;
	int rc = 0;

	if (len < sizeof(ENV_MAGIC) ||
	    memcmp(p, ENV_MAGIC "\n", sizeof(ENV_MAGIC)) != 0)
		return RELAY_QUEUE_ECORRUPT;
	env = relay_queue_envelope_new();
	if (env == NULL)
		return RELAY_QUEUE_ENOMEM;
	i = sizeof(ENV_MAGIC);
	while (i < len && rc == 0) {
		const uint8_t *line = p + i, *nl, *sp;
		size_t n;

		if (ended) {
			rc = RELAY_QUEUE_ECORRUPT; /* data after "end" */
			break;
		}
		nl = memchr(line, '\n', len - i);
		if (nl == NULL) {
			rc = RELAY_QUEUE_ECORRUPT; /* torn last line */
			break;
		}
		n = (size_t)(nl - line);
		i += n + 1;
		if (n == 3 && memcmp(line, "end", 3) == 0) {
			ended = true;
			continue;
		}
		sp = memchr(line, ' ', n);
		if (sp == NULL || sp == line) {
			rc = RELAY_QUEUE_ECORRUPT;
			break;
		}
		rc = parse_line(env, line, (size_t)(sp - line), sp + 1,
		    n - (size_t)(sp - line) - 1, &have_id, &have_arrival);
	}
	if (rc == 0 &&
	    (!ended || !have_id || !have_arrival || env->rcpt_count == 0))
		rc = RELAY_QUEUE_ECORRUPT;
	if (rc != 0) {
		relay_queue_envelope_free(env);
		return rc;
	}
	*out = env;
	return 0;
}
