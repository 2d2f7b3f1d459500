/*
 * session_token.c - the Ladder-Session token (session_token.h).
 */
#include "api/session_token.h"

#include <errno.h>

size_t ld_session_token_format(uint64_t pos, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char digits[16];
	size_t n = 0, len = 0;

	do {
		digits[n++] = hex[pos & 0xf];
		pos >>= 4;
	} while (pos);
	out[len++] = 'v';
	out[len++] = '1';
	out[len++] = '.';
	while (n)
		out[len++] = digits[--n];
	out[len] = '\0';
	return len;
}

int ld_session_token_parse(const char *s, size_t n, uint64_t *pos)
{
	uint64_t v = 0;
	size_t i;

	if (n < 4 || n > 3 + 16 || s[0] != 'v' || s[1] != '1' || s[2] != '.')
		return -EINVAL;
	for (i = 3; i < n; i++) {
		char c = s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -EINVAL;
		v = v << 4 | d;
	}
	*pos = v;
	return 0;
}
