/*
 * serve.c - `ladder serve` and `ladder migrate`: configuration in, a running
 * server (or a migrated database) out.
 *
 * Start-up order: the data directory's lock first (one process per
 * directory), then the listeners (no other server on the address), and only
 * then the token key and the store: a second process that must not run is
 * refused before it has touched anything of the first one's.
 */
#include "api/serve.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/idempotency.h"
#include "base/config.h"
#include "base/lockfile.h"
#include "blob/blob.h"
#include "blob/blob_opts.h"
#include "http/server.h"
#include "http/status.h"
#include "media/media.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/stats.h"
#include "redis/redis.h"
#include "store/postgres.h"

/* usable_cores counts the CPUs this process may run on (taskset, cgroups'
 * cpusets), not the machine's. */
static unsigned usable_cores(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		n = CPU_COUNT(&set);
		if (n > 0)
			return (unsigned)n;
	}
	n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/* metrics_init gives the metrics their labels: the application's routes,
 * HTTP's method names (0 is "OTHER", the catch-all) and the status table's
 * codes. */
static int metrics_init(const struct ld_server_app *app)
{
	static const char *methods[LD_HTTP_METHOD_COUNT];
	static unsigned statuses[LD_HTTP_STATUS_MAX];
	struct ld_metrics_labels l = {
	    .routes = app->route_names,
	    .nroutes = app->nroutes,
	    .methods = methods,
	    .nmethods = LD_HTTP_METHOD_COUNT,
	    .statuses = statuses,
	};

	for (unsigned i = 0; i < LD_HTTP_METHOD_COUNT; i++)
		methods[i] = ld_http_method_name((enum ld_http_method)i);
	l.nstatuses = ld_http_status_codes(statuses, LD_HTTP_STATUS_MAX);
	return ld_metrics_init(&l);
}

static void store_config(const struct ld_config *c, struct ld_store_config *sc)
{
	ld_store_config_default(sc);
	sc->data_dir = c->data_dir;
	sc->write_queue_max = c->write_queue;
	sc->write_batch_max = c->write_batch;
	sc->synchronous_full = c->sync;
	sc->test_commit_delay_us = c->test_commit_delay_ms * 1000;
	sc->op_timeout_ms = (unsigned)c->store_timeout_ms;
	sc->idem_retention_ms = ld_idem_cfg.retention_ms;
}

static void server_config(const struct ld_config *c, struct ld_server_config *sc)
{
	memset(sc, 0, sizeof(*sc));
	snprintf(sc->host, sizeof(sc->host), "%s", c->listen_host);
	sc->port = c->listen_port;
	sc->threads = c->threads ? c->threads : usable_cores();
	ld_http_limits_default(&sc->limits);
	sc->limits.request_line_max = c->max_request_line;
	sc->limits.header_line_max = c->max_header_line;
	sc->limits.headers_max = c->max_headers;
	sc->limits.fields_max = c->max_fields;
	sc->max_body = c->max_body;
	sc->header_timeout_ms = c->header_timeout_ms;
	sc->body_timeout_ms = c->body_timeout_ms;
	sc->keepalive_timeout_ms = c->keepalive_timeout_ms;
	sc->write_timeout_ms = c->write_timeout_ms;
	sc->shutdown_timeout_ms = c->shutdown_timeout_ms;
	sc->drain_delay_ms = c->drain_delay_ms;
	sc->max_connections = c->max_connections;
	sc->gzip = c->gzip;
	sc->gzip_min = c->gzip_min;
	sc->log_requests = c->log_requests;
}

/* open_store opens the configured driver; 0, or 1 with a message printed. */
static int open_store(const struct ld_config *c, const struct ld_store_vt **vt,
		      struct ld_store **store)
{
	struct ld_store_config sc;
	char err[512] = "";
	int rc;

	*vt = ld_store_driver(c->store);
	if (!*vt) {
		fprintf(stderr,
			"ladder: store: unknown driver '%s' (known: sqlite, postgres, "
			"sqlite-deferred)\n",
			c->store);
		return 2;
	}
	store_config(c, &sc);
	rc = (*vt)->open(&sc, store, err, sizeof(err));
	if (rc && *vt == &ld_pg_vt) {
		fprintf(stderr, "ladder: store postgres: %s\n", err[0] ? err : strerror(-rc));
		return rc == -EINVAL ? 2 : 1;
	}
	if (rc) {
		fprintf(stderr, "ladder: store %s in '%s': %s\n", c->store, c->data_dir,
			err[0] ? err : strerror(-rc));
		return 1;
	}
	return 0;
}

/* open_cache opens the configured cache level (none: nothing); 0, or the
 * exit status with a message printed. */
static int open_cache(const struct ld_cache_config *cc, const struct ld_config *c, unsigned nloops,
		      struct ld_api *api)
{
	char err[256] = "";
	const char *src = ld_config_source(c, "mode");
	int rc;

	api->cvt = ld_cache_driver(cc->mode, err, sizeof(err));
	if (!api->cvt && err[0]) {
		fprintf(stderr, "ladder serve: %s: %s\n",
			!src || !strcmp(src, "flag") ? "--cache"
			: !strcmp(src, "env")	     ? "LADDER_CACHE"
						     : "config file [cache] mode",
			err);
		return 2;
	}
	if (!api->cvt)
		return 0;
	rc = api->cvt->open(cc, nloops, &api->cache, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "ladder serve: %s\n", err);
		api->cvt = NULL;
		return rc == -EINVAL ? 2 : 1;
	}
	/* A per-process cache is exact only while this process makes every
	 * write (SQLite: the data directory is locked to it). On a shared store
	 * another node's writes reach this cache only by its TTL. */
	if (api->cvt == &ld_cache_local && strcmp(c->store, "sqlite") &&
	    strcmp(c->store, "sqlite-deferred"))
		ld_log_event("warn",
			     "cache local with a shared store: writes made by other nodes are "
			     "seen here only after cache_ttl; run several nodes with --cache redis "
			     "(or none)",
			     NULL);
	if (cc->test_fill_delay_ms)
		ld_log_event("warn",
			     "test_cache_fill_delay is set: every cache fill waits (test only)",
			     NULL);
	return 0;
}

int ld_serve_main(int argc, char **argv)
{
	static struct ld_api api;
	static struct ld_cache_config cache_cfg;
	static struct ld_redis_config redis_cfg;
	struct ld_config cfg;
	struct ld_server_config scfg;
	struct ld_server_app app;
	struct ld_lockfile lock = {-1};
	struct ld_listeners ls = {0};
	char err[512] = "";
	const char *const *profile_routes;
	unsigned nprofile;
	int rc, store_open = 0;

	static struct ld_blob_opts blob_opts;
	static unsigned char blob_sources[LD_BLOB_NOPTS];

	if (ld_photos_register() != 0 ||
	    ld_config_register(&ld_blob_section, &blob_opts, blob_sources) != 0) {
		fprintf(stderr, "ladder serve: [photos] or [blob] settings clash with another "
				"section\n");
		return 1;
	}
	if (ld_idem_register() != 0) {
		fprintf(stderr,
			"ladder serve: [idempotency] settings clash with another section\n");
		return 1;
	}
	if (ld_adm_register() != 0) {
		fprintf(stderr, "ladder serve: [admission] settings clash with another section\n");
		return 1;
	}
	if (ld_rl_register() != 0) {
		fprintf(stderr, "ladder serve: [ratelimit] settings clash with another section\n");
		return 1;
	}
	if (ld_cache_config_register(&cache_cfg) != 0 ||
	    ld_redis_config_register(&redis_cfg) != 0) {
		fprintf(stderr, "ladder serve: [cache] or [redis] settings clash with another "
				"section\n");
		return 1;
	}
	cache_cfg.redis = &redis_cfg;
	/* Drivers' own sections ([postgres]) join the settings too. */
	if (ld_pg_config_register() != 0) {
		fprintf(stderr, "ladder serve: [postgres] settings clash with another section\n");
		return 1;
	}
	rc = ld_config_load(&cfg, argc, argv, err, sizeof(err));
	if (rc == LD_CONFIG_EXIT_OK) {
		rc = 0;
		goto out;
	}
	if (rc) {
		fprintf(stderr, "ladder serve: %s\n", err);
		rc = 2;
		goto out;
	}
	/* A bad cache mode is a usage error: refused before anything is
	 * locked or bound. */
	rc = open_cache(&cache_cfg, &cfg, cfg.threads ? cfg.threads : usable_cores(), &api);
	if (rc)
		goto out;
	if (sodium_init() < 0) {
		fprintf(stderr, "ladder serve: libsodium failed to initialise\n");
		rc = 1;
		goto out;
	}
	if (ld_lockfile_acquire(&lock, cfg.data_dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "ladder serve: %s\n", err);
		rc = 1;
		goto out;
	}
	server_config(&cfg, &scfg);
	ld_rl_cfg.redis = &redis_cfg;
	ld_adm_cfg.store_timeout_ms = cfg.store_timeout_ms;
	if (ld_adm_setup(scfg.threads, err, sizeof(err)) != 0) {
		fprintf(stderr, "ladder serve: %s\n", err);
		rc = 2;
		goto out;
	}
	if (ld_rl_setup(scfg.threads, err, sizeof(err)) != 0) {
		fprintf(stderr, "ladder serve: %s\n", err);
		rc = 2;
		goto out;
	}
	if (ld_server_listen(&scfg, &ls, err, sizeof(err)) != 0) {
		fprintf(stderr, "ladder serve: %s\n", err);
		rc = 1;
		goto out;
	}
	rc = ld_auth_init(&api.auth, cfg.token_keys, cfg.data_dir, cfg.argon2_ops,
			  (size_t)cfg.argon2_mem, (int64_t)(cfg.token_ttl_ms / 1000), err,
			  sizeof(err));
	if (rc) {
		const char *src = ld_config_source(&cfg, "token_keys");

		/* Name the place the bad keys came from, as for every setting. */
		fprintf(stderr, "ladder serve: %s%s\n",
			!src || !strcmp(src, "default") ? ""
			: !strcmp(src, "flag")		? "--token-keys: "
			: !strcmp(src, "env")		? "LADDER_TOKEN_KEYS: "
							: "config file token_keys: ",
			err);
		rc = 2;
		goto out;
	}
	ld_api_app(&api, &app);
	rc = metrics_init(&app);
	if (rc) {
		fprintf(stderr, "ladder serve: metrics: more routes, methods or statuses than "
				"the series have room for\n");
		rc = 1;
		goto out;
	}
	api.admin_token = cfg.admin_token;
	api.debug_token_only = strcmp(cfg.debug_allow, "token") == 0;
	api.write_queue_cap = cfg.write_queue;
	if (cfg.test_commit_delay_ms)
		ld_log_event("warn", "test_commit_delay is set: every commit sleeps (test only)",
			     NULL);
	rc = open_store(&cfg, &api.vt, &api.store);
	if (rc)
		goto out;
	store_open = 1;
	/* Photos: the bytes in the blob store ([blob]), the header checks
	 * with libvips (one thread: it only reads headers here). */
	rc =
	    ld_blob_open_opts(&blob_opts, cfg.data_dir, &api.blob_vt, &api.blobs, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "ladder serve: %s\n", err);
		rc = rc == -EINVAL ? 2 : 1;
		goto out;
	}
	if (ld_media_init(argv[0], 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "ladder serve: %s\n", err);
		rc = 1;
		goto out;
	}
	profile_routes = ld_api_profile_routes(&nprofile);
	rc = ld_obs_init(&(struct ld_obs_config){.nloops = scfg.threads ? scfg.threads : 1,
						 .route_names = profile_routes,
						 .nroutes = nprofile,
						 .stage_timing = cfg.stage_timing});
	if (rc) {
		fprintf(stderr, "ladder serve: stats: %s\n", strerror(-rc));
		rc = 1;
		goto out;
	}
	rc = ld_server_run(&scfg, &ls, &app, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "ladder serve: %s\n", err);
		rc = 1;
		goto out;
	}
	/* Every loop is gone, so every request is answered; the store now
	 * commits whatever is still queued before it closes. */
	api.vt->close(api.store);
	store_open = 0;
	ld_log_event("info", rc == 0 ? "stopped cleanly" : "stopped; connections were cut", NULL);
	/* Cut connections are still a clean exit for a supervisor: every
	 * acknowledged write is committed. */
	rc = 0;
out:
	if (store_open)
		api.vt->close(api.store);
	if (api.cvt)
		api.cvt->close(api.cache);
	api.cvt = NULL;
	api.cache = NULL;
	ld_obs_fini();
	ld_listeners_close(&ls);
	ld_lockfile_release(&lock);
	if (api.blobs)
		api.blob_vt->close(api.blobs);
	return rc;
}

int ld_migrate_main(int argc, char **argv)
{
	const struct ld_store_vt *vt;
	struct ld_store *store;
	struct ld_config cfg;
	struct ld_lockfile lock = {-1};
	char err[512] = "";
	int rc;

	/* Drivers' own sections ([postgres]) join the settings first. */
	(void)ld_pg_config_register();
	rc = ld_config_load(&cfg, argc, argv, err, sizeof(err));
	if (rc == LD_CONFIG_EXIT_OK) {
		rc = 0;
		goto out;
	}
	if (rc) {
		fprintf(stderr, "ladder migrate: %s\n", err);
		rc = 2;
		goto out;
	}
	/* A running server has the store open: migrating under it would
	 * change the schema its statements were prepared for. */
	if (ld_lockfile_acquire(&lock, cfg.data_dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "ladder migrate: %s\n", err);
		rc = 1;
		goto out;
	}
	rc = open_store(&cfg, &vt, &store);
	if (rc)
		goto out;
	vt->close(store);
	if (vt == &ld_pg_vt)
		printf("ladder migrate: postgres store is at the current schema\n");
	else
		printf("ladder migrate: %s store in '%s' is at the current schema\n", cfg.store,
		       cfg.data_dir);
out:
	ld_lockfile_release(&lock);
	return rc;
}
