/*
 * serve.h - the `ladder serve` and `ladder migrate` subcommands.
 */
#ifndef LD_SERVE_H
#define LD_SERVE_H

/* ld_serve_main runs the server until SIGTERM/SIGINT and a graceful drain.
 * argv[0] is "serve". Returns 0 after a clean shutdown, 1 on a runtime
 * failure, 2 on bad usage or configuration. */
int ld_serve_main(int argc, char **argv);

/* ld_migrate_main opens the configured store (which applies migrations) and
 * exits. */
int ld_migrate_main(int argc, char **argv);

#endif
