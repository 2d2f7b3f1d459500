/*
 * pg_env.h - a throwaway PostgreSQL 15 for the unit tests that need a real
 * one: initdb into a temp dir, a postmaster on a free loopback port (as the
 * postgres user when run as root: initdb refuses root), always stopped and
 * removed. PostgreSQL is a test dependency (scripts/deps.sh test): when
 * initdb is missing a test fails, it does not skip.
 *
 * Included by one test file each; the helpers are static.
 */
#ifndef LD_PG_ENV_H
#define LD_PG_ENV_H

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG_BIN "/usr/lib/postgresql/15/bin"

static char pg_dir[] = "/tmp/ladder-pgunit-XXXXXX";
static pid_t pg_postmaster = -1;
static int pg_port;
static bool pg_as_root;

/* pg_run waits for argv (as the postgres user when we are root), or with
 * wait_it false leaves it running in *pidp. Its output goes to pg_dir/log. */
static int pg_run(char *const argv[], bool wait_it, pid_t *pidp)
{
	struct passwd *pw = pg_as_root ? getpwnam("postgres") : NULL;
	pid_t pid;
	int st;

	if (pg_as_root && !pw)
		return -ENOENT;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd;
		char logp[128];

		snprintf(logp, sizeof(logp), "%s/log", pg_dir);
		fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (pw && (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	if (!wait_it) {
		*pidp = pid;
		return 0;
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int pg_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		p = ntohs(a.sin_port);
	close(fd);
	return p;
}

/* pg_conninfo writes the conninfo of database db (hostaddr: libpq never
 * resolves a name). */
static void pg_conninfo(const char *db, char *out, size_t cap)
{
	snprintf(out, cap, "hostaddr=127.0.0.1 port=%d dbname=%s user=postgres", pg_port, db);
}

static PGconn *pg_connect(const char *db)
{
	char ci[256];

	pg_conninfo(db, ci, sizeof(ci));
	return PQconnectdb(ci);
}

static void pg_stop(void)
{
	char cmd[256];

	if (pg_postmaster > 0) {
		kill(pg_postmaster, SIGINT); /* fast shutdown */
		waitpid(pg_postmaster, NULL, 0);
		pg_postmaster = -1;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pg_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", pg_dir);
}

/* pg_start: initdb and a postmaster that accepts connections; 0 or a
 * negative errno (call pg_stop either way). */
static int pg_start(void)
{
	char data[128], sock[160], portv[16];
	struct passwd *pw;
	int i, rc;

	pg_as_root = geteuid() == 0;
	if (!mkdtemp(pg_dir))
		return -errno;
	chmod(pg_dir, 0755);
	if (pg_as_root) {
		pw = getpwnam("postgres");
		if (!pw || chown(pg_dir, pw->pw_uid, pw->pw_gid) != 0)
			return -EPERM;
	}
	snprintf(data, sizeof(data), "%s/data", pg_dir);
	{
		char *argv[] = {PG_BIN "/initdb", "-D",	       data,	     "-U", "postgres",
				"--auth=trust",	  "--no-sync", "--locale=C", NULL};

		rc = pg_run(argv, true, NULL);
		if (rc != 0)
			return rc < 0 ? rc : -EIO;
	}
	for (i = 0; i < 5; i++) {
		PGconn *c;
		int tries;

		pg_port = pg_free_port();
		snprintf(portv, sizeof(portv), "%d", pg_port);
		snprintf(sock, sizeof(sock), "unix_socket_directories=%s", pg_dir);
		char *argv[] = {PG_BIN "/postgres",	      "-D", data, "-p", portv, "-c",
				"listen_addresses=127.0.0.1", "-c", sock, NULL};

		if (pg_run(argv, false, &pg_postmaster) != 0)
			return -EIO;
		for (tries = 0; tries < 300; tries++) {
			if (waitpid(pg_postmaster, NULL, WNOHANG) == pg_postmaster) {
				pg_postmaster = -1;
				break;
			}
			c = pg_connect("postgres");
			if (PQstatus(c) == CONNECTION_OK) {
				PQfinish(c);
				return 0;
			}
			PQfinish(c);
			usleep(100000);
		}
		if (pg_postmaster > 0) {
			kill(pg_postmaster, SIGKILL);
			waitpid(pg_postmaster, NULL, 0);
			pg_postmaster = -1;
		}
	}
	return -ETIMEDOUT;
}

#endif
