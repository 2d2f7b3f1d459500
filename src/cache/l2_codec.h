/*
 * l2_codec.h - how the redis level (redis_level.c) spells its keys and
 * values in Redis. A value is "STATUS PROBLEM ETAG\n" then the body: a hit
 * answers with the same status, content type and ETag as the response it
 * was made from. What comes back from Redis is checked, not trusted: anyone
 * with access to Redis can write there.
 */
#ifndef LD_CACHE_L2_CODEC_H
#define LD_CACHE_L2_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "cache/cache.h"

/* ld_l2_key writes PREFIX then which (c: the value, l: its lease), ':',
 * the kind's letter (i, u, l) and the id. snprintf's count. */
int ld_l2_key(char *out, size_t cap, const char *prefix, char which, const struct ld_cache_key *k);

/* ld_l2_parse_key reads a value key back (one ld_l2_key wrote with 'c'):
 * false for anything else (a lease, another prefix, a bad id). */
bool ld_l2_parse_key(const char *prefix, const char *s, size_t n, struct ld_cache_key *k);

/* ld_l2_encode returns v as a Redis value (malloc'd, *len bytes), or NULL
 * (out of memory, an ETag that does not fit). */
char *ld_l2_encode(const struct ld_cache_value *v, size_t *len);

/* ld_l2_decode reads a value: status 200 or 404, problem 0 or 1, an ETag
 * of fewer than etagcap bytes without control bytes (copied to etag); v
 * points into s and etag. false for anything else. */
bool ld_l2_decode(const char *s, size_t n, struct ld_cache_value *v, char *etag, size_t etagcap);

#endif
