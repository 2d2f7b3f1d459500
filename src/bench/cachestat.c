/*
 * cachestat.c - the response cache's counters from the server's /metrics.
 */
#include "bench/cachestat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "bench/httpget.h"
#include "http/client.h"

#define FETCH_TIMEOUT_MS 3000
/* /metrics grows with routes and loops; past this it is cut and fails. */
#define METRICS_MAX (8 * 1024 * 1024)

static const char *const level_label[LD_CSTAT_LEVELS] = {"level=\"l1\"", "level=\"l2\""};

/* line_value: the sample's value, the number after the last space. */
static double line_value(const char *line, size_t len)
{
	char num[64];
	size_t i = len;

	while (i > 0 && line[i - 1] != ' ')
		i--;
	if (len - i == 0 || len - i >= sizeof(num))
		return 0;
	memcpy(num, line + i, len - i);
	num[len - i] = '\0';
	return strtod(num, NULL);
}

static void parse_line(const char *line, size_t len, struct ld_cache_stat *s)
{
	static const struct {
		const char *name;
		int which;
	} series[] = {
	    {"ladder_cache_hits_total{", 0},
	    {"ladder_cache_misses_total{", 1},
	    {"ladder_cache_coalesced_waits_total{", 2},
	};
	const char *close = memchr(line, '}', len);

	if (!close)
		return;
	for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); k++) {
		size_t nl = strlen(series[k].name);

		if (len < nl || memcmp(line, series[k].name, nl))
			continue;
		for (int lv = 0; lv < LD_CSTAT_LEVELS; lv++) {
			const char *lab = level_label[lv];
			size_t ll = strlen(lab);
			bool has = false;

			for (const char *p = line + nl; p + ll <= close; p++)
				if (!memcmp(p, lab, ll)) {
					has = true;
					break;
				}
			if (!has)
				continue;
			double v = line_value(close, len - (size_t)(close - line));
			double *dst = series[k].which == 0   ? &s->hits[lv]
				      : series[k].which == 1 ? &s->misses[lv]
							     : &s->coalesced[lv];
			*dst += v;
			s->level[lv] = true;
			if (series[k].which < 2)
				s->found = true;
		}
	}
}

void ld_cache_stat_parse(const char *text, size_t len, struct ld_cache_stat *s)
{
	size_t i = 0;

	memset(s, 0, sizeof(*s));
	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) : len;

		if (end > i && text[i] != '#')
			parse_line(text + i, end - i, s);
		i = end + 1;
	}
}

int ld_cache_stat_fetch(const struct sockaddr_storage *addr, const char *authority,
			const char *base_path, struct ld_cache_stat *s, char *err, size_t errlen)
{
	static const char *const hdrs[] = {"Connection: close", NULL};
	struct ld_buf req, body;
	char path[2100];
	size_t l = strlen(base_path);
	int status = 0, rc;

	memset(s, 0, sizeof(*s));
	ld_buf_init(&req, 4096);
	ld_buf_init(&body, METRICS_MAX);
	/* the base URL's path without a trailing slash, + /metrics */
	while (l > 0 && base_path[l - 1] == '/')
		l--;
	snprintf(path, sizeof(path), "%.*s/metrics", (int)l, base_path);
	rc = ld_http_request_write(&req, "GET", authority, path, hdrs, NULL, 0);
	if (rc) {
		snprintf(err, errlen, "cannot build the metrics request");
		goto out;
	}
	rc = ld_bench_http_fetch(
	    addr,
	    addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
	    authority, &req, FETCH_TIMEOUT_MS, "metrics", &status, &body, err, errlen);
	if (rc)
		goto out;
	if (status == 200 && !ld_buf_error(&body))
		ld_cache_stat_parse(body.data ? body.data : "", body.len, s);
out:
	ld_buf_release(&req);
	ld_buf_release(&body);
	return rc;
}

void ld_cache_stat_delta(const struct ld_cache_stat *a, const struct ld_cache_stat *b,
			 struct ld_cache_stat *d)
{
	memset(d, 0, sizeof(*d));
	d->found = a->found && b->found;
	for (int lv = 0; lv < LD_CSTAT_LEVELS; lv++) {
		d->level[lv] = b->level[lv];
		d->hits[lv] = b->hits[lv] - a->hits[lv];
		d->misses[lv] = b->misses[lv] - a->misses[lv];
		d->coalesced[lv] = b->coalesced[lv] - a->coalesced[lv];
	}
}

double ld_cache_stat_lookups(const struct ld_cache_stat *d)
{
	return d->hits[LD_CSTAT_L1] + d->misses[LD_CSTAT_L1] + d->coalesced[LD_CSTAT_L1];
}

double ld_cache_stat_ratio(const struct ld_cache_stat *d)
{
	double n = ld_cache_stat_lookups(d);

	if (n <= 0)
		return -1;
	return (d->hits[LD_CSTAT_L1] + d->hits[LD_CSTAT_L2]) / n;
}

void ld_cache_stat_json(struct ld_json *j, const struct ld_cache_stat *d)
{
	static const char *const names[LD_CSTAT_LEVELS] = {"l1", "l2"};
	double r = ld_cache_stat_ratio(d);

	ld_json_key(j, "source");
	ld_json_str(j, "the server's /metrics, before and after the run");
	ld_json_key(j, "hit_ratio");
	if (r < 0)
		ld_json_null(j);
	else
		ld_json_double(j, r);
	ld_json_key(j, "lookups");
	ld_json_int(j, (int64_t)ld_cache_stat_lookups(d));
	for (int lv = 0; lv < LD_CSTAT_LEVELS; lv++) {
		if (!d->level[lv])
			continue;
		ld_json_key(j, names[lv]);
		ld_json_obj_begin(j);
		ld_json_key(j, "hits");
		ld_json_int(j, (int64_t)d->hits[lv]);
		ld_json_key(j, "misses");
		ld_json_int(j, (int64_t)d->misses[lv]);
		ld_json_key(j, "coalesced_waits");
		ld_json_int(j, (int64_t)d->coalesced[lv]);
		ld_json_obj_end(j);
	}
}
