/*
 * server.h - the HTTP/1.1 server: N event-loop threads, each with its own
 * SO_REUSEPORT listener, connections, timers and per-loop application state.
 *
 * The kernel spreads new connections over the listeners, so there is no accept
 * lock and no cross-thread hand-off on the hot path. A request is parsed,
 * routed and answered on the loop thread that owns its connection.
 *
 * The server knows nothing of the API: the application plugs in with the
 * hooks of struct ld_server_app. One request is handled at a time per
 * connection (pipelined requests wait in the read buffer and are answered in
 * order); while a handler is working asynchronously the connection does not
 * read, which is also the back-pressure on a pipelining client.
 */
#ifndef LD_SERVER_H
#define LD_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "http/parser.h"
#include "obs/stages.h"

#define LD_REQID_MAX 128

struct ld_loop;
struct ld_conn;

/* A request body the application takes piece by piece as it arrives (see
 * body_sink in struct ld_server_app), so only one read's worth of it is
 * ever in memory. */
struct ld_body_sink {
	/* write takes the next n bytes of the decoded body (chunked framing
	 * already undone); a negative errno refuses the rest: the client gets
	 * a 500 and abort follows. */
	int (*write)(struct ld_body_sink *k, const char *p, size_t n);
	/* abort ends a sink the request will never complete: an HTTP error
	 * (413, 400, 408), the peer gone, the server stopping. Not called
	 * once the request was dispatched: then the handler owns the sink. */
	void (*abort)(struct ld_body_sink *k);
	/* Set by the server when the sink opens. A write may also return
	 * LD_SINK_FULL: it took the bytes, but the server reads no more of
	 * the body (nor times it out) until the sink calls resume(k) on the
	 * loop thread; so a sink can write on a thread, off the loop, with
	 * bounded memory. resume after the request was dispatched, or after
	 * abort, is not allowed. loop is the loop it runs on. */
	void (*resume)(struct ld_body_sink *k);
	void *resume_arg;
	struct ld_loop *loop;
};

#define LD_SINK_FULL 1

/* One request, from its parsed header to its response. Handed to the
 * application's on_request; valid until ld_req_respond() has been called. */
struct ld_req {
	struct ld_http_request h; /* points into the connection's read buffer */
	const char *body;	  /* decoded body (chunked already undone) */
	size_t body_len;
	/* When the body went to a sink (body_sink), body is NULL, body_len
	 * says how many bytes the sink took, and the handler owns sink: it
	 * must finish it (its own commit) or call sink->abort. */
	struct ld_body_sink *sink;
	struct ld_loop *loop;
	struct ld_conn *conn;
	uint64_t start_ns; /* first byte of the request arrived */
	uint64_t step_ns;  /* the clock read of the current step (ld_req_now) */

	char request_id[LD_REQID_MAX + 1];
	size_t request_id_len; /* strlen(request_id) */
	char trace_id[33];     /* W3C trace-id, 32 lower-case hex */
	char span_id[17];      /* this server's span (parent-id sent downstream) */
	char trace_flags[3];
	bool accept_gzip;
	/* Where the request's time goes (obs/stages.h): the server marks read,
	 * render and write; the application marks its own stages in between. */
	struct ld_stage_clock stages;

	/* Filled by the application. */
	unsigned route;		/* index into the route names given at start */
	unsigned profile_route; /* index into the stage profile's routes (obs/stats.h), 0 = none */
	int64_t user_id;	/* authenticated user, 0 when anonymous (for the log) */
	char client[48];	/* the client a trusted proxy named ("" = the peer; for the log) */
	const char *content_type;
	struct ld_buf out_hdrs; /* extra header lines, "Name: value\r\n" each */
	struct ld_buf out_body;
	/* Or the body is body_file_len bytes of an open file (an image):
	 * sent with sendfile(2) from the page cache, never read into memory
	 * (no gzip). The server owns the descriptor once set: it closes it
	 * whatever becomes of the response. -1: out_body. Read it ahead on a
	 * thread first: sendfile runs on the loop. */
	int body_file;
	uint64_t body_file_len;
	void *app; /* app_req_size bytes of per-request application state, zeroed */
};

/* ld_req_header adds a response header line; name and the formatted value
 * must not contain CR or LF (the caller's values are ids, numbers, tags). */
void ld_req_header(struct ld_req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ld_req_header_str adds "name: value" with no formatting (hot paths). */
void ld_req_header_str(struct ld_req *r, const char *name, const char *value);

/* ld_req_respond sends status, the headers added and out_body (gzip-compressed
 * when worthwhile and accepted), logs the request and counts it. After it the
 * handler must not touch r again. Call on the loop thread. */
void ld_req_respond(struct ld_req *r, int status);

/* ld_req_peer_loopback says whether the client's address is a loopback one
 * (127.0.0.0/8, ::1 or ::ffff:127.x.y.z); false when it cannot be read. */
bool ld_req_peer_loopback(const struct ld_req *r);

/* ld_req_peer_addr puts the peer's address in *ss: 0, or -1 when it cannot
 * be read (the peer is gone). */
struct sockaddr_storage;
int ld_req_peer_addr(const struct ld_req *r, struct sockaddr_storage *ss);

/* ld_req_client_gone says whether the client of a request that is with the
 * application has gone: its connection is closing, an EOF or error was
 * seen, or (the connection does not read while a request is busy) a peek at
 * the socket finds the end of the stream or an error. A client that only
 * half-closed after sending counts as gone. No byte is consumed. */
bool ld_req_client_gone(const struct ld_req *r);

/* ld_req_close_after makes the connection close once this response is sent
 * (e.g. after an error that leaves the stream in doubt). */
void ld_req_close_after(struct ld_req *r);

struct ld_server_app {
	/* Per-request state size, zeroed for every request (req->app). */
	size_t app_req_size;
	/* Route names for metrics and logs; route 0..n-1. */
	const char *const *route_names;
	unsigned nroutes;
	/* Called on each loop thread once before it serves, and once after it
	 * has stopped serving (every connection gone). */
	int (*loop_init)(struct ld_loop *l, void *arg);
	void (*loop_fini)(struct ld_loop *l, void *arg);
	/* Optional: called on the main thread when the first SIGTERM or
	 * SIGINT starts the drain, so work of the app's own (a worker's job
	 * threads) can stop with it rather than once ld_server_run returns. */
	void (*on_drain)(void *arg);
	/* Called for every request whose header (and body) is complete. */
	void (*on_request)(struct ld_req *r, void *arg);
	/* Optional: called in every ld_req_respond once the answer is built
	 * (before it is written), so the app can account for the request's
	 * end wherever its handler answered from (admission control);
	 * ld_req_now(r) is then the time of that end. */
	void (*on_respond)(struct ld_req *r, int status, void *arg);
	/* Called when a request was rejected by the HTTP layer itself (bad
	 * framing, limits, timeouts): the app writes the problem body. */
	void (*on_http_error)(struct ld_req *r, int status, const char *detail, void *arg);
	/* Optional: the body limit of one request, decided from its parsed
	 * header (a photo upload may be far larger than a JSON body); 0 keeps
	 * max_body. A body past max_body is only ever taken through a sink:
	 * the read buffer never grows for it, and such a request that gets no
	 * sink is answered 503 before any of its body is read. */
	uint64_t (*body_max)(const struct ld_http_request *h, void *arg);
	/* Optional: a sink for this request's body, decided from its parsed
	 * header, or NULL to buffer the body whole as usual (within max_body).
	 * NULL with *refuse set to an HTTP status (and *why to its detail)
	 * answers that status at once, before any of the body is read. */
	struct ld_body_sink *(*body_sink)(const struct ld_http_request *h, void *arg, int *refuse,
					  const char **why);
	void *arg;
};

struct ld_server_config {
	char host[256];
	unsigned port;
	unsigned threads;
	struct ld_http_limits limits;
	uint64_t max_body;
	uint64_t header_timeout_ms;
	uint64_t body_timeout_ms;
	uint64_t keepalive_timeout_ms;
	uint64_t write_timeout_ms;
	uint64_t shutdown_timeout_ms;
	uint64_t drain_delay_ms;
	unsigned max_connections;
	bool gzip;
	uint64_t gzip_min;
	bool log_requests;
};

/* Per-loop state, visible to the application hooks. */
struct ld_loop {
	uv_loop_t uv;
	unsigned index;
	void *app; /* the application's per-loop state (set in loop_init) */
	struct ld_server *server;
};

struct ld_server;

/* The listening sockets of a server, one per loop thread. */
struct ld_listeners {
	int *fds;
	unsigned n;
	unsigned port; /* the port bound: the kernel's pick when cfg->port is 0 */
};

/*
 * ld_server_listen binds and listens on cfg->host:cfg->port, one
 * SO_REUSEPORT socket per loop thread, and refuses (-EADDRINUSE, err names
 * the address and says it is in use) when anything else already listens
 * there, another ladder included: only this server's own loops share the
 * port (server.c says how). Call it before opening what the loops will use,
 * so a taken port fails the start at once. Returns 0 or a negative errno
 * with the message in err; on error nothing is left open.
 */
int ld_server_listen(const struct ld_server_config *cfg, struct ld_listeners *ls, char *err,
		     size_t errlen);

/* ld_listeners_close closes what ld_server_listen opened (if not run). */
void ld_listeners_close(struct ld_listeners *ls);

/*
 * ld_server_run takes over the listeners of ls (closing them in the end,
 * whatever happens), starts the loops and blocks until
 * SIGTERM or SIGINT, then drains: /readyz answers 503 (ld_server_draining),
 * drain_delay later the listeners close, idle connections close, in-flight
 * requests finish, and after shutdown_timeout whatever is left is cut. Returns
 * 0 after a clean drain, a negative error when start-up failed (message in
 * err), 1 when connections had to be cut at the deadline.
 */
int ld_server_run(const struct ld_server_config *cfg, struct ld_listeners *ls,
		  const struct ld_server_app *app, char *err, size_t errlen);

/* ld_server_draining says whether shutdown has begun (any thread). */
bool ld_server_draining(const struct ld_loop *l);

/* ld_now_ns is a monotonic clock in nanoseconds. */
uint64_t ld_now_ns(void);

/*
 * A request's step clock. A step is what runs of a request in one go on its
 * loop, from a callback to the next wait (store, thread pool, admission
 * queue, cache fill, Redis): the server reads the clock when it dispatches
 * a request, and whoever resumes a request after a wait reads it again
 * (ld_req_step_begin, or ld_req_step_at with a reading it took itself).
 * Within a step, checks that need "now" (a deadline, the admission
 * limiter's start, a cache entry's TTL) take ld_req_now instead of a clock
 * read of their own: the reading is older than a fresh one only by the
 * step's own CPU time so far (microseconds, on a loop that never blocks),
 * against deadlines and TTLs of milliseconds; and it is never older than
 * the last wait, which is what a deadline must be checked after. Stage
 * marks and the response's latency keep clock reads of their own (they
 * measure the step). A clock read is a vDSO call of some 20 ns; a cached
 * GET needed a dozen of them before these were shared.
 */
static inline uint64_t ld_req_now(const struct ld_req *r)
{
	return r->step_ns;
}

static inline void ld_req_step_at(struct ld_req *r, uint64_t now_ns)
{
	r->step_ns = now_ns;
}

/* ld_req_step_begin reads the clock for a new step of r and returns it. */
static inline uint64_t ld_req_step_begin(struct ld_req *r)
{
	return r->step_ns = ld_now_ns();
}

#endif
