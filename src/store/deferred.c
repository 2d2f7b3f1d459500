/*
 * deferred.c - the "sqlite-deferred" test driver (deferred.h): each op goes
 * to the SQLite driver with a completion of ours; when SQLite completes it
 * (inline for reads, from the writer for writes), the op waits in a list
 * until a later loop iteration hands it back with the caller's done().
 *
 * Iterations are counted by a check handle: an op that completes during
 * iteration k is due at k + 1 + extra. While anything waits, an idle handle
 * keeps the loop from blocking in poll, so "later" is a few iterations, not
 * the next network event.
 */
#include "store/deferred.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "store/sqlite.h"

struct rec {
	struct ld_store_op *op;
	void (*done)(struct ld_store_op *op); /* the caller's */
	void *udata;
	struct dconn *c;
	uint64_t due_iter;
	struct rec *next;
};

struct dconn {
	struct ld_store_conn *inner; /* NULL after conn_close */
	uv_idle_t idle;
	uv_check_t check;
	struct rec *head, *tail; /* completed by SQLite, not yet handed back */
	uint64_t iter;
	uint64_t rng;
	unsigned inflight; /* submitted, the caller's done() not yet called */
	unsigned handles;
	bool closing;
	bool closed;
};

static const struct ld_store_vt *const inner_vt = &ld_sqlite_vt;

/* Seeds differ per conn but are the same from run to run. */
static _Atomic uint64_t seeds;

static unsigned extra_iters(struct dconn *c)
{
	/* xorshift64 */
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return (unsigned)(c->rng % (LD_DEFERRED_EXTRA_MAX + 1));
}

static void on_check(uv_check_t *h);

static void idle_noop(uv_idle_t *h)
{
}

static void park(struct dconn *c, struct rec *r)
{
	r->due_iter = c->iter + 1 + extra_iters(c);
	r->next = NULL;
	if (c->tail)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	if (!uv_is_active((uv_handle_t *)&c->check)) {
		uv_check_start(&c->check, on_check);
		uv_idle_start(&c->idle, idle_noop);
	}
}

/* inner_done: SQLite is finished with the op; give it its own completion
 * back and park it. */
static void inner_done(struct ld_store_op *op)
{
	struct rec *r = op->udata;

	op->done = r->done;
	op->udata = r->udata;
	park(r->c, r);
}

static void on_closed(uv_handle_t *h)
{
	struct dconn *c = h->data;

	if (--c->handles == 0)
		free(c);
}

static void close_handles(struct dconn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	uv_close((uv_handle_t *)&c->idle, on_closed);
	uv_close((uv_handle_t *)&c->check, on_closed);
}

static void on_check(uv_check_t *h)
{
	struct dconn *c = h->data;
	struct rec *due = NULL, **due_tail = &due, **pp = &c->head, *r, *prev = NULL;
	struct ld_store_op *op;

	/* Take the due ones out first: their done() may submit again, which
	 * parks new records for a later iteration. */
	while ((r = *pp)) {
		if (r->due_iter > c->iter) {
			prev = r;
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		if (c->tail == r)
			c->tail = prev;
		r->next = NULL;
		*due_tail = r;
		due_tail = &r->next;
	}
	c->iter++;
	while ((r = due)) {
		due = r->next;
		op = r->op;
		free(r);
		c->inflight--;
		op->done(op);
	}
	if (!c->head) {
		uv_check_stop(&c->check);
		uv_idle_stop(&c->idle);
	}
	if (c->closing && c->inflight == 0)
		close_handles(c);
}

static int deferred_open(const struct ld_store_config *cfg, struct ld_store **out, char *err,
			 size_t errlen)
{
	return inner_vt->open(cfg, out, err, errlen);
}

static int deferred_conn_open(struct ld_store *s, uv_loop_t *loop, struct ld_store_conn **out)
{
	struct dconn *c = calloc(1, sizeof(*c));
	int rc = -ENOMEM;

	*out = NULL;
	if (!c)
		goto out;
	rc = inner_vt->conn_open(s, loop, &c->inner);
	if (rc != 0) {
		free(c);
		goto out;
	}
	uv_idle_init(loop, &c->idle); /* cannot fail */
	c->idle.data = c;
	uv_check_init(loop, &c->check);
	c->check.data = c;
	c->handles = 2;
	c->rng = 0x9e3779b97f4a7c15ULL * (atomic_fetch_add(&seeds, 1) + 1);
	*out = (struct ld_store_conn *)(void *)c;
out:
	return rc;
}

static void deferred_submit(struct ld_store_conn *conn, struct ld_store_op *op)
{
	struct dconn *c = (struct dconn *)(void *)conn;
	struct rec *r = malloc(sizeof(*r));

	if (!r) {
		op->status = LD_STORE_ERROR;
		op->done(op);
		return;
	}
	r->op = op;
	r->done = op->done;
	r->udata = op->udata;
	r->c = c;
	c->inflight++;
	if (c->closing) {
		op->status = LD_STORE_UNAVAILABLE;
		park(c, r);
		return;
	}
	op->done = inner_done;
	op->udata = r;
	inner_vt->submit(c->inner, op);
}

static int deferred_ping(struct ld_store_conn *conn)
{
	struct dconn *c = (struct dconn *)(void *)conn;

	return c->closing ? -EIO : inner_vt->ping(c->inner);
}

static void deferred_conn_close(struct ld_store_conn *conn)
{
	struct dconn *c = (struct dconn *)(void *)conn;

	if (c->closing)
		return;
	c->closing = true;
	/* SQLite keeps its conn until its writes in flight completed; they come
	 * back through inner_done and are handed back here as usual. */
	inner_vt->conn_close(c->inner);
	c->inner = NULL;
	if (c->inflight == 0)
		close_handles(c);
}

static void deferred_stats(struct ld_store *s, struct ld_store_stats *out)
{
	inner_vt->stats(s, out);
}

static void deferred_close(struct ld_store *s)
{
	inner_vt->close(s);
}

const struct ld_store_vt ld_deferred_vt = {
    .name = "sqlite-deferred",
    .open = deferred_open,
    .conn_open = deferred_conn_open,
    .submit = deferred_submit,
    .ping = deferred_ping,
    .conn_close = deferred_conn_close,
    .stats = deferred_stats,
    .close = deferred_close,
};
