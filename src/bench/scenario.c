/*
 * scenario.c - the ladder scenario (see scenario.h): seeding through the API,
 * then the read/write mix with Zipf keys.
 */
#include "bench/scenario.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "media/media.h"

#define ID_MAX	    24
#define TOKEN_MAX   512
#define CONTENT_LEN 1000 /* the workload's "1 KB of content per write" */

enum { PH_USERS, PH_SESSIONS, PH_ITEMS };

/* The photo mix: uploads under way, each a flow of three steps. */
#define FLOWS_MAX 1024
#define URL_MAX	  512
#define PHOTO_MAX (48 * 1024) /* a PUT is built in the connection's 64 KiB scratch */
#define PHOTO_TAG (1ull << 63)
enum { ST_CREATE, ST_PUT, ST_COMPLETE };

struct flow {
	int user;
	int stage; /* the step to send next */
	char id[ID_MAX];
	char url[URL_MAX];
	int next_free; /* in the free list, or the ready queue */
};

struct ld_scenario {
	const struct ld_bench_opts *o;
	const struct ld_http_url *u;
	char run[12]; /* makes handles unique per run */
	int phase;
	char (*user_id)[ID_MAX];
	char (*token)[TOKEN_MAX];
	int *good; /* users with id and token, in rank order */
	int ngood;
	char (*item_id)[ID_MAX];
	int64_t *item_ok; /* indices of items that exist, in rank order */
	int64_t nitem_ok;
	atomic_llong next; /* seeding: the next index to create */
	int64_t total;	   /* seeding: how many this phase */
	atomic_llong failed;
	atomic_int first_status;
	struct ld_zipf zu, zi;
	double write_share;
	char content[CONTENT_LEN + 1];
	bool tty, quiet;
	/* the photo mix */
	double photo_start; /* probability that a slot starts an upload */
	char *photo;
	size_t photo_len;
	pthread_mutex_t mu; /* flows, free and ready lists */
	struct flow *flows;
	int free_head, ready_head, ready_tail;
	atomic_llong started, completed, photo_failed;
};

static int body_printf(struct ld_buf *b, const char *method, const struct ld_http_url *u,
		       const char *path, const char *auth, const char *json)
{
	return ld_buf_printf(b,
			     "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
			     "%s%s%sContent-Length: %zu\r\n\r\n%s",
			     method, path, u->authority, auth ? "Authorization: Bearer " : "",
			     auth ? auth : "", auth ? "\r\n" : "", strlen(json), json);
}

static int seed_next(void *ctx, struct ld_rng *rng, struct ld_buf *b, struct ld_bench_req *req)
{
	struct ld_scenario *s = ctx;
	long long i = atomic_fetch_add(&s->next, 1);
	char json[512];
	int rc;

	if (i >= s->total)
		return -1;
	req->tag = (uint64_t)i;
	req->want_body = true;
	if (s->phase == PH_USERS) {
		snprintf(json, sizeof(json),
			 "{\"handle\":\"lb%s_%lld\",\"display_name\":\"bench user %lld\","
			 "\"password\":\"bench-pass-%s\"}",
			 s->run, i, i, s->run);
		rc = body_printf(b, "POST", s->u, "/v1/users", NULL, json);
	} else if (s->phase == PH_SESSIONS) {
		if (!s->user_id[i][0]) {
			/* No user, no session: send something harmless instead. */
			snprintf(json, sizeof(json),
				 "{\"handle\":\"lb%s_none\",\"password\":\"x\"}", s->run);
		} else {
			snprintf(json, sizeof(json),
				 "{\"handle\":\"lb%s_%lld\",\"password\":\"bench-pass-%s\"}",
				 s->run, i, s->run);
		}
		rc = body_printf(b, "POST", s->u, "/v1/sessions", NULL, json);
	} else {
		int user = s->good[i / s->o->items_per_user];
		snprintf(json, sizeof(json), "{\"content\":\"seed item %lld of user %d\"}", i,
			 user);
		rc = body_printf(b, "POST", s->u, "/v1/items", s->token[user], json);
	}
	if (rc)
		return rc;
	req->data = b->data;
	req->len = b->len;
	return 0;
}

static void seed_response(void *ctx, const struct ld_bench_req *req, int status, int err,
			  const char *body, size_t len)
{
	struct ld_scenario *s = ctx;
	json_t *root = NULL, *v;
	const char *field = s->phase == PH_SESSIONS ? "token" : "id";
	const char *str;
	int zero = 0;
	int64_t i = (int64_t)req->tag;

	if (status != 201 || !body) {
		atomic_fetch_add(&s->failed, 1);
		atomic_compare_exchange_strong(&s->first_status, &zero, status ? status : -1);
		return;
	}
	root = json_loadb(body, len, 0, NULL);
	v = root ? json_object_get(root, field) : NULL;
	str = v ? json_string_value(v) : NULL;
	if (!str || strlen(str) >= (s->phase == PH_SESSIONS ? TOKEN_MAX : ID_MAX)) {
		atomic_fetch_add(&s->failed, 1);
		atomic_compare_exchange_strong(&s->first_status, &zero, -2);
	} else if (s->phase == PH_USERS) {
		strcpy(s->user_id[i], str);
	} else if (s->phase == PH_SESSIONS) {
		strcpy(s->token[i], str);
	} else {
		strcpy(s->item_id[i], str);
	}
	json_decref(root);
}

static void seed_tick(void *ctx, const struct ld_bench_point *p, const struct ld_bench_totals *t)
{
	struct ld_scenario *s = ctx;
	static const char *const names[] = {"users", "sessions", "items"};
	int width = 30, fill = s->total ? (int)(width * t->done / s->total) : width;

	if (s->quiet)
		return;
	if (fill > width)
		fill = width;
	fprintf(stderr, "%sseeding %-8s [%.*s%*s] %lld/%lld  %.0f/s  failed %lld%s",
		s->tty ? "\r\033[K" : "", names[s->phase], fill, "##############################",
		width - fill, "", (long long)t->done, (long long)s->total, p->achieved_rps,
		(long long)atomic_load(&s->failed), s->tty ? "" : "\n");
	fflush(stderr);
}

static int seed_phase(struct ld_scenario *s, const struct sockaddr_storage *addr, int phase,
		      int64_t total)
{
	struct ld_bench_cfg cfg;
	struct ld_bench_result res;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	memcpy(&cfg.addr, addr, sizeof(*addr));
	s->phase = phase;
	s->total = total;
	atomic_store(&s->next, 0);
	cfg.threads = 1;
	cfg.connections = s->o->seed_concurrency;
	cfg.max_connections = cfg.connections;
	cfg.closed = true;
	cfg.duration_s = 24 * 3600;
	cfg.timeout_s = s->o->timeout_s < 30 ? 30 : s->o->timeout_s; /* argon2id is slow */
	cfg.max_requests = total;
	cfg.seed = s->o->seed;
	cfg.wl.next = seed_next;
	cfg.wl.on_response = seed_response;
	cfg.wl.ctx = s;
	cfg.tick = seed_tick;
	cfg.tick_ctx = s;
	rc = ld_bench_run(&cfg, &res);
	if (rc == 0) {
		struct ld_bench_totals t = {.done = res.requests};
		struct ld_bench_point p = {
		    .achieved_rps = res.elapsed_s > 0 ? (double)res.requests / res.elapsed_s : 0};
		seed_tick(s, &p, &t);
		if (!s->quiet)
			fprintf(stderr, "%s", s->tty ? "\n" : "");
		ld_bench_result_release(&res);
	}
	return rc;
}

/* photos_setup: the photo every upload sends, and the flows. */
static int photos_setup(struct ld_scenario *s, char *err, size_t errlen)
{
	const struct ld_bench_opts *o = s->o;
	int rc;

	if (o->photo_file) {
		rc = ld_read_file(o->photo_file, PHOTO_MAX, &s->photo, &s->photo_len, NULL, 0);
		if (rc == -E2BIG) {
			snprintf(err, errlen, "--photo-file: '%s' is over %d KiB", o->photo_file,
				 PHOTO_MAX / 1024);
			return rc;
		}
		if (rc) {
			snprintf(err, errlen, "--photo-file: '%s': %s", o->photo_file,
				 strerror(-rc));
			return rc;
		}
	} else {
		void *jpeg = NULL;
		size_t len = 0;

		rc = ld_media_init("ladder", 1, err, errlen);
		if (rc == 0)
			rc = ld_media_sample_jpeg(640, 480, &jpeg, &len);
		if (rc == 0 && len > PHOTO_MAX)
			rc = -E2BIG;
		if (rc == 0) {
			s->photo = malloc(len);
			if (s->photo) {
				memcpy(s->photo, jpeg, len);
				s->photo_len = len;
			} else {
				rc = -ENOMEM;
			}
		}
		ld_media_free(jpeg);
		if (rc) {
			snprintf(err, errlen, "the sample photo could not be made: %s",
				 strerror(-rc));
			return rc;
		}
	}
	s->flows = calloc(FLOWS_MAX, sizeof(*s->flows));
	if (!s->flows) {
		snprintf(err, errlen, "out of memory for the photo flows");
		return -ENOMEM;
	}
	for (int i = 0; i < FLOWS_MAX; i++)
		s->flows[i].next_free = i + 1 < FLOWS_MAX ? i + 1 : -1;
	s->free_head = 0;
	s->ready_head = s->ready_tail = -1;
	pthread_mutex_init(&s->mu, NULL);
	s->photo_start = o->photo_share / (3 - 2 * o->photo_share);
	return 0;
}

int ld_scenario_setup(struct ld_scenario **out, const struct ld_bench_opts *o,
		      const struct ld_http_url *u, const struct sockaddr_storage *addr,
		      struct ld_bench_extra *x, char *err, size_t errlen)
{
	struct ld_scenario *s = calloc(1, sizeof(*s));
	struct timespec ts, t_start;
	int rc = -ENOMEM;
	int64_t n, nitems;

	*out = NULL;
	if (!s)
		goto fail;
	s->o = o;
	s->u = u;
	s->tty = isatty(2);
	s->quiet = o->quiet;
	nitems = (int64_t)o->users * o->items_per_user; /* item slots */
	s->user_id = calloc((size_t)o->users, ID_MAX);
	s->token = calloc((size_t)o->users, TOKEN_MAX);
	s->good = calloc((size_t)o->users, sizeof(int));
	s->item_id = calloc((size_t)nitems, ID_MAX);
	s->item_ok = calloc((size_t)nitems, sizeof(int64_t));
	if (!s->user_id || !s->token || !s->good || !s->item_id || !s->item_ok) {
		snprintf(err, errlen, "out of memory for %d users", o->users);
		goto fail;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(s->run, sizeof(s->run), "%08llx",
		 (unsigned long long)((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
				      (o->seed * 0x9e3779b97f4a7c15ULL)) &
		     0xffffffffULL);
	for (int i = 0; i < CONTENT_LEN; i++)
		s->content[i] = (char)('a' + i % 26);
	clock_gettime(CLOCK_MONOTONIC, &t_start);

	rc = seed_phase(s, addr, PH_USERS, o->users);
	if (rc)
		goto fail_run;
	if (atomic_load(&s->failed) == o->users) {
		snprintf(err, errlen,
			 "POST /v1/users failed for every user (first answer: %d); is "
			 "this a ladder server?",
			 atomic_load(&s->first_status));
		rc = -EPROTO;
		goto fail;
	}
	atomic_store(&s->failed, 0);
	rc = seed_phase(s, addr, PH_SESSIONS, o->users);
	if (rc)
		goto fail_run;
	for (int i = 0; i < o->users; i++)
		if (s->user_id[i][0] && s->token[i][0])
			s->good[s->ngood++] = i;
	if (s->ngood == 0) {
		snprintf(err, errlen, "POST /v1/sessions gave no token (first answer: %d)",
			 atomic_load(&s->first_status));
		rc = -EPROTO;
		goto fail;
	}
	atomic_store(&s->failed, 0);
	n = (int64_t)s->ngood * o->items_per_user;
	rc = seed_phase(s, addr, PH_ITEMS, n);
	if (rc)
		goto fail_run;
	for (int64_t i = 0; i < n; i++)
		if (s->item_id[i][0])
			s->item_ok[s->nitem_ok++] = i;
	if (s->nitem_ok == 0) {
		snprintf(err, errlen, "POST /v1/items created nothing (first answer: %d)",
			 atomic_load(&s->first_status));
		rc = -EPROTO;
		goto fail;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	x->seed_s =
	    (double)(ts.tv_sec - t_start.tv_sec) + (double)(ts.tv_nsec - t_start.tv_nsec) / 1e9;
	x->seeded_users = s->ngood;
	x->seeded_items = s->nitem_ok;
	if (ld_zipf_init(&s->zu, (uint64_t)s->ngood, o->zipf_s) ||
	    ld_zipf_init(&s->zi, (uint64_t)s->nitem_ok, o->zipf_s)) {
		rc = -EINVAL;
		snprintf(err, errlen, "bad --zipf-s");
		goto fail;
	}
	s->write_share = o->write_ratio / (o->read_ratio + o->write_ratio);
	if (o->photo_share > 0) {
		rc = photos_setup(s, err, errlen);
		if (rc)
			goto fail;
		x->photos = true;
		x->photo_bytes = (int64_t)s->photo_len;
	}
	*out = s;
	return 0;
fail_run:
	snprintf(err, errlen, "seeding could not run: %s", strerror(-rc));
fail:
	ld_scenario_free(s);
	return rc;
}

/* flow_pop takes the next upload with a step to send, or a free flow for a
 * new one (ready false): -1 when there is none. */
static int flow_pop(struct ld_scenario *s, bool ready)
{
	int *head = ready ? &s->ready_head : &s->free_head, f;

	pthread_mutex_lock(&s->mu);
	f = *head;
	if (f >= 0) {
		*head = s->flows[f].next_free;
		if (ready && *head < 0)
			s->ready_tail = -1;
	}
	pthread_mutex_unlock(&s->mu);
	return f;
}

/* flow_push queues f's next step (ready) or frees it. */
static void flow_push(struct ld_scenario *s, int f, bool ready)
{
	pthread_mutex_lock(&s->mu);
	s->flows[f].next_free = -1;
	if (!ready) {
		s->flows[f].next_free = s->free_head;
		s->free_head = f;
	} else if (s->ready_tail < 0) {
		s->ready_head = s->ready_tail = f;
	} else {
		s->flows[s->ready_tail].next_free = f;
		s->ready_tail = f;
	}
	pthread_mutex_unlock(&s->mu);
}

static int photo_step(struct ld_scenario *s, int f, struct ld_buf *b, struct ld_bench_req *req)
{
	struct flow *fl = &s->flows[f];
	const char *token = s->token[fl->user];
	int rc;

	req->kind = 1;
	req->tag = PHOTO_TAG | (uint64_t)f;
	req->want_body = fl->stage == ST_CREATE;
	if (fl->stage == ST_CREATE) {
		rc = ld_buf_printf(b,
				   "POST /v1/photos HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer "
				   "%s\r\nContent-Length: 0\r\n\r\n",
				   s->u->authority, token);
	} else if (fl->stage == ST_PUT) {
		/* The URL is the credential: no token. */
		rc = ld_buf_printf(b,
				   "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: "
				   "application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
				   fl->url, s->u->authority, s->photo_len);
		if (rc == 0)
			rc = ld_buf_append(b, s->photo, s->photo_len);
	} else {
		rc = ld_buf_printf(b,
				   "POST /v1/photos/%s/complete HTTP/1.1\r\nHost: %s\r\n"
				   "Authorization: Bearer %s\r\nContent-Length: 0\r\n\r\n",
				   fl->id, s->u->authority, token);
	}
	if (rc)
		return rc;
	req->data = b->data;
	req->len = b->len;
	return 0;
}

/* photo_created reads the photo's id and its upload URL (which must be
 * ladder's own, a path: with --blob-store s3 it names the object store,
 * which this load generator does not drive). */
static bool photo_created(struct flow *fl, const char *body, size_t len)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	const char *id = json_string_value(json_object_get(json_object_get(root, "photo"), "id"));
	const char *url =
	    json_string_value(json_object_get(json_object_get(root, "upload"), "url"));
	bool ok = id && url && url[0] == '/' && strlen(id) < ID_MAX && strlen(url) < URL_MAX;

	if (ok) {
		strcpy(fl->id, id);
		strcpy(fl->url, url);
	}
	json_decref(root);
	return ok;
}

static void mix_response(void *ctx, const struct ld_bench_req *req, int status, int err,
			 const char *body, size_t len)
{
	struct ld_scenario *s = ctx;
	int f = (int)(req->tag & 0xffffffffu);
	struct flow *fl;
	bool next = false;

	if (!(req->tag & PHOTO_TAG))
		return;
	fl = &s->flows[f];
	if (fl->stage == ST_CREATE && status == 201 && body && photo_created(fl, body, len)) {
		atomic_fetch_add(&s->started, 1);
		next = true;
	} else if (fl->stage == ST_PUT && status == 204) {
		next = true;
	} else if (fl->stage == ST_COMPLETE && status == 202) {
		atomic_fetch_add(&s->completed, 1);
	} else {
		atomic_fetch_add(&s->photo_failed, 1);
	}
	if (next)
		fl->stage++;
	flow_push(s, f, next);
}

static int mix_next(void *ctx, struct ld_rng *rng, struct ld_buf *b, struct ld_bench_req *req)
{
	struct ld_scenario *s = ctx;
	char path[128];
	int rc, f;

	/* An upload under way first: its next step is due now. */
	if (s->flows && (f = flow_pop(s, true)) >= 0)
		return photo_step(s, f, b, req);
	if (s->flows && ld_rng_unit(rng) < s->photo_start && (f = flow_pop(s, false)) >= 0) {
		s->flows[f].user = s->good[ld_rng_next(rng) % (uint64_t)s->ngood];
		s->flows[f].stage = ST_CREATE;
		return photo_step(s, f, b, req);
	}
	if (ld_rng_unit(rng) < s->write_share) {
		int user = s->good[ld_zipf_next(&s->zu, rng) - 1];
		char key[64] = "";

		req->kind = 1;
		/* With --retries each write carries a key of its own, the same on
		 * each retry: the server replays rather than writing twice. */
		if (s->o->retries > 0)
			snprintf(key, sizeof(key), "Idempotency-Key: \"lb-%016llx%016llx\"\r\n",
				 (unsigned long long)ld_rng_next(rng),
				 (unsigned long long)ld_rng_next(rng));
		rc = ld_buf_printf(b,
				   "POST /v1/items HTTP/1.1\r\nHost: %s\r\nContent-Type: "
				   "application/json\r\nAuthorization: Bearer %s\r\n%s"
				   "Content-Length: %d\r\n\r\n{\"content\":\"%s\"}",
				   s->u->authority, s->token[user], key, CONTENT_LEN + 14,
				   s->content);
	} else {
		req->kind = 0;
		if (ld_rng_next(rng) % 4 != 0) {
			int64_t item = s->item_ok[ld_zipf_next(&s->zi, rng) - 1];
			snprintf(path, sizeof(path), "/v1/items/%s", s->item_id[item]);
		} else {
			int user = s->good[ld_zipf_next(&s->zu, rng) - 1];
			snprintf(path, sizeof(path), "/v1/users/%s/items?limit=20",
				 s->user_id[user]);
		}
		rc = ld_buf_printf(b, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, s->u->authority);
	}
	if (rc)
		return rc;
	req->data = b->data;
	req->len = b->len;
	return 0;
}

void ld_scenario_workload(struct ld_scenario *s, struct ld_bench_workload *wl)
{
	memset(wl, 0, sizeof(*wl));
	wl->next = mix_next;
	wl->on_response = s->flows ? mix_response : NULL;
	wl->ctx = s;
	wl->per_kind = true; /* the report's read/write mix */
}

void ld_scenario_photos(struct ld_scenario *s, struct ld_bench_extra *x)
{
	x->photos_started = atomic_load(&s->started);
	x->photos_completed = atomic_load(&s->completed);
	x->photos_failed = atomic_load(&s->photo_failed);
}

void ld_scenario_free(struct ld_scenario *s)
{
	if (!s)
		return;
	if (s->flows)
		pthread_mutex_destroy(&s->mu);
	free(s->flows);
	free(s->photo);
	free(s->user_id);
	free(s->token);
	free(s->good);
	free(s->item_id);
	free(s->item_ok);
	free(s);
}
