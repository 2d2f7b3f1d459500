#include "base/lines.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void ld_lines_init(struct ld_lines *l, const char *name, const char *text, size_t len)
{
	l->text = text;
	l->len = len;
	l->pos = 0;
	l->lineno = 0;
	l->name = name;
}

int ld_lines_next(struct ld_lines *l, char *line, size_t max, char *err, size_t errlen)
{
	const char *start = l->text + l->pos, *nl;
	size_t n;
	int rc = 0;

	if (l->pos >= l->len)
		goto out;
	nl = memchr(start, '\n', l->len - l->pos);
	n = nl ? (size_t)(nl - start) : l->len - l->pos;
	l->lineno++;
	if (n > max) {
		snprintf(err, errlen, "%s:%zu: line longer than %zu bytes", l->name, l->lineno,
			 max);
		rc = -E2BIG;
		goto out;
	}
	/* A NUL would silently cut the line short for every C string parser
	 * after this one. */
	if (memchr(start, '\0', n)) {
		snprintf(err, errlen, "%s:%zu: NUL byte in line", l->name, l->lineno);
		rc = -EINVAL;
		goto out;
	}
	memcpy(line, start, n);
	line[n] = '\0';
	l->pos += n + (nl ? 1 : 0);
	rc = 1;
out:
	return rc;
}
