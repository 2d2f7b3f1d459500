/*
 * thumbproc.h - thumbnails made in a child process, so that the limits on a
 * job hold whatever libvips does with a hostile image.
 *
 * libvips' own time limit (media.h) is cooperative: it is checked when a
 * pipeline reports progress, and a decoder stuck inside one call never
 * reports. Its memory is bounded only by what the pixel limit implies, and
 * a loader that must hold the whole image (an interlaced PNG) or a bug can
 * take far more. Inside the worker's process either would stall or kill
 * every job thread. So each job thread owns one child process, `ladder
 * thumbnailer` (the same binary, started with posix_spawn: a fork of a
 * threaded process could inherit a lock some other thread held), that runs
 * media.h for it:
 *   - memory: the child sets RLIMIT_AS to the job's limit before libvips
 *     starts; an allocation past it fails (libvips reports "out of
 *     memory"), and the version fails with "over the memory limit of N
 *     MiB". A child that dies instead (a glib abort on a failed malloc, a
 *     decoder crash) fails the version with the signal it died of;
 *   - time: the parent waits for each reply at most the time limit plus a
 *     second (libvips' own limit fires first when it can), then SIGKILLs the
 *     child: "over the time limit of T s";
 *   - a killed or dead child is reaped and the next version starts a fresh
 *     one, sent the original again: the other versions are still tried.
 * The child lives as long as it serves: starting one per job would cost a
 * process start per photo, which is what a long-running worker saves.
 * It dies with its parent (PR_SET_PDEATHSIG).
 *
 * Protocol on the child's stdin and stdout (host byte order: the same
 * binary on the same host): 'O' u64 len, bytes: the original, answered i32
 * rc, i32 width, i32 height, u32 n, n bytes of error; 'T' i32 side, u64
 * max_pixels, f64 timeout_s: a thumbnail of the original, answered i32 rc,
 * i32 width, i32 height, u32 n, error, u64 len, bytes of JPEG.
 *
 * Errors: those of media.h (the image's: final), and -EAGAIN when no child
 * could be started or spoken to for a reason that is not the image's (try
 * the job again later).
 *
 * Threading: a struct ld_thumbproc belongs to one thread at a time.
 */
#ifndef LD_THUMBPROC_H
#define LD_THUMBPROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ld_thumbproc_limits {
	uint64_t max_pixels; /* of the original */
	double timeout_s;    /* per version; 0 = none */
	uint64_t memory;     /* address space of the child, bytes; 0 = none */
};

struct ld_thumbproc {
	const char *exe; /* the ladder binary: "/proc/self/exe" */
	unsigned threads;
	uint64_t memory; /* the limit the running child was started with */
	pid_t pid;	 /* 0: no child */
	int to, from;	 /* its stdin, stdout */
	const void *buf; /* the original (the caller's), sent again to a new child */
	size_t len;
	int loaded; /* the running child has buf */
};

/* ld_thumbproc_init prepares p; no child starts until it is needed. */
void ld_thumbproc_init(struct ld_thumbproc *p, const char *exe, unsigned threads);

/* ld_thumbproc_load hands the child the original (buf must stay valid until
 * the next load or close) and reads its header: width and height. */
int ld_thumbproc_load(struct ld_thumbproc *p, const void *buf, size_t len,
		      const struct ld_thumbproc_limits *lim, int *width, int *height, char *err,
		      size_t errlen);

/* ld_thumbproc_thumbnail is ld_media_thumbnail of the loaded original, in
 * the child; *out is a new buffer the caller free()s. */
int ld_thumbproc_thumbnail(struct ld_thumbproc *p, int long_side,
			   const struct ld_thumbproc_limits *lim, void **out, size_t *outlen,
			   int *w, int *h, char *err, size_t errlen);

/* ld_thumbproc_close stops the child (if any). */
void ld_thumbproc_close(struct ld_thumbproc *p);

/* ld_thumbproc_child_main is `ladder thumbnailer --memory BYTES --threads N
 * --parent PID`: the child's side. Not for people: it speaks the protocol
 * on stdin and stdout. */
int ld_thumbproc_child_main(int argc, char **argv);

#endif
