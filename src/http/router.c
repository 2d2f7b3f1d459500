#include "http/router.h"

#include <string.h>

/* match_one walks pattern and path segment by segment. */
static int match_one(const char *pat, const char *path, size_t len, struct ld_route_match *m)
{
	const char *p = path, *end = path + len;

	m->param = NULL;
	m->param_len = 0;
	while (*pat && p < end) {
		if (pat[0] == '{') {
			const char *seg = p;

			while (p < end && *p != '/')
				p++;
			if (p == seg)
				return 0;
			m->param = seg;
			m->param_len = (size_t)(p - seg);
			pat = strchr(pat, '}');
			if (!pat)
				return 0;
			pat++;
		} else {
			if (*pat != *p)
				return 0;
			pat++;
			p++;
		}
	}
	return *pat == '\0' && p == end;
}

int ld_router_match(const char *const *patterns, unsigned n, const char *path, size_t len,
		    struct ld_route_match *m)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (patterns[i] && patterns[i][0] == '/' && match_one(patterns[i], path, len, m))
			return (int)i;
	m->param = NULL;
	m->param_len = 0;
	return -1;
}
