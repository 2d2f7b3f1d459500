/*
 * main.c - subcommand dispatch only. Each subcommand parses its own flags and
 * returns the process exit status: 0 success, 1 runtime failure, 2 bad usage
 * or configuration.
 */
#include <stdio.h>
#include <string.h>

#include "api/serve.h"
#include "jobs/worker.h"
#include "media/thumbproc.h"
#include "bench/bench.h"
#include "plan/plan.h"

#ifndef LD_VERSION
#define LD_VERSION "0.1.0"
#endif

struct subcommand {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
    {"serve", ld_serve_main, "run the HTTP/JSON API server"},
    {"migrate", ld_migrate_main, "create or upgrade the database schema, then exit"},
    {"worker", ld_worker_main, "run jobs from the queue: thumbnails and object removal"},
    {"bench", ld_bench_main, "open-loop load generator with honest percentiles"},
    {"plan", ld_plan_main, "capacity planner: assumptions and measurements to servers and cost"},
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: ladder <command> [options]\n\ncommands:\n");
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\n'ladder <command> --help' shows a command's options and examples.\n"
		   "examples:\n"
		   "  ladder serve --listen 127.0.0.1:8080 --data ./data\n"
		   "  ladder bench --rate 1000 --duration 30s http://127.0.0.1:8080/healthz\n"
		   "  ladder plan --users 10M --months 36\n");
}

int main(int argc, char **argv)
{
	size_t i;
	int rc = 2;

	if (argc < 2) {
		usage(stderr);
		goto out;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		rc = 0;
		goto out;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("ladder %s\n", LD_VERSION);
		rc = 0;
		goto out;
	}
	/* Not listed: the worker's own child (media/thumbproc.h). */
	if (!strcmp(argv[1], "thumbnailer")) {
		rc = ld_thumbproc_child_main(argc - 1, argv + 1);
		goto out;
	}
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		if (!strcmp(argv[1], subcommands[i].name)) {
			rc = subcommands[i].main(argc - 1, argv + 1);
			goto out;
		}
	}
	fprintf(stderr, "ladder: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
out:
	return rc;
}
