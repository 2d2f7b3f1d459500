/*
 * fuzz_http_response.c - the bench's response parser on arbitrary bytes.
 *
 * The input is parsed twice, once in one piece and once split at a point
 * taken from its first byte; both runs must agree on every response's status,
 * body length and where it ended (the parser must not depend on how reads
 * fall), and consumed counts must never pass what was fed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/client.h"

struct outcome {
	int status[64];
	uint64_t body[64];
	size_t end[64];
	int n;
	ssize_t err;
};

static void run(const uint8_t *d, size_t n, size_t split, struct outcome *o)
{
	struct ld_http_resp r;
	struct ld_buf body;
	size_t off = 0;

	memset(o, 0, sizeof(*o));
	ld_buf_init(&body, 1 << 16);
	ld_http_resp_init(&r, d[0] & 1, &body);
	while (off < n && o->n < 64) {
		size_t lim = off < split && split < n ? split : n;
		ssize_t got = ld_http_resp_feed(&r, (const char *)d + off, lim - off);
		if (got < 0) {
			o->err = got;
			break;
		}
		if ((size_t)got > lim - off)
			abort();
		off += (size_t)got;
		if (r.done) {
			if (r.body && r.body->len != r.body_bytes)
				abort();
			o->status[o->n] = r.status;
			o->body[o->n] = r.body_bytes;
			o->end[o->n] = off;
			o->n++;
			ld_buf_reset(&body);
			ld_http_resp_init(&r, d[0] & 1, &body);
		} else if (off < lim) {
			abort(); /* stopped early without finishing a response */
		}
	}
	if (!o->err && o->n < 64 && ld_http_resp_eof(&r) == 1) {
		o->status[o->n] = r.status;
		o->body[o->n] = r.body_bytes;
		o->end[o->n] = off;
		o->n++;
	}
	ld_buf_release(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct outcome a, b;

	if (size < 2)
		return 0;
	run(data + 1, size - 1, size, &a);
	run(data + 1, size - 1, data[0] % (size - 1), &b);
	if (a.n != b.n || (a.err != 0) != (b.err != 0))
		abort();
	for (int i = 0; i < a.n; i++)
		if (a.status[i] != b.status[i] || a.body[i] != b.body[i] || a.end[i] != b.end[i])
			abort();
	return 0;
}
