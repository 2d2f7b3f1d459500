/*
 * photos.c - the photo routes: start an upload (a signed, short-lived URL
 * to PUT the bytes to), receive the bytes into the blob store, complete the
 * upload (checks, then the store's outbox queues the thumbnail job), read a
 * photo and its versions' URLs, serve a version's bytes (immutable, so a
 * CDN can keep them forever), delete, and a user's newest-first list.
 *
 * The upload body is streamed: for a PUT to a validly signed URL the
 * server's body_sink hook opens a temporary blob and hands it each piece of
 * the body as it arrives (only one read's worth in memory, whatever the
 * size), and the handler commits it (fsync, rename) on libuv's thread pool.
 * Only such a request may carry up to upload_max bytes (body_max); any other
 * keeps the server's max_body. The other blob I/O runs on the thread pool
 * too, never on the loop.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/params.h"
#include "base/b64.h"
#include "base/config.h"
#include "base/ids.h"
#include "base/json.h"
#include "blob/blob.h"
#include "media/media.h"
#include "obs/log.h"

struct ld_photos_config ld_photos_cfg;

#define O(field)                                                                                   \
	offsetof(struct ld_photos_config, field), sizeof(((struct ld_photos_config *)0)->field), 0

/* clang-format off */
static const struct ld_opt photo_opts[] = {
    {"photo-upload-max", 0, "upload_max", "LADDER_PHOTO_UPLOAD_MAX", LD_OPT_SIZE, O(upload_max),
     "20MiB", 1, (uint64_t)256 << 20, NULL, 0, NULL, NULL, "SIZE",
     "largest photo upload (then 413)"},
    {"photo-max-pixels", 0, "max_pixels", "LADDER_PHOTO_MAX_PIXELS", LD_OPT_U64, O(max_pixels),
     "50000000", 1, 1000000000, NULL, 0, NULL, NULL, "N",
     "largest width x height, read from the header before decoding (then 422)"},
    {"photo-uploads", 0, "uploads_in_flight", "LADDER_PHOTO_UPLOADS", LD_OPT_UINT, O(in_flight),
     "4", 1, 1000, NULL, 0, NULL, NULL, "N",
     "uploads a user may have started and not completed (then 429)"},
    {"photo-url-ttl", 0, "upload_url_ttl", NULL, LD_OPT_DUR, O(url_ttl_ms), "15m", 1000,
     86400000, NULL, 0, NULL, NULL, "D", "how long an upload URL stays good"},
};
/* clang-format on */

static const struct ld_opt_section photo_section = {
    "photos", photo_opts, sizeof(photo_opts) / sizeof(photo_opts[0]), NULL};
static unsigned char photo_sources[sizeof(photo_opts) / sizeof(photo_opts[0])];

int ld_photos_register(void)
{
	return ld_config_register(&photo_section, &ld_photos_cfg, photo_sources);
}

static const char *const version_names[] = {"original", "128", "512", "1600"};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void key_of(char *out, size_t cap, int64_t id, const char *name)
{
	if (strcmp(name, "original") == 0)
		snprintf(out, cap, "photos/%" PRId64 "/original", id);
	else
		snprintf(out, cap, "photos/%" PRId64 "/%s.jpg", id, name);
}

/* staging_key: where an upload's bytes go (the fs upload route, the S3
 * presigned PUT). No GET or version URL reaches it; complete moves it to
 * the original's key before it checks the bytes, so the upload URL, good
 * until it expires whatever the photo's status, can never change an
 * original that was checked. */
static void staging_key(char *out, size_t cap, int64_t id)
{
	snprintf(out, cap, "uploads/%" PRId64 "/original", id);
}

/* ---- the upload URL: "/v1/photos/ID/content?expires=S&sig=MAC" ---------- */

/* url_mac is HMAC-SHA256, under one of the token keys, of what the URL
 * grants: a PUT of this photo's bytes until expires. */
static void url_mac(const unsigned char *key, int64_t id, int64_t expires, char *out, size_t cap)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char msg[96];
	int n =
	    snprintf(msg, sizeof(msg), "ladder photo upload\n%" PRId64 "\n%" PRId64, id, expires);

	crypto_auth_hmacsha256(mac, (const unsigned char *)msg, (unsigned long long)n, key);
	ld_b64url_encode(mac, sizeof(mac), out, cap);
}

static void upload_url(const struct ld_api *api, int64_t id, int64_t expires, char *out, size_t cap)
{
	char sig[64];

	url_mac(api->auth.keys[0].key, id, expires, sig, sizeof(sig));
	snprintf(out, cap, "/v1/photos/%" PRId64 "/content?expires=%" PRId64 "&sig=%s", id, expires,
		 sig);
}

/* url_check checks an upload's query against the photo id: 0, or -1 with
 * what is wrong in *why. */
static int url_check(const struct ld_api *api, int64_t id, const char *query, size_t qlen,
		     const char **why)
{
	const char *v, *sv;
	size_t n, sn, i;
	int64_t expires = 0;
	char want[64];
	unsigned k;

	*why = "an upload needs the URL POST /v1/photos gave out";
	if (!ld_query_param(query, qlen, "expires", &v, &n) ||
	    !ld_query_param(query, qlen, "sig", &sv, &sn) || n == 0 || n > 12)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		expires = expires * 10 + (v[i] - '0');
	}
	for (k = 0; k < api->auth.nkeys; k++) {
		url_mac(api->auth.keys[k].key, id, expires, want, sizeof(want));
		if (sn == strlen(want) && sodium_memcmp(want, sv, sn) == 0)
			break;
	}
	if (k == api->auth.nkeys) {
		*why = "the upload URL's signature does not match";
		return -1;
	}
	if (expires < now_ms() / 1000) {
		*why = "the upload URL has expired; start a new upload";
		return -1;
	}
	return 0;
}

/* url_ok is url_check for a handler: 0, or answers 403 and returns -1. */
static int url_ok(struct ld_api_req *q)
{
	const char *why;

	if (url_check(q->api, q->path_id, q->r->h.query, q->r->h.query_len, &why) == 0)
		return 0;
	ld_api_problem(q, 403, why);
	return -1;
}

/* upload_target: the photo id of a PUT to a validly signed upload URL, or
 * 0. Only such a request may carry a large body, or get a sink: a client
 * without a URL cannot make the server take 20 MiB. */
static int64_t upload_target(const struct ld_http_request *h, const struct ld_api *api)
{
	static const char head[] = "/v1/photos/", tail[] = "/content";
	size_t hn = sizeof(head) - 1, tn = sizeof(tail) - 1, n = h->path_len;
	const char *why;
	int64_t id = 0;

	if (h->method != LD_HTTP_PUT || n <= hn + tn || memcmp(h->path, head, hn) != 0 ||
	    memcmp(h->path + n - tn, tail, tn) != 0)
		return 0;
	if (ld_id_parse(h->path + hn, n - hn - tn, &id) != 0)
		return 0;
	if (url_check(api, id, h->query, h->query_len, &why) != 0)
		return 0;
	return id;
}

uint64_t ld_photos_body_max(const struct ld_http_request *h, void *arg)
{
	return upload_target(h, arg) ? ld_photos_cfg.upload_max : 0;
}

/* The photos this process is writing the staging key of (an upload's sink
 * is open), or completing: at most one of either per photo id, on every
 * loop and in the thread pool. The upload URL may be used any number of
 * times until it expires, and uploads_in_flight counts photos, not
 * connections: without this one URL could feed any number of parallel
 * uploads, each with its own temporary object on disk. And a complete
 * moves the staging key, checks it and commits under its claim, so no
 * other complete can move a later upload over an original already
 * committed (the fs store has one server per data directory: this is the
 * whole story there; S3 across nodes, see docs/photos.md). Few at a time,
 * so a list. */
struct photo_claim {
	int64_t id;
	bool completing;
	struct photo_claim *next;
};

static pthread_mutex_t claims_mu = PTHREAD_MUTEX_INITIALIZER;
static struct photo_claim *claims;

/* claim enters c: 0, or -EBUSY when another claim holds its photo
 * (*completing then says whether that one is a complete). */
static int claim(struct photo_claim *c, bool *completing)
{
	struct photo_claim *p;
	int rc = 0;

	pthread_mutex_lock(&claims_mu);
	for (p = claims; p; p = p->next) {
		if (p->id == c->id) {
			*completing = p->completing;
			rc = -EBUSY;
		}
	}
	if (rc == 0) {
		c->next = claims;
		claims = c;
	}
	pthread_mutex_unlock(&claims_mu);
	return rc;
}

/* unclaim takes c out: the photo may take another upload or complete. */
static void unclaim(struct photo_claim *c)
{
	struct photo_claim **pp;

	pthread_mutex_lock(&claims_mu);
	for (pp = &claims; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&claims_mu);
}

/*
 * The upload's sink: the body goes into a blob writer (a temporary object;
 * the handler commits it, fsync and rename, on the thread pool) as it
 * arrives, written on the thread pool, never on the loop: the loop copies
 * each piece into `pending` and queues one write job at a time, which
 * swaps `pending` with `writing` and writes. Past SINK_PENDING_MAX bytes
 * pending the sink answers LD_SINK_FULL and the server stops reading the
 * body until the job has caught up: at most twice that much in memory per
 * upload, whatever the size of the body or the speed of the disk.
 *
 * The write job may still be queued when the sink is done with (commit or
 * abort): the memory goes when both are over (sink_release).
 */
#define SINK_PENDING_MAX (256 * 1024)

struct upload_sink {
	struct ld_body_sink k;
	struct photo_claim c;
	const struct ld_blob_vt *vt;
	struct ld_blob_writer *w;
	int64_t id;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *pending, *writing; /* loop fills pending; the job writes writing */
	size_t plen, pcap, wcap;
	int err;	   /* the first failed write sticks */
	bool running;	   /* the job is writing (mu released) */
	bool queued;	   /* the job is with the thread pool */
	bool paused;	   /* the server was told LD_SINK_FULL */
	bool handler_owns; /* dispatched: no resume any more */
	bool released;	   /* committed or aborted; freed when !queued */
	uv_work_t work;
};

static void sink_free(struct upload_sink *u)
{
	unclaim(&u->c);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->cv);
	free(u->pending);
	free(u->writing);
	free(u);
}

/* sink_release frees u now, or once its write job is back (any thread). */
static void sink_release(struct upload_sink *u)
{
	bool now;

	pthread_mutex_lock(&u->mu);
	u->released = true;
	now = !u->queued;
	pthread_mutex_unlock(&u->mu);
	if (now)
		sink_free(u);
}

/* flush_locked writes what is pending (mu held, released during the
 * write); the writer is used by one thread at a time: running says so. */
static void flush_locked(struct upload_sink *u)
{
	while (u->plen > 0 && u->err == 0) {
		char *b = u->writing;
		size_t n = u->plen, c = u->wcap;
		int rc;

		u->writing = u->pending;
		u->wcap = u->pcap;
		u->pending = b;
		u->pcap = c;
		u->plen = 0;
		u->running = true;
		pthread_mutex_unlock(&u->mu);
		rc = u->vt->put_write(u->w, u->writing, n);
		pthread_mutex_lock(&u->mu);
		u->running = false;
		if (rc != 0 && u->err == 0)
			u->err = rc;
		pthread_cond_broadcast(&u->cv);
	}
}

static void sink_work(uv_work_t *w)
{
	struct upload_sink *u = w->data;

	pthread_mutex_lock(&u->mu);
	if (!u->running && !u->released)
		flush_locked(u);
	pthread_mutex_unlock(&u->mu);
}

static void sink_queue(struct upload_sink *u);

static void sink_work_done(uv_work_t *w, int status)
{
	struct upload_sink *u = w->data;
	bool gone, more, resume = false;

	pthread_mutex_lock(&u->mu);
	u->queued = false;
	gone = u->released;
	more = !gone && u->plen > 0 && u->err == 0;
	if (!gone && !more && u->paused && !u->handler_owns) {
		u->paused = false;
		resume = true;
	}
	pthread_mutex_unlock(&u->mu);
	if (gone) {
		sink_free(u);
		return;
	}
	if (more)
		sink_queue(u);
	if (resume)
		u->k.resume(&u->k);
}

/* sink_queue hands the write job to the thread pool (loop thread); when it
 * cannot, the bytes are written here rather than lost. */
static void sink_queue(struct upload_sink *u)
{
	pthread_mutex_lock(&u->mu);
	if (u->queued) {
		pthread_mutex_unlock(&u->mu);
		return;
	}
	u->queued = true;
	pthread_mutex_unlock(&u->mu);
	u->work.data = u;
	if (uv_queue_work(&u->k.loop->uv, &u->work, sink_work, sink_work_done) != 0) {
		pthread_mutex_lock(&u->mu);
		u->queued = false;
		if (!u->running)
			flush_locked(u);
		pthread_mutex_unlock(&u->mu);
	}
}

/* sink_drain writes all that is pending before the commit (thread pool):
 * it waits for a write the job has started, and does the rest itself
 * rather than wait for a job still queued (the pool's threads could all
 * be waiting so). */
static int sink_drain(struct upload_sink *u)
{
	int rc;

	pthread_mutex_lock(&u->mu);
	while (u->running)
		pthread_cond_wait(&u->cv, &u->mu);
	flush_locked(u);
	rc = u->err;
	pthread_mutex_unlock(&u->mu);
	return rc;
}

static int sink_write(struct ld_body_sink *k, const char *p, size_t n)
{
	struct upload_sink *u = (struct upload_sink *)k;
	int rc;

	pthread_mutex_lock(&u->mu);
	rc = u->err;
	if (rc == 0 && u->plen + n > u->pcap) {
		size_t cap = u->pcap ? u->pcap : 16384;
		char *b;

		while (cap < u->plen + n)
			cap *= 2;
		b = realloc(u->pending, cap);
		if (!b) {
			rc = -ENOMEM;
		} else {
			u->pending = b;
			u->pcap = cap;
		}
	}
	if (rc == 0) {
		memcpy(u->pending + u->plen, p, n);
		u->plen += n;
		if (u->plen >= SINK_PENDING_MAX) {
			u->paused = true;
			rc = LD_SINK_FULL;
		}
	}
	pthread_mutex_unlock(&u->mu);
	if (rc >= 0)
		sink_queue(u);
	return rc;
}

/* sink_abort throws the upload away; a write job still out finishes
 * first (it uses the writer), so the writer goes with the last of it. */
static void sink_abort(struct ld_body_sink *k)
{
	struct upload_sink *u = (struct upload_sink *)k;

	pthread_mutex_lock(&u->mu);
	u->released = true; /* a queued job writes nothing more */
	while (u->running)
		pthread_cond_wait(&u->cv, &u->mu);
	pthread_mutex_unlock(&u->mu);
	u->vt->put_abort(u->w);
	u->w = NULL;
	sink_release(u);
}

/* sink_unavailable logs why an upload's sink could not open and refuses
 * the upload with a 503, answered before any of the body is read (it would
 * otherwise have to be held whole in memory). */
static void sink_unavailable(int64_t id, int err, int *refuse, const char **why)
{
	char sid[24];

	snprintf(sid, sizeof(sid), "%" PRId64, id);
	ld_log_event("warn", "upload refused: its bytes cannot be stored",
		     (const char *const[]){"photo_id", sid, "error", strerror(err), NULL});
	*refuse = 503;
	*why = "the upload cannot be stored now; retry after a moment";
}

struct ld_body_sink *ld_photos_body_sink(const struct ld_http_request *h, void *arg, int *refuse,
					 const char **why)
{
	struct ld_api *api = arg;
	int64_t id = upload_target(h, api);
	char key[LD_BLOB_KEY_MAX + 1];
	struct upload_sink *u;
	bool busy_completing = false;
	int rc;

	if (!id)
		return NULL;
	u = calloc(1, sizeof(*u));
	if (!u) {
		sink_unavailable(id, ENOMEM, refuse, why);
		return NULL;
	}
	u->id = id;
	u->c.id = id;
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	if (claim(&u->c, &busy_completing) != 0) {
		pthread_mutex_destroy(&u->mu);
		pthread_cond_destroy(&u->cv);
		free(u);
		*refuse = 409;
		*why = busy_completing ? "the upload is being completed"
				       : "another upload of this photo is in progress";
		return NULL;
	}
	staging_key(key, sizeof(key), id);
	u->vt = api->blob_vt;
	u->k.write = sink_write;
	u->k.abort = sink_abort;
	rc = u->vt->put_begin(api->blobs, key, &u->w);
	if (rc != 0) {
		sink_free(u);
		sink_unavailable(id, rc < 0 ? -rc : EIO, refuse, why);
		return NULL;
	}
	return &u->k;
}

/* ---- JSON ------------------------------------------------------------------ */

static void write_photo(struct ld_json *j, const struct ld_photo *p, bool with_versions)
{
	char url[96];
	unsigned i;

	ld_json_obj_begin(j);
	ld_json_key(j, "id");
	ld_json_id(j, p->id);
	ld_json_key(j, "user_id");
	ld_json_id(j, p->user_id);
	ld_json_key(j, "status");
	ld_json_str(j, p->status);
	if (strcmp(p->status, "uploading") != 0) {
		ld_json_key(j, "content_type");
		ld_json_str(j, p->content_type);
		ld_json_key(j, "size");
		ld_json_int(j, p->size);
		ld_json_key(j, "width");
		ld_json_int(j, p->width);
		ld_json_key(j, "height");
		ld_json_int(j, p->height);
	}
	if (p->reason[0]) {
		ld_json_key(j, "reason");
		ld_json_str(j, p->reason);
	}
	ld_json_key(j, "created_at");
	ld_json_time_ms(j, p->created_ms);
	ld_json_key(j, "updated_at");
	ld_json_time_ms(j, p->updated_ms);
	if (with_versions) {
		ld_json_key(j, "versions");
		ld_json_obj_begin(j);
		if (strcmp(p->status, "uploading") != 0) {
			/* The original is there from the moment the upload is
			 * complete, whatever becomes of its thumbnails. */
			ld_json_key(j, "original");
			ld_json_obj_begin(j);
			snprintf(url, sizeof(url), "/v1/photos/%" PRId64 "/original", p->id);
			ld_json_key(j, "url");
			ld_json_str(j, url);
			ld_json_obj_end(j);
		}
		for (i = 0; i < p->nversions; i++) {
			const struct ld_photo_version *v = &p->versions[i];

			ld_json_key(j, v->name);
			ld_json_obj_begin(j);
			snprintf(url, sizeof(url), "/v1/photos/%" PRId64 "/%s", p->id, v->name);
			ld_json_key(j, "url");
			ld_json_str(j, url);
			ld_json_key(j, "width");
			ld_json_int(j, v->width);
			ld_json_key(j, "height");
			ld_json_int(j, v->height);
			ld_json_key(j, "size");
			ld_json_int(j, v->size);
			ld_json_obj_end(j);
		}
		ld_json_obj_end(j);
	}
	ld_json_obj_end(j);
}

static void respond_photo(struct ld_api_req *q, int status, const struct ld_photo *p)
{
	struct ld_json j;

	ld_json_init(&j, &q->r->out_body);
	write_photo(&j, p, true);
	if (status == 201)
		ld_req_header(q->r, "Location", "/v1/photos/%" PRId64, p->id);
	ld_api_respond_json(q, &j, status);
}

static void token_user_gone(struct ld_api_req *q)
{
	ld_req_header(q->r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	ld_api_problem(q, 401, "the token's user does not exist");
}

/* ---- POST /v1/photos --------------------------------------------------------- */

static void created(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;
	int64_t expires = op->photo.created_ms / 1000 + (int64_t)(ld_photos_cfg.url_ttl_ms / 1000);
	struct ld_json j;
	char url[2048], detail[160];

	if (op->status == LD_STORE_CONFLICT) {
		snprintf(detail, sizeof(detail),
			 "%u uploads are in flight, the most allowed: complete one, or let its URL "
			 "expire",
			 ld_photos_cfg.in_flight);
		ld_req_header(q->r, "Retry-After", "%" PRIu64, ld_photos_cfg.url_ttl_ms / 1000);
		ld_api_problem(q, 429, detail);
		return;
	}
	if (op->status == LD_STORE_NOT_FOUND) {
		token_user_gone(q);
		return;
	}
	if (op->status != LD_STORE_OK) {
		ld_api_store_failed(q, op->status);
		return;
	}
	if (q->api->blob_vt->presign) {
		/* Object storage with URLs of its own: the client sends the
		 * bytes straight there, never through an app node. */
		char key[LD_BLOB_KEY_MAX + 1];

		staging_key(key, sizeof(key), op->photo.id);
		if (q->api->blob_vt->presign(q->api->blobs, "PUT", key,
					     (int64_t)(ld_photos_cfg.url_ttl_ms / 1000), url,
					     sizeof(url)) != 0) {
			ld_api_problem(q, 500,
				       "the upload URL could not be made; see the server log");
			return;
		}
	} else {
		upload_url(q->api, op->photo.id, expires, url, sizeof(url));
	}
	ld_json_init(&j, &q->r->out_body);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "photo");
	write_photo(&j, &op->photo, false);
	ld_json_key(&j, "upload");
	ld_json_obj_begin(&j);
	ld_json_key(&j, "method");
	ld_json_str(&j, "PUT");
	ld_json_key(&j, "url");
	ld_json_str(&j, url);
	ld_json_key(&j, "expires_at");
	ld_json_time_ms(&j, expires * 1000);
	ld_json_key(&j, "max_bytes");
	ld_json_uint(&j, ld_photos_cfg.upload_max);
	ld_json_obj_end(&j);
	ld_json_key(&j, "complete");
	snprintf(url, sizeof(url), "/v1/photos/%" PRId64 "/complete", op->photo.id);
	ld_json_str(&j, url);
	ld_json_obj_end(&j);
	ld_req_header(q->r, "Location", "/v1/photos/%" PRId64, op->photo.id);
	ld_api_respond_json(q, &j, 201);
}

void ld_api_photos_create(struct ld_api_req *q)
{
	if (ld_api_authenticate(q))
		return;
	q->op.kind = LD_OP_PHOTO_CREATE;
	q->op.actor_id = q->r->user_id;
	q->op.limit = ld_photos_cfg.in_flight;
	/* Uploads whose URL has expired no longer hold a place. */
	q->op.expect_version = now_ms() - (int64_t)ld_photos_cfg.url_ttl_ms;
	ld_api_submit(q, created);
}

/* ---- PUT /v1/photos/{id}/content ---------------------------------------------- */

/* drop_sink throws a streamed upload away (its temporary object goes). */
static void drop_sink(struct ld_api_req *q)
{
	if (q->r->sink) {
		q->r->sink->abort(q->r->sink);
		q->r->sink = NULL;
	}
}

static void put_work(uv_work_t *w)
{
	struct ld_api_req *q = w->data;
	char key[LD_BLOB_KEY_MAX + 1];

	if (q->r->sink) {
		/* Streamed: the bytes are in the temporary object already;
		 * commit makes them durable and visible (fsync, rename). */
		struct upload_sink *u = (struct upload_sink *)q->r->sink;

		q->r->sink = NULL;
		q->blob_rc = sink_drain(u);
		if (q->blob_rc == 0)
			q->blob_rc = u->vt->put_commit(u->w);
		else
			u->vt->put_abort(u->w);
		u->w = NULL;
		sink_release(u);
		return;
	}
	staging_key(key, sizeof(key), q->path_id);
	q->blob_rc = ld_blob_put(q->api->blob_vt, q->api->blobs, key, q->r->body, q->r->body_len);
}

static void put_done(uv_work_t *w, int status)
{
	struct ld_api_req *q = w->data;

	if (status != 0 || q->blob_rc != 0) {
		drop_sink(q); /* still ours when the work was cancelled */
		ld_api_problem(q, 500, "the bytes could not be stored; see the server log");
		return;
	}
	ld_req_respond(q->r, 204);
}

static void put_checked(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;
	char detail[96];

	if (op->status != LD_STORE_OK) {
		drop_sink(q);
		ld_api_store_failed(q, op->status);
		return;
	}
	if (strcmp(op->photo.status, "uploading") != 0) {
		drop_sink(q);
		snprintf(detail, sizeof(detail), "the photo is %s: its bytes can no longer change",
			 op->photo.status);
		ld_api_problem(q, 409, detail);
		return;
	}
	q->work.data = q;
	if (uv_queue_work(&q->r->loop->uv, &q->work, put_work, put_done) != 0) {
		drop_sink(q);
		ld_api_problem(q, 503, "the server is overloaded; retry after a moment");
	}
}

/* The bytes arrive through the sink (a signed URL: streamed to a temporary
 * object as they came); a body without one is small (within max_body). */
void ld_api_photo_put_content(struct ld_api_req *q)
{
	/* A sink is only opened for a URL that was valid when the header
	 * arrived: that is the verdict. Checking the expiry again now would
	 * throw away a slow upload that crossed it while its bytes came. */
	if (q->r->sink) {
		struct upload_sink *u = (struct upload_sink *)q->r->sink;

		pthread_mutex_lock(&u->mu);
		u->handler_owns = true;
		pthread_mutex_unlock(&u->mu);
	}
	if (!q->r->sink && url_ok(q)) {
		drop_sink(q);
		return;
	}
	if (q->r->h.content_length < 0 && !q->r->h.chunked) {
		drop_sink(q);
		ld_api_problem(q, 411,
			       "an upload needs Content-Length or chunked Transfer-Encoding");
		return;
	}
	if (q->r->body_len == 0) {
		drop_sink(q);
		ld_api_problem(q, 400, "the upload is empty");
		return;
	}
	q->op.kind = LD_OP_PHOTO_GET;
	q->op.id = q->path_id;
	ld_api_submit(q, put_checked);
}

/* ---- POST /v1/photos/{id}/complete --------------------------------------------- */

/* complete_release gives back the claim ld_api_photo_complete took; every
 * way out of a complete that got one passes here once. */
static void complete_release(struct ld_api_req *q)
{
	struct photo_claim *c = NULL, **pp;

	pthread_mutex_lock(&claims_mu);
	for (pp = &claims; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == q->path_id && (*pp)->completing) {
			c = *pp;
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&claims_mu);
	free(c);
}

static void completed(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;

	complete_release(q);
	if (op->status == LD_STORE_PRECONDITION) {
		ld_api_problem(q, 409, "the photo is no longer uploading");
		return;
	}
	if (op->status != LD_STORE_OK) {
		ld_api_store_failed(q, op->status);
		return;
	}
	respond_photo(q, 202, &op->photo);
}

/* check_work moves the upload from its staging key to the original's (a
 * PUT that comes later writes the staging key again and changes nothing
 * that is served), then reads the original and checks it: size, type by
 * its magic bytes, pixels from its header. Nothing staged is fine when an
 * earlier complete moved it and its checks failed: those bytes are checked
 * again. The verdict is an HTTP status. */
static void check_work(uv_work_t *w)
{
	struct ld_api_req *q = w->data;
	struct ld_photo *p = &q->op.photo;
	char key[LD_BLOB_KEY_MAX + 1], staged[LD_BLOB_KEY_MAX + 1], herr[160];
	enum ld_media_type t;
	int rc, width = 0, height = 0;

	staging_key(staged, sizeof(staged), q->path_id);
	key_of(key, sizeof(key), q->path_id, "original");
	rc = q->api->blob_vt->move(q->api->blobs, staged, key);
	if (rc == 0 || rc == -ENOENT)
		rc = q->api->blob_vt->get(q->api->blobs, key, ld_photos_cfg.upload_max, &q->blob,
					  &q->blob_len);
	if (rc == -ENOENT) {
		q->blob_rc = 409;
		snprintf(q->why, sizeof(q->why), "no bytes were uploaded for this photo");
		return;
	}
	if (rc == -E2BIG) {
		q->blob_rc = 413;
		snprintf(q->why, sizeof(q->why), "the upload is larger than %" PRIu64 " bytes",
			 ld_photos_cfg.upload_max);
		return;
	}
	if (rc != 0) {
		q->blob_rc = 500;
		snprintf(q->why, sizeof(q->why),
			 "the upload could not be read; see the server log");
		return;
	}
	t = ld_media_sniff(q->blob, q->blob_len);
	if (t == LD_MEDIA_UNKNOWN) {
		q->blob_rc = 415;
		snprintf(q->why, sizeof(q->why),
			 "the bytes are not a JPEG, PNG or WebP image (by their magic bytes)");
		return;
	}
	if (ld_media_header(q->blob, q->blob_len, &width, &height, herr, sizeof(herr)) != 0) {
		q->blob_rc = 422;
		snprintf(q->why, sizeof(q->why), "the image header does not parse: %.140s", herr);
		return;
	}
	if ((uint64_t)width * (uint64_t)height > ld_photos_cfg.max_pixels) {
		q->blob_rc = 422;
		snprintf(q->why, sizeof(q->why), "%d x %d pixels is over the limit of %" PRIu64,
			 width, height, ld_photos_cfg.max_pixels);
		return;
	}
	snprintf(p->content_type, sizeof(p->content_type), "%s", ld_media_type_mime(t));
	p->size = (int64_t)q->blob_len;
	p->width = width;
	p->height = height;
	q->blob_rc = 0;
}

static void check_done(uv_work_t *w, int status)
{
	struct ld_api_req *q = w->data;

	free(q->blob);
	q->blob = NULL;
	if (status != 0) {
		complete_release(q);
		ld_api_problem(q, 503, "the server is overloaded; retry after a moment");
		return;
	}
	if (q->blob_rc != 0) {
		complete_release(q);
		ld_api_problem(q, q->blob_rc, q->why);
		return;
	}
	q->op.kind = LD_OP_PHOTO_COMPLETE;
	q->op.id = q->path_id;
	q->op.actor_id = q->r->user_id;
	ld_api_submit(q, completed);
}

static void complete_checked(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;
	char detail[96];

	if (op->status != LD_STORE_OK) {
		complete_release(q);
		ld_api_store_failed(q, op->status);
		return;
	}
	if (op->photo.user_id != q->r->user_id) {
		complete_release(q);
		ld_api_problem(q, 403, "the resource belongs to another user");
		return;
	}
	if (strcmp(op->photo.status, "uploading") != 0) {
		complete_release(q);
		snprintf(detail, sizeof(detail), "the photo is %s, not uploading",
			 op->photo.status);
		ld_api_problem(q, 409, detail);
		return;
	}
	q->work.data = q;
	if (uv_queue_work(&q->r->loop->uv, &q->work, check_work, check_done) != 0) {
		complete_release(q);
		ld_api_problem(q, 503, "the server is overloaded; retry after a moment");
	}
}

/* A complete holds the photo's claim from before it reads the photo until
 * its commit is answered: the status it reads cannot change under it from
 * this process, and no upload commits to the staging key meanwhile. */
void ld_api_photo_complete(struct ld_api_req *q)
{
	struct photo_claim *c;
	bool busy_completing = false;

	if (ld_api_authenticate(q))
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		ld_api_problem(q, 503, "out of memory; retry after a moment");
		return;
	}
	c->id = q->path_id;
	c->completing = true;
	if (claim(c, &busy_completing) != 0) {
		free(c);
		ld_api_problem(q, 409,
			       busy_completing
				   ? "another complete of this photo is in progress"
				   : "an upload of this photo is in progress: complete it after");
		return;
	}
	q->op.kind = LD_OP_PHOTO_GET;
	q->op.id = q->path_id;
	ld_api_submit(q, complete_checked);
}

/* ---- GET, DELETE /v1/photos/{id} ----------------------------------------------- */

static void got_photo(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;

	if (op->status != LD_STORE_OK) {
		ld_api_store_failed(q, op->status);
		return;
	}
	/* Status changes as the worker goes: never cached. */
	ld_req_header_str(q->r, "Cache-Control", "no-cache");
	respond_photo(q, 200, &op->photo);
}

void ld_api_photo_get(struct ld_api_req *q)
{
	q->op.kind = LD_OP_PHOTO_GET;
	q->op.id = q->path_id;
	ld_api_submit(q, got_photo);
}

static void deleted(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;

	if (op->status != LD_STORE_OK) {
		ld_api_store_failed(q, op->status);
		return;
	}
	ld_req_respond(q->r, 204);
}

void ld_api_photo_delete(struct ld_api_req *q)
{
	if (ld_api_authenticate(q))
		return;
	q->op.kind = LD_OP_PHOTO_DELETE;
	q->op.id = q->path_id;
	q->op.actor_id = q->r->user_id;
	ld_api_submit(q, deleted);
}

/* ---- GET /v1/photos/{id}/{original,128,512,1600} -------------------------------- */

static void immutable_headers(struct ld_api_req *q, const char *etag)
{
	ld_req_header_str(q->r, "ETag", etag);
	ld_req_header_str(q->r, "Cache-Control", "public, max-age=31536000, immutable");
}

/* bytes_work opens the version's file and reads it into the page cache,
 * here on the thread pool: the loop then sends it with sendfile(2) and
 * never waits for the disk, nor holds the bytes in memory. */
static void bytes_work(uv_work_t *w)
{
	struct ld_api_req *q = w->data;
	char key[LD_BLOB_KEY_MAX + 1];
	uint64_t size = 0;
	int fd = -1;

	key_of(key, sizeof(key), q->path_id, version_names[q->route_version]);
	q->blob_rc = q->api->blob_vt->open_fd(q->api->blobs, key, &fd, &size);
	if (q->blob_rc != 0)
		return;
	(void)readahead(fd, 0, (size_t)size);
	/* The server owns it from here (closes it whatever happens); the
	 * loop reads these only after this work is done. */
	q->r->body_file = fd;
	q->r->body_file_len = size;
}

static void bytes_done(uv_work_t *w, int status)
{
	struct ld_api_req *q = w->data;

	if (status != 0 || q->blob_rc != 0) {
		ld_buf_reset(&q->r->out_hdrs);
		if (status == 0 && q->blob_rc == -ENOENT)
			ld_api_problem(q, 404,
				       "this version's bytes are gone (the photo was deleted)");
		else
			ld_api_problem(q, 500, "the bytes could not be read; see the server log");
		return;
	}
	/* The server sends the file (never gzipped: images are compressed
	 * already). */
	ld_req_respond(q->r, 200);
}

static void version_checked(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;
	const char *name = version_names[q->route_version];
	char etag[48] = "";
	const struct ld_http_field *inm;
	unsigned i;

	if (op->status != LD_STORE_OK) {
		ld_api_store_failed(q, op->status);
		return;
	}
	if (q->route_version == 0) {
		if (strcmp(op->photo.status, "uploading") == 0) {
			ld_api_problem(q, 404, "the upload is not complete yet");
			return;
		}
		/* An original never changes once its upload is complete. */
		snprintf(etag, sizeof(etag), "\"%" PRId64 ".original\"", op->photo.id);
		q->r->content_type = op->photo.content_type;
	} else {
		for (i = 0; i < op->photo.nversions; i++)
			if (strcmp(op->photo.versions[i].name, name) == 0)
				snprintf(etag, sizeof(etag), "%s", op->photo.versions[i].etag);
		if (!etag[0]) {
			ld_api_problem(q, 404,
				       "this version does not exist (yet): see the photo's status");
			return;
		}
		q->r->content_type = "image/jpeg";
	}
	if (q->api->blob_vt->presign) {
		/* The bytes come from the object store itself; the redirect
		 * holds a URL that expires, so only the client may keep it,
		 * and for less time than it is good for. */
		char key[LD_BLOB_KEY_MAX + 1], url[2048];
		int64_t ttl = (int64_t)(ld_photos_cfg.url_ttl_ms / 1000);

		key_of(key, sizeof(key), q->path_id, name);
		if (q->api->blob_vt->presign(q->api->blobs, "GET", key, ttl, url, sizeof(url)) !=
		    0) {
			ld_api_problem(q, 500,
				       "the download URL could not be made; see the server log");
			return;
		}
		q->r->content_type = NULL;
		ld_req_header_str(q->r, "Location", url);
		ld_req_header(q->r, "Cache-Control", "private, max-age=%" PRId64,
			      ttl > 60 ? ttl - 60 : 0);
		ld_req_respond(q->r, 302);
		return;
	}
	immutable_headers(q, etag);
	inm = ld_http_find(&q->r->h, "if-none-match");
	if (inm && ld_etag_list_has(inm->value, inm->value_len, etag, true)) {
		ld_req_respond(q->r, 304);
		return;
	}
	q->work.data = q;
	if (uv_queue_work(&q->r->loop->uv, &q->work, bytes_work, bytes_done) != 0) {
		ld_buf_reset(&q->r->out_hdrs);
		ld_api_problem(q, 503, "the server is overloaded; retry after a moment");
	}
}

void ld_api_photo_version(struct ld_api_req *q)
{
	q->route_version = (int)(q->r->route - LD_ROUTE_PHOTO_ORIGINAL);
	q->op.kind = LD_OP_PHOTO_GET;
	q->op.id = q->path_id;
	ld_api_submit(q, version_checked);
}

/* ---- GET /v1/users/{id}/photos ---------------------------------------------------- */

static int64_t photo_id(const void *row)
{
	return ((const struct ld_photo *)row)->id;
}

static void photo_row(struct ld_json *j, const void *row)
{
	write_photo(j, row, false);
}

static void listed(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;
	const struct ld_api_page pg = {
	    op->photos, sizeof(*op->photos), op->nitems, op->has_more, photo_id, photo_row};

	struct ld_photo *rows = q->photos;

	/* q is not ours once answered (a pipelined request may take it):
	 * the rows are let go from a local. */
	q->photos = NULL;
	if (op->status != LD_STORE_OK)
		ld_api_store_failed(q, op->status);
	else
		ld_api_respond_page(q, "photos", &pg);
	free(rows);
}

void ld_api_user_photos(struct ld_api_req *q)
{
	unsigned limit;
	int64_t before;

	if (ld_api_page_params(q, &limit, &before) != 0)
		return;
	q->photos = malloc(sizeof(*q->photos) * limit);
	if (!q->photos) {
		ld_api_problem(q, 503, "out of memory; retry after a moment");
		return;
	}
	/* The store tells a user with no photos (empty page) from no user
	 * (NOT_FOUND) itself. */
	q->op.kind = LD_OP_PHOTO_LIST;
	q->op.id = q->path_id;
	q->op.photos = q->photos;
	q->op.limit = limit;
	q->op.before_id = before;
	ld_api_submit(q, listed);
}
