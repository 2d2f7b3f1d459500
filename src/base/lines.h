/*
 * lines.h - split a text buffer into capped, NUL-free lines, for the small
 * line-oriented input formats (assumption files, point lists).
 */
#ifndef LD_LINES_H
#define LD_LINES_H

#include <stddef.h>

struct ld_lines {
	const char *text; /* the whole input, not NUL-terminated */
	size_t len;
	size_t pos;	  /* where the next line starts */
	size_t lineno;	  /* number of the line last returned, from 1 */
	const char *name; /* the input's name for messages (a path) */
};

void ld_lines_init(struct ld_lines *l, const char *name, const char *text, size_t len);

/*
 * ld_lines_next copies the next line (without its '\n') into line, which has
 * room for max bytes plus a NUL. Returns 1 when a line was copied, 0 at the
 * end of the input, -E2BIG for a line longer than max and -EINVAL for a NUL
 * byte in it; both errors write "NAME:LINE: ..." into err.
 */
int ld_lines_next(struct ld_lines *l, char *line, size_t max, char *err, size_t errlen);

#endif
