/* Tests for smtp_data.c: DATA decoder (dot-unstuffing, strict end of data,
 * smuggling resistance) and encoder (dot-stuffing, CRLF normalisation).
 * Every input is run whole, split at every offset, and byte by byte. */
#include "smtp_test.h"

#define LF SMTP_DATA_ERR_BARE_LF
#define CR SMTP_DATA_ERR_BARE_CR
#define LONG SMTP_DATA_ERR_LINE
#define NUL SMTP_DATA_ERR_NUL

struct drow {
	const char *name;
	const char *in;
	const char *out; /* decoded content */
	long used;       /* input consumed; -1 = all */
	bool done;
	unsigned errors;
	bool eightbit; /* an octet above 127 was noted */
};

static const struct drow dec_rows[] = {
	{ "empty message", ".\r\n", "", 3, true, 0, false },
	{ "one line", "hello\r\n.\r\n", "hello\r\n", -1, true, 0, false },
	{ "pipelined command after end not consumed", "a\r\n.\r\nQUIT\r\n",
	    "a\r\n", 6, true, 0, false },
	{ "dot unstuffed", "..x\r\n.\r\n", ".x\r\n", -1, true, 0, false },
	{ "lone stuffed dot", "..\r\n.\r\n", ".\r\n", -1, true, 0, false },
	{ "dot then text", ".x\r\n.\r\n", "x\r\n", -1, true, 0, false },
	{ "dot mid line kept", "a.b\r\n.\r\n", "a.b\r\n", -1, true, 0, false },
	{ "not yet ended", "a\r\nb\r\n", "a\r\nb\r\n", -1, false, 0, false },
	{ "end marker split pending", "a\r\n.\r", "a\r\n", -1, false, 0,
	    false },
	{ "dot space is content", "a\r\n. \r\n.\r\n", "a\r\n \r\n", -1, true, 0,
	    false },
	{ "8bit kept and noted", "\xc3\xa9z\r\n.\r\n", "\xc3\xa9z\r\n", -1,
	    true, 0, true },
	{ "stuffed 8bit line noted", "..\xff\r\n.\r\n", ".\xff\r\n", -1, true,
	    0, true },
	{ "7bit not noted", "~\x7f\r\n.\r\n", "~\x7f\r\n", -1, true, 0, false },
	/* RFC 5321 2.3.8, RFC 6152: NUL is refused (no BINARYMIME). */
	{ "NUL flagged", "\xc3\xa9\x00z\r\n.\r\n", NULL, -1, true, NUL, true },
	{ "NUL after stuffed dot flagged", "a\r\n.\x00\r\n.\r\n", NULL, -1,
	    true, NUL, false },
	/* SMTP smuggling: none of these ends the data. */
	{ "smuggle LF.LF", "a\n.\nMAIL FROM:<x@y>\n", NULL, -1, false, LF,
	    false },
	{ "smuggle LF.CRLF", "a\n.\r\nMAIL FROM:<x@y>\r\n", NULL, -1, false, LF,
	    false },
	{ "smuggle CRLF.LF", "a\r\n.\nMAIL FROM:<x@y>\r\n", NULL, -1, false, LF,
	    false },
	{ "smuggle CR.CR", "a\r.\rMAIL FROM:<x@y>\r\n", NULL, -1, false, CR,
	    false },
	{ "smuggle CR.CRLF", "a\r.\r\nMAIL FROM:<x@y>\r\n", NULL, -1, false, CR,
	    false },
	{ "smuggle CRLF.CR", "a\r\n.\rMAIL FROM:<x@y>\r\n", NULL, -1, false, CR,
	    false },
	{ "smuggle LF.CR", "a\n.\rX\r\n", NULL, -1, false, LF | CR, false },
	{ "bare LF then real end", "a\nb\r\n.\r\nNEXT", NULL, 8, true, LF,
	    false },
	{ "bare CR then real end", "a\rb\r\n.\r\n", NULL, -1, true, CR, false },
	{ "CR CR LF then end", "a\r\r\n.\r\n", NULL, -1, true, CR, false },
	{ "bare LF at start", "\n.\r\n", NULL, -1, false, LF, false },
	{ "LF.LF at start", "\n.\n", NULL, -1, false, LF, false },
	{ "dot CR x", ".\rx\r\n.\r\n", NULL, -1, true, CR, false },
};

static char long_ok[1100], long_bad[1100];

static const struct drow long_rows[] = {
	{ "line of 1000 accepted", long_ok, NULL, -1, true, 0, false },
	{ "line of 1001 flagged", long_bad, NULL, -1, true, LONG, false },
};

static void
fill_long(void)
{
	memset(long_ok, 'x', 998);
	memcpy(long_ok + 998, "\r\n.\r\n", 6);
	memset(long_bad, 'x', 999);
	memcpy(long_bad + 999, "\r\n.\r\n", 6);
}

static size_t
row_len(const struct drow *r)
{
	if (strcmp(r->name, "NUL flagged") == 0)
		return 9;
	if (strcmp(r->name, "NUL after stuffed dot flagged") == 0)
		return 10;
	return strlen(r->in);
}

/* Decodes in chunks of at most `chunk` (0 = whole) after an optional first
 * split; collects output, consumed bytes and final decoder. */
static void
decode_run(const uint8_t *in, size_t len, size_t split, size_t chunk,
    struct sbuf *out, size_t *used, struct smtp_data_dec *d)
{
	smtp_data_dec_init(d, 0);
	size_t pos = 0;
	*used = 0;
	while (pos < len && !d->done) {
		size_t n = len - pos;
		if (pos == 0 && split > 0 && split < len)
			n = split;
		else if (chunk > 0 && n > chunk)
			n = chunk;
		uint8_t buf[2048];
		memcpy(buf, in + pos, n);
		size_t olen = 0;
		long u = smtp_data_decode(d, buf, n, buf, &olen); /* in place */
		assert_true(u >= 0 && (size_t)u <= n);
		sb_add(out, buf, olen);
		pos += (size_t)u;
		*used += (size_t)u;
		if ((size_t)u < n)
			break;
	}
}

static void
t_dec(void **state)
{
	const struct drow *r = *state;
	size_t len = row_len(r);
	struct sbuf whole = { 0 };
	size_t used;
	struct smtp_data_dec d;
	decode_run(U(r->in), len, 0, 0, &whole, &used, &d);
	assert_int_equal(d.done, r->done);
	assert_int_equal(d.errors, r->errors);
	assert_int_equal(d.eightbit, r->eightbit);
	assert_int_equal(used, r->used < 0 ? len : (size_t)r->used);
	if (r->out) {
		assert_int_equal(whole.len, strlen(r->out));
		assert_memory_equal(sb_str(&whole), r->out, whole.len);
	}
	assert_int_equal(d.out_bytes, whole.len);
	for (size_t split = 1; split <= len; split++) {
		for (int mode = 0; mode < 2; mode++) {
			struct sbuf o = { 0 };
			size_t u2;
			struct smtp_data_dec d2;
			decode_run(U(r->in), len, mode ? 0 : split,
			    mode ? 1 : 0, &o, &u2, &d2);
			assert_int_equal(u2, used);
			assert_int_equal(d2.done, d.done);
			assert_int_equal(d2.errors, d.errors);
			assert_int_equal(d2.eightbit, d.eightbit);
			assert_int_equal(o.len, whole.len);
			assert_memory_equal(sb_str(&o), sb_str(&whole), o.len);
			sb_free(&o);
			if (mode == 1 && split > 1)
				break;
		}
	}
	sb_free(&whole);
}

struct erow {
	const char *name;
	const char *in;
	const char *out; /* including the end marker */
};

static const struct erow enc_rows[] = {
	{ "empty message", "", ".\r\n" },
	{ "one line", "a\r\n", "a\r\n.\r\n" },
	{ "no final newline", "a", "a\r\n.\r\n" },
	{ "bare LF normalised", "a\nb\n", "a\r\nb\r\n.\r\n" },
	{ "bare CR normalised", "a\rb", "a\r\nb\r\n.\r\n" },
	{ "CR at end", "a\r", "a\r\n.\r\n" },
	{ "leading dot stuffed", ".a\r\n", "..a\r\n.\r\n" },
	{ "lone dot line stuffed", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n" },
	{ "dot after bare LF stuffed", "a\n.\n", "a\r\n..\r\n.\r\n" },
	{ "dot after bare CR stuffed", "a\r.\r", "a\r\n..\r\n.\r\n" },
	{ "mid-line dot untouched", "a.b\r\n", "a.b\r\n.\r\n" },
	{ "CRLF.CRLF in content", "x\r\n.\r\ny\r\n", "x\r\n..\r\ny\r\n.\r\n" },
	{ "double dot", "..\r\n", "...\r\n.\r\n" },
};

static void
encode_run(const char *in, size_t split, size_t chunk, struct sbuf *out)
{
	struct smtp_data_enc e;
	smtp_data_enc_init(&e);
	size_t len = strlen(in), pos = 0;
	uint8_t buf[4096];
	while (pos < len) {
		size_t n = len - pos;
		if (pos == 0 && split > 0 && split < len)
			n = split;
		else if (chunk > 0 && n > chunk)
			n = chunk;
		long k = smtp_data_encode(&e, U(in + pos), n, buf, sizeof(buf));
		assert_true(k >= 0 && (size_t)k <= smtp_data_enc_bound(n));
		sb_add(out, buf, (size_t)k);
		pos += n;
	}
	long k = smtp_data_encode_end(&e, buf, sizeof(buf));
	assert_true(k >= 3);
	sb_add(out, buf, (size_t)k);
}

static void
t_enc(void **state)
{
	const struct erow *r = *state;
	size_t len = strlen(r->in);
	struct sbuf whole = { 0 };
	encode_run(r->in, 0, 0, &whole);
	assert_string_equal(sb_str(&whole), r->out);
	for (size_t split = 1; split < len; split++) {
		struct sbuf o = { 0 };
		encode_run(r->in, split, 0, &o);
		assert_string_equal(sb_str(&o), r->out);
		sb_free(&o);
	}
	struct sbuf o = { 0 };
	encode_run(r->in, 0, 1, &o);
	assert_string_equal(sb_str(&o), r->out);
	sb_free(&o);
	/* The encoder's output decodes back to normalised content. */
	struct smtp_data_dec d;
	size_t used;
	struct sbuf back = { 0 };
	decode_run(U(sb_str(&whole)), whole.len, 0, 0, &back, &used, &d);
	assert_true(d.done);
	assert_int_equal(d.errors, 0);
	assert_int_equal(used, whole.len);
	sb_free(&back);
	sb_free(&whole);
}

static void
t_enc_full(void **state)
{
	struct smtp_data_enc e;
	smtp_data_enc_init(&e);
	uint8_t buf[8];
	assert_int_equal(smtp_data_encode(&e, U("abcd"), 4, buf, 9),
	    SMTP_ERR_FULL);
	assert_int_equal(smtp_data_encode(&e, U("abc"), 3, buf, 8), 3);
	assert_int_equal(smtp_data_encode_end(&e, buf, 4), SMTP_ERR_FULL);
}

static void
t_dec_after_done(void **state)
{
	struct smtp_data_dec d;
	smtp_data_dec_init(&d, 0);
	uint8_t out[32];
	size_t olen;
	assert_int_equal(smtp_data_decode(&d, U(".\r\n"), 3, out, &olen), 3);
	assert_true(d.done);
	assert_int_equal(smtp_data_decode(&d, U("x\r\n"), 3, out, &olen), 0);
	assert_int_equal(olen, 0);
}

static void
t_check_bdat(void **state)
{
	struct smtp_data_dec d;
	smtp_data_dec_init(&d, 0);
	smtp_data_check(&d, U("a\r"), 2);
	smtp_data_check(&d, U("\nb\r\n"), 4);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.out_bytes, 6);
	smtp_data_check(&d, U("c\nd"), 3);
	assert_int_equal(d.errors, LF);
	smtp_data_dec_init(&d, 0);
	smtp_data_check(&d, U("c\rd"), 3);
	assert_int_equal(d.errors, CR);
}

/* BDAT content checks: whole, split at every offset, byte by byte; then
 * the end of the last chunk. */
struct crow {
	const char *name;
	const char *in;
	size_t len;      /* 0 = strlen */
	unsigned errors; /* after smtp_data_check_end() */
	bool eightbit;
};

static const struct crow check_rows[] = {
	{ "CRLF lines", "a\r\nb\r\n", 0, 0, false },
	{ "no final CRLF is fine", "a\r\nb", 0, 0, false },
	/* RFC 5321 2.3.8: the end of the last chunk does not excuse a CR. */
	{ "last chunk ends in bare CR", "a\r\nb\r", 0, CR, false },
	{ "only a CR", "\r", 0, CR, false },
	{ "bare CR mid chunk", "a\rb\r\n", 0, CR, false },
	{ "bare LF", "a\nb\r\n", 0, LF, false },
	{ "NUL", "a\x00b\r\n", 5, NUL, false },
	{ "8bit noted", "\xe2\x82\xac\r\n", 0, 0, true },
	{ "8bit and ends in CR", "\xe2\r", 0, CR, true },
};

static void
check_run(const struct crow *r, size_t split, size_t chunk,
    struct smtp_data_dec *d)
{
	size_t len = r->len ? r->len : strlen(r->in);
	smtp_data_dec_init(d, 0);
	size_t pos = 0;
	while (pos < len) {
		size_t n = len - pos;
		if (pos == 0 && split > 0 && split < len)
			n = split;
		else if (chunk > 0 && n > chunk)
			n = chunk;
		smtp_data_check(d, U(r->in) + pos, n);
		pos += n;
	}
	smtp_data_check_end(d);
}

static void
t_check(void **state)
{
	const struct crow *r = *state;
	size_t len = r->len ? r->len : strlen(r->in);
	struct smtp_data_dec d;
	check_run(r, 0, 0, &d);
	assert_int_equal(d.errors, r->errors);
	assert_int_equal(d.eightbit, r->eightbit);
	assert_int_equal(d.out_bytes, len);
	assert_int_equal(smtp_data_has_8bit(U(r->in), len), r->eightbit);
	for (size_t split = 1; split < len; split++) {
		check_run(r, split, 0, &d);
		assert_int_equal(d.errors, r->errors);
		assert_int_equal(d.eightbit, r->eightbit);
	}
	check_run(r, 0, 1, &d);
	assert_int_equal(d.errors, r->errors);
	assert_int_equal(d.eightbit, r->eightbit);
}

static void
t_roundtrip_random(void **state)
{
	/* Random content with only CRLF line ends survives encode/decode. */
	unsigned seed = 12345;
	for (int iter = 0; iter < 200; iter++) {
		struct sbuf msg = { 0 };
		int lines = (int)(seed % 7);
		for (int l = 0; l < lines; l++) {
			seed = seed * 1103515245u + 12345u;
			int n = (int)((seed >> 16) % 6);
			for (int k = 0; k < n; k++) {
				seed = seed * 1103515245u + 12345u;
				char c = ".ab.\x80"[(seed >> 16) % 5];
				sb_add(&msg, &c, 1);
			}
			sb_add(&msg, "\r\n", 2);
		}
		struct sbuf enc = { 0 };
		encode_run(sb_str(&msg), 0, 3, &enc);
		struct smtp_data_dec d;
		size_t used;
		struct sbuf dec = { 0 };
		decode_run(U(sb_str(&enc)), enc.len, 0, 0, &dec, &used, &d);
		assert_true(d.done);
		assert_int_equal(d.errors, 0);
		assert_int_equal(dec.len, msg.len);
		if (msg.len)
			assert_memory_equal(dec.p, msg.p, msg.len);
		sb_free(&msg);
		sb_free(&enc);
		sb_free(&dec);
		seed = seed * 1103515245u + 12345u;
	}
}

int
main(void)
{
	fill_long();
	struct case_list l = { 0 };
	CASES(&l, dec_rows, t_dec);
	CASES(&l, long_rows, t_dec);
	CASES(&l, enc_rows, t_enc);
	case_add(&l, "encoder needs room", t_enc_full, NULL);
	case_add(&l, "decoder stops at end", t_dec_after_done, NULL);
	case_add(&l, "BDAT line check", t_check_bdat, NULL);
	CASES(&l, check_rows, t_check);
	case_add(&l, "encode/decode round trip", t_roundtrip_random, NULL);
	return case_run(&l, "smtp_data");
}
