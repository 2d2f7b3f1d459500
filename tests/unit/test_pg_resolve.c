/*
 * test_pg_resolve.c - conninfo host names looked up on libuv's thread pool
 * (store/pg_resolve.h): which conninfos need a lookup, and the parameters
 * handed to PQconnectStartParams afterwards (every host with its address,
 * ports matched, names that do not resolve left out).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "store/pg_resolve.h"
#include "unit.h"

struct answer {
	int calls;
	int status;
	unsigned tag;
	char dbname[256], host[256], hostaddr[256], port[256], err[256];
	bool has_port;
};

static void on_done(void *arg, unsigned tag, int status, const char *const *kw,
		    const char *const *vals, const char *err)
{
	struct answer *a = arg;
	unsigned i;

	a->calls++;
	a->status = status;
	a->tag = tag;
	snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
	for (i = 0; kw && kw[i]; i++) {
		char *dst = strcmp(kw[i], "dbname") == 0     ? a->dbname
			    : strcmp(kw[i], "host") == 0     ? a->host
			    : strcmp(kw[i], "hostaddr") == 0 ? a->hostaddr
			    : strcmp(kw[i], "port") == 0     ? a->port
							     : NULL;

		CHECK(dst != NULL);
		if (!dst)
			continue;
		snprintf(dst, 256, "%s", vals[i]);
		if (dst == a->port)
			a->has_port = true;
	}
}

/* resolve parses conninfo, which must need a lookup, and runs it to the
 * end on a loop of its own. */
static void resolve(const char *conninfo, struct answer *a)
{
	struct ld_pg_hosts *h = NULL;
	uv_loop_t loop;
	char err[256] = "";

	memset(a, 0, sizeof(*a));
	CHECK_INT(ld_pg_hosts_parse(conninfo, &h, err, sizeof(err)), 0);
	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_INT(uv_loop_init(&loop), 0);
	CHECK_INT(ld_pg_resolve(&loop, h, a, 7, on_done), 0);
	CHECK_INT(a->calls, 0); /* a lookup was started: the answer comes later */
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(a->calls, 1);
	CHECK_INT(a->tag, 7);
	CHECK_INT(uv_loop_close(&loop), 0);
	ld_pg_hosts_free(h);
}

static void test_what_needs_a_lookup(void)
{
	const char *none[] = {
	    "hostaddr=127.0.0.1 port=5432 dbname=x",
	    "host=db.example hostaddr=10.0.0.5 dbname=x", /* hostaddr given: no lookup */
	    "host=127.0.0.1,::1 port=1,2",
	    "host=/var/run/postgresql",
	    "dbname=x", /* libpq's default: a socket */
	    "postgresql://127.0.0.1:5432/x",
	};
	struct ld_pg_hosts *h;
	char err[256];
	unsigned i;

	for (i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		h = (struct ld_pg_hosts *)1;
		CHECK_INT(ld_pg_hosts_parse(none[i], &h, err, sizeof(err)), 0);
		CHECK(h == NULL);
	}
	CHECK_INT(ld_pg_hosts_parse("host=localhost", &h, err, sizeof(err)), 0);
	CHECK(h != NULL);
	ld_pg_hosts_free(h);
	CHECK_INT(ld_pg_hosts_parse("postgresql://localhost/x", &h, err, sizeof(err)), 0);
	CHECK(h != NULL);
	ld_pg_hosts_free(h);
	CHECK_INT(ld_pg_hosts_parse("host=localhost nonsense=1", &h, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "nonsense") != NULL);
}

static void test_localhost(void)
{
	struct answer a;

	resolve("host=localhost port=5999 dbname=x user=postgres", &a);
	CHECK_INT(a.status, 0);
	CHECK_STR(a.dbname, "host=localhost port=5999 dbname=x user=postgres");
	/* One entry per address; 127.0.0.1 among them. */
	CHECK(strncmp(a.host, "localhost", 9) == 0);
	CHECK(strstr(a.hostaddr, "127.0.0.1") != NULL);
	CHECK(!a.has_port); /* one port: the conninfo's applies to all */
}

static void test_ports_follow_their_hosts(void)
{
	struct answer a;
	size_t n;

	resolve("host=127.0.0.2,localhost,/tmp port=1,2,3", &a);
	CHECK_INT(a.status, 0);
	/* The address and the socket pass as they are; localhost gets as many
	 * entries as it has addresses, each with its own port. */
	CHECK(strncmp(a.host, "127.0.0.2,localhost,", 20) == 0);
	n = strlen(a.host);
	CHECK(n > 5 && strcmp(a.host + n - 5, ",/tmp") == 0);
	CHECK(strncmp(a.hostaddr, "127.0.0.2,", 10) == 0);
	CHECK(strstr(a.hostaddr, "127.0.0.1") != NULL);
	n = strlen(a.hostaddr);
	CHECK(n > 0 && a.hostaddr[n - 1] == ','); /* the socket: empty, libpq's own */
	CHECK(a.has_port);
	CHECK(strncmp(a.port, "1,2", 3) == 0);
	n = strlen(a.port);
	CHECK(n > 2 && strcmp(a.port + n - 2, ",3") == 0);
}

static void test_names_that_do_not_resolve(void)
{
	struct answer a;

	/* .invalid never resolves (RFC 6761). One good host is enough. */
	resolve("host=nothing.invalid,localhost port=5", &a);
	CHECK_INT(a.status, 0);
	CHECK(strncmp(a.host, "localhost", 9) == 0);
	CHECK(strstr(a.hostaddr, "127.0.0.1") != NULL);

	resolve("host=nothing.invalid port=5", &a);
	CHECK_INT(a.status, -EHOSTUNREACH);
	CHECK(strncmp(a.err, "cannot resolve nothing.invalid: ", 32) == 0);
}

int main(void)
{
	RUN(test_what_needs_a_lookup);
	RUN(test_localhost);
	RUN(test_ports_follow_their_hosts);
	RUN(test_names_that_do_not_resolve);
	return unit_finish();
}
