/*
 * bench_cli.c - `ladder bench`: flag parsing and the run's top level.
 */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"

int ld_bench_main(int argc, char **argv)
{
	int rc = 2;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: ladder bench [options] URL...\n");
		rc = 0;
		goto out;
	}
	fprintf(stderr, "ladder bench: not built yet\n");
out:
	return rc;
}
