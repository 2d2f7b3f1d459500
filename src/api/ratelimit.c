/*
 * ratelimit.c - the [ratelimit] settings, the client address, the local
 * backend, the decision before each handler and the metrics. The contract
 * is in ratelimit.h.
 */
#include "api/ratelimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "api/api.h"
#include "api/ratelimit_int.h"
#include "base/config.h"
#include "obs/stats.h"
#include "redis/redis.h"

/* ---- settings ------------------------------------------------------------ */

struct ld_rl_config ld_rl_cfg;

const char *const ld_rl_budget_names[LD_RL_NBUDGETS] = {"user-reads", "user-writes", "addr-reads",
							"addr-writes"};

static int budget_parse(const struct ld_opt *o, void *base, const char *value, char *why,
			size_t whylen)
{
	struct ld_rl_budget_opt *bo = (struct ld_rl_budget_opt *)((char *)base + o->off);
	struct ld_gcra_budget b;

	if (strlen(value) >= sizeof(bo->text) || ld_gcra_budget_parse(value, &b) != 0) {
		snprintf(why, whylen,
			 "'%.40s' is not a budget (QUOTA/WINDOW: requests per window, as "
			 "600/1m or 20/1s)",
			 value);
		return -EINVAL;
	}
	snprintf(bo->text, sizeof(bo->text), "%s", value);
	bo->b = b;
	return 0;
}

#define O(field) offsetof(struct ld_rl_config, field), sizeof(((struct ld_rl_config *)0)->field), 0
#define B(i)	 offsetof(struct ld_rl_config, budget[i]), sizeof(struct ld_rl_budget_opt), 0

/* clang-format off */
static const struct ld_opt rl_opts[] = {
    {"ratelimit", 0, "enabled", "LADDER_RATELIMIT", LD_OPT_BOOL, O(enabled), "on", 0, 0, NULL, 0,
     NULL, NULL, "on|off", "per-client rate limits on the API routes (off: none at all)"},
    {"ratelimit-user-reads", 0, "user_reads", "LADDER_RATELIMIT_USER_READS", LD_OPT_FN,
     B(LD_RL_USER_READS), "2000/10s", 0, 0, NULL, 0, budget_parse, NULL, "QUOTA/WINDOW",
     "GET/HEAD per authenticated user"},
    {"ratelimit-user-writes", 0, "user_writes", "LADDER_RATELIMIT_USER_WRITES", LD_OPT_FN,
     B(LD_RL_USER_WRITES), "600/10s", 0, 0, NULL, 0, budget_parse, NULL, "QUOTA/WINDOW",
     "other methods per authenticated user"},
    {"ratelimit-addr-reads", 0, "addr_reads", "LADDER_RATELIMIT_ADDR_READS", LD_OPT_FN,
     B(LD_RL_ADDR_READS), "2000/10s", 0, 0, NULL, 0, budget_parse, NULL, "QUOTA/WINDOW",
     "GET/HEAD without a valid token, per client address"},
    {"ratelimit-addr-writes", 0, "addr_writes", "LADDER_RATELIMIT_ADDR_WRITES", LD_OPT_FN,
     B(LD_RL_ADDR_WRITES), "120/1m", 0, 0, NULL, 0, budget_parse, NULL, "QUOTA/WINDOW",
     "writes without a valid token (sign-up, login), per client address"},
    {"trusted-proxy", 0, "trusted_proxy", "LADDER_TRUSTED_PROXY", LD_OPT_STR, O(trusted_proxy),
     "", 0, 0, NULL, 0, NULL, NULL, "CIDR[,CIDR]",
     "proxies whose forwarded header (--forwarded-header) names the client"},
    {"forwarded-header", 0, "forwarded_header", "LADDER_FORWARDED_HEADER", LD_OPT_STR,
     O(forwarded_header), "x-forwarded-for", 0, 0, "x-forwarded-for|forwarded", 0, NULL, NULL,
     "x-forwarded-for|forwarded",
     "the one field the trusted proxies write (all its lines; the other field is ignored)"},
    {"ratelimit-ipv6-48-scale", 0, "ipv6_48_scale", "LADDER_RATELIMIT_IPV6_48_SCALE",
     LD_OPT_UINT, O(ipv6_48_scale), "8", 1, 65536, NULL, 0, NULL, NULL, "N",
     "an IPv6 /48 together gets N times an address budget (each /64 gets one)"},
    {"ratelimit-exempt", 0, "exempt", "LADDER_RATELIMIT_EXEMPT", LD_OPT_STR, O(exempt),
     "127.0.0.0/8,::1", 0, 0, NULL, 0, NULL, NULL, "CIDR[,CIDR]",
     "client addresses never limited (\"\" = none)"},
    {"ratelimit-table-size", 0, "table_size", "LADDER_RATELIMIT_TABLE_SIZE", LD_OPT_UINT,
     O(table_size), "16384", 8, 1u << 24, NULL, 0, NULL, NULL, "N",
     "keys remembered per loop (32 bytes each); the stalest make room"},
    {"ratelimit-store", 0, "backend", "LADDER_RATELIMIT_STORE", LD_OPT_STR, O(store), "local", 0, 0,
     "local|redis", 0, NULL, NULL, "local|redis",
     "where the state lives: per node (local), or in Redis (--redis), shared by every node"},
    {"ratelimit-nodes", 0, "nodes", "LADDER_RATELIMIT_NODES", LD_OPT_UINT, O(nodes), "1", 1, 10000,
     NULL, 0, NULL, NULL, "N",
     "nodes sharing the budgets (store redis): while Redis is away each enforces 1/N locally"},
};
/* clang-format on */

static const struct ld_opt_section rl_section = {
    "ratelimit", rl_opts, sizeof(rl_opts) / sizeof(rl_opts[0]),
    "Rate limits per user and per client address (docs/operations.md)"};
static unsigned char rl_sources[sizeof(rl_opts) / sizeof(rl_opts[0])];

int ld_rl_register(void)
{
	return ld_config_register(&rl_section, &ld_rl_cfg, rl_sources);
}

/* ---- addresses ----------------------------------------------------------- */

/* parse_addr reads an IPv4 or IPv6 literal of n bytes into a 16-byte
 * IPv6 form; *v4 says which it was. 0 or -1. */
static int parse_addr(const char *s, size_t n, uint8_t out[16], bool *v4)
{
	char buf[64];
	struct in_addr a4;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*v4 = true;
		return 0;
	}
	*v4 = false;
	return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

int ld_rl_cidr_list(const char *s, struct ld_rl_cidr *out, unsigned cap, unsigned *n, char *err,
		    size_t errlen)
{
	const char *p = s;

	*n = 0;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *slash;
		size_t alen;
		unsigned bits, max;
		bool v4;

		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		slash = memchr(p, '/', len);
		alen = slash ? (size_t)(slash - p) : len;
		if (*n == cap) {
			snprintf(err, errlen, "more than %u entries", cap);
			return -EINVAL;
		}
		if (parse_addr(p, alen, out[*n].addr, &v4) != 0)
			goto bad;
		max = v4 ? 32 : 128;
		bits = max;
		if (slash) {
			char num[8];
			size_t nl = len - alen - 1;

			if (nl == 0 || nl >= sizeof(num))
				goto bad;
			memcpy(num, slash + 1, nl);
			num[nl] = '\0';
			if (ld_parse_uint(num, &bits) < 0 || bits > max)
				goto bad;
		}
		out[*n].prefix = v4 ? 96 + bits : bits;
		(*n)++;
		if (!end)
			break;
		p = end + 1;
		continue;
	bad:
		snprintf(err, errlen, "'%.*s' is not an address or CIDR (as 10.0.0.0/8 or ::1)",
			 (int)(len > 60 ? 60 : len), p);
		return -EINVAL;
	}
	return 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	return rest == 0 || ((a[full] ^ b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

bool ld_rl_cidr_match(const struct ld_rl_cidr *c, unsigned n, const uint8_t addr[16])
{
	for (unsigned i = 0; i < n; i++)
		if (prefix_match(c[i].addr, addr, c[i].prefix))
			return true;
	return false;
}

/* node_addr reads an address that may carry a port: 1.2.3.4, 1.2.3.4:80,
 * [2001:db8::1], [2001:db8::1]:80, or a bare IPv6 literal. 0 or -1. */
static int node_addr(const char *v, const char *ve, uint8_t out[16])
{
	const char *colon;
	bool v4;

	if (v < ve && *v == '[') {
		const char *rb = memchr(v, ']', (size_t)(ve - v));

		/* Nothing but a port may follow the bracket. */
		if (!rb || (rb + 1 < ve && rb[1] != ':'))
			return -1;
		return parse_addr(v + 1, (size_t)(rb - v - 1), out, &v4);
	}
	/* IPv4 with a port: cut at the one colon (IPv6 has several). */
	colon = memchr(v, ':', (size_t)(ve - v));
	if (colon && !memchr(colon + 1, ':', (size_t)(ve - colon - 1)))
		ve = colon;
	return parse_addr(v, (size_t)(ve - v), out, &v4);
}

/* forwarded_for finds the address in one element of a Forwarded list
 * (";"-separated pairs): for=1.2.3.4, for="1.2.3.4:80", for="[2001:db8::1]:80". */
static int forwarded_for(const char *p, size_t n, uint8_t out[16])
{
	const char *end = p + n;

	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *pe = semi ? semi : end;

		while (p < pe && (*p == ' ' || *p == '\t'))
			p++;
		if (pe - p > 4 && strncasecmp(p, "for=", 4) == 0) {
			const char *v = p + 4, *ve = pe;

			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (ve - v >= 2 && *v == '"' && ve[-1] == '"')
				v++, ve--;
			return node_addr(v, ve, out);
		}
		p = pe + 1;
	}
	return -1;
}

/* pick_line walks one line of the field right to left. 1: an entry that
 * is not a trusted proxy, in out; 0: every entry a trusted proxy (the
 * leftmost in out, *any set); -1: an entry that cannot be read. */
static int pick_line(const char *v, size_t n, bool forwarded, const struct ld_rl_cidr *trusted,
		     unsigned ntrusted, uint8_t out[16], bool *any)
{
	const char *end = v + n;

	while (end > v) {
		const char *p = end, *s, *e;
		uint8_t a[16];

		while (p > v && p[-1] != ',')
			p--;
		s = p, e = end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((forwarded ? forwarded_for(s, (size_t)(e - s), a) : node_addr(s, e, a)) != 0)
			return -1;
		memcpy(out, a, 16);
		*any = true;
		if (!ld_rl_cidr_match(trusted, ntrusted, a))
			return 1;
		end = p > v ? p - 1 : v;
	}
	return 0;
}

int ld_rl_forwarded_client(const char *const *v, const size_t *n, unsigned nlines, bool forwarded,
			   const struct ld_rl_cidr *trusted, unsigned ntrusted, uint8_t out[16])
{
	bool any = false;

	/* Right to left, last line first: each proxy appends (to the last
	 * line, or as a line of its own), so the right end is what our own
	 * proxies wrote and the left what the client may have made up. An
	 * entry we cannot read before we reach the client leaves the client
	 * unknown: the trusted proxy it came through is not the client. */
	for (unsigned i = nlines; i-- > 0;) {
		int rc = pick_line(v[i], n[i], forwarded, trusted, ntrusted, out, &any);

		if (rc != 0)
			return rc > 0 ? 0 : -1;
	}
	return any ? 0 : -1;
}

/* share divides each budget's quota by n, rounded up (the window kept),
 * and gives the /48 budgets scale times the address ones. */
static void share(const struct ld_rl_budget_opt *in, struct ld_gcra_budget *out,
		  struct ld_gcra_budget *out48, uint64_t n, unsigned scale)
{
	for (unsigned i = 0; i < LD_RL_NBUDGETS; i++) {
		out[i] = in[i].b;
		out[i].quota = (uint32_t)((in[i].b.quota + n - 1) / n);
	}
	for (unsigned i = 0; i < 2; i++) {
		uint64_t q = (uint64_t)out[LD_RL_ADDR_READS + i].quota * scale;

		out48[i] = out[LD_RL_ADDR_READS + i];
		out48[i].quota = q > UINT32_MAX ? UINT32_MAX : (uint32_t)q;
	}
}

int ld_rl_setup(unsigned nloops, char *err, size_t errlen)
{
	struct ld_rl_config *c = &ld_rl_cfg;
	char why[160];

	if (nloops == 0)
		nloops = 1;
	c->nloops = nloops;
	if (ld_rl_cidr_list(c->trusted_proxy, c->trusted, LD_RL_CIDR_MAX, &c->ntrusted, why,
			    sizeof(why)) != 0) {
		snprintf(err, errlen, "trusted_proxy (--trusted-proxy): %s", why);
		return -EINVAL;
	}
	if (ld_rl_cidr_list(c->exempt, c->exempts, LD_RL_CIDR_MAX, &c->nexempt, why, sizeof(why)) !=
	    0) {
		snprintf(err, errlen, "[ratelimit] exempt (--ratelimit-exempt): %s", why);
		return -EINVAL;
	}
	c->fwd_forwarded = strcmp(c->forwarded_header, "forwarded") == 0;
	c->use_redis = strcmp(c->store, "redis") == 0;
	if (c->enabled && c->use_redis && (!c->redis || !c->redis->url[0])) {
		snprintf(err, errlen,
			 "--ratelimit-store redis needs the Redis server: --redis URL "
			 "(LADDER_REDIS, [redis] redis_url)");
		return -EINVAL;
	}
	if (c->enabled && c->use_redis) {
		struct ld_redis_addr addr;

		if (ld_redis_url_parse(c->redis->url, &addr, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "--redis: %s", why);
			return -EINVAL;
		}
	}
	if (c->nodes == 0)
		c->nodes = 1;
	/* Each loop enforces its share: a client's connections spread over
	 * the loops, so together they get the node's budget. Rounded up, so
	 * a small budget never becomes 0 on a loop. In Redis the whole budget
	 * is kept once for every loop of every node; while Redis is away a
	 * loop falls back to its share of the whole: over the nodes too. */
	share(c->budget, c->per_loop, c->per_loop48, c->use_redis ? 1 : nloops, c->ipv6_48_scale);
	share(c->budget, c->fallback, c->fallback48, (uint64_t)nloops * c->nodes, c->ipv6_48_scale);
	return 0;
}

/* ---- the local backend --------------------------------------------------- */

static _Atomic uint64_t n_allowed[LD_RL_NBUDGETS], n_limited[LD_RL_NBUDGETS];
static _Atomic uint64_t n_exempt;
static _Atomic long long n_entries, n_capacity;
static _Atomic uint64_t n_evictions;
_Atomic uint64_t ld__rl_by_source[LD_RL_NSRC];

int ld__rl_local_open(const struct ld_rl_config *c, struct ld_rl_loop *l)
{
	struct ld_gcra_stats st;
	int rc;

	l->c = c;
	rc = ld_gcra_open(c->table_size, &l->t);
	if (rc)
		return rc;
	ld_gcra_stats(l->t, &st);
	atomic_fetch_add(&n_capacity, (long long)st.capacity);
	return 0;
}

void ld__rl_local_close(struct ld_rl_loop *l)
{
	struct ld_gcra_stats st;

	if (!l->t)
		return;
	ld_gcra_stats(l->t, &st);
	atomic_fetch_sub(&n_capacity, (long long)st.capacity);
	atomic_fetch_sub(&n_entries, (long long)st.entries);
	ld_gcra_close(l->t);
	l->t = NULL;
}

void ld__rl_local_decide(struct ld_rl_loop *l, const struct ld_gcra_key *k,
			 const struct ld_gcra_budget *b, uint64_t now_ns,
			 struct ld_gcra_decision *d)
{
	struct ld_gcra_stats before, after;

	ld_gcra_stats(l->t, &before);
	ld_gcra_decide(l->t, k, b, now_ns, d);
	ld_gcra_stats(l->t, &after);
	if (after.entries != before.entries)
		atomic_fetch_add(&n_entries, (long long)(after.entries - before.entries));
	if (after.evictions != before.evictions)
		atomic_fetch_add(&n_evictions, after.evictions - before.evictions);
}

static int local_open(const struct ld_rl_config *c, unsigned loop_index, uv_loop_t *uv,
		      struct ld_rl_loop **out)
{
	struct ld_rl_loop *l = calloc(1, sizeof(*l));
	int rc;

	(void)loop_index;
	(void)uv;
	*out = NULL;
	if (!l)
		return -ENOMEM;
	rc = ld__rl_local_open(c, l);
	if (rc) {
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

static void local_close(struct ld_rl_loop *l)
{
	ld__rl_local_close(l);
	free(l);
}

static int local_decide(struct ld_rl_loop *l, const struct ld_gcra_key *k,
			const struct ld_gcra_budget *b, uint64_t now_ns, struct ld_gcra_decision *d,
			struct ld_rl_wait *w)
{
	(void)w;
	ld__rl_local_decide(l, k, b, now_ns, d);
	atomic_fetch_add_explicit(&ld__rl_by_source[LD_RL_SRC_LOCAL], 1, memory_order_relaxed);
	return 0;
}

const struct ld_rl_vt ld_rl_local_vt = {
    .name = "local",
    .loop_open = local_open,
    .loop_close = local_close,
    .decide = local_decide,
};

/* ---- the decision before a handler --------------------------------------- */

static const struct ld_rl_vt *backend(void)
{
	return ld_rl_cfg.use_redis ? &ld_rl_redis_vt : &ld_rl_local_vt;
}

int ld_api_rl_loop_open(struct ld_api_loop *al, unsigned loop_index, uv_loop_t *uv)
{
	if (!ld_rl_cfg.enabled)
		return 0;
	return backend()->loop_open(&ld_rl_cfg, loop_index, uv, &al->rl);
}

void ld_api_rl_loop_close(struct ld_api_loop *al)
{
	if (al->rl)
		backend()->loop_close(al->rl);
	al->rl = NULL;
}

uint64_t ld__rl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec + 1;
}

#define FWD_LINES_MAX 32

/* client_addr gives the client's address (16 bytes); a trusted proxy's
 * word is taken for it, and then kept in r->client for the log. 0 with
 * out set; 1 when the peer is a trusted proxy that names no client we can
 * read (the proxy is not the client: the caller charges a shared key);
 * -1 when the peer's address cannot be read. */
static int client_addr(struct ld_req *r, uint8_t out[16])
{
	const struct ld_rl_config *c = &ld_rl_cfg;
	const char *name = c->fwd_forwarded ? "forwarded" : "x-forwarded-for";
	size_t nlen = strlen(name);
	struct sockaddr_storage ss;
	const char *v[FWD_LINES_MAX];
	size_t n[FWD_LINES_MAX];
	unsigned nlines = 0;
	char text[INET6_ADDRSTRLEN];
	bool v4;

	if (ld_req_peer_addr(r, &ss) != 0)
		return -1;
	if (ss.ss_family == AF_INET) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)&ss)->sin_addr, 4);
	} else {
		memcpy(out, &((const struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	}
	if (!c->ntrusted || !ld_rl_cidr_match(c->trusted, c->ntrusted, out))
		return 0;
	/* Every line of the one field the proxies write, in order: a proxy
	 * may add a line of its own rather than append to the client's. */
	for (unsigned i = 0; i < r->h.nfields; i++) {
		const struct ld_http_field *f = &r->h.fields[i];

		if (f->name_len != nlen || strncasecmp(f->name, name, nlen) != 0)
			continue;
		if (nlines == FWD_LINES_MAX)
			goto unknown; /* more than any chain of proxies writes */
		v[nlines] = f->value;
		n[nlines++] = f->value_len;
	}
	if (ld_rl_forwarded_client(v, n, nlines, c->fwd_forwarded, c->trusted, c->ntrusted, out) !=
	    0)
		goto unknown;
	v4 = memcmp(out, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;
	if (inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? out + 12 : out, text, sizeof(text)))
		snprintf(r->client, sizeof(r->client), "%s", text);
	return 0;
unknown:
	snprintf(r->client, sizeof(r->client), "unknown");
	return 1;
}

/* limited_route: every API route but the probes, the metrics and the
 * photo byte upload. That PUT goes to a signed URL only POST /v1/photos
 * hands out (itself limited, and capped at a few uploads in flight per
 * user), and its body is already in a sink the handler must settle. */
static bool limited_route(unsigned route)
{
	return route != LD_ROUTE_HEALTHZ && route != LD_ROUTE_READYZ && route != LD_ROUTE_METRICS &&
	       route != LD_ROUTE_DEBUG_STATS && route != LD_ROUTE_PHOTO_CONTENT;
}

/* decide_stage asks the backend about s's current key: 0 with *d, or 1
 * when it answers later (waited() goes on). */
static int decide_stage(struct ld_api_req *q, struct ld_api_rl *s, struct ld_gcra_decision *d)
{
	const struct ld_rl_config *c = &ld_rl_cfg;

	if (s->stage == 0)
		return backend()->decide(q->al->rl, &s->k, &c->per_loop[s->budget], ld__rl_now_ns(),
					 d, &s->w);
	return backend()->decide(q->al->rl, &s->k48, &c->per_loop48[s->budget - LD_RL_ADDR_READS],
				 ld__rl_now_ns(), d, &s->w);
}

/* advance takes decision d of the current stage and decides the next one
 * while all allow: the address first, then its /48, so a host refused on
 * its own budget does not also spend its neighbours'. s->d becomes the
 * refusal, or else the tightest of the allowances. 1: waiting for the
 * backend; 0: s->d is final. */
static int advance(struct ld_api_req *q, struct ld_api_rl *s, const struct ld_gcra_decision *d)
{
	struct ld_gcra_decision n = *d;

	for (;;) {
		if (s->stage == 0 || !n.allowed || n.remaining < s->d.remaining) {
			s->d = n;
			s->shown = s->stage;
		}
		if (!n.allowed || s->stage == 1 || s->k48.kind == 0)
			return 0;
		s->stage = 1;
		if (decide_stage(q, s, &n) != 0)
			return 1;
	}
}

static const char *const budget48_names[2] = {"addr48-reads", "addr48-writes"};

static const char *shown_name(const struct ld_api_rl *s)
{
	return s->shown ? budget48_names[s->budget - LD_RL_ADDR_READS]
			: ld_rl_budget_names[s->budget];
}

/* decided adds the fields of s->d and counts it; true when it answered
 * 429, false when the handler is to run. */
static bool decided(struct ld_api_req *q, struct ld_api_rl *s)
{
	char policy[LD_GCRA_FIELD_MAX], state[LD_GCRA_FIELD_MAX];
	const struct ld_gcra_decision *d = &s->d;
	const char *name = shown_name(s);

	ld_gcra_fields(name, d, policy, state);
	ld_req_header_str(q->r, "RateLimit-Policy", policy);
	ld_req_header_str(q->r, "RateLimit", state);
	if (d->allowed) {
		atomic_fetch_add_explicit(&n_allowed[s->budget], 1, memory_order_relaxed);
		return false;
	}
	atomic_fetch_add_explicit(&n_limited[s->budget], 1, memory_order_relaxed);
	ld_req_header(q->r, "Retry-After", "%llu", (unsigned long long)d->retry_after_s);
	snprintf(q->why, sizeof(q->why),
		 "rate limit '%s' exceeded (%u requests per %llus); retry after %llus", name,
		 (unsigned)d->quota, (unsigned long long)d->window_s,
		 (unsigned long long)d->retry_after_s);
	ld_api_problem(q, 429, q->why);
	return true;
}

static void waited(struct ld_rl_wait *w, const struct ld_gcra_decision *d)
{
	struct ld_api_rl *s = (struct ld_api_rl *)((char *)w - offsetof(struct ld_api_rl, w));

	if (advance(s->q, s, d) != 0)
		return; /* waited() again */
	if (!decided(s->q, s)) {
		ld_req_step_begin(s->q->r); /* the handler resumes after the wait */
		s->handler(s->q);
	}
}

bool ld_api_rl_admit(struct ld_api_req *q, void (*handler)(struct ld_api_req *q))
{
	struct ld_req *r = q->r;
	struct ld_api_rl *s = &q->rl;
	struct ld_gcra_decision d;
	const struct ld_http_field *f;
	uint8_t addr[16];
	bool read = r->h.method == LD_HTTP_GET || r->h.method == LD_HTTP_HEAD;
	bool shared;
	int64_t uid = 0;

	if (!q->al->rl || !limited_route(r->route))
		return false;
	/* A peer whose address cannot be read (it reset the connection), or a
	 * trusted proxy that names no client we can read, is charged to one
	 * shared key, the unspecified address: never free, never exempt. */
	shared = client_addr(r, addr) != 0;
	if (shared)
		memset(addr, 0, sizeof(addr));
	if (!shared && ld_rl_cidr_match(ld_rl_cfg.exempts, ld_rl_cfg.nexempt, addr)) {
		atomic_fetch_add_explicit(&n_exempt, 1, memory_order_relaxed);
		return false;
	}
	memset(&s->k, 0, sizeof(s->k));
	memset(&s->k48, 0, sizeof(s->k48));
	f = ld_http_find(&r->h, "authorization");
	if (f && f->value_len > 7 && strncasecmp(f->value, "Bearer ", 7) == 0 &&
	    ld_token_verify(&q->api->auth, f->value + 7, f->value_len - 7, time(NULL), &uid) == 0 &&
	    uid > 0) {
		s->budget = read ? LD_RL_USER_READS : LD_RL_USER_WRITES;
		s->k.kind = 1;
		memcpy(s->k.id, &uid, sizeof(uid));
	} else {
		s->budget = read ? LD_RL_ADDR_READS : LD_RL_ADDR_WRITES;
		s->k.kind = 2;
		memcpy(s->k.id, addr, 16);
		/* One IPv6 host has its whole /64 to pick from, and one site
		 * commonly a /48 (65,536 /64s): each /48 has a budget too. */
		if (!shared && memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) != 0) {
			memset(s->k.id + 8, 0, 8);
			s->k48.kind = 3;
			s->k48.budget = (uint8_t)s->budget;
			memcpy(s->k48.id, addr, 6);
		}
	}
	s->k.budget = (uint8_t)s->budget;
	s->q = q;
	s->handler = handler;
	s->w.done = waited;
	s->stage = 0;
	if (decide_stage(q, s, &d) != 0 || advance(q, s, &d) != 0)
		return true; /* waited() finishes it */
	return decided(q, s);
}

/* ---- metrics ------------------------------------------------------------- */

static const char *const source_names[LD_RL_NSRC] = {"local", "redis", "fallback"};

void ld_api_rl_metrics(struct ld_buf *out, bool redis_shown)
{
	uint64_t cum = 0;
	unsigned i;

	ld_buf_puts(out, "# HELP ladder_ratelimit_decisions_total Rate-limit decisions on the "
			 "API routes, per budget.\n"
			 "# TYPE ladder_ratelimit_decisions_total counter\n");
	for (i = 0; i < LD_RL_NBUDGETS; i++)
		ld_buf_printf(
		    out,
		    "ladder_ratelimit_decisions_total{budget=\"%s\",decision=\"allowed\"} "
		    "%llu\n"
		    "ladder_ratelimit_decisions_total{budget=\"%s\",decision=\"limited\"} "
		    "%llu\n",
		    ld_rl_budget_names[i], (unsigned long long)atomic_load(&n_allowed[i]),
		    ld_rl_budget_names[i], (unsigned long long)atomic_load(&n_limited[i]));
	ld_buf_printf(
	    out,
	    "# HELP ladder_ratelimit_exempt_total Requests on limited routes from exempt "
	    "addresses.\n"
	    "# TYPE ladder_ratelimit_exempt_total counter\n"
	    "ladder_ratelimit_exempt_total %llu\n"
	    "# HELP ladder_ratelimit_entries Keys held in the rate-limit tables (all loops).\n"
	    "# TYPE ladder_ratelimit_entries gauge\n"
	    "ladder_ratelimit_entries %lld\n"
	    "# HELP ladder_ratelimit_capacity Slots of the rate-limit tables (all loops).\n"
	    "# TYPE ladder_ratelimit_capacity gauge\n"
	    "ladder_ratelimit_capacity %lld\n"
	    "# HELP ladder_ratelimit_evictions_total Keys still owed time dropped to make room "
	    "for new ones.\n"
	    "# TYPE ladder_ratelimit_evictions_total counter\n"
	    "ladder_ratelimit_evictions_total %llu\n",
	    (unsigned long long)atomic_load(&n_exempt), (long long)atomic_load(&n_entries),
	    (long long)atomic_load(&n_capacity), (unsigned long long)atomic_load(&n_evictions));
	ld_buf_puts(out, "# HELP ladder_ratelimit_source_decisions_total Rate-limit decisions by "
			 "where they were made: the local store, Redis, or the local fallback "
			 "share while Redis could not answer.\n"
			 "# TYPE ladder_ratelimit_source_decisions_total counter\n");
	for (i = 0; i < LD_RL_NSRC; i++)
		ld_buf_printf(out, "ladder_ratelimit_source_decisions_total{source=\"%s\"} %llu\n",
			      source_names[i],
			      (unsigned long long)atomic_load(&ld__rl_by_source[i]));
	ld_buf_puts(out, "# HELP ladder_ratelimit_redis_seconds Time from sending a decision to "
			 "Redis to its answer.\n"
			 "# TYPE ladder_ratelimit_redis_seconds histogram\n");
	for (i = 0; i < LD_RL_LAT_BUCKETS; i++) {
		cum += atomic_load(&ld__rl_lat_count[i]);
		if (i + 1 < LD_RL_LAT_BUCKETS)
			ld_buf_printf(out,
				      "ladder_ratelimit_redis_seconds_bucket{le=\"%g\"} %llu\n",
				      ld__rl_lat_le[i], (unsigned long long)cum);
		else
			ld_buf_printf(out,
				      "ladder_ratelimit_redis_seconds_bucket{le=\"+Inf\"} %llu\n",
				      (unsigned long long)cum);
	}
	ld_buf_printf(out,
		      "ladder_ratelimit_redis_seconds_sum %.9f\n"
		      "ladder_ratelimit_redis_seconds_count %llu\n",
		      (double)atomic_load(&ld__rl_lat_sum_ns) / 1e9, (unsigned long long)cum);
	if (ld_rl_cfg.enabled && ld_rl_cfg.use_redis && !redis_shown)
		(void)ld_redis_render_metrics(out); /* a failure sticks in out */
}
