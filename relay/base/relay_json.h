#ifndef RELAY_JSON_H
#define RELAY_JSON_H
/*
 * relay_json: a small streaming JSON writer (RFC 8259) for the CLI's
 * machine-readable output (`queue list --json`, `queue show --json`,
 * `report --json`).
 *
 *     struct relay_json j;
 *     relay_json_init(&j, stdout);
 *     relay_json_obj_begin(&j);
 *     relay_json_kv_str(&j, "queue_id", id);
 *     relay_json_key(&j, "recipients");
 *     relay_json_arr_begin(&j);
 *     ...
 *     relay_json_arr_end(&j);
 *     relay_json_obj_end(&j);
 *     if (relay_json_finish(&j) != 0) ... write error ...
 *
 * The writer inserts commas and colons itself and emits compact output
 * without newlines (the caller adds "\n" between JSON Lines documents).
 * Strings are escaped per RFC 8259 7: '"' and '\\' and every byte below
 * 0x20 are escaped (\n \r \t \b \f, else \u00XX); DEL is written as
 * \u007f. Bytes >= 0x80 are copied when they form valid UTF-8 (RFC 3629:
 * shortest form, no surrogates, at most U+10FFFF); every byte of an
 * invalid sequence becomes U+FFFD, so the output is always valid UTF-8
 * whatever the input (server replies and addresses are untrusted).
 *
 * Misuse of the structure (a value where a key is due, unbalanced ends,
 * nesting deeper than RELAY_JSON_DEPTH_MAX) is a programming error and
 * aborts (assert). Write errors of the stream are sticky and reported by
 * relay_json_finish().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RELAY_JSON_DEPTH_MAX 16

struct relay_json {
	/* private */
	FILE *out;
	unsigned depth;
	bool in_object[RELAY_JSON_DEPTH_MAX + 1];
	bool has_items[RELAY_JSON_DEPTH_MAX + 1];
	bool want_value; /* a key was written, its value is due */
	bool done;       /* a complete top-level value was written */
	bool error;      /* a write to out failed */
};

/* Starts a document on out (borrowed; must outlive the writer). */
void relay_json_init(struct relay_json *j, FILE *out);

void relay_json_obj_begin(struct relay_json *j);
void relay_json_obj_end(struct relay_json *j);
void relay_json_arr_begin(struct relay_json *j);
void relay_json_arr_end(struct relay_json *j);

/* An object member name (NUL-terminated, escaped like any string). */
void relay_json_key(struct relay_json *j, const char *key);

/* Values. relay_json_str(j, NULL) writes null. */
void relay_json_str(struct relay_json *j, const char *s);
void relay_json_strn(struct relay_json *j, const void *p, size_t len);
void relay_json_u64(struct relay_json *j, uint64_t v);
void relay_json_i64(struct relay_json *j, int64_t v);
void relay_json_bool(struct relay_json *j, bool v);
void relay_json_null(struct relay_json *j);

/* key + value in one call. */
void relay_json_kv_str(struct relay_json *j, const char *key, const char *s);
void relay_json_kv_u64(struct relay_json *j, const char *key, uint64_t v);
void relay_json_kv_i64(struct relay_json *j, const char *key, int64_t v);
void relay_json_kv_bool(struct relay_json *j, const char *key, bool v);

/*
 * Ends the document: asserts that exactly one complete top-level value was
 * written, flushes nothing (the caller owns out). Returns 0, or -1 if a
 * write to the stream failed.
 */
int relay_json_finish(struct relay_json *j) __attribute__((warn_unused_result));

/*
 * Length of the valid UTF-8 sequence at p (len > 0 bytes available), or 0
 * when the bytes there are not well-formed UTF-8 (RFC 3629 4). ASCII gives
 * 1. Shared with the text printers that pass UTF-8 through.
 */
size_t relay_json_utf8_len(const uint8_t *p, size_t len);

/*
 * Writes p/len as a JSON string (with the quotes) to out, escaped as
 * described above. Returns 0 or -1 on a write error. Exposed for tests.
 */
int relay_json_write_string(FILE *out, const void *p, size_t len)
    __attribute__((warn_unused_result));

#endif
