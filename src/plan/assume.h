/*
 * assume.h - the planner's inputs: a service's assumptions, per-node
 * capacities and an example price table, with defaults, a documented text
 * format and validation.
 *
 * Layers, later wins: built-in defaults (the workload ladder is designed for:
 * 10M users, 1B writes and 100B reads a month, 1 KB per write, 36 months),
 * an assumptions file, a `ladder bench` report, then command-line flags.
 *
 * File format (see examples/assumptions.ini): one `key = value` per line;
 * `#` or `;` starts a comment (at the start of a line or after a blank);
 * `[section]` lines group keys for the reader and are checked to be known
 * sections, but keys are unique across sections. Values take the suffixes
 * of num.h. Lines are at most LD_ASSUME_LINE_MAX bytes, a file at most
 * LD_ASSUME_FILE_MAX bytes.
 *
 * Errors go into a caller buffer and always name the field, and for a file
 * also FILE:LINE. Functions return 0 or -EINVAL (bad value), -ENOENT (unknown
 * key), -E2BIG (line or file too long) or a negative errno from reading the
 * file. No global state: safe from any thread on distinct structs.
 */
#ifndef LD_PLAN_ASSUME_H
#define LD_PLAN_ASSUME_H

#include <stdbool.h>
#include <stddef.h>

#include "plan/num.h"

#define LD_ASSUME_LINE_MAX   1024
#define LD_ASSUME_FILE_MAX   (1024 * 1024)
#define LD_ASSUME_MONTHS_MAX 600

struct ld_assume {
	/* workload (month 1; every rate grows by `growth` each month) */
	double users;
	struct ld_rate writes;	  /* content writes */
	struct ld_rate reads;	  /* API reads */
	double write_bytes;	  /* stored content per write */
	double read_bytes;	  /* response bytes per read */
	double months;		  /* horizon */
	double seconds_per_month; /* the source design uses 2.5e6; a real month is 2.63e6 */
	double peak_ratio;	  /* peak / average request rate */
	double growth;		  /* monthly growth of every rate, 0.05 = 5%/month */
	double retention_months;  /* 0 = keep forever */
	double initial_data;	  /* content already stored at month 1 */

	/* storage */
	double replication;	 /* copies of the database */
	double index_overhead;	 /* indexes as a share of raw data */
	double storage_overhead; /* WAL, fragmentation, free space, as a share */

	/* media (object storage + CDN) */
	struct ld_rate media_uploads;
	double media_bytes;	   /* stored per upload, all versions */
	double media_upload_bytes; /* received per upload */
	struct ld_rate media_views;
	double media_served_bytes; /* sent per view */
	double cdn_hit_ratio;	   /* share of media bytes served by the CDN */

	/* cache */
	double cache_hot_share;	  /* share of stored content that is hot */
	double cache_overhead;	  /* per-key and allocator overhead, as a share */
	double cache_hit_ratio;	  /* share of reads the cache answers once in place */
	double cache_node_memory; /* usable memory of one cache node */

	/* app nodes */
	double request_time;	    /* mean service time of one request on one core */
	double node_cores;	    /* requests one node serves at once (cores) */
	double target_utilisation;  /* plan nodes to run this busy at peak */
	double redundancy;	    /* spare nodes: 0, 1 (N+1) or 2 (N+2) */
	double slo_latency;	    /* latency objective ... */
	double slo_percentile;	    /* ... at this percentile, at peak */
	double core_read_capacity;  /* reads/s one app core holds (measured) */
	double node_read_capacity;  /* reads/s one app node holds; 0 = core x node_cores */
	double node_write_capacity; /* writes/s of the single-box store (measured) */
	double autoscale_min_nodes; /* autoscaling pays from this many peak nodes */

	/* database */
	double box_max_data;	       /* rung 1: data one box with SQLite holds */
	double primary_write_capacity; /* writes/s one PostgreSQL primary holds */
	double primary_max_data;       /* data per primary before sharding */
	double replica_read_capacity;  /* reads/s one database node serves */
	double max_replicas;	       /* read replicas per primary before caching */
	double db_query_time;	       /* mean time a pooled connection is held */

	/* background jobs */
	double jobs_per_write;
	double jobs_per_upload;
	double job_time; /* mean worker time per job */

	/* example prices (the user's input; defaults are illustrations) */
	double price_app_node;	 /* per node-month */
	double price_db_node;	 /* per database node-month */
	double price_cache_node; /* per cache node-month */
	double price_storage_gb; /* per GB-month of database storage */
	double price_object_gb;	 /* per GB-month of object storage */
	double price_egress_gb;	 /* per GB leaving the origin */
	double price_cdn_gb;	 /* per GB served by the CDN */

	/* where per-node capacities came from, for the report */
	char capacity_source[256];
	/* true when the read and write capacities were measured together in one
	 * mixed run (each is then the rate under the other's load), false when
	 * each is a capacity on its own */
	bool capacity_mixed;
	/* LD_ASSUME_GIVEN_* bits: capacities set as inputs (file or flag) after
	 * capacity_source was written, so the report can say so */
	unsigned capacity_given;
	/* where cache_hit_ratio came from, for the report: the default, an
	 * input, or a bench report's measured ratio */
	char cache_source[192];
};

#define LD_ASSUME_GIVEN_READ  1u
#define LD_ASSUME_GIVEN_WRITE 2u

/* Where the default capacities come from: this project's own `make bench`
 * (README.md "Measured", docs/bench.md), on the development machine. */
#define LD_ASSUME_MEASURED_ON                                                                      \
	"measured by make bench on a 2-core Debian 12 machine, 2026-11-23, commit 184cae4"
#define LD_ASSUME_CORE_READS   174969 /* GET /v1/items/{id}, server on one core */
#define LD_ASSUME_STORE_WRITES 59359  /* durable POST /v1/items, 64 clients, one core */

/* One input: its key (also the flag name with '_' as '-'), kind, bounds
 * and documentation. */
struct ld_assume_field {
	const char *key;
	const char *section;
	enum ld_num_kind kind;
	size_t offset;
	double min, max; /* inclusive; for rates, on events per second */
	bool integer;
	const char *doc;
};

extern const struct ld_assume_field ld_assume_fields[];
extern const size_t ld_assume_nfields;

/* ld_assume_defaults fills a with the built-in defaults. */
void ld_assume_defaults(struct ld_assume *a);

/* ld_assume_find returns the field named key (flag spelling with '-' also
 * accepted), or NULL. */
const struct ld_assume_field *ld_assume_find(const char *key);

/* ld_assume_set parses value into the field named key, checking its bounds.
 * err gets "KEY: reason". */
int ld_assume_set(struct ld_assume *a, const char *key, const char *value, char *err,
		  size_t errlen);

/* ld_assume_parse reads an assumptions text of len bytes; name labels errors
 * ("NAME:LINE: KEY: reason"). Later keys of the same name are an error. */
int ld_assume_parse(struct ld_assume *a, const char *name, const char *text, size_t len, char *err,
		    size_t errlen);

/* ld_assume_load reads and parses the file at path. */
int ld_assume_load(struct ld_assume *a, const char *path, char *err, size_t errlen);

/* ld_assume_validate checks the fields together (bounds once more, and
 * combinations such as reads with zero users). err names the field. */
int ld_assume_validate(const struct ld_assume *a, char *err, size_t errlen);

/* ld_assume_read_capacity is the reads/s one app node holds:
 * node_read_capacity, or core_read_capacity x node_cores when that is 0. */
double ld_assume_read_capacity(const struct ld_assume *a);

/* ld_assume_capacity_text writes capacity_source, and which capacities were
 * then given as inputs. */
char *ld_assume_capacity_text(const struct ld_assume *a, char *out, size_t outlen);

/* ld_assume_value returns a field's value as a double (a rate per second). */
double ld_assume_value(const struct ld_assume *a, const struct ld_assume_field *f);

#endif
