/*
 * serve_config.h - serve's configuration load for the unit tests of a
 * module's settings: load_serve(err, errlen, "--flag", "value", ..., NULL)
 * runs ld_config_load on "serve" and the arguments, as `ladder serve` would.
 *
 * Included by one test file each; the helper is static.
 */
#ifndef LD_SERVE_CONFIG_H
#define LD_SERVE_CONFIG_H

#include <stdarg.h>
#include <stddef.h>

#include "base/config.h"

/* load_serve runs serve's configuration load on a NULL-terminated list of
 * arguments after "serve" (at most 14). */
static int load_serve(char *err, size_t errlen, ...)
{
	struct ld_config c;
	char *argv[16];
	int argc = 0;
	va_list ap;

	argv[argc++] = "serve";
	va_start(ap, errlen);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	return ld_config_load(&c, argc, argv, err, errlen);
}

#endif
