/*
 * redis.h - a Redis connection owned by one event-loop thread: hiredis's
 * asynchronous API on the loop (its libuv adapter), with what hiredis 0.14
 * lacks around it (docs/cache.md, "The Redis client").
 *
 * - A deadline on the connect and on every command. hiredis 0.14 cannot
 *   time out an asynchronous command, and replies come in order, so a
 *   command past its deadline means the connection is stuck: it is cut,
 *   and every command still on it fails.
 * - Reconnects with exponential backoff and full jitter: the n-th attempt
 *   after a loss waits random(0, min(backoff_max, backoff_base * 2^n)).
 * - A circuit breaker (base/breaker.h, dep "redis"): breaker_failures
 *   failures in a row (a connect that failed or timed out, a command past
 *   its deadline, a connection lost under commands) open it, and so does a
 *   failure share of breaker_rate_pct percent or more among the outcomes
 *   of the last breaker_window once there are breaker_min_calls of them
 *   (0 percent: off). Any reply, an error reply too, is a success: Redis
 *   is there. While open, ld_redis_command refuses at once (-EAGAIN) so
 *   callers go elsewhere without waiting; after breaker_open it is
 *   half-open and lets one command through, whose outcome closes it or
 *   opens it again. Every change is logged and counted.
 * - Metrics (ld_redis_render_metrics): commands, errors by kind, latency,
 *   breaker state, connects, per connection name and loop.
 *
 * A user that needs set-up commands on each new connection (CLIENT
 * TRACKING, SCRIPT LOAD, SUBSCRIBE) gets on_connect after AUTH and SELECT
 * were sent: it sends them with LD_REDIS_SETUP and calls ld_redis_ready
 * when their replies are in; until then other commands are refused.
 *
 * Threads: every call on a struct ld_redis is made on its loop's thread;
 * ld_redis_render_metrics may run on any thread.
 */
#ifndef LD_REDIS_H
#define LD_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"

struct ld_redis_config {
	char url[512];		     /* redis://host:port[/db]; "" = not configured */
	char password[256];	     /* secret; "" = no AUTH */
	char prefix[64];	     /* put in front of every key this process uses */
	uint64_t connect_timeout_ms; /* a connect (and its set-up) */
	uint64_t command_timeout_ms; /* one command's deadline */
	uint64_t backoff_base_ms;    /* first reconnect's ceiling */
	uint64_t backoff_max_ms;     /* largest reconnect ceiling */
	unsigned breaker_failures;   /* failures in a row that open the breaker */
	uint64_t breaker_open_ms;    /* how long it stays open before a probe */
	unsigned breaker_rate_pct;   /* failure share (percent) that opens it; 0: off */
	unsigned breaker_min_calls;  /* outcomes in the window before the share counts */
	uint64_t breaker_window_ms;  /* the share's window */
};

/* The parsed URL. */
struct ld_redis_addr {
	char host[256];
	unsigned port;
	unsigned db;
};

/* ld_redis_url_parse reads redis://host[:port][/db] (port 6379, db 0 by
 * default; IPv6 in brackets). A password in the URL is refused: it goes in
 * the secret setting, so it is never printed. 0 or -EINVAL with the reason
 * in err. */
int ld_redis_url_parse(const char *url, struct ld_redis_addr *out, char *err, size_t errlen);

/* ld_redis_config_register adds serve's [redis] settings (--redis,
 * --redis-password, ...) writing into cfg; call before ld_config_load. */
int ld_redis_config_register(struct ld_redis_config *cfg);

enum ld_redis_breaker { LD_REDIS_CLOSED = 0, LD_REDIS_OPEN, LD_REDIS_HALF_OPEN };

struct ld_redis;

/* A command's outcome: reply set (it may be a Redis error reply), or
 * reply NULL and err saying why (timeout, connection lost, closing). For
 * a LD_REDIS_PUSH command cb runs for every message, and a last time with
 * reply NULL when the connection goes. */
typedef void (*ld_redis_cb)(struct ld_redis *r, const redisReply *reply, const char *err,
			    void *udata);

struct ld_redis_hooks {
	/* on_connect: connected, AUTH and SELECT sent. Send set-up commands
	 * (LD_REDIS_SETUP) and call ld_redis_ready once they are done. NULL:
	 * ready once a PING answers. */
	void (*on_connect)(struct ld_redis *r, void *udata);
	/* on_down: a connection that had connected is gone, for any reason
	 * (its commands have all been failed). Not called by ld_redis_close. */
	void (*on_down)(struct ld_redis *r, void *udata);
	void *udata;
	/* on_usable (may be NULL): commands go through again: the set-up is
	 * done with the breaker closed, or the breaker closed on a ready
	 * connection. What was held back while it was not usable can go. */
	void (*on_usable)(struct ld_redis *r, void *udata);
};

#define LD_REDIS_SETUP 0x1u /* allowed before ld_redis_ready, bypasses the breaker */
#define LD_REDIS_PUSH  0x2u /* SUBSCRIBE: cb runs per message; no deadline after the first */

/* ld_redis_open makes a connection named name (the metrics' conn label)
 * for loop index loop on uv. With start it connects now, else only at
 * ld_redis_start. A host name is resolved on each connect in libuv's
 * thread pool (uv_getaddrinfo), never on the loop; its first IPv4 address
 * is used, else its first IPv6 one; the resolve counts in the connect's
 * deadline. 0, -EINVAL (bad URL), -ENOMEM. */
int ld_redis_open(uv_loop_t *uv, const struct ld_redis_config *cfg, const char *name, unsigned loop,
		  const struct ld_redis_hooks *hooks, bool start, struct ld_redis **out);

/* ld_redis_close fails every command in flight (cb with reply NULL), closes
 * the handles and frees r once they are closed; NULL is ignored. */
void ld_redis_close(struct ld_redis *r);

/* ld_redis_start connects now if not connected or connecting (no
 * backoff); ld_redis_stop cuts the connection and does not reconnect until
 * ld_redis_start. Neither calls on_down. */
void ld_redis_start(struct ld_redis *r);
void ld_redis_stop(struct ld_redis *r);

/* ld_redis_fail cuts the connection (a failure for the breaker) and
 * reconnects after the backoff; on_down runs if it had connected. */
void ld_redis_fail(struct ld_redis *r, const char *why);

/* ld_redis_ready ends the set-up: commands are accepted from now on. */
void ld_redis_ready(struct ld_redis *r);

/* ld_redis_usable: ready and the breaker would let a command through. */
bool ld_redis_usable(struct ld_redis *r);

/* ld_redis_command sends argv. 0: cb will run (once, or per message for
 * LD_REDIS_PUSH), never before this returns. -EAGAIN: not ready or the
 * breaker is open, -ENOMEM: cb will not run. */
int ld_redis_command(struct ld_redis *r, unsigned flags, ld_redis_cb cb, void *udata, int argc,
		     const char **argv, const size_t *argvlen);

enum ld_redis_breaker ld_redis_breaker_state(const struct ld_redis *r);
const struct ld_redis_config *ld_redis_cfg(const struct ld_redis *r);

/* ld_redis_render_metrics appends the series of every open connection. */
int ld_redis_render_metrics(struct ld_buf *out);

/* ld_redis_backoff_ms is the full-jitter delay of attempt n (0-based) for
 * the random number rnd (exposed for tests). */
uint64_t ld_redis_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned attempt, uint64_t rnd);

#endif
