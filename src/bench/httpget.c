/*
 * httpget.c - a blocking HTTP exchange for the generator's side channels.
 */
#include "bench/httpget.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/client.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int ld_bench_http_fetch(const struct sockaddr_storage *addr, socklen_t addrlen,
			const char *authority, const struct ld_buf *req, int timeout_ms,
			const char *what, int *status, struct ld_buf *body, char *err,
			size_t errlen)
{
	struct ld_http_resp resp;
	char buf[16384];
	size_t off = 0;
	uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000ULL;
	int fd, rc = -EIO;

	*status = 0;
	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return rc;
	}
	if (connect(fd, (const struct sockaddr *)addr, addrlen) && errno != EINPROGRESS) {
		rc = -errno;
		snprintf(err, errlen, "cannot connect to %s: %s", authority, strerror(errno));
		goto out;
	}
	ld_buf_reset(body);
	ld_http_resp_init(&resp, false, body);
	while (!resp.done) {
		struct pollfd pfd = {fd, off < req->len ? POLLOUT : POLLIN, 0};
		int64_t left = (int64_t)(deadline - mono_ns()) / 1000000;
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			rc = -ETIMEDOUT;
			snprintf(err, errlen, "no %s from %s within %d ms", what, authority,
				 timeout_ms);
			goto out;
		}
		if (off < req->len) {
			n = send(fd, req->data + off, req->len - off, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				rc = -errno;
				snprintf(err, errlen, "cannot connect to %s: %s", authority,
					 strerror(errno));
				goto out;
			}
			off += n > 0 ? (size_t)n : 0;
			continue;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			if (n == 0 && ld_http_resp_eof(&resp) == 1)
				break;
			rc = n < 0 ? -errno : -EPROTO;
			snprintf(err, errlen, "%s closed before the %s was complete", authority,
				 what);
			goto out;
		}
		for (size_t used = 0; used < (size_t)n && !resp.done;) {
			ssize_t c = ld_http_resp_feed(&resp, buf + used, (size_t)n - used);
			if (c < 0) {
				rc = (int)c;
				snprintf(err, errlen, "the %s from %s is not valid HTTP (%s)", what,
					 authority, strerror((int)-c));
				goto out;
			}
			used += (size_t)c;
		}
	}
	*status = resp.status;
	rc = 0;
out:
	close(fd);
	return rc;
}
