/*
 * pg_resolve.h - host names of a libpq conninfo resolved on libuv's thread
 * pool, so that a loop thread never waits for DNS: PQconnectStart resolves
 * `host=` names itself, blocking, unless `hostaddr` is given.
 *
 * ld_pg_hosts_parse reads the conninfo once (at open); when it names hosts
 * without addresses, each connection attempt calls ld_pg_resolve, which
 * looks every name up with uv_getaddrinfo and answers with the parameters
 * for PQconnectStartParams (expand_dbname = 1): the conninfo itself as
 * `dbname`, then `host`, `hostaddr` and `port` lists that give libpq one
 * entry per address found, in the resolver's order, so it still tries them
 * in turn (a name with an IPv6 and an IPv4 address is two hosts). Entries
 * that need no lookup (an IP address, a Unix socket directory) pass as
 * they are. A name that does not resolve is left out, as libpq skips a
 * host it cannot reach; none left is an error.
 */
#ifndef LD_PG_RESOLVE_H
#define LD_PG_RESOLVE_H

#include <stddef.h>
#include <uv.h>

struct ld_pg_hosts;

/* ld_pg_hosts_parse sets *out to the hosts to resolve, or NULL when the
 * conninfo needs no lookup (hostaddr given, only addresses or socket
 * directories). 0, or -EINVAL (a conninfo libpq refuses; err says why) or
 * -ENOMEM. */
int ld_pg_hosts_parse(const char *conninfo, struct ld_pg_hosts **out, char *err, size_t errlen);

void ld_pg_hosts_free(struct ld_pg_hosts *h);

/* Called once on the loop by ld_pg_resolve: status 0 with kw/vals (NULL
 * terminated, valid only during the call), or a negative errno with err (a
 * line for the log). */
typedef void (*ld_pg_resolved_fn)(void *arg, unsigned tag, int status, const char *const *kw,
				  const char *const *vals, const char *err);

/* ld_pg_resolve starts the lookups on loop (h must outlive them). done runs
 * exactly once on the loop thread, with arg and tag: later, or before this
 * returns when no lookup could even be started; the caller keeps arg valid
 * until then (there is no cancel). 0, or -ENOMEM (then done never runs). */
int ld_pg_resolve(uv_loop_t *loop, const struct ld_pg_hosts *h, void *arg, unsigned tag,
		  ld_pg_resolved_fn done);

#endif
