/*
 * gcra.c - GCRA over a set-associative table of keys; the contract is in
 * gcra.h.
 */
#include "api/gcra.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"

#define NS_PER_S  1000000000ULL
#define NS_PER_MS 1000000ULL

struct slot {
	uint64_t tat; /* 0: empty */
	struct ld_gcra_key key;
};

struct ld_gcra_table {
	size_t nsets; /* power of two */
	uint64_t entries, evictions;
	unsigned char hkey[crypto_shorthash_KEYBYTES];
	struct slot slots[]; /* nsets * LD_GCRA_WAYS */
};

static uint64_t ceil_s(uint64_t ns)
{
	return (ns + NS_PER_S - 1) / NS_PER_S;
}

void ld_gcra_step(uint64_t *tat, const struct ld_gcra_budget *b, uint64_t now_ns,
		  struct ld_gcra_decision *d)
{
	uint64_t window = b->window_ms * NS_PER_MS;
	uint64_t t = window / b->quota ? window / b->quota : 1;
	uint64_t w = t * b->quota; /* the window the integer interval gives */
	uint64_t base = *tat > now_ns ? *tat : now_ns;
	uint64_t next = base + t;

	d->quota = b->quota;
	d->window_s = ceil_s(window) ? ceil_s(window) : 1;
	if (next - now_ns > w) {
		/* One more would put the key more than a window ahead: it fits
		 * once now has moved to next - w. */
		d->allowed = false;
		d->remaining = 0;
		d->retry_after_s = ceil_s(next - w - now_ns);
		if (d->retry_after_s == 0)
			d->retry_after_s = 1;
		d->reset_s = ceil_s(base - now_ns);
		return;
	}
	*tat = next;
	d->allowed = true;
	d->remaining = (uint32_t)((w - (next - now_ns)) / t);
	d->retry_after_s = 0;
	d->reset_s = ceil_s(next - now_ns);
}

void ld_gcra_interval_us(const struct ld_gcra_budget *b, uint64_t *t, uint64_t *w)
{
	uint64_t window = b->window_ms * 1000;

	*t = window / b->quota ? window / b->quota : 1;
	*w = *t * b->quota;
}

void ld_gcra_describe(const struct ld_gcra_budget *b, bool allowed, uint64_t ahead_us,
		      struct ld_gcra_decision *d)
{
	uint64_t t, w, ahead = ahead_us * 1000;

	ld_gcra_interval_us(b, &t, &w);
	t *= 1000;
	w *= 1000;
	d->quota = b->quota;
	d->window_s = ceil_s(b->window_ms * NS_PER_MS) ? ceil_s(b->window_ms * NS_PER_MS) : 1;
	d->allowed = allowed;
	d->reset_s = ceil_s(ahead);
	if (!allowed) {
		d->remaining = 0;
		d->retry_after_s = ahead + t > w ? ceil_s(ahead + t - w) : 0;
		if (d->retry_after_s == 0)
			d->retry_after_s = 1;
		return;
	}
	d->retry_after_s = 0;
	d->remaining = ahead < w ? (uint32_t)((w - ahead) / t) : 0;
}

int ld_gcra_open(unsigned slots, struct ld_gcra_table **out)
{
	struct ld_gcra_table *t;
	size_t nsets = 1, want;

	*out = NULL;
	if (slots == 0)
		return -EINVAL;
	if (sodium_init() < 0)
		return -ENOMEM;
	want = ((size_t)slots + LD_GCRA_WAYS - 1) / LD_GCRA_WAYS;
	while (nsets < want)
		nsets <<= 1;
	t = calloc(1, sizeof(*t) + nsets * LD_GCRA_WAYS * sizeof(struct slot));
	if (!t)
		return -ENOMEM;
	t->nsets = nsets;
	/* A secret hash key: addresses are partly the client's choice, and
	 * keys it could aim at one set would evict each other's debts. */
	crypto_shorthash_keygen(t->hkey);
	*out = t;
	return 0;
}

void ld_gcra_close(struct ld_gcra_table *t)
{
	free(t);
}

void ld_gcra_decide(struct ld_gcra_table *t, const struct ld_gcra_key *k,
		    const struct ld_gcra_budget *b, uint64_t now_ns, struct ld_gcra_decision *d)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t hv;
	struct slot *set, *victim = NULL;
	unsigned i;

	crypto_shorthash(h, (const unsigned char *)k, sizeof(*k), t->hkey);
	memcpy(&hv, h, sizeof(hv));
	set = &t->slots[(hv & (t->nsets - 1)) * LD_GCRA_WAYS];
	for (i = 0; i < LD_GCRA_WAYS; i++) {
		if (set[i].tat && memcmp(&set[i].key, k, sizeof(*k)) == 0) {
			ld_gcra_step(&set[i].tat, b, now_ns, d);
			return;
		}
		if (!victim || set[i].tat < victim->tat)
			victim = &set[i];
	}
	if (victim->tat == 0)
		t->entries++;
	else if (victim->tat > now_ns)
		t->evictions++; /* a debt forgiven: the set is full of live keys */
	victim->key = *k;
	victim->tat = 0;
	ld_gcra_step(&victim->tat, b, now_ns, d);
}

void ld_gcra_stats(const struct ld_gcra_table *t, struct ld_gcra_stats *st)
{
	st->entries = t->entries;
	st->capacity = t->nsets * LD_GCRA_WAYS;
	st->evictions = t->evictions;
}

void ld_gcra_fields(const char *name, const struct ld_gcra_decision *d,
		    char policy[LD_GCRA_FIELD_MAX], char state[LD_GCRA_FIELD_MAX])
{
	snprintf(policy, LD_GCRA_FIELD_MAX, "\"%s\";q=%u;w=%llu", name, (unsigned)d->quota,
		 (unsigned long long)d->window_s);
	snprintf(state, LD_GCRA_FIELD_MAX, "\"%s\";r=%u;t=%llu", name, (unsigned)d->remaining,
		 (unsigned long long)d->reset_s);
}

int ld_gcra_budget_parse(const char *s, struct ld_gcra_budget *b)
{
	const char *slash = strchr(s, '/');
	char num[16];
	unsigned q;
	uint64_t ms;
	size_t n;

	if (!slash)
		return -EINVAL;
	n = (size_t)(slash - s);
	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	if (ld_parse_uint(num, &q) < 0 || q == 0 || ld_parse_duration_ms(slash + 1, &ms) < 0 ||
	    ms == 0 || ms > 86400000ULL)
		return -EINVAL;
	b->quota = q;
	b->window_ms = ms;
	return 0;
}
