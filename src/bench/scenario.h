/*
 * scenario.h - the ladder scenario: seed users and items through the API,
 * then drive its read/write mix with Zipf-distributed keys.
 *
 * Seeding (POST /v1/users, POST /v1/sessions for each user's token, then
 * POST /v1/items with that token) runs as closed-loop batches of
 * seed_concurrency requests with a progress bar on stderr; creating a user
 * hashes a password with argon2id on the server, which is slow on purpose.
 * The mix: reads are GET /v1/items/{id} (3 in 4) and GET
 * /v1/users/{id}/items (1 in 4); writes are POST /v1/items as the acting
 * user, with the user's bearer token. Acting users and read items are drawn
 * from Zipf(s) over ranks, so a few users and items are hot.
 *
 * With --photo-share F, that share of the mix's requests are the steps of
 * photo uploads, as a client makes them: POST /v1/photos (201: the photo
 * and its upload URL), PUT of the photo's bytes to that URL (204), POST
 * /v1/photos/{id}/complete (202). A slot of the schedule goes to the next
 * step of an upload under way before a new request is drawn; a new upload
 * starts with probability F / (3 - 2F), so three steps per upload make F of
 * the requests. Uploads are by users drawn uniformly (the server caps the
 * uploads in flight per user). Photo steps count as writes in the mix.
 *
 * Threading: ld_scenario_setup on the main thread; the workload callbacks
 * run on engine threads and only read the seeded tables (writes add items
 * nobody reads back in the run).
 */
#ifndef LD_BENCH_SCENARIO_H
#define LD_BENCH_SCENARIO_H

#include <stddef.h>

#include "bench/engine.h"
#include "bench/opts.h"
#include "http/client.h"

struct ld_scenario;

/* ld_scenario_setup seeds the service at u (connecting to addr) and returns
 * a scenario ready to drive. Returns 0, or a negative errno with the reason
 * in err (e.g. the API answered 404: not a ladder server). */
int ld_scenario_setup(struct ld_scenario **out, const struct ld_bench_opts *o,
		      const struct ld_http_url *u, const struct sockaddr_storage *addr,
		      struct ld_bench_extra *x, char *err, size_t errlen);

/* ld_scenario_workload fills wl to drive the mix. */
void ld_scenario_workload(struct ld_scenario *s, struct ld_bench_workload *wl);

/* ld_scenario_photos copies the photo mix's counts into x (after a run). */
void ld_scenario_photos(struct ld_scenario *s, struct ld_bench_extra *x);

void ld_scenario_free(struct ld_scenario *s);

#endif
