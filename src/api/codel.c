/*
 * codel.c - the bounded wait queue with a queueing-delay target (codel.h).
 */
#include "api/codel.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

void ld_codel_init(struct ld_codel *q, const struct ld_codel_params *p, uint64_t now_ns)
{
	memset(q, 0, sizeof(*q));
	q->p = *p;
	q->last_empty_ns = now_ns;
}

static unsigned list_of(const struct ld_codel *q, const struct ld_codel_entry *e)
{
	return q->p.writes_first && e->cls == LD_CODEL_WRITE ? 1 : 0;
}

/* unlink_entry takes e out; served: it leaves to be admitted. Only a queue
 * that service emptied has drained (codel.h): one emptied by sheds, or by
 * clients that left, has not, and a newcomer right after finds it still
 * standing. */
static void unlink_entry(struct ld_codel *q, struct ld_codel_entry *e, uint64_t now_ns, bool served)
{
	unsigned i = list_of(q, e);

	if (e->prev)
		e->prev->next = e->next;
	else
		q->list[i].head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		q->list[i].tail = e->prev;
	e->prev = e->next = NULL;
	if (--q->len == 0) {
		if (served)
			q->last_empty_ns = now_ns;
		else
			q->dropped_empty_ns = now_ns;
	}
}

static void append(struct ld_codel *q, struct ld_codel_entry *e)
{
	unsigned i = list_of(q, e);

	e->next = NULL;
	e->prev = q->list[i].tail;
	if (q->list[i].tail)
		q->list[i].tail->next = e;
	else
		q->list[i].head = e;
	q->list[i].tail = e;
	q->len++;
}

int ld_codel_push(struct ld_codel *q, struct ld_codel_entry *e, uint64_t now_ns,
		  struct ld_codel_entry **evicted)
{
	*evicted = NULL;
	/* Empty until now: drained, unless sheds emptied it a moment ago (no
	 * longer than the target: the overload goes on). */
	if (q->len == 0 && (!q->dropped_empty_ns || now_ns - q->dropped_empty_ns > q->p.target_ns))
		q->last_empty_ns = now_ns;
	if (q->len >= q->p.cap) {
		struct ld_codel_entry *r = q->list[0].tail;

		if (!q->p.writes_first || e->cls != LD_CODEL_WRITE || !r)
			return -ENOSPC;
		unlink_entry(q, r, now_ns, false);
		*evicted = r;
	}
	e->enq_ns = now_ns;
	append(q, e);
	return 0;
}

uint64_t ld_codel_allowed_wait(const struct ld_codel *q, uint64_t now_ns)
{
	if (q->len && now_ns - q->last_empty_ns > q->p.interval_ns)
		return q->p.target_ns;
	return q->p.interval_ns;
}

/* waited is how long e has waited at now_ns: 0 for an entry queued after
 * the caller's reading (a shed may dispatch and queue the next pipelined
 * request of its connection with a later one). */
static uint64_t waited(const struct ld_codel_entry *e, uint64_t now_ns)
{
	return now_ns > e->enq_ns ? now_ns - e->enq_ns : 0;
}

/* due_of says why e must go at now_ns (a deadline first), or returns
 * false. */
static bool due_of(const struct ld_codel_entry *e, uint64_t now_ns, uint64_t allowed,
		   enum ld_codel_drop *why)
{
	if (e->deadline_ns && now_ns >= e->deadline_ns)
		*why = LD_CODEL_DEADLINE;
	else if (waited(e, now_ns) > allowed)
		*why = LD_CODEL_DELAY;
	else
		return false;
	return true;
}

struct ld_codel_entry *ld_codel_expire(struct ld_codel *q, uint64_t now_ns, enum ld_codel_drop *why)
{
	uint64_t allowed = ld_codel_allowed_wait(q, now_ns);

	for (unsigned i = 0; i < 2; i++)
		for (struct ld_codel_entry *e = q->list[i].head; e; e = e->next) {
			if (!due_of(e, now_ns, allowed, why))
				continue;
			unlink_entry(q, e, now_ns, false);
			return e;
		}
	return NULL;
}

struct ld_codel_entry *ld_codel_expire_head(struct ld_codel *q, uint64_t now_ns,
					    enum ld_codel_drop *why)
{
	uint64_t allowed = ld_codel_allowed_wait(q, now_ns);

	for (unsigned i = 0; i < 2; i++) {
		struct ld_codel_entry *e = q->list[i].head;

		if (e && due_of(e, now_ns, allowed, why)) {
			unlink_entry(q, e, now_ns, false);
			return e;
		}
	}
	return NULL;
}

uint64_t ld_codel_head_due(const struct ld_codel *q, uint64_t now_ns)
{
	uint64_t allowed = ld_codel_allowed_wait(q, now_ns), next = 0;

	for (unsigned i = 0; i < 2; i++) {
		const struct ld_codel_entry *e = q->list[i].head;

		if (e && (!next || e->enq_ns + allowed + 1 < next))
			next = e->enq_ns + allowed + 1;
	}
	if (q->len && allowed == q->p.interval_ns && q->p.target_ns < allowed &&
	    q->last_empty_ns + q->p.interval_ns + 1 < next)
		next = q->last_empty_ns + q->p.interval_ns + 1;
	return next;
}

struct ld_codel_entry *ld_codel_pop(struct ld_codel *q, uint64_t now_ns)
{
	unsigned i = q->list[1].head ? 1 : 0;
	struct ld_codel_entry *e = q->list[i].head;

	/* Adaptive LIFO (codel.h): once a queue forms, the newest goes first. */
	if (e && waited(e, now_ns) > q->p.target_ns / 2)
		e = q->list[i].tail;
	if (e)
		unlink_entry(q, e, now_ns, true);
	return e;
}

void ld_codel_excuse(struct ld_codel *q, uint64_t now_ns)
{
	q->last_empty_ns = now_ns;
	q->dropped_empty_ns = 0;
}

void ld_codel_remove(struct ld_codel *q, struct ld_codel_entry *e, uint64_t now_ns)
{
	unlink_entry(q, e, now_ns, false);
}

uint64_t ld_codel_next_due(const struct ld_codel *q, uint64_t now_ns)
{
	uint64_t allowed = ld_codel_allowed_wait(q, now_ns), next = 0;

	for (unsigned i = 0; i < 2; i++)
		for (const struct ld_codel_entry *e = q->list[i].head; e; e = e->next) {
			uint64_t due = e->enq_ns + allowed + 1;

			if (e->deadline_ns && e->deadline_ns < due)
				due = e->deadline_ns;
			if (!next || due < next)
				next = due;
		}
	/* The queue turning standing shortens every entry's allowed wait. */
	if (q->len && allowed == q->p.interval_ns && q->p.target_ns < allowed &&
	    q->last_empty_ns + q->p.interval_ns + 1 < next)
		next = q->last_empty_ns + q->p.interval_ns + 1;
	return next;
}

struct ld_codel_entry *ld_codel_first(const struct ld_codel *q, unsigned i)
{
	return i < 2 ? q->list[i].head : NULL;
}
