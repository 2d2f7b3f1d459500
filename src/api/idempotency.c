/*
 * idempotency.c - Idempotency-Key on the item writes: the key's syntax, the
 * in-flight registry, the replay, the reaper, the settings and the metrics.
 * The contract is in idempotency.h.
 */
#include "api/idempotency.h"

#include <errno.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/session_token.h"
#include "base/config.h"
#include "obs/stats.h"

/* ---- settings ------------------------------------------------------------ */

struct ld_idem_config ld_idem_cfg = {24ULL * 3600 * 1000, 60000, 256};

#define O(field)                                                                                   \
	offsetof(struct ld_idem_config, field), sizeof(((struct ld_idem_config *)0)->field), 0

/* clang-format off */
static const struct ld_opt idem_opts[] = {
    {"idempotency-retention", 0, "retention", "LADDER_IDEMPOTENCY_RETENTION", LD_OPT_DUR,
     O(retention_ms), "24h", 1, 30ULL * 86400 * 1000, NULL, 0, NULL, NULL, "DURATION",
     "how long the answer to a write with an Idempotency-Key is kept for its retries"},
    {"idempotency-reap-interval", 0, "reap_interval", "LADDER_IDEMPOTENCY_REAP_INTERVAL",
     LD_OPT_DUR, O(reap_interval_ms), "1m", 1, 3600000, NULL, 0, NULL, NULL, "DURATION",
     "how often expired keys are looked for (then deleted a batch at a time)"},
    {"idempotency-reap-batch", 0, "reap_batch", "LADDER_IDEMPOTENCY_REAP_BATCH", LD_OPT_UINT,
     O(reap_batch), "256", 1, 10000, NULL, 0, NULL, NULL, "N",
     "expired keys deleted per transaction"},
};
/* clang-format on */

static const struct ld_opt_section idem_section = {
    "idempotency", idem_opts, sizeof(idem_opts) / sizeof(idem_opts[0]),
    "Idempotency-Key on item writes (docs/api.md, docs/operations.md)"};
static unsigned char idem_sources[sizeof(idem_opts) / sizeof(idem_opts[0])];

int ld_idem_register(void)
{
	return ld_config_register(&idem_section, &ld_idem_cfg, idem_sources);
}

/* ---- metrics ------------------------------------------------------------- */

static _Atomic uint64_t n_replays, n_conflicts, n_mismatches, n_reaped;
static _Atomic long long n_inflight;

void ld_api_idem_metrics(struct ld_buf *out)
{
	ld_buf_printf(
	    out,
	    "# HELP ladder_idempotency_replays_total Keyed writes answered with the answer "
	    "kept for their key.\n"
	    "# TYPE ladder_idempotency_replays_total counter\n"
	    "ladder_idempotency_replays_total %llu\n"
	    "# HELP ladder_idempotency_conflicts_total Keyed writes refused with 409: the key "
	    "was in flight.\n"
	    "# TYPE ladder_idempotency_conflicts_total counter\n"
	    "ladder_idempotency_conflicts_total %llu\n"
	    "# HELP ladder_idempotency_mismatches_total Keyed writes refused with 422: the key "
	    "was kept for another request.\n"
	    "# TYPE ladder_idempotency_mismatches_total counter\n"
	    "ladder_idempotency_mismatches_total %llu\n"
	    "# HELP ladder_idempotency_reaped_total Expired idempotency keys deleted.\n"
	    "# TYPE ladder_idempotency_reaped_total counter\n"
	    "ladder_idempotency_reaped_total %llu\n"
	    "# HELP ladder_idempotency_in_flight Keyed writes being processed now.\n"
	    "# TYPE ladder_idempotency_in_flight gauge\n"
	    "ladder_idempotency_in_flight %lld\n",
	    (unsigned long long)atomic_load(&n_replays),
	    (unsigned long long)atomic_load(&n_conflicts),
	    (unsigned long long)atomic_load(&n_mismatches),
	    (unsigned long long)atomic_load(&n_reaped), (long long)atomic_load(&n_inflight));
}

/* ---- the in-flight registry ---------------------------------------------- */

/* The state of one keyed request, from its key's parse to its answer. */
struct ld_api_idem {
	struct ld_api_req *q;
	struct ld_idem want;		      /* the request's key, fingerprint, status to keep */
	struct ld_idem got;		      /* what the store kept for the key */
	struct ld_store_op look;	      /* IDEM_GET */
	void (*done)(struct ld_store_op *op); /* the handler's */
	int64_t user_id;
	uint64_t hash;
	bool registered;
	struct ld_api_idem *next; /* in its registry bucket */
};

/*
 * One table for the process: a keyed request on any loop must see one in
 * flight on any other. A mutex is enough: only keyed writes take it, for a
 * few list steps, and the write itself costs a commit.
 */
#define BUCKETS 1024

static struct ld_api_idem *buckets[BUCKETS];
static uv_mutex_t reg_mu;
static uv_once_t reg_once = UV_ONCE_INIT;

static void reg_init(void)
{
	if (uv_mutex_init(&reg_mu) != 0)
		abort(); /* cannot happen on Linux; nothing would be safe without it */
}

static uint64_t key_hash(int64_t user, const char *key, size_t n)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)user;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* reg_add registers k; false when its (user, key) is in flight already. */
static bool reg_add(struct ld_api_idem *k)
{
	struct ld_api_idem **b, *e;
	bool added = true;

	uv_once(&reg_once, reg_init);
	k->hash = key_hash(k->user_id, k->want.key, k->want.key_len);
	b = &buckets[k->hash % BUCKETS];
	uv_mutex_lock(&reg_mu);
	for (e = *b; e; e = e->next)
		if (e->hash == k->hash && e->user_id == k->user_id &&
		    e->want.key_len == k->want.key_len &&
		    memcmp(e->want.key, k->want.key, k->want.key_len) == 0)
			break;
	if (e) {
		added = false;
	} else {
		k->next = *b;
		*b = k;
		k->registered = true;
	}
	uv_mutex_unlock(&reg_mu);
	if (added)
		atomic_fetch_add(&n_inflight, 1);
	return added;
}

static void reg_remove(struct ld_api_idem *k)
{
	struct ld_api_idem **pp;

	if (!k->registered)
		return;
	uv_mutex_lock(&reg_mu);
	for (pp = &buckets[k->hash % BUCKETS]; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	uv_mutex_unlock(&reg_mu);
	k->registered = false;
	atomic_fetch_sub(&n_inflight, 1);
}

/* finish ends q's keyed request: out of the registry, freed. Called before
 * the answer is sent, so a retry that follows the answer finds no request
 * in flight. */
static void finish(struct ld_api_req *q)
{
	struct ld_api_idem *k = q->idem;

	if (!k)
		return;
	reg_remove(k);
	q->idem = NULL;
	q->op.idem = NULL;
	free(k);
}

/* ---- the key's syntax ---------------------------------------------------- */

/* An sf-string (RFC 8941 3.3.3): DQUOTE *( unescaped / "\" ( DQUOTE / "\" ) )
 * DQUOTE, unescaped being printable ASCII but DQUOTE and "\". Parameters
 * (";x=1") are refused: the draft gives the key none. */
int ld_idem_key_parse(const char *v, size_t n, char out[LD_IDEM_KEY_MAX + 1])
{
	size_t i = 0, len = 0;
	unsigned char c;

	if (n < 2 || v[0] != '"')
		return -1;
	for (i = 1; i < n; i++) {
		c = (unsigned char)v[i];
		if (c == '"')
			break;
		if (c == '\\') {
			if (++i == n || (v[i] != '"' && v[i] != '\\'))
				return -1;
			c = (unsigned char)v[i];
		} else if (c < 0x20 || c > 0x7e) {
			return -1;
		}
		if (len == LD_IDEM_KEY_MAX)
			return -1;
		out[len++] = (char)c;
	}
	if (i != n - 1 || len == 0) /* no closing quote, something after it, or empty */
		return -1;
	out[len] = '\0';
	return (int)len;
}

#define BAD_KEY                                                                                    \
	"Idempotency-Key must be one quoted string (a Structured Fields sf-string) of 1 to 255 "   \
	"characters"

/* parse reads the key into a new state for q: 1 with q->idem set, 0 when
 * the request has no key, -1 after answering. */
static int parse(struct ld_api_req *q)
{
	const struct ld_http_request *h = &q->r->h;
	const struct ld_http_field *f = NULL;
	struct ld_api_idem *k;
	unsigned i, nf = 0;
	int n;

	for (i = 0; i < h->nfields; i++)
		if (h->fields[i].name_len == 15 &&
		    strncasecmp(h->fields[i].name, "idempotency-key", 15) == 0) {
			f = &h->fields[i];
			nf++;
		}
	if (nf == 0)
		return 0;
	k = calloc(1, sizeof(*k));
	if (!k) {
		ld_api_problem(q, 503, "out of memory; retry after a moment");
		return -1;
	}
	n = nf == 1 ? ld_idem_key_parse(f->value, f->value_len, k->want.key) : -1;
	if (n < 0) {
		free(k);
		ld_api_problem(q, 400, BAD_KEY);
		return -1;
	}
	k->want.key_len = (size_t)n;
	k->q = q;
	k->user_id = q->r->user_id;
	q->idem = k;
	return 1;
}

/* fingerprint hashes what makes two requests "the same request": method,
 * path (the route with its id) and body bytes, each length-prefixed so no
 * two different triples hash alike by concatenation. */
static void fingerprint(const struct ld_req *r, unsigned char *fp)
{
	crypto_generichash_state st;
	uint64_t len[3] = {r->h.method_len, r->h.path_len, r->body_len};

	crypto_generichash_init(&st, NULL, 0, LD_IDEM_FP_LEN);
	crypto_generichash_update(&st, (const unsigned char *)len, sizeof(len));
	crypto_generichash_update(&st, (const unsigned char *)r->h.method_str, r->h.method_len);
	crypto_generichash_update(&st, (const unsigned char *)r->h.path, r->h.path_len);
	if (r->body_len)
		crypto_generichash_update(&st, (const unsigned char *)r->body, r->body_len);
	crypto_generichash_final(&st, fp, LD_IDEM_FP_LEN);
}

/* ---- the request path ---------------------------------------------------- */

static void conflict(struct ld_api_req *q)
{
	atomic_fetch_add(&n_conflicts, 1);
	ld_req_header(q->r, "Retry-After", "1");
	ld_api_problem(q, 409,
		       "a request with this Idempotency-Key is being processed; retry to get "
		       "its answer");
}

/* written: the keyed write is back. A CONFLICT is the key another
 * process's request kept first (the write was undone); anything else is
 * the handler's to answer, without the registration. */
static void written(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;
	void (*done)(struct ld_store_op * op) = q->idem->done;

	finish(q);
	if (op->status == LD_STORE_CONFLICT) {
		conflict(q);
		return;
	}
	done(op);
}

static void looked_up(struct ld_store_op *op)
{
	struct ld_api_idem *k =
	    (struct ld_api_idem *)((char *)op - offsetof(struct ld_api_idem, look));
	struct ld_api_req *q = k->q;
	struct ld_item item;
	uint64_t pos;
	int status;

	/* The lookup is a store read like any other (it skips ld_api_submit:
	 * q->op holds the write meanwhile). */
	ld_obs_count_read(q->r->loop->index);
	if (op->status == LD_STORE_NOT_FOUND) {
		/* None kept: this request is the first (or the earlier ones
		 * failed). The write carries the key. */
		q->op.idem = &k->want;
		ld_api_submit(q, written);
		return;
	}
	if (op->status != LD_STORE_OK) {
		status = op->status;
		finish(q);
		ld_api_store_failed(q, status);
		return;
	}
	if (sodium_memcmp(k->got.fp, k->want.fp, LD_IDEM_FP_LEN) != 0) {
		finish(q);
		atomic_fetch_add(&n_mismatches, 1);
		ld_api_problem(q, 422,
			       "this Idempotency-Key was used for another request (a different "
			       "method, path or body)");
		return;
	}
	status = k->got.status;
	memcpy(&item, &op->item, sizeof(item));
	pos = op->commit_pos;
	finish(q); /* frees op */
	atomic_fetch_add(&n_replays, 1);
	ld_req_header(q->r, "Idempotent-Replayed", "true");
	if (pos) {
		/* At or past the kept write's commit (store.h): the replay
		 * reads back like the first answer. */
		char tok[LD_SESSION_TOKEN_MAX];

		ld_session_token_format(pos, tok);
		ld_req_header_str(q->r, "Ladder-Session", tok);
	}
	ld_api_item_replay(q, status, &item);
}

void ld_api_idem_submit(struct ld_api_req *q, int status, void (*done)(struct ld_store_op *op))
{
	struct ld_api_idem *k;
	int rc = parse(q);

	if (rc < 0)
		return;
	if (rc == 0) {
		ld_api_submit(q, done);
		return;
	}
	k = q->idem;
	k->want.status = status;
	k->done = done;
	fingerprint(q->r, k->want.fp);
	if (!reg_add(k)) {
		finish(q);
		conflict(q);
		return;
	}
	memset(&k->look, 0, sizeof(k->look));
	k->look.kind = LD_OP_IDEM_GET;
	k->look.actor_id = k->user_id;
	memcpy(&k->got, &k->want, sizeof(k->got));
	k->look.idem = &k->got;
	k->look.deadline_ns = ld_api_adm_store_deadline(q, uv_hrtime()); /* the request's budget */
	k->look.done = looked_up;
	k->look.udata = q;
	q->api->vt->submit(q->al->store, &k->look);
}

/* ---- the reaper ---------------------------------------------------------- */

struct ld_idem_reaper {
	const struct ld_store_vt *vt;
	struct ld_store_conn *store;
	uv_timer_t timer;
	struct ld_store_op op;
	bool busy;    /* op is with the store */
	bool stopped; /* stop was called */
	bool closed;  /* the timer's close callback ran */
};

static void reap_tick(uv_timer_t *t);
static void reaped(struct ld_store_op *op);

static void reaper_free_if_done(struct ld_idem_reaper *rp)
{
	if (rp->stopped && rp->closed && !rp->busy)
		free(rp);
}

static void reap_submit(struct ld_idem_reaper *rp)
{
	memset(&rp->op, 0, sizeof(rp->op));
	rp->op.kind = LD_OP_IDEM_REAP;
	rp->op.limit = ld_idem_cfg.reap_batch ? ld_idem_cfg.reap_batch : 256;
	rp->op.done = reaped;
	rp->op.udata = rp;
	rp->busy = true;
	rp->vt->submit(rp->store, &rp->op);
}

/* reaped: a full batch means more may wait; the next goes at once, as a
 * transaction of its own, so writes queued meanwhile go between them. */
static void reaped(struct ld_store_op *op)
{
	struct ld_idem_reaper *rp = op->udata;

	rp->busy = false;
	if (op->status == LD_STORE_OK)
		atomic_fetch_add(&n_reaped, op->nitems);
	if (rp->stopped) {
		reaper_free_if_done(rp);
		return;
	}
	if (op->status == LD_STORE_OK && op->nitems == op->limit) {
		reap_submit(rp);
		return;
	}
	uv_timer_start(&rp->timer, reap_tick, ld_idem_cfg.reap_interval_ms, 0);
}

static void reap_tick(uv_timer_t *t)
{
	struct ld_idem_reaper *rp = t->data;

	if (rp->stopped || rp->busy)
		return;
	reap_submit(rp);
}

static void reap_closed(uv_handle_t *h)
{
	struct ld_idem_reaper *rp = h->data;

	rp->closed = true;
	reaper_free_if_done(rp);
}

int ld_api_idem_reaper_start(struct ld_api_loop *al, uv_loop_t *loop)
{
	struct ld_idem_reaper *rp = calloc(1, sizeof(*rp));

	if (!rp)
		return -ENOMEM;
	rp->vt = al->api->vt;
	rp->store = al->store;
	uv_timer_init(loop, &rp->timer);
	rp->timer.data = rp;
	uv_timer_start(&rp->timer, reap_tick, ld_idem_cfg.reap_interval_ms, 0);
	al->reaper = rp;
	return 0;
}

void ld_api_idem_reaper_stop(struct ld_api_loop *al)
{
	struct ld_idem_reaper *rp = al->reaper;

	if (!rp)
		return;
	al->reaper = NULL;
	rp->stopped = true;
	uv_timer_stop(&rp->timer);
	uv_close((uv_handle_t *)&rp->timer, reap_closed);
}
