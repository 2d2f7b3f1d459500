/*
 * negotiate.c - content negotiation (Accept-Encoding).
 */
#include "http/negotiate.h"

#include <string.h>
#include <strings.h>

bool ld_accepts_gzip(const char *v, size_t n)
{
	const char *p = v, *end = v + n;

	while (p < end) {
		const char *tok, *item_end = memchr(p, ',', (size_t)(end - p));
		size_t tlen;
		bool zero_q = false;

		if (!item_end)
			item_end = end;
		while (p < item_end && (*p == ' ' || *p == '\t'))
			p++;
		tok = p;
		while (p < item_end && *p != ';' && *p != ' ' && *p != '\t')
			p++;
		tlen = (size_t)(p - tok);
		/* q=0, q=0.0, q=0.00 and q=0.000 all mean "not acceptable". */
		for (; p < item_end; p++) {
			if ((*p == 'q' || *p == 'Q') && p + 1 < item_end && p[1] == '=') {
				const char *q = p + 2;

				zero_q = q < item_end && *q == '0';
				for (q++; zero_q && q < item_end && *q != ' ' && *q != ';'; q++)
					if (*q != '.' && *q != '0')
						zero_q = false;
			}
		}
		if (((tlen == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
		     (tlen == 1 && tok[0] == '*')) &&
		    !zero_q)
			return true;
		p = item_end + 1;
	}
	return false;
}
