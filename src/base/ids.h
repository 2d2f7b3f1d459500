/*
 * ids.h - 64-bit, time-ordered ids that carry their shard (Instagram's layout).
 *
 *   bit 63      0 (ids are positive int64)
 *   bits 62-22  41 bits: milliseconds since LD_ID_EPOCH_MS (about 69 years)
 *   bits 21-10  13 bits: logical shard (0..8191)
 *   bits  9-0   10 bits: sequence within the millisecond (0..1023)
 *
 * Sorting ids sorts by creation time, so "newest first" is "id DESC" and a
 * keyset cursor is just an id. An item lives on its owner's shard, so the id
 * alone says where to read it.
 */
#ifndef LD_IDS_H
#define LD_IDS_H

#include <stddef.h>
#include <stdint.h>

#define LD_ID_EPOCH_MS 1704067200000LL /* 2024-01-01T00:00:00Z */
#define LD_ID_SHARDS   8192u
#define LD_ID_SEQ_MAX  1023u

/* A generator is owned by one thread (the writer); it is not locked. */
struct ld_idgen {
	unsigned shard;
	int64_t last_ms;   /* milliseconds since the epoch of the last id */
	unsigned seq;	   /* the last id's sequence bits */
	unsigned seq_base; /* this generator's window of the sequence bits: */
	unsigned seq_span; /* [seq_base, seq_base + seq_span) */
};

/* ld_idgen_init starts a generator for shard. floor_id is the largest id
 * already stored (0 if none): the generator never returns an id at or below
 * it, so a clock that stepped back across a restart cannot cause a clash. */
void ld_idgen_init(struct ld_idgen *g, unsigned shard, int64_t floor_id);

/* ld_idgen_init_window is ld_idgen_init for one of several processes that
 * make ids for the same shard at once (app nodes sharing one PostgreSQL):
 * the sequence bits are cut into `windows` windows (a power of two, 1 to
 * 1024) and this generator takes ids only from window `window % windows`,
 * so generators in different windows never make the same id, whatever
 * their clocks say. It still never returns an id at or below floor_id (the
 * largest id any of them had stored) and stays strictly increasing; it
 * borrows the next millisecond once its window is used up, so one
 * generator makes at most 1024 / windows ids per millisecond of its clock
 * on average. */
void ld_idgen_init_window(struct ld_idgen *g, unsigned shard, int64_t floor_id, unsigned window,
			  unsigned windows);

/* ld_idgen_next returns a new id strictly greater than every earlier one. When
 * 1024 ids are used up within one millisecond, or the clock went backwards,
 * it borrows from the next millisecond instead of waiting or repeating. */
int64_t ld_idgen_next(struct ld_idgen *g, int64_t now_unix_ms);

int64_t ld_id_make(int64_t unix_ms, unsigned shard, unsigned seq);
int64_t ld_id_unix_ms(int64_t id);
unsigned ld_id_shard(int64_t id);
unsigned ld_id_seq(int64_t id);

/* ld_id_parse accepts 1-19 decimal digits, no sign, no leading zero, value
 * > 0 and <= INT64_MAX. Returns 0 or -EINVAL. */
int ld_id_parse(const char *s, size_t n, int64_t *out);

/* ld_id_format writes the decimal form and a NUL (out >= 21 bytes); returns
 * the length. */
size_t ld_id_format(int64_t id, char *out);

#endif
