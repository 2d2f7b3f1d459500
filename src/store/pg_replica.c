/*
 * pg_replica.c - read routing for the PostgreSQL driver: the replica list,
 * per-loop lag tracking and rotation, the routing series. The rules are in
 * pg_replica.h; this file says why where it is not obvious.
 */
#include "store/pg_replica.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

/* Binary results: a pg_lsn comes back as 8 bytes, network order. */
const struct ld_pg_rep_stmt ld_pg_rep_stmts[LD_PG_REP_SQL_COUNT] = {
    /* After a commit has returned (with synchronous_commit on, its record
     * is flushed), the flush position is at or past the commit record:
     * a replica that replayed this far has the write. The insert position
     * would run ahead of what is flushed and shipped (rungs.md). */
    [LD_PG_REP_FLUSH_LSN] = {"ladder_flush_lsn", "SELECT pg_current_wal_flush_lsn()"},
    /* A write's token, read on its connection after its COMMIT returned.
     * With synchronous_commit off (a role's or database's setting) the
     * commit record may not be flushed yet, and the flush position may be
     * before it: the insert position is past it then. */
    [LD_PG_REP_COMMIT_LSN] =
	{"ladder_commit_lsn",
	 "SELECT CASE WHEN current_setting('synchronous_commit') = 'off'"
	 " THEN pg_current_wal_insert_lsn() ELSE pg_current_wal_flush_lsn() END"},
    /* NULL on a node not in recovery: never a replica then. */
    [LD_PG_REP_REPLAY_LSN] = {"ladder_replay_lsn", "SELECT pg_last_wal_replay_lsn()"},
};

/* ---- the replica list ------------------------------------------------------ */

static bool starts_conninfo(const char *s)
{
	size_t i = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	/* A comma at the end or before another is a separator too: the
	 * entry between is empty, which is refused. */
	if (!*s || *s == ',')
		return true;
	if (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0)
		return true;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return false;
	while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
	       (s[i] >= '0' && s[i] <= '9') || s[i] == '_')
		i++;
	while (s[i] == ' ' || s[i] == '\t')
		i++;
	return s[i] == '=';
}

/* entry_end returns where the conninfo starting at s ends (a separating
 * comma or the NUL). */
static const char *entry_end(const char *s)
{
	const char *p = s;
	bool uri, quoted = false;

	while (*p == ' ' || *p == '\t')
		p++;
	uri = strncmp(p, "postgresql://", 13) == 0 || strncmp(p, "postgres://", 11) == 0;
	for (; *p; p++) {
		if (!uri && quoted && *p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (!uri && *p == '\'') {
			quoted = !quoted;
			continue;
		}
		if (*p == ',' && !quoted && starts_conninfo(p + 1))
			break;
	}
	return p;
}

int ld_pg_rep_set_init(struct ld_pg_rep_set *set, const char *list, uint64_t max_lag_ns,
		       int (*check)(const char *conninfo, char *why, size_t whylen), char *err,
		       size_t errlen)
{
	const char *p = list ? list : "", *end;
	char why[256];
	size_t n;
	int rc = 0;

	memset(set, 0, sizeof(*set));
	set->max_lag_ns = max_lag_ns;
	while (*p == ' ' || *p == '\t')
		p++;
	while (*p) {
		end = entry_end(p);
		while (*p == ' ' || *p == '\t')
			p++;
		n = (size_t)(end - p);
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (set->n == LD_PG_REPLICAS_MAX) {
			snprintf(err, errlen, "--pg-replicas: more than %d replicas",
				 LD_PG_REPLICAS_MAX);
			rc = -EINVAL;
			goto fail;
		}
		if (n == 0) {
			snprintf(err, errlen, "--pg-replicas: replica %u is empty", set->n + 1);
			rc = -EINVAL;
			goto fail;
		}
		set->r[set->n].conninfo = strndup(p, n);
		if (!set->r[set->n].conninfo) {
			snprintf(err, errlen, "out of memory");
			rc = -ENOMEM;
			goto fail;
		}
		set->n++;
		why[0] = '\0';
		if (check && check(set->r[set->n - 1].conninfo, why, sizeof(why)) != 0) {
			snprintf(err, errlen,
				 "--pg-replicas: replica %u is not a valid conninfo: %s", set->n,
				 why);
			rc = -EINVAL;
			goto fail;
		}
		p = *end ? end + 1 : end;
		if (*end && !*p) {
			snprintf(err, errlen, "--pg-replicas: replica %u is empty", set->n + 1);
			rc = -EINVAL;
			goto fail;
		}
	}
	return 0;
fail:
	ld_pg_rep_set_free(set);
	return rc;
}

void ld_pg_rep_set_free(struct ld_pg_rep_set *set)
{
	unsigned i;

	for (i = 0; i < set->n; i++) {
		free(set->r[i].conninfo);
		set->r[i].conninfo = NULL;
	}
	set->n = 0;
}

unsigned ld_pg_rep_sample_ms(const struct ld_pg_rep_set *set)
{
	uint64_t ms = set->max_lag_ns / 4000000;

	/* A quarter of the bound, so a replica leaves rotation soon after it
	 * passes it; 10 to 100 ms: a few tiny statements a second per loop. */
	if (ms < 10)
		ms = 10;
	if (ms > 100)
		ms = 100;
	return (unsigned)ms;
}

/* ---- per loop ---------------------------------------------------------------- */

static void on_breaker(struct ld_breaker *b, enum ld_breaker_state from, void *udata);

void ld_pg_rep_loop_init(struct ld_pg_rep_loop *l, struct ld_pg_rep_set *set)
{
	char dep[16];
	unsigned k;

	memset(l, 0, sizeof(*l));
	l->set = set;
	for (k = 0; k <= set->n; k++) {
		snprintf(dep, sizeof(dep), k ? "replica%u" : "primary", k);
		ld_breaker_init(&l->br[k], &set->breaker, dep, "store", 0);
		l->br[k].on_change = on_breaker;
		l->br[k].udata = l;
	}
}

void ld_pg_rep_breakers_start(struct ld_pg_rep_loop *l)
{
	unsigned k, loop = atomic_fetch_add_explicit(&l->set->loops, 1, memory_order_relaxed);

	for (k = 0; k <= l->set->n; k++) {
		l->br[k].loop = loop;
		ld_breaker_register(&l->br[k]);
	}
}

static void set_in(struct ld_pg_rep_loop *l, unsigned i, bool in)
{
	struct ld_pg_rep_replica *r = &l->set->r[i];

	if (l->r[i].in == in)
		return;
	l->r[i].in = in;
	if (in) {
		atomic_fetch_add_explicit(&r->in_loops, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&r->ins, 1, memory_order_relaxed);
	} else {
		atomic_fetch_sub_explicit(&r->in_loops, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&r->outs, 1, memory_order_relaxed);
	}
}

void ld_pg_rep_loop_fini(struct ld_pg_rep_loop *l)
{
	unsigned i;

	for (i = 0; i < l->set->n; i++) {
		if (l->r[i].in)
			atomic_fetch_sub_explicit(&l->set->r[i].in_loops, 1, memory_order_relaxed);
		if (l->r[i].up)
			atomic_fetch_sub_explicit(&l->set->r[i].up_loops, 1, memory_order_relaxed);
		l->r[i].in = l->r[i].up = false;
	}
	for (i = 0; i <= l->set->n; i++)
		ld_breaker_unregister(&l->br[i]);
	if (ld_breaker_state(&l->br[0]) != LD_BREAKER_CLOSED) {
		atomic_fetch_sub_explicit(&l->set->primary_unclosed, 1, memory_order_relaxed);
		l->br[0].on_change = NULL; /* counted out once */
		l->br[0].state = LD_BREAKER_CLOSED;
	}
}

static struct ld_pg_rep_sample *sample_at(struct ld_pg_rep_loop *l, unsigned i)
{
	return &l->samples[(l->head + i) % LD_PG_SAMPLES];
}

/* lag_of: how long the primary has had something a replica at pos lacks. */
static uint64_t lag_of(struct ld_pg_rep_loop *l, uint64_t pos, uint64_t now_ns)
{
	unsigned i;

	for (i = 0; i < l->count; i++) {
		const struct ld_pg_rep_sample *s = sample_at(l, i);

		if (s->pos > pos)
			return now_ns > s->t_ns ? now_ns - s->t_ns : 0;
	}
	return 0;
}

static void judge(struct ld_pg_rep_loop *l, unsigned i, uint64_t now_ns)
{
	struct ld_pg_rep_node *n = &l->r[i];
	uint64_t max = l->set->max_lag_ns;

	if (!n->up || !n->known || ld_breaker_state(&l->br[i + 1]) != LD_BREAKER_CLOSED) {
		set_in(l, i, false);
		return;
	}
	n->lag_ns = lag_of(l, n->replay_pos, now_ns);
	atomic_store_explicit(&l->set->r[i].lag_us, n->lag_ns / 1000, memory_order_relaxed);
	if (n->in && n->lag_ns > max)
		set_in(l, i, false);
	else if (!n->in && n->lag_ns <= max / 2)
		set_in(l, i, true);
}

void ld_pg_rep_primary_at(struct ld_pg_rep_loop *l, uint64_t pos, uint64_t now_ns)
{
	uint64_t grain = l->set->max_lag_ns / 100, keep = 2 * l->set->max_lag_ns;
	struct ld_pg_rep_sample *last;
	unsigned i;

	if (!pos)
		return;
	/* Samples older than twice the bound change no verdict once a newer
	 * one is that old too: a replica behind either is out either way. */
	while (l->count >= 2 && sample_at(l, 1)->t_ns + keep <= now_ns) {
		l->head = (l->head + 1) % LD_PG_SAMPLES;
		l->count--;
	}
	last = l->count ? sample_at(l, l->count - 1) : NULL;
	if (last && pos <= last->pos)
		return; /* nothing new */
	if (last && (now_ns - last->t_ns < grain || l->count == LD_PG_SAMPLES)) {
		/* Coalesced: the position is dated earlier than it was seen,
		 * which can only overstate a lag. */
		last->pos = pos;
	} else {
		l->count++;
		last = sample_at(l, l->count - 1);
		last->pos = pos;
		last->t_ns = now_ns;
	}
	for (i = 0; i < l->set->n; i++)
		judge(l, i, now_ns);
}

void ld_pg_rep_replayed(struct ld_pg_rep_loop *l, unsigned k, uint64_t pos, uint64_t now_ns)
{
	struct ld_pg_rep_node *n;

	if (k < 1 || k > l->set->n)
		return;
	n = &l->r[k - 1];
	if (!n->up)
		return; /* an answer from before it went down */
	n->known = pos != 0;
	n->replay_pos = pos;
	if (pos)
		atomic_store_explicit(&l->set->r[k - 1].replay_pos, pos, memory_order_relaxed);
	judge(l, k - 1, now_ns);
}

void ld_pg_rep_up(struct ld_pg_rep_loop *l, unsigned k, bool up)
{
	struct ld_pg_rep_node *n;

	if (k < 1 || k > l->set->n)
		return;
	n = &l->r[k - 1];
	if (n->up == up)
		return;
	n->up = up;
	n->known = false;
	if (up)
		atomic_fetch_add_explicit(&l->set->r[k - 1].up_loops, 1, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&l->set->r[k - 1].up_loops, 1, memory_order_relaxed);
	set_in(l, k - 1, false);
}

/* ---- breakers ---------------------------------------------------------------- */

static void on_breaker(struct ld_breaker *b, enum ld_breaker_state from, void *udata)
{
	struct ld_pg_rep_loop *l = udata;
	unsigned k = (unsigned)(b - l->br);

	/* A replica whose breaker is not closed leaves the rotation now; it
	 * comes back at the first sample after it closes (judge). */
	if (k && ld_breaker_state(b) != LD_BREAKER_CLOSED)
		set_in(l, k - 1, false);
	if (!k && from == LD_BREAKER_CLOSED)
		atomic_fetch_add_explicit(&l->set->primary_unclosed, 1, memory_order_relaxed);
	else if (!k && ld_breaker_state(b) == LD_BREAKER_CLOSED)
		atomic_fetch_sub_explicit(&l->set->primary_unclosed, 1, memory_order_relaxed);
}

bool ld_pg_rep_primary_closed(const struct ld_pg_rep_set *set)
{
	return atomic_load_explicit(&set->primary_unclosed, memory_order_relaxed) == 0;
}

void ld_pg_rep_failed(struct ld_pg_rep_loop *l, unsigned target, uint64_t now_ns, const char *why)
{
	if (target <= l->set->n)
		ld_breaker_failure(&l->br[target], now_ns, false, why);
}

void ld_pg_rep_answered(struct ld_pg_rep_loop *l, unsigned target, uint64_t now_ns)
{
	struct ld_breaker *b;
	bool trial = false;

	if (target > l->set->n)
		return;
	b = &l->br[target];
	/* An answer after the open period is the trial: the node is back. */
	if (ld_breaker_state(b) == LD_BREAKER_OPEN && ld_breaker_ready(b, now_ns))
		(void)ld_breaker_allow(b, now_ns, &trial);
	ld_breaker_success(b, now_ns, ld_breaker_state(b) == LD_BREAKER_HALF_OPEN);
}

bool ld_pg_rep_allow(struct ld_pg_rep_loop *l, unsigned target, uint64_t now_ns)
{
	bool trial;

	/* The trial's outcome comes back as an answer or a failure of the
	 * node, whichever op it is: no per-op bookkeeping. */
	return target > l->set->n || ld_breaker_allow(&l->br[target], now_ns, &trial);
}

bool ld_pg_rep_open_left(const struct ld_pg_rep_loop *l, unsigned target, uint64_t now_ns,
			 uint64_t *left_ns)
{
	const struct ld_breaker *b;
	uint64_t since;

	*left_ns = 0;
	if (target > l->set->n || ld_breaker_state(&l->br[target]) != LD_BREAKER_OPEN)
		return false;
	b = &l->br[target];
	since = now_ns - b->opened_ns;
	*left_ns = since < b->cfg.open_ns ? b->cfg.open_ns - since : 0;
	return true;
}

bool ld_pg_rep_ready(const struct ld_pg_rep_loop *l, unsigned target, uint64_t now_ns)
{
	return target > l->set->n || ld_breaker_ready(&l->br[target], now_ns);
}

unsigned ld_pg_rep_route(struct ld_pg_rep_loop *l, bool replica_ok, uint64_t min_pos, bool *forced)
{
	unsigned n = l->set->n, i, k;
	bool any_in = false;

	*forced = false;
	for (i = 0; replica_ok && i < n; i++) {
		k = (l->next + i) % n;
		if (!l->r[k].in)
			continue;
		any_in = true;
		if (l->r[k].replay_pos < min_pos)
			continue;
		l->next = (k + 1) % n;
		atomic_fetch_add_explicit(&l->set->r[k].reads, 1, memory_order_relaxed);
		return k + 1;
	}
	*forced = any_in;
	if (any_in)
		atomic_fetch_add_explicit(&l->set->token_primary_reads, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->set->primary_reads, 1, memory_order_relaxed);
	return 0;
}

/* ---- metrics ------------------------------------------------------------------- */

#define LD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

void ld_pg_rep_render(struct ld_pg_rep_set *set, struct ld_buf *out)
{
	unsigned i;

	ld_buf_puts(out, "# HELP ladder_pg_reads_total Store reads by the node sent to "
			 "(primary, or replica N of --pg-replicas).\n"
			 "# TYPE ladder_pg_reads_total counter\n");
	ld_buf_printf(out, "ladder_pg_reads_total{target=\"primary\"} %llu\n",
		      LD(set->primary_reads));
	for (i = 0; i < set->n; i++)
		ld_buf_printf(out, "ladder_pg_reads_total{target=\"replica%u\"} %llu\n", i + 1,
			      LD(set->r[i].reads));
	ld_buf_puts(out, "# HELP ladder_pg_token_primary_reads_total Reads sent to the primary "
			 "because no replica in rotation had replayed their Ladder-Session "
			 "token.\n"
			 "# TYPE ladder_pg_token_primary_reads_total counter\n");
	ld_buf_printf(out, "ladder_pg_token_primary_reads_total %llu\n",
		      LD(set->token_primary_reads));
	if (!set->n)
		return;
	ld_buf_puts(out, "# HELP ladder_pg_replica_lag_seconds How long the primary has had "
			 "WAL the replica has not replayed, as a loop last measured it.\n"
			 "# TYPE ladder_pg_replica_lag_seconds gauge\n");
	for (i = 0; i < set->n; i++)
		ld_buf_printf(out, "ladder_pg_replica_lag_seconds{replica=\"%u\"} %.6f\n", i + 1,
			      (double)LD(set->r[i].lag_us) / 1e6);
	ld_buf_puts(out, "# HELP ladder_pg_replica_in_rotation Loop threads that send reads to "
			 "the replica.\n"
			 "# TYPE ladder_pg_replica_in_rotation gauge\n");
	for (i = 0; i < set->n; i++)
		ld_buf_printf(out, "ladder_pg_replica_in_rotation{replica=\"%u\"} %llu\n", i + 1,
			      LD(set->r[i].in_loops));
	ld_buf_puts(out, "# HELP ladder_pg_replica_up Loop threads with a ready connection to "
			 "the replica.\n"
			 "# TYPE ladder_pg_replica_up gauge\n");
	for (i = 0; i < set->n; i++)
		ld_buf_printf(out, "ladder_pg_replica_up{replica=\"%u\"} %llu\n", i + 1,
			      LD(set->r[i].up_loops));
	ld_buf_puts(out, "# HELP ladder_pg_replica_rotation_changes_total Times a loop took the "
			 "replica into (in) or out of (out) its read rotation.\n"
			 "# TYPE ladder_pg_replica_rotation_changes_total counter\n");
	for (i = 0; i < set->n; i++) {
		ld_buf_printf(out,
			      "ladder_pg_replica_rotation_changes_total{replica=\"%u\",to=\"in\"} "
			      "%llu\n",
			      i + 1, LD(set->r[i].ins));
		ld_buf_printf(out,
			      "ladder_pg_replica_rotation_changes_total{replica=\"%u\",to=\"out\"} "
			      "%llu\n",
			      i + 1, LD(set->r[i].outs));
	}
	ld_buf_puts(out, "# HELP ladder_pg_replica_replay_lsn The replica's replay position "
			 "(WAL bytes), as a loop last read it.\n"
			 "# TYPE ladder_pg_replica_replay_lsn gauge\n");
	for (i = 0; i < set->n; i++)
		ld_buf_printf(out, "ladder_pg_replica_replay_lsn{replica=\"%u\"} %llu\n", i + 1,
			      LD(set->r[i].replay_pos));
}

void ld_pg_rep_render_json(struct ld_pg_rep_set *set, struct ld_json *j)
{
	unsigned i;

	ld_json_key(j, "primary_reads");
	ld_json_uint(j, LD(set->primary_reads));
	ld_json_key(j, "token_primary_reads");
	ld_json_uint(j, LD(set->token_primary_reads));
	ld_json_key(j, "max_replica_lag_ms");
	ld_json_uint(j, set->max_lag_ns / 1000000);
	ld_json_key(j, "replicas");
	ld_json_arr_begin(j);
	for (i = 0; i < set->n; i++) {
		const struct ld_pg_rep_replica *r = &set->r[i];

		ld_json_obj_begin(j);
		ld_json_key(j, "replica");
		ld_json_uint(j, i + 1);
		ld_json_key(j, "reads");
		ld_json_uint(j, LD(r->reads));
		ld_json_key(j, "in_rotation_loops");
		ld_json_uint(j, LD(r->in_loops));
		ld_json_key(j, "up_loops");
		ld_json_uint(j, LD(r->up_loops));
		ld_json_key(j, "lag_ms");
		ld_json_double(j, (double)LD(r->lag_us) / 1000.0);
		ld_json_key(j, "replay_lsn");
		ld_json_uint(j, LD(r->replay_pos));
		ld_json_key(j, "rotation_ins");
		ld_json_uint(j, LD(r->ins));
		ld_json_key(j, "rotation_outs");
		ld_json_uint(j, LD(r->outs));
		ld_json_obj_end(j);
	}
	ld_json_arr_end(j);
}
