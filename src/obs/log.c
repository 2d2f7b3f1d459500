#include "obs/log.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Room for a whole request line: ids and figures are capped (request id
 * 128 bytes), so only a route name of hundreds of bytes could pass it. */
#define REQUEST_LINE_ROOM 1024

int ld_log_request_line(struct ld_buf *out, const struct ld_log_request *e)
{
	struct ld_json j;
	int rc;

	/* A refused reserve loses nothing, so the lines already waiting stay
	 * when the buffer is near its cap or memory is short. */
	rc = ld_buf_reserve(out, REQUEST_LINE_ROOM);
	if (rc)
		goto out;
	ld_json_init(&j, out);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "time");
	ld_json_time_ms(&j, wall_ms());
	ld_json_key(&j, "level");
	ld_json_str(&j, e->status >= 500 ? "error" : "info");
	ld_json_key(&j, "msg");
	ld_json_str(&j, "request");
	ld_json_key(&j, "request_id");
	ld_json_str(&j, e->request_id);
	ld_json_key(&j, "trace_id");
	ld_json_str(&j, e->trace_id);
	ld_json_key(&j, "method");
	if (e->method)
		ld_json_str(&j, e->method);
	else
		ld_json_null(&j);
	ld_json_key(&j, "route");
	ld_json_str(&j, e->route);
	ld_json_key(&j, "status");
	ld_json_int(&j, e->status);
	ld_json_key(&j, "bytes");
	ld_json_uint(&j, e->bytes);
	ld_json_key(&j, "duration_us");
	ld_json_uint(&j, e->duration_ns / 1000);
	ld_json_key(&j, "user_id");
	if (e->user_id)
		ld_json_id(&j, e->user_id);
	else
		ld_json_null(&j);
	if (e->client) {
		ld_json_key(&j, "client");
		ld_json_str(&j, e->client);
	}
	ld_json_obj_end(&j);
	rc = ld_json_finish(&j);
	if (rc == 0)
		rc = ld_buf_putc(out, '\n');
out:
	if (rc && ld_buf_error(out)) {
		/* The buffer failed (and dropped what it held, half this line
		 * with the rest): start it afresh so later lines get through. */
		ld_buf_reset(out);
	}
	return rc;
}

void ld_log_write(const char *p, size_t n)
{
	ssize_t w;

	pthread_mutex_lock(&log_lock);
	while (n > 0) {
		w = write(STDOUT_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* stdout is gone; logs must not take the server down */
		p += w;
		n -= (size_t)w;
	}
	pthread_mutex_unlock(&log_lock);
}

void ld_log_event(const char *level, const char *msg, const char *const *kv)
{
	struct ld_buf b;
	struct ld_json j;

	ld_buf_init(&b, 8192);
	ld_json_init(&j, &b);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "time");
	ld_json_time_ms(&j, wall_ms());
	ld_json_key(&j, "level");
	ld_json_str(&j, level);
	ld_json_key(&j, "msg");
	ld_json_str(&j, msg);
	for (; kv && kv[0] && kv[1]; kv += 2) {
		ld_json_key(&j, kv[0]);
		ld_json_str(&j, kv[1]);
	}
	ld_json_obj_end(&j);
	if (ld_json_finish(&j) == 0 && ld_buf_putc(&b, '\n') == 0)
		ld_log_write(b.data, b.len);
	ld_buf_release(&b);
}
