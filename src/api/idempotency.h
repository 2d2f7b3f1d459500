/*
 * idempotency.h - Idempotency-Key for the item writes (docs/api.md), after
 * draft-ietf-httpapi-idempotency-key-header: a client sends a key it made up
 * (a Structured Fields string, 1..255 characters) with POST /v1/items, PUT and
 * DELETE /v1/items/{id}, and may retry the request with the same key as often
 * as it likes; only the first one that succeeds writes.
 *
 * The life of a keyed request, on its loop thread:
 *   1. ld_api_idem_submit (instead of ld_api_submit, once the request is
 *      authenticated and its body valid): a malformed key is a 400; the
 *      request's fingerprint (method, path, body) is taken.
 *   2. The (user, key) pair is registered as in flight in this process; a
 *      second request with the pair while the first is in flight gets 409.
 *      Then the store is asked for the answer kept for the key:
 *      one with the same fingerprint is replayed (with Idempotent-Replayed:
 *      true, nothing written), one with another fingerprint is a 422. With
 *      none, the write goes to the store carrying the key, which keeps the
 *      answer in the write's own transaction (store.h, struct ld_idem).
 *   3. The registration ends just before the answer is sent, so a retry
 *      that comes after an answer (or a lost one) finds the key kept.
 * A write that fails keeps nothing, so a retry is processed afresh. Across
 * processes sharing a PostgreSQL database the store's unique key is the
 * guard: the second of two concurrent writes is undone and answered 409.
 *
 * Expired keys are deleted in the background, on loop 0, a batch at a time
 * (ld_api_idem_reaper_*). Thread safety: the registry and the counters are
 * shared by the loops (a mutex, atomics); everything else is per request.
 */
#ifndef LD_API_IDEMPOTENCY_H
#define LD_API_IDEMPOTENCY_H

#include <stdint.h>

#include "base/buf.h"
#include "store/store.h"

struct ld_api_req;
struct ld_api_loop;

/* The [idempotency] settings of serve. */
struct ld_idem_config {
	uint64_t retention_ms;	   /* how long a key is kept (24h) */
	uint64_t reap_interval_ms; /* how often loop 0 looks for expired keys (1m) */
	unsigned reap_batch;	   /* keys deleted per transaction (256) */
};
extern struct ld_idem_config ld_idem_cfg;

/* ld_idem_register adds [idempotency] to serve's settings; call before
 * ld_config_load. 0 or a negative errno. */
int ld_idem_register(void);

/* ld_api_idem_submit sends q->op (a filled item write, the request
 * authenticated and its body valid) to the store as ld_api_submit does, and
 * through the steps above when the request has an Idempotency-Key: a
 * malformed one (not one sf-string of 1..255 characters, or more than one
 * field line) is answered 400 here. status is the HTTP status done answers
 * with on success (201, 200, 204), which a replay answers with too. done is
 * called only when the write went to the store. */
void ld_api_idem_submit(struct ld_api_req *q, int status, void (*done)(struct ld_store_op *op));

/* ld_idem_key_parse reads an Idempotency-Key field value (OWS trimmed): one
 * Structured Fields sf-string, with no parameters, of 1 to LD_IDEM_KEY_MAX
 * characters. Writes the unescaped key and a NUL to out and returns its
 * length, or returns -1 (out then holds no meaning). Pure; any thread. */
int ld_idem_key_parse(const char *v, size_t n, char out[LD_IDEM_KEY_MAX + 1]);

/* ld_api_item_replay answers with an item write's kept answer: status 201
 * (with Location) or 200, the item's JSON and ETag; 204 with no body. In
 * items.c. */
void ld_api_item_replay(struct ld_api_req *q, int status, const struct ld_item *it);

/* The reaper: one per process, on the loop whose index is 0. start arms its
 * timer on that loop; stop (before the loop's store conn is closed) ends
 * it, and its memory goes once its timer is closed and its op is back. */
int ld_api_idem_reaper_start(struct ld_api_loop *al, uv_loop_t *loop);
void ld_api_idem_reaper_stop(struct ld_api_loop *al);

/* ld_api_idem_metrics appends the ladder_idempotency_* series to out. */
void ld_api_idem_metrics(struct ld_buf *out);

#endif
