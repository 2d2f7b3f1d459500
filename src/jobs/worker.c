/*
 * worker.c - `ladder worker`: options, the job threads, the thumbnail and
 * removal handlers, and a small HTTP server for /healthz, /readyz and
 * /metrics. Contract in worker.h.
 */
#include "jobs/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "base/config.h"
#include "blob/blob.h"
#include "blob/blob_opts.h"
#include "http/server.h"
#include "http/status.h"
#include "jobs/queue.h"
#include "jobs/tiers.h"
#include "media/media.h"
#include "media/thumbproc.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "store/postgres.h"

#define WORKER_THREADS_MAX 256
#define ORIGINAL_MAX	   ((size_t)256 << 20) /* the API's upload cap is far below */

struct worker_opts {
	char listen_host[256];
	unsigned listen_port;
	char data_dir[1024];
	char store[16];
	unsigned concurrency;
	uint64_t lease_ms;
	unsigned max_attempts;
	uint64_t backoff_base_ms;
	uint64_t backoff_max_ms;
	uint64_t poll_ms;
	uint64_t max_pixels;
	uint64_t job_timeout_ms;
	uint64_t job_memory;
	bool sync;
	bool log_requests;
};

/* The versions every photo gets, small to large: the small ones are the
 * ones a page shows first, and the cheapest to make. */
static const struct {
	const char *name;
	int side;
} versions[LD_PHOTO_VERSIONS] = {{"128", 128}, {"512", 512}, {"1600", 1600}};

/* ---- metrics ------------------------------------------------------------- */

enum { KIND_THUMBNAIL, KIND_REMOVE, KIND_OTHER, NKINDS };
static const char *const kind_names[NKINDS] = {"thumbnail", "remove_objects", "other"};
enum { OUT_COMPLETED, OUT_RETRIED, OUT_DEAD, OUT_RELEASED, OUT_STALE, NOUTCOMES };
static const char *const outcome_names[NOUTCOMES] = {"completed", "retried", "dead", "released",
						     "stale"};
#define NBUCKETS 12
static const double bucket_s[NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					  0.5,	 1,    2.5,   5,    10,	 30};

static struct {
	_Atomic uint64_t jobs[NKINDS][NOUTCOMES];
	_Atomic uint64_t attempts;
	_Atomic uint64_t thumb_ok[LD_PHOTO_VERSIONS], thumb_failed[LD_PHOTO_VERSIONS];
	_Atomic uint64_t thumb_bucket[LD_PHOTO_VERSIONS][NBUCKETS + 1];
	_Atomic uint64_t thumb_sum_us[LD_PHOTO_VERSIONS];
	_Atomic uint64_t thumb_count[LD_PHOTO_VERSIONS];
} wm;

static void observe_thumb(unsigned v, uint64_t ns, bool ok)
{
	double s = (double)ns / 1e9;
	unsigned b = 0;

	while (b < NBUCKETS && s > bucket_s[b])
		b++;
	atomic_fetch_add_explicit(&wm.thumb_bucket[v][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&wm.thumb_sum_us[v], ns / 1000, memory_order_relaxed);
	atomic_fetch_add_explicit(&wm.thumb_count[v], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(ok ? &wm.thumb_ok[v] : &wm.thumb_failed[v], 1,
				  memory_order_relaxed);
}

static unsigned kind_index(const char *kind)
{
	if (strcmp(kind, "thumbnail") == 0)
		return KIND_THUMBNAIL;
	if (strcmp(kind, "remove_objects") == 0)
		return KIND_REMOVE;
	return KIND_OTHER;
}

static void count_job(const struct ld_job *j, unsigned outcome)
{
	atomic_fetch_add_explicit(&wm.jobs[kind_index(j->kind)][outcome], 1, memory_order_relaxed);
}

/* ---- the process --------------------------------------------------------- */

static struct worker_opts opts;
static struct ld_blob_opts blob_opts;
static const struct ld_blob_vt *blob_vt = &ld_blob_fs_vt;
static const struct ld_queue_vt *queue_vt = &ld_queue_sqlite_vt;
static struct ld_blob_store *blobs;
static _Atomic bool stopping;
static uv_mutex_t stop_mu;
static uv_cond_t stop_cv;
static char hostname[64];

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* stop_jobs tells the job threads to take no more jobs and wakes the ones
 * napping. The server's on_drain hook: the threads stop when the signal
 * arrives, not once the HTTP drain is over. */
static void stop_jobs(void *arg)
{
	(void)arg;
	uv_mutex_lock(&stop_mu);
	atomic_store(&stopping, true);
	uv_cond_broadcast(&stop_cv);
	uv_mutex_unlock(&stop_mu);
}

/* nap waits up to ms, or less when the process starts stopping. */
static void nap(uint64_t ms)
{
	uv_mutex_lock(&stop_mu);
	if (!atomic_load(&stopping))
		(void)uv_cond_timedwait(&stop_cv, &stop_mu, ms * 1000000ull);
	uv_mutex_unlock(&stop_mu);
}

static void log_job(const char *level, const char *msg, const struct ld_job *j, const char *detail)
{
	char id[24], subject[24], attempts[16];
	const char *kv[] = {"job_id", id,	  "kind",   j->kind,  "subject",
			    subject,  "attempts", attempts, "detail", detail ? detail : "",
			    NULL};

	snprintf(id, sizeof(id), "%" PRId64, j->id);
	snprintf(subject, sizeof(subject), "%" PRId64, j->subject);
	snprintf(attempts, sizeof(attempts), "%u", j->attempts);
	ld_log_event(level, msg, kv);
}

static void key_of(char *out, size_t cap, int64_t photo, const char *name)
{
	if (strcmp(name, "original") == 0)
		snprintf(out, cap, "photos/%" PRId64 "/original", photo);
	else
		snprintf(out, cap, "photos/%" PRId64 "/%s.jpg", photo, name);
}

/* etag_of is a strong validator of a version's bytes (they never change,
 * so it is also what a CDN keys on). */
static void etag_of(const void *p, size_t n, char *out, size_t cap)
{
	unsigned char h[8];
	char hex[17];

	crypto_generichash(h, sizeof(h), p, n, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	snprintf(out, cap, "\"%s\"", hex);
}

/* Results of one job run: retry says the failure was not the image's. */
struct run {
	struct ld_photo_outcome out;
	char reason[LD_JOB_ERROR_MAX + 1];
	char error[LD_JOB_ERROR_MAX + 1];
	bool retry;
};

/* Each job thread's thumbnailer child (thumbproc.h): the limits of a job
 * hold there whatever libvips does. */
static _Thread_local struct ld_thumbproc tproc;

static void thumbnail(struct ld_queue *q, const struct ld_job *j, struct run *r)
{
	const struct ld_thumbproc_limits lim = {
	    opts.max_pixels, (double)opts.job_timeout_ms / 1000.0, opts.job_memory};
	struct ld_job_photo p;
	char key[LD_BLOB_KEY_MAX + 1], verr[LD_PHOTO_VERSIONS][160], herr[160] = "";
	char *orig = NULL;
	size_t len = 0, outlen = 0;
	unsigned i, made = 0;
	void *thumb;
	int rc;

	r->out.photo_id = j->subject;
	rc = queue_vt->photo(q, j->subject, &p);
	if (rc == -ENOENT || (rc == 0 && strcmp(p.status, "processing") != 0)) {
		/* Deleted meanwhile, or finished by an earlier run of this
		 * very job: nothing to do, and nothing to record. */
		r->out.photo_id = 0;
		return;
	}
	if (rc != 0) {
		snprintf(r->error, sizeof(r->error), "reading the photo: %.100s", strerror(-rc));
		r->retry = true;
		return;
	}
	key_of(key, sizeof(key), j->subject, "original");
	rc = blob_vt->get(blobs, key, ORIGINAL_MAX, &orig, &len);
	if (rc != 0) {
		snprintf(r->error, sizeof(r->error), "reading the original: %.100s", strerror(-rc));
		r->retry = true;
		return;
	}
	/* The size of the original, for the photo's metadata (the API checked
	 * the header too; a worker trusts nothing it did not check itself),
	 * read by the child that makes the versions. */
	rc = ld_thumbproc_load(&tproc, orig, len, &lim, &r->out.width, &r->out.height, herr,
			       sizeof(herr));
	if (rc == -EAGAIN) {
		snprintf(r->error, sizeof(r->error), "%.200s", herr);
		r->retry = true;
		goto out;
	}
	if (rc == -ETIMEDOUT || rc == -ENOMEM) {
		/* Over a limit on the header already: every version would be. */
		for (i = 0; i < LD_PHOTO_VERSIONS; i++)
			snprintf(verr[i], sizeof(verr[i]), "%s", herr);
		made = 0;
		goto tiers;
	}
	if (rc != 0)
		r->out.width = r->out.height = 0;
	for (i = 0; i < LD_PHOTO_VERSIONS; i++) {
		struct ld_photo_version_row *v = &r->out.versions[made];
		uint64_t t0 = uv_hrtime();
		int w = 0, h = 0;

		verr[i][0] = '\0';
		thumb = NULL;
		rc = ld_thumbproc_thumbnail(&tproc, versions[i].side, &lim, &thumb, &outlen, &w, &h,
					    verr[i], sizeof(verr[i]));
		if (rc == -EAGAIN) {
			/* Not the image's doing: the whole job again later. */
			snprintf(r->error, sizeof(r->error), "%.200s", verr[i]);
			r->retry = true;
			goto out;
		}
		observe_thumb(i, uv_hrtime() - t0, rc == 0);
		if (rc != 0)
			continue;
		key_of(key, sizeof(key), j->subject, versions[i].name);
		rc = ld_blob_put(blob_vt, blobs, key, thumb, outlen);
		if (rc == 0) {
			snprintf(v->name, sizeof(v->name), "%s", versions[i].name);
			v->width = w;
			v->height = h;
			v->size = (int64_t)outlen;
			etag_of(thumb, outlen, v->etag, sizeof(v->etag));
			made++;
		}
		free(thumb);
		if (rc != 0) {
			/* The store failed, not the image: try the job again. */
			snprintf(r->error, sizeof(r->error), "writing %.120s: %.60s", key,
				 strerror(-rc));
			r->retry = true;
			goto out;
		}
	}
tiers:
	r->out.nversions = made;
	{
		const char *names[LD_PHOTO_VERSIONS], *errs[LD_PHOTO_VERSIONS];

		for (i = 0; i < LD_PHOTO_VERSIONS; i++) {
			names[i] = versions[i].name;
			errs[i] = verr[i];
		}
		r->out.status =
		    ld_photo_tiers(LD_PHOTO_VERSIONS, names, errs, r->reason, sizeof(r->reason));
	}
	r->out.reason = r->reason;
out:
	free(orig);
}

static void remove_objects(const struct ld_job *j, struct run *r)
{
	char key[LD_BLOB_KEY_MAX + 1];
	unsigned i;
	int rc;

	/* The staging key too: an upload URL stays good until it expires,
	 * so bytes may have come there after complete (docs/photos.md). */
	for (i = 0; i <= LD_PHOTO_VERSIONS + 1; i++) {
		if (i == LD_PHOTO_VERSIONS + 1)
			snprintf(key, sizeof(key), "uploads/%" PRId64 "/original", j->subject);
		else
			key_of(key, sizeof(key), j->subject,
			       i == 0 ? "original" : versions[i - 1].name);
		rc = blob_vt->remove(blobs, key);
		if (rc != 0) {
			snprintf(r->error, sizeof(r->error), "removing %.120s: %.60s", key,
				 strerror(-rc));
			r->retry = true;
			return;
		}
	}
}

static void run_job(struct ld_queue *q, const struct ld_job *j, uint64_t *rnd_state)
{
	struct run r;
	struct ld_photo_outcome gave_up = {0};
	char why[LD_JOB_ERROR_MAX + 1];
	bool dead = false;
	int64_t now, delay;
	int rc;

	memset(&r, 0, sizeof(r));
	atomic_fetch_add_explicit(&wm.attempts, 1, memory_order_relaxed);
	if (strcmp(j->kind, "thumbnail") == 0) {
		thumbnail(q, j, &r);
	} else if (strcmp(j->kind, "remove_objects") == 0) {
		remove_objects(j, &r);
	} else {
		snprintf(r.error, sizeof(r.error), "unknown job kind");
		r.retry = true;
	}
	now = now_ms();
	if (!r.retry) {
		rc = queue_vt->complete(q, j, now, r.out.photo_id ? &r.out : NULL);
		if (rc == 0) {
			count_job(j, OUT_COMPLETED);
			log_job("info", "job completed", j, r.out.status ? r.out.status : "");
			return;
		}
		if (rc == -ESTALE) {
			count_job(j, OUT_STALE);
			log_job("info", "job lease lost; another worker owns it", j, NULL);
			return;
		}
		snprintf(r.error, sizeof(r.error), "recording the outcome: %.100s", strerror(-rc));
	}
	/* Full jitter from a per-thread generator: retries of jobs that failed
	 * together spread out. */
	*rnd_state = *rnd_state * 6364136223846793005ull + 1442695040888963407ull;
	delay = ld_job_backoff_ms(j->attempts, (int64_t)opts.backoff_base_ms,
				  (int64_t)opts.backoff_max_ms,
				  (double)(*rnd_state >> 11) / 9007199254740992.0);
	if (strcmp(j->kind, "thumbnail") == 0) {
		snprintf(why, sizeof(why), "gave up after %u attempts: %.160s", j->attempts,
			 r.error);
		gave_up.photo_id = j->subject;
		gave_up.status = "failed";
		gave_up.reason = why;
	}
	rc = queue_vt->fail(q, j, now, now + delay, r.error, gave_up.photo_id ? &gave_up : NULL,
			    &dead);
	if (rc == 0) {
		count_job(j, dead ? OUT_DEAD : OUT_RETRIED);
		log_job(dead ? "error" : "warn", dead ? "job dead" : "job failed; will retry", j,
			r.error);
	} else if (rc == -ESTALE) {
		count_job(j, OUT_STALE);
	} else {
		log_job("error", "job failure could not be recorded", j, r.error);
	}
}

struct job_thread {
	uv_thread_t t;
	unsigned index;
	struct ld_queue *q;
};

static void job_thread_main(void *arg)
{
	struct job_thread *jt = arg;
	struct ld_job j;
	uint64_t rnd = (uint64_t)getpid() * 2654435761u + jt->index + (uint64_t)now_ms();
	int rc;

	ld_thumbproc_init(&tproc, "/proc/self/exe", 1);
	while (!atomic_load(&stopping)) {
		rc = queue_vt->claim(jt->q, now_ms(), &j);
		if (rc == -EAGAIN || rc != 0) {
			/* Nothing due (or the database is busy or failing: the
			 * error is logged, and the next poll tries again). */
			nap(opts.poll_ms);
			continue;
		}
		/* The signal came while the claim ran: the job was not
		 * started, so it goes back with its attempt, for the next
		 * worker to take now rather than when the lease runs out. */
		if (atomic_load(&stopping)) {
			rc = queue_vt->release(jt->q, &j, now_ms());
			if (rc == 0) {
				count_job(&j, OUT_RELEASED);
				log_job("info", "job released: stopping", &j, NULL);
			}
			break;
		}
		run_job(jt->q, &j, &rnd);
	}
	ld_thumbproc_close(&tproc);
}

/* ---- health and metrics -------------------------------------------------- */

enum { R_NONE, R_HEALTHZ, R_READYZ, R_METRICS, NROUTES };
static const char *const route_names[NROUTES] = {"unmatched", "/healthz", "/readyz", "/metrics"};

static void render_worker_metrics(struct ld_buf *b)
{
	struct ld_queue_config qc;
	struct ld_queue_stats st;
	struct ld_queue *q = NULL;
	char err[256];
	unsigned k, o, v, i;
	uint64_t cum;

	ld_buf_puts(b, "# HELP ladder_jobs_total Jobs this worker finished, by kind and outcome.\n"
		       "# TYPE ladder_jobs_total counter\n");
	for (k = 0; k < NKINDS; k++)
		for (o = 0; o < NOUTCOMES; o++)
			ld_buf_printf(b,
				      "ladder_jobs_total{kind=\"%s\",outcome=\"%s\"} %" PRIu64 "\n",
				      kind_names[k], outcome_names[o], atomic_load(&wm.jobs[k][o]));
	ld_buf_printf(b,
		      "# HELP ladder_job_attempts_total Job runs this worker started.\n"
		      "# TYPE ladder_job_attempts_total counter\n"
		      "ladder_job_attempts_total %" PRIu64 "\n",
		      atomic_load(&wm.attempts));
	ld_buf_puts(b, "# HELP ladder_thumbnail_seconds Time to make one version, by version.\n"
		       "# TYPE ladder_thumbnail_seconds histogram\n");
	for (v = 0; v < LD_PHOTO_VERSIONS; v++) {
		cum = 0;
		for (i = 0; i <= NBUCKETS; i++) {
			cum += atomic_load(&wm.thumb_bucket[v][i]);
			if (i < NBUCKETS)
				ld_buf_printf(b,
					      "ladder_thumbnail_seconds_bucket{version=\"%s\","
					      "le=\"%g\"} %" PRIu64 "\n",
					      versions[v].name, bucket_s[i], cum);
			else
				ld_buf_printf(b,
					      "ladder_thumbnail_seconds_bucket{version=\"%s\","
					      "le=\"+Inf\"} %" PRIu64 "\n",
					      versions[v].name, cum);
		}
		ld_buf_printf(b, "ladder_thumbnail_seconds_sum{version=\"%s\"} %.6f\n",
			      versions[v].name, (double)atomic_load(&wm.thumb_sum_us[v]) / 1e6);
		ld_buf_printf(b, "ladder_thumbnail_seconds_count{version=\"%s\"} %" PRIu64 "\n",
			      versions[v].name, atomic_load(&wm.thumb_count[v]));
	}
	ld_buf_puts(b, "# HELP ladder_thumbnails_total Versions made or failed, by version.\n"
		       "# TYPE ladder_thumbnails_total counter\n");
	for (v = 0; v < LD_PHOTO_VERSIONS; v++)
		ld_buf_printf(b,
			      "ladder_thumbnails_total{version=\"%s\",result=\"ok\"} %" PRIu64 "\n"
			      "ladder_thumbnails_total{version=\"%s\",result=\"failed\"} %" PRIu64
			      "\n",
			      versions[v].name, atomic_load(&wm.thumb_ok[v]), versions[v].name,
			      atomic_load(&wm.thumb_failed[v]));
	/* The queue as a whole, read at scrape time (a few index searches). */
	ld_queue_config_default(&qc);
	qc.data_dir = opts.data_dir;
	qc.conninfo = ld_pg_settings.primary;
	qc.connect_timeout_ms = ld_pg_settings.connect_timeout_ms;
	qc.owner = "metrics";
	if (queue_vt->open(&qc, &q, err, sizeof(err)) == 0 &&
	    queue_vt->stats(q, now_ms(), &st) == 0) {
		ld_buf_printf(b,
			      "# HELP ladder_queue_jobs Jobs in the queue, by state.\n"
			      "# TYPE ladder_queue_jobs gauge\n"
			      "ladder_queue_jobs{state=\"ready\"} %" PRId64 "\n"
			      "ladder_queue_jobs{state=\"leased\"} %" PRId64 "\n"
			      "ladder_queue_jobs{state=\"dead\"} %" PRId64 "\n"
			      "# HELP ladder_queue_oldest_ready_seconds Age of the oldest job "
			      "that is due and not taken.\n"
			      "# TYPE ladder_queue_oldest_ready_seconds gauge\n"
			      "ladder_queue_oldest_ready_seconds %.3f\n",
			      st.ready, st.leased, st.dead, (double)st.oldest_age_ms / 1000.0);
	}
	queue_vt->close(q);
}

static void respond_text(struct ld_req *r, int status, const char *text)
{
	r->content_type = "text/plain; charset=utf-8";
	ld_buf_puts(&r->out_body, text);
	ld_req_respond(r, status);
}

static void on_request(struct ld_req *r, void *arg)
{
	const char *p = r->h.path;
	size_t n = r->h.path_len;

	r->route = R_NONE;
	if (r->h.method != LD_HTTP_GET && r->h.method != LD_HTTP_HEAD) {
		ld_req_header(r, "Allow", "GET, HEAD");
		respond_text(r, 405, "only GET\n");
		return;
	}
	if (n == 8 && memcmp(p, "/healthz", 8) == 0) {
		r->route = R_HEALTHZ;
		respond_text(r, 200, "ok\n");
	} else if (n == 7 && memcmp(p, "/readyz", 7) == 0) {
		r->route = R_READYZ;
		if (ld_server_draining(r->loop))
			respond_text(r, 503, "draining\n");
		else
			respond_text(r, 200, "ready\n");
	} else if (n == 8 && memcmp(p, "/metrics", 8) == 0) {
		r->route = R_METRICS;
		r->content_type = "text/plain; version=0.0.4; charset=utf-8";
		ld_metrics_render(&r->out_body);
		render_worker_metrics(&r->out_body);
		ld_req_respond(r, 200);
	} else {
		respond_text(r, 404, "not found\n");
	}
}

static void on_http_error(struct ld_req *r, int status, const char *detail, void *arg)
{
	r->route = R_NONE;
	respond_text(r, status, detail);
}

static int metrics_init(void)
{
	static const char *methods[LD_HTTP_METHOD_COUNT];
	static unsigned statuses[LD_HTTP_STATUS_MAX];
	struct ld_metrics_labels l = {
	    .routes = route_names,
	    .nroutes = NROUTES,
	    .methods = methods,
	    .nmethods = LD_HTTP_METHOD_COUNT,
	    .statuses = statuses,
	};

	for (unsigned i = 0; i < LD_HTTP_METHOD_COUNT; i++)
		methods[i] = ld_http_method_name((enum ld_http_method)i);
	l.nstatuses = ld_http_status_codes(statuses, LD_HTTP_STATUS_MAX);
	return ld_metrics_init(&l);
}

/* ---- options ------------------------------------------------------------- */

#define O(field) offsetof(struct worker_opts, field), sizeof(((struct worker_opts *)0)->field), 0

/* clang-format off */
static const struct ld_opt worker_opts_table[] = {
    {"data", 0, "data", "LADDER_DATA", LD_OPT_STR, O(data_dir), "./data", 1, 0, NULL, 0, NULL,
     NULL, "DIR", "the data directory of the box (database and blobs)"},
    {"store", 0, "store", "LADDER_STORE", LD_OPT_STR, O(store), "sqlite", 1, 0,
     "sqlite|postgres", 0, NULL, NULL, "NAME",
     "where the job queue is: sqlite (in DATA) or postgres (the [postgres] settings, as "
     "serve's)"},
    {"listen", 0, "listen", "LADDER_WORKER_LISTEN", LD_OPT_HOSTPORT,
     offsetof(struct worker_opts, listen_host), sizeof(((struct worker_opts *)0)->listen_host),
     offsetof(struct worker_opts, listen_port), "127.0.0.1:9091", 0, 0, NULL, 0, NULL, NULL,
     "HOST:PORT", "where /healthz, /readyz and /metrics answer"},
    {"concurrency", 'c', "concurrency", "LADDER_WORKER_CONCURRENCY", LD_OPT_UINT, O(concurrency),
     "1", 1, WORKER_THREADS_MAX, NULL, 0, NULL, NULL, "N", "jobs run at once (one thread each)"},
    {"lease", 0, "lease", NULL, LD_OPT_DUR, O(lease_ms), "60s", 100, 86400000, NULL, 0, NULL,
     NULL, "D", "how long a claimed job is ours; then another worker may take it"},
    {"max-attempts", 0, "max_attempts", NULL, LD_OPT_UINT, O(max_attempts), "5", 1, 100, NULL,
     0, NULL, NULL, "N", "runs before a failing job is dead"},
    {"backoff-base", 0, "backoff_base", NULL, LD_OPT_DUR, O(backoff_base_ms), "1s", 0,
     86400000, NULL, 0, NULL, NULL, "D", "retry window after the first failure (doubles)"},
    {"backoff-max", 0, "backoff_max", NULL, LD_OPT_DUR, O(backoff_max_ms), "5m", 0, 86400000,
     NULL, 0, NULL, NULL, "D", "largest retry window"},
    {"poll", 0, "poll", NULL, LD_OPT_DUR, O(poll_ms), "500ms", 1, 60000, NULL, 0, NULL, NULL,
     "D", "wait between claims while the queue is empty"},
    {"max-pixels", 0, "max_pixels", "LADDER_PHOTO_MAX_PIXELS", LD_OPT_U64, O(max_pixels),
     "50000000", 1, 1000000000, NULL, 0, NULL, NULL, "N",
     "largest original, width x height, checked from the header before decoding"},
    {"job-timeout", 0, "job_timeout", NULL, LD_OPT_DUR, O(job_timeout_ms), "10s", 1, 3600000,
     NULL, 0, NULL, NULL, "D",
     "time limit for one version (its process is killed past it)"},
    {"job-memory", 0, "job_memory", NULL, LD_OPT_SIZE, O(job_memory), "1GiB", (uint64_t)64 << 20,
     (uint64_t)64 << 30, NULL, 0, NULL, NULL, "SIZE",
     "address space of the process that makes a job's versions (then the version fails)"},
    {"sync", 0, "sync", "LADDER_SYNC", LD_OPT_BOOL, O(sync), "on", 0, 0, NULL, 0, NULL, NULL,
     "BOOL", "fsync every queue transaction (off only for tests)"},
    {"log-requests", 0, "log_requests", NULL, LD_OPT_BOOL, O(log_requests), "off", 0, 0, NULL,
     0, NULL, NULL, "BOOL", "one JSON line per health or metrics request"},
};
/* clang-format on */

static const struct ld_opt_section worker_section = {
    "worker", worker_opts_table, sizeof(worker_opts_table) / sizeof(worker_opts_table[0]), NULL};

static int parse_opts(int argc, char **argv)
{
	struct ld_optset *set = malloc(sizeof(*set));
	struct ld_args *args = malloc(sizeof(*args));
	char err[512] = "";
	int rc = 1;

	if (!set || !args) {
		fprintf(stderr, "ladder worker: out of memory\n");
		goto out;
	}
	ld_optset_init(set, "worker");
	set->summary = "drain the job queue: thumbnails, and removal of deleted photos' objects";
	set->usage = "[options]";
	set->examples = "  ladder worker --data ./data --concurrency 2\n";
	set->config_file = true;
	set->config_env = "LADDER_CONFIG";
	rc = 2;
	if (ld_optset_add(set, &worker_section, &opts, NULL) < 0 ||
	    ld_optset_add(set, &ld_blob_section, &blob_opts, NULL) < 0 ||
	    ld_optset_add(set, &ld_pg_section, &ld_pg_settings, NULL) < 0 ||
	    ld_optset_defaults(set, err, sizeof(err)) < 0) {
		fprintf(stderr, "ladder worker: option table: %s\n", err);
		goto out;
	}
	rc = ld_optset_parse(set, argc, argv, args, err, sizeof(err));
	if (rc == LD_CONFIG_EXIT_OK) {
		rc = -1;
		goto out;
	}
	if (rc == 0 && args->config)
		rc = ld_optset_file(set, args->config, "--config", err, sizeof(err));
	if (rc == 0)
		rc = ld_optset_env(set, err, sizeof(err));
	if (rc == 0)
		rc = ld_optset_apply(set, args, false, err, sizeof(err));
	if (rc == 0 && args->print) {
		ld_optset_print(set, stdout);
		rc = -1;
		goto out;
	}
	if (rc < 0) {
		fprintf(stderr, "ladder worker: %s\n(see ladder worker --help)\n", err);
		rc = 2;
		goto out;
	}
	/* A job holds its lease through all its versions: a lease shorter
	 * than the worst case would hand a job that is still running to a
	 * second worker. */
	if (opts.lease_ms <= opts.job_timeout_ms * LD_PHOTO_VERSIONS + 1000) {
		fprintf(stderr,
			"ladder worker: --lease: must be longer than %u x --job-timeout plus 1s "
			"(a job's versions run under one lease)\n",
			LD_PHOTO_VERSIONS);
		rc = 2;
		goto out;
	}
	if (strcmp(opts.store, "postgres") == 0) {
		if (!ld_pg_settings.primary[0]) {
			fprintf(stderr,
				"ladder worker: --pg-primary (LADDER_PG_PRIMARY): must be set "
				"with --store postgres\n");
			rc = 2;
			goto out;
		}
		queue_vt = &ld_queue_pg_vt;
	}
	if (opts.backoff_max_ms < opts.backoff_base_ms) {
		fprintf(stderr, "ladder worker: --backoff-max: must not be under --backoff-base\n");
		rc = 2;
		goto out;
	}
	rc = 0;
out:
	free(set);
	free(args);
	return rc;
}

int ld_worker_main(int argc, char **argv)
{
	static struct job_thread threads[WORKER_THREADS_MAX];
	struct ld_server_config sc;
	struct ld_server_app app;
	struct ld_listeners ls = {0};
	struct ld_queue_config qc;
	char err[512] = "", owner[LD_JOB_OWNER_MAX + 1];
	unsigned i, started = 0;
	int rc;

	rc = parse_opts(argc, argv);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	rc = 1;
	if (sodium_init() < 0) {
		fprintf(stderr, "ladder worker: libsodium failed to start\n");
		goto out;
	}
	if (ld_media_init(argv[0], 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "ladder worker: %s\n", err);
		goto out;
	}
	memset(&app, 0, sizeof(app));
	app.route_names = route_names;
	app.nroutes = NROUTES;
	app.on_request = on_request;
	app.on_http_error = on_http_error;
	app.on_drain = stop_jobs;
	memset(&sc, 0, sizeof(sc));
	snprintf(sc.host, sizeof(sc.host), "%s", opts.listen_host);
	sc.port = opts.listen_port;
	sc.threads = 1;
	ld_http_limits_default(&sc.limits);
	sc.max_body = 1024;
	sc.header_timeout_ms = 10000;
	sc.body_timeout_ms = 10000;
	sc.keepalive_timeout_ms = 75000;
	sc.write_timeout_ms = 30000;
	sc.shutdown_timeout_ms = 5000;
	sc.max_connections = 64;
	sc.log_requests = opts.log_requests;
	/* The port first: a taken one fails the start before anything runs. */
	if (ld_server_listen(&sc, &ls, err, sizeof(err)) != 0) {
		fprintf(stderr, "ladder worker: %s\n", err);
		goto out;
	}
	rc = ld_blob_open_opts(&blob_opts, opts.data_dir, &blob_vt, &blobs, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "ladder worker: %s\n", err);
		rc = rc == -EINVAL ? 2 : 1;
		goto out;
	}
	rc = 1;
	if (gethostname(hostname, sizeof(hostname) - 1) != 0)
		snprintf(hostname, sizeof(hostname), "host");
	uv_mutex_init(&stop_mu);
	uv_cond_init(&stop_cv);
	ld_queue_config_default(&qc);
	qc.data_dir = opts.data_dir;
	qc.conninfo = ld_pg_settings.primary;
	qc.connect_timeout_ms = ld_pg_settings.connect_timeout_ms;
	qc.lease_ms = (int64_t)opts.lease_ms;
	qc.max_attempts = opts.max_attempts;
	qc.synchronous_full = opts.sync;
	for (i = 0; i < opts.concurrency; i++) {
		snprintf(owner, sizeof(owner), "%.40s:%ld:%u", hostname, (long)getpid(), i);
		qc.owner = owner;
		threads[i].index = i;
		if (queue_vt->open(&qc, &threads[i].q, err, sizeof(err)) != 0) {
			fprintf(stderr, "ladder worker: %s\n", err);
			goto stop;
		}
	}
	if (metrics_init() != 0) {
		fprintf(stderr, "ladder worker: metrics: too many series\n");
		goto stop;
	}
	for (i = 0; i < opts.concurrency; i++) {
		if (uv_thread_create(&threads[i].t, job_thread_main, &threads[i]) != 0) {
			fprintf(stderr, "ladder worker: cannot start job thread %u\n", i);
			goto stop;
		}
		started++;
	}
	{
		char n[16];
		const char *kv[] = {"data", opts.data_dir, "store", opts.store, "concurrency",
				    n,	    NULL};

		snprintf(n, sizeof(n), "%u", opts.concurrency);
		ld_log_event("info", "worker started", kv);
	}
	/* Blocks until SIGTERM or SIGINT, then drains its own connections. */
	rc = ld_server_run(&sc, &ls, &app, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "ladder worker: %s\n", err);
		rc = 1;
		goto stop;
	}
	rc = 0;
stop:
	stop_jobs(NULL);
	/* Each thread finishes the job it holds and takes no more. */
	for (i = 0; i < started; i++)
		uv_thread_join(&threads[i].t);
	for (i = 0; i < opts.concurrency; i++)
		queue_vt->close(threads[i].q);
	if (rc == 0)
		ld_log_event("info", "worker stopped cleanly", NULL);
out:
	ld_listeners_close(&ls);
	if (blobs)
		blob_vt->close(blobs);
	return rc;
}
