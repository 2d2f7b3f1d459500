/*
 * store.h - the storage interface: one const table of function pointers per
 * driver (SQLite today; PostgreSQL is one more file later), so handlers never
 * know which database they talk to.
 *
 * The contract every driver keeps, and the API relies on:
 *
 * Completion. The caller fills a struct ld_store_op, submits it on its loop
 * thread, and gets op->done(op) back exactly once, on the same loop thread. A
 * driver may complete an op inline, before submit returns (SQLite serves point
 * reads from the loop's own read connection in microseconds), or on a later
 * loop iteration (writes go through a writer thread; a network database
 * completes everything later). Callers must handle both: nothing may touch
 * the op after submit unless done has run. done() may submit the same op
 * again (a new kind, new inputs); the driver has let go of it by then.
 *
 * Bounded time. Every op has a deadline (op->deadline_ns, CLOCK_MONOTONIC as
 * uv_hrtime() gives it; 0 takes submit time + config op_timeout_ms). An op
 * that has not been carried out by then completes with LD_STORE_TIMEOUT, at
 * its deadline, without help from the caller. A write that ends in TIMEOUT was
 * not committed and never will be: a driver times a write out only while it
 * can still guarantee that (queued, waiting for a lock or a connection). A
 * write already committing completes with the commit's result; a driver that
 * loses track of a commit (a connection lost or cut after the COMMIT was
 * sent, a COMMIT that failed on an I/O error) never answers TIMEOUT and
 * never retries the write: it answers LD_STORE_UNAVAILABLE (the database
 * cannot be used now) with op->outcome_unknown set, since the commit may or
 * may not have happened. Every driver states how long past the deadline a
 * committing write can take (sqlite.h, postgres.h); so a graceful shutdown
 * waits a bounded time for the store.
 *
 * Failed writes. A write that ends in any status but OK was not committed
 * and never will be, unless op->outcome_unknown is set; drivers set it only
 * with UNAVAILABLE, and clear it at submit.
 *
 * Read-your-writes. A write's done() with LD_STORE_OK may set
 * op->commit_pos, the store position its commit reached (0: the driver has
 * none to give); so may an IDEM_GET that found a kept answer (a position
 * at or past the kept write's commit). A read submitted with op->min_pos set sees every write
 * whose commit_pos is at most min_pos, from whichever node of the process
 * (or of another process on the same database) the write went through. A
 * driver without replicas (SQLite is one node) sees every acknowledged write
 * in every read, and may ignore min_pos. A driver with replicas may answer a
 * read without min_pos from a replica that lags behind by a bounded time
 * (postgres.h: --max-replica-lag): it may miss the newest writes, even this
 * process's own; with min_pos, only from a replica that has replayed that
 * far, or from the primary.
 *
 * Health. ping() reports what the driver already knows (writer alive, last
 * I/O error, a stuck queue); it never does I/O and never blocks the loop, so
 * /readyz costs nothing.
 *
 * Closing. conn_close may be called with ops still in flight: each of them
 * still gets its done() on that loop (with its real result, or UNAVAILABLE
 * for one the driver had not started), and the conn is freed after the last.
 * The loop must run until its handles are closed.
 *
 * Durability contract: a write op's done() is called with LD_STORE_OK only
 * after the transaction holding it has been committed and synced to disk.
 */
#ifndef LD_STORE_H
#define LD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define LD_HANDLE_MAX	     32
#define LD_DISPLAY_NAME_MAX  128 /* bytes of UTF-8 */
#define LD_PASSWORD_HASH_MAX 128 /* crypto_pwhash_STRBYTES */
#define LD_CONTENT_MAX	     1024
#define LD_LIST_MAX	     100

/* Status codes carried in op->status. */
enum ld_store_status {
	LD_STORE_OK = 0,
	LD_STORE_NOT_FOUND = -1,    /* no such row */
	LD_STORE_CONFLICT = -2,	    /* unique constraint (handle taken) */
	LD_STORE_PRECONDITION = -3, /* expect_version did not match */
	LD_STORE_FORBIDDEN = -4,    /* the row belongs to another user */
	LD_STORE_BUSY = -5,	    /* write queue full: shed load, retry later */
	/* Shutting down, the database unreachable (a connection lost) or
	 * unusable: retry later. A write: see outcome_unknown. */
	LD_STORE_UNAVAILABLE = -6,
	LD_STORE_ERROR = -7,   /* anything else (logged by the driver); a write was not committed */
	LD_STORE_TIMEOUT = -8, /* the deadline passed first; a write was not committed */
};

struct ld_user {
	int64_t id;
	char handle[LD_HANDLE_MAX + 1];
	char display_name[LD_DISPLAY_NAME_MAX + 1];
	char password_hash[LD_PASSWORD_HASH_MAX + 1];
	int64_t created_ms; /* Unix time in milliseconds */
	int64_t updated_ms;
	int64_t version;
};

struct ld_item {
	int64_t id;
	int64_t user_id;
	char content[LD_CONTENT_MAX + 1]; /* NUL-terminated; content_len is authoritative */
	size_t content_len;
	int64_t created_ms;
	int64_t updated_ms;
	int64_t version;
};

/* Photos (metadata only: the bytes are in the blob store, blob.h). */
#define LD_PHOTO_REASON_MAX   200
#define LD_PHOTO_VERSIONS_MAX 4
#define LD_PHOTO_STATUS_LEN   16
#define LD_PHOTO_TYPE_LEN     16

struct ld_photo_version {
	char name[8]; /* "128", "512", "1600" */
	int width, height;
	int64_t size;
	char etag[40]; /* quoted, strong */
};

struct ld_photo {
	int64_t id;
	int64_t user_id;
	char status[LD_PHOTO_STATUS_LEN];     /* uploading, processing, ready, partial, failed */
	char content_type[LD_PHOTO_TYPE_LEN]; /* "" until the upload is complete */
	int64_t size;			      /* bytes of the original */
	int width, height;		      /* of the original, 0 until known */
	char reason[LD_PHOTO_REASON_MAX + 1]; /* why versions are missing, or "" */
	int64_t created_ms;
	int64_t updated_ms;
	int64_t version;
	unsigned nversions; /* PHOTO_GET only */
	struct ld_photo_version versions[LD_PHOTO_VERSIONS_MAX];
};

enum ld_store_op_kind {
	LD_OP_USER_CREATE,	  /* in: user.handle, display_name, password_hash; out: user */
	LD_OP_USER_GET,		  /* in: id; out: user */
	LD_OP_USER_GET_BY_HANDLE, /* in: user.handle; out: user */
	LD_OP_USER_UPDATE,	  /* in: id, user.display_name; out: user */
	LD_OP_ITEM_CREATE,	  /* in: actor_id, item.content/content_len; out: item */
	LD_OP_ITEM_GET,		  /* in: id; out: item */
	LD_OP_ITEM_UPDATE, /* in: id, actor_id, expect_version (0 = any), item.content; out: item */
	LD_OP_ITEM_DELETE, /* in: id, actor_id, expect_version (0 = any) */
	/* in: id (the owner), before_id (0 = newest), limit; out: items.
	 * NOT_FOUND when the owner does not exist, answered in the same op
	 * (one round trip, one snapshot), so callers need no pre-read. */
	LD_OP_ITEM_LIST,
	/* Photos. CREATE: in actor_id, limit (uploads in flight allowed),
	 * expect_version (reused: uploads created before this Unix ms no
	 * longer count); out photo; CONFLICT when the actor already has limit
	 * uploads in flight. COMPLETE: in id, actor_id, photo.content_type,
	 * size, width, height; moves `uploading` to `processing` and queues the
	 * thumbnail job in the same statement; PRECONDITION when the photo is
	 * not uploading. DELETE queues the removal of its objects. LIST: as
	 * ITEM_LIST, into photos. */
	LD_OP_PHOTO_CREATE,
	LD_OP_PHOTO_GET, /* in: id; out: photo with its versions */
	LD_OP_PHOTO_COMPLETE,
	LD_OP_PHOTO_DELETE, /* in: id, actor_id */
	LD_OP_PHOTO_LIST,
	/* Idempotency keys (api/idempotency.h). IDEM_GET: in actor_id,
	 * idem->key/key_len; out idem->fp, idem->status and item (the answer
	 * kept); NOT_FOUND when none is kept or it has expired. IDEM_REAP: in
	 * limit; deletes up to limit expired keys, oldest first, as one write
	 * (SQLite: one statement of a writer batch); out nitems, how many it
	 * deleted. */
	LD_OP_IDEM_GET,
	LD_OP_IDEM_REAP,
	LD_OP_KIND_COUNT
};

/*
 * An idempotency key and the answer kept for it (docs/api.md). A write op
 * (ITEM_CREATE, ITEM_UPDATE, ITEM_DELETE) with op->idem set keeps, when it
 * succeeds, a row (actor_id, key) -> (fp, status, the item as written, or
 * for a delete its id) in the SAME transaction as the write, expiring after
 * the store's idem_retention_ms. A write that fails keeps nothing. When an
 * unexpired row for (actor_id, key) already exists (a request of another
 * process committed it first), the write is undone and ends in
 * LD_STORE_CONFLICT; an expired one is replaced.
 */
#define LD_IDEM_KEY_MAX 255 /* characters of a key (ASCII) */
#define LD_IDEM_FP_LEN	32  /* bytes of a request fingerprint */

struct ld_idem {
	char key[LD_IDEM_KEY_MAX + 1]; /* unescaped; key_len bytes, NUL after */
	size_t key_len;
	unsigned char fp[LD_IDEM_FP_LEN]; /* method, route and body, hashed */
	int status;			  /* the HTTP status of the answer kept */
};

struct ld_store_op {
	enum ld_store_op_kind kind;

	/* Inputs. */
	int64_t id;
	int64_t actor_id;	/* the authenticated user; writes check ownership */
	int64_t expect_version; /* optimistic concurrency for updates and deletes */
	int64_t before_id;	/* list cursor: return ids strictly below it */
	unsigned limit;		/* list page size, 1..LD_LIST_MAX */

	/* Inputs and outputs. */
	struct ld_user user;
	struct ld_item item;

	/* List output: the caller points items at an array of at least limit
	 * entries; the driver fills nitems and sets has_more when another page
	 * exists. */
	struct ld_item *items;
	unsigned nitems;
	bool has_more;

	/* When the op must be over: uv_hrtime() nanoseconds; 0 = the store's
	 * op_timeout_ms from submit. Input only: a resubmitted op gets a new
	 * default deadline. */
	uint64_t deadline_ns;

	/* Photos: the photo ops' input and output; PHOTO_LIST fills photos
	 * (limit entries, nitems of them used) instead of items. */
	struct ld_photo photo;
	struct ld_photo *photos;

	/* Idempotency (see struct ld_idem); NULL for a write without a key.
	 * The caller owns it; it must live until done(). */
	struct ld_idem *idem;

	/* Read-your-writes (above): a read's lowest store position (0: any
	 * within the driver's staleness bound), and a write's commit position
	 * (output; 0: none). Opaque numbers, ordered: a PostgreSQL WAL
	 * position. */
	uint64_t min_pos, commit_pos;

	/* A read whose answer fills a response cache (api.c sets it): served
	 * by the primary, never by a replica within its lag bound, so that a
	 * cache shared by the nodes (Redis) is never filled with a version
	 * older than the last acknowledged write (docs/store.md). A driver
	 * that answered it elsewhere (the primary's breaker open) clears it,
	 * and the answer fills nothing. */
	bool fresh;

	int status; /* enum ld_store_status */
	/* Output, with a write's UNAVAILABLE: its COMMIT was sent (or ran)
	 * and its answer lost, so it may have been committed. false: a failed
	 * write was not committed. */
	bool outcome_unknown;

	/* Set by a driver whose writes go through a writer thread, for the
	 * request's stage clock (obs/stages.h); 0 when the op never reached
	 * it. Monotonic nanoseconds (uv_hrtime): the writer took the op's
	 * batch, began its transaction, and its COMMIT returned. */
	uint64_t t_taken_ns, t_commit_ns, t_committed_ns;

	/* Completion, always on the submitting loop thread. */
	void (*done)(struct ld_store_op *op);
	void *udata;

	/* Driver private. */
	struct ld_store_op *next;
	void *conn;
	uint64_t due_ns;  /* the deadline in force */
	bool full_budget; /* submitted with (nearly) the store's whole timeout */
};

struct ld_store_config {
	const char *data_dir;	       /* SQLite: database at data_dir/ladder.db */
	unsigned write_queue_max;      /* ops waiting for the writer; more -> BUSY (8192) */
	unsigned write_batch_max;      /* ops per transaction (1024) */
	unsigned busy_timeout_ms;      /* SQLite busy timeout (5000) */
	bool synchronous_full;	       /* fsync on every commit (true; false only for tests) */
	unsigned op_timeout_ms;	       /* deadline of an op that sets none (2000) */
	uint64_t test_commit_delay_us; /* TEST ONLY: sleep this long before every COMMIT */
	uint64_t idem_retention_ms;    /* how long an idempotency key is kept (24 h) */
};

void ld_store_config_default(struct ld_store_config *cfg);

/* Counters a driver keeps for /metrics and readiness. */
struct ld_store_stats {
	uint64_t commits; /* transactions committed */
	uint64_t committed_ops;
	uint64_t errors;      /* ops that ended in LD_STORE_ERROR or UNAVAILABLE */
	uint64_t timeouts;    /* ops that ended in LD_STORE_TIMEOUT */
	unsigned queue_depth; /* ops waiting for the writer right now */
	bool healthy;	      /* false after an I/O error that needs a restart */
};

struct ld_buf;
struct ld_json;
struct ld_store;      /* one per process */
struct ld_store_conn; /* one per loop thread */

struct ld_store_vt {
	const char *name;
	/* open creates or upgrades the database (migrations) and starts the
	 * writer; errors are written to err. */
	int (*open)(const struct ld_store_config *cfg, struct ld_store **out, char *err,
		    size_t errlen);
	/* conn_open attaches a loop thread; call on that thread. */
	int (*conn_open)(struct ld_store *s, uv_loop_t *loop, struct ld_store_conn **out);
	/* submit starts op; done() is always called exactly once, by the op's
	 * deadline (see the top of this file). */
	void (*submit)(struct ld_store_conn *c, struct ld_store_op *op);
	/* ping reports the health the driver already knows (for /readyz): 0
	 * when ops can be served, -EIO when not. No I/O, never blocks. */
	int (*ping)(struct ld_store_conn *c);
	/* conn_close detaches a loop. Ops in flight still complete (done() on
	 * this loop); the conn goes after the last. It closes libuv handles, so
	 * the loop must run until they are closed. */
	void (*conn_close)(struct ld_store_conn *c);
	void (*stats)(struct ld_store *s, struct ld_store_stats *out);
	/* close finishes every queued write (each by its deadline), stops the
	 * writer and closes the database. Call after every conn is closed. */
	void (*close)(struct ld_store *s);
	/* render_metrics appends the driver's own /metrics series to out
	 * (NULL: none). Any thread; no I/O. */
	int (*render_metrics)(struct ld_store *s, struct ld_buf *out);
	/* render_stats writes the driver's own members into /debug/stats'
	 * store object (NULL: none). Any thread; no I/O. */
	void (*render_stats)(struct ld_store *s, struct ld_json *j);
};

/* ld_store_driver returns the driver called name ("sqlite", or the test
 * driver "sqlite-deferred"), or NULL. */
const struct ld_store_vt *ld_store_driver(const char *name);

/* ld_store_status_name returns "ok", "not_found", ... for logs. */
const char *ld_store_status_name(int status);

#endif
