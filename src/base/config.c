/*
 * config.c - defaults, INI file, environment and flags for `ladder serve`.
 *
 * Everything is driven by one table (settings[] below): a row names the
 * setting's file key and section, its environment variable and flag, its
 * type, default, range and help text. Parsing every layer, validation,
 * --help and --print-config walk that table, so adding a setting is one row.
 */
#include "base/config.h"
#include "base/units.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum type { T_STR, T_BOOL, T_UINT, T_SIZE, T_DUR, T_HOSTPORT };

struct setting {
	const char *key;     /* file key, also the name in cross-setting messages */
	const char *section; /* INI section */
	const char *env;
	const char *flag; /* without the leading "--" */
	enum type type;
	size_t off;	     /* offsetof the value in struct ld_config */
	size_t size;	     /* T_STR: capacity incl. NUL; T_HOSTPORT: host capacity */
	const char *def;     /* default, spelled as a user would write it */
	uint64_t min, max;   /* numbers: inclusive range; T_STR: min length */
	const char *choices; /* T_STR: allowed values separated by '|', or NULL */
	bool secret;	     /* never printed, never echoed in messages */
	bool list;	     /* file value may continue on indented lines */
	const char *metavar;
	const char *help;
};

#define F(field) offsetof(struct ld_config, field), sizeof(((struct ld_config *)0)->field)

/* The order here is the order of --help, --print-config and the docs. */
static const struct setting settings[] = {
    {"listen", "server", "LADDER_LISTEN", "listen", T_HOSTPORT, F(listen_host), "127.0.0.1:8080", 0,
     0, NULL, false, false, "HOST:PORT",
     "address to listen on; every loop thread binds it with SO_REUSEPORT"},
    {"threads", "server", "LADDER_THREADS", "threads", T_UINT, F(threads), "0", 0, 256, NULL, false,
     false, "N", "event-loop threads; 0 = one per usable core"},
    {"max_connections", "server", "LADDER_MAX_CONNECTIONS", "max-connections", T_UINT,
     F(max_connections), "10000", 1, 1000000, NULL, false, false, "N",
     "most open client connections per process"},
    {"shutdown_timeout", "server", "LADDER_SHUTDOWN_TIMEOUT", "shutdown-timeout", T_DUR,
     F(shutdown_timeout_ms), "10s", 0, HOUR, NULL, false, false, "DURATION",
     "on SIGTERM, how long in-flight requests may take to finish before connections close"},
    {"drain_delay", "server", "LADDER_DRAIN_DELAY", "drain-delay", T_DUR, F(drain_delay_ms), "0s",
     0, HOUR, NULL, false, false, "DURATION",
     "on SIGTERM, keep accepting this long while /readyz answers 503 (let the load balancer "
     "notice)"},
    {"log_requests", "server", "LADDER_LOG_REQUESTS", "log-requests", T_BOOL, F(log_requests), "on",
     0, 0, NULL, false, false, "on|off", "one JSON line per request on stdout"},

    {"data", "store", "LADDER_DATA", "data", T_STR, F(data_dir), "./data", 1, 0, NULL, false, false,
     "DIR", "directory of the database and of the token key"},
    {"store", "store", "LADDER_STORE", "store", T_STR, F(store), "sqlite", 1, 0, "sqlite", false,
     false, "NAME", "storage driver"},
    {"sync", "store", "LADDER_SYNC", "sync", T_BOOL, F(sync), "on", 0, 0, NULL, false, false,
     "on|off", "fsync every commit; off may lose the last commits on power loss (never corrupts)"},
    {"write_queue", "store", "LADDER_WRITE_QUEUE", "write-queue", T_UINT, F(write_queue), "8192", 1,
     1000000, NULL, false, false, "N", "writes that may wait for the writer thread"},
    {"write_batch", "store", "LADDER_WRITE_BATCH", "write-batch", T_UINT, F(write_batch), "1024", 1,
     65536, NULL, false, false, "N",
     "most writes committed in one transaction (group commit); at most write_queue"},

    {"token_keys", "auth", "LADDER_TOKEN_KEYS", "token-keys", T_STR, F(token_keys), "", 0, 0, NULL,
     true, true, "KID:HEX,...",
     "token signing keys 'kid:64-hex-chars[,kid:hex...]': the first signs, all verify; "
     "empty = DATA/token.key, made on first start"},
    {"token_ttl", "auth", "LADDER_TOKEN_TTL", "token-ttl", T_DUR, F(token_ttl_ms), "24h", SEC,
     366 * DAY, NULL, false, false, "DURATION", "lifetime of a session token"},
    {"argon2_ops", "auth", "LADDER_ARGON2_OPS", "argon2-ops", T_UINT, F(argon2_ops), "2", 1, 100,
     NULL, false, false, "N", "argon2id passes per password hash"},
    {"argon2_mem", "auth", "LADDER_ARGON2_MEM", "argon2-mem", T_SIZE, F(argon2_mem), "19MiB",
     8 * KiB, 4 * GiB, NULL, false, false, "SIZE", "argon2id memory per password hash"},

    {"header_timeout", "http", "LADDER_HEADER_TIMEOUT", "header-timeout", T_DUR,
     F(header_timeout_ms), "10s", 1, DAY, NULL, false, false, "DURATION",
     "time to receive a request's whole header (then 408)"},
    {"body_timeout", "http", "LADDER_BODY_TIMEOUT", "body-timeout", T_DUR, F(body_timeout_ms),
     "10s", 1, DAY, NULL, false, false, "DURATION",
     "longest pause while receiving a body (then 408)"},
    {"keepalive_timeout", "http", "LADDER_KEEPALIVE_TIMEOUT", "keepalive-timeout", T_DUR,
     F(keepalive_timeout_ms), "75s", 1, DAY, NULL, false, false, "DURATION",
     "idle time before a keep-alive connection is closed"},
    {"write_timeout", "http", "LADDER_WRITE_TIMEOUT", "write-timeout", T_DUR, F(write_timeout_ms),
     "30s", 1, DAY, NULL, false, false, "DURATION",
     "time a client may take to read its response before it is dropped"},
    {"max_request_line", "http", "LADDER_MAX_REQUEST_LINE", "max-request-line", T_SIZE,
     F(max_request_line), "8KiB", 64, MiB, NULL, false, false, "SIZE",
     "longest request line (then 414)"},
    {"max_header_line", "http", "LADDER_MAX_HEADER_LINE", "max-header-line", T_SIZE,
     F(max_header_line), "8KiB", 64, MiB, NULL, false, false, "SIZE",
     "longest header line (then 431); at most max_headers"},
    {"max_headers", "http", "LADDER_MAX_HEADERS", "max-headers", T_SIZE, F(max_headers), "32KiB",
     64, 16 * MiB, NULL, false, false, "SIZE", "all header bytes of a request (then 431)"},
    {"max_fields", "http", "LADDER_MAX_FIELDS", "max-fields", T_UINT, F(max_fields), "100", 1, 256,
     NULL, false, false, "N", "most header fields in a request (then 431)"},
    {"max_body", "http", "LADDER_MAX_BODY", "max-body", T_SIZE, F(max_body), "64KiB", 1, 256 * MiB,
     NULL, false, false, "SIZE", "largest request body (then 413)"},
    {"gzip", "http", "LADDER_GZIP", "gzip", T_BOOL, F(gzip), "on", 0, 0, NULL, false, false,
     "on|off", "gzip responses when the client accepts it"},
    {"gzip_min", "http", "LADDER_GZIP_MIN", "gzip-min", T_SIZE, F(gzip_min), "1KiB", 0, GiB, NULL,
     false, false, "SIZE", "smallest response body worth compressing"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))
_Static_assert(NSETTINGS == LD_CONFIG_NSETTINGS, "LD_CONFIG_NSETTINGS must match the table");

static const char *const source_names[] = {"default", "file", "env", "flag"};

/* ---- applying one value ----------------------------------------------- */

static void *field(struct ld_config *c, const struct setting *s)
{
	return (char *)c + s->off;
}

static const void *cfield(const struct ld_config *c, const struct setting *s)
{
	return (const char *)c + s->off;
}

/* format_value writes the value of s as a user would spell it. */
static void format_value(const struct ld_config *c, const struct setting *s, char *out, size_t cap)
{
	const void *p = cfield(c, s);

	switch (s->type) {
	case T_STR:
		snprintf(out, cap, "%s", (const char *)p);
		break;
	case T_BOOL:
		snprintf(out, cap, "%s", *(const bool *)p ? "on" : "off");
		break;
	case T_UINT:
		snprintf(out, cap, "%u", *(const unsigned *)p);
		break;
	case T_SIZE:
		ld_format_size(*(const uint64_t *)p, out, cap);
		break;
	case T_DUR:
		ld_format_duration_ms(*(const uint64_t *)p, out, cap);
		break;
	case T_HOSTPORT:
		snprintf(out, cap, strchr(c->listen_host, ':') ? "[%s]:%u" : "%s:%u",
			 c->listen_host, c->listen_port);
		break;
	}
}

static void format_bound(const struct setting *s, uint64_t v, char *out, size_t cap)
{
	if (s->type == T_SIZE)
		ld_format_size(v, out, cap);
	else if (s->type == T_DUR)
		ld_format_duration_ms(v, out, cap);
	else
		snprintf(out, cap, "%llu", (unsigned long long)v);
}

static bool in_choices(const char *choices, const char *v)
{
	size_t n = strlen(v);
	const char *p = choices;

	while (p) {
		if (strncmp(p, v, n) == 0 && (p[n] == '|' || p[n] == '\0'))
			return true;
		p = strchr(p, '|');
		if (p)
			p++;
	}
	return false;
}

static const char *const type_hint[] = {
    [T_STR] = "",
    [T_BOOL] = "is not a bool (use on or off)",
    [T_UINT] = "is not a number",
    [T_SIZE] = "is not a size (try 64KiB)",
    [T_DUR] = "is not a duration (try 10s, 500ms or 2m)",
    [T_HOSTPORT] = "is not host:port (try 127.0.0.1:8080 or [::1]:8080)",
};

/*
 * apply parses v for setting s into c and records src. where names the
 * origin for messages ("--max-body", "LADDER_MAX_BODY", "ladder.ini:7:
 * max_body"). Returns 0 or -EINVAL with err set.
 */
static int apply(struct ld_config *c, const struct setting *s, const char *v,
		 enum ld_config_source src, const char *where, char *err, size_t errlen)
{
	void *p = field(c, s);
	uint64_t n = 0;
	unsigned u;
	bool b;
	int rc = -EINVAL;
	char lo[32], hi[32];

	switch (s->type) {
	case T_STR:
		if (strlen(v) >= s->size) {
			snprintf(err, errlen, "%s: too long (at most %zu bytes)", where,
				 s->size - 1);
			goto out;
		}
		if (strlen(v) < s->min) {
			snprintf(err, errlen, "%s: must not be empty", where);
			goto out;
		}
		if (s->choices && !in_choices(s->choices, v)) {
			snprintf(err, errlen, "%s: '%.64s' is not one of: %s", where, v,
				 s->choices);
			goto out;
		}
		/* Zero the tail too: the struct's bytes depend only on its values. */
		memset(p, 0, s->size);
		memcpy(p, v, strlen(v));
		break;
	case T_BOOL:
		if (ld_parse_bool(v, &b) < 0)
			goto bad;
		*(bool *)p = b;
		break;
	case T_HOSTPORT: {
		char host[sizeof(c->listen_host)] = "";

		if (ld_parse_hostport(v, host, sizeof(host), &u) < 0)
			goto bad;
		memcpy(c->listen_host, host, sizeof(host));
		c->listen_port = u;
		break;
	}
	case T_UINT:
		if (ld_parse_uint(v, &u) < 0)
			goto bad;
		n = u;
		goto range;
	case T_SIZE:
		if (ld_parse_size(v, &n) < 0)
			goto bad;
		goto range;
	case T_DUR:
		if (ld_parse_duration_ms(v, &n) < 0)
			goto bad;
		goto range;
	}
	goto ok;
range:
	if (n < s->min || n > s->max) {
		format_bound(s, s->min, lo, sizeof(lo));
		format_bound(s, s->max, hi, sizeof(hi));
		snprintf(err, errlen, "%s: %.64s is out of range (%s to %s)", where, v, lo, hi);
		goto out;
	}
	if (s->type == T_UINT)
		*(unsigned *)p = (unsigned)n;
	else
		*(uint64_t *)p = n;
ok:
	c->source[s - settings] = (unsigned char)src;
	rc = 0;
	goto out;
bad:
	snprintf(err, errlen, "%s: '%.64s' %s", where, s->secret ? "(secret)" : v,
		 type_hint[s->type]);
out:
	return rc;
}

void ld_config_defaults(struct ld_config *c)
{
	char err[256];
	size_t i;

	memset(c, 0, sizeof(*c));
	/* The defaults go through the same parser as user input; a unit test
	 * checks every one of them is accepted. */
	for (i = 0; i < NSETTINGS; i++)
		apply(c, &settings[i], settings[i].def, LD_SRC_DEFAULT, settings[i].key, err,
		      sizeof(err));
}

/* ---- lookups and suggestions ------------------------------------------ */

/* distance is the edit distance of two short names, capped at 9 so a
 * fixed-size row suffices; used for "did you mean" hints. */
static unsigned distance(const char *a, const char *b)
{
	unsigned row[40], prev, tmp, i, j, la = (unsigned)strlen(a), lb = (unsigned)strlen(b);

	if (la >= 40 || lb >= 40)
		return 9;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = prev + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			prev = tmp;
		}
	}
	return row[lb] < 9 ? row[lb] : 9;
}

/* closest returns the flag (by_flag) or key nearest to name, or NULL when
 * none is within two edits. */
static const char *closest(const char *name, bool by_flag)
{
	const char *best = NULL, *cand;
	unsigned d, bestd = 3;
	size_t i;

	for (i = 0; i < NSETTINGS; i++) {
		cand = by_flag ? settings[i].flag : settings[i].key;
		d = distance(name, cand);
		if (d < bestd) {
			bestd = d;
			best = cand;
		}
	}
	return best;
}

static const struct setting *by_key(const char *key)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].key, key) == 0)
			return &settings[i];
	return NULL;
}

static const struct setting *by_flag(const char *flag, size_t n)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		if (strlen(settings[i].flag) == n && strncmp(settings[i].flag, flag, n) == 0)
			return &settings[i];
	return NULL;
}

const char *ld_config_source(const struct ld_config *c, const char *name)
{
	const struct setting *s = by_key(name);

	return s ? source_names[c->source[s - settings]] : NULL;
}

/* ---- the config file -------------------------------------------------- */

struct file_ctx {
	struct ld_config *c;
	const char *path;
	FILE *f;
	unsigned line;				  /* number of the line inih is handling */
	bool indented;				  /* that line starts with white space */
	bool stop;				  /* an error was recorded: read no further */
	unsigned err_line;			  /* line of the recorded error */
	unsigned first_line[LD_CONFIG_NSETTINGS]; /* where each key was set */
	const struct setting *prev;		  /* the key of the previous line */
	char *err;
	size_t errlen;
	bool has_secret;
};

static void file_error(struct file_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void file_error(struct file_ctx *x, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (x->stop)
		return;
	n = snprintf(x->err, x->errlen, "%s:%u: ", x->path, x->line);
	if (n >= 0 && (size_t)n < x->errlen) {
		va_start(ap, fmt);
		vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	x->stop = true;
	x->err_line = x->line;
}

/* read_line feeds inih one line at a time so we know each handler call's
 * line number, and refuses lines longer than inih's buffer instead of
 * letting their tail be read as a line of its own. */
static char *read_line(char *str, int num, void *stream)
{
	struct file_ctx *x = stream;
	size_t len;
	int ch;

	if (x->stop || !fgets(str, num, x->f))
		return NULL;
	x->line++;
	len = strlen(str);
	if (len && str[len - 1] != '\n') {
		ch = getc(x->f);
		if (ch != EOF) {
			ungetc(ch, x->f);
			file_error(x,
				   "line longer than %d bytes (a long list may continue on "
				   "indented lines)",
				   num - 2);
			return NULL;
		}
	}
	x->indented = str[0] == ' ' || str[0] == '\t';
	/* A new section ends the previous key: an indented line after it is a
	 * key of its own, not a continuation. */
	if (!x->indented && str[0] == '[')
		x->prev = NULL;
	return str;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct file_ctx *x = user;
	const struct setting *s = by_key(name);
	struct ld_config *c = x->c;
	char where[1200], joined[sizeof(c->token_keys) + 1];
	const char *hint, *prevv, *sep;
	size_t idx, i, plen;
	bool known_section = false;

	if (x->stop)
		return 1;
	if (x->indented && x->prev && s == x->prev) {
		/* inih hands an indented line over as more of the previous key. */
		if (!s->list) {
			file_error(x, "indented line continues '%s' (remove the indentation)",
				   name);
			return 0;
		}
		prevv = field(c, s);
		plen = strlen(prevv);
		/* "k1:hex," then "k2:hex" or "k1:hex" then "k2:hex" both mean a list. */
		sep = plen && prevv[plen - 1] != ',' && value[0] != ',' ? "," : "";
		snprintf(joined, sizeof(joined), "%s%s%s", prevv, sep, value);
		value = joined;
		goto set;
	}
	for (i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].section, section) == 0)
			known_section = true;
	if (section[0] && !known_section) {
		file_error(x, "unknown section [%s] (sections: server, store, auth, http)",
			   section);
		return 0;
	}
	if (s && strcmp(s->section, section) != 0) {
		if (!section[0])
			file_error(x, "key '%s' is outside a section (put it under [%s])", name,
				   s->section);
		else
			file_error(x, "key '%s' belongs in [%s], not [%s]", name, s->section,
				   section);
		return 0;
	}
	if (!s) {
		hint = closest(name, false);
		if (hint)
			file_error(x, "unknown key '%s' in [%s] (did you mean '%s'?)", name,
				   section, hint);
		else
			file_error(x, "unknown key '%s' in [%s]", name, section);
		return 0;
	}
	idx = (size_t)(s - settings);
	if (x->first_line[idx]) {
		file_error(x, "'%s' is set twice (first on line %u)", name, x->first_line[idx]);
		return 0;
	}
	x->first_line[idx] = x->line;
set:
	x->prev = s;
	if (s->secret)
		x->has_secret = true;
	snprintf(where, sizeof(where), "%s:%u: %s", x->path, x->line, name);
	if (apply(c, s, value, LD_SRC_FILE, where, x->err, x->errlen) < 0) {
		x->stop = true;
		x->err_line = x->line;
		return 0;
	}
	return 1;
}

/* load_stream applies the INI text read from f; path names it in messages.
 * Sets *has_secret when the text sets a secret. */
static int load_stream(struct ld_config *c, FILE *f, const char *path, bool *has_secret, char *err,
		       size_t errlen)
{
	struct file_ctx x;
	int rc = 0, line;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.path = path;
	x.f = f;
	x.err = err;
	x.errlen = errlen;
	line = ini_parse_stream(read_line, &x, on_entry, &x);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		rc = -EINVAL;
		goto out;
	}
	/* inih reports its own syntax errors only by line number; a syntax
	 * error before the first error we recorded is the one to show. */
	if (line > 0 && (!x.stop || (unsigned)line < x.err_line)) {
		x.stop = false;
		x.line = (unsigned)line;
		file_error(&x, "not 'key = value' or '[section]'");
	}
	if (x.stop) {
		rc = -EINVAL;
		goto out;
	}
	if (line < 0) {
		snprintf(err, errlen, "%s: out of memory while parsing", path);
		rc = -EINVAL;
		goto out;
	}
	*has_secret = x.has_secret;
out:
	return rc;
}

static int load_file(struct ld_config *c, const char *path, const char *origin, char *err,
		     size_t errlen)
{
	struct stat st;
	bool has_secret = false;
	FILE *f;
	int rc;

	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot read '%s': %s", origin, path, strerror(errno));
		rc = -EINVAL;
		goto out;
	}
	rc = load_stream(c, f, path, &has_secret, err, errlen);
	if (rc < 0)
		goto out;
	/* The file holds a secret: say so when others may read it (a warning,
	 * not an error: the operator may have reasons, e.g. a group). */
	if (has_secret && fstat(fileno(f), &st) == 0 && (st.st_mode & 0077))
		fprintf(stderr,
			"ladder: warning: %s holds token_keys and is readable by others "
			"(chmod 600 it)\n",
			path);
	snprintf(c->config_file, sizeof(c->config_file), "%s", path);
out:
	if (f)
		fclose(f);
	return rc;
}

/* ---- flags ------------------------------------------------------------ */

struct flags {
	const char *config; /* --config value, or NULL */
	bool print;	    /* --print-config */
};

/*
 * walk_flags reads argv. With c NULL it only checks the shape (unknown
 * flags, missing values, stray arguments) and finds --config and
 * --print-config; with c set it applies each setting's value.
 */
static int walk_flags(struct ld_config *c, int argc, char **argv, struct flags *fl, char *err,
		      size_t errlen)
{
	const struct setting *s;
	const char *a, *name, *eq, *v, *hint;
	char where[64], tmp[64];
	bool b;
	size_t n;
	int i, rc = 0;

	for (i = 1; i < argc; i++) {
		a = argv[i];
		if (strncmp(a, "--", 2) != 0 || !a[2]) {
			snprintf(err, errlen, "unexpected argument '%.64s' (options start with --)",
				 a);
			rc = -EINVAL;
			goto out;
		}
		name = a + 2;
		eq = strchr(name, '=');
		n = eq ? (size_t)(eq - name) : strlen(name);
		if (n == 12 && strncmp(name, "print-config", 12) == 0 && !eq) {
			fl->print = true;
			continue;
		}
		if (n == 4 && strncmp(name, "help", 4) == 0 && !eq)
			continue;
		s = by_flag(name, n);
		if (!s && !(n == 6 && strncmp(name, "config", 6) == 0)) {
			snprintf(tmp, sizeof(tmp), "%.*s", (int)(n < 63 ? n : 63), name);
			hint = closest(tmp, true);
			snprintf(err, errlen, "unknown option '--%.64s'%s%s%s", tmp,
				 hint ? " (did you mean --" : " (see --help)", hint ? hint : "",
				 hint ? "?)" : "");
			rc = -EINVAL;
			goto out;
		}
		if (eq) {
			v = eq + 1;
		} else if (s && s->type == T_BOOL &&
			   (i + 1 >= argc || ld_parse_bool(argv[i + 1], &b) < 0)) {
			v = "on"; /* a bare boolean flag turns it on */
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			snprintf(err, errlen, "--%.64s needs a value", name);
			rc = -EINVAL;
			goto out;
		}
		if (!s) {
			fl->config = v;
			continue;
		}
		if (!c)
			continue;
		snprintf(where, sizeof(where), "--%s", s->flag);
		rc = apply(c, s, v, LD_SRC_FLAG, where, err, errlen);
		if (rc < 0)
			goto out;
	}
out:
	return rc;
}

/* ---- validation across settings --------------------------------------- */

static int at_most(const struct ld_config *c, const char *small, const char *big, char *err,
		   size_t errlen)
{
	const struct setting *s = by_key(small), *t = by_key(big);
	char sv[32], tv[32];
	uint64_t a, b;

	if (s->type == T_UINT) {
		a = *(const unsigned *)cfield(c, s);
		b = *(const unsigned *)cfield(c, t);
	} else {
		a = *(const uint64_t *)cfield(c, s);
		b = *(const uint64_t *)cfield(c, t);
	}
	if (a <= b)
		return 0;
	format_value(c, s, sv, sizeof(sv));
	format_value(c, t, tv, sizeof(tv));
	snprintf(err, errlen, "%s %s (%s) is larger than %s %s (%s)", small, sv,
		 source_names[c->source[s - settings]], big, tv,
		 source_names[c->source[t - settings]]);
	return -EINVAL;
}

static int validate(const struct ld_config *c, char *err, size_t errlen)
{
	int rc = at_most(c, "write_batch", "write_queue", err, errlen);

	if (rc == 0)
		rc = at_most(c, "max_header_line", "max_headers", err, errlen);
	return rc;
}

/* ---- load, usage, print ----------------------------------------------- */

static const char *describe(const char *cmd)
{
	if (strcmp(cmd, "migrate") == 0)
		return "create or upgrade the database schema of the configured store, then exit";
	return "run the ladder HTTP/JSON API server until SIGTERM or SIGINT";
}

void ld_config_usage(const char *cmd, FILE *f)
{
	const struct setting *s;
	char lhs[64], range[80], lo[32], hi[32];
	size_t i;

	fprintf(f, "ladder %s: %s\n\nusage: ladder %s [options]\n\n", cmd, describe(cmd), cmd);
	if (strcmp(cmd, "migrate") == 0)
		fprintf(
		    f, "examples:\n"
		       "  ladder migrate                      # ./data/ladder.db\n"
		       "  ladder migrate --data /var/lib/ladder\n"
		       "  LADDER_DATA=/var/lib/ladder ladder migrate --config /etc/ladder.ini\n\n");
	else
		fprintf(f,
			"examples:\n"
			"  ladder serve\n"
			"  ladder serve --listen 0.0.0.0:8080 --threads 2\n"
			"  LADDER_DATA=/var/lib/ladder ladder serve --config /etc/ladder.ini\n"
			"  ladder serve --max-body=1MiB --token-ttl 2h --print-config\n"
			"  ladder serve --drain-delay 5s --shutdown-timeout 20s   # behind a load "
			"balancer\n\n");
	fprintf(f, "options:\n"
		   "  --config FILE          read settings from an INI file (env LADDER_CONFIG)\n"
		   "  --print-config         print the effective settings and their sources, "
		   "then exit\n"
		   "  -h, --help             show this help\n\n");
	fprintf(f, "settings: defaults < config file < environment < flags. Flags take\n"
		   "'--name value' or '--name=value'; a bare on/off flag means on. Sizes:\n"
		   "512, 8k, 64KiB, 1MiB (binary units). Durations: 500ms, 10s, 2m, 1h, 1h30m.\n");
	for (i = 0; i < NSETTINGS; i++) {
		s = &settings[i];
		if (i == 0 || strcmp(s->section, settings[i - 1].section) != 0)
			fprintf(f, "\n[%s]\n", s->section);
		snprintf(lhs, sizeof(lhs), "--%s %s", s->flag, s->metavar);
		range[0] = '\0';
		if (s->type == T_UINT || s->type == T_SIZE || s->type == T_DUR) {
			format_bound(s, s->min, lo, sizeof(lo));
			format_bound(s, s->max, hi, sizeof(hi));
			snprintf(range, sizeof(range), ", %s to %s", lo, hi);
		} else if (s->choices) {
			snprintf(range, sizeof(range), ", one of %s", s->choices);
		}
		fprintf(f, "  %-28s %s\n", lhs, s->help);
		fprintf(f, "  %-28s env %s, key %s, default %s%s%s\n", "", s->env, s->key,
			s->def[0] ? s->def : "(empty)", range, s->secret ? ", secret" : "");
	}
}

void ld_config_print(const struct ld_config *c, FILE *f)
{
	const struct setting *s;
	char v[sizeof(c->token_keys) + 16];
	size_t i;

	fprintf(f, "# effective configuration; the comment after each value says where it\n"
		   "# came from (default, file, env or flag)\n");
	fprintf(f, "# config file: %s\n", c->config_file[0] ? c->config_file : "(none)");
	for (i = 0; i < NSETTINGS; i++) {
		s = &settings[i];
		if (i == 0 || strcmp(s->section, settings[i - 1].section) != 0)
			fprintf(f, "\n[%s]\n", s->section);
		if (s->secret)
			snprintf(v, sizeof(v), "%s",
				 ((const char *)cfield(c, s))[0] ? "(set)" : "(unset)");
		else
			format_value(c, s, v, sizeof(v));
		fprintf(f, "%s = %s ; %s\n", s->key, v, source_names[c->source[i]]);
	}
}

int ld_config_load(struct ld_config *c, int argc, char **argv, char *err, size_t errlen)
{
	struct flags fl = {NULL, false};
	const char *cmd = argc > 0 && argv[0] ? argv[0] : "serve", *v, *origin;
	char where[64];
	size_t i;
	int rc, a;

	ld_config_defaults(c);
	err[0] = '\0';
	/* --help wins over everything else on the line, mistakes included. */
	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
			ld_config_usage(cmd, stdout);
			rc = LD_CONFIG_EXIT_OK;
			goto out;
		}
	}
	rc = walk_flags(NULL, argc, argv, &fl, err, errlen);
	if (rc < 0)
		goto out;
	origin = "--config";
	if (!fl.config) {
		v = getenv("LADDER_CONFIG");
		if (v && v[0])
			fl.config = v;
		origin = "LADDER_CONFIG";
	}
	if (fl.config) {
		rc = load_file(c, fl.config, origin, err, errlen);
		if (rc < 0)
			goto out;
	}
	for (i = 0; i < NSETTINGS; i++) {
		v = getenv(settings[i].env);
		if (!v || !v[0])
			continue;
		snprintf(where, sizeof(where), "%s", settings[i].env);
		rc = apply(c, &settings[i], v, LD_SRC_ENV, where, err, errlen);
		if (rc < 0)
			goto out;
	}
	rc = walk_flags(c, argc, argv, &fl, err, errlen);
	if (rc < 0)
		goto out;
	rc = validate(c, err, errlen);
	if (rc < 0)
		goto out;
	if (fl.print) {
		ld_config_print(c, stdout);
		rc = LD_CONFIG_EXIT_OK;
	}
out:
	return rc;
}
