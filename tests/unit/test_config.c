/* The .c is included (as h2o's unit tests do) to reach the settings table, so
 * table conventions and the docs can be checked row by row. */
#include "../../src/base/config.c"

#include "unit.h"

#include <ctype.h>
#include <fcntl.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/ld_test_config_XXXXXX";

static void clear_env(void)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		unsetenv(settings[i].env);
	unsetenv("LADDER_CONFIG");
}

/* write_file makes tmpdir/name with the given text and returns its path in a
 * static buffer. */
static const char *write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return path;
}

/* load runs ld_config_load with a NULL-terminated list of arguments after
 * "serve". */
static int load(struct ld_config *c, char *err, size_t errlen, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = "serve";
	va_start(ap, errlen);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	return ld_config_load(c, argc, argv, err, errlen);
}

/* capture_stdout runs load() with stdout sent to a file and returns what
 * was printed (static buffer). */
static const char *capture_stdout(int *rc, char *a1, char *a2)
{
	static char out[32768];
	struct ld_config c;
	char err[256];
	char path[512];
	int fd, saved;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/stdout", tmpdir);
	fflush(stdout);
	saved = dup(1);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 1);
	close(fd);
	*rc = load(&c, err, sizeof(err), a1, a2, NULL);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	f = fopen(path, "r");
	n = f ? fread(out, 1, sizeof(out) - 1, f) : 0;
	out[n] = '\0';
	if (f)
		fclose(f);
	return out;
}

static void test_defaults(void)
{
	struct ld_config c;
	char err[256] = "";
	size_t i;

	clear_env();
	CHECK_INT(load(&c, err, sizeof(err), NULL), LD_CONFIG_OK);
	CHECK_STR(err, "");
	CHECK_STR(c.listen_host, "127.0.0.1");
	CHECK_INT(c.listen_port, 8080);
	CHECK_STR(c.data_dir, "./data");
	CHECK_INT(c.threads, 0);
	CHECK_STR(c.store, "sqlite");
	CHECK_STR(c.token_keys, "");
	CHECK_INT(c.token_ttl_ms, 24 * 3600 * 1000ull);
	CHECK_INT(c.argon2_ops, 2);
	CHECK_INT(c.argon2_mem, 19 * 1024 * 1024);
	CHECK_INT(c.header_timeout_ms, 10000);
	CHECK_INT(c.body_timeout_ms, 10000);
	CHECK_INT(c.keepalive_timeout_ms, 75000);
	CHECK_INT(c.write_timeout_ms, 30000);
	CHECK_INT(c.shutdown_timeout_ms, 10000);
	CHECK_INT(c.max_request_line, 8192);
	CHECK_INT(c.max_header_line, 8192);
	CHECK_INT(c.max_headers, 32768);
	CHECK_INT(c.max_fields, 100);
	CHECK_INT(c.max_body, 65536);
	CHECK_INT(c.max_connections, 10000);
	CHECK_INT(c.write_queue, 8192);
	CHECK_INT(c.write_batch, 1024);
	CHECK(c.sync);
	CHECK(c.log_requests);
	CHECK(c.gzip);
	CHECK_INT(c.gzip_min, 1024);
	CHECK_STR(c.config_file, "");
	for (i = 0; i < NSETTINGS; i++)
		CHECK_STR(ld_config_source(&c, settings[i].key), "default");
	CHECK(ld_config_source(&c, "nope") == NULL);
}

/* Every row follows the naming rule and its default passes its own parser
 * and range, so help, docs and behaviour agree. */
static void test_table_conventions(void)
{
	static struct ld_optset set;
	struct ld_config c;
	char want[64], err[256];
	size_t i, j, k;

	memset(&c, 0, sizeof(c));
	serve_set(&set, &c, "serve");
	CHECK_INT(set.nsections, NSECTIONS);
	for (k = 0; k < NSECTIONS; k++) {
		for (i = 0; i < sections[k].nopts; i++) {
			const struct ld_opt *s = &sections[k].opts[i];

			snprintf(want, sizeof(want), "LADDER_");
			for (j = 0; s->key[j]; j++)
				want[7 + j] = (char)toupper((unsigned char)s->key[j]);
			want[7 + j] = '\0';
			CHECK_STR(s->env, want);
			for (j = 0; s->key[j]; j++)
				want[j] = s->key[j] == '_' ? '-' : s->key[j];
			want[j] = '\0';
			CHECK_STR(s->flag, want);
			err[0] = '\0';
			CHECK_INT(apply(&set, (unsigned)k, s, s->def, LD_SRC_DEFAULT, s->key, err,
					sizeof(err)),
				  0);
			CHECK_STR(err, "");
			CHECK(s->help && s->help[0]);
			CHECK(s->metavar && s->metavar[0]);
			for (j = 0; j < (size_t)(s - settings); j++)
				CHECK(strcmp(settings[j].key, s->key) != 0);
		}
	}
}

static void test_parse_size(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
	    {"0", 0},
	    {"512", 512},
	    {"8k", 8192},
	    {"8K", 8192},
	    {"64KiB", 65536},
	    {"64kb", 65536},
	    {"64 KiB", 65536},
	    {"1MiB", 1048576},
	    {"1m", 1048576},
	    {"2G", 2147483648ull},
	    {"3GiB", 3221225472ull},
	    {"1TiB", 1099511627776ull},
	    {"7b", 7},
	    {"18446744073709551615", UINT64_MAX},
	    {"16777215TiB", 16777215ull << 40},
	};
	static const char *const bad[] = {
	    "",
	    "k",
	    "-1",
	    "+1",
	    " 1",
	    "1 ",
	    "1.5MiB",
	    "12q",
	    "0x10",
	    "1KiBs",
	    "1 KiB ",
	    "18446744073709551616",
	    "16777216TiB",
	    "1e3",
	    "1 k b",
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		CHECK_INT(ld_parse_size(good[i].s, &v), 0);
		if (v != good[i].v)
			fprintf(stderr, "size '%s'\n", good[i].s);
		CHECK(v == good[i].v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		if (ld_parse_size(bad[i], &v) != -EINVAL) {
			fprintf(stderr, "size '%s' accepted\n", bad[i]);
			CHECK(0);
		}
		CHECK_INT(v, 12345);
	}
}

static void test_parse_duration(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
	    {"0ms", 0},	       {"500ms", 500},	 {"10s", 10000},     {"2m", 120000},
	    {"1h", 3600000},   {"1d", 86400000}, {"1h30m", 5400000}, {"1m30s", 90000},
	    {"1s500ms", 1500}, {"10S", 10000},	 {"5MS", 5},	     {"2d3h4m5s6ms", 183845006},
	};
	static const char *const bad[] = {
	    "",
	    "10",
	    "s",
	    "ms",
	    "1.5s",
	    "-1s",
	    "1 s",
	    "1s ",
	    "10x",
	    "1m1h",
	    "1s1s",
	    "1ms1s",
	    "1w",
	    "1y",
	    "+1s",
	    "1hh",
	    "18446744073709551615s",
	    "213503982335d",
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 7;
		CHECK_INT(ld_parse_duration_ms(good[i].s, &v), 0);
		if (v != good[i].v)
			fprintf(stderr, "duration '%s'\n", good[i].s);
		CHECK(v == good[i].v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		if (ld_parse_duration_ms(bad[i], &v) != -EINVAL) {
			fprintf(stderr, "duration '%s' accepted\n", bad[i]);
			CHECK(0);
		}
		CHECK_INT(v, 7);
	}
}

static void test_parse_bool_uint(void)
{
	static const char *const yes[] = {"on", "ON", "true", "True", "yes", "1"};
	static const char *const no[] = {"off", "Off", "false", "FALSE", "no", "0"};
	static const char *const bad[] = {"", "2", "y", "n", "onn", "of", " on", "on ", "enabled"};
	unsigned u;
	bool b;
	size_t i;

	for (i = 0; i < 6; i++) {
		b = false;
		CHECK_INT(ld_parse_bool(yes[i], &b), 0);
		CHECK(b);
		b = true;
		CHECK_INT(ld_parse_bool(no[i], &b), 0);
		CHECK(!b);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(ld_parse_bool(bad[i], &b), -EINVAL);

	CHECK_INT(ld_parse_uint("0", &u), 0);
	CHECK_INT(u, 0);
	CHECK_INT(ld_parse_uint("4294967295", &u), 0);
	CHECK(u == 4294967295u);
	CHECK_INT(ld_parse_uint("4294967296", &u), -EINVAL);
	CHECK_INT(ld_parse_uint("", &u), -EINVAL);
	CHECK_INT(ld_parse_uint("0x", &u), -EINVAL);
	CHECK_INT(ld_parse_uint("-1", &u), -EINVAL);
	CHECK_INT(ld_parse_uint("1 ", &u), -EINVAL);
	CHECK_INT(ld_parse_uint("99999999999999999999999", &u), -EINVAL);
}

static void test_parse_hostport(void)
{
	char host[64];
	unsigned port = 0;

	CHECK_INT(ld_parse_hostport("127.0.0.1:8080", host, sizeof(host), &port), 0);
	CHECK_STR(host, "127.0.0.1");
	CHECK_INT(port, 8080);
	CHECK_INT(ld_parse_hostport("0.0.0.0:1", host, sizeof(host), &port), 0);
	CHECK_INT(port, 1);
	CHECK_INT(ld_parse_hostport("localhost:65535", host, sizeof(host), &port), 0);
	CHECK_STR(host, "localhost");
	CHECK_INT(port, 65535);
	CHECK_INT(ld_parse_hostport("[::1]:80", host, sizeof(host), &port), 0);
	CHECK_STR(host, "::1");
	CHECK_INT(port, 80);
	CHECK_INT(ld_parse_hostport("[fe80::1%eth0]:443", host, sizeof(host), &port), 0);
	CHECK_STR(host, "fe80::1%eth0");
	CHECK_INT(ld_parse_hostport("[::]:8080", host, sizeof(host), &port), 0);
	CHECK_STR(host, "::");

	port = 9;
	strcpy(host, "same");
	CHECK_INT(ld_parse_hostport("127.0.0.1", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport(":8080", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("host:", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("host:0", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("host:65536", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("host:008080", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("host:80x", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("host:-80", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("::1:80", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("[::1]80", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("[::1:80", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("[]:80", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("[example.com]:80", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("bad host:80", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("", host, sizeof(host), &port), -EINVAL);
	CHECK_INT(ld_parse_hostport("a-very-long-host-name.example.com:80", host, 8, &port),
		  -EINVAL);
	CHECK_STR(host, "same");
	CHECK_INT(port, 9);
}

/* Formatting picks the largest exact unit and always parses back. */
static void test_format_roundtrip(void)
{
	char s[64];
	uint64_t v, back, x = 88172645463325252ull;
	int i;

	ld_format_size(65536, s, sizeof(s));
	CHECK_STR(s, "64KiB");
	ld_format_size(19 * 1024 * 1024, s, sizeof(s));
	CHECK_STR(s, "19MiB");
	ld_format_size(1000, s, sizeof(s));
	CHECK_STR(s, "1000");
	ld_format_size(0, s, sizeof(s));
	CHECK_STR(s, "0");
	ld_format_duration_ms(86400000, s, sizeof(s));
	CHECK_STR(s, "1d");
	ld_format_duration_ms(5400000, s, sizeof(s));
	CHECK_STR(s, "90m");
	ld_format_duration_ms(1500, s, sizeof(s));
	CHECK_STR(s, "1500ms");
	ld_format_duration_ms(0, s, sizeof(s));
	CHECK_STR(s, "0ms");
	for (i = 0; i < 2000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v = x >> (i % 64);
		if (i % 3 == 0)
			v &= ~1023ull;
		ld_format_size(v, s, sizeof(s));
		back = v + 1;
		CHECK_INT(ld_parse_size(s, &back), 0);
		CHECK(back == v);
		ld_format_duration_ms(v, s, sizeof(s));
		back = v + 1;
		CHECK_INT(ld_parse_duration_ms(s, &back), 0);
		CHECK(back == v);
	}
}

static void test_precedence_and_sources(void)
{
	struct ld_config c;
	char err[256] = "";
	const char *path;

	clear_env();
	path = write_file("prec.ini", "# layers\n"
				      "[server]\n"
				      "listen = 10.0.0.1:9000\n"
				      "threads = 3\n"
				      "max_connections = 50\n"
				      "[http]\n"
				      "max_body = 1MiB ; inline comment\n"
				      "gzip = off\n");
	setenv("LADDER_THREADS", "5", 1);
	setenv("LADDER_MAX_BODY", "2MiB", 1);
	setenv("LADDER_DATA", "/srv/env", 1);
	setenv("LADDER_GZIP_MIN", "", 1); /* empty counts as unset */
	CHECK_INT(load(&c, err, sizeof(err), "--config", (char *)path, "--max-body=3MiB",
		       "--token-ttl", "2h", NULL),
		  LD_CONFIG_OK);
	CHECK_STR(err, "");
	CHECK_STR(c.config_file, path);
	CHECK_STR(c.listen_host, "10.0.0.1");
	CHECK_INT(c.listen_port, 9000);
	CHECK_STR(ld_config_source(&c, "listen"), "file");
	CHECK_INT(c.max_connections, 50);
	CHECK_STR(ld_config_source(&c, "max_connections"), "file");
	CHECK(!c.gzip);
	CHECK_STR(ld_config_source(&c, "gzip"), "file");
	CHECK_INT(c.threads, 5);
	CHECK_STR(ld_config_source(&c, "threads"), "env");
	CHECK_STR(c.data_dir, "/srv/env");
	CHECK_STR(ld_config_source(&c, "data"), "env");
	CHECK_INT(c.max_body, 3 * 1024 * 1024);
	CHECK_STR(ld_config_source(&c, "max_body"), "flag");
	CHECK_INT(c.token_ttl_ms, 7200000);
	CHECK_STR(ld_config_source(&c, "token_ttl"), "flag");
	CHECK_INT(c.gzip_min, 1024);
	CHECK_STR(ld_config_source(&c, "gzip_min"), "default");

	/* LADDER_CONFIG names the file when --config does not. */
	setenv("LADDER_CONFIG", path, 1);
	CHECK_INT(load(&c, err, sizeof(err), NULL), LD_CONFIG_OK);
	CHECK_INT(c.listen_port, 9000);
	clear_env();
}

static void test_flag_forms(void)
{
	struct ld_config c;
	char err[256] = "";

	clear_env();
	/* A bare boolean flag means on; a following bool word is its value. */
	CHECK_INT(load(&c, err, sizeof(err), "--gzip", "off", "--sync=no", "--log-requests",
		       "--threads", "2", NULL),
		  LD_CONFIG_OK);
	CHECK(!c.gzip);
	CHECK(!c.sync);
	CHECK(c.log_requests);
	CHECK_INT(c.threads, 2);
	CHECK_INT(load(&c, err, sizeof(err), "--sync=off", "--sync", NULL), LD_CONFIG_OK);
	CHECK(c.sync);
	CHECK_INT(load(&c, err, sizeof(err), "--listen", "[::1]:7000", "--data=", NULL), -EINVAL);
	CHECK_STR(err, "--data: must not be empty");
	CHECK_INT(load(&c, err, sizeof(err), "--listen", "[::1]:7000", NULL), LD_CONFIG_OK);
	CHECK_STR(c.listen_host, "::1");
	CHECK_INT(c.listen_port, 7000);
}

static void test_flag_errors(void)
{
	struct ld_config c;
	char err[256];

	clear_env();
	CHECK_INT(load(&c, err, sizeof(err), "--max-body", "12q", NULL), -EINVAL);
	CHECK_STR(err, "--max-body: '12q' is not a size (try 64KiB)");
	CHECK_INT(load(&c, err, sizeof(err), "--liste", "1.2.3.4:5", NULL), -EINVAL);
	CHECK_STR(err, "unknown option '--liste' (did you mean --listen?)");
	CHECK_INT(load(&c, err, sizeof(err), "--frobnicate", NULL), -EINVAL);
	CHECK_STR(err, "unknown option '--frobnicate' (see --help)");
	CHECK_INT(load(&c, err, sizeof(err), "extra", NULL), -EINVAL);
	CHECK_STR(err, "unexpected argument 'extra' (options start with --)");
	CHECK_INT(load(&c, err, sizeof(err), "--threads", "2", "-x", NULL), -EINVAL);
	CHECK_STR(err, "unexpected argument '-x' (options start with --)");
	CHECK_INT(load(&c, err, sizeof(err), "--threads", NULL), -EINVAL);
	CHECK_STR(err, "--threads needs a value");
	CHECK_INT(load(&c, err, sizeof(err), "--threads", "257", NULL), -EINVAL);
	CHECK_STR(err, "--threads: 257 is out of range (0 to 256)");
	CHECK_INT(load(&c, err, sizeof(err), "--max-fields=300", NULL), -EINVAL);
	CHECK_STR(err, "--max-fields: 300 is out of range (1 to 256)");
	CHECK_INT(load(&c, err, sizeof(err), "--listen", "127.0.0.1:0", NULL), -EINVAL);
	CHECK(strstr(err, "--listen: '127.0.0.1:0' is not host:port") == err);
	CHECK_INT(load(&c, err, sizeof(err), "--header-timeout", "10", NULL), -EINVAL);
	CHECK_STR(err, "--header-timeout: '10' is not a duration (try 10s, 500ms or 2m)");
	CHECK_INT(load(&c, err, sizeof(err), "--header-timeout", "0s", NULL), -EINVAL);
	CHECK_STR(err, "--header-timeout: 0s is out of range (1ms to 1d)");
	CHECK_INT(load(&c, err, sizeof(err), "--argon2-mem", "4KiB", NULL), -EINVAL);
	CHECK_STR(err, "--argon2-mem: 4KiB is out of range (8KiB to 4GiB)");
	CHECK_INT(load(&c, err, sizeof(err), "--store", "mysql", NULL), -EINVAL);
	CHECK_STR(err, "--store: 'mysql' is not one of: sqlite|postgres|sqlite-deferred");
	CHECK_INT(load(&c, err, sizeof(err), "--gzip=maybe", NULL), -EINVAL);
	CHECK_STR(err, "--gzip: 'maybe' is not a bool (use on or off)");
	CHECK_INT(load(&c, err, sizeof(err), "--config", "/nonexistent/ladder.ini", NULL), -EINVAL);
	CHECK(strstr(err, "--config: cannot read '/nonexistent/ladder.ini': ") == err);
	/* Cross-setting rules name both settings and their sources. */
	CHECK_INT(load(&c, err, sizeof(err), "--write-batch", "9000", NULL), -EINVAL);
	CHECK_STR(err, "write_batch 9000 (flag) is larger than write_queue 8192 (default)");
	CHECK_INT(load(&c, err, sizeof(err), "--max-headers", "4KiB", NULL), -EINVAL);
	CHECK_STR(err, "max_header_line 8KiB (default) is larger than max_headers 4KiB (flag)");
}

static void test_env_errors(void)
{
	struct ld_config c;
	char err[256];

	clear_env();
	setenv("LADDER_THREADS", "0x", 1);
	CHECK_INT(load(&c, err, sizeof(err), NULL), -EINVAL);
	CHECK_STR(err, "LADDER_THREADS: '0x' is not a number");
	/* The flag would fix it, but a bad env value is still an error. */
	CHECK_INT(load(&c, err, sizeof(err), "--threads", "1", NULL), -EINVAL);
	clear_env();
	setenv("LADDER_KEEPALIVE_TIMEOUT", "2d", 1);
	CHECK_INT(load(&c, err, sizeof(err), NULL), -EINVAL);
	CHECK_STR(err, "LADDER_KEEPALIVE_TIMEOUT: 2d is out of range (1ms to 1d)");
	clear_env();
}

static void test_file_errors(void)
{
	static const struct {
		const char *text;
		const char *msg; /* after "PATH:" */
	} cases[] = {
	    {"[server]\nthreads = 2\n\n\n\n\nliste = 1.2.3.4:5\n",
	     "7: unknown key 'liste' in [server] (did you mean 'listen'?)"},
	    {"[server]\nzzzzzz = 1\n", "2: unknown key 'zzzzzz' in [server]"},
	    {"[http]\nlisten = 1.2.3.4:5\n", "2: key 'listen' belongs in [server], not [http]"},
	    {"threads = 2\n", "1: key 'threads' is outside a section (put it under [server])"},
	    {"[nope]\nthreads = 2\n",
	     "2: unknown section [nope] (sections: server, store, auth, http)"},
	    {"[server]\nthreads = 2\nthreads = 3\n", "3: 'threads' is set twice (first on line 2)"},
	    {"[server]\nthreads = two\n", "2: threads: 'two' is not a number"},
	    {"[http]\nmax_body = 12q\n", "2: max_body: '12q' is not a size (try 64KiB)"},
	    {"[server]\nthreads\n", "2: not 'key = value' or '[section]'"},
	    {"[server\nthreads = 1\n", "1: not 'key = value' or '[section]'"},
	    {"[server]\nthreads = 1\n  2\n",
	     "3: indented line continues 'threads' (remove the indentation)"},
	    {"[store]\nwrite_queue = 10\nwrite_batch = 11\n", NULL},
	};
	struct ld_config c;
	char err[1024], want[1024], name[32];
	const char *path;
	size_t i;

	clear_env();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(name, sizeof(name), "bad%zu.ini", i);
		path = write_file(name, cases[i].text);
		err[0] = '\0';
		CHECK_INT(load(&c, err, sizeof(err), "--config", (char *)path, NULL), -EINVAL);
		if (cases[i].msg)
			snprintf(want, sizeof(want), "%s:%s", path, cases[i].msg);
		else
			snprintf(want, sizeof(want),
				 "write_batch 11 (file) is larger than write_queue 10 (file)");
		CHECK_STR(err, want);
	}
}

static void test_file_long_lines_and_lists(void)
{
	struct ld_config c;
	char err[512], text[1400], want[600];
	const char *path,
	    *k1 = "k1:0000000000000000000000000000000000000000000000000000000000000001";
	const char *k2 = "k2:0000000000000000000000000000000000000000000000000000000000000002";

	clear_env();
	/* A list longer than inih's line buffer continues on indented lines. */
	snprintf(text, sizeof(text),
		 "[auth]\ntoken_keys = %s,\n  %s\n\t%s\n[server]\nthreads = 1\n", k1, k2, k1);
	path = write_file("list.ini", text);
	chmod(path, 0600); /* holds keys: else a warning goes to stderr */
	CHECK_INT(load(&c, err, sizeof(err), "--config", (char *)path, NULL), LD_CONFIG_OK);
	snprintf(want, sizeof(want), "%s,%s,%s", k1, k2, k1);
	CHECK_STR(c.token_keys, want);
	CHECK_STR(ld_config_source(&c, "token_keys"), "file");

	/* An over-long line is refused, not split into a second line. */
	memset(text, 0, sizeof(text));
	strcpy(text, "[store]\ndata = /");
	memset(text + strlen(text), 'a', 300);
	strcat(text, "\n");
	path = write_file("long.ini", text);
	CHECK_INT(load(&c, err, sizeof(err), "--config", (char *)path, NULL), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: line longer than", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	/* Flags and env have no line limit: a long key list fits there. */
	memset(text, 0, sizeof(text));
	memset(text, 'z', 1200 < sizeof(text) ? 1200 : sizeof(text) - 1);
	CHECK_INT(load(&c, err, sizeof(err), "--token-keys", text, NULL), LD_CONFIG_OK);
	CHECK_STR(c.token_keys, text);
	clear_env();
}

static void test_secret_never_shown(void)
{
	struct ld_config c;
	char err[4096], *out = NULL, big[3000];
	size_t len = 0;
	FILE *f;
	const char *secret =
	    "kid1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

	clear_env();
	CHECK_INT(load(&c, err, sizeof(err), NULL), LD_CONFIG_OK);
	f = open_memstream(&out, &len);
	ld_config_print(&c, f);
	fclose(f);
	CHECK(strstr(out, "token_keys = (unset) ; default\n") != NULL);
	free(out);

	setenv("LADDER_TOKEN_KEYS", secret, 1);
	CHECK_INT(load(&c, err, sizeof(err), NULL), LD_CONFIG_OK);
	CHECK_STR(c.token_keys, secret);
	out = NULL;
	f = open_memstream(&out, &len);
	ld_config_print(&c, f);
	fclose(f);
	CHECK(strstr(out, "token_keys = (set) ; env\n") != NULL);
	CHECK(strstr(out, "00112233") == NULL);
	CHECK(strstr(out, "[server]\nlisten = 127.0.0.1:8080 ; default\n") != NULL);
	CHECK(strstr(out, "max_body = 64KiB ; default\n") != NULL);
	CHECK(strstr(out, "argon2_mem = 19MiB ; default\n") != NULL);
	CHECK(strstr(out, "token_ttl = 1d ; default\n") != NULL);
	CHECK(strstr(out, "gzip = on ; default\n") != NULL);
	free(out);
	clear_env();

	/* Too long: the message names the setting, not the value. */
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT(load(&c, err, sizeof(err), "--token-keys", big, NULL), -EINVAL);
	CHECK_STR(err, "--token-keys: too long (at most 2047 bytes)");
}

static void test_print_ipv6_and_sources(void)
{
	struct ld_config c;
	char err[256], *out = NULL;
	size_t len = 0;
	FILE *f;

	clear_env();
	CHECK_INT(load(&c, err, sizeof(err), "--listen", "[::1]:8081", "--sync", "off", NULL),
		  LD_CONFIG_OK);
	f = open_memstream(&out, &len);
	ld_config_print(&c, f);
	fclose(f);
	CHECK(strstr(out, "listen = [::1]:8081 ; flag\n") != NULL);
	CHECK(strstr(out, "sync = off ; flag\n") != NULL);
	CHECK(strstr(out, "# config file: (none)\n") != NULL);
	free(out);
}

/* --print-config output, less the secrets' lines, loads back as a config
 * file with the same values. */
static void test_print_loads_back(void)
{
	struct ld_config a, b;
	char err[512], *out = NULL, *line, *next, path[600];
	size_t len = 0;
	FILE *f;

	clear_env();
	CHECK_INT(load(&a, err, sizeof(err), "--listen", "[::1]:9", "--max-body", "3000",
		       "--token-ttl", "90m", "--gzip", "off", "--data", "/srv/x y", NULL),
		  LD_CONFIG_OK);
	f = open_memstream(&out, &len);
	ld_config_print(&a, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/printed.ini", tmpdir);
	f = fopen(path, "w");
	for (line = out; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "token_keys", 10) != 0 && strncmp(line, "admin_token", 11) != 0)
			fprintf(f, "%s\n", line);
	}
	fclose(f);
	free(out);
	CHECK_INT(load(&b, err, sizeof(err), "--config", path, NULL), LD_CONFIG_OK);
	CHECK_STR(err, "");
	memcpy(b.source, a.source, sizeof(a.source));
	memcpy(b.config_file, a.config_file, sizeof(a.config_file));
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	CHECK_STR(b.data_dir, "/srv/x y");
	CHECK_INT(b.token_ttl_ms, 5400000);
}

static void test_help_and_print_config(void)
{
	const char *out;
	char needle[128];
	size_t i;
	int rc;

	clear_env();
	out = capture_stdout(&rc, "--help", NULL);
	CHECK_INT(rc, LD_CONFIG_EXIT_OK);
	CHECK(strncmp(out, "ladder serve: ", 14) == 0);
	CHECK(strstr(out, "\n\nusage: ladder serve [options]\n") != NULL);
	CHECK(strstr(out, "  ladder serve\n") != NULL);
	CHECK(strstr(out, "  ladder serve --listen 0.0.0.0:8080 --threads 2\n") != NULL);
	CHECK(
	    strstr(out, "  LADDER_DATA=/var/lib/ladder ladder serve --config /etc/ladder.ini\n") !=
	    NULL);
	for (i = 0; i < NSETTINGS; i++) {
		snprintf(needle, sizeof(needle), "--%s %s", settings[i].flag, settings[i].metavar);
		CHECK(strstr(out, needle) != NULL);
		snprintf(needle, sizeof(needle), "env %s, key %s, default %s", settings[i].env,
			 settings[i].key, settings[i].def[0] ? settings[i].def : "(empty)");
		if (!strstr(out, needle))
			fprintf(stderr, "help lacks '%s'\n", needle);
		CHECK(strstr(out, needle) != NULL);
	}
	/* -h works too, and wins over mistakes on the same line. */
	out = capture_stdout(&rc, "--bogus", "-h");
	CHECK_INT(rc, LD_CONFIG_EXIT_OK);
	CHECK(strstr(out, "usage: ladder serve [options]") != NULL);

	out = capture_stdout(&rc, "--print-config", "--threads=7");
	CHECK_INT(rc, LD_CONFIG_EXIT_OK);
	CHECK(strstr(out, "threads = 7 ; flag\n") != NULL);
	CHECK(strstr(out, "token_keys = (unset) ; default\n") != NULL);
	out = capture_stdout(&rc, "--print-config", "--threads=x");
	CHECK_INT(rc, -EINVAL);
	CHECK_STR(out, "");
}

/* docs/configuration.md documents every setting with its flag, env var and
 * default; this keeps it true when the table changes. */
static void test_docs_cover_table(void)
{
	static char doc[65536];
	char needle[160], def[64];
	size_t n, i;
	FILE *f = fopen("docs/configuration.md", "r");

	CHECK(f != NULL);
	if (!f)
		return;
	n = fread(doc, 1, sizeof(doc) - 1, f);
	doc[n] = '\0';
	fclose(f);
	for (i = 0; i < NSETTINGS; i++) {
		const char *section = NULL;
		size_t k;

		for (k = 0; k < NSECTIONS; k++)
			if (&settings[i] >= sections[k].opts &&
			    &settings[i] < sections[k].opts + sections[k].nopts)
				section = sections[k].name;
		CHECK(section != NULL);
		if (settings[i].def[0])
			snprintf(def, sizeof(def), "`%s`", settings[i].def);
		else
			snprintf(def, sizeof(def), "(empty)");
		snprintf(needle, sizeof(needle), "| `%s` | `[%s]` | `--%s` | `%s` | %s |",
			 settings[i].key, section ? section : "", settings[i].flag, settings[i].env,
			 def);
		if (!strstr(doc, needle))
			fprintf(stderr, "docs lack row start '%s'\n", needle);
		CHECK(strstr(doc, needle) != NULL);
	}
}

/* ---- the generic machinery: a module's section, a subcommand's table ---- */

struct pg_conf {
	char conninfo[256];
	unsigned pool;
	uint64_t connect_timeout_ms;
};

static struct pg_conf pg;
static unsigned char pg_source[3];

static const struct ld_opt pg_opts[] = {
    {"postgres-conninfo", 0, "conninfo", "LADDER_POSTGRES_CONNINFO", LD_OPT_STR,
     offsetof(struct pg_conf, conninfo), sizeof(pg.conninfo), 0, "", 0, 0, NULL, LD_OPT_SECRET,
     NULL, NULL, "DSN", "libpq connection string"},
    {"postgres-pool", 0, "pool", "LADDER_POSTGRES_POOL", LD_OPT_UINT,
     offsetof(struct pg_conf, pool), sizeof(pg.pool), 0, "8", 1, 1000, NULL, 0, NULL, NULL, "N",
     "connections per process"},
    {"postgres-connect-timeout", 0, "connect_timeout", "LADDER_POSTGRES_CONNECT_TIMEOUT",
     LD_OPT_DUR, offsetof(struct pg_conf, connect_timeout_ms), sizeof(uint64_t), 0, "5s", 1, HOUR,
     NULL, 0, NULL, NULL, "DURATION", "time to open one connection"},
};

static const struct ld_opt_section pg_section = {"postgres", pg_opts, 3, NULL};

/* A store driver registers its own [postgres] section: flags, env, file
 * keys, defaults, sources, --help and --print-config come with it. */
static void test_module_section(void)
{
	static const struct ld_opt_section clash = {"server", pg_opts, 1, NULL};
	struct ld_config c;
	char err[256] = "";
	const char *path, *out;
	int rc;

	clear_env();
	CHECK_INT(ld_config_register(&pg_section, &pg, pg_source), 0);
	CHECK_INT(ld_config_register(&pg_section, &pg, pg_source), -EEXIST);
	CHECK_INT(ld_config_register(&clash, &pg, NULL), -EEXIST);
	CHECK_INT(load(&c, err, sizeof(err), NULL), LD_CONFIG_OK);
	CHECK_INT(pg.pool, 8);
	CHECK_INT(pg.connect_timeout_ms, 5000);
	CHECK_STR(ld_config_source(&c, "pool"), "default");
	path = write_file("pg.ini", "[postgres]\npool = 20\nconninfo = host=db\n");
	setenv("LADDER_POSTGRES_CONNECT_TIMEOUT", "2s", 1);
	CHECK_INT(load(&c, err, sizeof(err), "--config", (char *)path, "--postgres-pool=30", NULL),
		  LD_CONFIG_OK);
	unsetenv("LADDER_POSTGRES_CONNECT_TIMEOUT");
	CHECK_INT(pg.pool, 30);
	CHECK_STR(pg.conninfo, "host=db");
	CHECK_INT(pg.connect_timeout_ms, 2000);
	CHECK_STR(ld_config_source(&c, "pool"), "flag");
	CHECK_STR(ld_config_source(&c, "conninfo"), "file");
	CHECK_STR(ld_config_source(&c, "connect_timeout"), "env");
	CHECK_INT(load(&c, err, sizeof(err), "--postgres-pool", "0", NULL), -EINVAL);
	CHECK_STR(err, "--postgres-pool: 0 is out of range (1 to 1000)");
	CHECK_INT(load(&c, err, sizeof(err), "--postgres-pol", "3", NULL), -EINVAL);
	CHECK_STR(err, "unknown option '--postgres-pol' (did you mean --postgres-pool?)");
	path = write_file("pg2.ini", "[postgres]\npol = 2\n");
	CHECK_INT(load(&c, err, sizeof(err), "--config", (char *)path, NULL), -EINVAL);
	CHECK(strstr(err, "pg2.ini:2: unknown key 'pol' in [postgres] (did you mean 'pool'?)"));
	path = write_file("pg3.ini", "[pgsql]\npool = 2\n");
	CHECK_INT(load(&c, err, sizeof(err), "--config", (char *)path, NULL), -EINVAL);
	CHECK(
	    strstr(err, "unknown section [pgsql] (sections: server, store, auth, http, postgres)"));
	out = capture_stdout(&rc, "--help", NULL);
	CHECK_INT(rc, LD_CONFIG_EXIT_OK);
	CHECK(strstr(out, "\n[postgres]\n  --postgres-conninfo DSN") != NULL);
	CHECK(strstr(out, "env LADDER_POSTGRES_POOL, key pool, default 8, 1 to 1000\n") != NULL);
	out = capture_stdout(&rc, "--print-config", "--postgres-conninfo=host=secret");
	CHECK(strstr(out, "\n[postgres]\nconninfo = (set) ; flag\npool = 8 ; default\n") != NULL);
	CHECK(strstr(out, "secret") == NULL);
	/* The module's section stays registered: leave it as the other tests
	 * expect the defaults. */
	CHECK_INT(load(&c, err, sizeof(err), NULL), LD_CONFIG_OK);
}

struct cmd_conf {
	const char *urls[4];
	int nurls;
	int conns;
	bool quiet;
	const char *out;
	double ratio;
	const char *early;
};

static int p_url(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	struct cmd_conf *c = base;

	if (c->nurls == 4) {
		snprintf(why, n, "more than 4");
		return -EINVAL;
	}
	c->urls[c->nurls++] = v;
	return 0;
}

static int p_ratio(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	char *end;
	double d = strtod(v, &end);

	if (*end || end == v || d < 0) {
		snprintf(why, n, "'%s' is not a ratio", v);
		return -EINVAL;
	}
	*(double *)(void *)((char *)base + o->off) = d;
	return 0;
}

#define CC(f) offsetof(struct cmd_conf, f), sizeof(((struct cmd_conf *)0)->f), 0

static const struct ld_opt cmd_opts[] = {
    {NULL, 0, NULL, NULL, LD_OPT_FN, CC(urls), NULL, 0, 0, NULL, LD_OPT_REPEAT, p_url, NULL, "URL",
     "targets"},
    {"connections", 'c', NULL, NULL, LD_OPT_INT, CC(conns), "16", 1, 100, NULL, 0, NULL, NULL, "N",
     "connections"},
    {"quiet", 'q', NULL, NULL, LD_OPT_SWITCH, CC(quiet), NULL, 0, 0, NULL, 0, NULL, NULL, NULL,
     "no live line"},
    {"read-ratio", 0, NULL, NULL, LD_OPT_FN, CC(ratio), "0.5", 0, 0, NULL, 0, p_ratio, NULL, "R",
     "share of reads"},
    {"json", 0, NULL, NULL, LD_OPT_ARG, CC(out), NULL, 0, 0, NULL, 0, NULL, NULL, "FILE", "report"},
    {"from", 0, NULL, NULL, LD_OPT_ARG, CC(early), NULL, 0, 0, NULL, LD_OPT_EARLY, NULL, NULL,
     "FILE", "inputs"},
};

static const struct ld_opt_section cmd_section = {"load", cmd_opts, 6, NULL};

/* run_cmd parses a NULL-terminated argument list with cmd_opts into c;
 * returns the first failing step's result. */
static int run_cmd(struct cmd_conf *c, bool fold, char *err, size_t errlen, ...)
{
	static struct ld_optset set;
	static struct ld_args args;
	char *argv[32];
	int argc = 0, rc;
	va_list ap;

	argv[argc++] = "demo";
	va_start(ap, errlen);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	memset(c, 0, sizeof(*c));
	ld_optset_init(&set, "demo");
	set.fold_underscore = fold;
	set.summary = "a demo";
	set.usage = "[options] URL...";
	set.examples = "  ladder demo -c 4 http://x/\n";
	rc = ld_optset_add(&set, &cmd_section, c, NULL);
	if (rc == 0)
		rc = ld_optset_defaults(&set, err, errlen);
	if (rc == 0)
		rc = ld_optset_parse(&set, argc, argv, &args, err, errlen);
	if (rc == 0)
		rc = ld_optset_apply(&set, &args, true, err, errlen);
	/* The early pass ran alone: the rest is still at its defaults. */
	if (rc == 0 && c->conns != 16)
		rc = -EBADMSG;
	if (rc == 0)
		rc = ld_optset_apply(&set, &args, false, err, errlen);
	return rc;
}

/* A table with secrets of both kinds and no positional arguments: what a
 * mistake around them prints must never hold the secret. */
struct secret_conf {
	unsigned pin;
	char key[64];
};

#define SC(f) offsetof(struct secret_conf, f), sizeof(((struct secret_conf *)0)->f), 0

static const struct ld_opt secret_opts[] = {
    {"pin", 0, NULL, NULL, LD_OPT_UINT, SC(pin), "1", 1, 9999, NULL, LD_OPT_SECRET, NULL, NULL, "N",
     "a secret number"},
    {"key", 'k', NULL, NULL, LD_OPT_STR, SC(key), "", 0, 0, NULL, LD_OPT_SECRET, NULL, NULL, "KEY",
     "a secret string"},
};

static const struct ld_opt_section secret_section = {"secrets", secret_opts, 2, NULL};

static int run_secret(struct secret_conf *c, char *err, size_t errlen, ...)
{
	static struct ld_optset set;
	static struct ld_args args;
	char *argv[16];
	int argc = 0, rc;
	va_list ap;

	argv[argc++] = "demo";
	va_start(ap, errlen);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	memset(c, 0, sizeof(*c));
	ld_optset_init(&set, "demo");
	rc = ld_optset_add(&set, &secret_section, c, NULL);
	if (rc == 0)
		rc = ld_optset_defaults(&set, err, errlen);
	if (rc == 0)
		rc = ld_optset_parse(&set, argc, argv, &args, err, errlen);
	if (rc == 0)
		rc = ld_optset_apply(&set, &args, false, err, errlen);
	return rc;
}

static void test_secret_not_echoed_in_errors(void)
{
	struct secret_conf c;
	struct ld_config lc;
	char err[256];

	/* Out of range: the bounds are shown, the value is not. */
	CHECK_INT(run_secret(&c, err, sizeof(err), "--pin", "123456", NULL), -EINVAL);
	CHECK_STR(err, "--pin: (secret) is out of range (1 to 9999)");
	/* "--key= s3cr3t": the stray argument is most likely the secret. */
	CHECK_INT(run_secret(&c, err, sizeof(err), "--key=", "s3cr3t", NULL), -EINVAL);
	CHECK_STR(err, "unexpected argument after --key (not shown: it may be the secret; write "
		       "--key=VALUE)");
	/* Given apart, the value is not named either (only the flag is). */
	CHECK_INT(run_secret(&c, err, sizeof(err), "--key", "a=b", "s3cr3t", NULL), -EINVAL);
	CHECK_STR(err, "unexpected argument after --key (not shown: it may be the secret; write "
		       "--key=VALUE)");
	CHECK_INT(run_secret(&c, err, sizeof(err), "-k", "", "-s3cr3t", NULL), -EINVAL);
	CHECK_STR(err, "unexpected argument after -k (not shown: it may be the secret)");
	/* The real table: the admin token. */
	clear_env();
	CHECK_INT(load(&lc, err, sizeof(err), "--admin-token=", "s3cr3t", NULL), -EINVAL);
	CHECK_STR(err, "unexpected argument after --admin-token (not shown: it may be the secret; "
		       "write --admin-token=VALUE)");
	/* Anywhere else a stray argument is shown as ever. */
	CHECK_INT(load(&lc, err, sizeof(err), "--admin-token=", "--threads", "2", "stray", NULL),
		  -EINVAL);
	CHECK_STR(err, "unexpected argument 'stray' (options start with --)");
	clear_env();
}

/* A subcommand's table: short flags, switches, positional arguments, custom
 * parsers, the early pass, and the messages. */
static void test_subcommand_table(void)
{
	struct cmd_conf c;
	char err[256];

	CHECK_INT(run_cmd(&c, false, err, sizeof(err), NULL), 0);
	CHECK_INT(c.conns, 16);
	CHECK_DBL(c.ratio, 0.5, 0);
	CHECK_INT(run_cmd(&c, false, err, sizeof(err), "-c", "4", "http://a/", "--quiet", "-",
			  "--read-ratio=0.25", "--json", "r.json", "--from", "f", "-c", "5", NULL),
		  0);
	CHECK_INT(c.conns, 5); /* the last one wins */
	CHECK(c.quiet);
	CHECK_INT(c.nurls, 2);
	CHECK_STR(c.urls[0], "http://a/");
	CHECK_STR(c.urls[1], "-");
	CHECK_DBL(c.ratio, 0.25, 0);
	CHECK_STR(c.out, "r.json");
	CHECK_STR(c.early, "f");
	CHECK_INT(run_cmd(&c, false, err, sizeof(err), "-c", "0", NULL), -EINVAL);
	CHECK_STR(err, "-c: 0 is out of range (1 to 100)");
	CHECK_INT(run_cmd(&c, false, err, sizeof(err), "--connections", "x", NULL), -EINVAL);
	CHECK_STR(err, "--connections: 'x' is not a number");
	CHECK_INT(run_cmd(&c, false, err, sizeof(err), "--read-ratio", "-1", NULL), -EINVAL);
	CHECK_STR(err, "--read-ratio: '-1' is not a ratio");
	CHECK_INT(run_cmd(&c, false, err, sizeof(err), "--quiet=yes", NULL), -EINVAL);
	CHECK_STR(err, "--quiet: takes no value (got 'yes')");
	CHECK_INT(run_cmd(&c, false, err, sizeof(err), "-x", NULL), -EINVAL);
	CHECK_STR(err, "unknown option '-x' (see --help)");
	CHECK_INT(run_cmd(&c, false, err, sizeof(err), "--jsn", "f", NULL), -EINVAL);
	CHECK_STR(err, "unknown option '--jsn' (did you mean --json?)");
	CHECK_INT(run_cmd(&c, false, err, sizeof(err), "--json", NULL), -EINVAL);
	CHECK_STR(err, "--json needs a value");
	CHECK_INT(run_cmd(&c, false, err, sizeof(err), "a", "b", "c", "d", "e", NULL), -EINVAL);
	CHECK_STR(err, "URL: more than 4");
	CHECK_INT(run_cmd(&c, false, err, sizeof(err), "--read_ratio", "1", NULL), -EINVAL);
	CHECK_STR(err, "unknown option '--read_ratio' (did you mean --read-ratio?)");
	CHECK_INT(run_cmd(&c, true, err, sizeof(err), "--read_ratio", "1", NULL), 0);
	CHECK_DBL(c.ratio, 1, 0);
}

/* The generated --help lists every flag with its default and range, and the
 * examples. */
static void test_subcommand_help(void)
{
	static struct ld_optset set;
	struct cmd_conf c;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f != NULL);
	if (!f)
		return;
	ld_optset_init(&set, "demo");
	set.summary = "a demo";
	set.usage = "[options] URL...";
	set.examples = "  ladder demo -c 4 http://x/\n";
	CHECK_INT(ld_optset_add(&set, &cmd_section, &c, NULL), 0);
	CHECK_INT(ld_optset_add(&set, &cmd_section, &c, NULL), -EEXIST);
	ld_optset_usage(&set, f);
	fclose(f);
	CHECK(strncmp(buf, "ladder demo: a demo\n\nusage: ladder demo [options] URL...\n", 57) ==
	      0);
	CHECK(strstr(buf, "\nexamples:\n  ladder demo -c 4 http://x/\n") != NULL);
	CHECK(strstr(buf, "\nload:\n") != NULL);
	CHECK(strstr(buf, "  -c, --connections N          connections (default 16; 1 to 100)\n") !=
	      NULL);
	CHECK(strstr(buf, "  -q, --quiet                  no live line\n") != NULL);
	CHECK(strstr(buf, "      --read-ratio R           share of reads (default 0.5)\n") != NULL);
	CHECK(strstr(buf, "%%") == NULL);
	free(buf);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_defaults);
	RUN(test_table_conventions);
	RUN(test_parse_size);
	RUN(test_parse_duration);
	RUN(test_parse_bool_uint);
	RUN(test_parse_hostport);
	RUN(test_format_roundtrip);
	RUN(test_precedence_and_sources);
	RUN(test_flag_forms);
	RUN(test_flag_errors);
	RUN(test_env_errors);
	RUN(test_file_errors);
	RUN(test_file_long_lines_and_lists);
	RUN(test_secret_never_shown);
	RUN(test_secret_not_echoed_in_errors);
	RUN(test_print_ipv6_and_sources);
	RUN(test_print_loads_back);
	RUN(test_help_and_print_config);
	RUN(test_docs_cover_table);
	RUN(test_subcommand_table);
	RUN(test_subcommand_help);
	RUN(test_module_section);
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return unit_finish();
}
