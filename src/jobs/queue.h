/*
 * queue.h - the job queue a worker process drains: jobs live in a table of
 * the primary store (SQLite: data_dir/ladder.db, queue_sqlite.c; PostgreSQL:
 * the primary, with `FOR UPDATE SKIP LOCKED`, queue_pg.c). Jobs are inserted
 * by the store itself, in the transaction that changes their photo (see
 * migration 2 of either driver), never through this interface.
 *
 * Life of a job: claim takes the oldest ready job whose time has come and
 * leases it to this queue's owner until now + lease_ms, counting one more
 * attempt. Then exactly one of:
 *   - complete: the job is deleted, and the outcome it carries (a photo's
 *     versions and status) is written in the same transaction;
 *   - fail: back to ready at retry_at_ms, or `dead` (kept with its last
 *     error) once attempts reached max_attempts;
 *   - release: back to ready now, the attempt not counted (graceful drain).
 * Each of them applies only while the lease is still this owner's; after the
 * lease ran out and another worker claimed the job it is -ESTALE and changes
 * nothing, which is what makes a job complete once even when a worker that
 * was thought dead comes back. A worker that dies holds its jobs only until
 * their leases run out: claim first returns expired leases to ready.
 *
 * Handlers must be idempotent by job id (a job may run again after a crash
 * between the work and complete): thumbnail keys are derived from the photo
 * id and version name, and versions are upserted.
 *
 * Errors: 0 or a negative errno; -EAGAIN from claim when no job is ready;
 * -ESTALE when the lease is no longer ours; -EIO for a database error (the
 * message is logged). Times are Unix milliseconds, passed in so tests can
 * drive the clock.
 *
 * Threading: one ld_queue per thread (it owns a database connection).
 */
#ifndef LD_QUEUE_H
#define LD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LD_JOB_KIND_MAX	    32
#define LD_JOB_OWNER_MAX    64
#define LD_JOB_ERROR_MAX    200
#define LD_PHOTO_VERSIONS   3
#define LD_PHOTO_STATUS_MAX 16
#define LD_PHOTO_TYPE_MAX   16

struct ld_job {
	int64_t id;
	char kind[LD_JOB_KIND_MAX + 1]; /* "thumbnail", "remove_objects" */
	int64_t subject;		/* the photo id */
	unsigned attempts;		/* including the one this claim started */
};

/* A photo as the worker sees it. */
struct ld_job_photo {
	int64_t id;
	int64_t user_id;
	char status[LD_PHOTO_STATUS_MAX + 1];
	char content_type[LD_PHOTO_TYPE_MAX + 1];
	int64_t size;
};

struct ld_photo_version_row {
	char name[16]; /* "128", "512", "1600" */
	int width, height;
	int64_t size;
	char etag[40];
};

/* What a thumbnail job found: recorded by complete, with the job's deletion,
 * in one transaction. Only a photo still `processing` is changed. */
struct ld_photo_outcome {
	int64_t photo_id;
	const char *status; /* "ready", "partial" or "failed" */
	const char *reason; /* "" when ready */
	int width, height;  /* of the original, 0 when unknown */
	unsigned nversions;
	struct ld_photo_version_row versions[LD_PHOTO_VERSIONS];
};

struct ld_queue_config {
	const char *data_dir;	  /* sqlite */
	const char *conninfo;	  /* postgres: the primary, a libpq conninfo (a secret) */
	const char *owner;	  /* lease owner: "host:pid:n", unique per worker thread */
	int64_t lease_ms;	  /* 60000 */
	unsigned max_attempts;	  /* 5: the attempt that reaches it and fails makes the job dead */
	unsigned busy_timeout_ms; /* 5000 */
	bool synchronous_full;	  /* true (postgres: false sets synchronous_commit off) */
	uint64_t connect_timeout_ms; /* postgres: one connection attempt (5000) */
};

void ld_queue_config_default(struct ld_queue_config *cfg);

struct ld_queue_stats {
	int64_t ready;	       /* jobs ready (whatever their run_at) */
	int64_t leased;	       /* jobs under a lease */
	int64_t dead;	       /* jobs out of attempts */
	int64_t oldest_age_ms; /* now - run_at of the oldest ready job due; 0 when none */
};

struct ld_queue;

struct ld_queue_vt {
	const char *name;
	int (*open)(const struct ld_queue_config *cfg, struct ld_queue **out, char *err,
		    size_t errlen);
	int (*claim)(struct ld_queue *q, int64_t now_ms, struct ld_job *out);
	int (*complete)(struct ld_queue *q, const struct ld_job *job, int64_t now_ms,
			const struct ld_photo_outcome *outcome);
	/* fail: when this failure makes the job dead and dead_outcome is not
	 * NULL, the outcome (the photo `failed`, with why) is recorded in the
	 * same transaction, so a photo never stays `processing` forever. */
	int (*fail)(struct ld_queue *q, const struct ld_job *job, int64_t now_ms,
		    int64_t retry_at_ms, const char *error,
		    const struct ld_photo_outcome *dead_outcome, bool *dead);
	int (*release)(struct ld_queue *q, const struct ld_job *job, int64_t now_ms);
	/* photo reads the job's photo: -ENOENT when it is gone. */
	int (*photo)(struct ld_queue *q, int64_t id, struct ld_job_photo *out);
	int (*stats)(struct ld_queue *q, int64_t now_ms, struct ld_queue_stats *out);
	void (*close)(struct ld_queue *q);
};

extern const struct ld_queue_vt ld_queue_sqlite_vt;
extern const struct ld_queue_vt ld_queue_pg_vt;

/*
 * ld_job_backoff_ms: the delay before retry number `attempt` (1 = after the
 * first failure), "full jitter": uniform in [0, min(cap_ms, base_ms *
 * 2^(attempt-1))], drawn from rnd (uniform in [0, 1)). Spreading retries
 * over the whole window keeps a burst of failures from coming back as a
 * burst.
 */
int64_t ld_job_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, double rnd);

#endif
