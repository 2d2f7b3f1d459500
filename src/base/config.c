/*
 * config.c - the option machinery (tables of options: flags, environment,
 * INI file, --help, --print-config) and, on it, the configuration of
 * `ladder serve` and `ladder migrate`.
 *
 * Everything is driven by tables: a row names an option's flag, file key,
 * environment variable, type, default, range and help text. Parsing every
 * layer, validation, --help and --print-config walk the tables, so adding a
 * setting or a flag is one row.
 */
#include "base/config.h"
#include "base/units.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const source_names[] = {"default", "file", "env", "flag"};

/* ---- one value ---------------------------------------------------------- */

static void *field(const struct ld_optset *s, unsigned sec, const struct ld_opt *o)
{
	return (char *)s->sections[sec].target + o->off;
}

static bool numeric(enum ld_opt_type t)
{
	return t == LD_OPT_UINT || t == LD_OPT_INT || t == LD_OPT_U64 || t == LD_OPT_SIZE ||
	       t == LD_OPT_DUR;
}

static void format_bound(const struct ld_opt *o, uint64_t v, char *out, size_t cap)
{
	if (o->type == LD_OPT_SIZE)
		ld_format_size(v, out, cap);
	else if (o->type == LD_OPT_DUR)
		ld_format_duration_ms(v, out, cap);
	else
		snprintf(out, cap, "%llu", (unsigned long long)v);
}

void ld_optset_format(const struct ld_optset *s, unsigned sec, const struct ld_opt *o, char *out,
		      size_t cap)
{
	const char *p = field(s, sec, o);
	const char *host;

	out[0] = '\0';
	switch (o->type) {
	case LD_OPT_STR:
		snprintf(out, cap, "%s", p);
		break;
	case LD_OPT_BOOL:
	case LD_OPT_SWITCH:
		snprintf(out, cap, "%s", *(const bool *)(const void *)p ? "on" : "off");
		break;
	case LD_OPT_UINT:
		snprintf(out, cap, "%u", *(const unsigned *)(const void *)p);
		break;
	case LD_OPT_INT:
		snprintf(out, cap, "%d", *(const int *)(const void *)p);
		break;
	case LD_OPT_U64:
		snprintf(out, cap, "%llu", (unsigned long long)*(const uint64_t *)(const void *)p);
		break;
	case LD_OPT_SIZE:
		ld_format_size(*(const uint64_t *)(const void *)p, out, cap);
		break;
	case LD_OPT_DUR:
		ld_format_duration_ms(*(const uint64_t *)(const void *)p, out, cap);
		break;
	case LD_OPT_HOSTPORT:
		host = p;
		snprintf(out, cap, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
			 *(const unsigned *)(const void *)((const char *)s->sections[sec].target +
							   o->off2));
		break;
	case LD_OPT_ARG:
		host = *(const char *const *)(const void *)p;
		snprintf(out, cap, "%s", host ? host : "");
		break;
	case LD_OPT_FN:
		/* A parser that keeps the text as given, at the start of its
		 * field, says so with a size: that text is the value shown. */
		if (o->size)
			snprintf(out, cap, "%s", (const char *)p);
		break;
	}
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

static const char *type_hint(enum ld_opt_type t)
{
	switch (t) {
	case LD_OPT_BOOL:
		return "is not a bool (use on or off)";
	case LD_OPT_UINT:
	case LD_OPT_INT:
	case LD_OPT_U64:
		return "is not a number";
	case LD_OPT_SIZE:
		return "is not a size (try 64KiB)";
	case LD_OPT_DUR:
		return "is not a duration (try 10s, 500ms or 2m)";
	case LD_OPT_HOSTPORT:
		return "is not host:port (try 127.0.0.1:8080 or [::1]:8080)";
	default:
		return "is not valid";
	}
}

/*
 * apply parses v for option o of section sec and records src. where names
 * the origin for messages ("--max-body", "LADDER_MAX_BODY", "ladder.ini:7:
 * max_body"). Returns 0 or -EINVAL with err set.
 */
static int apply(struct ld_optset *s, unsigned sec, const struct ld_opt *o, const char *v,
		 enum ld_config_source src, const char *where, char *err, size_t errlen)
{
	void *base = s->sections[sec].target;
	char *p = field(s, sec, o);
	char lo[32], hi[32], why[256];
	uint64_t n = 0;
	unsigned u;
	bool b;
	int rc = -EINVAL;

	switch (o->type) {
	case LD_OPT_STR:
		if (strlen(v) >= o->size) {
			snprintf(err, errlen, "%s: too long (at most %zu bytes)", where,
				 o->size - 1);
			goto out;
		}
		if (strlen(v) < o->min) {
			snprintf(err, errlen, "%s: must not be empty", where);
			goto out;
		}
		if (o->choices && !in_choices(o->choices, v)) {
			snprintf(err, errlen, "%s: '%.64s' is not one of: %s", where, v,
				 o->choices);
			goto out;
		}
		/* Zero the tail too: the struct's bytes depend only on its values. */
		memset(p, 0, o->size);
		memcpy(p, v, strlen(v));
		break;
	case LD_OPT_BOOL:
		if (ld_parse_bool(v, &b) < 0)
			goto bad;
		*(bool *)(void *)p = b;
		break;
	case LD_OPT_SWITCH:
		*(bool *)(void *)p = true;
		break;
	case LD_OPT_ARG:
		*(const char **)(void *)p = v;
		break;
	case LD_OPT_HOSTPORT: {
		char host[1024] = "";

		if (o->size > sizeof(host) || ld_parse_hostport(v, host, o->size, &u) < 0)
			goto bad;
		memcpy(p, host, o->size);
		*(unsigned *)(void *)((char *)base + o->off2) = u;
		break;
	}
	case LD_OPT_UINT:
	case LD_OPT_INT:
		if (ld_parse_uint(v, &u) < 0)
			goto bad;
		n = u;
		goto range;
	case LD_OPT_U64:
		if (ld_parse_u64(v, &n) < 0)
			goto bad;
		goto range;
	case LD_OPT_SIZE:
		if (ld_parse_size(v, &n) < 0)
			goto bad;
		goto range;
	case LD_OPT_DUR:
		if (ld_parse_duration_ms(v, &n) < 0)
			goto bad;
		goto range;
	case LD_OPT_FN:
		why[0] = '\0';
		if (o->parse(o, base, v, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s: %s", where, why[0] ? why : "bad value");
			goto out;
		}
		break;
	}
	goto ok;
range:
	if (n < o->min || n > o->max) {
		format_bound(o, o->min, lo, sizeof(lo));
		format_bound(o, o->max, hi, sizeof(hi));
		/* A secret is never echoed, even a mistyped one. */
		snprintf(err, errlen, "%s: %.64s is out of range (%s to %s)", where,
			 o->flags & LD_OPT_SECRET ? "(secret)" : v, lo, hi);
		goto out;
	}
	if (o->type == LD_OPT_UINT)
		*(unsigned *)(void *)p = (unsigned)n;
	else if (o->type == LD_OPT_INT)
		*(int *)(void *)p = (int)n;
	else
		*(uint64_t *)(void *)p = n;
ok:
	if (s->sections[sec].source)
		s->sections[sec].source[o - s->sections[sec].sec->opts] = (unsigned char)src;
	rc = 0;
	goto out;
bad:
	snprintf(err, errlen, "%s: '%.64s' %s", where, o->flags & LD_OPT_SECRET ? "(secret)" : v,
		 type_hint(o->type));
out:
	return rc;
}

/* ---- the set ------------------------------------------------------------ */

void ld_optset_init(struct ld_optset *s, const char *cmd)
{
	memset(s, 0, sizeof(*s));
	s->cmd = cmd;
}

static size_t count_opts(const struct ld_optset *s)
{
	size_t i, n = 0;

	for (i = 0; i < s->nsections; i++)
		n += s->sections[i].sec->nopts;
	return n;
}

/* by_flag finds a long flag (n bytes of name) or, with n == 0, the short
 * flag ch. */
static const struct ld_opt *by_flag(const struct ld_optset *s, const char *name, size_t n, char ch,
				    unsigned *sec)
{
	const struct ld_opt *o;
	size_t i, j, k;

	for (i = 0; i < s->nsections; i++) {
		for (j = 0; j < s->sections[i].sec->nopts; j++) {
			o = &s->sections[i].sec->opts[j];
			if (!o->flag)
				continue;
			if (n == 0) {
				if (!ch || o->short_flag != ch)
					continue;
			} else {
				if (strlen(o->flag) != n)
					continue;
				for (k = 0; k < n; k++) {
					char c = name[k];

					if (s->fold_underscore && c == '_')
						c = '-';
					if (c != o->flag[k])
						break;
				}
				if (k != n)
					continue;
			}
			*sec = (unsigned)i;
			return o;
		}
	}
	return NULL;
}

int ld_optset_add(struct ld_optset *s, const struct ld_opt_section *sec, void *target,
		  unsigned char *source)
{
	const struct ld_opt *o;
	unsigned other;
	size_t i;

	if (s->nsections >= LD_OPTSET_SECTIONS || count_opts(s) + sec->nopts > LD_OPTSET_OPTS)
		return -ENOSPC;
	for (i = 0; i < s->nsections; i++)
		if (strcmp(s->sections[i].sec->name, sec->name) == 0)
			return -EEXIST;
	for (i = 0; i < sec->nopts; i++) {
		o = &sec->opts[i];
		if ((o->flag && by_flag(s, o->flag, strlen(o->flag), 0, &other)) ||
		    (o->short_flag && by_flag(s, NULL, 0, o->short_flag, &other)) ||
		    (o->key && ld_optset_find(s, o->key, &other)))
			return -EEXIST;
	}
	s->sections[s->nsections].sec = sec;
	s->sections[s->nsections].target = target;
	s->sections[s->nsections].source = source;
	s->nsections++;
	return 0;
}

const struct ld_opt *ld_optset_find(const struct ld_optset *s, const char *key, unsigned *sec)
{
	size_t i, j;

	for (i = 0; i < s->nsections; i++)
		for (j = 0; j < s->sections[i].sec->nopts; j++)
			if (s->sections[i].sec->opts[j].key &&
			    strcmp(s->sections[i].sec->opts[j].key, key) == 0) {
				*sec = (unsigned)i;
				return &s->sections[i].sec->opts[j];
			}
	return NULL;
}

int ld_optset_defaults(struct ld_optset *s, char *err, size_t errlen)
{
	const struct ld_opt *o;
	size_t i, j;
	int rc = 0;

	/* The defaults go through the same parser as user input; the unit
	 * tests check every one of them is accepted. */
	for (i = 0; i < s->nsections; i++) {
		for (j = 0; j < s->sections[i].sec->nopts; j++) {
			o = &s->sections[i].sec->opts[j];
			if (!o->def)
				continue;
			rc = apply(s, (unsigned)i, o, o->def, LD_SRC_DEFAULT,
				   o->key ? o->key : o->flag, err, errlen);
			if (rc < 0)
				goto out;
		}
	}
out:
	return rc;
}

/* ---- suggestions -------------------------------------------------------- */

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
static const char *closest(const struct ld_optset *s, const char *name, bool want_flag)
{
	const char *best = NULL, *cand;
	unsigned d, bestd = 3;
	size_t i, j;

	for (i = 0; i < s->nsections; i++) {
		for (j = 0; j < s->sections[i].sec->nopts; j++) {
			const struct ld_opt *o = &s->sections[i].sec->opts[j];

			cand = want_flag ? o->flag : o->key;
			if (!cand)
				continue;
			d = distance(name, cand);
			if (d < bestd) {
				bestd = d;
				best = cand;
			}
		}
	}
	return best;
}

/* ---- the config file ---------------------------------------------------- */

struct file_ctx {
	struct ld_optset *s;
	const char *path;
	FILE *f;
	unsigned line;			     /* number of the line inih is handling */
	bool indented;			     /* that line starts with white space */
	bool stop;			     /* an error was recorded: read no further */
	unsigned err_line;		     /* line of the recorded error */
	unsigned first_line[LD_OPTSET_OPTS]; /* where each key was set */
	const struct ld_opt *prev;	     /* the key of the previous line */
	unsigned prev_sec;
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

/* has_keys: the section appears in files. */
static bool has_keys(const struct ld_opt_section *sec)
{
	size_t i;

	for (i = 0; i < sec->nopts; i++)
		if (sec->opts[i].key)
			return true;
	return false;
}

/* opt_index is o's index over the whole set (for first_line). */
static size_t opt_index(const struct ld_optset *s, unsigned sec, const struct ld_opt *o)
{
	size_t i, n = 0;

	for (i = 0; i < sec; i++)
		n += s->sections[i].sec->nopts;
	return n + (size_t)(o - s->sections[sec].sec->opts);
}

static void section_list(const struct ld_optset *s, char *out, size_t cap)
{
	size_t i, n = 0;
	int w;

	out[0] = '\0';
	for (i = 0; i < s->nsections; i++) {
		if (!has_keys(s->sections[i].sec))
			continue;
		w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", s->sections[i].sec->name);
		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += (size_t)w;
	}
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct file_ctx *x = user;
	struct ld_optset *s = x->s;
	const struct ld_opt *o;
	char where[1200], joined[4096], list[256];
	const char *hint, *prevv, *sep, *home;
	unsigned sec = 0;
	size_t idx, i, plen;
	bool known_section = false;

	if (x->stop)
		return 1;
	o = ld_optset_find(s, name, &sec);
	if (x->indented && x->prev && o == x->prev) {
		/* inih hands an indented line over as more of the previous key. */
		if (!(o->flags & LD_OPT_LIST) || o->type != LD_OPT_STR) {
			file_error(x, "indented line continues '%s' (remove the indentation)",
				   name);
			return 0;
		}
		prevv = field(s, sec, o);
		plen = strlen(prevv);
		/* "k1:hex," then "k2:hex" or "k1:hex" then "k2:hex" both mean a list. */
		sep = plen && prevv[plen - 1] != ',' && value[0] != ',' ? "," : "";
		snprintf(joined, sizeof(joined), "%s%s%s", prevv, sep, value);
		value = joined;
		goto set;
	}
	for (i = 0; i < s->nsections; i++)
		if (has_keys(s->sections[i].sec) && strcmp(s->sections[i].sec->name, section) == 0)
			known_section = true;
	if (section[0] && !known_section) {
		section_list(s, list, sizeof(list));
		file_error(x, "unknown section [%s] (sections: %s)", section, list);
		return 0;
	}
	home = o ? s->sections[sec].sec->name : NULL;
	if (o && strcmp(home, section) != 0) {
		if (!section[0])
			file_error(x, "key '%s' is outside a section (put it under [%s])", name,
				   home);
		else
			file_error(x, "key '%s' belongs in [%s], not [%s]", name, home, section);
		return 0;
	}
	if (!o) {
		hint = closest(s, name, false);
		if (hint)
			file_error(x, "unknown key '%s' in [%s] (did you mean '%s'?)", name,
				   section, hint);
		else
			file_error(x, "unknown key '%s' in [%s]", name, section);
		return 0;
	}
	idx = opt_index(s, sec, o);
	if (x->first_line[idx]) {
		file_error(x, "'%s' is set twice (first on line %u)", name, x->first_line[idx]);
		return 0;
	}
	x->first_line[idx] = x->line;
set:
	x->prev = o;
	x->prev_sec = sec;
	if (o->flags & LD_OPT_SECRET) {
		x->has_secret = true;
		s->secret_key = o->key;
	}
	snprintf(where, sizeof(where), "%s:%u: %s", x->path, x->line, name);
	if (apply(s, sec, o, value, LD_SRC_FILE, where, x->err, x->errlen) < 0) {
		x->stop = true;
		x->err_line = x->line;
		return 0;
	}
	return 1;
}

int ld_optset_stream(struct ld_optset *s, FILE *f, const char *path, bool *has_secret, char *err,
		     size_t errlen)
{
	struct file_ctx *x;
	int rc = 0, line;

	/* first_line is large for a stack frame that inih's also sits on. */
	x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(err, errlen, "%s: out of memory while parsing", path);
		return -EINVAL;
	}
	x->s = s;
	x->path = path;
	x->f = f;
	x->err = err;
	x->errlen = errlen;
	line = ini_parse_stream(read_line, x, on_entry, x);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		rc = -EINVAL;
		goto out;
	}
	/* inih reports its own syntax errors only by line number; a syntax
	 * error before the first error we recorded is the one to show. */
	if (line > 0 && (!x->stop || (unsigned)line < x->err_line)) {
		x->stop = false;
		x->line = (unsigned)line;
		file_error(x, "not 'key = value' or '[section]'");
	}
	if (x->stop) {
		rc = -EINVAL;
		goto out;
	}
	if (line < 0) {
		snprintf(err, errlen, "%s: out of memory while parsing", path);
		rc = -EINVAL;
		goto out;
	}
	*has_secret = x->has_secret;
out:
	free(x);
	return rc;
}

int ld_optset_file(struct ld_optset *s, const char *path, const char *origin, char *err,
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
	rc = ld_optset_stream(s, f, path, &has_secret, err, errlen);
	if (rc < 0)
		goto out;
	/* The file holds a secret: say so when others may read it (a warning,
	 * not an error: the operator may have reasons, e.g. a group). */
	if (has_secret && fstat(fileno(f), &st) == 0 && (st.st_mode & 0077))
		fprintf(stderr,
			"ladder: warning: %s holds %s and is readable by others (chmod 600 it)\n",
			path, s->secret_key ? s->secret_key : "a secret");
	snprintf(s->config_path, sizeof(s->config_path), "%s", path);
out:
	if (f)
		fclose(f);
	return rc;
}

/* ---- the command line and the environment ------------------------------- */

static bool has_short(const struct ld_optset *s)
{
	size_t i, j;

	for (i = 0; i < s->nsections; i++)
		for (j = 0; j < s->sections[i].sec->nopts; j++)
			if (s->sections[i].sec->opts[j].short_flag)
				return true;
	return false;
}

static const struct ld_opt *positional(const struct ld_optset *s, unsigned *sec)
{
	size_t i, j;

	for (i = 0; i < s->nsections; i++)
		for (j = 0; j < s->sections[i].sec->nopts; j++)
			if (!s->sections[i].sec->opts[j].flag) {
				*sec = (unsigned)i;
				return &s->sections[i].sec->opts[j];
			}
	return NULL;
}

static int push(struct ld_args *a, const struct ld_opt *o, unsigned sec, const char *value,
		const char *spelled, size_t n, char *err, size_t errlen)
{
	struct ld_arg *g;

	if (a->n >= LD_ARGS_MAX) {
		snprintf(err, errlen, "more than %d arguments", LD_ARGS_MAX);
		return -EINVAL;
	}
	g = &a->a[a->n++];
	g->o = o;
	g->sec = sec;
	g->value = value;
	snprintf(g->spelled, sizeof(g->spelled), "%.*s", (int)(n < 47 ? n : 47), spelled);
	return 0;
}

/* unexpected reports a stray argument. After a secret option (secret_arg is
 * its flag as written: "--admin-token=", the value then given apart, say)
 * the stray argument is most likely the secret itself, so it is named by its
 * place and never printed. */
static void unexpected(char *err, size_t errlen, const char *arg, const char *secret_arg)
{
	const char *eq = secret_arg ? strchr(secret_arg, '=') : NULL;
	int n;

	if (!secret_arg) {
		snprintf(err, errlen, "unexpected argument '%.64s' (options start with --)", arg);
		return;
	}
	/* Only the flag's name: what follows '=' may be (part of) the secret. */
	n = eq ? (int)(eq - secret_arg) : (int)strlen(secret_arg);
	if (n > 47)
		n = 47;
	if (secret_arg[1] == '-')
		snprintf(err, errlen,
			 "unexpected argument after %.*s (not shown: it may be the secret; "
			 "write %.*s=VALUE)",
			 n, secret_arg, n, secret_arg);
	else /* a short flag takes no '=' */
		snprintf(err, errlen,
			 "unexpected argument after %.*s (not shown: it may be the secret)", n,
			 secret_arg);
}

int ld_optset_parse(const struct ld_optset *s, int argc, char **argv, struct ld_args *a, char *err,
		    size_t errlen)
{
	const struct ld_opt *o, *pos;
	const char *arg, *name, *eq, *v, *hint;
	char tmp[64];
	unsigned sec = 0, psec = 0;
	size_t n;
	const char *secret_arg = NULL, *after_secret;
	bool b;
	int i, rc = 0;

	a->n = 0;
	a->config = NULL;
	a->print = false;
	err[0] = '\0';
	/* --help wins over everything else on the line, mistakes included. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			ld_optset_usage(s, stdout);
			rc = LD_CONFIG_EXIT_OK;
			goto out;
		}
	}
	pos = positional(s, &psec);
	for (i = 1; i < argc; i++) {
		arg = argv[i];
		/* The previous option was a secret: argv as written for it. */
		after_secret = secret_arg;
		secret_arg = NULL;
		if (arg[0] != '-' || !arg[1]) {
			if (!pos) {
				unexpected(err, errlen, arg, after_secret);
				rc = -EINVAL;
				goto out;
			}
			rc = push(a, pos, psec, arg, "", 0, err, errlen);
			if (rc < 0)
				goto out;
			continue;
		}
		if (arg[1] != '-') {
			/* -x VALUE: a short flag, never with '=' nor bundled. */
			o = arg[2] ? NULL : by_flag(s, NULL, 0, arg[1], &sec);
			if (!o) {
				if (after_secret)
					unexpected(err, errlen, arg, after_secret);
				else if (has_short(s))
					snprintf(err, errlen, "unknown option '%.64s' (see --help)",
						 arg);
				else
					unexpected(err, errlen, arg, NULL);
				rc = -EINVAL;
				goto out;
			}
			name = arg;
			n = 2;
			eq = NULL;
		} else {
			name = arg + 2;
			eq = strchr(name, '=');
			n = eq ? (size_t)(eq - name) : strlen(name);
			if (s->config_file && n == 12 && strncmp(name, "print-config", 12) == 0 &&
			    !eq) {
				a->print = true;
				continue;
			}
			if (s->config_file && n == 6 && strncmp(name, "config", 6) == 0) {
				if (eq)
					v = eq + 1;
				else if (i + 1 < argc)
					v = argv[++i];
				else {
					snprintf(err, errlen, "--config needs a value");
					rc = -EINVAL;
					goto out;
				}
				a->config = v;
				continue;
			}
			if (n == 0) {
				unexpected(err, errlen, arg, after_secret);
				rc = -EINVAL;
				goto out;
			}
			o = by_flag(s, name, n, 0, &sec);
			if (!o) {
				snprintf(tmp, sizeof(tmp), "%.*s", (int)(n < 63 ? n : 63), name);
				hint = closest(s, tmp, true);
				snprintf(err, errlen, "unknown option '--%.64s'%s%s%s", tmp,
					 hint ? " (did you mean --" : " (see --help)",
					 hint ? hint : "", hint ? "?)" : "");
				rc = -EINVAL;
				goto out;
			}
			name = arg;
			n += 2;
		}
		if (o->type == LD_OPT_SWITCH) {
			if (eq) {
				snprintf(err, errlen, "%.*s: takes no value (got '%.64s')", (int)n,
					 name, eq + 1);
				rc = -EINVAL;
				goto out;
			}
			v = NULL;
		} else if (eq) {
			v = eq + 1;
		} else if (o->type == LD_OPT_BOOL &&
			   (i + 1 >= argc || ld_parse_bool(argv[i + 1], &b) < 0)) {
			v = "on"; /* a bare boolean flag turns it on */
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			snprintf(err, errlen, "%.*s needs a value", (int)n, name);
			rc = -EINVAL;
			goto out;
		}
		rc = push(a, o, sec, v, name, n, err, errlen);
		if (rc < 0)
			goto out;
		if (o->flags & LD_OPT_SECRET)
			secret_arg = arg; /* the flag, not argv[i]: that may be the value */
	}
out:
	return rc;
}

int ld_optset_apply(struct ld_optset *s, const struct ld_args *a, bool early, char *err,
		    size_t errlen)
{
	const struct ld_arg *g;
	size_t i;
	int rc = 0;

	for (i = 0; i < a->n; i++) {
		g = &a->a[i];
		if (!!(g->o->flags & LD_OPT_EARLY) != early)
			continue;
		/* A positional argument is named by its metavar ("URL"). */
		rc = apply(s, g->sec, g->o, g->value ? g->value : "on", LD_SRC_FLAG,
			   g->o->flag	   ? g->spelled
			   : g->o->metavar ? g->o->metavar
					   : g->value,
			   err, errlen);
		if (rc < 0)
			goto out;
	}
out:
	return rc;
}

int ld_optset_env(struct ld_optset *s, char *err, size_t errlen)
{
	const struct ld_opt *o;
	const char *v;
	size_t i, j;
	int rc = 0;

	for (i = 0; i < s->nsections; i++) {
		for (j = 0; j < s->sections[i].sec->nopts; j++) {
			o = &s->sections[i].sec->opts[j];
			v = o->env ? getenv(o->env) : NULL;
			if (!v || !v[0])
				continue;
			rc = apply(s, (unsigned)i, o, v, LD_SRC_ENV, o->env, err, errlen);
			if (rc < 0)
				goto out;
		}
	}
out:
	return rc;
}

/* ---- --help and --print-config ------------------------------------------ */

/* print_wrapped writes text, indenting the lines after the first by indent. */
static void print_wrapped(FILE *f, const char *text, int indent)
{
	const char *nl;

	while ((nl = strchr(text, '\n')) != NULL) {
		fprintf(f, "%.*s\n%*s", (int)(nl - text), text, indent, "");
		text = nl + 1;
	}
	fprintf(f, "%s\n", text);
}

/* print_help writes an option's help and, if not empty, "(tail)" after it. */
static void print_help(FILE *f, const char *help, const char *tail)
{
	const char *nl;

	while ((nl = strchr(help, '\n')) != NULL) {
		fprintf(f, "%.*s\n%31s", (int)(nl - help), help, "");
		help = nl + 1;
	}
	fprintf(f, "%s%s%s%s\n", help, tail[0] ? " (" : "", tail, tail[0] ? ")" : "");
}

void ld_optset_usage(const struct ld_optset *s, FILE *f)
{
	const struct ld_opt_section *sec;
	const struct ld_opt *o;
	char lhs[96], range[96], lo[32], hi[32], tail[200];
	const char *def;
	size_t i, j;
	bool shorts = has_short(s);

	fprintf(f, "ladder %s: %s\n\nusage: ladder %s %s\n", s->cmd, s->summary, s->cmd, s->usage);
	if (s->about)
		fprintf(f, "\n%s", s->about);
	fprintf(f, "\nexamples:\n%s\n", s->examples);
	fprintf(f, "options:\n");
	if (s->config_file) {
		fprintf(f, "  --config FILE          read settings from an INI file");
		if (s->config_env)
			fprintf(f, " (env %s)", s->config_env);
		fprintf(f, "\n  --print-config         print the effective settings and their "
			   "sources, then exit\n");
	}
	fprintf(f, "  -h, --help             show this help\n");
	if (s->notes)
		fprintf(f, "\n%s", s->notes);
	for (i = 0; i < s->nsections; i++) {
		sec = s->sections[i].sec;
		if (has_keys(sec))
			fprintf(f, "\n[%s]\n", sec->name);
		else
			fprintf(f, "\n%s:\n", sec->name);
		if (sec->help)
			fprintf(f, "  %s\n", sec->help);
		for (j = 0; j < sec->nopts; j++) {
			o = &sec->opts[j];
			if (!o->flag || (o->flags & LD_OPT_HIDDEN))
				continue;
			if (o->short_flag)
				snprintf(lhs, sizeof(lhs), "-%c, --%s%s%s", o->short_flag, o->flag,
					 o->metavar ? " " : "", o->metavar ? o->metavar : "");
			else
				snprintf(lhs, sizeof(lhs), "%s--%s%s%s", shorts ? "    " : "",
					 o->flag, o->metavar ? " " : "",
					 o->metavar ? o->metavar : "");
			range[0] = '\0';
			if (numeric(o->type) && (o->min || o->max)) {
				format_bound(o, o->min, lo, sizeof(lo));
				format_bound(o, o->max, hi, sizeof(hi));
				snprintf(range, sizeof(range), "%s to %s", lo, hi);
			} else if (o->choices) {
				snprintf(range, sizeof(range), "one of %s", o->choices);
			}
			fprintf(f, "  %-28s ", lhs);
			if (o->env || o->key) {
				print_wrapped(f, o->help, 31);
				fprintf(f, "  %-28s env %s, key %s, default %s%s%s%s\n", "",
					o->env ? o->env : "(none)", o->key ? o->key : "(none)",
					o->def && o->def[0] ? o->def : "(empty)",
					range[0] ? ", " : "", range,
					o->flags & LD_OPT_SECRET ? ", secret" : "");
				continue;
			}
			/* A flag-only option: what it defaults to closes its line. */
			def = o->def && o->type != LD_OPT_SWITCH ? o->def : NULL;
			snprintf(tail, sizeof(tail), "%s%s%s%s%s", def ? "default " : "",
				 def ? def : "", def && range[0] ? "; " : "", range,
				 o->flags & LD_OPT_REPEAT
				     ? (def || range[0] ? "; repeatable" : "repeatable")
				     : "");
			print_help(f, o->help, tail);
		}
	}
	if (s->footer)
		fprintf(f, "\n%s", s->footer);
}

void ld_optset_print(const struct ld_optset *s, FILE *f)
{
	const struct ld_opt_section *sec;
	const struct ld_opt *o;
	char v[4096];
	size_t i, j;

	fprintf(f, "# effective configuration; the comment after each value says where it\n"
		   "# came from (default, file, env or flag)\n");
	fprintf(f, "# config file: %s\n", s->config_path[0] ? s->config_path : "(none)");
	for (i = 0; i < s->nsections; i++) {
		sec = s->sections[i].sec;
		if (!has_keys(sec))
			continue;
		fprintf(f, "\n[%s]\n", sec->name);
		for (j = 0; j < sec->nopts; j++) {
			o = &sec->opts[j];
			if (!o->key)
				continue;
			if (o->flags & LD_OPT_SECRET)
				snprintf(v, sizeof(v), "%s",
					 ((const char *)field(s, (unsigned)i, o))[0] ? "(set)"
										     : "(unset)");
			else
				ld_optset_format(s, (unsigned)i, o, v, sizeof(v));
			fprintf(f, "%s = %s ; %s\n", o->key, v,
				source_names[s->sections[i].source ? s->sections[i].source[j] : 0]);
		}
	}
}

/* ---- serve and migrate -------------------------------------------------- */

#define F(field) offsetof(struct ld_config, field), sizeof(((struct ld_config *)0)->field)

/* The order here is the order of --help, --print-config and the docs; rows
 * of one section are together (sections[] below slices this table). */
static const struct ld_opt settings[] = {
    {"listen", 0, "listen", "LADDER_LISTEN", LD_OPT_HOSTPORT, F(listen_host),
     offsetof(struct ld_config, listen_port), "127.0.0.1:8080", 0, 0, NULL, 0, NULL, NULL,
     "HOST:PORT", "address to listen on; every loop thread binds it with SO_REUSEPORT"},
    {"threads", 0, "threads", "LADDER_THREADS", LD_OPT_UINT, F(threads), 0, "0", 0, 256, NULL, 0,
     NULL, NULL, "N", "event-loop threads; 0 = one per usable core"},
    {"max-connections", 0, "max_connections", "LADDER_MAX_CONNECTIONS", LD_OPT_UINT,
     F(max_connections), 0, "10000", 1, 1000000, NULL, 0, NULL, NULL, "N",
     "most open client connections per process"},
    {"shutdown-timeout", 0, "shutdown_timeout", "LADDER_SHUTDOWN_TIMEOUT", LD_OPT_DUR,
     F(shutdown_timeout_ms), 0, "10s", 0, HOUR, NULL, 0, NULL, NULL, "DURATION",
     "on SIGTERM, how long in-flight requests may take to finish before connections close"},
    {"drain-delay", 0, "drain_delay", "LADDER_DRAIN_DELAY", LD_OPT_DUR, F(drain_delay_ms), 0, "0s",
     0, HOUR, NULL, 0, NULL, NULL, "DURATION",
     "on SIGTERM, keep accepting this long while /readyz answers 503 (let the load balancer "
     "notice)"},
    {"log-requests", 0, "log_requests", "LADDER_LOG_REQUESTS", LD_OPT_BOOL, F(log_requests), 0,
     "on", 0, 0, NULL, 0, NULL, NULL, "on|off", "one JSON line per request on stdout"},
    {"stage-timing", 0, "stage_timing", "LADDER_STAGE_TIMING", LD_OPT_BOOL, F(stage_timing), 0,
     "on", 0, 0, NULL, 0, NULL, NULL, "on|off",
     "time every request's stages for /metrics and /debug/stats (a clock read per stage)"},
    {"debug-allow", 0, "debug_allow", "LADDER_DEBUG_ALLOW", LD_OPT_STR, F(debug_allow), 0,
     "loopback", 1, 0, "loopback|token", 0, NULL, NULL, "loopback|token",
     "who may read /debug/stats: loopback = loopback clients and the admin token; token = only "
     "requests with the admin token"},
    {"admin-token", 0, "admin_token", "LADDER_ADMIN_TOKEN", LD_OPT_STR, F(admin_token), 0, "", 0, 0,
     NULL, LD_OPT_SECRET, NULL, NULL, "TOKEN",
     "bearer token that may read /debug/stats from any address; empty = none"},

    {"data", 0, "data", "LADDER_DATA", LD_OPT_STR, F(data_dir), 0, "./data", 1, 0, NULL, 0, NULL,
     NULL, "DIR", "directory of the database and of the token key"},
    {"store", 0, "store", "LADDER_STORE", LD_OPT_STR, F(store), 0, "sqlite", 1, 0,
     "sqlite|postgres|sqlite-deferred", 0, NULL, NULL, "NAME",
     "storage driver: sqlite (in DATA) or postgres ([postgres] section); sqlite-deferred is "
     "for tests only (docs/store.md)"},
    {"store-timeout", 0, "store_timeout", "LADDER_STORE_TIMEOUT", LD_OPT_DUR, F(store_timeout_ms),
     0, "2s", 1, HOUR, NULL, 0, NULL, NULL, "DURATION",
     "deadline of one store operation; past it the request gets 503 and a write is not made"},
    {"sync", 0, "sync", "LADDER_SYNC", LD_OPT_BOOL, F(sync), 0, "on", 0, 0, NULL, 0, NULL, NULL,
     "on|off", "fsync every commit; off may lose the last commits on power loss (never corrupts)"},
    {"write-queue", 0, "write_queue", "LADDER_WRITE_QUEUE", LD_OPT_UINT, F(write_queue), 0, "8192",
     1, 1000000, NULL, 0, NULL, NULL, "N", "writes that may wait for the writer thread"},
    {"write-batch", 0, "write_batch", "LADDER_WRITE_BATCH", LD_OPT_UINT, F(write_batch), 0, "1024",
     1, 65536, NULL, 0, NULL, NULL, "N",
     "most writes committed in one transaction (group commit); at most write_queue"},
    {"test-commit-delay", 0, "test_commit_delay", "LADDER_TEST_COMMIT_DELAY", LD_OPT_DUR,
     F(test_commit_delay_ms), 0, "0s", 0, MIN, NULL, 0, NULL, NULL, "DURATION",
     "TEST ONLY: sleep this long before every commit, to make commits the bottleneck on purpose; "
     "never set it in production"},

    {"token-keys", 0, "token_keys", "LADDER_TOKEN_KEYS", LD_OPT_STR, F(token_keys), 0, "", 0, 0,
     NULL, LD_OPT_SECRET | LD_OPT_LIST, NULL, NULL, "KID:HEX,...",
     "token signing keys 'kid:64-hex-chars[,kid:hex...]': the first signs, all verify; empty = "
     "DATA/token.key, made on first start"},
    {"token-ttl", 0, "token_ttl", "LADDER_TOKEN_TTL", LD_OPT_DUR, F(token_ttl_ms), 0, "24h", SEC,
     366 * DAY, NULL, 0, NULL, NULL, "DURATION", "lifetime of a session token"},
    {"argon2-ops", 0, "argon2_ops", "LADDER_ARGON2_OPS", LD_OPT_UINT, F(argon2_ops), 0, "2", 1, 100,
     NULL, 0, NULL, NULL, "N", "argon2id passes per password hash"},
    {"argon2-mem", 0, "argon2_mem", "LADDER_ARGON2_MEM", LD_OPT_SIZE, F(argon2_mem), 0, "19MiB",
     8 * KiB, 4 * GiB, NULL, 0, NULL, NULL, "SIZE", "argon2id memory per password hash"},

    {"header-timeout", 0, "header_timeout", "LADDER_HEADER_TIMEOUT", LD_OPT_DUR,
     F(header_timeout_ms), 0, "10s", 1, DAY, NULL, 0, NULL, NULL, "DURATION",
     "time to receive a request's whole header (then 408)"},
    {"body-timeout", 0, "body_timeout", "LADDER_BODY_TIMEOUT", LD_OPT_DUR, F(body_timeout_ms), 0,
     "10s", 1, DAY, NULL, 0, NULL, NULL, "DURATION",
     "longest pause while receiving a body (then 408)"},
    {"keepalive-timeout", 0, "keepalive_timeout", "LADDER_KEEPALIVE_TIMEOUT", LD_OPT_DUR,
     F(keepalive_timeout_ms), 0, "75s", 1, DAY, NULL, 0, NULL, NULL, "DURATION",
     "idle time before a keep-alive connection is closed"},
    {"write-timeout", 0, "write_timeout", "LADDER_WRITE_TIMEOUT", LD_OPT_DUR, F(write_timeout_ms),
     0, "30s", 1, DAY, NULL, 0, NULL, NULL, "DURATION",
     "time a client may take to read its response before it is dropped"},
    {"max-request-line", 0, "max_request_line", "LADDER_MAX_REQUEST_LINE", LD_OPT_SIZE,
     F(max_request_line), 0, "8KiB", 64, MiB, NULL, 0, NULL, NULL, "SIZE",
     "longest request line (then 414)"},
    {"max-header-line", 0, "max_header_line", "LADDER_MAX_HEADER_LINE", LD_OPT_SIZE,
     F(max_header_line), 0, "8KiB", 64, MiB, NULL, 0, NULL, NULL, "SIZE",
     "longest header line (then 431); at most max_headers"},
    {"max-headers", 0, "max_headers", "LADDER_MAX_HEADERS", LD_OPT_SIZE, F(max_headers), 0, "32KiB",
     64, 16 * MiB, NULL, 0, NULL, NULL, "SIZE", "all header bytes of a request (then 431)"},
    {"max-fields", 0, "max_fields", "LADDER_MAX_FIELDS", LD_OPT_UINT, F(max_fields), 0, "100", 1,
     256, NULL, 0, NULL, NULL, "N", "most header fields in a request (then 431)"},
    {"max-body", 0, "max_body", "LADDER_MAX_BODY", LD_OPT_SIZE, F(max_body), 0, "64KiB", 1,
     256 * MiB, NULL, 0, NULL, NULL, "SIZE", "largest request body (then 413)"},
    {"gzip", 0, "gzip", "LADDER_GZIP", LD_OPT_BOOL, F(gzip), 0, "on", 0, 0, NULL, 0, NULL, NULL,
     "on|off", "gzip responses when the client accepts it"},
    {"gzip-min", 0, "gzip_min", "LADDER_GZIP_MIN", LD_OPT_SIZE, F(gzip_min), 0, "1KiB", 0, GiB,
     NULL, 0, NULL, NULL, "SIZE", "smallest response body worth compressing"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))
_Static_assert(NSETTINGS == LD_CONFIG_NSETTINGS, "LD_CONFIG_NSETTINGS must match the table");

/* Rows per section, in the table's order. */
enum { N_SERVER = 9, N_STORE = 7, N_AUTH = 4, N_HTTP = 11 };
_Static_assert(N_SERVER + N_STORE + N_AUTH + N_HTTP == LD_CONFIG_NSETTINGS,
	       "the sections must cover the table");

static const struct ld_opt_section sections[] = {
    {"server", settings, N_SERVER, NULL},
    {"store", settings + N_SERVER, N_STORE, NULL},
    {"auth", settings + N_SERVER + N_STORE, N_AUTH, NULL},
    {"http", settings + N_SERVER + N_STORE + N_AUTH, N_HTTP, NULL},
};

#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

/* Sections modules registered (ld_config_register). */
static struct {
	const struct ld_opt_section *sec;
	void *target;
	unsigned char *source;
} modules[LD_OPTSET_SECTIONS - NSECTIONS];
static size_t nmodules;

static const char serve_notes[] =
    "settings: defaults < config file < environment < flags. Flags take\n"
    "'--name value' or '--name=value'; a bare on/off flag means on. Sizes:\n"
    "512, 8k, 64KiB, 1MiB (binary units). Durations: 500ms, 10s, 2m, 1h, 1h30m.\n";

/* serve_set registers serve's sections, then the modules', on c. */
static void serve_set(struct ld_optset *s, const struct ld_config *c, const char *cmd)
{
	struct ld_config *w = (struct ld_config *)c; /* the set only reads it here */
	size_t i, row = 0;

	ld_optset_init(s, cmd);
	s->config_file = true;
	s->config_env = "LADDER_CONFIG";
	s->notes = serve_notes;
	if (strcmp(cmd, "migrate") == 0) {
		s->summary = "create or upgrade the database schema of the configured store, then "
			     "exit";
		s->usage = "[options]";
		s->examples = "  ladder migrate                      # ./data/ladder.db\n"
			      "  ladder migrate --data /var/lib/ladder\n"
			      "  LADDER_DATA=/var/lib/ladder ladder migrate --config "
			      "/etc/ladder.ini\n";
	} else {
		s->summary = "run the ladder HTTP/JSON API server until SIGTERM or SIGINT";
		s->usage = "[options]";
		s->examples =
		    "  ladder serve\n"
		    "  ladder serve --listen 0.0.0.0:8080 --threads 2\n"
		    "  LADDER_DATA=/var/lib/ladder ladder serve --config /etc/ladder.ini\n"
		    "  ladder serve --max-body=1MiB --token-ttl 2h --print-config\n"
		    "  ladder serve --drain-delay 5s --shutdown-timeout 20s   # behind a "
		    "load balancer\n";
	}
	for (i = 0; i < NSECTIONS; i++) {
		/* The built-in table is unique by construction (a unit test). */
		(void)ld_optset_add(s, &sections[i], w, w->source + row);
		row += sections[i].nopts;
	}
	for (i = 0; i < nmodules; i++)
		(void)ld_optset_add(s, modules[i].sec, modules[i].target, modules[i].source);
	snprintf(s->config_path, sizeof(s->config_path), "%s", c->config_file);
}

int ld_config_register(const struct ld_opt_section *sec, void *target, unsigned char *source)
{
	static struct ld_config probe;
	struct ld_optset *s;
	size_t i;
	int rc;

	if (nmodules >= sizeof(modules) / sizeof(modules[0]))
		return -ENOSPC;
	/* Try it on a set: its names must not collide with anyone's. */
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	serve_set(s, &probe, "serve");
	rc = ld_optset_add(s, sec, target, source);
	free(s);
	if (rc < 0)
		return rc;
	for (i = 0; i < sec->nopts; i++)
		if (source)
			source[i] = LD_SRC_DEFAULT;
	modules[nmodules].sec = sec;
	modules[nmodules].target = target;
	modules[nmodules].source = source;
	nmodules++;
	return 0;
}

/* by_key finds one of serve's own settings. */
static const struct ld_opt *by_key(const char *key)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].key, key) == 0)
			return &settings[i];
	return NULL;
}

const char *ld_config_source(const struct ld_config *c, const char *name)
{
	const struct ld_opt *o = by_key(name);
	size_t i, j;

	if (o)
		return source_names[c->source[o - settings]];
	for (i = 0; i < nmodules; i++)
		for (j = 0; j < modules[i].sec->nopts; j++)
			if (modules[i].sec->opts[j].key &&
			    strcmp(modules[i].sec->opts[j].key, name) == 0)
				return modules[i].source ? source_names[modules[i].source[j]]
							 : NULL;
	return NULL;
}

void ld_config_defaults(struct ld_config *c)
{
	struct ld_optset *s = malloc(sizeof(*s));
	char err[256];

	memset(c, 0, sizeof(*c));
	if (!s)
		return;
	serve_set(s, c, "serve");
	(void)ld_optset_defaults(s, err, sizeof(err));
	free(s);
}

/* ---- validation across settings ----------------------------------------- */

static int at_most(const struct ld_config *c, const char *small, const char *big, char *err,
		   size_t errlen)
{
	const struct ld_opt *s = by_key(small), *t = by_key(big);
	const char *base = (const char *)c;
	char sv[32], tv[32];
	uint64_t a, b;

	if (s->type == LD_OPT_UINT) {
		a = *(const unsigned *)(const void *)(base + s->off);
		b = *(const unsigned *)(const void *)(base + t->off);
	} else {
		a = *(const uint64_t *)(const void *)(base + s->off);
		b = *(const uint64_t *)(const void *)(base + t->off);
	}
	if (a <= b)
		return 0;
	if (s->type == LD_OPT_SIZE) {
		ld_format_size(a, sv, sizeof(sv));
		ld_format_size(b, tv, sizeof(tv));
	} else {
		snprintf(sv, sizeof(sv), "%llu", (unsigned long long)a);
		snprintf(tv, sizeof(tv), "%llu", (unsigned long long)b);
	}
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
	if (rc == 0 && strcmp(c->debug_allow, "token") == 0 && !c->admin_token[0]) {
		snprintf(err, errlen,
			 "debug_allow token (%s) needs admin_token, which is empty: nobody could "
			 "read /debug/stats",
			 source_names[c->source[by_key("debug_allow") - settings]]);
		rc = -EINVAL;
	}
	return rc;
}

/* load_stream applies the INI text read from f to c; path names it in
 * messages. Sets *has_secret when the text sets a secret. Used by the unit
 * tests and the fuzz target, which include this file. */
static int load_stream(struct ld_config *c, FILE *f, const char *path, bool *has_secret, char *err,
		       size_t errlen) __attribute__((unused));

static int load_stream(struct ld_config *c, FILE *f, const char *path, bool *has_secret, char *err,
		       size_t errlen)
{
	struct ld_optset *s = malloc(sizeof(*s));
	int rc;

	if (!s) {
		snprintf(err, errlen, "%s: out of memory while parsing", path);
		return -EINVAL;
	}
	serve_set(s, c, "serve");
	rc = ld_optset_stream(s, f, path, has_secret, err, errlen);
	free(s);
	return rc;
}

/* ---- load, usage, print ------------------------------------------------- */

void ld_config_usage(const char *cmd, FILE *f)
{
	struct ld_optset *s = malloc(sizeof(*s));
	static struct ld_config c;

	if (!s)
		return;
	serve_set(s, &c, cmd);
	ld_optset_usage(s, f);
	free(s);
}

void ld_config_print(const struct ld_config *c, FILE *f)
{
	struct ld_optset *s = malloc(sizeof(*s));

	if (!s)
		return;
	serve_set(s, c, "serve");
	ld_optset_print(s, f);
	free(s);
}

int ld_config_load(struct ld_config *c, int argc, char **argv, char *err, size_t errlen)
{
	const char *cmd = argc > 0 && argv[0] ? argv[0] : "serve", *path, *origin;
	struct ld_optset *s = NULL;
	struct ld_args *a = NULL;
	int rc;

	err[0] = '\0';
	ld_config_defaults(c);
	s = malloc(sizeof(*s));
	a = malloc(sizeof(*a));
	if (!s || !a) {
		snprintf(err, errlen, "out of memory");
		rc = -EINVAL;
		goto out;
	}
	serve_set(s, c, cmd);
	rc = ld_optset_parse(s, argc, argv, a, err, errlen);
	if (rc != 0)
		goto out;
	path = a->config;
	origin = "--config";
	if (!path) {
		path = getenv("LADDER_CONFIG");
		if (path && !path[0])
			path = NULL;
		origin = "LADDER_CONFIG";
	}
	if (path) {
		rc = ld_optset_file(s, path, origin, err, errlen);
		if (rc < 0)
			goto out;
		snprintf(c->config_file, sizeof(c->config_file), "%s", path);
	}
	rc = ld_optset_env(s, err, errlen);
	if (rc < 0)
		goto out;
	rc = ld_optset_apply(s, a, false, err, errlen);
	if (rc < 0)
		goto out;
	rc = validate(c, err, errlen);
	if (rc < 0)
		goto out;
	if (a->print) {
		ld_optset_print(s, stdout);
		rc = LD_CONFIG_EXIT_OK;
	}
out:
	free(a);
	free(s);
	return rc;
}
