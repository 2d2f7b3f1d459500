/*
 * config_values.c - the value syntax of the configuration (config.h): sizes,
 * durations, booleans, numbers and host:port, and the formatters that write
 * sizes and durations back in a form the parsers accept.
 *
 * Kept apart from config.c because these are pure functions on strings, the
 * part most worth fuzzing, with no knowledge of the settings table.
 */
#include "base/config.h"
#include "base/units.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

/* parse_digits reads a run of decimal digits at *p into *v, refusing
 * overflow. Returns the number of digits (0 when none or on overflow). */
static size_t parse_digits(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	size_t n = 0;

	while (*s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');

		if (x > (UINT64_MAX - d) / 10)
			return 0;
		x = x * 10 + d;
		s++;
		n++;
	}
	*p = s;
	*v = x;
	return n;
}

int ld_parse_uint(const char *s, unsigned *out)
{
	uint64_t v;
	const char *p = s;

	if (!parse_digits(&p, &v) || *p || v > UINT_MAX)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

int ld_parse_u64(const char *s, uint64_t *out)
{
	const char *p = s;
	uint64_t v;

	if (!parse_digits(&p, &v) || *p)
		return -EINVAL;
	*out = v;
	return 0;
}

int ld_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *name;
		uint64_t mult;
	} units[] = {
	    {"", 1},	  {"b", 1},	     {"k", KiB},	 {"kb", KiB},	      {"kib", KiB},
	    {"m", MiB},	  {"mb", MiB},	     {"mib", MiB},	 {"g", GiB},	      {"gb", GiB},
	    {"gib", GiB}, {"t", 1024 * GiB}, {"tb", 1024 * GiB}, {"tib", 1024 * GiB},
	};
	const char *p = s;
	uint64_t v;
	size_t i;

	if (!parse_digits(&p, &v))
		return -EINVAL;
	while (*p == ' ')
		p++;
	if (p > s && p[-1] == ' ' && !*p)
		return -EINVAL; /* "64 " is a typo, not a size */
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(p, units[i].name) == 0) {
			if (v > UINT64_MAX / units[i].mult)
				return -EINVAL;
			*out = v * units[i].mult;
			return 0;
		}
	}
	return -EINVAL;
}

int ld_parse_duration_ms(const char *s, uint64_t *out)
{
	/* Longest spelling first so "ms" is not read as "m" then "s". */
	static const struct {
		const char *name;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"d", DAY}, {"h", HOUR}, {"m", MIN}, {"s", SEC}};
	const char *p = s;
	uint64_t total = 0, v, last = UINT64_MAX;
	size_t i, len;

	if (!*p)
		return -EINVAL;
	while (*p) {
		if (!parse_digits(&p, &v))
			return -EINVAL;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			len = strlen(units[i].name);
			if (strncasecmp(p, units[i].name, len) == 0)
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL; /* bare number or unknown unit */
		/* Units must decrease ("1h30m"), so each has one meaning. */
		if (units[i].ms >= last)
			return -EINVAL;
		last = units[i].ms;
		p += len;
		if (v > UINT64_MAX / units[i].ms || total > UINT64_MAX - v * units[i].ms)
			return -EINVAL;
		total += v * units[i].ms;
	}
	*out = total;
	return 0;
}

int ld_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static bool host_char(char ch, bool bracketed)
{
	if (isalnum((unsigned char)ch) || ch == '.' || ch == '-')
		return true;
	if (!bracketed)
		return ch == '_';
	return ch == ':' || ch == '%';
}

int ld_parse_hostport(const char *s, char *host, size_t hostcap, unsigned *port)
{
	const char *h, *hend, *colon, *p;
	uint64_t v;
	size_t i, n;
	bool bracketed = s[0] == '[';

	if (bracketed) {
		h = s + 1;
		hend = strchr(h, ']');
		if (!hend || hend[1] != ':')
			return -EINVAL;
		colon = hend + 1;
		/* An address in brackets has a colon: "[example.com]" is a typo. */
		if (!memchr(h, ':', (size_t)(hend - h)))
			return -EINVAL;
	} else {
		h = s;
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hend = colon;
	}
	n = (size_t)(hend - h);
	if (n == 0 || n >= hostcap)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!host_char(h[i], bracketed))
			return -EINVAL;
	p = colon + 1;
	if (!parse_digits(&p, &v) || *p || p - colon > 6 || v < 1 || v > 65535)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (unsigned)v;
	return 0;
}

int ld_format_size(uint64_t v, char *out, size_t cap)
{
	static const char *const names[] = {"TiB", "GiB", "MiB", "KiB"};
	static const uint64_t mults[] = {1024 * GiB, GiB, MiB, KiB};
	size_t i;

	for (i = 0; v && i < 4; i++)
		if (v % mults[i] == 0)
			return snprintf(out, cap, "%llu%s", (unsigned long long)(v / mults[i]),
					names[i]);
	return snprintf(out, cap, "%llu", (unsigned long long)v);
}

int ld_format_duration_ms(uint64_t ms, char *out, size_t cap)
{
	static const char *const names[] = {"d", "h", "m", "s"};
	static const uint64_t mults[] = {DAY, HOUR, MIN, SEC};
	size_t i;

	for (i = 0; ms && i < 4; i++)
		if (ms % mults[i] == 0)
			return snprintf(out, cap, "%llu%s", (unsigned long long)(ms / mults[i]),
					names[i]);
	return snprintf(out, cap, "%llums", (unsigned long long)ms);
}
