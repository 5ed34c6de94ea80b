/*
 * relay_json: streaming JSON writer. See relay_json.h.
 */
#include "relay_json.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

static void
put(struct relay_json *j, const void *p, size_t len)
{
	if (j->error || len == 0)
		return;
	if (fwrite(p, 1, len, j->out) != len)
		j->error = true;
}

static void
puts_(struct relay_json *j, const char *s)
{
	put(j, s, strlen(s));
}

/*
 * Length of the valid UTF-8 sequence starting at p (RFC 3629 4: the
 * well-formed byte sequences table), or 0 when the bytes there are not
 * one: overlong forms, surrogates (U+D800..DFFF) and values above
 * U+10FFFF are refused.
 */
size_t
relay_json_utf8_len(const uint8_t *p, size_t len)
{
	uint8_t b = p[0];
	uint8_t lo = 0x80, hi = 0xbf;
	size_t n;

	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		n = 2;
	else if (b >= 0xe0 && b <= 0xef) {
		n = 3;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		n = 4;
		if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (len < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

static void
put_string(struct relay_json *j, const uint8_t *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, run = 0;

	put(j, "\"", 1);
	while (i < len) {
		uint8_t c = p[i];
		const char *esc = NULL;
		char u[7];
		size_t n = 1;

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			i++;
			run++;
			continue;
		}
		/* Flush the run of plain bytes before this one. */
		put(j, p + i - run, run);
		run = 0;
		switch (c) {
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\b':
			esc = "\\b";
			break;
		case '\f':
			esc = "\\f";
			break;
		default:
			break;
		}
		if (esc != NULL) {
			puts_(j, esc);
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(u, "\\u00", 4);
			u[4] = hex[c >> 4];
			u[5] = hex[c & 15];
			put(j, u, 6);
		} else if ((n = relay_json_utf8_len(p + i, len - i)) > 0) {
			put(j, p + i, n);
		} else {
			/* Not UTF-8: one U+FFFD per offending byte. */
			n = 1;
			put(j, "\xef\xbf\xbd", 3);
		}
		i += n;
	}
	put(j, p + i - run, run);
	put(j, "\"", 1);
}

int
relay_json_write_string(FILE *out, const void *p, size_t len)
{
	struct relay_json j;

	relay_json_init(&j, out);
	put_string(&j, p, len);
	return j.error ? -1 : 0;
}

void
relay_json_init(struct relay_json *j, FILE *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
}

/* Before any value: the separator, and the bookkeeping. */
static void
before_value(struct relay_json *j)
{
	assert(!j->done);
	if (j->depth > 0 && j->in_object[j->depth]) {
		assert(j->want_value);
		j->want_value = false;
		return;
	}
	if (j->depth > 0 && j->has_items[j->depth])
		put(j, ",", 1);
	if (j->depth > 0)
		j->has_items[j->depth] = true;
}

/* After a value: at top level the document is complete. */
static void
after_value(struct relay_json *j)
{
	if (j->depth == 0)
		j->done = true;
}

static void
open_(struct relay_json *j, bool object)
{
	before_value(j);
	assert(j->depth < RELAY_JSON_DEPTH_MAX);
	j->depth++;
	j->in_object[j->depth] = object;
	j->has_items[j->depth] = false;
	put(j, object ? "{" : "[", 1);
}

static void
close_(struct relay_json *j, bool object)
{
	assert(j->depth > 0 && j->in_object[j->depth] == object);
	assert(!j->want_value);
	j->depth--;
	put(j, object ? "}" : "]", 1);
	after_value(j);
}

void
relay_json_obj_begin(struct relay_json *j)
{
	open_(j, true);
}

void
relay_json_obj_end(struct relay_json *j)
{
	close_(j, true);
}

void
relay_json_arr_begin(struct relay_json *j)
{
	open_(j, false);
}

void
relay_json_arr_end(struct relay_json *j)
{
	close_(j, false);
}

void
relay_json_key(struct relay_json *j, const char *key)
{
	assert(j->depth > 0 && j->in_object[j->depth] && !j->want_value);
	if (j->has_items[j->depth])
		put(j, ",", 1);
	j->has_items[j->depth] = true;
	put_string(j, (const uint8_t *)key, strlen(key));
	put(j, ":", 1);
	j->want_value = true;
}

void
relay_json_strn(struct relay_json *j, const void *p, size_t len)
{
	before_value(j);
	put_string(j, p, len);
	after_value(j);
}

void
relay_json_str(struct relay_json *j, const char *s)
{
	if (s == NULL)
		relay_json_null(j);
	else
		relay_json_strn(j, s, strlen(s));
}

void
relay_json_u64(struct relay_json *j, uint64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRIu64, v);

	before_value(j);
	put(j, b, (size_t)n);
	after_value(j);
}

void
relay_json_i64(struct relay_json *j, int64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRId64, v);

	before_value(j);
	put(j, b, (size_t)n);
	after_value(j);
}

void
relay_json_bool(struct relay_json *j, bool v)
{
	before_value(j);
	puts_(j, v ? "true" : "false");
	after_value(j);
}

void
relay_json_null(struct relay_json *j)
{
	before_value(j);
	puts_(j, "null");
	after_value(j);
}

void
relay_json_kv_str(struct relay_json *j, const char *key, const char *s)
{
	relay_json_key(j, key);
	relay_json_str(j, s);
}

void
relay_json_kv_u64(struct relay_json *j, const char *key, uint64_t v)
{
	relay_json_key(j, key);
	relay_json_u64(j, v);
}

void
relay_json_kv_i64(struct relay_json *j, const char *key, int64_t v)
{
	relay_json_key(j, key);
	relay_json_i64(j, v);
}

void
relay_json_kv_bool(struct relay_json *j, const char *key, bool v)
{
	relay_json_key(j, key);
	relay_json_bool(j, v);
}

int
relay_json_finish(struct relay_json *j)
{
	assert(j->done && j->depth == 0);
	return j->error ? -1 : 0;
}
