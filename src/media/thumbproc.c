/*
 * thumbproc.c - thumbnails in a child process (thumbproc.h): the parent's
 * side (spawn, the protocol with deadlines, kill and reap) and the child's
 * (`ladder thumbnailer`).
 */
#include "media/thumbproc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "media/media.h"

extern char **environ;

/* Larger than any JPEG of 1600 px: a reply claiming more is not believed. */
#define THUMB_MAX ((uint64_t)64 << 20)
#define ERR_MAX	  400

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the parent ----------------------------------------------------------- */

void ld_thumbproc_init(struct ld_thumbproc *p, const char *exe, unsigned threads)
{
	memset(p, 0, sizeof(*p));
	p->exe = exe;
	p->threads = threads;
	p->to = p->from = -1;
}

/* reap kills the child (unless it is known to be dying: it closed its end)
 * and waits for it; the return is its wait status. */
static int reap_child(struct ld_thumbproc *p, bool dying)
{
	int st = 0;

	if (p->pid > 0) {
		if (!dying)
			kill(p->pid, SIGKILL);
		while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	if (p->to >= 0)
		close(p->to);
	if (p->from >= 0)
		close(p->from);
	p->to = p->from = -1;
	p->pid = 0;
	p->loaded = 0;
	return st;
}

static int reap(struct ld_thumbproc *p)
{
	return reap_child(p, false);
}

void ld_thumbproc_close(struct ld_thumbproc *p)
{
	reap(p);
}

static int spawn(struct ld_thumbproc *p, uint64_t memory)
{
	char mem[24], thr[16], ppid[24];
	char *argv[] = {"ladder", "thumbnailer", "--memory", mem, "--threads",
			thr,	  "--parent",	 ppid,	     NULL};
	int in[2] = {-1, -1}, out[2] = {-1, -1}, rc;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;

	snprintf(mem, sizeof(mem), "%" PRIu64, memory);
	snprintf(thr, sizeof(thr), "%u", p->threads);
	snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
	/* Sockets, not pipes: send() with MSG_NOSIGNAL, so a child that died
	 * is an EPIPE here, never a SIGPIPE for the whole worker. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)
		return -errno;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out) != 0) {
		rc = -errno;
		close(in[0]);
		close(in[1]);
		return rc;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawnattr_init(&at);
	/* Its own process group: a Ctrl-C meant for the worker (which drains)
	 * must not kill the version in flight. Signals as a new process has
	 * them: the worker's threads block some. */
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGCHLD);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					  POSIX_SPAWN_SETPGROUP);
	rc = -posix_spawn(&p->pid, p->exe, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(in[0]);
	close(out[1]);
	if (rc != 0) {
		p->pid = 0;
		close(in[1]);
		close(out[0]);
		return rc;
	}
	p->to = in[1];
	p->from = out[0];
	p->memory = memory;
	p->loaded = 0;
	fcntl(p->to, F_SETFL, O_NONBLOCK);
	fcntl(p->from, F_SETFL, O_NONBLOCK);
	return 0;
}

/* xfer moves n bytes to or from the child by deadline (0: none): 0,
 * -ETIMEDOUT, -EPIPE (the child is gone), or what the system said. */
static int xfer(int fd, void *buf, size_t n, bool wr, uint64_t deadline)
{
	char *c = buf;

	while (n > 0) {
		ssize_t k = wr ? send(fd, c, n, MSG_NOSIGNAL) : read(fd, c, n);
		struct pollfd pf = {fd, wr ? POLLOUT : POLLIN, 0};
		int ms = -1;

		if (k > 0) {
			c += k;
			n -= (size_t)k;
			continue;
		}
		if (k == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno == ECONNRESET ? -EPIPE : -errno;
		if (deadline) {
			uint64_t now = mono_ns();

			if (now >= deadline)
				return -ETIMEDOUT;
			ms = (int)((deadline - now) / 1000000u) + 1;
		}
		if (poll(&pf, 1, ms) == 0)
			return -ETIMEDOUT;
	}
	return 0;
}

/* lost reaps a child the exchange failed with (rc) and says why in err:
 * the time limit, the signal it died of (the image's doing: final), or
 * -EAGAIN for anything else (not the image's). */
static int lost(struct ld_thumbproc *p, int rc, const struct ld_thumbproc_limits *lim, char *err,
		size_t errlen)
{
	/* EPIPE: it closed its end, which it does only by dying; wait for
	 * that rather than kill it, to learn what it died of. */
	int st = reap_child(p, rc == -EPIPE);

	if (rc == -ETIMEDOUT) {
		snprintf(err, errlen, "over the time limit of %g s", lim->timeout_s);
		return -ETIMEDOUT;
	}
	if (rc == -EPIPE && WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL) {
		snprintf(err, errlen, "the decoder died (signal %d, %s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
		return -EBADMSG;
	}
	if (rc == -EPIPE && WIFSIGNALED(st)) {
		/* Not ours (we kill only at the deadline): the kernel's OOM
		 * killer, most likely. */
		snprintf(err, errlen, "the decoder was killed (signal 9), out of memory");
		return -ENOMEM;
	}
	snprintf(err, errlen, "the thumbnailer process failed: %s", strerror(-rc));
	return -EAGAIN;
}

/* ensure starts a child with the limit when none runs, and gives it the
 * original when it does not have it. */
static int ensure(struct ld_thumbproc *p, const struct ld_thumbproc_limits *lim, int *width,
		  int *height, char *err, size_t errlen)
{
	uint64_t deadline = 0, len = p->len;
	int32_t hdr[3];
	uint32_t n;
	char e[ERR_MAX + 1];
	int rc;

	if (p->pid && p->memory != lim->memory)
		reap(p);
	if (!p->pid) {
		rc = spawn(p, lim->memory);
		if (rc != 0) {
			snprintf(err, errlen, "the thumbnailer could not start: %s", strerror(-rc));
			return -EAGAIN;
		}
	}
	if (p->loaded && !width)
		return 0;
	if (lim->timeout_s > 0)
		deadline = mono_ns() + (uint64_t)(lim->timeout_s * 1e9);
	rc = xfer(p->to, "O", 1, true, deadline);
	if (rc == 0)
		rc = xfer(p->to, &len, sizeof(len), true, deadline);
	if (rc == 0)
		rc = xfer(p->to, (void *)p->buf, p->len, true, deadline);
	if (rc == 0)
		rc = xfer(p->from, hdr, sizeof(hdr), false, deadline);
	if (rc == 0)
		rc = xfer(p->from, &n, sizeof(n), false, deadline);
	if (rc == 0 && n > ERR_MAX)
		rc = -EPROTO;
	if (rc == 0)
		rc = xfer(p->from, e, n, false, deadline);
	if (rc != 0)
		return lost(p, rc, lim, err, errlen);
	e[n] = '\0';
	p->loaded = 1;
	if (width) {
		*width = hdr[1];
		*height = hdr[2];
	}
	if (hdr[0] != 0)
		snprintf(err, errlen, "%s", e);
	return hdr[0];
}

int ld_thumbproc_load(struct ld_thumbproc *p, const void *buf, size_t len,
		      const struct ld_thumbproc_limits *lim, int *width, int *height, char *err,
		      size_t errlen)
{
	p->buf = buf;
	p->len = len;
	p->loaded = 0;
	return ensure(p, lim, width, height, err, errlen);
}

int ld_thumbproc_thumbnail(struct ld_thumbproc *p, int long_side,
			   const struct ld_thumbproc_limits *lim, void **out, size_t *outlen,
			   int *w, int *h, char *err, size_t errlen)
{
	struct {
		int32_t side;
		uint64_t max_pixels;
		double timeout_s;
	} rq = {long_side, lim->max_pixels, lim->timeout_s};
	uint64_t deadline = 0, len = 0;
	int32_t hdr[3];
	uint32_t n;
	char e[ERR_MAX + 1];
	char *buf = NULL;
	int rc;

	*out = NULL;
	*outlen = 0;
	/* A child killed on an earlier version is started afresh and sent
	 * the original again. */
	rc = ensure(p, lim, NULL, NULL, err, errlen);
	if (rc != 0)
		return rc;
	if (lim->timeout_s > 0)
		deadline = mono_ns() + (uint64_t)(lim->timeout_s * 1e9);
	rc = xfer(p->to, "T", 1, true, deadline);
	if (rc == 0)
		rc = xfer(p->to, &rq, sizeof(rq), true, deadline);
	if (rc == 0)
		rc = xfer(p->from, hdr, sizeof(hdr), false, deadline);
	if (rc == 0)
		rc = xfer(p->from, &n, sizeof(n), false, deadline);
	if (rc == 0 && n > ERR_MAX)
		rc = -EPROTO;
	if (rc == 0)
		rc = xfer(p->from, e, n, false, deadline);
	if (rc == 0)
		rc = xfer(p->from, &len, sizeof(len), false, deadline);
	if (rc == 0 && len > THUMB_MAX)
		rc = -EPROTO;
	if (rc == 0 && len) {
		buf = malloc(len);
		rc = buf ? xfer(p->from, buf, len, false, deadline) : -EAGAIN;
	}
	if (rc != 0) {
		free(buf);
		return lost(p, rc, lim, err, errlen);
	}
	e[n] = '\0';
	if (hdr[0] != 0) {
		free(buf);
		snprintf(err, errlen, "%s", e);
		/* An allocation failed in there: whatever libvips held is
		 * not trusted for the next version. */
		if (hdr[0] == -ENOMEM)
			reap(p);
		return hdr[0];
	}
	*out = buf;
	*outlen = len;
	*w = hdr[1];
	*h = hdr[2];
	return 0;
}

/* ---- the child -------------------------------------------------------------- */

static int reply(const int32_t hdr[3], const char *e, const void *out, uint64_t len, bool thumb)
{
	uint32_t n = (uint32_t)strnlen(e, ERR_MAX);

	if (xfer(1, (void *)hdr, 3 * sizeof(int32_t), true, 0) || xfer(1, &n, sizeof(n), true, 0) ||
	    xfer(1, (void *)e, n, true, 0))
		return -EPIPE;
	if (thumb && (xfer(1, &len, sizeof(len), true, 0) || xfer(1, (void *)out, len, true, 0)))
		return -EPIPE;
	return 0;
}

/* over_memory turns libvips' report of a failed allocation into the
 * reason the photo shows. */
static int over_memory(int rc, char *e, size_t cap, uint64_t memory)
{
	if (rc != 0 && memory && (rc == -ENOMEM || strstr(e, "out of memory"))) {
		snprintf(e, cap, "over the memory limit of %" PRIu64 " MiB", memory >> 20);
		return -ENOMEM;
	}
	return rc;
}

/*
 * fault_at reads LADDER_TEST_THUMBNAILER_FAULT, "hang:SIDE" or "crash:SIDE":
 * the child then hangs (as a decoder stuck in one call would: no progress
 * is reported, so only the parent's deadline ends it) or aborts when asked
 * for that side. The tests' way to prove the limits hold for a libvips
 * that misbehaves without waiting for one that does; an operator has no
 * use for it.
 */
static void fault_at(int side)
{
	const char *f = getenv("LADDER_TEST_THUMBNAILER_FAULT");
	const char *colon = f ? strchr(f, ':') : NULL;

	if (!colon || atoi(colon + 1) != side)
		return;
	if (strncmp(f, "hang:", 5) == 0)
		for (;;)
			pause();
	if (strncmp(f, "crash:", 6) == 0)
		abort();
}

int ld_thumbproc_child_main(int argc, char **argv)
{
	uint64_t memory = 0, len = 0;
	unsigned threads = 1;
	long parent = 0;
	char *orig = NULL, op, e[ERR_MAX + 1];
	int i, rc;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--memory"))
			memory = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--threads"))
			threads = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--parent"))
			parent = strtol(argv[i + 1], NULL, 10);
	}
	/* Spoken to by a worker only: dies with it (and if it is gone
	 * already, now). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (parent <= 0 || getppid() != (pid_t)parent) {
		fprintf(stderr, "ladder thumbnailer: run by ladder worker only\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
	/* Few malloc arenas: each reserves 64 MiB of address space, which
	 * RLIMIT_AS counts though little of it is ever used. */
	mallopt(M_ARENA_MAX, 2);
#if defined(__SANITIZE_ADDRESS__)
	/* AddressSanitizer has reserved terabytes of shadow address space
	 * before main: no RLIMIT_AS can hold in a sanitizer build. */
	memory = 0;
#endif
	if (memory && setrlimit(RLIMIT_AS, &(struct rlimit){memory, memory}) != 0) {
		fprintf(stderr, "ladder thumbnailer: setrlimit: %s\n", strerror(errno));
		return 1;
	}
	if (ld_media_init("ladder", threads, e, sizeof(e)) != 0) {
		fprintf(stderr, "ladder thumbnailer: %s\n", e);
		return 1;
	}
	while (xfer(0, &op, 1, false, 0) == 0) {
		int32_t hdr[3] = {0, 0, 0};

		e[0] = '\0';
		if (op == 'O') {
			if (xfer(0, &len, sizeof(len), false, 0) != 0)
				break;
			free(orig);
			orig = malloc(len ? len : 1);
			if (orig && xfer(0, orig, len, false, 0) != 0)
				break;
			if (orig) {
				hdr[0] = ld_media_header(orig, len, &hdr[1], &hdr[2], e, sizeof(e));
			} else {
				/* Over the limit already: the bytes are read
				 * and dropped, the protocol goes on. */
				char sink[4096];
				uint64_t left = len;

				while (left > 0) {
					size_t k =
					    left < sizeof(sink) ? (size_t)left : sizeof(sink);

					if (xfer(0, sink, k, false, 0) != 0)
						goto out;
					left -= k;
				}
				hdr[0] = -ENOMEM;
			}
			hdr[0] = over_memory(hdr[0], e, sizeof(e), memory);
			if (reply(hdr, e, NULL, 0, false) != 0)
				break;
		} else if (op == 'T') {
			struct {
				int32_t side;
				uint64_t max_pixels;
				double timeout_s;
			} rq;
			struct ld_thumb_limits lim;
			void *out = NULL;
			size_t outlen = 0;

			if (xfer(0, &rq, sizeof(rq), false, 0) != 0 || !orig)
				break;
			lim.max_pixels = rq.max_pixels;
			lim.timeout_s = rq.timeout_s;
			fault_at(rq.side);
			rc = ld_media_thumbnail(orig, len, rq.side, &lim, &out, &outlen, &hdr[1],
						&hdr[2], e, sizeof(e));
			hdr[0] = over_memory(rc, e, sizeof(e), memory);
			rc = reply(hdr, e, out, rc == 0 ? outlen : 0, true);
			ld_media_free(out);
			if (rc != 0)
				break;
		} else {
			break;
		}
	}
out:
	free(orig);
	return 0;
}
