/*
 * api.h - the HTTP/JSON API of ladder (api.md), plugged into the server.
 *
 * Handlers run on the loop thread that owns the connection. Anything slow is
 * pushed off it: password hashing to libuv's thread pool, writes to the store's
 * writer thread. A handler always ends in exactly one ld_req_respond().
 */
#ifndef LD_API_H
#define LD_API_H

#include <jansson.h>

#include "api/admission.h"
#include "api/auth.h"
#include "api/ratelimit.h"
#include "api/validate.h"
#include "cache/cache.h"
#include "http/server.h"
#include "obs/stats.h"
#include "store/store.h"

enum ld_route_id {
	LD_ROUTE_NONE = 0, /* no route matched, or the request never parsed */
	LD_ROUTE_USERS,
	LD_ROUTE_USER,
	LD_ROUTE_USER_ITEMS,
	LD_ROUTE_SESSIONS,
	LD_ROUTE_ITEMS,
	LD_ROUTE_ITEM,
	LD_ROUTE_HEALTHZ,
	LD_ROUTE_READYZ,
	LD_ROUTE_METRICS,
	LD_ROUTE_DEBUG_STATS,
	LD_ROUTE_PHOTOS,
	LD_ROUTE_PHOTO,
	LD_ROUTE_PHOTO_CONTENT,
	LD_ROUTE_PHOTO_COMPLETE,
	LD_ROUTE_PHOTO_ORIGINAL,
	LD_ROUTE_PHOTO_V128,
	LD_ROUTE_PHOTO_V512,
	LD_ROUTE_PHOTO_V1600,
	LD_ROUTE_USER_PHOTOS,
	LD_ROUTE_COUNT
};

/* Process-wide application state, read-only once serving. */
struct ld_blob_vt;
struct ld_blob_store;

struct ld_api {
	const struct ld_store_vt *vt;
	struct ld_store *store;
	struct ld_auth auth;
	/* /debug/stats: readable with this bearer token ("" = none), and from
	 * loopback peers unless debug_token_only. */
	const char *admin_token;
	bool debug_token_only;
	unsigned write_queue_cap;	  /* for the stats document */
	const struct ld_blob_vt *blob_vt; /* photo bytes (photos.c) */
	struct ld_blob_store *blobs;
	/* The response cache (cache/cache.h); cvt NULL = none. */
	const struct ld_cache_vt *cvt;
	struct ld_cache *cache;
};

/* Per-loop state. */
struct ld_idem_reaper;
struct ld_api_idem;

struct ld_api_loop {
	struct ld_api *api;
	struct ld_store_conn *store;
	struct ld_cache_loop *cache;   /* NULL without a cache */
	struct ld_idem_reaper *reaper; /* loop 0 only (api/idempotency.h) */
	struct ld_rl_loop *rl;	       /* rate limits (api/ratelimit.h); NULL when off */
	struct ld_adm_loop *adm;       /* admission control (api/admission.h); NULL when off */
};

/* Per-request state (zeroed for each request). */
struct ld_api_req {
	struct ld_req *r;
	struct ld_api *api;
	struct ld_api_loop *al;
	int64_t path_id;
	struct ld_store_op op;
	uv_work_t work;
	int work_rc;
	char password[LD_PASSWORD_MAX + 1]; /* see ld_api_keep_password */
	size_t password_len;
	bool user_found;
	struct ld_item *items;
	void (*store_done)(struct ld_store_op *op); /* the handler's, behind ld_api_submit's */
	struct ld_obs_waiter obs;		    /* /metrics, /debug/stats */
	/* Photos (photos.c): a page, and the bytes and verdict of the blob
	 * work done on the thread pool. */
	struct ld_photo *photos;
	char *blob;
	size_t blob_len;
	int blob_rc;
	int route_version; /* index of the version a GET asks for */
	char why[200];
	/* Cache-aside (ld_api_cache_try): the key looked up, the fill ticket
	 * a miss gave, the wait behind another fill, and what to do on a
	 * miss. */
	struct ld_cache_key ck;
	struct ld_cache_ticket ct;
	struct ld_cache_waiter cw;
	void (*cache_miss)(struct ld_api_req *q);
	char cache_etag[48];
	struct ld_api_idem *idem; /* a keyed write's state (api/idempotency.h), or NULL */
	struct ld_api_rl rl;	  /* the rate-limit decision (api/ratelimit.h) */
	struct ld_api_adm adm;	  /* admission and deadline (api/admission.h) */
	void (*handler)(struct ld_api_req *q); /* the route's, behind admission */
};

/* The hooks for ld_server_run; arg is a struct ld_api. */
void ld_api_app(struct ld_api *api, struct ld_server_app *app);

/* ld_api_profile_routes names the stage profile's routes, "METHOD /path"
 * (index = ld_req.profile_route; 0 = "unmatched"); *n gets the count. The
 * strings live as long as the process. */
const char *const *ld_api_profile_routes(unsigned *n);

/* --- helpers shared by the resource files (api.c) --- */

struct ld_json;

/* ld_api_problem answers with an RFC 9457 problem document. */
void ld_api_problem(struct ld_api_req *q, int status, const char *detail);

void ld_api_problem_fields(struct ld_api_req *q, const struct ld_api_verr *v);

/* ld_api_store_failed answers for a store status that is not OK. */
void ld_api_store_failed(struct ld_api_req *q, int status);

/* ld_api_json_body checks Content-Type (415), length (411) and parses the
 * body (400 on bad JSON). Returns the value (json_decref it; the validators
 * answer 422 for a non-object), or NULL after answering. */
json_t *ld_api_json_body(struct ld_api_req *q);

/* ld_api_authenticate reads the bearer token; returns 0 and sets
 * q->r->user_id, or answers 401 and returns -1. */
int ld_api_authenticate(struct ld_api_req *q);

/* ld_api_cache_try answers a read from the cache when it can: true when
 * it answered (a hit) or parked the request behind another request's fill
 * (it is then answered later, from the cache or through miss). false: the
 * caller goes to the store now, and the response it sends fills the cache
 * (a 200 or 404 sent with ld_api_respond_json or ld_api_problem; for an
 * ETag, set q->cache_etag). miss is what a woken waiter runs to go to the
 * store. */
bool ld_api_cache_try(struct ld_api_req *q, enum ld_cache_kind kind, int64_t id,
		      void (*miss)(struct ld_api_req *q));

/* ld_api_cache_settle fills the cache with the response in q->r (status,
 * out_body) when q holds a fill ticket, or abandons the fill (any status
 * but 200 and 404); no-op otherwise. ld_api_respond_json and
 * ld_api_problem call it. */
void ld_api_cache_settle(struct ld_api_req *q, int status);

/* ld_api_submit sends q->op to the store with done as completion. */
void ld_api_submit(struct ld_api_req *q, void (*done)(struct ld_store_op *op));

/* ld_api_json_status is how a handler that wrote its body with j learns the
 * status to send: status itself when j finished a whole document; otherwise
 * (a cap passed, no memory, a writer misused) the body and the header lines
 * the handler added are replaced by a 500 problem, logged with the request
 * id, and 500 is returned. ld_api_respond_json sends what it decides. */
int ld_api_json_status(struct ld_api_req *q, const struct ld_json *j, int status);
void ld_api_respond_json(struct ld_api_req *q, const struct ld_json *j, int status);

/* ld_api_keep_password copies a validated password into q->password for
 * the hashing thread; -E2BIG (nothing copied) when it is longer than
 * LD_PASSWORD_MAX, which the validators already refuse. */
int ld_api_keep_password(struct ld_api_req *q, const struct ld_str *pw);

/* JSON bodies of the resources. */
void ld_api_write_user(struct ld_json *j, const struct ld_user *u);
void ld_api_write_item(struct ld_json *j, const struct ld_item *it);
/* ld_api_etag writes the quoted entity tag of an item into out (48 bytes). */
void ld_api_etag(const struct ld_item *it, char *out);

/* Keyset-paginated lists (pages.c). ld_api_page_params reads ?limit=
 * (1..LD_LIST_MAX, default 20) and ?cursor=: 0, or -1 after answering 400.
 * ld_api_respond_page answers 200 with {"<name>":[rows],"next_cursor"}:
 * n rows of size bytes each, written by write; the cursor (when has_more)
 * is id_of the last one. */
struct ld_api_page {
	const void *rows;
	size_t size;
	unsigned n;
	bool has_more;
	int64_t (*id_of)(const void *row);
	void (*write)(struct ld_json *j, const void *row);
};
int ld_api_page_params(struct ld_api_req *q, unsigned *limit, int64_t *before);
void ld_api_respond_page(struct ld_api_req *q, const char *name, const struct ld_api_page *pg);

/* Resource handlers (users.c, sessions.c, items.c, ops.c). */
void ld_api_users_create(struct ld_api_req *q);
void ld_api_user_get(struct ld_api_req *q);
void ld_api_user_patch(struct ld_api_req *q);
void ld_api_user_items(struct ld_api_req *q);
void ld_api_sessions_create(struct ld_api_req *q);
void ld_api_items_create(struct ld_api_req *q);
void ld_api_item_get(struct ld_api_req *q);
void ld_api_item_put(struct ld_api_req *q);
void ld_api_item_delete(struct ld_api_req *q);
void ld_api_healthz(struct ld_api_req *q);
void ld_api_readyz(struct ld_api_req *q);
void ld_api_metrics(struct ld_api_req *q);
void ld_api_debug_stats(struct ld_api_req *q);

/* ld_api_store_info fills what the stats renderers need from the store. */
void ld_api_store_info(struct ld_api_req *q, struct ld_obs_store_info *st);
void ld_api_photos_create(struct ld_api_req *q);
void ld_api_photo_get(struct ld_api_req *q);
void ld_api_photo_delete(struct ld_api_req *q);
void ld_api_photo_put_content(struct ld_api_req *q);
void ld_api_photo_complete(struct ld_api_req *q);
void ld_api_photo_version(struct ld_api_req *q);
void ld_api_user_photos(struct ld_api_req *q);

/* Photo settings ([photos] of serve's configuration; photos.c). */
struct ld_photos_config {
	uint64_t upload_max; /* bytes of one original (20MiB) */
	uint64_t max_pixels; /* width x height of an original (50000000) */
	unsigned in_flight;  /* uploads started and not completed, per user (4) */
	uint64_t url_ttl_ms; /* how long an upload URL is good for (15m) */
};
extern struct ld_photos_config ld_photos_cfg;

/* ld_photos_register adds the [photos] section to serve's configuration;
 * call before ld_config_load. */
int ld_photos_register(void);

/* ld_photos_body_max is the server's body_max hook: a PUT to a validly
 * signed upload URL may carry upload_max bytes, every other request
 * max_body (arg: the api). */
uint64_t ld_photos_body_max(const struct ld_http_request *h, void *arg);

/* ld_photos_body_sink is the server's body_sink hook: a PUT to a validly
 * signed upload URL streams its body into a temporary blob (arg: the api);
 * refused with 409 while another upload of the photo is open in this
 * process, 503 when the blob cannot be opened. */
struct ld_body_sink *ld_photos_body_sink(const struct ld_http_request *h, void *arg, int *refuse,
					 const char **why);

#endif
