/*
 * deferred.h - "sqlite-deferred", a test driver: the SQLite driver with every
 * completion handed back on a later loop iteration, after 0 to
 * LD_DEFERRED_EXTRA_MAX more iterations chosen by a seeded generator, so the
 * order of completions differs from the order of submits.
 *
 * It exists so that the store tests and the integration suite run the
 * "completes later" path that a network driver takes for every op, reads
 * included, before there is one: a handler that assumes done() ran inside
 * submit, or a conn closed with ops in flight, shows up here. It is for tests
 * only (docs/store.md): it adds latency and a malloc per op.
 *
 * Everything else (open, close, stats, ping, statuses) is the SQLite
 * driver's. done() runs on the submitting loop thread, exactly once; an op
 * submitted after conn_close ends in LD_STORE_UNAVAILABLE, also on a later
 * iteration. The only inline completion is LD_STORE_ERROR when the record
 * for an op cannot be allocated.
 */
#ifndef LD_DEFERRED_H
#define LD_DEFERRED_H

#include "store/store.h"

#define LD_DEFERRED_EXTRA_MAX 3

extern const struct ld_store_vt ld_deferred_vt;

#endif
