/*
 * json.c - the streaming JSON writer (see json.h for the contract).
 *
 * The writer keeps one bit of state per open container ("nothing written
 * yet", "object or array") so it can place commas and catch misuse; the
 * first error sticks and turns every later call into a no-op.
 */
#include "base/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Earliest and latest instants RFC 3339 can spell (years 0000 to 9999). */
#define TIME_MIN_MS (-62167219200000LL)
#define TIME_MAX_MS 253402300799999LL

/* How each byte below 0x80 is written inside a string: 0 copies it, a letter
 * is the short escape after a backslash, 'u' means \u00XX. */
static const char escapes[128] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f',  'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',  'u', 'u', 'u',
    0,	 0,   '"', 0,	0,   0,	  0,   0,   0,	 0,   0,   0,	0,    0,   0,	0,
    0,	 0,   0,   0,	0,   0,	  0,   0,   0,	 0,   0,   0,	0,    0,   0,	0,
    0,	 0,   0,   0,	0,   0,	  0,   0,   0,	 0,   0,   0,	0,    0,   0,	0,
    0,	 0,   0,   0,	0,   0,	  0,   0,   0,	 0,   0,   0,	'\\', 0,   0,	0,
};

void ld_json_init(struct ld_json *j, struct ld_buf *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
	j->first[0] = true;
}

static void put(struct ld_json *j, const void *p, size_t n)
{
	int rc;

	if (j->err)
		return;
	rc = ld_buf_append(j->out, p, n);
	if (rc < 0)
		j->err = rc;
}

static void fail(struct ld_json *j, int err)
{
	if (!j->err)
		j->err = err;
}

/* begin_value places the comma before a value and checks that a value may
 * stand here. Returns false when nothing should be written. */
static bool begin_value(struct ld_json *j)
{
	unsigned d = j->depth;

	if (j->err)
		return false;
	if (d > 0 && j->is_obj[d]) {
		if (!j->after_key) {
			fail(j, -EINVAL); /* a value in an object needs its key first */
			return false;
		}
		j->after_key = false;
		return true;
	}
	if (!j->first[d]) {
		if (d == 0) {
			fail(j, -EINVAL); /* one document holds one top-level value */
			return false;
		}
		put(j, ",", 1);
	}
	j->first[d] = false;
	return !j->err;
}

static void open_container(struct ld_json *j, bool obj)
{
	if (!begin_value(j))
		return;
	if (j->depth == LD_JSON_DEPTH_MAX) {
		fail(j, -EINVAL);
		return;
	}
	j->depth++;
	j->first[j->depth] = true;
	j->is_obj[j->depth] = obj;
	put(j, obj ? "{" : "[", 1);
}

static void close_container(struct ld_json *j, bool obj)
{
	if (j->err)
		return;
	if (j->depth == 0 || j->is_obj[j->depth] != obj || j->after_key) {
		fail(j, -EINVAL);
		return;
	}
	j->depth--;
	put(j, obj ? "}" : "]", 1);
}

void ld_json_obj_begin(struct ld_json *j)
{
	open_container(j, true);
}

void ld_json_obj_end(struct ld_json *j)
{
	close_container(j, true);
}

void ld_json_arr_begin(struct ld_json *j)
{
	open_container(j, false);
}

void ld_json_arr_end(struct ld_json *j)
{
	close_container(j, false);
}

/* put_string writes s[0..n) quoted and escaped. Runs of bytes that need no
 * escape are copied with one append. */
static void put_string(struct ld_json *j, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i, run = 0;
	char e[6];

	put(j, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (c < 0x80 && escapes[c]) {
			put(j, s + run, i - run);
			e[0] = '\\';
			e[1] = escapes[c];
			if (e[1] == 'u') {
				memcpy(e + 1, "u00", 3);
				e[4] = hex[c >> 4];
				e[5] = hex[c & 15];
				put(j, e, 6);
			} else {
				put(j, e, 2);
			}
			run = i + 1;
		} else if (c == 0xe2 && i + 2 < n && p[i + 1] == 0x80 &&
			   (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
			/* U+2028 and U+2029 end a line in JavaScript. */
			put(j, s + run, i - run);
			put(j, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
			i += 2;
			run = i + 1;
		}
	}
	put(j, s + run, n - run);
	put(j, "\"", 1);
}

void ld_json_key(struct ld_json *j, const char *key)
{
	unsigned d = j->depth;

	if (j->err)
		return;
	if (d == 0 || !j->is_obj[d] || j->after_key) {
		fail(j, -EINVAL);
		return;
	}
	if (!j->first[d])
		put(j, ",", 1);
	j->first[d] = false;
	put_string(j, key, strlen(key));
	put(j, ":", 1);
	j->after_key = true;
}

void ld_json_strn(struct ld_json *j, const char *s, size_t n)
{
	if (begin_value(j))
		put_string(j, s, n);
}

void ld_json_str(struct ld_json *j, const char *s)
{
	/* A missing string is written as null rather than crashing a response. */
	if (!s)
		ld_json_null(j);
	else
		ld_json_strn(j, s, strlen(s));
}

/* fmt_u64 writes v in decimal ending at end; returns the first digit. */
static char *fmt_u64(uint64_t v, char *end)
{
	char *p = end;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return p;
}

static void put_int(struct ld_json *j, int64_t v, bool quoted)
{
	char buf[24], *end = buf + sizeof(buf), *p;
	/* Negate in unsigned arithmetic: -INT64_MIN does not fit int64_t. */
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	if (quoted)
		*--end = '"';
	p = fmt_u64(u, end);
	if (v < 0)
		*--p = '-';
	if (quoted)
		*--p = '"';
	put(j, p, (size_t)(buf + sizeof(buf) - p));
}

void ld_json_int(struct ld_json *j, int64_t v)
{
	if (begin_value(j))
		put_int(j, v, false);
}

void ld_json_uint(struct ld_json *j, uint64_t v)
{
	char buf[24], *p;

	if (!begin_value(j))
		return;
	p = fmt_u64(v, buf + sizeof(buf));
	put(j, p, (size_t)(buf + sizeof(buf) - p));
}

void ld_json_id(struct ld_json *j, int64_t id)
{
	if (begin_value(j))
		put_int(j, id, true);
}

void ld_json_double(struct ld_json *j, double v)
{
	char buf[32];
	int n = 0, prec;

	if (!begin_value(j))
		return;
	if (!isfinite(v)) {
		put(j, "null", 4);
		return;
	}
	/* The shortest of 15, 16 or 17 significant digits that reads back as
	 * the same double: 0.1 stays "0.1", and 17 digits always round-trip.
	 * (printf's decimal point follows LC_NUMERIC; ladder never calls
	 * setlocale, so it stays '.'.) */
	for (prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (prec == 17 || strtod(buf, NULL) == v)
			break;
	}
	put(j, buf, (size_t)n);
}

void ld_json_bool(struct ld_json *j, bool v)
{
	if (begin_value(j))
		put(j, v ? "true" : "false", v ? 4 : 5);
}

void ld_json_null(struct ld_json *j)
{
	if (begin_value(j))
		put(j, "null", 4);
}

void ld_json_time_ms(struct ld_json *j, int64_t ms)
{
	char buf[27];

	if (!begin_value(j))
		return;
	buf[0] = '"';
	ld_time_rfc3339(ms, buf + 1);
	buf[25] = '"';
	put(j, buf, 26);
}

void ld_json_raw(struct ld_json *j, const char *s, size_t n)
{
	if (begin_value(j))
		put(j, s, n);
}

int ld_json_finish(const struct ld_json *j)
{
	if (j->err)
		return j->err;
	/* The buffer may have failed under another writer's append: the
	 * document is gone with it. */
	if (ld_buf_error(j->out))
		return ld_buf_error(j->out);
	/* Open containers, a dangling key, or nothing written at all. */
	if (j->depth != 0 || j->after_key || j->first[0])
		return -EINVAL;
	return 0;
}

/*
 * civil_from_days turns days since 1970-01-01 into a proleptic Gregorian
 * date. The calendar is counted from 0000-03-01 so that the leap day is the
 * last day of a year; a 400-year era then always has 146097 days, a year
 * within it 365 days plus one every 4 years, less one every 100 (but not
 * the 400th, which is the era's end), and months from March have lengths in
 * the repeating pattern 31 30 31 30 31 that (153 * m + 2) / 5 captures.
 */
static void civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
	/* 719468 days from 0000-03-01 to 1970-01-01. */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);			      /* 0..146096 */
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);		      /* 0..365 */
	unsigned mp = (5 * doy + 2) / 153;				      /* 0 = March */

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

size_t ld_time_rfc3339(int64_t ms, char *out)
{
	int64_t days, rem, y;
	unsigned m, d, secs;

	/* Clamp to what four year digits can spell rather than emit an
	 * invalid timestamp. */
	if (ms < TIME_MIN_MS)
		ms = TIME_MIN_MS;
	if (ms > TIME_MAX_MS)
		ms = TIME_MAX_MS;
	/* Floor division: the instant before the epoch is 1969-12-31. */
	days = ms / 86400000;
	rem = ms % 86400000;
	if (rem < 0) {
		rem += 86400000;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	secs = (unsigned)(rem / 1000);
	put2(out, (unsigned)(y / 100));
	put2(out + 2, (unsigned)(y % 100));
	out[4] = '-';
	put2(out + 5, m);
	out[7] = '-';
	put2(out + 8, d);
	out[10] = 'T';
	put2(out + 11, secs / 3600);
	out[13] = ':';
	put2(out + 14, secs / 60 % 60);
	out[16] = ':';
	put2(out + 17, secs % 60);
	out[19] = '.';
	out[20] = (char)('0' + rem % 1000 / 100);
	put2(out + 21, (unsigned)(rem % 100));
	out[23] = 'Z';
	out[24] = '\0';
	return 24;
}
