/*
 * buf.h - capped growable byte buffers.
 *
 * Every buffer is born with a hard cap (curl's dynbuf habit): growth past the
 * cap fails with -E2BIG instead of eating memory, so request, header and body
 * limits fall out of the buffer that holds them. The data is always followed
 * by a NUL byte (not counted in len) so it may be handed to C string APIs.
 *
 * Threading: a buffer belongs to one thread at a time; no locking inside.
 * Errors: 0 on success, -ENOMEM when malloc fails, -E2BIG when the cap would
 * be passed; on error the buffer is unchanged.
 */
#ifndef LD_BUF_H
#define LD_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct ld_buf {
	char *data; /* NULL until the first growth */
	size_t len; /* bytes in use */
	size_t cap; /* bytes allocated (excluding the NUL slot) */
	size_t max; /* hard cap on len */
};

/* ld_buf_init prepares an empty buffer that may grow up to max bytes. */
void ld_buf_init(struct ld_buf *b, size_t max);

/* ld_buf_release frees the memory; the buffer may be reused after init. */
void ld_buf_release(struct ld_buf *b);

/* ld_buf_reserve makes room for at least extra more bytes. */
int ld_buf_reserve(struct ld_buf *b, size_t extra);

int ld_buf_append(struct ld_buf *b, const void *p, size_t n);
int ld_buf_puts(struct ld_buf *b, const char *s);
int ld_buf_putc(struct ld_buf *b, char c);
int ld_buf_printf(struct ld_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ld_buf_vprintf(struct ld_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* ld_buf_consume drops the first n bytes (n <= len), moving the rest down. */
void ld_buf_consume(struct ld_buf *b, size_t n);

/* ld_buf_reset empties the buffer but keeps its memory. */
void ld_buf_reset(struct ld_buf *b);

/* ld_buf_steal hands the memory to the caller (free() it) and empties b. */
char *ld_buf_steal(struct ld_buf *b, size_t *len);

#endif
