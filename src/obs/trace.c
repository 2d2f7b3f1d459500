#include "obs/trace.h"

#include <errno.h>
#include <string.h>

static bool is_lhex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool hex_field(const char *s, size_t n, bool nonzero)
{
	bool any = false;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!is_lhex(s[i]))
			return false;
		if (s[i] != '0')
			any = true;
	}
	return !nonzero || any;
}

int ld_traceparent_parse(const char *s, size_t n, char *trace_id, char *flags)
{
	int rc = -EINVAL;

	/* 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 */
	if (n < 55 || !hex_field(s, 2, false) || (s[0] == 'f' && s[1] == 'f'))
		goto out;
	if (s[2] != '-' || s[35] != '-' || s[52] != '-')
		goto out;
	if (!hex_field(s + 3, 32, true) || !hex_field(s + 36, 16, true) ||
	    !hex_field(s + 53, 2, false))
		goto out;
	/* Version 00 has exactly these fields; later versions may append
	 * "-..." and we keep only what we understand. */
	if ((s[0] == '0' && s[1] == '0' && n != 55) || (n > 55 && s[55] != '-'))
		goto out;
	memcpy(trace_id, s + 3, 32);
	trace_id[32] = '\0';
	memcpy(flags, s + 53, 2);
	flags[2] = '\0';
	rc = 0;
out:
	return rc;
}

bool ld_request_id_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 128)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

void ld_hex_lower(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}
