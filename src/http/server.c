/*
 * server.c - event-loop threads, SO_REUSEPORT listeners, signals and the
 * graceful drain.
 *
 * The main thread binds every listening socket itself before any loop starts,
 * so a port in use is reported at once and by name; each loop thread then
 * adopts its socket with uv_tcp_open (libuv 1.44 has no SO_REUSEPORT flag).
 * The main thread runs a small loop of its own for signals and the drain
 * timers and talks to the loop threads through uv_async handles.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/server_int.h"
#include "obs/log.h"
#include "obs/trace.h"

uint64_t ld_now_ns(void)
{
	return uv_hrtime();
}

bool ld_server_draining(const struct ld_loop *l)
{
	return atomic_load(&l->server->draining);
}

void ld__worker_log_flush(struct ld_worker *w)
{
	if (w->log.len) {
		ld_log_write(w->log.data, w->log.len);
		ld_buf_reset(&w->log);
	}
}

static void on_log_timer(uv_timer_t *t)
{
	ld__worker_log_flush(t->data);
}

static void on_conn(uv_stream_t *listener, int status)
{
	struct ld_worker *w = listener->data;

	if (status == 0)
		ld__conn_accept(w);
}

static void close_listener(struct ld_worker *w)
{
	if (w->listener_open) {
		w->listener_open = false;
		uv_close((uv_handle_t *)&w->listener, NULL);
	}
}

static void on_worker_handle_closed(uv_handle_t *h)
{
	(void)h;
}

/* ld__worker_maybe_finish ends a draining loop once its last connection is
 * gone: the app's per-loop state goes (store connection), then the loop's own
 * handles, and uv_run returns. */
void ld__worker_maybe_finish(struct ld_worker *w)
{
	struct ld_server *s = w->s;

	if (w->finishing || w->stage_seen < 1 || w->nconns > 0)
		return;
	w->finishing = true;
	close_listener(w);
	if (s->app.loop_fini)
		s->app.loop_fini(&w->l, s->app.arg);
	ld__worker_log_flush(w);
	uv_close((uv_handle_t *)&w->log_timer, on_worker_handle_closed);
	/* The main thread may be about to wake this loop (a second signal, the
	 * deadline): it must never signal a closed handle. */
	uv_mutex_lock(&s->wake_lock);
	w->wake_open = false;
	uv_mutex_unlock(&s->wake_lock);
	uv_close((uv_handle_t *)&w->wake, on_worker_handle_closed);
}

static void on_wake(uv_async_t *a)
{
	struct ld_worker *w = a->data;
	struct ld_server *s = w->s;
	int stage = atomic_load(&s->stage);
	struct ld_conn *c, *next;

	if (stage <= w->stage_seen)
		return;
	w->stage_seen = stage;
	close_listener(w);
	for (c = w->conns; c; c = next) {
		next = c->next;
		if (stage >= 2)
			ld__conn_close(c);
		else
			ld__conn_drain(c);
	}
	ld__worker_maybe_finish(w);
}

static void worker_main(void *arg)
{
	struct ld_worker *w = arg;
	struct ld_server *s = w->s;

	uv_run(&w->l.uv, UV_RUN_DEFAULT);
	/* Let close callbacks of the last handles run, then free the loop. */
	uv_run(&w->l.uv, UV_RUN_NOWAIT);
	ld__worker_log_flush(w);
	ld_buf_release(&w->log);
	if (w->z_ready)
		deflateEnd(&w->z);
	uv_loop_close(&w->l.uv);
	atomic_fetch_add(&s->workers_done, 1);
	uv_async_send(&s->main_wake);
}

/* open_listen_socket makes one SO_REUSEPORT socket bound to host:port. */
static int open_listen_socket(const char *host, unsigned port, int *fd_out, char *err,
			      size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char portstr[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "listen: cannot resolve '%s': %s", host, gai_strerror(rc));
		rc = -EINVAL;
		goto out;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "listen: socket: %s", strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
		rc = -errno;
		snprintf(err, errlen, "listen: cannot listen on %s:%u: %s", host, port,
			 strerror(errno));
		goto out;
	}
	*fd_out = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (res)
		freeaddrinfo(res);
	return rc;
}

static int worker_init(struct ld_server *s, struct ld_worker *w, unsigned index, char *err,
		       size_t errlen)
{
	unsigned char seed[16];
	int rc;

	w->s = s;
	w->l.index = index;
	w->l.server = s;
	uv_loop_init(&w->l.uv);
	w->l.uv.data = w;
	ld_buf_init(&w->log, 1024 * 1024);
	randombytes_buf(w->rng, sizeof(w->rng));
	randombytes_buf(seed, 8);
	ld_hex_lower(seed, 8, w->reqid_prefix);
	uv_async_init(&w->l.uv, &w->wake, on_wake);
	w->wake.data = w;
	w->wake_open = true;
	uv_timer_init(&w->l.uv, &w->log_timer);
	w->log_timer.data = w;
	uv_timer_start(&w->log_timer, on_log_timer, 200, 200);
	uv_tcp_init(&w->l.uv, &w->listener);
	w->listener.data = w;
	w->listener_open = true;
	rc = uv_tcp_open(&w->listener, w->listen_fd);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&w->listener, 4096, on_conn);
	if (rc) {
		snprintf(err, errlen, "listen: %s", uv_strerror(rc));
		goto out;
	}
	if (s->app.loop_init) {
		rc = s->app.loop_init(&w->l, s->app.arg);
		if (rc) {
			snprintf(err, errlen, "loop %u: application start-up failed (%d)", index,
				 rc);
			goto out;
		}
	}
out:
	return rc;
}

/* wake_all tells every loop still running to look at the stage. */
static void wake_all(struct ld_server *s)
{
	unsigned i;

	uv_mutex_lock(&s->wake_lock);
	for (i = 0; i < s->nworkers; i++)
		if (s->workers[i].wake_open)
			uv_async_send(&s->workers[i].wake);
	uv_mutex_unlock(&s->wake_lock);
}

static void begin_stage(struct ld_server *s, int stage)
{
	if (atomic_load(&s->stage) >= stage)
		return;
	atomic_store(&s->stage, stage);
	if (stage >= 2)
		s->cut = true;
	wake_all(s);
}

static void on_deadline(uv_timer_t *t)
{
	struct ld_server *s = t->data;

	ld_log_event("warn", "shutdown deadline reached: closing remaining connections", NULL);
	begin_stage(s, 2);
}

static void on_drain_delay(uv_timer_t *t)
{
	struct ld_server *s = t->data;

	begin_stage(s, 1);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct ld_server *s = h->data;

	if (atomic_load(&s->draining)) {
		/* A second signal: the operator wants out now. */
		begin_stage(s, 2);
		return;
	}
	atomic_store(&s->draining, true);
	ld_log_event("info", signum == SIGTERM ? "SIGTERM: draining" : "SIGINT: draining", NULL);
	uv_timer_start(&s->deadline_timer, on_deadline,
		       s->cfg.drain_delay_ms + s->cfg.shutdown_timeout_ms, 0);
	if (s->cfg.drain_delay_ms)
		uv_timer_start(&s->drain_timer, on_drain_delay, s->cfg.drain_delay_ms, 0);
	else
		begin_stage(s, 1);
}

static void on_main_wake(uv_async_t *a)
{
	struct ld_server *s = a->data;

	if (atomic_load(&s->workers_done) < s->nstarted)
		return;
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->drain_timer, NULL);
	uv_close((uv_handle_t *)&s->deadline_timer, NULL);
	uv_close((uv_handle_t *)&s->main_wake, NULL);
}

int ld_server_run(const struct ld_server_config *cfg, const struct ld_server_app *app, char *err,
		  size_t errlen)
{
	struct ld_server *s;
	unsigned i, started = 0;
	int rc = 0;

	s = calloc(1, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	s->cfg = *cfg;
	s->app = *app;
	s->nworkers = cfg->threads ? cfg->threads : 1;
	s->workers = calloc(s->nworkers, sizeof(*s->workers));
	if (!s->workers) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < s->nworkers; i++)
		s->workers[i].listen_fd = -1;
	uv_mutex_init(&s->wake_lock);
	/* SIGPIPE would kill the process on a write to a reset connection;
	 * the error comes back from write(2) instead. */
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < s->nworkers; i++) {
		rc =
		    open_listen_socket(cfg->host, cfg->port, &s->workers[i].listen_fd, err, errlen);
		if (rc)
			goto out;
	}
	uv_loop_init(&s->main);
	uv_signal_init(&s->main, &s->sigterm);
	uv_signal_init(&s->main, &s->sigint);
	uv_timer_init(&s->main, &s->drain_timer);
	uv_timer_init(&s->main, &s->deadline_timer);
	uv_async_init(&s->main, &s->main_wake, on_main_wake);
	s->sigterm.data = s->sigint.data = s->drain_timer.data = s->deadline_timer.data =
	    s->main_wake.data = s;
	uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	uv_signal_start(&s->sigint, on_signal, SIGINT);
	for (i = 0; i < s->nworkers; i++) {
		rc = worker_init(s, &s->workers[i], i, err, errlen);
		if (rc)
			break;
		s->workers[i].listen_fd = -1; /* owned by the uv handle now */
		started++;
	}
	if (rc) {
		/* Start-up failed half way: run the same drain as a signal. */
		atomic_store(&s->draining, true);
		atomic_store(&s->stage, 2);
	}
	s->nstarted = started;
	for (i = 0; i < started; i++) {
		s->workers[i].stage_seen = 0;
		uv_thread_create(&s->workers[i].thread, worker_main, &s->workers[i]);
	}
	if (rc) {
		wake_all(s);
		if (!started)
			on_main_wake(&s->main_wake);
	} else {
		char addr[300];

		snprintf(addr, sizeof(addr), "%s:%u", cfg->host, cfg->port);
		ld_log_event("info", "listening", (const char *const[]){"address", addr, NULL});
		fprintf(stderr, "ladder: listening on %s:%u with %u loop thread%s\n", cfg->host,
			cfg->port, s->nworkers, s->nworkers == 1 ? "" : "s");
	}
	uv_run(&s->main, UV_RUN_DEFAULT);
	for (i = 0; i < started; i++)
		uv_thread_join(&s->workers[i].thread);
	uv_run(&s->main, UV_RUN_NOWAIT);
	uv_loop_close(&s->main);
	if (!rc && s->cut)
		rc = 1;
out:
	if (s && s->workers) {
		for (i = 0; i < s->nworkers; i++)
			if (s->workers[i].listen_fd >= 0)
				close(s->workers[i].listen_fd);
		free(s->workers);
		uv_mutex_destroy(&s->wake_lock);
	}
	free(s);
	return rc;
}
