#include "base/ids.h"

#include <errno.h>
#include <stdint.h>

#define SHARD_BITS 13
#define SEQ_BITS   10

int64_t ld_id_make(int64_t unix_ms, unsigned shard, unsigned seq)
{
	int64_t ms = unix_ms - LD_ID_EPOCH_MS;

	return (ms << (SHARD_BITS + SEQ_BITS)) |
	       ((int64_t)(shard & (LD_ID_SHARDS - 1)) << SEQ_BITS) | (int64_t)(seq & LD_ID_SEQ_MAX);
}

int64_t ld_id_unix_ms(int64_t id)
{
	return (id >> (SHARD_BITS + SEQ_BITS)) + LD_ID_EPOCH_MS;
}

unsigned ld_id_shard(int64_t id)
{
	return (unsigned)((id >> SEQ_BITS) & (LD_ID_SHARDS - 1));
}

unsigned ld_id_seq(int64_t id)
{
	return (unsigned)(id & LD_ID_SEQ_MAX);
}

void ld_idgen_init(struct ld_idgen *g, unsigned shard, int64_t floor_id)
{
	ld_idgen_init_window(g, shard, floor_id, 0, 1);
}

void ld_idgen_init_window(struct ld_idgen *g, unsigned shard, int64_t floor_id, unsigned window,
			  unsigned windows)
{
	if (windows == 0 || windows > LD_ID_SEQ_MAX + 1 || (windows & (windows - 1)) != 0)
		windows = 1; /* a caller's bug: one window is still correct alone */
	g->shard = shard & (LD_ID_SHARDS - 1);
	g->seq_span = (LD_ID_SEQ_MAX + 1) / windows;
	g->seq_base = (window % windows) * g->seq_span;
	g->last_ms = 0;
	g->seq = g->seq_base;
	if (floor_id > 0) {
		g->last_ms = ld_id_unix_ms(floor_id) - LD_ID_EPOCH_MS;
		if (windows == 1)
			/* Resume just after the floor: same millisecond, next
			 * sequence. */
			g->seq = ld_id_seq(floor_id);
		else
			/* The floor may be another window's, above ours in
			 * its millisecond: resume in the next one. */
			g->seq = g->seq_base + g->seq_span - 1;
	}
}

int64_t ld_idgen_next(struct ld_idgen *g, int64_t now_unix_ms)
{
	int64_t ms = now_unix_ms - LD_ID_EPOCH_MS;

	if (ms > g->last_ms) {
		g->last_ms = ms;
		g->seq = g->seq_base;
	} else if (g->seq < g->seq_base + g->seq_span - 1) {
		/* Same millisecond, or the clock went back: stay on last_ms. */
		g->seq++;
	} else {
		/* Window exhausted: borrow the next millisecond rather than
		 * sleep on the writer thread; the wall clock catches up. */
		g->last_ms++;
		g->seq = g->seq_base;
	}
	return (g->last_ms << (SHARD_BITS + SEQ_BITS)) | ((int64_t)g->shard << SEQ_BITS) |
	       (int64_t)g->seq;
}

int ld_id_parse(const char *s, size_t n, int64_t *out)
{
	int rc = -EINVAL;
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 19 || s[0] == '0')
		goto out;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			goto out;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	/* 19 digits fit in uint64 without overflow; only INT64_MAX matters. */
	if (v > (uint64_t)INT64_MAX)
		goto out;
	*out = (int64_t)v;
	rc = 0;
out:
	return rc;
}

size_t ld_id_format(int64_t id, char *out)
{
	char tmp[21];
	size_t n = 0, i;
	uint64_t v = id < 0 ? 0 : (uint64_t)id;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}
