/*
 * httpget.h - one blocking HTTP request on a connection of its own, for the
 * generator's side channels to the server (the profile's /debug/stats, the
 * cache figures' /metrics), never for the load itself.
 *
 * The whole exchange (connect, send, the answer) has one deadline; the
 * answer is parsed strictly (http/client.h) and its body copied into a
 * capped buffer. Blocking: call it from the main thread between runs, or
 * from a thread of its own.
 */
#ifndef LD_BENCH_HTTPGET_H
#define LD_BENCH_HTTPGET_H

#include <sys/socket.h>

#include "base/buf.h"

/* ld_bench_http_fetch sends req (whole request bytes, "Connection: close")
 * to addr and reads one answer: its status into *status, its body into body
 * (reset first). authority names the server in messages, what the answer
 * ("stats document"). Returns 0, or a negative errno with the reason in err:
 * -ETIMEDOUT (nothing within timeout_ms), -EPROTO (not valid HTTP, or closed
 * early), or the socket's error. */
int ld_bench_http_fetch(const struct sockaddr_storage *addr, socklen_t addrlen,
			const char *authority, const struct ld_buf *req, int timeout_ms,
			const char *what, int *status, struct ld_buf *body, char *err,
			size_t errlen);

#endif
