/* The PostgreSQL driver's read routing (store/pg_replica.h): the replica
 * list, lag as the loop measures it, rotation in and out, and which node a
 * read with or without a token goes to. Pure bookkeeping: no database. */
#include "unit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/config.h"
#include "base/json.h"
#include "store/pg_replica.h"
#include "store/postgres.h"
#include "serve_config.h"

#define MS 1000000ULL

static int refuse_bad(const char *conninfo, char *why, size_t whylen)
{
	if (strstr(conninfo, "bad")) {
		snprintf(why, whylen, "no good");
		return -EINVAL;
	}
	return 0;
}

static void test_split(void)
{
	struct ld_pg_rep_set s;
	char err[256] = "";

	CHECK_INT(ld_pg_rep_set_init(&s, "", 1000 * MS, NULL, err, sizeof(err)), 0);
	CHECK_INT(s.n, 0);
	CHECK_INT(ld_pg_rep_set_init(&s, "host=a port=1,host=b port=2", 1000 * MS, NULL, err,
				     sizeof(err)),
		  0);
	CHECK_INT(s.n, 2);
	CHECK_STR(s.r[0].conninfo, "host=a port=1");
	CHECK_STR(s.r[1].conninfo, "host=b port=2");
	ld_pg_rep_set_free(&s);
	/* A multi-host conninfo keeps its commas; so does a quoted value. */
	CHECK_INT(ld_pg_rep_set_init(&s,
				     "host=a,b port=1,2 , postgresql://u@c,d/db, "
				     "password='x,y=z' host=e,postgres://f",
				     1000 * MS, NULL, err, sizeof(err)),
		  0);
	CHECK_INT(s.n, 4);
	CHECK_STR(s.r[0].conninfo, "host=a,b port=1,2");
	CHECK_STR(s.r[1].conninfo, "postgresql://u@c,d/db");
	CHECK_STR(s.r[2].conninfo, "password='x,y=z' host=e");
	CHECK_STR(s.r[3].conninfo, "postgres://f");
	ld_pg_rep_set_free(&s);
	CHECK_INT(s.n, 0);
}

static void test_split_errors_name_the_place(void)
{
	struct ld_pg_rep_set s;
	char err[256] = "";

	CHECK_INT(ld_pg_rep_set_init(&s, "host=a,host=bad password=secret", 1000 * MS, refuse_bad,
				     err, sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "--pg-replicas: replica 2 is not a valid conninfo: no good");
	CHECK(!strstr(err, "secret"));
	CHECK_INT(s.n, 0);
	CHECK_INT(ld_pg_rep_set_init(&s, "host=a,", 1000 * MS, NULL, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "--pg-replicas: replica 2 is empty");
	CHECK_INT(ld_pg_rep_set_init(&s, "host=a, ,host=b", 1000 * MS, NULL, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "--pg-replicas: replica 2 is empty");
	CHECK_INT(ld_pg_rep_set_init(&s, ",host=b", 1000 * MS, NULL, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "--pg-replicas: replica 1 is empty");
	CHECK_INT(ld_pg_rep_set_init(&s,
				     "host=a,host=b,host=c,host=d,host=e,host=f,host=g,"
				     "host=h,host=i",
				     1000 * MS, NULL, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "--pg-replicas: more than 8 replicas");
}

static void test_sample_interval(void)
{
	struct ld_pg_rep_set s = {.max_lag_ns = 1000 * MS};

	CHECK_INT(ld_pg_rep_sample_ms(&s), 100);
	s.max_lag_ns = 200 * MS;
	CHECK_INT(ld_pg_rep_sample_ms(&s), 50);
	s.max_lag_ns = 10 * MS;
	CHECK_INT(ld_pg_rep_sample_ms(&s), 10);
}

static struct ld_pg_rep_set set;
static struct ld_pg_rep_loop lp;

static void two_replicas(uint64_t max_lag_ns)
{
	char err[128];

	CHECK_INT(ld_pg_rep_set_init(&set, "host=r1,host=r2", max_lag_ns, NULL, err, sizeof(err)),
		  0);
	ld_pg_rep_loop_init(&lp, &set);
}

static unsigned route(uint64_t min_pos, bool *forced)
{
	return ld_pg_rep_route(&lp, true, min_pos, forced);
}

static void test_rotation_needs_up_and_a_replay_position(void)
{
	bool forced;

	two_replicas(1000 * MS);
	CHECK_INT(route(0, &forced), 0); /* none up */
	CHECK(!forced);
	ld_pg_rep_up(&lp, 1, true);
	CHECK_INT(route(0, &forced), 0); /* up, but not read yet */
	CHECK_INT(atomic_load(&set.r[0].up_loops), 1);
	ld_pg_rep_replayed(&lp, 1, 100, 1 * MS);
	CHECK(lp.r[0].in);
	CHECK_INT(atomic_load(&set.r[0].in_loops), 1);
	CHECK_INT(route(0, &forced), 1);
	CHECK_INT(route(0, &forced), 1);
	ld_pg_rep_up(&lp, 2, true);
	ld_pg_rep_replayed(&lp, 2, 100, 1 * MS);
	/* In turn. */
	CHECK_INT(route(0, &forced), 2);
	CHECK_INT(route(0, &forced), 1);
	CHECK_INT(route(0, &forced), 2);
	/* A read that must see the primary. */
	CHECK_INT(ld_pg_rep_route(&lp, false, 0, &forced), 0);
	CHECK(!forced);
	CHECK_INT(atomic_load(&set.primary_reads), 3);
	CHECK_INT(atomic_load(&set.r[0].reads), 3);
	CHECK_INT(atomic_load(&set.r[1].reads), 2);
	/* Down: out at once, and back only after a new position. */
	ld_pg_rep_up(&lp, 1, false);
	CHECK(!lp.r[0].in);
	CHECK_INT(atomic_load(&set.r[0].outs), 1);
	CHECK_INT(route(0, &forced), 2);
	CHECK_INT(route(0, &forced), 2);
	ld_pg_rep_up(&lp, 1, true);
	CHECK_INT(route(0, &forced), 2);
	ld_pg_rep_replayed(&lp, 1, 100, 2 * MS);
	CHECK_INT(atomic_load(&set.r[0].ins), 2);
	/* A node that says it is not in recovery (no replay position). */
	ld_pg_rep_replayed(&lp, 2, 0, 3 * MS);
	CHECK(!lp.r[1].in);
	ld_pg_rep_loop_fini(&lp);
	CHECK_INT(atomic_load(&set.r[0].in_loops), 0);
	CHECK_INT(atomic_load(&set.r[0].up_loops), 0);
	CHECK_INT(atomic_load(&set.r[1].up_loops), 0);
	ld_pg_rep_set_free(&set);
}

static void test_token_reads(void)
{
	bool forced;

	two_replicas(1000 * MS);
	ld_pg_rep_up(&lp, 1, true);
	ld_pg_rep_up(&lp, 2, true);
	ld_pg_rep_replayed(&lp, 1, 500, 1 * MS);
	ld_pg_rep_replayed(&lp, 2, 300, 1 * MS);
	/* Only a replica that has replayed the token's position. */
	CHECK_INT(route(400, &forced), 1);
	CHECK_INT(route(400, &forced), 1);
	CHECK(!forced);
	CHECK_INT(route(300, &forced), 2);
	CHECK_INT(route(500, &forced), 1);
	/* None has: the primary, counted as forced by the token. */
	CHECK_INT(route(501, &forced), 0);
	CHECK(forced);
	CHECK_INT(atomic_load(&set.token_primary_reads), 1);
	/* No replica in rotation: the primary, not the token's doing. */
	ld_pg_rep_up(&lp, 1, false);
	ld_pg_rep_up(&lp, 2, false);
	CHECK_INT(route(501, &forced), 0);
	CHECK(!forced);
	CHECK_INT(atomic_load(&set.token_primary_reads), 1);
	CHECK_INT(atomic_load(&set.primary_reads), 2);
	ld_pg_rep_loop_fini(&lp);
	ld_pg_rep_set_free(&set);
}

static void test_lag_from_the_primary_samples(void)
{
	bool forced;

	two_replicas(1000 * MS);
	ld_pg_rep_up(&lp, 1, true);
	ld_pg_rep_primary_at(&lp, 100, 0);
	ld_pg_rep_replayed(&lp, 1, 100, 50 * MS);
	CHECK(lp.r[0].in);
	CHECK_INT(lp.r[0].lag_ns, 0); /* caught up: 0, however idle */
	ld_pg_rep_replayed(&lp, 1, 100, 5000 * MS);
	CHECK_INT(lp.r[0].lag_ns, 0);
	CHECK(lp.r[0].in);
	/* The primary moves on at 6 s; the replica does not (paused). */
	ld_pg_rep_primary_at(&lp, 200, 6000 * MS);
	ld_pg_rep_replayed(&lp, 1, 100, 6400 * MS);
	CHECK_INT(lp.r[0].lag_ns, 400 * MS);
	CHECK(lp.r[0].in);
	CHECK_INT(route(0, &forced), 1);
	ld_pg_rep_replayed(&lp, 1, 100, 7000 * MS);
	CHECK(lp.r[0].in); /* exactly the bound: still in */
	ld_pg_rep_replayed(&lp, 1, 100, 7001 * MS);
	CHECK(!lp.r[0].in);
	CHECK_INT(atomic_load(&set.r[0].outs), 1);
	CHECK_INT(route(0, &forced), 0);
	CHECK_INT(atomic_load(&set.r[0].lag_us), 1001000);
	/* Later writes: the lag still counts from the first one missed. */
	ld_pg_rep_primary_at(&lp, 300, 7100 * MS);
	ld_pg_rep_replayed(&lp, 1, 100, 7200 * MS);
	CHECK_INT(lp.r[0].lag_ns, 1200 * MS);
	/* Replayed past the first: counted from the next one. */
	ld_pg_rep_replayed(&lp, 1, 250, 7300 * MS);
	CHECK_INT(lp.r[0].lag_ns, 200 * MS);
	CHECK(lp.r[0].in); /* within half the bound: back */
	CHECK_INT(atomic_load(&set.r[0].ins), 2);
	ld_pg_rep_loop_fini(&lp);
	ld_pg_rep_set_free(&set);
}

static void test_back_only_within_half_the_bound(void)
{
	two_replicas(1000 * MS);
	ld_pg_rep_up(&lp, 1, true);
	ld_pg_rep_primary_at(&lp, 100, 0);
	ld_pg_rep_replayed(&lp, 1, 50, 1200 * MS);
	CHECK(!lp.r[0].in); /* never in: 1.2 s behind */
	ld_pg_rep_primary_at(&lp, 200, 1300 * MS);
	ld_pg_rep_replayed(&lp, 1, 100, 1900 * MS); /* 600 ms behind */
	CHECK(!lp.r[0].in);
	ld_pg_rep_replayed(&lp, 1, 100, 1800 * MS); /* 500 ms */
	CHECK(lp.r[0].in);
	ld_pg_rep_replayed(&lp, 1, 100, 2200 * MS); /* 900 ms: stays */
	CHECK(lp.r[0].in);
	ld_pg_rep_loop_fini(&lp);
	ld_pg_rep_set_free(&set);
}

static void test_samples_coalesce_and_age_out(void)
{
	uint64_t t;

	two_replicas(1000 * MS);
	ld_pg_rep_up(&lp, 1, true);
	/* A write every 0.1 ms for 5 s: samples within 10 ms (bound / 100)
	 * are one, and those older than twice the bound go. */
	for (t = 0; t < 5000 * MS; t += MS / 10)
		ld_pg_rep_primary_at(&lp, 1000 + t / 1000, t);
	CHECK(lp.count <= LD_PG_SAMPLES);
	CHECK(lp.count >= 200);
	CHECK(lp.samples[lp.head].t_ns >= 5000 * MS - 2000 * MS - 10 * MS);
	/* A replica far behind everything kept is out. */
	ld_pg_rep_replayed(&lp, 1, 10, 5000 * MS);
	CHECK(!lp.r[0].in);
	CHECK(lp.r[0].lag_ns > 1000 * MS);
	/* Caught up with the newest: lag 0. */
	ld_pg_rep_replayed(&lp, 1, 1000 + 5000 * MS / 1000, 5000 * MS);
	CHECK_INT(lp.r[0].lag_ns, 0);
	CHECK(lp.r[0].in);
	/* Positions going backwards (an old answer) add nothing. */
	t = lp.samples[(lp.head + lp.count - 1) % LD_PG_SAMPLES].pos;
	ld_pg_rep_primary_at(&lp, 5, 5000 * MS);
	CHECK_INT(lp.samples[(lp.head + lp.count - 1) % LD_PG_SAMPLES].pos, t);
	ld_pg_rep_loop_fini(&lp);
	ld_pg_rep_set_free(&set);
}

static void test_render(void)
{
	struct ld_buf b;

	two_replicas(1000 * MS);
	ld_pg_rep_up(&lp, 2, true);
	ld_pg_rep_replayed(&lp, 2, 4242, 0);
	ld_buf_init(&b, 1 << 16);
	ld_pg_rep_render(&set, &b);
	CHECK_INT(ld_buf_error(&b), 0);
	ld_buf_putc(&b, '\0');
	CHECK(strstr(b.data, "ladder_pg_reads_total{target=\"primary\"} 0\n"));
	CHECK(strstr(b.data, "ladder_pg_reads_total{target=\"replica2\"} 0\n"));
	CHECK(strstr(b.data, "ladder_pg_replica_in_rotation{replica=\"1\"} 0\n"));
	CHECK(strstr(b.data, "ladder_pg_replica_in_rotation{replica=\"2\"} 1\n"));
	CHECK(strstr(b.data, "ladder_pg_replica_up{replica=\"2\"} 1\n"));
	CHECK(strstr(b.data, "ladder_pg_replica_replay_lsn{replica=\"2\"} 4242\n"));
	CHECK(strstr(b.data,
		     "ladder_pg_replica_rotation_changes_total{replica=\"2\",to=\"in\"} 1\n"));
	CHECK(!strstr(b.data, "host=")); /* never a conninfo */
	ld_buf_reset(&b);
	{
		struct ld_json j;

		ld_json_init(&j, &b);
		ld_json_obj_begin(&j);
		ld_pg_rep_render_json(&set, &j);
		ld_json_obj_end(&j);
		CHECK_INT(ld_json_finish(&j), 0);
		ld_buf_putc(&b, '\0');
		CHECK_STR(
		    b.data,
		    "{\"primary_reads\":0,\"token_primary_reads\":0,\"max_replica_lag_ms\":1000,"
		    "\"replicas\":[{\"replica\":1,\"reads\":0,\"in_rotation_loops\":0,"
		    "\"up_loops\":0,\"lag_ms\":0,\"replay_lsn\":0,\"rotation_ins\":0,"
		    "\"rotation_outs\":0},{\"replica\":2,\"reads\":0,"
		    "\"in_rotation_loops\":1,\"up_loops\":1,\"lag_ms\":0,"
		    "\"replay_lsn\":4242,\"rotation_ins\":1,\"rotation_outs\":0}]}");
	}
	ld_buf_release(&b);
	ld_pg_rep_loop_fini(&lp);
	ld_pg_rep_set_free(&set);
}

/* The breakers' settings of [postgres] (every node's breaker on every
 * loop): both modes on by default, each one set by its flag, its
 * environment variable or the file, and a bad value refused by name. */
static void test_breaker_settings(void)
{
	char err[256] = "", path[] = "/tmp/ladder-pg-breaker-XXXXXX";
	int fd;

	CHECK_INT(ld_pg_config_register(), 0);
	CHECK_INT(load_serve(err, sizeof(err), NULL), LD_CONFIG_OK);
	CHECK_INT(ld_pg_settings.breaker_failures, 3);
	CHECK_INT(ld_pg_settings.breaker_rate_pct, 50);
	CHECK_INT(ld_pg_settings.breaker_min_calls, 20);
	CHECK_INT(ld_pg_settings.breaker_window_ms, 10000);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd >= 0) {
		static const char ini[] = "[postgres]\nbreaker_window = 30s\n";

		CHECK_INT(write(fd, ini, sizeof(ini) - 1), (int)sizeof(ini) - 1);
		close(fd);
	}
	setenv("LADDER_PG_BREAKER_FAILURE_RATE", "25", 1);
	CHECK_INT(
	    load_serve(err, sizeof(err), "--config", path, "--pg-breaker-min-calls", "8", NULL),
	    LD_CONFIG_OK);
	CHECK_INT(ld_pg_settings.breaker_rate_pct, 25);
	CHECK_INT(ld_pg_settings.breaker_min_calls, 8);
	CHECK_INT(ld_pg_settings.breaker_window_ms, 30000);
	unsetenv("LADDER_PG_BREAKER_FAILURE_RATE");
	unlink(path);
	CHECK_INT(load_serve(err, sizeof(err), "--pg-breaker-failure-rate", "150", NULL), -EINVAL);
	CHECK_STR(err, "--pg-breaker-failure-rate: 150 is out of range (0 to 100)");
	CHECK_INT(load_serve(err, sizeof(err), "--pg-breaker-window", "50ms", NULL), -EINVAL);
	CHECK_STR(err, "--pg-breaker-window: 50ms is out of range (100ms to 1h)");
	CHECK_INT(load_serve(err, sizeof(err), "--pg-breaker-min-calls", "x", NULL), -EINVAL);
	CHECK_STR(err, "--pg-breaker-min-calls: 'x' is not a number");
}

int main(void)
{
	RUN(test_split);
	RUN(test_split_errors_name_the_place);
	RUN(test_sample_interval);
	RUN(test_rotation_needs_up_and_a_replay_position);
	RUN(test_token_reads);
	RUN(test_lag_from_the_primary_samples);
	RUN(test_back_only_within_half_the_bound);
	RUN(test_samples_coalesce_and_age_out);
	RUN(test_render);
	RUN(test_breaker_settings);
	return unit_finish();
}
