/*
 * scenario.c - the ladder scenario (see scenario.h): seeding through the API,
 * then the read/write mix with Zipf keys.
 */
#include "bench/scenario.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ID_MAX	    24
#define TOKEN_MAX   512
#define CONTENT_LEN 1000 /* the workload's "1 KB of content per write" */

enum { PH_USERS, PH_SESSIONS, PH_ITEMS };

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
	*out = s;
	return 0;
fail_run:
	snprintf(err, errlen, "seeding could not run: %s", strerror(-rc));
fail:
	ld_scenario_free(s);
	return rc;
}

static int mix_next(void *ctx, struct ld_rng *rng, struct ld_buf *b, struct ld_bench_req *req)
{
	struct ld_scenario *s = ctx;
	char path[128];
	int rc;

	if (ld_rng_unit(rng) < s->write_share) {
		int user = s->good[ld_zipf_next(&s->zu, rng) - 1];
		req->kind = 1;
		rc = ld_buf_printf(b,
				   "POST /v1/items HTTP/1.1\r\nHost: %s\r\nContent-Type: "
				   "application/json\r\nAuthorization: Bearer %s\r\n"
				   "Content-Length: %d\r\n\r\n{\"content\":\"%s\"}",
				   s->u->authority, s->token[user], CONTENT_LEN + 14, s->content);
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
	wl->ctx = s;
	wl->per_kind = true; /* the report's read/write mix */
}

void ld_scenario_free(struct ld_scenario *s)
{
	if (!s)
		return;
	free(s->user_id);
	free(s->token);
	free(s->good);
	free(s->item_id);
	free(s->item_ok);
	free(s);
}
