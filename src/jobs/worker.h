/*
 * worker.h - `ladder worker`: a separate process that drains the job queue
 * (queue.h) and makes the thumbnails (media.h) into the blob store (blob.h).
 * Any number of them, on any hosts that reach the database and the blob
 * store; each runs --concurrency threads, one job at a time per thread.
 *
 * A job's handler is idempotent by job id: keys are derived from the photo
 * id and version name, versions are upserted, a photo already finished or
 * gone is left alone. Image errors (wrong type, too many pixels, corrupt,
 * truncated, over the time limit) are final for the version they hit and are
 * recorded on the photo as tiers: every version made -> `ready`; some ->
 * `partial` (with why the others failed); none -> `failed`. The original is
 * never touched by a thumbnail job. Other errors (the blob store or the
 * database failing) are retried with backoff until the job is dead; a dead
 * thumbnail job leaves its photo `failed` with the last error.
 *
 * SIGTERM (or SIGINT): /readyz turns 503, threads finish the job they hold
 * (each bounded by --job-timeout per version) and take no more, and the
 * process exits 0. A SIGKILLed worker's jobs return to the queue when their
 * leases run out.
 */
#ifndef LD_WORKER_H
#define LD_WORKER_H

int ld_worker_main(int argc, char **argv);

#endif
