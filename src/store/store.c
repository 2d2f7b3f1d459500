/*
 * store.c - the parts of the storage interface every driver shares: default
 * settings, the driver registry and status names.
 */
#include "store/store.h"

#include <string.h>

#include "store/deferred.h"
#include "store/postgres.h"
#include "store/sqlite.h"

void ld_store_config_default(struct ld_store_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->data_dir = "./data";
	cfg->write_queue_max = 8192;
	cfg->write_batch_max = 1024;
	cfg->busy_timeout_ms = 5000;
	cfg->synchronous_full = true;
	cfg->op_timeout_ms = 2000;
	cfg->idem_retention_ms = 24ULL * 3600 * 1000;
}

/* Drivers known to this binary; a new backend is one more row. */
static const struct ld_store_vt *const drivers[] = {
    &ld_sqlite_vt, &ld_pg_vt, &ld_deferred_vt, /* tests only: see deferred.h */
};

const struct ld_store_vt *ld_store_driver(const char *name)
{
	const struct ld_store_vt *vt = NULL;
	size_t i;

	for (i = 0; name && i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		if (strcmp(drivers[i]->name, name) == 0) {
			vt = drivers[i];
			break;
		}
	}
	return vt;
}

const char *ld_store_status_name(int status)
{
	switch (status) {
	case LD_STORE_OK:
		return "ok";
	case LD_STORE_NOT_FOUND:
		return "not_found";
	case LD_STORE_CONFLICT:
		return "conflict";
	case LD_STORE_PRECONDITION:
		return "precondition";
	case LD_STORE_FORBIDDEN:
		return "forbidden";
	case LD_STORE_BUSY:
		return "busy";
	case LD_STORE_UNAVAILABLE:
		return "unavailable";
	case LD_STORE_ERROR:
		return "error";
	case LD_STORE_TIMEOUT:
		return "timeout";
	default:
		return "unknown";
	}
}
