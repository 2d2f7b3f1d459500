/*
 * ratelimit.h - per-client rate limits on the API routes (docs/operations.md,
 * docs/api.md): GCRA budgets for reads and writes, per authenticated user
 * (a request with a valid bearer token) or else per client address.
 *
 * Four budgets, each "quota per window" ([ratelimit] settings):
 *   user-reads, user-writes  a request whose bearer token verifies
 *   addr-reads, addr-writes  every other one (sign-up, login, anonymous reads)
 * Reads are GET and HEAD, writes every other method. /healthz, /readyz,
 * /metrics and /debug/stats are never limited, nor the photo byte upload
 * (a signed URL from POST /v1/photos, which is); nor is a request whose
 * client address is in the exempt list (loopback by default: the box's own
 * tools, benchmarks and tests).
 *
 * The client address is the peer's, or, when the peer is a trusted proxy
 * (--trusted-proxy CIDR,...), the one the proxy put in the one field it
 * writes (--forwarded-header: X-Forwarded-For, or Forwarded's for=; the
 * other is ignored): the rightmost entry that is not itself a trusted proxy,
 * over all the field's lines in order, so a client's own additions on the
 * left are never used. A trusted peer that names no readable client is
 * charged to one shared key that is never exempt. IPv6 clients are keyed by
 * their /64 (one host has a whole /64 to pick from), and each /48 has a
 * budget of its own too, --ratelimit-ipv6-48-scale times wider: both must
 * allow (so a site's 65,536 /64s do not get 65,536 budgets).
 *
 * Where the state lives is a backend behind struct ld_rl_vt (--ratelimit-
 * store). The local one keeps a bounded GCRA table per event loop
 * (api/gcra.h) and enforces on each loop 1/nloops of the node's budget (the
 * quota divided, rounded up; the window kept): loops share nothing, so the
 * hot path takes no lock and no atomic. The Redis one (ratelimit_redis.c)
 * keeps one TAT per key in Redis, shared by every node, each decision one
 * script that reads Redis's own clock; it answers asynchronously. While
 * Redis cannot answer, each loop enforces its share of the whole: the
 * budget divided by --ratelimit-nodes times the loops, in a local table.
 *
 * Thread safety: the settings are written once before the loops start; each
 * loop's state is its own; the counters are atomics.
 */
#ifndef LD_API_RATELIMIT_H
#define LD_API_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "api/gcra.h"
#include "base/buf.h"

struct ld_redis_config;

struct ld_api_req;
struct ld_api_loop;

enum ld_rl_budget_id {
	LD_RL_USER_READS = 0,
	LD_RL_USER_WRITES,
	LD_RL_ADDR_READS,
	LD_RL_ADDR_WRITES,
	LD_RL_NBUDGETS
};

/* A budget setting: its text as given (for --print-config) and its value. */
struct ld_rl_budget_opt {
	char text[32];
	struct ld_gcra_budget b;
};

#define LD_RL_CIDR_MAX 32

struct ld_rl_cidr {
	uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	unsigned prefix;  /* bits of addr that must match (IPv4: 96 + its prefix) */
};

/* The [ratelimit] settings of serve. */
struct ld_rl_config {
	bool enabled; /* --ratelimit on|off (on) */
	struct ld_rl_budget_opt budget[LD_RL_NBUDGETS];
	char trusted_proxy[1024];  /* CIDR list, "" = none */
	char exempt[1024];	   /* CIDR list, "" = none (127.0.0.0/8,::1) */
	char forwarded_header[24]; /* x-forwarded-for|forwarded (x-forwarded-for) */
	unsigned ipv6_48_scale;	   /* a /48's budget in address budgets (8) */
	unsigned table_size;	   /* keys per loop (16384) */
	char store[16];		   /* local|redis (local) */
	unsigned nodes;		   /* nodes sharing Redis, for the fallback share (1) */
	/* Set by serve before ld_rl_setup: the [redis] settings. */
	const struct ld_redis_config *redis;
	/* Parsed by ld_rl_setup. */
	unsigned ntrusted, nexempt, nloops;
	struct ld_rl_cidr trusted[LD_RL_CIDR_MAX], exempts[LD_RL_CIDR_MAX];
	/* What each loop's backend enforces: its share (local), or the whole
	 * budget (redis); and the share a loop keeps while Redis is away. */
	struct ld_gcra_budget per_loop[LD_RL_NBUDGETS];
	struct ld_gcra_budget per_loop48[2]; /* addr-reads, addr-writes per /48 */
	struct ld_gcra_budget fallback[LD_RL_NBUDGETS];
	struct ld_gcra_budget fallback48[2];
	bool fwd_forwarded; /* forwarded_header is "forwarded" */
	bool use_redis;	    /* store is "redis" */
};
extern struct ld_rl_config ld_rl_cfg;

/* The budgets' policy names, as in RateLimit-Policy and the metrics. */
extern const char *const ld_rl_budget_names[LD_RL_NBUDGETS];

/* ld_rl_register adds [ratelimit] to serve's settings; before
 * ld_config_load. */
int ld_rl_register(void);

/* ld_rl_setup parses the CIDR lists and divides the budgets over nloops
 * loops (and, for the Redis fallback, over the nodes too); 0, or -EINVAL
 * with the setting named in err (store redis without a Redis URL). */
int ld_rl_setup(unsigned nloops, char *err, size_t errlen);

/* ld_rl_cidr_list parses "CIDR[,CIDR]" (an address alone is a /32 or
 * /128); 0 or -EINVAL with the bad entry in err. Pure. */
int ld_rl_cidr_list(const char *s, struct ld_rl_cidr *out, unsigned cap, unsigned *n, char *err,
		    size_t errlen);
bool ld_rl_cidr_match(const struct ld_rl_cidr *c, unsigned n, const uint8_t addr[16]);

/* ld_rl_forwarded_client picks the client address from the nlines lines
 * (v[i], n[i] bytes, in the order they came) of a Forwarded (forwarded =
 * true) or X-Forwarded-For field, taken as one list: the rightmost entry
 * that is not in the trusted list, or the leftmost when all are. An entry
 * may carry a port (1.2.3.4:80, [2001:db8::1]:443). 0 with out set, or -1
 * when no client can be read: no entry, or one it cannot read before it
 * reaches an entry that is not trusted. Pure. */
int ld_rl_forwarded_client(const char *const *v, const size_t *n, unsigned nlines, bool forwarded,
			   const struct ld_rl_cidr *trusted, unsigned ntrusted, uint8_t out[16]);

/* A decision a backend may give later. */
struct ld_rl_wait {
	void (*done)(struct ld_rl_wait *w, const struct ld_gcra_decision *d);
};

struct ld_rl_loop;

/* One request's decision (in struct ld_api_req). */
struct ld_api_rl {
	struct ld_rl_wait w;
	struct ld_api_req *q;
	void (*handler)(struct ld_api_req *q);
	enum ld_rl_budget_id budget;
	struct ld_gcra_key k, k48; /* the key; the /48's too when k48.kind != 0 */
	unsigned stage;		   /* 0: deciding k; 1: k48 */
	unsigned shown;		   /* the stage whose decision d is */
	struct ld_gcra_decision d; /* the one the client is shown */
};

/* Where the state lives. decide takes one request of key k against
 * budget b (the loop's share with the local store, the whole with Redis);
 * it returns 0 with *d filled, or 1 when it answers later: then w->done
 * runs on the loop thread with the decision. */
struct ld_rl_vt {
	const char *name;
	int (*loop_open)(const struct ld_rl_config *c, unsigned loop_index, uv_loop_t *uv,
			 struct ld_rl_loop **out);
	void (*loop_close)(struct ld_rl_loop *l);
	int (*decide)(struct ld_rl_loop *l, const struct ld_gcra_key *k,
		      const struct ld_gcra_budget *b, uint64_t now_ns, struct ld_gcra_decision *d,
		      struct ld_rl_wait *w);
};
extern const struct ld_rl_vt ld_rl_local_vt;
extern const struct ld_rl_vt ld_rl_redis_vt;

/* Per-loop state, for api.c's loop hooks: NULL when limits are off. */
int ld_api_rl_loop_open(struct ld_api_loop *al, unsigned loop_index, uv_loop_t *uv);
void ld_api_rl_loop_close(struct ld_api_loop *al);

/* ld_api_rl_admit decides for a routed request before its handler: false
 * to run the handler now (the RateLimit fields added); true when it took
 * the request: answered 429, or waiting for the backend, after which it
 * calls handler itself. */
bool ld_api_rl_admit(struct ld_api_req *q, void (*handler)(struct ld_api_req *q));

/* ld_api_rl_metrics appends the ladder_ratelimit_* series to out, and the
 * Redis connections' (ladder_redis_*) unless redis_shown: the Redis cache
 * renders every connection already. */
void ld_api_rl_metrics(struct ld_buf *out, bool redis_shown);

#endif
