/*
 * server.c - event-loop threads, SO_REUSEPORT listeners, signals and the
 * graceful drain.
 *
 * ld_server_listen binds every listening socket before any loop starts (and
 * before the application opens its store), so a port in use is reported at
 * once and by name; each loop thread then adopts its socket with uv_tcp_open
 * (libuv 1.44 has no SO_REUSEPORT flag). The main thread runs a small loop of
 * its own for signals and the drain timers and talks to the loop threads
 * through uv_async handles.
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
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
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
	ld__conn_cache_free(w);
	if (w->z_ready)
		deflateEnd(&w->z);
	uv_loop_close(&w->l.uv);
	atomic_fetch_add(&s->workers_done, 1);
	uv_async_send(&s->main_wake);
}

/*
 * Alone on the address. SO_REUSEPORT is what gives each loop its own
 * listener, but it lets ANY socket of the same user that sets it join the
 * group, and the kernel then splits new connections between all members: a
 * second `ladder serve` on the same port (with another data directory, say)
 * used to start, print "listening" and take a share of the clients. Linux
 * cannot close a reuseport group to newcomers (and the same uid, root
 * included, is no protection), so the server makes sure that it founds the
 * group on a free address and that no other ladder can found or join one
 * at the same time:
 *
 *  1. Start-up mutex: an abstract unix socket named after the port. Only
 *     one process can bind the name, and the kernel frees it when that
 *     process dies, so it cannot go stale. It is keyed by port alone
 *     because 127.0.0.1:P, 0.0.0.0:P and [::]:P collide too, and it is held
 *     only from the probe until the listeners listen (microseconds).
 *     Without it (AF_UNIX denied, or the name held by someone else) the
 *     start warns and goes on: the probe alone still refuses a taken port.
 *  2. Probe: bind a socket WITHOUT SO_REUSEPORT to the address. The bind
 *     fails with EADDRINUSE when anything listens there, with or without
 *     SO_REUSEPORT, on this address or a wildcard covering it: another
 *     ladder, or any other program. (SO_REUSEADDR on the probe only lets it
 *     past TIME_WAIT leftovers of an earlier run, never past a listener.)
 *  3. Close the probe, bind and listen on the N reuseport sockets. From here
 *     on every later probe, and so every later ladder, fails against them.
 *
 * What no probe can stop is a program other than ladder that joins the
 * group later with SO_REUSEPORT of its own; short of giving up per-loop
 * listeners, nothing can.
 */
#define MUTEX_WAIT_MS 5000

/* format_addr writes host:port, with brackets for an IPv6 host. */
static void format_addr(char *out, size_t cap, const char *host, unsigned port)
{
	snprintf(out, cap, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}

/* take_startup_mutex binds the port's abstract name, waiting while another
 * starting ladder holds it. The lock only narrows the race between two
 * ladders starting at once; the probe after it is the real check. So a lock
 * that cannot be had (AF_UNIX denied by a sandbox, or the name held past
 * MUTEX_WAIT_MS, which any local user can do) is a warning, not a refusal:
 * *fd_out stays -1 and the start goes on to the probe. */
static void take_startup_mutex(unsigned port, int *fd_out)
{
	struct sockaddr_un sa;
	struct timespec pause = {0, 10 * 1000 * 1000};
	socklen_t len;
	unsigned waited = 0;
	char why[200];
	int fd, n;

	*fd_out = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	/* sun_path[0] stays NUL: the abstract namespace, no file. */
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "ladder-listen-tcp-%u", port);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, sizeof(why),
			 "start-up lock for port %u unavailable (socket: %s): checking the "
			 "port without it",
			 port, strerror(errno));
		goto warn;
	}
	while (bind(fd, (struct sockaddr *)&sa, len) != 0) {
		if (errno != EADDRINUSE) {
			snprintf(why, sizeof(why),
				 "start-up lock for port %u unavailable (bind: %s): checking the "
				 "port without it",
				 port, strerror(errno));
			goto warn;
		}
		if (waited >= MUTEX_WAIT_MS) {
			snprintf(why, sizeof(why),
				 "start-up lock for port %u still held by another process after "
				 "%u ms: checking the port without it",
				 port, waited);
			goto warn;
		}
		nanosleep(&pause, NULL);
		waited += 10;
	}
	*fd_out = fd;
	return;
warn:
	ld_log_event("warn", why, NULL);
	if (fd >= 0)
		close(fd);
}

/* open_socket makes a TCP socket bound to sa (and listening when reuseport:
 * a listener; otherwise the probe, closed by the caller). */
static int open_socket(const struct sockaddr *sa, socklen_t salen, bool reuseport, const char *addr,
		       int *fd_out, char *err, size_t errlen)
{
	int fd, one = 1, rc;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "listen: socket: %s", strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if ((reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, sa, salen) < 0 || (reuseport && listen(fd, 4096) < 0)) {
		rc = -errno;
		snprintf(err, errlen, "listen: cannot listen on %s: %s%s", addr, strerror(errno),
			 errno == EADDRINUSE ? " (another process listens there)" : "");
		goto out;
	}
	*fd_out = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static unsigned bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

void ld_listeners_close(struct ld_listeners *ls)
{
	unsigned i;

	for (i = 0; ls->fds && i < ls->n; i++)
		if (ls->fds[i] >= 0)
			close(ls->fds[i]);
	free(ls->fds);
	ls->fds = NULL;
	ls->n = 0;
}

int ld_server_listen(const struct ld_server_config *cfg, struct ld_listeners *ls, char *err,
		     size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen;
	unsigned n = cfg->threads ? cfg->threads : 1, port = cfg->port, i;
	char portstr[8], addr[300];
	int mutex = -1, probe = -1, rc;

	ls->fds = NULL;
	ls->n = 0;
	ls->port = 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(cfg->host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "listen: cannot resolve '%s': %s", cfg->host,
			 gai_strerror(rc));
		rc = -EINVAL;
		goto out;
	}
	if (res->ai_addrlen > sizeof(ss)) {
		snprintf(err, errlen, "listen: '%s': unsupported address", cfg->host);
		rc = -EINVAL;
		goto out;
	}
	memcpy(&ss, res->ai_addr, res->ai_addrlen);
	sslen = res->ai_addrlen;
	ls->fds = calloc(n, sizeof(*ls->fds));
	if (!ls->fds) {
		rc = -ENOMEM;
		snprintf(err, errlen, "listen: out of memory");
		goto out;
	}
	format_addr(addr, sizeof(addr), cfg->host, port);
	/* Port 0 lets the kernel pick, and it never picks a port that has a
	 * listener (reuseport or not), so there is nothing to probe. */
	if (port) {
		take_startup_mutex(port, &mutex);
		rc = open_socket((struct sockaddr *)&ss, sslen, false, addr, &probe, err, errlen);
		if (rc)
			goto out;
		close(probe);
	}
	for (i = 0; i < n; i++) {
		rc = open_socket((struct sockaddr *)&ss, sslen, true, addr, &ls->fds[i], err,
				 errlen);
		if (rc)
			goto out;
		ls->n++;
		if (!port) {
			/* The rest join the port the kernel chose. */
			port = bound_port(ls->fds[0]);
			set_port(&ss, port);
			format_addr(addr, sizeof(addr), cfg->host, port);
		}
	}
	ls->port = port;
out:
	if (mutex >= 0)
		close(mutex);
	if (rc)
		ld_listeners_close(ls);
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
	if (s->app.on_drain)
		s->app.on_drain(s->app.arg);
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

int ld_server_run(const struct ld_server_config *cfg, struct ld_listeners *ls,
		  const struct ld_server_app *app, char *err, size_t errlen)
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
	s->cfg.port = ls->port;
	if (ls->n != s->nworkers) {
		snprintf(err, errlen, "listen: %u listeners for %u loop threads", ls->n,
			 s->nworkers);
		rc = -EINVAL;
		goto out;
	}
	s->workers = calloc(s->nworkers, sizeof(*s->workers));
	if (!s->workers) {
		rc = -ENOMEM;
		goto out;
	}
	/* The sockets are the workers' now (closed with them). */
	for (i = 0; i < s->nworkers; i++) {
		s->workers[i].listen_fd = ls->fds[i];
		ls->fds[i] = -1;
	}
	uv_mutex_init(&s->wake_lock);
	/* SIGPIPE would kill the process on a write to a reset connection;
	 * the error comes back from write(2) instead. */
	signal(SIGPIPE, SIG_IGN);
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

		format_addr(addr, sizeof(addr), cfg->host, s->cfg.port);
		ld_log_event("info", "listening", (const char *const[]){"address", addr, NULL});
		fprintf(stderr, "ladder: listening on %s with %u loop thread%s\n", addr,
			s->nworkers, s->nworkers == 1 ? "" : "s");
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
	ld_listeners_close(ls);
	return rc;
}
