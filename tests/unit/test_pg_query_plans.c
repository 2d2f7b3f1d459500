/*
 * test_pg_query_plans.c - every statement the PostgreSQL driver prepares,
 * planned on a populated database: none may read users, items or
 * idempotency_keys with a Seq Scan. Each is planned as the driver runs it, a prepared statement,
 * twice: with the example values (a custom plan) and as the generic plan a connection settles on
 * after a few executions.
 *
 * The test starts its own PostgreSQL 15 (initdb into a temp dir, a free
 * loopback port, as the postgres user when run as root) and always stops it.
 * PostgreSQL is a test dependency (scripts/deps.sh test): when initdb is
 * missing the test fails, it does not skip.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/postgres.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"
#define USERS  20000
#define ITEMS  100000

static char dir[] = "/tmp/ladder-pgplan-XXXXXX";
static pid_t postmaster = -1;
static int port;
static bool as_root;

/* run_as waits for argv (as the postgres user when we are root). */
static int run_as(char *const argv[], bool wait_it, pid_t *pidp)
{
	struct passwd *pw = as_root ? getpwnam("postgres") : NULL;
	pid_t pid;
	int st;

	if (as_root && !pw)
		return -ENOENT;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd;
		char logp[128];

		snprintf(logp, sizeof(logp), "%s/log", dir);
		fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (pw && (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	if (!wait_it) {
		*pidp = pid;
		return 0;
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		p = ntohs(a.sin_port);
	close(fd);
	return p;
}

static PGconn *connect_db(const char *db)
{
	char ci[256];

	snprintf(ci, sizeof(ci), "hostaddr=127.0.0.1 port=%d dbname=%s user=postgres", port, db);
	return PQconnectdb(ci);
}

static void cluster_stop(void)
{
	char cmd[256];

	if (postmaster > 0) {
		kill(postmaster, SIGINT); /* fast shutdown */
		waitpid(postmaster, NULL, 0);
		postmaster = -1;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static int cluster_start(void)
{
	char data[128], sock[160], portv[16];
	struct passwd *pw;
	int i, rc;

	as_root = geteuid() == 0;
	if (!mkdtemp(dir))
		return -errno;
	chmod(dir, 0755);
	if (as_root) {
		pw = getpwnam("postgres");
		if (!pw || chown(dir, pw->pw_uid, pw->pw_gid) != 0)
			return -EPERM;
	}
	snprintf(data, sizeof(data), "%s/data", dir);
	{
		char *argv[] = {PG_BIN "/initdb", "-D",	       data,	     "-U", "postgres",
				"--auth=trust",	  "--no-sync", "--locale=C", NULL};

		rc = run_as(argv, true, NULL);
		if (rc != 0)
			return rc < 0 ? rc : -EIO;
	}
	for (i = 0; i < 5; i++) {
		PGconn *c;
		int tries;

		port = free_port();
		snprintf(portv, sizeof(portv), "%d", port);
		snprintf(sock, sizeof(sock), "unix_socket_directories=%s", dir);
		char *argv[] = {PG_BIN "/postgres",	      "-D", data, "-p", portv, "-c",
				"listen_addresses=127.0.0.1", "-c", sock, NULL};

		if (run_as(argv, false, &postmaster) != 0)
			return -EIO;
		for (tries = 0; tries < 300; tries++) {
			if (waitpid(postmaster, NULL, WNOHANG) == postmaster) {
				postmaster = -1;
				break;
			}
			c = connect_db("postgres");
			if (PQstatus(c) == CONNECTION_OK) {
				PQfinish(c);
				return 0;
			}
			PQfinish(c);
			usleep(100000);
		}
		if (postmaster > 0) {
			kill(postmaster, SIGKILL);
			waitpid(postmaster, NULL, 0);
			postmaster = -1;
		}
	}
	return -ETIMEDOUT;
}

static bool exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

static PGconn *db;

/* populate: the driver's schema (its own migration) and enough rows that a
 * scan costs more than an index search. */
static void test_populate(void)
{
	char sql[512];
	unsigned i;

	for (i = 0; i < ld_pg_nmigrations; i++)
		CHECK(exec_ok(db, ld_pg_migrations[i].sql));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO users SELECT g, 'user' || g, 'User ' || g, '$argon2id$x', g, g, 1"
		 " FROM generate_series(1, %d) g",
		 USERS);
	CHECK(exec_ok(db, sql));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO items SELECT g, 1 + g %% %d, 'item'::bytea, g, g, 1"
		 " FROM generate_series(1, %d) g",
		 USERS, ITEMS);
	CHECK(exec_ok(db, sql));
	/* Keys of many users, a tenth of them expired (the example time of the
	 * statements is in the middle of their expiry times). */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO idempotency_keys SELECT 1 + g %% %d, 'key-' || g, 'fp'::bytea, 201,"
		 " g, 'item'::bytea, g, g, 1, g, 1699999000000 + g * 100"
		 " FROM generate_series(1, %d) g",
		 USERS, ITEMS);
	CHECK(exec_ok(db, sql));
	CHECK(exec_ok(db, "ANALYZE"));
}

/* explain returns the plan text of statement i executed with its examples,
 * custom (generic = false) or generic. */
static void explain(unsigned i, bool generic, char *out, size_t cap)
{
	const struct ld_pg_stmt *s = &ld_pg_stmts[i];
	char q[512];
	size_t n = 0;
	unsigned j;
	PGresult *r;
	int row;

	out[0] = '\0';
	exec_ok(db, generic ? "SET plan_cache_mode = force_generic_plan"
			    : "SET plan_cache_mode = force_custom_plan");
	n = (size_t)snprintf(q, sizeof(q), "EXPLAIN EXECUTE %s", s->name);
	for (j = 0; j < s->nparams; j++)
		n += (size_t)snprintf(q + n, sizeof(q) - n, "%s%s", j ? ", " : "(", s->example[j]);
	if (s->nparams)
		snprintf(q + n, sizeof(q) - n, ")");
	r = PQexec(db, q);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(out, cap, "EXPLAIN failed: %s", PQresultErrorMessage(r));
		PQclear(r);
		return;
	}
	n = 0;
	for (row = 0; row < PQntuples(r) && n < cap; row++)
		n += (size_t)snprintf(out + n, cap - n, "%s\n", PQgetvalue(r, row, 0));
	PQclear(r);
}

static void test_every_statement_uses_an_index(void)
{
	static const Oid oids[] = {[LD_PG_INT8] = 20, [LD_PG_TEXT] = 25, [LD_PG_BYTEA] = 17};
	char plan[8192];
	unsigned i, j, g;

	for (i = 0; i < LD_PG_SQL_COUNT; i++) {
		const struct ld_pg_stmt *s = &ld_pg_stmts[i];
		Oid types[LD_PG_PARAMS_MAX];
		PGresult *r;

		for (j = 0; j < s->nparams; j++)
			types[j] = oids[s->types[j]];
		r = PQprepare(db, s->name, s->sql, (int)s->nparams, types);
		CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
		PQclear(r);
		for (g = 0; g < 2; g++) {
			explain(i, g == 1, plan, sizeof(plan));
			if (strstr(plan, "EXPLAIN failed") || strstr(plan, "Seq Scan on users") ||
			    strstr(plan, "Seq Scan on items") ||
			    strstr(plan, "Seq Scan on idempotency_keys")) {
				fprintf(stderr, "%s (%s plan):\n%s", s->name,
					g ? "generic" : "custom", plan);
				CHECK(!"a statement reads a table with a Seq Scan");
			}
		}
	}
}

/* The list must walk the (user_id, id DESC) index: a page is a range scan,
 * no sort of the user's items. */
static void test_list_walks_the_index(void)
{
	char plan[8192];
	unsigned g;

	for (g = 0; g < 2; g++) {
		explain(LD_PG_ITEM_LIST, g == 1, plan, sizeof(plan));
		CHECK(strstr(plan, "items_user_id") != NULL);
		if (!strstr(plan, "items_user_id"))
			fprintf(stderr, "%s", plan);
	}
}

/* A key is found by its primary key, and the reaper takes its batch from
 * the expiry index, not by reading every key. */
static void test_idempotency_keys_use_their_indexes(void)
{
	static const unsigned pk[] = {LD_PG_IDEM_GET, LD_PG_IDEM_CLEAR};
	char plan[8192];
	unsigned g, i;

	for (g = 0; g < 2; g++) {
		for (i = 0; i < sizeof(pk) / sizeof(pk[0]); i++) {
			explain(pk[i], g == 1, plan, sizeof(plan));
			CHECK(strstr(plan, "idempotency_keys_pkey") != NULL);
			if (!strstr(plan, "idempotency_keys_pkey"))
				fprintf(stderr, "%s", plan);
		}
		explain(LD_PG_IDEM_REAP, g == 1, plan, sizeof(plan));
		CHECK(strstr(plan, "idempotency_keys_expires") != NULL);
		CHECK(strstr(plan, "Tid Scan on idempotency_keys") != NULL);
		if (!strstr(plan, "idempotency_keys_expires") || !strstr(plan, "Tid Scan"))
			fprintf(stderr, "%s", plan);
	}
}

int main(void)
{
	int rc;

	rc = cluster_start();
	if (rc != 0) {
		fprintf(stderr, "cannot start PostgreSQL (%s): %s\n", PG_BIN, strerror(-rc));
		cluster_stop();
		return 1;
	}
	db = connect_db("postgres");
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s", PQerrorMessage(db));
		PQfinish(db);
		cluster_stop();
		return 1;
	}
	RUN(test_populate);
	RUN(test_every_statement_uses_an_index);
	RUN(test_list_walks_the_index);
	RUN(test_idempotency_keys_use_their_indexes);
	PQfinish(db);
	cluster_stop();
	return unit_finish();
}
