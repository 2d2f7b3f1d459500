/*
 * config.h - the configuration of `ladder serve` (and `ladder migrate`).
 *
 * Four layers, later wins: built-in defaults (the single-box rung), a config
 * file (`--config FILE` or LADDER_CONFIG; INI, one section per concern), the
 * environment (LADDER_*), then command-line flags. One table of settings in
 * config.c drives parsing, validation, --help, --print-config and the
 * documentation (docs/configuration.md), so they cannot drift apart.
 *
 * Value syntax:
 *   size      plain bytes or a binary unit: 512, 8k, 64KiB, 1MiB, 2G
 *             (k, K, KB, KiB all mean 1024; M.. 1024^2; G.. 1024^3)
 *   duration  a number and a unit, or several in decreasing order: 500ms,
 *             10s, 2m, 1h, 1d, 1h30m (no bare numbers: "10" is ambiguous)
 *   bool      on/off, true/false, yes/no, 1/0 (any case)
 *   host:port 127.0.0.1:8080, localhost:80, [::1]:8080 (IPv6 in brackets;
 *             listen_host is stored without them)
 *
 * Threading: load once at start-up on the main thread; afterwards the struct
 * is read-only and may be shared.
 */
#ifndef LD_CONFIG_H
#define LD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Number of rows in the settings table (each has a source recorded). */
#define LD_CONFIG_NSETTINGS 26

enum ld_config_source {
	LD_SRC_DEFAULT = 0,
	LD_SRC_FILE,
	LD_SRC_ENV,
	LD_SRC_FLAG,
};

struct ld_config {
	char listen_host[256]; /* listen = 127.0.0.1:8080 ; flag --listen, env LADDER_LISTEN */
	unsigned listen_port;
	char data_dir[1024];	       /* data = ./data ; --data, LADDER_DATA */
	unsigned threads;	       /* 0 = number of usable cores ; --threads */
	char store[32];		       /* "sqlite" (only one so far) ; --store */
	char token_keys[2048];	       /* secret; "" = data_dir/token.key ; --token-keys */
	uint64_t token_ttl_ms;	       /* 24h ; --token-ttl */
	unsigned argon2_ops;	       /* 2 ; --argon2-ops (min 1) */
	uint64_t argon2_mem;	       /* bytes, 19MiB ; --argon2-mem (min 8KiB) */
	uint64_t header_timeout_ms;    /* 10s ; --header-timeout */
	uint64_t body_timeout_ms;      /* 10s ; --body-timeout */
	uint64_t keepalive_timeout_ms; /* 75s ; --keepalive-timeout */
	uint64_t write_timeout_ms;     /* 30s ; --write-timeout: a client that won't read */
	uint64_t shutdown_timeout_ms;  /* 10s ; --shutdown-timeout */
	uint64_t drain_delay_ms;       /* 0s ; --drain-delay: /readyz 503 before listeners close */
	uint64_t max_request_line;     /* 8KiB ; --max-request-line */
	uint64_t max_header_line;      /* 8KiB */
	uint64_t max_headers;	       /* 32KiB */
	unsigned max_fields;	       /* 100 (max 256) */
	uint64_t max_body;	       /* 64KiB */
	unsigned max_connections;      /* 10000 per process */
	unsigned write_queue;	       /* 8192 */
	unsigned write_batch;	       /* 1024 */
	bool sync;		       /* true: fsync every commit (synchronous=FULL) */
	bool log_requests;	       /* true: one JSON line per request on stdout */
	bool gzip;		       /* true */
	uint64_t gzip_min;	       /* 1KiB */

	/* Added fields. */
	char config_file[1024];			   /* the file read, "" if none */
	unsigned char source[LD_CONFIG_NSETTINGS]; /* enum ld_config_source per row */
};

enum ld_config_result {
	LD_CONFIG_OK = 0,
	LD_CONFIG_EXIT_OK = 1 /* --help or --print-config was handled: exit 0 */
};

/*
 * ld_config_load: defaults, then file, env, argv (argv[0] is the subcommand
 * name, used in the usage text). Returns LD_CONFIG_OK, LD_CONFIG_EXIT_OK, or
 * -EINVAL with a message naming the setting and its source in err (e.g.
 * "--max-body: '12q' is not a size (try 64KiB)", "LADDER_THREADS: '0x' is not
 * a number", "ladder.ini:7: unknown key 'liste' in [server]"). The value of a
 * secret setting never appears in a message. Handles --help/-h (usage with
 * every setting, printed to stdout) and --print-config (effective values and
 * where each came from, to stdout). Unknown flags and stray arguments are
 * errors. Empty environment variables count as unset.
 */
int ld_config_load(struct ld_config *c, int argc, char **argv, char *err, size_t errlen);

/* ld_config_defaults fills c with the built-in defaults, every source
 * LD_SRC_DEFAULT. */
void ld_config_defaults(struct ld_config *c);

/* ld_config_print writes the effective settings as INI (one section per
 * concern) with each value's source in a comment; secrets show as "(set)" or
 * "(unset)". */
void ld_config_print(const struct ld_config *c, FILE *f);

/* ld_config_usage writes the --help text for subcommand cmd ("serve"). */
void ld_config_usage(const char *cmd, FILE *f);

/* ld_config_source names where a setting came from ("default", "file",
 * "env", "flag"); name is the file key ("listen", "max_body"). NULL for an
 * unknown name. */
const char *ld_config_source(const struct ld_config *c, const char *name);

/* Parsers, exposed for tests and fuzzing; 0 or -EINVAL (out untouched). */
int ld_parse_size(const char *s, uint64_t *out);
int ld_parse_duration_ms(const char *s, uint64_t *out);
int ld_parse_bool(const char *s, bool *out);
int ld_parse_uint(const char *s, unsigned *out);
int ld_parse_hostport(const char *s, char *host, size_t hostcap, unsigned *port);

/* Formatters, the inverse of the parsers: the largest unit that is exact
 * ("64KiB", "1500ms", "24h"). Return snprintf's count. */
int ld_format_size(uint64_t v, char *out, size_t cap);
int ld_format_duration_ms(uint64_t ms, char *out, size_t cap);

#endif
