#!/bin/bash
# The PostgreSQL half of `make bench` (issue: rung 2, "How fast").
#
#  1. GET /v1/items/{id} through `ladder serve --store postgres` (no cache:
#     every request is a query) against `pgbench -S` (one primary-key SELECT
#     per transaction) on the same database with the same client count.
#  2. Durable POST /v1/items, 64 clients, against a pgbench insert-only
#     script at 64 clients into a table of the items table's shape (same
#     columns, primary key, index and foreign key to users), p99 reported.
#
# PostgreSQL (synchronous_commit and fsync on, its data on a real disk) is
# pinned to PG_CPU; the app node (one loop thread), its load generator and
# pgbench share the other core, APP_CPU: the ladder figure pays for HTTP and
# the load generator on that core, as pgbench pays for its client there.
# ROUNDS alternating runs of SECONDS_PER_RUN each; medians reported. On a
# machine shared with other work the figures are noisy.
#
# Usage: bench/postgres.sh      (ROUNDS=3 SECONDS_PER_RUN=10 CONNS=64)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-10}
CONNS=${CONNS:-64}
BIN=${LADDER_BIN:-build/rel/ladder}
PG_CPU=${PG_CPU:-1}
APP_CPU=${APP_CPU:-0}
PG_BIN=${LADDER_PG_BIN:-/usr/lib/postgresql/15/bin}
POOL=${PG_POOL:-2}

work=$(mktemp -d "${TMPDIR:-/tmp}/ladder-pgbench.XXXXXX")
# fsync must cost what it costs on a disk, never tmpfs.
pgdir="$PWD/build/bench-pg.$$"
pids=()
pgpid=
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -n "$pgpid" ]; then
		kill -INT "$pgpid" 2>/dev/null || true
	fi
	wait 2>/dev/null || true
	rm -rf "$work" "$pgdir"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# initdb refuses to run as root: run PostgreSQL as the postgres user then.
as_pg=()
mkdir -p "$pgdir"
chmod 755 "$work"
if [ "$(id -u)" = 0 ]; then
	as_pg=(runuser -u postgres --)
	chown postgres:postgres "$pgdir"
	chown postgres "$work"
fi
"${as_pg[@]}" "$PG_BIN/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 \
	--locale=C >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }
pgport=$(free_port)
taskset -c "$PG_CPU" "${as_pg[@]}" "$PG_BIN/postgres" -D "$pgdir/data" -p "$pgport" \
	-c listen_addresses=127.0.0.1 -c unix_socket_directories="$pgdir" \
	-c max_connections=300 >"$pgdir/postgres.log" 2>&1 &
pids+=($!)
for i in $(seq 1 200); do
	"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$pgport" && break
	sleep 0.05
done
pgpid=$(head -1 "$pgdir/data/postmaster.pid")
psql_() { "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres "$@"; }
psql_ -d postgres -c "CREATE DATABASE bench" >/dev/null
conninfo="hostaddr=127.0.0.1 port=$pgport dbname=bench user=postgres"

# --- ladder serve on the app core, one loop ---
lport=$(free_port)
mkdir -p "$work/data"
taskset -c "$APP_CPU" "$BIN" serve --listen "127.0.0.1:$lport" --data "$work/data" --threads 1 \
	--cache none --log-requests off --argon2-ops 1 --argon2-mem 64KiB \
	--store postgres --pg-primary "$conninfo" --pg-pool "$POOL" >"$work/serve.log" 2>&1 &
pids+=($!)
for i in $(seq 1 100); do
	curl -fs -o /dev/null "http://127.0.0.1:$lport/readyz" && break
	sleep 0.1
done
curl -fs -o /dev/null "http://127.0.0.1:$lport/readyz" || { cat "$work/serve.log" >&2; exit 1; }

curl -fs -X POST -H 'Content-Type: application/json' \
	-d '{"handle":"bench_user","password":"bench-password"}' \
	"http://127.0.0.1:$lport/v1/users" >/dev/null
token=$(curl -fs -X POST -H 'Content-Type: application/json' \
	-d '{"handle":"bench_user","password":"bench-password"}' \
	"http://127.0.0.1:$lport/v1/sessions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
auth="Authorization: Bearer $token"
python3 -c 'import json; print(json.dumps({"content": "x" * 200}))' >"$work/item.json"
item_url=$(curl -fs -D "$work/hdr" -o /dev/null -X POST -H 'Content-Type: application/json' \
	-H "$auth" --data-binary @"$work/item.json" "http://127.0.0.1:$lport/v1/items" &&
	awk 'tolower($1)=="location:" {gsub("\r",""); print $2}' "$work/hdr")
curl -fs -o /dev/null "http://127.0.0.1:$lport$item_url"
uid=$(psql_ -d bench -c "SELECT id FROM users WHERE handle = 'bench_user'")

# --- pgbench's tables in the same database ---
"$PG_BIN/pgbench" -i -q -s 1 -h 127.0.0.1 -p "$pgport" -U postgres bench >"$work/pgbench-init.log" 2>&1 ||
	{ cat "$work/pgbench-init.log" >&2; exit 1; }
psql_ -d bench -c "CREATE TABLE pgbench_items (LIKE items INCLUDING ALL)"
psql_ -d bench -c "ALTER TABLE pgbench_items ADD FOREIGN KEY (user_id) REFERENCES users (id)"
psql_ -d bench -c "CREATE SEQUENCE pgbench_items_id"
content=$(printf 'x%.0s' $(seq 1 200))
cat >"$work/insert.sql" <<SQL
INSERT INTO pgbench_items (id, user_id, content, created_ms, updated_ms, version) VALUES (nextval('pgbench_items_id'), $uid, '$content'::bytea, 1700000000000, 1700000000000, 1);
SQL

# p99 of one run's per-transaction log (column 3: latency in us), ms.
log_p99() {
	cat "$@" | awk '{print $3}' | sort -n |
		awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.3f\n", a[i]/1000}'
}

# run_ladder URL METHOD: prints "rps p50_ms p99_ms"
run_ladder() {
	local url=$1 method=$2
	local args=(--rate max -c "$CONNS" --duration "${SECS}s" --errors-4xx --json "$work/load.json")
	if [ "$method" = POST ]; then
		args+=(-X POST -H "Content-Type: application/json" -H "$auth" --body-file "$work/item.json")
	fi
	# PROFILE=1: the server's bottleneck report for each ladder run, on stderr.
	if [ -n "${PROFILE:-}" ]; then
		args+=(--profile "http://127.0.0.1:$lport")
	else
		args+=(--quiet)
	fi
	taskset -c "$APP_CPU" "$BIN" bench "${args[@]}" "$url" >"$work/load.out"
	[ -z "${PROFILE:-}" ] || cat "$work/load.out" >&2
	python3 - "$work/load.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
lat = r.get("service_time_us") or r["latency_us"]
bad = r.get("errors", 0)
if bad:
    print(f"bench: {bad} errors in the run: {r.get('status')} {r.get('errors_by_kind')}",
          file=sys.stderr)
    sys.exit(1)
print(f'{r["achieved_rps"]:.0f} {lat["p50"]/1000:.3f} {lat["p99"]/1000:.3f}')
PY
}

# run_pgbench ARGS...: prints "tps p99_ms"
run_pgbench() {
	rm -f "$work"/pgb.*
	(cd "$work" && taskset -c "$APP_CPU" "$PG_BIN/pgbench" -n -M prepared -c "$CONNS" -j 1 \
		-T "$SECS" -l --log-prefix=pgb -h 127.0.0.1 -p "$pgport" -U postgres "$@" bench \
		>"$work/pgbench.out" 2>&1) || { cat "$work/pgbench.out" >&2; return 1; }
	if grep -q "failed: [1-9]" "$work/pgbench.out"; then
		cat "$work/pgbench.out" >&2
		return 1
	fi
	printf '%s %s\n' "$(awk '/^tps = / {printf "%.0f", $3}' "$work/pgbench.out")" \
		"$(log_p99 "$work"/pgb.*)"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "PostgreSQL on cpu $PG_CPU; ladder (1 loop, pool $POOL), its load generator and pgbench on cpu $APP_CPU"
echo "GET $item_url vs pgbench -S: $CONNS clients, ${SECS}s x $ROUNDS rounds"
: >"$work/get_ladder"
: >"$work/get_pgbench"
for r in $(seq 1 "$ROUNDS"); do
	read -r rps p50 p99 < <(run_ladder "http://127.0.0.1:$lport$item_url" GET)
	echo "$rps" >>"$work/get_ladder"
	printf '  round %d ladder : %8s req/s  p50 %s ms  p99 %s ms\n' "$r" "$rps" "$p50" "$p99"
	read -r tps p99 < <(run_pgbench -S)
	echo "$tps" >>"$work/get_pgbench"
	printf '  round %d pgbench: %8s tps    p99 %s ms\n' "$r" "$tps" "$p99"
done
gl=$(median <"$work/get_ladder")
gp=$(median <"$work/get_pgbench")
ratio=$(awk -v a="$gl" -v b="$gp" 'BEGIN {printf "%.2f", a / b}')
echo "GET median: ladder $gl req/s, pgbench -S $gp tps, ratio ${ratio}x (target >= 1.0x)"

echo "POST /v1/items durable vs a pgbench insert script: $CONNS clients, ${SECS}s x $ROUNDS rounds"
: >"$work/post_ladder"
: >"$work/post_pgbench"
for r in $(seq 1 "$ROUNDS"); do
	read -r rps p50 p99 < <(run_ladder "http://127.0.0.1:$lport/v1/items" POST)
	echo "$rps $p99" >>"$work/post_ladder"
	printf '  round %d ladder : %8s writes/s  p50 %s ms  p99 %s ms\n' "$r" "$rps" "$p50" "$p99"
	read -r tps p99 < <(run_pgbench -f "$work/insert.sql")
	echo "$tps $p99" >>"$work/post_pgbench"
	printf '  round %d pgbench: %8s tps       p99 %s ms\n' "$r" "$tps" "$p99"
done
pl=$(cut -d' ' -f1 "$work/post_ladder" | median)
plp=$(cut -d' ' -f2 "$work/post_ladder" | median)
pp=$(cut -d' ' -f1 "$work/post_pgbench" | median)
ppp=$(cut -d' ' -f2 "$work/post_pgbench" | median)
ratio=$(awk -v a="$pl" -v b="$pp" 'BEGIN {printf "%.2f", a / b}')
echo "POST median: ladder $pl writes/s (p99 $plp ms), pgbench insert $pp tps (p99 $ppp ms), ratio ${ratio}x (target >= 1.0x)"
curl -fs "http://127.0.0.1:$lport/metrics" | grep -E '^ladder_store_write_batch_size_(sum|count) ' |
	awk '{v[$1]=$2} END {if (v["ladder_store_write_batch_size_count"]) printf "mean write batch: %.1f ops per commit\n", v["ladder_store_write_batch_size_sum"]/v["ladder_store_write_batch_size_count"]}'
