/*
 * breaker.c - the circuit breaker (breaker.h has the rules).
 */
#include "base/breaker.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "obs/log.h"

static uv_mutex_t reg_lock;
static uv_once_t reg_once = UV_ONCE_INIT;
static struct ld_breaker *reg_head;

static void reg_init(void)
{
	uv_mutex_init(&reg_lock);
}

const char *ld_breaker_state_name(enum ld_breaker_state s)
{
	return s == LD_BREAKER_OPEN ? "open" : s == LD_BREAKER_HALF_OPEN ? "half-open" : "closed";
}

static void win_clear(struct ld_breaker *b)
{
	memset(b->win, 0, sizeof(b->win));
}

void ld_breaker_init(struct ld_breaker *b, const struct ld_breaker_config *cfg, const char *dep,
		     const char *name, unsigned loop)
{
	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	if (!b->cfg.trials)
		b->cfg.trials = 1;
	if (!b->cfg.successes)
		b->cfg.successes = 1;
	if (b->cfg.rate_pct > 100)
		b->cfg.rate_pct = 100;
	snprintf(b->dep, sizeof(b->dep), "%s", dep);
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->loop = loop;
	b->state = LD_BREAKER_CLOSED;
}

void ld_breaker_register(struct ld_breaker *b)
{
	uv_once(&reg_once, reg_init);
	uv_mutex_lock(&reg_lock);
	if (!b->registered) {
		b->registered = true;
		b->reg_next = reg_head;
		reg_head = b;
	}
	uv_mutex_unlock(&reg_lock);
}

void ld_breaker_unregister(struct ld_breaker *b)
{
	struct ld_breaker **p;

	uv_once(&reg_once, reg_init);
	uv_mutex_lock(&reg_lock);
	for (p = &reg_head; *p && *p != b; p = &(*p)->reg_next)
		;
	if (*p)
		*p = b->reg_next;
	b->registered = false;
	uv_mutex_unlock(&reg_lock);
}

/* set_state logs the change with why (the failure that caused it) and rule
 * (which rule decided: "in-a-row", "rate", "half-open", "trial", "time"). */
static void set_state(struct ld_breaker *b, enum ld_breaker_state to, uint64_t now_ns,
		      const char *why, const char *rule)
{
	enum ld_breaker_state from = b->state;
	char msg[64], loop[16];

	if (from == to)
		return;
	b->state = to;
	b->trials_out = b->trial_ok = 0;
	if (to == LD_BREAKER_OPEN)
		b->opened_ns = now_ns;
	else if (to == LD_BREAKER_CLOSED) {
		/* A fresh start: the failures that opened it say nothing now. */
		b->in_row = 0;
		win_clear(b);
	}
	atomic_store_explicit(&b->gauge, (int)to, memory_order_relaxed);
	atomic_fetch_add_explicit(&b->into[to], 1, memory_order_relaxed);
	snprintf(msg, sizeof(msg), "%s breaker %s", b->dep, ld_breaker_state_name(to));
	snprintf(loop, sizeof(loop), "%u", b->loop);
	ld_log_event(to == LD_BREAKER_OPEN ? "warn" : "info", msg,
		     (const char *const[]){"name", b->name, "loop", loop, "from",
					   ld_breaker_state_name(from), "why", why ? why : "",
					   "rule", rule, NULL});
	if (b->on_change)
		b->on_change(b, from, b->udata);
}

/* ---- the failure-rate window ------------------------------------------- */

static uint64_t slot_of(const struct ld_breaker *b, uint64_t now_ns)
{
	uint64_t width = b->cfg.window_ns / LD_BREAKER_BUCKETS;

	return now_ns / (width ? width : 1) + 1; /* 0 marks an unused bucket */
}

static void win_add(struct ld_breaker *b, uint64_t now_ns, bool failed)
{
	uint64_t slot;
	unsigned i;

	if (!b->cfg.rate_pct)
		return;
	slot = slot_of(b, now_ns);
	i = (unsigned)(slot % LD_BREAKER_BUCKETS);
	if (b->win[i].slot != slot) {
		b->win[i].slot = slot;
		b->win[i].ok = b->win[i].failed = 0;
	}
	if (failed)
		b->win[i].failed++;
	else
		b->win[i].ok++;
}

/* rate_tripped: enough outcomes in the window and too many failed. */
static bool rate_tripped(const struct ld_breaker *b, uint64_t now_ns)
{
	uint64_t slot, ok = 0, failed = 0;
	unsigned i;

	if (!b->cfg.rate_pct)
		return false;
	slot = slot_of(b, now_ns);
	for (i = 0; i < LD_BREAKER_BUCKETS; i++) {
		if (!b->win[i].slot || b->win[i].slot + LD_BREAKER_BUCKETS <= slot)
			continue; /* older than the window */
		ok += b->win[i].ok;
		failed += b->win[i].failed;
	}
	return ok + failed >= b->cfg.min_calls && ok + failed > 0 &&
	       failed * 100 >= (uint64_t)b->cfg.rate_pct * (ok + failed);
}

/* ---- calls and outcomes ------------------------------------------------- */

static bool open_over(const struct ld_breaker *b, uint64_t now_ns)
{
	return now_ns - b->opened_ns >= b->cfg.open_ns;
}

bool ld_breaker_ready(const struct ld_breaker *b, uint64_t now_ns)
{
	switch (b->state) {
	case LD_BREAKER_CLOSED:
		return true;
	case LD_BREAKER_OPEN:
		return open_over(b, now_ns);
	default:
		return b->trials_out < b->cfg.trials;
	}
}

bool ld_breaker_allow(struct ld_breaker *b, uint64_t now_ns, bool *trial)
{
	*trial = false;
	if (b->state == LD_BREAKER_OPEN && open_over(b, now_ns))
		set_state(b, LD_BREAKER_HALF_OPEN, now_ns, "the open period is over", "time");
	if (b->state == LD_BREAKER_CLOSED)
		return true;
	if (b->state == LD_BREAKER_HALF_OPEN && b->trials_out < b->cfg.trials) {
		b->trials_out++;
		*trial = true;
		return true;
	}
	atomic_fetch_add_explicit(&b->refused, 1, memory_order_relaxed);
	return false;
}

void ld_breaker_cancel(struct ld_breaker *b, bool trial)
{
	if (trial && b->state == LD_BREAKER_HALF_OPEN && b->trials_out)
		b->trials_out--;
}

void ld_breaker_success(struct ld_breaker *b, uint64_t now_ns, bool trial)
{
	switch (b->state) {
	case LD_BREAKER_CLOSED:
		b->in_row = 0;
		win_add(b, now_ns, false);
		break;
	case LD_BREAKER_HALF_OPEN:
		if (!trial)
			break; /* sent before it opened: says nothing of now */
		if (b->trials_out)
			b->trials_out--;
		if (++b->trial_ok >= b->cfg.successes)
			set_state(b, LD_BREAKER_CLOSED, now_ns, "trial calls succeeded", "trial");
		break;
	default:
		break;
	}
}

void ld_breaker_failure(struct ld_breaker *b, uint64_t now_ns, bool trial, const char *why)
{
	(void)trial; /* any failure in half-open reopens it, trial or not */
	switch (b->state) {
	case LD_BREAKER_CLOSED:
		b->in_row++;
		win_add(b, now_ns, true);
		if (b->cfg.failures && b->in_row >= b->cfg.failures)
			set_state(b, LD_BREAKER_OPEN, now_ns, why, "in-a-row");
		else if (rate_tripped(b, now_ns))
			set_state(b, LD_BREAKER_OPEN, now_ns, why, "rate");
		break;
	case LD_BREAKER_HALF_OPEN:
		set_state(b, LD_BREAKER_OPEN, now_ns, why, "half-open");
		break;
	default:
		b->opened_ns = now_ns; /* still failing: stay open a while longer */
		break;
	}
}

/* ---- metrics ----------------------------------------------------------------- */

#define LD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

int ld_breaker_render_metrics(struct ld_buf *out)
{
	static const enum ld_breaker_state all[] = {LD_BREAKER_CLOSED, LD_BREAKER_OPEN,
						    LD_BREAKER_HALF_OPEN};
	struct ld_breaker *b;

	uv_once(&reg_once, reg_init);
	uv_mutex_lock(&reg_lock);
	if (!reg_head)
		goto out;
	ld_buf_puts(out, "# HELP ladder_breaker_state A dependency's circuit breaker on a loop: "
			 "0 closed, 1 open, 2 half-open.\n"
			 "# TYPE ladder_breaker_state gauge\n");
	for (b = reg_head; b; b = b->reg_next)
		ld_buf_printf(out, "ladder_breaker_state{dep=\"%s\",name=\"%s\",loop=\"%u\"} %d\n",
			      b->dep, b->name, b->loop,
			      atomic_load_explicit(&b->gauge, memory_order_relaxed));
	ld_buf_puts(out, "# HELP ladder_breaker_transitions_total Changes of a breaker's state, "
			 "by the state it went to.\n"
			 "# TYPE ladder_breaker_transitions_total counter\n");
	for (b = reg_head; b; b = b->reg_next)
		for (unsigned i = 0; i < 3; i++)
			ld_buf_printf(out,
				      "ladder_breaker_transitions_total{dep=\"%s\",name=\"%s\","
				      "loop=\"%u\",to=\"%s\"} %llu\n",
				      b->dep, b->name, b->loop, ld_breaker_state_name(all[i]),
				      LD(b->into[all[i]]));
	ld_buf_puts(out, "# HELP ladder_breaker_refused_total Calls a breaker refused at once "
			 "(open, or half-open with its trials out).\n"
			 "# TYPE ladder_breaker_refused_total counter\n");
	for (b = reg_head; b; b = b->reg_next)
		ld_buf_printf(out,
			      "ladder_breaker_refused_total{dep=\"%s\",name=\"%s\",loop=\"%u\"} "
			      "%llu\n",
			      b->dep, b->name, b->loop, LD(b->refused));
out:
	uv_mutex_unlock(&reg_lock);
	return ld_buf_error(out);
}
