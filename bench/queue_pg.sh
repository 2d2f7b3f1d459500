#!/bin/bash
# The job queue on PostgreSQL, for `make bench` (called by bench/thumbs.sh
# after the SQLite figure): claim + complete throughput in jobs/s, durable
# (synchronous_commit on: the WAL flushed per commit) and not, with one
# connection (as SQLite's figure) and with THREADS of them (a worker's job
# threads: FOR UPDATE SKIP LOCKED lets them claim side by side).
#
# A throwaway PostgreSQL 15 (initdb, a free loopback port, as the postgres
# user when run as root) on one core (PG_CPU), the bench on the other
# (SERVER_CPU), its data on the real disk under build/ (the durable figure
# needs a real fsync).
#
# Usage: bench/queue_pg.sh QUEUE_BENCH_BINARY   (QUEUE_PG_JOBS=10000 THREADS=4)
set -euo pipefail
cd "$(dirname "$0")/.."

qb=${1:?usage: bench/queue_pg.sh QUEUE_BENCH_BINARY}
QUEUE_JOBS=${QUEUE_PG_JOBS:-10000}
THREADS=${THREADS:-4}
CPU=${SERVER_CPU:-1}
PG_CPU=${PG_CPU:-0}
PG_BIN=${LADDER_PG_BIN:-/usr/lib/postgresql/15/bin}

[ -x "$PG_BIN/initdb" ] || {
	echo "bench/queue_pg.sh: $PG_BIN/initdb missing (scripts/deps.sh test installs postgresql-15)" >&2
	exit 1
}
pgdir="$PWD/build/queue-pg.$$"
started=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
	if [ -n "$started" ]; then
		as_pg "$PG_BIN/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$pgdir"
}
trap cleanup EXIT
mkdir -p "$pgdir"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$pgdir"
as_pg "$PG_BIN/initdb" -D "$pgdir/data" -U postgres --auth=trust --locale=C >"$pgdir/initdb.log" 2>&1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
started=1
as_pg taskset -c "$PG_CPU" "$PG_BIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/pg.log" -w \
	-o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pgdir" start >/dev/null
psql() { "$PG_BIN/psql" -X -q -d "hostaddr=127.0.0.1 port=$port dbname=postgres user=postgres" "$@"; }
round=0
for sync in 1 0; do
	for t in 1 "$THREADS"; do
		round=$((round + 1))
		psql -c "CREATE DATABASE q$round"
		read -r n rate < <(taskset -c "$CPU" "$qb" --pg \
			"hostaddr=127.0.0.1 port=$port dbname=q$round user=postgres" "$QUEUE_JOBS" "$sync" "$t")
		printf '%s, %d connection(s): %d jobs, %.0f jobs/s\n' \
			"$([ "$sync" = 1 ] && echo "durable (WAL flush)" || echo "sync off           ")" "$t" "$n" "$rate"
	done
done
