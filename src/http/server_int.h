/*
 * server_int.h - what server.c, conn.c and response.c share; not for the
 * application (it sees server.h only).
 */
#ifndef LD_SERVER_INT_H
#define LD_SERVER_INT_H

#include <stdatomic.h>
#include <time.h>
#include <zlib.h>

#include "http/server.h"

enum conn_state {
	CONN_HEAD,    /* waiting for (the rest of) a request header */
	CONN_BODY,    /* header parsed, body arriving */
	CONN_BUSY,    /* the application is working on the request */
	CONN_WRITING, /* the response is being written */
	CONN_LINGER,  /* error sent: discarding input before the close */
};

/*
 * What a connection needs only while it has bytes or a request on it: the
 * read buffer, the parse state, the request handed to the application and the
 * response being written (about 9 KiB, plus a 16 KiB read buffer). An idle
 * keep-alive connection holds none of it, only its struct ld_conn (about 500
 * bytes with its libuv handles), because behind a balancer or with mobile
 * clients idle connections are most connections. An exchange is taken when
 * the socket turns readable and given back once the connection is idle again
 * (as nginx and h2o do with their buffers); given-back exchanges wait in a
 * small per-loop cache with their buffers, so a busy loop allocates nothing
 * per request.
 */
struct ld_exchange {
	struct ld_exchange *next_free; /* in the loop's cache */
	size_t cached_bytes;	       /* its buffers' bytes while in the cache */
	struct ld_buf rbuf;
	struct ld_http_parser parser;
	uint64_t req_start_ns; /* 0 until the first byte of a request */
	struct ld_http_chunked chunked;
	size_t chunk_in;	   /* encoded body bytes consumed so far */
	size_t chunk_out;	   /* decoded body bytes produced so far */
	size_t req_len;		   /* bytes of the whole current request in rbuf */
	struct ld_body_sink *sink; /* the body's sink until dispatch, or NULL */
	uint64_t sunk;		   /* body bytes the sink took */
	bool sink_full;		   /* the sink asked for a pause (LD_SINK_FULL) */

	struct ld_req req;
	uv_write_t wreq;
	uv_shutdown_t shutdown_req;
	struct ld_buf whdr;  /* response status line and headers */
	struct ld_buf wgzip; /* compressed body, when used */
	uv_buf_t wbufs[2];
	unsigned nwbufs;
	uint64_t file_off;	       /* of req.body_file, sent so far */
	bool file_send;		       /* the response's body is req.body_file */
	_Alignas(16) char app_state[]; /* app_req_size bytes, aligned for any struct */
};

struct ld_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct ld_worker *w;
	struct ld_conn *prev, *next;
	struct ld_exchange *x; /* NULL while the connection is idle */
	unsigned handles;      /* libuv handles not yet closed (tcp, timer, wpoll) */
	/* Writability of the socket while a file body waits for room (libuv
	 * tells it for writes it makes itself only): a poll on a dup of the
	 * socket's descriptor, made the first time it is needed. */
	uv_poll_t wpoll;
	int wpoll_fd; /* the dup; -1 until then */
	enum conn_state state;
	bool reading;
	bool closing;	  /* uv_close started */
	bool close_after; /* close once the current response is written */
	bool responded;	  /* the current request has its response */
	bool in_handler;  /* on_request is on the stack */
	bool peer_gone;	  /* EOF or error seen */
	bool sent_continue;
	bool header_parsed; /* req.h holds the current request's valid header */
	bool linger;	    /* close lingering (after an error response) */

	/* The peer's address, read once (ld_req_peer_addr): it cannot change
	 * for the connection's life, and a syscall per request would not be
	 * free. */
	struct sockaddr_storage peer;
	bool peer_known;

	unsigned continues_inflight; /* 100 Continue writes not yet called back */
	uint64_t deadline;	     /* loop ms when the current timeout expires, 0 = none */
	uint64_t timer_due;	     /* loop ms the libuv timer is set for, 0 = not set */
};

struct ld_worker {
	struct ld_loop l;
	struct ld_server *s;
	uv_thread_t thread;
	int listen_fd;
	uv_tcp_t listener;
	bool listener_open;
	uv_async_t wake; /* main thread -> worker: look at s->stage */
	bool wake_open;	 /* wake may be signalled (under s->wake_lock) */
	uv_timer_t log_timer;
	int stage_seen;
	bool finishing;
	struct ld_conn *conns; /* list head */
	unsigned nconns;
	struct ld_exchange *xfree; /* cache of idle exchanges (conn.c) */
	unsigned nxfree;
	struct ld_buf log; /* request log lines waiting for a write(2) */
	z_stream z;
	bool z_ready;
	time_t date_sec;
	char date[40]; /* "Date: ...\r\n" for date_sec */
	size_t date_len;
	char reqid_prefix[17]; /* 16 hex digits, always */
	uint64_t reqid_seq;
	uint64_t rng[2]; /* xorshift128+ for trace and span ids */
	int init_rc;
};

struct ld_server {
	struct ld_server_config cfg;
	struct ld_server_app app;
	struct ld_worker *workers;
	unsigned nworkers;
	unsigned nstarted;	/* loop threads running */
	_Atomic int stage;	/* 0 serving, 1 draining, 2 cut */
	_Atomic bool draining;	/* readiness: set at the first signal */
	_Atomic unsigned conns; /* open connections, all loops */
	_Atomic unsigned workers_done;
	uv_loop_t main;
	uv_signal_t sigterm, sigint;
	uv_timer_t drain_timer, deadline_timer;
	uv_async_t main_wake;
	uv_mutex_t wake_lock; /* orders wake_all against a loop closing its wake */
	bool cut;
};

/* conn.c */
void ld__conn_accept(struct ld_worker *w);
void ld__conn_close(struct ld_conn *c);
bool ld__conn_idle(const struct ld_conn *c);
void ld__conn_drain(struct ld_conn *c);
/* ld__conn_cache_free frees the loop's cached exchanges (loop ending). */
void ld__conn_cache_free(struct ld_worker *w);

/* server.c */
void ld__worker_maybe_finish(struct ld_worker *w);
void ld__worker_log_flush(struct ld_worker *w);

/* response.c */
/* ld__response_build assembles status line, headers and (maybe gzipped)
 * body into c->x->wbufs. It checks the header and body buffers once, at the
 * end: when one of them has failed (a cap passed, no memory) it logs the
 * request id and assembles a 500 problem in place of the answer, with none of
 * the application's header lines, and returns that error (the status sent is
 * then 500); c->x->nwbufs is 0 when not even the 500 could be assembled, and the
 * connection must close. Returns 0 when the answer went out as asked.
 * ld__response_account counts and logs the request, its latency ending at
 * now_ns (a reading taken once the answer was built). */
int ld__response_build(struct ld_conn *c, int status);
void ld__response_account(struct ld_conn *c, int status, uint64_t bytes, uint64_t now_ns);
void ld__request_ids(struct ld_worker *w, struct ld_req *r);
uint64_t ld__rand64(struct ld_worker *w);

#endif
