/*
 * config.h - the configuration of `ladder serve` (and `ladder migrate`), and
 * the option machinery every subcommand's command line is parsed with.
 *
 * Four layers, later wins: built-in defaults (the single-box rung), a config
 * file (`--config FILE` or LADDER_CONFIG; INI, one section per concern), the
 * environment (LADDER_*), then command-line flags. Tables of settings (serve's
 * in config.c, a module's registered with ld_config_register) drive parsing,
 * validation, --help, --print-config and the documentation
 * (docs/configuration.md), so they cannot drift apart.
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
#define LD_CONFIG_NSETTINGS 31

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
	char store[32];		       /* "sqlite" ("sqlite-deferred": tests) ; --store */
	uint64_t store_timeout_ms;     /* 2s ; --store-timeout: one store op's deadline */
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
	bool stage_timing;	       /* true: per-request stage clock (obs/stages.h) */
	char debug_allow[16];	       /* "loopback" (and the token) or "token" (only) */
	char admin_token[256];	       /* secret; "" = none ; --admin-token */
	uint64_t test_commit_delay_ms; /* TEST ONLY: sleep before every COMMIT */

	/* Added fields. */
	char config_file[1024];			   /* the file read, "" if none */
	unsigned char source[LD_CONFIG_NSETTINGS]; /* enum ld_config_source per row */
};

enum ld_config_result {
	LD_CONFIG_OK = 0,
	LD_CONFIG_EXIT_OK = 1 /* --help or --print-config was handled: exit 0 */
};

/* ---- the option machinery, shared by every subcommand ----------------
 *
 * A subcommand (or a module, such as a store driver) describes its options as
 * a table of struct ld_opt grouped in a struct ld_opt_section, and registers
 * sections, each with the struct its values go to, in a struct ld_optset.
 * The set then parses the command line (--name value, --name=value, -x value,
 * positional arguments), the environment and an INI file (sections with file
 * keys), and writes --help and --print-config, all from the tables. Adding a
 * flag is one row.
 *
 * Messages name where the value came from and the value: "--rate: 'fast' is
 * not a rate (a number > 0 or max)", "LADDER_THREADS: '0x' is not a number",
 * "ladder.ini:7: max_body: '1q' is not a size (try 64KiB)". A secret value
 * never appears in a message or in --print-config.
 */

enum ld_opt_type {
	LD_OPT_STR,	 /* char[size] at off; min = least length; choices */
	LD_OPT_BOOL,	 /* bool; a bare flag means on */
	LD_OPT_UINT,	 /* unsigned in [min, max] */
	LD_OPT_INT,	 /* int in [min, max] (min >= 0) */
	LD_OPT_U64,	 /* uint64_t in [min, max] */
	LD_OPT_SIZE,	 /* uint64_t bytes in [min, max] */
	LD_OPT_DUR,	 /* uint64_t milliseconds in [min, max] */
	LD_OPT_HOSTPORT, /* char host[size] at off, unsigned port at off2 */
	LD_OPT_ARG,	 /* const char * at off, pointing into argv (not copied) */
	LD_OPT_SWITCH,	 /* takes no value; sets the bool at off */
	LD_OPT_FN,	 /* parse() reads the value into the section's struct */
};

/* ld_opt flags */
#define LD_OPT_SECRET 0x01u /* never printed, never echoed in a message */
#define LD_OPT_LIST   0x02u /* a file value may continue on indented lines */
#define LD_OPT_REPEAT 0x04u /* each use adds (--point, -H); said in --help */
#define LD_OPT_HIDDEN 0x08u /* not listed in --help (an alias, or said by the section) */
#define LD_OPT_EARLY  0x10u /* applied in the first pass (where other inputs come from) */

struct ld_opt;

/* ld_opt_fn parses value into base (the section's struct; the option's field
 * is at o->off). Returns 0, or -EINVAL with the reason in why ("'x' is not a
 * rate"); the caller puts where the value came from in front. */
typedef int (*ld_opt_fn)(const struct ld_opt *o, void *base, const char *value, char *why,
			 size_t whylen);

struct ld_opt {
	const char *flag; /* long flag without "--"; NULL: the positional arguments */
	char short_flag;  /* -x, or 0 */
	const char *key;  /* file key in the section, or NULL (flag only) */
	const char *env;  /* environment variable, or NULL */
	enum ld_opt_type type;
	size_t off;	     /* offset of the value in the section's struct */
	size_t size;	     /* LD_OPT_STR: capacity with the NUL; HOSTPORT: host capacity */
	size_t off2;	     /* LD_OPT_HOSTPORT: offset of the port */
	const char *def;     /* default as a user would spell it; NULL: left as it is */
	uint64_t min, max;   /* numbers: inclusive range; LD_OPT_STR: min length */
	const char *choices; /* LD_OPT_STR: allowed values separated by '|' */
	unsigned flags;	     /* LD_OPT_SECRET ... */
	ld_opt_fn parse;     /* LD_OPT_FN */
	const void *data;    /* for parse's own use */
	const char *metavar; /* "SIZE", "N|max" */
	const char *help;    /* one line; '\n' continues it on the next */
};

struct ld_opt_section {
	const char *name; /* INI section when its options have keys; --help heading */
	const struct ld_opt *opts;
	size_t nopts;
	const char *help; /* printed under the heading, or NULL */
};

#define LD_OPTSET_SECTIONS 16
#define LD_OPTSET_OPTS	   256 /* options in a set, all sections together */
#define LD_ARGS_MAX	   512 /* options and positional arguments on one line */

struct ld_optset {
	const char *cmd;      /* "serve", "plan fit": the usage text and messages */
	const char *summary;  /* one line: "ladder CMD: SUMMARY" */
	const char *usage;    /* after "usage: ladder CMD "; may hold more lines */
	const char *about;    /* paragraph after the usage, or NULL */
	const char *examples; /* "  ladder ...\n" lines */
	const char *notes;    /* printed before the sections, or NULL */
	const char *footer;   /* printed after the sections, or NULL */
	bool config_file;     /* --config FILE (or config_env) and --print-config */
	const char *config_env;
	bool fold_underscore; /* --write_bytes is --write-bytes */
	size_t nsections;
	struct ld_optset_section {
		const struct ld_opt_section *sec;
		void *target;	       /* where the values go */
		unsigned char *source; /* enum ld_config_source per option, or NULL */
	} sections[LD_OPTSET_SECTIONS];
	char config_path[1024]; /* the file read, "" if none */
	const char *secret_key; /* a secret the file set (for a warning), or NULL */
};

/* One use of an option on the command line, in order. */
struct ld_arg {
	const struct ld_opt *o;
	unsigned sec;	   /* index in the set's sections */
	const char *value; /* NULL for LD_OPT_SWITCH */
	char spelled[48];  /* the flag as typed ("-r", "--rate"), for messages */
};

struct ld_args {
	size_t n;
	struct ld_arg a[LD_ARGS_MAX];
	const char *config; /* --config value, or NULL */
	bool print;	    /* --print-config */
};

/* ld_optset_init empties s for subcommand cmd. */
void ld_optset_init(struct ld_optset *s, const char *cmd);

/* ld_optset_add registers a section whose values go to target; source, if
 * not NULL, has sec->nopts entries and records where each value came from.
 * A module registers its own section this way. -ENOSPC when the set is full,
 * -EEXIST when a flag, short flag or section name is taken. */
int ld_optset_add(struct ld_optset *s, const struct ld_opt_section *sec, void *target,
		  unsigned char *source);

/* ld_optset_defaults applies every option's default (through its parser) and
 * marks it LD_SRC_DEFAULT. 0, or -EINVAL for a default its own parser refuses
 * (a bug: the unit tests check every table). */
int ld_optset_defaults(struct ld_optset *s, char *err, size_t errlen);

/* ld_optset_parse reads argv (argv[0] is the subcommand) into a: unknown
 * flags (with a "did you mean"), missing values, a value given to a switch
 * and stray arguments are errors. --help or -h anywhere prints the usage to
 * stdout and returns LD_CONFIG_EXIT_OK. Values are not parsed yet. */
int ld_optset_parse(const struct ld_optset *s, int argc, char **argv, struct ld_args *a, char *err,
		    size_t errlen);

/* ld_optset_apply parses and stores, in command-line order, the uses in a
 * whose LD_OPT_EARLY flag equals early. 0 or -EINVAL with err set. */
int ld_optset_apply(struct ld_optset *s, const struct ld_args *a, bool early, char *err,
		    size_t errlen);

/* ld_optset_env applies every option's environment variable that is set and
 * not empty. */
int ld_optset_env(struct ld_optset *s, char *err, size_t errlen);

/* ld_optset_file applies an INI file: one [section] per registered section
 * whose options have keys. origin names where the path came from
 * ("--config"). */
int ld_optset_file(struct ld_optset *s, const char *path, const char *origin, char *err,
		   size_t errlen);

/* ld_optset_stream is ld_optset_file on an open stream named path. Sets
 * *has_secret when the text sets a secret. */
int ld_optset_stream(struct ld_optset *s, FILE *f, const char *path, bool *has_secret, char *err,
		     size_t errlen);

/* ld_optset_usage writes the --help text. */
void ld_optset_usage(const struct ld_optset *s, FILE *f);

/* ld_optset_print writes the effective values of the options with file keys
 * as INI, with each value's source in a comment. */
void ld_optset_print(const struct ld_optset *s, FILE *f);

/* ld_optset_find returns the option with file key key, or NULL; *sec gets
 * its section's index. */
const struct ld_opt *ld_optset_find(const struct ld_optset *s, const char *key, unsigned *sec);

/* ld_optset_format writes the value of option o of section sec as a user
 * would spell it ("64KiB", "on"). */
void ld_optset_format(const struct ld_optset *s, unsigned sec, const struct ld_opt *o, char *out,
		      size_t cap);

/* ---- serve and migrate ------------------------------------------------ */

/*
 * ld_config_register adds a section of serve's configuration owned by a
 * module (a store driver's [postgres]: conninfo, pool size...): its flags,
 * environment variables, file keys, --help and --print-config come with it.
 * Call before ld_config_load; target and source must outlive the process's
 * use of the configuration. 0, -ENOSPC or -EEXIST.
 */
int ld_config_register(const struct ld_opt_section *sec, void *target, unsigned char *source);

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
int ld_parse_u64(const char *s, uint64_t *out);
int ld_parse_hostport(const char *s, char *host, size_t hostcap, unsigned *port);

/* Formatters, the inverse of the parsers: the largest unit that is exact
 * ("64KiB", "1500ms", "24h"). Return snprintf's count. */
int ld_format_size(uint64_t v, char *out, size_t cap);
int ld_format_duration_ms(uint64_t ms, char *out, size_t cap);

#endif
