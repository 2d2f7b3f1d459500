/*
 * buf.h - capped growable byte buffers whose first failure sticks.
 *
 * Every buffer is born with a hard cap (curl's dynbuf habit): growth past the
 * cap fails with -E2BIG instead of eating memory, so request, header and body
 * limits fall out of the buffer that holds them. The data is always followed
 * by a NUL byte (not counted in len) so it may be handed to C string APIs.
 *
 * The first failed append is final: the buffer frees its memory (len 0, data
 * NULL), remembers the error, and every later append returns that same error
 * without writing anything. A buffer therefore never holds a document with a
 * piece missing from its middle, and a writer checks once, at the end, with
 * ld_buf_error() or the result of its last append. Only ld_buf_reset() and
 * ld_buf_release() clear the failure (the buffer is then empty and usable).
 *
 * ld_buf_reserve is the exception: asking for room loses no bytes, so a
 * reserve that cannot be granted leaves the buffer as it was (a smaller one
 * may follow); it still fails at once on a buffer that has failed.
 *
 * Threading: a buffer belongs to one thread at a time; no locking inside.
 * Errors: 0 on success, -ENOMEM when malloc fails, -E2BIG when the cap would
 * be passed, -EINVAL when a printf format cannot be rendered.
 */
#ifndef LD_BUF_H
#define LD_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

struct ld_buf {
	char *data; /* NULL until the first growth, and after a failure */
	size_t len; /* bytes in use */
	size_t cap; /* bytes allocated (excluding the NUL slot) */
	size_t max; /* hard cap on len */
	int err;    /* first append error, 0 while the buffer is good */
};

/* ld_buf_init prepares an empty buffer that may grow up to max bytes. */
void ld_buf_init(struct ld_buf *b, size_t max);

/* ld_buf_release frees the memory and clears a failure; the buffer keeps its
 * cap and may be used again. */
void ld_buf_release(struct ld_buf *b);

/* ld_buf_reserve makes room for at least extra more bytes; see above for why
 * its failure does not stick. */
int ld_buf_reserve(struct ld_buf *b, size_t extra);

/* The appends: 0, or the buffer's first error (see above). */
int ld_buf_append(struct ld_buf *b, const void *p, size_t n);
/* Inline, so that a literal's length is known at compile time: most puts
 * are of literals, many of them per response. */
static inline int ld_buf_puts(struct ld_buf *b, const char *s)
{
	return ld_buf_append(b, s, strlen(s));
}
int ld_buf_putc(struct ld_buf *b, char c);
int ld_buf_printf(struct ld_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ld_buf_vprintf(struct ld_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* ld_buf_error returns the first append error, 0 while none happened. */
static inline int ld_buf_error(const struct ld_buf *b)
{
	return b->err;
}

/* ld_buf_consume drops the first n bytes (n <= len), moving the rest down. */
void ld_buf_consume(struct ld_buf *b, size_t n);

/* ld_buf_reset empties the buffer, keeps its memory (if it still has any) and
 * clears a failure. */
void ld_buf_reset(struct ld_buf *b);

/* ld_buf_steal hands the memory to the caller (free() it) and empties b as
 * ld_buf_reset does. NULL when nothing was ever written or b has failed:
 * check ld_buf_error() first. */
char *ld_buf_steal(struct ld_buf *b, size_t *len);

#endif
