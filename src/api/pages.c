/*
 * pages.c - the keyset-paginated lists' shared parts (api.h): the limit and
 * cursor of a page request, and the page's JSON, {"NAME":[...],
 * "next_cursor":...}. The item list and the photo list were two copies.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/params.h"
#include "base/json.h"

int ld_api_page_params(struct ld_api_req *q, unsigned *limit, int64_t *before)
{
	const char *v;
	size_t n, i;

	*limit = 20;
	*before = 0;
	if (ld_query_param(q->r->h.query, q->r->h.query_len, "limit", &v, &n)) {
		unsigned long x = 0;

		for (i = 0; i < n && i < 4 && v[i] >= '0' && v[i] <= '9'; i++)
			x = x * 10 + (unsigned long)(v[i] - '0');
		if (n == 0 || i != n || x < 1 || x > LD_LIST_MAX) {
			ld_api_problem(q, 400, "limit must be an integer from 1 to 100");
			return -1;
		}
		*limit = (unsigned)x;
	}
	if (ld_query_param(q->r->h.query, q->r->h.query_len, "cursor", &v, &n) &&
	    ld_cursor_decode(v, n, before) != 0) {
		ld_api_problem(q, 400, "cursor is not one this server gave out");
		return -1;
	}
	return 0;
}

void ld_api_respond_page(struct ld_api_req *q, const char *name, const struct ld_api_page *pg)
{
	const char *row = pg->rows;
	struct ld_json j;
	char cursor[16];
	unsigned i;

	ld_json_init(&j, &q->r->out_body);
	ld_json_obj_begin(&j);
	ld_json_key(&j, name);
	ld_json_arr_begin(&j);
	for (i = 0; i < pg->n; i++)
		pg->write(&j, row + (size_t)i * pg->size);
	ld_json_arr_end(&j);
	/* The cursor is the last row's id: the next page starts below it. */
	ld_json_key(&j, "next_cursor");
	if (pg->has_more && pg->n) {
		ld_cursor_encode(pg->id_of(row + (size_t)(pg->n - 1) * pg->size), cursor,
				 sizeof(cursor));
		ld_json_str(&j, cursor);
	} else {
		ld_json_null(&j);
	}
	ld_json_obj_end(&j);
	ld_api_respond_json(q, &j, 200);
}
