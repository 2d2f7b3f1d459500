/*
 * fuzz_pg_replicas.c - the --pg-replicas list splitter against arbitrary
 * text. What it accepts is at most 8 entries, each non-empty, with no
 * space or tab at either end, each found in the input after the one before
 * it, with only a comma (and spaces or tabs) between two of them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg_replica.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static int blank(char c)
{
	return c == ' ' || c == '\t';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ld_pg_rep_set set;
	char err[256], *text;
	const char *at;
	unsigned i;
	size_t n;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (ld_pg_rep_set_init(&set, text, 1000000000ULL, NULL, err, sizeof(err)) != 0) {
		check(set.n == 0);
		check(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		free(text);
		return 0;
	}
	check(set.n <= LD_PG_REPLICAS_MAX);
	at = text;
	for (i = 0; i < set.n; i++) {
		const char *e = set.r[i].conninfo, *found;

		n = strlen(e);
		check(n > 0 && !blank(e[0]) && !blank(e[n - 1]));
		found = strstr(at, e);
		check(found != NULL);
		if (i > 0) {
			const char *p = at;
			int commas = 0;

			for (; p < found; p++) {
				check(blank(*p) || *p == ',');
				commas += *p == ',';
			}
			check(commas == 1);
		}
		at = found + n;
	}
	ld_pg_rep_set_free(&set);
	free(text);
	return 0;
}
