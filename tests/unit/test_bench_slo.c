/*
 * test_bench_slo.c - the --slo grammar and its verdicts.
 */
#include "bench/slo.h"
#include "unit.h"

static void test_parse_good(void)
{
	struct ld_slo s;
	char err[160];

	CHECK_INT(ld_slo_parse(&s, "p99<5ms, p99.9<=20ms,errors<0.1%,rps>=900", err, sizeof(err)),
		  0);
	CHECK_INT(s.n, 4);
	CHECK_INT(s.t[0].metric, LD_SLO_PCT);
	CHECK_DBL(s.t[0].pct, 99, 1e-12);
	CHECK_INT(s.t[0].op, LD_SLO_LT);
	CHECK_DBL(s.t[0].value, 5000, 1e-9);
	CHECK_DBL(s.t[1].pct, 99.9, 1e-12);
	CHECK_INT(s.t[1].op, LD_SLO_LE);
	CHECK_INT(s.t[2].metric, LD_SLO_ERRORS);
	CHECK_DBL(s.t[2].value, 0.001, 1e-12);
	CHECK_INT(s.t[3].metric, LD_SLO_RPS);
	CHECK_INT(s.t[3].op, LD_SLO_GE);
	CHECK_DBL(s.t[3].value, 900, 1e-12);
	CHECK_INT(ld_slo_parse(&s, "service.p50<250us,max<1s,mean<2,errors<0.01", err, sizeof(err)),
		  0);
	CHECK(s.t[0].service);
	CHECK_DBL(s.t[0].value, 250, 1e-9);
	CHECK_DBL(s.t[1].value, 1e6, 1e-6);
	CHECK_DBL(s.t[2].value, 2000, 1e-9); /* bare number: milliseconds */
	CHECK_DBL(s.t[3].value, 0.01, 1e-12);
}

static void test_parse_bad(void)
{
	static const char *const bad[] = {
	    "",		"p99",	    "p99<",	     "p99<<5ms",   "latency<5ms",
	    "p0<1ms",	"p101<1ms", "p99<5parsecs",  "errors<5x%", "errors<200%",
	    "p99<5ms,", ",p99<5ms", "service.rps>1", "rps>fast",   "p99=5ms",
	    "p99<-1ms", "pxx<1ms",
	};
	struct ld_slo s;
	char err[160];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = ld_slo_parse(&s, bad[i], err, sizeof(err));
		if (rc == 0)
			fprintf(stderr, "accepted: '%s'\n", bad[i]);
		CHECK(rc < 0);
	}
	CHECK(ld_slo_parse(&s, "p99<1ms,bogus>3", err, sizeof(err)) < 0);
	CHECK(strstr(err, "bogus") != NULL);
	/* Finite in ms, infinite in microseconds (found by fuzzing). */
	CHECK(ld_slo_parse(&s, "p9<6E307", err, sizeof(err)) < 0);
}

static void test_check(void)
{
	struct ld_slo s;
	struct ld_hdr lat, svc;
	char err[160], why[256];

	ld_hdr_init(&lat, LD_HDR_HOUR_US, 3);
	ld_hdr_init(&svc, LD_HDR_HOUR_US, 3);
	/* Empty histograms break latency terms: no answers, no evidence. */
	CHECK_INT(ld_slo_parse(&s, "p99<5ms", err, sizeof(err)), 0);
	CHECK_INT(ld_slo_check(&s, &lat, &svc, 0, 0, why, sizeof(why)), 1);
	CHECK(strstr(why, "no answers") != NULL);
	for (int i = 0; i < 990; i++) {
		ld_hdr_record(&lat, 1000);
		ld_hdr_record(&svc, 900);
	}
	for (int i = 0; i < 10; i++) {
		ld_hdr_record(&lat, 50000);
		ld_hdr_record(&svc, 1000);
	}
	CHECK_INT(ld_slo_parse(&s, "p99<5ms,p99.9<5ms,service.p99.9<5ms,errors<1%,rps>=100", err,
			       sizeof(err)),
		  0);
	/* p99 is the 990th value (1 ms): holds; p99.9 is 50 ms: broken. */
	CHECK_INT(ld_slo_check(&s, &lat, &svc, 0.005, 150, why, sizeof(why)), 1);
	CHECK(strstr(why, "p99.9<5ms broken") != NULL);
	CHECK(strstr(why, "service") == NULL);
	CHECK_INT(ld_slo_check(&s, &lat, &svc, 0.02, 50, why, sizeof(why)), 3);
	CHECK(strstr(why, "errors<1% broken: 2%") != NULL);
	CHECK(strstr(why, "rps>=100 broken") != NULL);
	/* Boundaries: < is strict, <= is not. */
	CHECK_INT(ld_slo_parse(&s, "max<=50ms", err, sizeof(err)), 0);
	CHECK_INT(ld_slo_check(&s, &lat, &svc, 0, 0, why, sizeof(why)), 0);
	CHECK_INT(ld_slo_parse(&s, "max<50ms", err, sizeof(err)), 0);
	CHECK_INT(ld_slo_check(&s, &lat, &svc, 0, 0, why, sizeof(why)), 1);
	ld_hdr_release(&lat);
	ld_hdr_release(&svc);
}

int main(void)
{
	RUN(test_parse_good);
	RUN(test_parse_bad);
	RUN(test_check);
	return unit_finish();
}
