/*
 * bench.h - the `ladder bench` subcommand.
 */
#ifndef LD_BENCH_H
#define LD_BENCH_H

/* ld_bench_main runs the load generator; argv[0] is "bench". */
int ld_bench_main(int argc, char **argv);

#endif
