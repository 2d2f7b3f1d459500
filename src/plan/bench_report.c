/*
 * bench_report.c - the planner's reader of `ladder bench` JSON reports.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "plan/bench_report.h"
#include "plan/num.h"

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "something else";
}

/* member fetches obj.key expecting an object; absent gives NULL and 0, and
 * a present member of another type is an error. */
static int get_obj(const char *name, const json_t *obj, const char *path, const char *key,
		   json_t **out, char *err, size_t errlen)
{
	json_t *v = obj ? json_object_get(obj, key) : NULL;
	int rc = 0;

	*out = NULL;
	if (!v)
		goto out;
	if (!json_is_object(v)) {
		snprintf(err, errlen, "%s: %s%s: expected an object, got %s", name, path, key,
			 type_name(v));
		rc = -EINVAL;
		goto out;
	}
	*out = v;
out:
	return rc;
}

/* get_num reads obj.key as a finite number >= 0 into *out; *found says
 * whether it was there. */
static int get_num(const char *name, const json_t *obj, const char *path, const char *key,
		   double *out, bool *found, char *err, size_t errlen)
{
	json_t *v = obj ? json_object_get(obj, key) : NULL;
	double d;
	int rc = 0;

	*found = false;
	if (!v)
		goto out;
	rc = -EINVAL;
	if (!json_is_number(v)) {
		snprintf(err, errlen, "%s: %s%s: expected a number, got %s", name, path, key,
			 type_name(v));
		goto out;
	}
	d = json_number_value(v);
	if (!isfinite(d) || d < 0 || d > 1e15) {
		snprintf(err, errlen, "%s: %s%s: %g is out of range", name, path, key, d);
		goto out;
	}
	*out = d;
	*found = true;
	rc = 0;
out:
	return rc;
}

static int parse_config(const char *name, json_t *root, struct ld_bench_report *r, char *err,
			size_t errlen)
{
	json_t *cfg, *rate, *mode;
	bool found;
	int rc;

	rc = get_obj(name, root, "", "config", &cfg, err, errlen);
	if (rc || !cfg)
		goto out;
	rc = get_num(name, cfg, "config.", "connections", &r->connections, &found, err, errlen);
	if (rc)
		goto out;
	r->has_connections = found;
	if (found && (r->connections < 1 || r->connections != floor(r->connections))) {
		snprintf(err, errlen, "%s: config.connections: expected a whole number >= 1", name);
		rc = -EINVAL;
		goto out;
	}
	rate = json_object_get(cfg, "rate");
	if (rate && json_is_string(rate)) {
		if (strcmp(json_string_value(rate), "max") != 0) {
			snprintf(err, errlen, "%s: config.rate: expected a number or \"max\"",
				 name);
			rc = -EINVAL;
			goto out;
		}
		r->rate_max = true;
	} else if (rate) {
		rc = get_num(name, cfg, "config.", "rate", &r->rate, &found, err, errlen);
		if (rc)
			goto out;
	}
	mode = json_object_get(cfg, "mode");
	if (mode) {
		const char *m = json_is_string(mode) ? json_string_value(mode) : NULL;

		if (!m || (strcmp(m, "open") != 0 && strcmp(m, "closed") != 0)) {
			snprintf(err, errlen, "%s: config.mode: expected \"open\" or \"closed\"",
				 name);
			rc = -EINVAL;
			goto out;
		}
		r->open_loop = !strcmp(m, "open");
	}
out:
	return rc;
}

static int parse_mix(const char *name, json_t *root, struct ld_bench_report *r, char *err,
		     size_t errlen)
{
	static const char *const kinds[] = {"read", "write"};
	json_t *mix, *part;
	char path[32];
	bool found;
	int i, rc;

	rc = get_obj(name, root, "", "mix", &mix, err, errlen);
	if (rc || !mix)
		goto out;
	for (i = 0; i < 2; i++) {
		double *dst = i ? &r->write_rps : &r->read_rps;

		rc = get_obj(name, mix, "mix.", kinds[i], &part, err, errlen);
		if (rc)
			goto out;
		if (!part)
			continue;
		snprintf(path, sizeof(path), "mix.%s.", kinds[i]);
		rc = get_num(name, part, path, "achieved_rps", dst, &found, err, errlen);
		if (rc)
			goto out;
		if (!found) {
			snprintf(err, errlen, "%s: %sachieved_rps: missing", name, path);
			rc = -EINVAL;
			goto out;
		}
		if (i)
			r->has_write = true;
		else
			r->has_read = true;
	}
out:
	return rc;
}

/* parse_cache reads the optional cache object: hit_ratio (a fraction, or
 * null when the run made no look-up) and lookups. */
static int parse_cache(const char *name, json_t *root, struct ld_bench_report *r, char *err,
		       size_t errlen)
{
	json_t *cache, *hr;
	bool found;
	int rc;

	rc = get_obj(name, root, "", "cache", &cache, err, errlen);
	if (rc || !cache)
		goto out;
	rc = get_num(name, cache, "cache.", "lookups", &r->cache_lookups, &found, err, errlen);
	if (rc)
		goto out;
	hr = json_object_get(cache, "hit_ratio");
	if (!hr || json_is_null(hr))
		goto out;
	rc = get_num(name, cache, "cache.", "hit_ratio", &r->cache_hit_ratio, &found, err, errlen);
	if (rc)
		goto out;
	if (r->cache_hit_ratio > 1) {
		snprintf(err, errlen, "%s: cache.hit_ratio: %g is not a fraction (0 to 1)", name,
			 r->cache_hit_ratio);
		rc = -EINVAL;
		goto out;
	}
	r->has_cache_hit_ratio = true;
out:
	return rc;
}

static int parse_root(const char *name, json_t *root, struct ld_bench_report *r, char *err,
		      size_t errlen)
{
	json_t *schema, *machine, *results, *lat, *bp, *held;
	bool found;
	int rc = -EINVAL;

	if (!json_is_object(root)) {
		snprintf(err, errlen, "%s: expected a JSON object at the top", name);
		goto out;
	}
	schema = json_object_get(root, "schema");
	if (!schema || !json_is_string(schema)) {
		snprintf(err, errlen, "%s: schema: missing (expected \"ladder-bench/1\")", name);
		goto out;
	}
	if (strcmp(json_string_value(schema), "ladder-bench/1") != 0) {
		snprintf(err, errlen, "%s: schema: \"%.40s\" is not \"ladder-bench/1\"", name,
			 json_string_value(schema));
		goto out;
	}
	rc = parse_config(name, root, r, err, errlen);
	if (rc)
		goto out;
	rc = get_obj(name, root, "", "machine", &machine, err, errlen);
	if (rc)
		goto out;
	rc = get_num(name, machine, "machine.", "cores", &r->cores, &found, err, errlen);
	if (rc)
		goto out;
	rc = get_obj(name, root, "", "results", &results, err, errlen);
	if (rc)
		goto out;
	rc = -EINVAL;
	if (!results) {
		snprintf(err, errlen, "%s: results: missing", name);
		goto out;
	}
	rc = get_num(name, results, "results.", "achieved_rps", &r->achieved_rps, &found, err,
		     errlen);
	if (rc)
		goto out;
	if (!found) {
		snprintf(err, errlen, "%s: results.achieved_rps: missing", name);
		rc = -EINVAL;
		goto out;
	}
	rc = get_num(name, results, "results.", "error_rate", &r->error_rate, &found, err, errlen);
	if (rc)
		goto out;
	rc = get_obj(name, results, "results.", "latency_us", &lat, err, errlen);
	if (rc)
		goto out;
	rc = get_num(name, lat, "results.latency_us.", "mean", &r->latency_mean_us, &found, err,
		     errlen);
	if (rc)
		goto out;
	rc = get_num(name, lat, "results.latency_us.", "p99", &r->latency_p99_us, &found, err,
		     errlen);
	if (rc)
		goto out;
	rc = parse_mix(name, root, r, err, errlen);
	if (rc)
		goto out;
	rc = parse_cache(name, root, r, err, errlen);
	if (rc)
		goto out;
	rc = get_obj(name, root, "", "breakpoint", &bp, err, errlen);
	if (rc || !bp)
		goto out;
	held = json_object_get(bp, "max_rate_held");
	/* null means no step met the objective: no capacity figure. */
	if (held && !json_is_null(held)) {
		rc = get_num(name, bp, "breakpoint.", "max_rate_held", &r->max_rate_held, &found,
			     err, errlen);
		if (rc)
			goto out;
		r->has_breakpoint = true;
	}
out:
	return rc;
}

int ld_bench_report_parse(const char *name, const char *text, size_t len, struct ld_bench_report *r,
			  char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = NULL;
	int rc = -EINVAL;

	memset(r, 0, sizeof(*r));
	r->open_loop = true;
	if (len > LD_BENCH_REPORT_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", name, LD_BENCH_REPORT_MAX);
		rc = -E2BIG;
		goto out;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", name, jerr.line, jerr.column,
			 jerr.text);
		goto out;
	}
	rc = parse_root(name, root, r, err, errlen);
out:
	json_decref(root);
	return rc;
}

int ld_bench_report_load(const char *path, struct ld_bench_report *r, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = ld_read_file(path, LD_BENCH_REPORT_MAX, &text, &len, err, errlen);
	if (rc)
		goto out;
	rc = ld_bench_report_parse(path, text, len, r, err, errlen);
out:
	free(text);
	return rc;
}

void ld_bench_report_apply(const struct ld_bench_report *r, const char *name, struct ld_assume *a)
{
	double cap = r->has_breakpoint ? r->max_rate_held : r->achieved_rps, scale = 1;
	char rb[32], wb[32];
	const char *how;

	if (r->has_breakpoint)
		how = "breakpoint: highest rate that met the objective";
	else if (r->open_loop && !r->rate_max)
		how = "achieved rate of a fixed-rate run: a lower bound on capacity";
	else
		how = "achieved rate at full load";
	if ((r->has_read || r->has_write) && r->achieved_rps > 0)
		scale = cap / r->achieved_rps;
	if (r->has_read || r->has_write) {
		if (r->has_read && r->read_rps > 0)
			a->node_read_capacity = r->read_rps * scale;
		if (r->has_write && r->write_rps > 0)
			a->node_write_capacity = r->write_rps * scale;
	} else if (cap > 0) {
		a->node_read_capacity = cap;
	}
	/* A long path keeps its end, where the file's own name is. */
	if (strlen(name) > 60)
		name += strlen(name) - 60;
	if (r->has_cache_hit_ratio) {
		/* The planner's field stops short of 1 (all reads cached). */
		a->cache_hit_ratio = fmin(r->cache_hit_ratio, 0.9999);
		snprintf(a->cache_source, sizeof(a->cache_source),
			 "%.60s: measured %.1f%% of %.0f look-ups (the server's cache counters "
			 "over the run)",
			 name, 100 * r->cache_hit_ratio, r->cache_lookups);
	}
	a->capacity_mixed = r->has_read && r->has_write;
	/* The report replaces what was given before it (flags still come after). */
	a->capacity_given = 0;
	if (r->has_read && r->has_write)
		snprintf(a->capacity_source, sizeof(a->capacity_source),
			 "%.60s: %s/s reads, %s/s writes per node (%s%s)", name,
			 ld_num_fmt_si(a->node_read_capacity, rb, sizeof(rb)),
			 ld_num_fmt_si(a->node_write_capacity, wb, sizeof(wb)), how,
			 r->error_rate > 0.01 ? "; error rate above 1%" : "");
	else
		snprintf(a->capacity_source, sizeof(a->capacity_source),
			 "%.60s: %s/s reads per node (%s%s); write capacity %s/s not in the report",
			 name, ld_num_fmt_si(a->node_read_capacity, rb, sizeof(rb)), how,
			 r->error_rate > 0.01 ? "; error rate above 1%" : "",
			 ld_num_fmt_si(a->node_write_capacity, wb, sizeof(wb)));
}
