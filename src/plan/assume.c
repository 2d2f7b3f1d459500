/*
 * assume.c - defaults, the field table, the assumptions file and validation.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "plan/assume.h"

#include "base/lines.h"

#define F(k, sec, kind, member, lo, hi, integer, doc)                                              \
	{                                                                                          \
		k, sec, kind, offsetof(struct ld_assume, member), lo, hi, integer, doc             \
	}

/* Bounds are wide enough for any real service and narrow enough to catch a
 * slipped suffix (1e18 users) or a percentage typed as a fraction (70). */
const struct ld_assume_field ld_assume_fields[] = {
    F("users", "workload", LD_NUM_COUNT, users, 0, 1e11, false, "users at month 1"),
    F("writes", "workload", LD_NUM_RATE, writes, 0, 1e9, false,
      "content writes (1B/month, 400/s, 50M/day); a bare count is per month"),
    F("reads", "workload", LD_NUM_RATE, reads, 0, 1e11, false, "API reads, as for writes"),
    F("write_bytes", "workload", LD_NUM_BYTES, write_bytes, 0, 1e12, false,
      "content stored per write"),
    F("read_bytes", "workload", LD_NUM_BYTES, read_bytes, 0, 1e12, false,
      "response bytes sent per read"),
    F("months", "workload", LD_NUM_COUNT, months, 1, LD_ASSUME_MONTHS_MAX, true,
      "planning horizon in months"),
    F("seconds_per_month", "workload", LD_NUM_DURATION, seconds_per_month, 86400 * 7, 86400 * 32,
      false, "length of a month: 2.5e6 in the source design, 2.63e6 in fact"),
    F("peak_ratio", "workload", LD_NUM_FACTOR, peak_ratio, 1, 1000, false,
      "peak request rate over the monthly average"),
    F("growth", "workload", LD_NUM_FRACTION, growth, -0.5, 1, false,
      "monthly growth of every rate (5% = 0.05)"),
    F("retention_months", "workload", LD_NUM_COUNT, retention_months, 0, LD_ASSUME_MONTHS_MAX * 10,
      true, "months content is kept; 0 keeps it forever"),
    F("initial_data", "workload", LD_NUM_BYTES, initial_data, 0, 1e21, false,
      "content already stored before month 1"),

    F("replication", "storage", LD_NUM_FACTOR, replication, 1, 10, false,
      "copies of the database (primary + replicas and standbys)"),
    F("index_overhead", "storage", LD_NUM_FRACTION, index_overhead, 0, 10, false,
      "indexes as a share of raw data"),
    F("storage_overhead", "storage", LD_NUM_FRACTION, storage_overhead, 0, 10, false,
      "WAL, fragmentation and free-space headroom as a share"),

    F("media_uploads", "media", LD_NUM_RATE, media_uploads, 0, 1e9, false,
      "media objects uploaded (photos, videos)"),
    F("media_bytes", "media", LD_NUM_BYTES, media_bytes, 0, 1e12, false,
      "bytes stored per upload, every version"),
    F("media_upload_bytes", "media", LD_NUM_BYTES, media_upload_bytes, 0, 1e12, false,
      "bytes received per upload"),
    F("media_views", "media", LD_NUM_RATE, media_views, 0, 1e12, false, "media objects served"),
    F("media_served_bytes", "media", LD_NUM_BYTES, media_served_bytes, 0, 1e12, false,
      "bytes sent per view"),
    F("cdn_hit_ratio", "media", LD_NUM_FRACTION, cdn_hit_ratio, 0, 1, false,
      "share of media bytes the CDN serves without the origin"),

    F("cache_hot_share", "cache", LD_NUM_FRACTION, cache_hot_share, 0, 1, false,
      "share of stored content in the hot working set"),
    F("cache_overhead", "cache", LD_NUM_FRACTION, cache_overhead, 0, 10, false,
      "cache memory overhead per byte cached (keys, allocator)"),
    F("cache_hit_ratio", "cache", LD_NUM_FRACTION, cache_hit_ratio, 0, 0.9999, false,
      "share of reads the cache answers"),
    F("cache_node_memory", "cache", LD_NUM_BYTES, cache_node_memory, 1e6, 1e15, false,
      "usable memory of one cache node"),

    F("request_time", "app", LD_NUM_DURATION, request_time, 1e-7, 3600, false,
      "mean service time of one request on one core"),
    F("node_cores", "app", LD_NUM_COUNT, node_cores, 1, 4096, true,
      "requests one app node serves at once (its cores)"),
    F("target_utilisation", "app", LD_NUM_FRACTION, target_utilisation, 0.01, 0.99, false,
      "how busy nodes may run at peak"),
    F("redundancy", "app", LD_NUM_COUNT, redundancy, 0, 2, true,
      "spare nodes per tier: 0, 1 (N+1) or 2 (N+2)"),
    F("slo_latency", "app", LD_NUM_DURATION, slo_latency, 1e-6, 3600, false,
      "latency objective at peak ..."),
    F("slo_percentile", "app", LD_NUM_FRACTION, slo_percentile, 0.5, 0.99999, false,
      "... at this percentile"),
    F("core_read_capacity", "app", LD_NUM_COUNT, core_read_capacity, 1, 1e9, false,
      "reads/s one app core holds; default GET /v1/items/{id} on one core, " LD_ASSUME_MEASURED_ON),
    F("node_read_capacity", "app", LD_NUM_COUNT, node_read_capacity, 0, 1e9, false,
      "reads/s one app node holds (from ladder bench); 0 = core_read_capacity x node_cores"),
    F("node_write_capacity", "app", LD_NUM_COUNT, node_write_capacity, 1, 1e9, false,
      "writes/s the single-box store holds (embedded SQLite, one writer, fsync per group "
      "commit); default durable POST /v1/items at 64 clients, " LD_ASSUME_MEASURED_ON),
    F("autoscale_min_nodes", "app", LD_NUM_COUNT, autoscale_min_nodes, 2, 1e6, true,
      "peak app nodes from which autoscaling pays"),

    F("box_max_data", "database", LD_NUM_BYTES, box_max_data, 1e6, 1e18, false,
      "data one single box (rung 1) holds"),
    F("primary_write_capacity", "database", LD_NUM_COUNT, primary_write_capacity, 1, 1e9, false,
      "writes/s one database primary holds"),
    F("primary_max_data", "database", LD_NUM_BYTES, primary_max_data, 1e6, 1e18, false,
      "data per primary before sharding (backup, restore, vacuum times)"),
    F("replica_read_capacity", "database", LD_NUM_COUNT, replica_read_capacity, 1, 1e9, false,
      "reads/s one database node serves"),
    F("max_replicas", "database", LD_NUM_COUNT, max_replicas, 0, 100, true,
      "read replicas per primary before a cache is the cheaper step"),
    F("db_query_time", "database", LD_NUM_DURATION, db_query_time, 1e-7, 3600, false,
      "mean time a pooled connection is held per query"),

    F("jobs_per_write", "jobs", LD_NUM_FACTOR, jobs_per_write, 0, 1e4, false,
      "background jobs per write (fan-out, indexing)"),
    F("jobs_per_upload", "jobs", LD_NUM_FACTOR, jobs_per_upload, 0, 1e4, false,
      "background jobs per media upload (thumbnails, transcodes)"),
    F("job_time", "jobs", LD_NUM_DURATION, job_time, 0, 86400, false, "mean worker time per job"),

    F("price_app_node", "prices", LD_NUM_MONEY, price_app_node, 0, 1e9, false,
      "EXAMPLE: per app or worker node-month"),
    F("price_db_node", "prices", LD_NUM_MONEY, price_db_node, 0, 1e9, false,
      "EXAMPLE: per database node-month"),
    F("price_cache_node", "prices", LD_NUM_MONEY, price_cache_node, 0, 1e9, false,
      "EXAMPLE: per cache node-month"),
    F("price_storage_gb", "prices", LD_NUM_MONEY, price_storage_gb, 0, 1e6, false,
      "EXAMPLE: per GB-month of database storage (every replica)"),
    F("price_object_gb", "prices", LD_NUM_MONEY, price_object_gb, 0, 1e6, false,
      "EXAMPLE: per GB-month of object storage"),
    F("price_egress_gb", "prices", LD_NUM_MONEY, price_egress_gb, 0, 1e6, false,
      "EXAMPLE: per GB sent from the origin"),
    F("price_cdn_gb", "prices", LD_NUM_MONEY, price_cdn_gb, 0, 1e6, false,
      "EXAMPLE: per GB sent by the CDN"),
};

const size_t ld_assume_nfields = sizeof(ld_assume_fields) / sizeof(ld_assume_fields[0]);

static const char *const sections[] = {"workload", "storage",  "media", "cache",
				       "app",	   "database", "jobs",	"prices"};

void ld_assume_defaults(struct ld_assume *a)
{
	memset(a, 0, sizeof(*a));
	a->users = 10e6;
	a->writes = (struct ld_rate){1e9, 0};
	a->reads = (struct ld_rate){100e9, 0};
	a->write_bytes = 1000;
	a->read_bytes = 1000;
	a->months = 36;
	a->seconds_per_month = 2.5e6;
	a->peak_ratio = 3;
	a->growth = 0;
	a->retention_months = 0;
	a->initial_data = 0;

	a->replication = 3;
	a->index_overhead = 0.3;
	a->storage_overhead = 0.2;

	a->media_uploads = (struct ld_rate){0, 0};
	a->media_bytes = 2e6;
	a->media_upload_bytes = 2e6;
	a->media_views = (struct ld_rate){0, 0};
	a->media_served_bytes = 200e3;
	a->cdn_hit_ratio = 0.9;

	a->cache_hot_share = 0.05;
	a->cache_overhead = 0.5;
	a->cache_hit_ratio = 0.9;
	a->cache_node_memory = 64e9;
	snprintf(a->cache_source, sizeof(a->cache_source),
		 "assumed (the default; no measured hit ratio given)");

	a->request_time = 0.0005;
	a->node_cores = 8;
	a->target_utilisation = 0.7;
	a->redundancy = 1;
	a->slo_latency = 0.1;
	a->slo_percentile = 0.99;
	a->core_read_capacity = LD_ASSUME_CORE_READS;
	a->node_read_capacity = 0;
	a->node_write_capacity = LD_ASSUME_STORE_WRITES;
	a->autoscale_min_nodes = 4;

	a->box_max_data = 4e12;
	a->primary_write_capacity = 10000;
	a->primary_max_data = 10e12;
	a->replica_read_capacity = 20000;
	a->max_replicas = 5;
	a->db_query_time = 0.001;

	a->jobs_per_write = 0;
	a->jobs_per_upload = 1;
	a->job_time = 0.5;

	a->price_app_node = 150;
	a->price_db_node = 600;
	a->price_cache_node = 300;
	a->price_storage_gb = 0.10;
	a->price_object_gb = 0.02;
	a->price_egress_gb = 0.05;
	a->price_cdn_gb = 0.02;

	snprintf(
	    a->capacity_source, sizeof(a->capacity_source),
	    "%d reads/s per app core, %d writes/s of the single-box store, " LD_ASSUME_MEASURED_ON
	    " (no ladder bench report given)",
	    LD_ASSUME_CORE_READS, LD_ASSUME_STORE_WRITES);
}

double ld_assume_read_capacity(const struct ld_assume *a)
{
	return a->node_read_capacity > 0 ? a->node_read_capacity
					 : a->core_read_capacity * a->node_cores;
}

char *ld_assume_capacity_text(const struct ld_assume *a, char *out, size_t outlen)
{
	unsigned g = a->capacity_given;

	snprintf(out, outlen, "%s%s%s%s%s", a->capacity_source, g ? "; given as inputs: " : "",
		 g & LD_ASSUME_GIVEN_READ ? "read capacity" : "",
		 g == (LD_ASSUME_GIVEN_READ | LD_ASSUME_GIVEN_WRITE) ? ", " : "",
		 g & LD_ASSUME_GIVEN_WRITE ? "write capacity" : "");
	return out;
}

const struct ld_assume_field *ld_assume_find(const char *key)
{
	size_t i, j, n = strlen(key);

	for (i = 0; i < ld_assume_nfields; i++) {
		const char *k = ld_assume_fields[i].key;

		if (strlen(k) != n)
			continue;
		for (j = 0; j < n; j++) {
			char c = key[j] == '-' ? '_' : key[j];

			if (c != k[j])
				break;
		}
		if (j == n)
			return &ld_assume_fields[i];
	}
	return NULL;
}

double ld_assume_value(const struct ld_assume *a, const struct ld_assume_field *f)
{
	const char *base = (const char *)a + f->offset;

	if (f->kind == LD_NUM_RATE)
		return ld_rate_per_s((const struct ld_rate *)(const void *)base,
				     a->seconds_per_month);
	return *(const double *)(const void *)base;
}

/* check_bounds tests v (per second for a rate) against the field's range. */
static int check_bounds(const struct ld_assume_field *f, double v, char *err, size_t errlen)
{
	int rc = -EINVAL;

	if (!isfinite(v)) {
		snprintf(err, errlen, "%s: not a finite number", f->key);
		goto out;
	}
	if (v < f->min) {
		if (f->min == 0)
			snprintf(err, errlen, "%s: must not be negative (got %g)", f->key, v);
		else
			snprintf(err, errlen, "%s: %g is below the minimum %g", f->key, v, f->min);
		goto out;
	}
	if (v > f->max) {
		snprintf(err, errlen, "%s: %g is absurd (above the maximum %g%s)", f->key, v,
			 f->max, f->kind == LD_NUM_RATE ? " per second" : "");
		goto out;
	}
	if (f->integer && v != floor(v)) {
		snprintf(err, errlen, "%s: must be a whole number (got %g)", f->key, v);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int ld_assume_set(struct ld_assume *a, const char *key, const char *value, char *err, size_t errlen)
{
	const struct ld_assume_field *f = ld_assume_find(key);
	char why[160];
	char *dst;
	int rc;

	if (!f) {
		snprintf(err, errlen, "%s: unknown setting", key);
		rc = -ENOENT;
		goto out;
	}
	if (!value || !*value) {
		snprintf(err, errlen, "%s: missing value", f->key);
		rc = -EINVAL;
		goto out;
	}
	dst = (char *)a + f->offset;
	if (f->kind == LD_NUM_RATE) {
		struct ld_rate r;

		rc = ld_num_parse(value, f->kind, &r, why, sizeof(why));
		if (rc)
			goto bad;
		/* A month's length may still change, so bounds on per-month
		 * rates are checked again in ld_assume_validate. */
		rc = check_bounds(f, ld_rate_per_s(&r, a->seconds_per_month), err, errlen);
		if (rc)
			goto out;
		memcpy(dst, &r, sizeof(r));
	} else {
		double v;

		rc = ld_num_parse(value, f->kind, &v, why, sizeof(why));
		if (rc)
			goto bad;
		rc = check_bounds(f, v, err, errlen);
		if (rc)
			goto out;
		/* A capacity changed from what capacity_source describes. */
		if (memcmp(dst, &v, sizeof(v)) != 0) {
			if (dst == (char *)&a->node_read_capacity ||
			    dst == (char *)&a->core_read_capacity)
				a->capacity_given |= LD_ASSUME_GIVEN_READ;
			if (dst == (char *)&a->node_write_capacity)
				a->capacity_given |= LD_ASSUME_GIVEN_WRITE;
			if (dst == (char *)&a->cache_hit_ratio)
				snprintf(a->cache_source, sizeof(a->cache_source),
					 "given as an input");
		}
		memcpy(dst, &v, sizeof(v));
	}
	goto out;
bad:
	snprintf(err, errlen, "%s: %s", f->key, why);
out:
	return rc;
}

static int known_section(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strlen(sections[i]) == n && !strncmp(sections[i], s, n))
			return 1;
	return 0;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* parse_line handles one line (NUL-terminated, no newline) and records seen
 * keys so a repeated key is reported rather than silently winning. */
static int parse_line(struct ld_assume *a, char *line, unsigned char *seen, char *err,
		      size_t errlen)
{
	char *p = line, *eq, *k_end, *v, *v_end, *c;
	const struct ld_assume_field *f;
	int rc = 0;

	/* A comment starts at '#' or ';' at the start or after a blank, so
	 * values never contain them by accident. */
	for (c = p; *c; c++) {
		if ((*c == '#' || *c == ';') && (c == p || is_blank(c[-1]))) {
			*c = '\0';
			break;
		}
	}
	while (is_blank(*p))
		p++;
	v_end = p + strlen(p);
	while (v_end > p && is_blank(v_end[-1]))
		*--v_end = '\0';
	if (!*p)
		goto out;
	if (*p == '[') {
		if (v_end[-1] != ']' || !known_section(p + 1, (size_t)(v_end - p - 2))) {
			snprintf(err, errlen,
				 "%.60s: unknown section (known: workload, storage, "
				 "media, cache, app, database, jobs, prices)",
				 p);
			rc = -EINVAL;
		}
		goto out;
	}
	eq = strchr(p, '=');
	if (!eq) {
		snprintf(err, errlen, "%.60s: expected 'key = value'", p);
		rc = -EINVAL;
		goto out;
	}
	k_end = eq;
	while (k_end > p && is_blank(k_end[-1]))
		k_end--;
	*k_end = '\0';
	v = eq + 1;
	while (is_blank(*v))
		v++;
	if (!*p) {
		snprintf(err, errlen, "missing key before '='");
		rc = -EINVAL;
		goto out;
	}
	f = ld_assume_find(p);
	if (f && seen[f - ld_assume_fields]) {
		snprintf(err, errlen, "%s: set twice", f->key);
		rc = -EINVAL;
		goto out;
	}
	rc = ld_assume_set(a, p, v, err, errlen);
	if (!rc)
		seen[f - ld_assume_fields] = 1;
out:
	return rc;
}

int ld_assume_parse(struct ld_assume *a, const char *name, const char *text, size_t len, char *err,
		    size_t errlen)
{
	unsigned char seen[sizeof(ld_assume_fields) / sizeof(ld_assume_fields[0])] = {0};
	char line[LD_ASSUME_LINE_MAX + 1];
	char why[256];
	struct ld_lines lines;
	int rc = 0;

	if (len > LD_ASSUME_FILE_MAX) {
		snprintf(err, errlen, "%s: file larger than %d bytes", name, LD_ASSUME_FILE_MAX);
		rc = -E2BIG;
		goto out;
	}
	ld_lines_init(&lines, name, text, len);
	while ((rc = ld_lines_next(&lines, line, LD_ASSUME_LINE_MAX, err, errlen)) == 1) {
		rc = parse_line(a, line, seen, why, sizeof(why));
		if (rc) {
			snprintf(err, errlen, "%s:%zu: %s", name, lines.lineno, why);
			goto out;
		}
	}
out:
	return rc;
}

int ld_assume_load(struct ld_assume *a, const char *path, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = ld_read_file(path, LD_ASSUME_FILE_MAX, &text, &len, err, errlen);
	if (rc)
		goto out;
	rc = ld_assume_parse(a, path, text, len, err, errlen);
out:
	free(text);
	return rc;
}

int ld_assume_validate(const struct ld_assume *a, char *err, size_t errlen)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < ld_assume_nfields; i++) {
		const struct ld_assume_field *f = &ld_assume_fields[i];

		rc = check_bounds(f, ld_assume_value(a, f), err, errlen);
		if (rc)
			goto out;
	}
	rc = -EINVAL;
	if (a->users == 0 && (a->reads.n > 0 || a->writes.n > 0)) {
		snprintf(err, errlen, "users: 0 users cannot make %s",
			 a->reads.n > 0 ? "reads" : "writes");
		goto out;
	}
	if (a->media_uploads.n > 0 && a->media_bytes == 0) {
		snprintf(err, errlen, "media_bytes: media uploads need a size per upload");
		goto out;
	}
	if (a->slo_latency <= a->request_time) {
		snprintf(err, errlen,
			 "slo_latency: %g s cannot be met with a mean request time of %g s",
			 a->slo_latency, a->request_time);
		goto out;
	}
	if (a->primary_max_data < a->write_bytes) {
		snprintf(err, errlen, "primary_max_data: smaller than one write");
		goto out;
	}
	rc = 0;
out:
	return rc;
}
