#include "base/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ld_buf_init(struct ld_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->err = 0;
}

void ld_buf_release(struct ld_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
}

/* fail makes err the buffer's final word: the memory goes (curl's dynbuf
 * does the same), so no caller can send what was written before the piece
 * that is missing. */
static int fail(struct ld_buf *b, int err)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = err;
	return err;
}

int ld_buf_reserve(struct ld_buf *b, size_t extra)
{
	int rc = b->err;
	size_t want, ncap;
	char *p;

	if (rc)
		goto out;
	if (extra > b->max || b->len > b->max - extra) {
		rc = -E2BIG;
		goto out;
	}
	want = b->len + extra;
	if (want <= b->cap && b->data)
		goto out;
	/* Doubling keeps appends amortised O(1); the cap bounds the doubling. */
	ncap = b->cap ? b->cap : 64;
	while (ncap < want)
		ncap *= 2;
	if (ncap > b->max)
		ncap = b->max;
	p = realloc(b->data, ncap + 1);
	if (!p) {
		rc = -ENOMEM;
		goto out;
	}
	b->data = p;
	b->cap = ncap;
	b->data[b->len] = '\0';
out:
	return rc;
}

int ld_buf_append(struct ld_buf *b, const void *p, size_t n)
{
	int rc = b->err;

	if (rc)
		goto out;
	/* The common case, room already there, without the call to reserve:
	 * a response's header block is a score of small appends. */
	if (b->data && n <= b->cap - b->len && b->len + n <= b->max)
		goto copy;
	rc = ld_buf_reserve(b, n);
	if (rc) {
		rc = fail(b, rc);
		goto out;
	}
copy:
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
out:
	return rc;
}

int ld_buf_putc(struct ld_buf *b, char c)
{
	if (!b->err && b->data && b->len < b->cap && b->len < b->max) {
		b->data[b->len++] = c;
		b->data[b->len] = '\0';
		return 0;
	}
	return ld_buf_append(b, &c, 1);
}

int ld_buf_vprintf(struct ld_buf *b, const char *fmt, va_list ap)
{
	int rc = b->err, n;
	va_list ap2;

	if (rc)
		goto out;
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		rc = fail(b, -EINVAL);
		goto out;
	}
	rc = ld_buf_reserve(b, (size_t)n);
	if (rc) {
		rc = fail(b, rc);
		goto out;
	}
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
out:
	return rc;
}

int ld_buf_printf(struct ld_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ld_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void ld_buf_consume(struct ld_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

void ld_buf_reset(struct ld_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *ld_buf_steal(struct ld_buf *b, size_t *len)
{
	char *p = b->data;

	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
	return p;
}
