/*
 * json.h - a small streaming JSON writer for responses and log lines.
 *
 * Values are appended to a caller-owned ld_buf. Commas and nesting are tracked
 * here so call sites read like the document they produce. Errors are sticky:
 * after the first failure (buffer cap reached, nesting too deep, a key where a
 * value belongs) every later call does nothing and ld_json_finish() reports it,
 * so callers check once at the end. A buffer failure is the buffer's own
 * sticky failure too (buf.h): the buffer is then empty, never a document cut
 * short.
 *
 * Strings are escaped per RFC 8259: '"', '\\' and control characters (as \n,
 * \t, ... or \u00XX); bytes >= 0x80 are copied as they are (the caller passes
 * valid UTF-8; the writer does not re-validate), except that U+2028 and U+2029
 * are escaped so the output is also safe inside JavaScript.
 *
 * Threading: one writer per thread; no shared state.
 */
#ifndef LD_JSON_H
#define LD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define LD_JSON_DEPTH_MAX 32

struct ld_json {
	struct ld_buf *out;
	int err;			    /* first error, 0 if none */
	unsigned depth;			    /* open containers */
	bool first[LD_JSON_DEPTH_MAX + 1];  /* no member written yet at this depth */
	bool is_obj[LD_JSON_DEPTH_MAX + 1]; /* container kind at this depth */
	bool after_key;			    /* a key was written, its value is next */
};

void ld_json_init(struct ld_json *j, struct ld_buf *out);

void ld_json_obj_begin(struct ld_json *j);
void ld_json_obj_end(struct ld_json *j);
void ld_json_arr_begin(struct ld_json *j);
void ld_json_arr_end(struct ld_json *j);

/* ld_json_key writes a member name; the next call must write its value. */
void ld_json_key(struct ld_json *j, const char *key);

void ld_json_str(struct ld_json *j, const char *s);
void ld_json_strn(struct ld_json *j, const char *s, size_t n);
void ld_json_int(struct ld_json *j, int64_t v);
void ld_json_uint(struct ld_json *j, uint64_t v);
/* ld_json_double writes a finite number with up to 17 significant digits;
 * NaN and infinities are written as null (JSON has no spelling for them). */
void ld_json_double(struct ld_json *j, double v);
void ld_json_bool(struct ld_json *j, bool v);
void ld_json_null(struct ld_json *j);

/* ld_json_id writes a 64-bit id as a decimal string ("7312589412937728"):
 * JavaScript clients lose precision on numbers above 2^53. */
void ld_json_id(struct ld_json *j, int64_t id);

/* ld_json_time_ms writes Unix milliseconds as an RFC 3339 UTC string with
 * millisecond precision, e.g. "2026-11-23T11:49:10.123Z". */
void ld_json_time_ms(struct ld_json *j, int64_t ms);

/* ld_json_raw appends pre-rendered JSON as one value (caller vouches for it). */
void ld_json_raw(struct ld_json *j, const char *s, size_t n);

/* ld_json_finish returns 0 when the document is complete and no error
 * happened, the buffer's error (-E2BIG / -ENOMEM; also when the buffer
 * failed under an append that was not the writer's), or -EINVAL for misuse
 * (unclosed containers, value without key in an object, too deep). */
int ld_json_finish(const struct ld_json *j);

/* ld_time_rfc3339 formats Unix ms into out (at least 25 bytes) and returns
 * the length written (24). */
size_t ld_time_rfc3339(int64_t ms, char *out);

#endif
