/*
 * redis.c - one Redis connection on one loop thread (redis.h).
 */
#include "redis/redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/breaker.h"
#include "base/config.h"
#include "obs/log.h"

enum state {
	S_IDLE = 0,   /* stopped: connects only at ld_redis_start */
	S_WAIT,	      /* the backoff before a reconnect */
	S_CONNECTING, /* the host name's resolve, or connect(2), in progress */
	S_SETUP,      /* connected; the user's set-up commands are out */
	S_READY,
	S_CLOSED
};

/* Latency buckets, seconds (upper bounds; +Inf last). */
static const double lat_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
				0.01,	0.025,	 0.05,	 0.1,	0.25,	1.0};
#define NLAT (sizeof(lat_le) / sizeof(lat_le[0]))

enum err_kind { E_REPLY = 0, E_TIMEOUT, E_CONN, E_REFUSED, E_KINDS };
static const char *const err_names[E_KINDS] = {"reply", "timeout", "connection", "refused"};

struct stats {
	_Atomic uint64_t commands;
	_Atomic uint64_t errors[E_KINDS];
	_Atomic uint64_t lat[NLAT + 1];
	_Atomic uint64_t lat_sum_ns;
	_Atomic uint64_t connects, connect_failures;
	_Atomic uint64_t opens;
	_Atomic int breaker;
	_Atomic int ready;
};

struct cmd {
	struct cmd *prev, *next; /* pending, oldest first (deadline order) */
	struct ld_redis *r;
	ld_redis_cb cb;
	void *udata;
	uint64_t sent_ns, deadline_ns;
	unsigned flags;
	bool linked, probe, answered;
};

struct ld_redis {
	uv_loop_t *uv;
	struct ld_redis_config cfg;
	struct ld_redis_addr addr;
	char name[32];
	unsigned loop;
	struct ld_redis_hooks hooks;
	enum state state;
	redisAsyncContext *ac;
	bool in_connect_cb; /* hiredis must not be freed from its connect callback */
	bool fail_soon;	    /* a failure to act on from the timer */
	char fail_why[256];
	unsigned attempt; /* reconnects since the last ready */
	uint64_t rng;
	struct ld_breaker br; /* base/breaker.h: the logic; the probe timer is ours */
	struct cmd *head, *tail;
	uv_timer_t conn_timer;	     /* connect deadline, backoff, deferred failure */
	uv_timer_t cmd_timer;	     /* the oldest command's deadline */
	uv_timer_t probe_timer;	     /* an open breaker's half-open probe */
	int open_handles;	     /* the timers and a resolve in flight: freed at 0 */
	uint64_t resolve_seq;	     /* the current connect's resolve */
	uv_getaddrinfo_t *resolving; /* in flight, to cancel on close */
	struct stats st;
	struct ld_redis *reg_next; /* the metrics registry */
};

static uv_mutex_t reg_lock;
static uv_once_t reg_once = UV_ONCE_INIT;
static struct ld_redis *reg_head;

static void reg_init(void)
{
	uv_mutex_init(&reg_lock);
}

static uint64_t now_ns(void)
{
	return uv_hrtime();
}

static void inc(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t rnd(struct ld_redis *r)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return r->rng;
}

uint64_t ld_redis_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned attempt, uint64_t rnd_)
{
	uint64_t ceil = base_ms;

	for (unsigned i = 0; i < attempt && ceil < max_ms; i++)
		ceil *= 2;
	if (ceil > max_ms)
		ceil = max_ms;
	return ceil ? rnd_ % (ceil + 1) : 0;
}

int ld_redis_url_parse(const char *url, struct ld_redis_addr *out, char *err, size_t errlen)
{
	const char *p = url, *host, *hend, *q;
	unsigned long v;
	char *end;

	memset(out, 0, sizeof(*out));
	out->port = 6379;
	if (strncmp(p, "redis://", 8) != 0) {
		snprintf(err, errlen, "'%.100s' is not a redis:// URL (redis://host:port[/db])",
			 url);
		return -EINVAL;
	}
	p += 8;
	hend = p + strcspn(p, "/");
	if (memchr(p, '@', (size_t)(hend - p))) {
		/* Never echo it: the part before '@' may be the password. */
		snprintf(err, errlen,
			 "a password in the URL is refused (it would be printed); set "
			 "--redis-password or LADDER_REDIS_PASSWORD");
		return -EINVAL;
	}
	if (*p == '[') {
		host = p + 1;
		q = memchr(host, ']', (size_t)(hend - host));
		if (!q)
			goto bad;
		hend = q;
		p = q + 1;
	} else {
		host = p;
		q = p + strcspn(p, ":/");
		hend = q;
		p = q;
	}
	if (hend == host || (size_t)(hend - host) >= sizeof(out->host))
		goto bad;
	memcpy(out->host, host, (size_t)(hend - host));
	if (*p == ':') {
		errno = 0;
		v = strtoul(p + 1, &end, 10);
		if (end == p + 1 || errno || v == 0 || v > 65535)
			goto bad;
		out->port = (unsigned)v;
		p = end;
	}
	if (*p == '/' && p[1]) {
		errno = 0;
		v = strtoul(p + 1, &end, 10);
		if (end == p + 1 || *end || errno || v > 15)
			goto bad;
		out->db = (unsigned)v;
		p = end;
	} else if (*p == '/')
		p++;
	if (*p)
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "'%.100s' is not a redis URL (redis://host:port[/db], db 0 to 15)",
		 url);
	return -EINVAL;
}

/* ---- the breaker ------------------------------------------------------ */

/* The breaker's rules are base/breaker.h's; what is Redis's own is the
 * probe: an open breaker sends a PING of its own once its time is up,
 * rather than wait for traffic (a loop with no reads would otherwise stay
 * open for ever). */

static void on_probe_timer(uv_timer_t *t);

static void on_breaker_change(struct ld_breaker *b, enum ld_breaker_state from, void *udata)
{
	struct ld_redis *r = udata;
	enum ld_breaker_state to = ld_breaker_state(b);

	(void)from;
	atomic_store_explicit(&r->st.breaker, (int)to, memory_order_relaxed);
	if (to == LD_BREAKER_OPEN) {
		inc(&r->st.opens, 1);
		if (r->state != S_CLOSED)
			uv_timer_start(&r->probe_timer, on_probe_timer, r->cfg.breaker_open_ms, 0);
	} else if (to == LD_BREAKER_CLOSED && r->state == S_READY && r->hooks.on_usable) {
		/* What the user held back while the breaker was open can go now
		 * (a reconnect alone does not say so: the breaker may stay open). */
		r->hooks.on_usable(r, r->hooks.udata);
	}
}

static void failure(struct ld_redis *r, const char *why)
{
	ld_breaker_failure(&r->br, now_ns(), false, why);
}

/* ---- commands ----------------------------------------------------------- */

static void unlink_cmd(struct ld_redis *r, struct cmd *c)
{
	if (!c->linked)
		return;
	c->linked = false;
	if (c->prev)
		c->prev->next = c->next;
	else
		r->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		r->tail = c->prev;
	c->prev = c->next = NULL;
}

static void observe(struct ld_redis *r, uint64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i = 0;

	while (i < NLAT && s > lat_le[i])
		i++;
	inc(&r->st.lat[i], 1);
	inc(&r->st.lat_sum_ns, ns);
}

static void fail_now(struct ld_redis *r, const char *why, bool count);

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct cmd *c = priv;
	struct ld_redis *r = c->r;
	redisReply *rep = reply;
	bool push = c->flags & LD_REDIS_PUSH;

	if (rep) {
		if (!c->answered) {
			c->answered = true;
			unlink_cmd(r, c);
			observe(r, now_ns() - c->sent_ns);
			if (rep->type == REDIS_REPLY_ERROR)
				inc(&r->st.errors[E_REPLY], 1);
			/* Redis answered: whatever it said, it is there. */
			ld_breaker_success(&r->br, now_ns(), c->probe);
		}
		c->cb(r, rep, NULL, c->udata);
		if (!push)
			free(c);
		return;
	}
	/* The context is going: a timeout, a lost connection or a close. */
	unlink_cmd(r, c);
	if (!c->answered)
		inc(&r->st.errors[E_CONN], 1);
	c->cb(r, NULL,
	      r->state == S_CLOSED ? "closing"
	      : r->ac == ac	   ? "the connection was lost"
				   : r->fail_why,
	      c->udata);
	free(c);
}

static void arm_cmd_timer(struct ld_redis *r);

static void on_cmd_timer(uv_timer_t *t)
{
	struct ld_redis *r = t->data;
	uint64_t now = now_ns();
	char why[128];

	if (r->head && r->head->deadline_ns <= now) {
		snprintf(why, sizeof(why), "a command got no answer within %llums",
			 (unsigned long long)r->cfg.command_timeout_ms);
		/* The commands failed by the cut are the timeout's. */
		inc(&r->st.errors[E_TIMEOUT], 1);
		fail_now(r, why, true);
		return;
	}
	arm_cmd_timer(r);
}

static void arm_cmd_timer(struct ld_redis *r)
{
	uint64_t now = now_ns();

	if (!r->head || r->state == S_CLOSED)
		return;
	uv_timer_start(&r->cmd_timer, on_cmd_timer,
		       r->head->deadline_ns > now ? (r->head->deadline_ns - now) / 1000000 + 1 : 0,
		       0);
}

static int send_cmd(struct ld_redis *r, unsigned flags, bool probe, ld_redis_cb cb, void *udata,
		    int argc, const char **argv, const size_t *argvlen)
{
	struct cmd *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->r = r;
	c->cb = cb;
	c->udata = udata;
	c->flags = flags;
	c->probe = probe;
	c->sent_ns = now_ns();
	c->deadline_ns = c->sent_ns + r->cfg.command_timeout_ms * 1000000ull;
	if (redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, argvlen) != REDIS_OK) {
		free(c);
		return -ENOMEM;
	}
	inc(&r->st.commands, 1);
	c->linked = true;
	c->prev = r->tail;
	if (r->tail)
		r->tail->next = c;
	else
		r->head = c;
	r->tail = c;
	if (!uv_is_active((uv_handle_t *)&r->cmd_timer))
		arm_cmd_timer(r);
	return 0;
}

static void on_probe_reply(struct ld_redis *r, const redisReply *reply, const char *err,
			   void *udata)
{
	/* on_reply closed the breaker (an answer) or a failure opened it. */
	(void)r;
	(void)reply;
	(void)err;
	(void)udata;
}

static void on_probe_timer(uv_timer_t *t)
{
	struct ld_redis *r = t->data;
	uint64_t open_ns = r->cfg.breaker_open_ms * 1000000ull, now = now_ns();
	enum ld_breaker_state st = ld_breaker_state(&r->br);
	bool probe;

	if (st == LD_BREAKER_CLOSED || r->state == S_CLOSED)
		return;
	if (r->state != S_READY)
		return; /* ld_redis_ready starts it again */
	if (st == LD_BREAKER_OPEN && !ld_breaker_ready(&r->br, now)) {
		uv_timer_start(t, on_probe_timer, (r->br.opened_ns + open_ns - now) / 1000000 + 1,
			       0);
		return;
	}
	if (!ld_breaker_allow(&r->br, now, &probe))
		return; /* half-open with its trial out: its outcome decides */
	if (send_cmd(r, 0, probe, on_probe_reply, NULL, 1, (const char *[]){"PING"}, NULL) != 0) {
		ld_breaker_cancel(&r->br, probe);
		uv_timer_start(t, on_probe_timer, r->cfg.breaker_open_ms, 0);
	}
}

int ld_redis_command(struct ld_redis *r, unsigned flags, ld_redis_cb cb, void *udata, int argc,
		     const char **argv, const size_t *argvlen)
{
	bool probe = false;
	int rc;

	if (!r->ac || !(r->state == S_READY || (r->state == S_SETUP && (flags & LD_REDIS_SETUP))) ||
	    (!(flags & LD_REDIS_SETUP) && !ld_breaker_allow(&r->br, now_ns(), &probe))) {
		inc(&r->st.errors[E_REFUSED], 1);
		return -EAGAIN;
	}
	rc = send_cmd(r, flags, probe, cb, udata, argc, argv, argvlen);
	if (rc)
		ld_breaker_cancel(&r->br, probe);
	return rc;
}

bool ld_redis_usable(struct ld_redis *r)
{
	return r->state == S_READY && ld_breaker_ready(&r->br, now_ns());
}

/* ---- the connection ------------------------------------------------------ */

static void do_connect(struct ld_redis *r);

static void on_conn_timer(uv_timer_t *t)
{
	struct ld_redis *r = t->data;
	char why[128];

	if (r->fail_soon) {
		r->fail_soon = false;
		fail_now(r, r->fail_why, true);
		return;
	}
	switch (r->state) {
	case S_WAIT:
		do_connect(r);
		break;
	case S_CONNECTING:
	case S_SETUP:
		snprintf(why, sizeof(why), "no connection within %llums",
			 (unsigned long long)r->cfg.connect_timeout_ms);
		fail_now(r, why, true);
		break;
	default:
		break;
	}
}

static void schedule_reconnect(struct ld_redis *r)
{
	uint64_t ms =
	    ld_redis_backoff_ms(r->cfg.backoff_base_ms, r->cfg.backoff_max_ms, r->attempt, rnd(r));

	if (r->attempt < 64)
		r->attempt++;
	r->state = S_WAIT;
	uv_timer_start(&r->conn_timer, on_conn_timer, ms, 0);
}

/* fail_now cuts the connection. Never from hiredis's connect callback (it
 * goes on using the context): that path sets fail_soon. */
static void fail_now(struct ld_redis *r, const char *why, bool count)
{
	redisAsyncContext *ac = r->ac;
	bool was_up = r->state == S_SETUP || r->state == S_READY;
	char loop[16];

	if (r->state == S_CLOSED || r->state == S_IDLE)
		return;
	snprintf(r->fail_why, sizeof(r->fail_why), "%s", why);
	r->ac = NULL;
	uv_timer_stop(&r->conn_timer);
	atomic_store_explicit(&r->st.ready, 0, memory_order_relaxed);
	if (count) {
		failure(r, why);
		if (!was_up)
			inc(&r->st.connect_failures, 1);
	}
	schedule_reconnect(r);
	if (ac) {
		/* Our disconnect callback must not see it as news. */
		ac->data = NULL;
		redisAsyncFree(ac); /* every command's cb runs, reply NULL */
	}
	if (was_up) {
		snprintf(loop, sizeof(loop), "%u", r->loop);
		ld_log_event(
		    "warn", "redis connection lost",
		    (const char *const[]){"conn", r->name, "loop", loop, "why", why, NULL});
		if (r->hooks.on_down)
			r->hooks.on_down(r, r->hooks.udata);
	}
}

void ld_redis_fail(struct ld_redis *r, const char *why)
{
	if (r->in_connect_cb) {
		r->fail_soon = true;
		snprintf(r->fail_why, sizeof(r->fail_why), "%s", why);
		uv_timer_start(&r->conn_timer, on_conn_timer, 0, 0);
		return;
	}
	fail_now(r, why, true);
}

static void on_disconnected(const redisAsyncContext *ac, int status)
{
	struct ld_redis *r = ac->data;
	bool was_up;
	char loop[16];

	if (!r || r->ac != ac)
		return; /* freed by us */
	was_up = r->state == S_SETUP || r->state == S_READY;
	snprintf(r->fail_why, sizeof(r->fail_why), "%s",
		 ac->errstr[0] ? ac->errstr : "the server closed the connection");
	r->ac = NULL; /* hiredis frees it after this returns */
	uv_timer_stop(&r->conn_timer);
	atomic_store_explicit(&r->st.ready, 0, memory_order_relaxed);
	(void)status;
	failure(r, r->fail_why);
	r->attempt = 0;
	schedule_reconnect(r);
	if (was_up) {
		snprintf(loop, sizeof(loop), "%u", r->loop);
		ld_log_event(
		    "warn", "redis connection lost",
		    (const char *const[]){"conn", r->name, "loop", loop, "why", r->fail_why, NULL});
		if (r->hooks.on_down)
			r->hooks.on_down(r, r->hooks.udata);
	}
}

static void on_setup_reply(struct ld_redis *r, const redisReply *reply, const char *err,
			   void *udata)
{
	const char *what = udata;
	char why[192];

	if (!reply)
		return; /* the connection is going already */
	if (reply->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "%s refused: %.120s", what, reply->str);
		ld_redis_fail(r, why);
		return;
	}
	if (!strcmp(what, "PING"))
		ld_redis_ready(r);
}

static void on_connected(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	struct ld_redis *r = ac->data;
	char db[16];

	if (!r || r->ac != ac)
		return;
	if (status != REDIS_OK) {
		char why[160];

		/* hiredis frees the context after this returns. */
		snprintf(why, sizeof(why), "connect: %s", ac->errstr[0] ? ac->errstr : "failed");
		ac->data = NULL;
		r->ac = NULL;
		fail_now(r, why, true);
		return;
	}
	r->state = S_SETUP;
	inc(&r->st.connects, 1);
	r->in_connect_cb = true;
	if (r->cfg.password[0] && send_cmd(r, LD_REDIS_SETUP, false, on_setup_reply, "AUTH", 2,
					   (const char *[]){"AUTH", r->cfg.password}, NULL) != 0)
		ld_redis_fail(r, "out of memory");
	snprintf(db, sizeof(db), "%u", r->addr.db);
	if (r->addr.db && send_cmd(r, LD_REDIS_SETUP, false, on_setup_reply, "SELECT", 2,
				   (const char *[]){"SELECT", db}, NULL) != 0)
		ld_redis_fail(r, "out of memory");
	if (r->hooks.on_connect)
		r->hooks.on_connect(r, r->hooks.udata);
	else if (send_cmd(r, LD_REDIS_SETUP, false, on_setup_reply, "PING", 1,
			  (const char *[]){"PING"}, NULL) != 0)
		ld_redis_fail(r, "out of memory");
	r->in_connect_cb = false;
}

/* connect_to connects to ip, an address (hiredis resolves what it is
 * given, blocking: a host name never reaches it). */
static void connect_to(struct ld_redis *r, const char *ip)
{
	redisAsyncContext *ac;
	char why[160];

	ac = redisAsyncConnect(ip, (int)r->addr.port);
	if (!ac || ac->err) {
		snprintf(why, sizeof(why), "connect: %s", ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		fail_now(r, why, true);
		return;
	}
	if (redisLibuvAttach(ac, r->uv) != REDIS_OK) {
		redisAsyncFree(ac);
		fail_now(r, "connect: the loop refused the socket", true);
		return;
	}
	ac->data = r;
	r->ac = ac;
	redisAsyncSetConnectCallback(ac, on_connected);
	redisAsyncSetDisconnectCallback(ac, on_disconnected);
}

struct resolve {
	uv_getaddrinfo_t req;
	struct ld_redis *r;
	uint64_t seq;
};

/* pick_addr writes the first IPv4 address of res, else its first IPv6
 * one (hiredis's own order), into ip; false if there is neither. */
static bool pick_addr(const struct addrinfo *res, char *ip, size_t cap)
{
	for (int fam = 0; fam < 2; fam++)
		for (const struct addrinfo *a = res; a; a = a->ai_next) {
			if (fam == 0 && a->ai_family == AF_INET)
				return uv_ip4_name((const struct sockaddr_in *)a->ai_addr, ip,
						   cap) == 0;
			if (fam == 1 && a->ai_family == AF_INET6)
				return uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, ip,
						   cap) == 0;
		}
	return false;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct resolve *q = req->data;
	struct ld_redis *r = q->r;
	char ip[INET6_ADDRSTRLEN], why[400];

	if (r->resolving == req)
		r->resolving = NULL;
	/* A connect timeout, a stop or a close since: this one is stale. */
	if (r->state == S_CONNECTING && !r->ac && q->seq == r->resolve_seq) {
		if (status) {
			snprintf(why, sizeof(why), "resolve %s: %s", r->addr.host,
				 uv_strerror(status));
			fail_now(r, why, true);
		} else if (!pick_addr(res, ip, sizeof(ip))) {
			snprintf(why, sizeof(why), "resolve %s: no IPv4 or IPv6 address",
				 r->addr.host);
			fail_now(r, why, true);
		} else {
			connect_to(r, ip);
		}
	}
	uv_freeaddrinfo(res);
	free(q);
	if (--r->open_handles == 0)
		free(r);
}

/* do_connect starts a connect; a host name is resolved first in libuv's
 * thread pool (getaddrinfo blocks, and the loop serves requests). The
 * connect deadline covers both. */
static void do_connect(struct ld_redis *r)
{
	unsigned char bin[sizeof(struct in6_addr)];
	struct resolve *q;
	int rc;

	r->state = S_CONNECTING;
	r->resolve_seq++;
	uv_timer_start(&r->conn_timer, on_conn_timer, r->cfg.connect_timeout_ms, 0);
	if (inet_pton(AF_INET, r->addr.host, bin) == 1 ||
	    inet_pton(AF_INET6, r->addr.host, bin) == 1) {
		connect_to(r, r->addr.host);
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		fail_now(r, "connect: out of memory", true);
		return;
	}
	q->r = r;
	q->seq = r->resolve_seq;
	q->req.data = q;
	rc = uv_getaddrinfo(r->uv, &q->req, on_resolved, r->addr.host, NULL,
			    &(struct addrinfo){.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM});
	if (rc) {
		char why[400];

		free(q);
		snprintf(why, sizeof(why), "resolve %s: %s", r->addr.host, uv_strerror(rc));
		fail_now(r, why, true);
		return;
	}
	r->open_handles++;
	r->resolving = &q->req;
}

void ld_redis_ready(struct ld_redis *r)
{
	if (r->state != S_SETUP)
		return;
	r->state = S_READY;
	r->attempt = 0;
	uv_timer_stop(&r->conn_timer);
	atomic_store_explicit(&r->st.ready, 1, memory_order_relaxed);
	/* An open breaker probes once its time is up (or now, if it is). */
	if (ld_breaker_state(&r->br) != LD_BREAKER_CLOSED)
		on_probe_timer(&r->probe_timer);
	else if (r->hooks.on_usable)
		r->hooks.on_usable(r, r->hooks.udata);
}

void ld_redis_start(struct ld_redis *r)
{
	if (r->state == S_IDLE || r->state == S_WAIT) {
		uv_timer_stop(&r->conn_timer);
		do_connect(r);
	}
}

void ld_redis_stop(struct ld_redis *r)
{
	redisAsyncContext *ac = r->ac;

	if (r->state == S_IDLE || r->state == S_CLOSED)
		return;
	snprintf(r->fail_why, sizeof(r->fail_why), "%s", "stopped");
	r->ac = NULL;
	r->state = S_IDLE;
	uv_timer_stop(&r->conn_timer);
	atomic_store_explicit(&r->st.ready, 0, memory_order_relaxed);
	if (ac) {
		ac->data = NULL;
		redisAsyncFree(ac);
	}
}

enum ld_redis_breaker ld_redis_breaker_state(const struct ld_redis *r)
{
	return (enum ld_redis_breaker)ld_breaker_state(&r->br);
}

const struct ld_redis_config *ld_redis_cfg(const struct ld_redis *r)
{
	return &r->cfg;
}

int ld_redis_open(uv_loop_t *uv, const struct ld_redis_config *cfg, const char *name, unsigned loop,
		  const struct ld_redis_hooks *hooks, bool start, struct ld_redis **out)
{
	struct ld_redis *r = calloc(1, sizeof(*r));
	char err[160];

	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	if (ld_redis_url_parse(cfg->url, &r->addr, err, sizeof(err)) != 0) {
		free(r);
		return -EINVAL;
	}
	if (!r->cfg.breaker_failures)
		r->cfg.breaker_failures = 1;
	ld_breaker_init(
	    &r->br,
	    &(struct ld_breaker_config){.failures = r->cfg.breaker_failures,
					.rate_pct = r->cfg.breaker_rate_pct,
					.min_calls = r->cfg.breaker_min_calls,
					.window_ns = r->cfg.breaker_window_ms * 1000000ull,
					.open_ns = r->cfg.breaker_open_ms * 1000000ull,
					.trials = 1,
					.successes = 1},
	    "redis", name, loop);
	r->br.on_change = on_breaker_change;
	r->br.udata = r;
	r->uv = uv;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->loop = loop;
	if (hooks)
		r->hooks = *hooks;
	if (getrandom(&r->rng, sizeof(r->rng), 0) != (ssize_t)sizeof(r->rng))
		r->rng = now_ns();
	r->rng |= 1;
	uv_timer_init(uv, &r->conn_timer);
	uv_timer_init(uv, &r->cmd_timer);
	uv_timer_init(uv, &r->probe_timer);
	r->conn_timer.data = r->cmd_timer.data = r->probe_timer.data = r;
	r->open_handles = 3;
	uv_once(&reg_once, reg_init);
	uv_mutex_lock(&reg_lock);
	r->reg_next = reg_head;
	reg_head = r;
	uv_mutex_unlock(&reg_lock);
	ld_breaker_register(&r->br);
	*out = r;
	if (start)
		do_connect(r);
	return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct ld_redis *r = h->data;

	if (--r->open_handles == 0)
		free(r);
}

void ld_redis_close(struct ld_redis *r)
{
	redisAsyncContext *ac;
	struct ld_redis **p;

	if (!r)
		return;
	uv_mutex_lock(&reg_lock);
	for (p = &reg_head; *p && *p != r; p = &(*p)->reg_next)
		;
	if (*p)
		*p = r->reg_next;
	uv_mutex_unlock(&reg_lock);
	ld_breaker_unregister(&r->br);
	ac = r->ac;
	r->ac = NULL;
	r->state = S_CLOSED;
	if (ac) {
		ac->data = NULL;
		redisAsyncFree(ac);
	}
	/* A resolve not started yet ends now (UV_ECANCELED); one running ends
	 * when getaddrinfo returns. Either way its callback frees r if last. */
	if (r->resolving)
		(void)uv_cancel((uv_req_t *)r->resolving);
	uv_close((uv_handle_t *)&r->conn_timer, on_handle_closed);
	uv_close((uv_handle_t *)&r->cmd_timer, on_handle_closed);
	uv_close((uv_handle_t *)&r->probe_timer, on_handle_closed);
}

/* ---- metrics ------------------------------------------------------------- */

static uint64_t ld(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

int ld_redis_render_metrics(struct ld_buf *out)
{
	struct ld_redis *r;

	uv_once(&reg_once, reg_init);
	uv_mutex_lock(&reg_lock);
	if (!reg_head)
		goto out;
	ld_buf_printf(out, "# HELP ladder_redis_commands_total Commands sent to Redis.\n"
			   "# TYPE ladder_redis_commands_total counter\n");
	for (r = reg_head; r; r = r->reg_next)
		ld_buf_printf(out, "ladder_redis_commands_total{conn=\"%s\",loop=\"%u\"} %llu\n",
			      r->name, r->loop, (unsigned long long)ld(&r->st.commands));
	ld_buf_printf(out, "# HELP ladder_redis_errors_total Commands that failed, by kind "
			   "(reply: an error reply; timeout: past the deadline, the connection "
			   "is cut; connection: lost under it; refused: not sent, the "
			   "connection was not ready or the breaker open).\n"
			   "# TYPE ladder_redis_errors_total counter\n");
	for (r = reg_head; r; r = r->reg_next)
		for (unsigned k = 0; k < E_KINDS; k++)
			ld_buf_printf(
			    out,
			    "ladder_redis_errors_total{conn=\"%s\",loop=\"%u\",kind=\"%s\"} %llu\n",
			    r->name, r->loop, err_names[k],
			    (unsigned long long)ld(&r->st.errors[k]));
	ld_buf_printf(out, "# HELP ladder_redis_command_seconds Time from sending a command to "
			   "its answer.\n# TYPE ladder_redis_command_seconds histogram\n");
	for (r = reg_head; r; r = r->reg_next) {
		uint64_t cum = 0;

		for (size_t i = 0; i <= NLAT; i++) {
			cum += ld(&r->st.lat[i]);
			if (i < NLAT)
				ld_buf_printf(
				    out,
				    "ladder_redis_command_seconds_bucket{conn=\"%s\",loop="
				    "\"%u\",le=\"%g\"} %llu\n",
				    r->name, r->loop, lat_le[i], (unsigned long long)cum);
			else
				ld_buf_printf(
				    out,
				    "ladder_redis_command_seconds_bucket{conn=\"%s\",loop="
				    "\"%u\",le=\"+Inf\"} %llu\n",
				    r->name, r->loop, (unsigned long long)cum);
		}
		ld_buf_printf(out,
			      "ladder_redis_command_seconds_sum{conn=\"%s\",loop=\"%u\"} %.9f\n"
			      "ladder_redis_command_seconds_count{conn=\"%s\",loop=\"%u\"} %llu\n",
			      r->name, r->loop, (double)ld(&r->st.lat_sum_ns) / 1e9, r->name,
			      r->loop, (unsigned long long)cum);
	}
	ld_buf_printf(out, "# HELP ladder_redis_breaker_state The breaker: 0 closed, 1 open, 2 "
			   "half-open.\n# TYPE ladder_redis_breaker_state gauge\n");
	for (r = reg_head; r; r = r->reg_next)
		ld_buf_printf(out, "ladder_redis_breaker_state{conn=\"%s\",loop=\"%u\"} %d\n",
			      r->name, r->loop,
			      atomic_load_explicit(&r->st.breaker, memory_order_relaxed));
	ld_buf_printf(out, "# HELP ladder_redis_breaker_opens_total Times the breaker opened.\n"
			   "# TYPE ladder_redis_breaker_opens_total counter\n");
	for (r = reg_head; r; r = r->reg_next)
		ld_buf_printf(out,
			      "ladder_redis_breaker_opens_total{conn=\"%s\",loop=\"%u\"} %llu\n",
			      r->name, r->loop, (unsigned long long)ld(&r->st.opens));
	ld_buf_printf(out, "# HELP ladder_redis_up 1 while the connection is set up and ready.\n"
			   "# TYPE ladder_redis_up gauge\n");
	for (r = reg_head; r; r = r->reg_next)
		ld_buf_printf(out, "ladder_redis_up{conn=\"%s\",loop=\"%u\"} %d\n", r->name,
			      r->loop, atomic_load_explicit(&r->st.ready, memory_order_relaxed));
	ld_buf_printf(out, "# HELP ladder_redis_connects_total Connections made (result=ok) and "
			   "attempts that failed.\n# TYPE ladder_redis_connects_total counter\n");
	for (r = reg_head; r; r = r->reg_next)
		ld_buf_printf(out,
			      "ladder_redis_connects_total{conn=\"%s\",loop=\"%u\",result=\"ok\"} "
			      "%llu\nladder_redis_connects_total{conn=\"%s\",loop=\"%u\",result="
			      "\"failed\"} %llu\n",
			      r->name, r->loop, (unsigned long long)ld(&r->st.connects), r->name,
			      r->loop, (unsigned long long)ld(&r->st.connect_failures));
out:
	uv_mutex_unlock(&reg_lock);
	return ld_buf_error(out);
}

/* ---- settings ------------------------------------------------------------ */

#define R_MIN 60000ull
#define F(field)                                                                                   \
	offsetof(struct ld_redis_config, field), sizeof(((struct ld_redis_config *)0)->field)

static const struct ld_opt redis_opts[] = {
    {"redis", 0, "redis_url", "LADDER_REDIS", LD_OPT_STR, F(url), 0, "", 0, 0, NULL, 0, NULL, NULL,
     "URL", "the Redis server, redis://host:port[/db] (--cache redis; docs/cache.md)"},
    {"redis-password", 0, "redis_password", "LADDER_REDIS_PASSWORD", LD_OPT_STR, F(password), 0, "",
     0, 0, NULL, LD_OPT_SECRET, NULL, NULL, "SECRET", "AUTH password for Redis (never printed)"},
    {"redis-prefix", 0, "redis_prefix", "LADDER_REDIS_PREFIX", LD_OPT_STR, F(prefix), 0,
     "ladder:", 0, 0, NULL, 0, NULL, NULL, "TEXT",
     "put in front of every Redis key (several deployments on one Redis)"},
    {"redis-connect-timeout", 0, "redis_connect_timeout", "LADDER_REDIS_CONNECT_TIMEOUT",
     LD_OPT_DUR, F(connect_timeout_ms), 0, "500ms", 1, R_MIN, NULL, 0, NULL, NULL, "DURATION",
     "deadline of a connect and its set-up"},
    {"redis-timeout", 0, "redis_timeout", "LADDER_REDIS_TIMEOUT", LD_OPT_DUR, F(command_timeout_ms),
     0, "250ms", 1, R_MIN, NULL, 0, NULL, NULL, "DURATION",
     "deadline of one command (past it the connection is cut and reads go to the store)"},
    {"redis-backoff", 0, "redis_backoff", "LADDER_REDIS_BACKOFF", LD_OPT_DUR, F(backoff_base_ms), 0,
     "50ms", 1, R_MIN, NULL, 0, NULL, NULL, "DURATION",
     "first reconnect's longest wait (doubling per attempt, full jitter)"},
    {"redis-backoff-max", 0, "redis_backoff_max", "LADDER_REDIS_BACKOFF_MAX", LD_OPT_DUR,
     F(backoff_max_ms), 0, "2s", 1, 10 * R_MIN, NULL, 0, NULL, NULL, "DURATION",
     "longest wait between reconnects"},
    {"redis-breaker-failures", 0, "redis_breaker_failures", "LADDER_REDIS_BREAKER_FAILURES",
     LD_OPT_UINT, F(breaker_failures), 0, "5", 1, 1000, NULL, 0, NULL, NULL, "N",
     "failures in a row that open the breaker"},
    {"redis-breaker-open", 0, "redis_breaker_open", "LADDER_REDIS_BREAKER_OPEN", LD_OPT_DUR,
     F(breaker_open_ms), 0, "2s", 1, 10 * R_MIN, NULL, 0, NULL, NULL, "DURATION",
     "how long an open breaker refuses commands before one probe"},
    {"redis-breaker-failure-rate", 0, "redis_breaker_failure_rate",
     "LADDER_REDIS_BREAKER_FAILURE_RATE", LD_OPT_UINT, F(breaker_rate_pct), 0, "50", 0, 100, NULL,
     0, NULL, NULL, "PCT",
     "failures (a timeout, a lost or failed connection) as a percentage of the outcomes in "
     "--redis-breaker-window that open the breaker, once there are --redis-breaker-min-calls "
     "of them; 0 = off"},
    {"redis-breaker-window", 0, "redis_breaker_window", "LADDER_REDIS_BREAKER_WINDOW", LD_OPT_DUR,
     F(breaker_window_ms), 0, "10s", 100, 60 * R_MIN, NULL, 0, NULL, NULL, "DURATION",
     "the window the failure rate is measured over (a loop's connection)"},
    {"redis-breaker-min-calls", 0, "redis_breaker_min_calls", "LADDER_REDIS_BREAKER_MIN_CALLS",
     LD_OPT_UINT, F(breaker_min_calls), 0, "20", 1, 1000000, NULL, 0, NULL, NULL, "N",
     "outcomes in the window before the failure rate may open the breaker"},
};

static const struct ld_opt_section redis_section = {
    "redis", redis_opts, sizeof(redis_opts) / sizeof(redis_opts[0]), NULL};

static unsigned char redis_source[sizeof(redis_opts) / sizeof(redis_opts[0])];

int ld_redis_config_register(struct ld_redis_config *cfg)
{
	return ld_config_register(&redis_section, cfg, redis_source);
}
