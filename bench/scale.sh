#!/bin/bash
# `make bench-scale` (and a section of `make bench`): how throughput grows with
# app nodes behind a balancer (issue: rung 3, "How it scales").
#
# One PostgreSQL 15 (its own, fsync on, data on the disk under build/), in a
# CPU cgroup capped to PG_CPU cores so the database's limit is a known,
# repeatable one; MAX_NODES `ladder serve --store postgres --threads 1 --cache
# none` nodes, each in a CPU cgroup of its own capped to NODE_CPU cores (a
# 2-core machine cannot give each node a core: cgroup v1 cpu.cfs_quota_us over
# cpu.cfs_period_us); HAProxy 2.6 round-robin over the first N of them; and
# `ladder bench --scenario ladder --rate max` (closed loop, the read-mostly
# mix: 100 reads per write) against HAProxy. For each N in NODES, ROUNDS runs
# of SECONDS_PER_RUN; the medians go to `ladder plan fit` (the Universal
# Scalability Law: sigma, kappa, the predicted peak).
#
# Where the database takes over: every run also measures the CPU PostgreSQL
# used (its cgroup's cpuacct.usage over the measured window) against its cap,
# and `pgbench -S` (one primary-key SELECT per transaction) on the same capped
# PostgreSQL gives the database's own ceiling. At each N the limit is named:
# the nodes, or the database once PostgreSQL is nearer its cap than the nodes
# are to theirs (they have idle time: they wait for it). The first N where it
# is the database is where the database takes over; the points before it get
# a fit of their own.
#
# Loopback only, free ports, everything stopped and removed on exit (trap).
# Needs root (cgroup v1 cpu and cpuacct hierarchies under /sys/fs/cgroup).
#
# The generator keeps CONNS_PER_NODE connections per node in the run (N x
# CONNS_PER_NODE in all), so each node sees the same concurrency at every N
# and the curve is the balancer's and the database's, not a node's batching
# growing with its queue.
#
# BALLAST=1 separates the machine from the service: beside N nodes run
# MAX_NODES - N busy loops, each in a cgroup capped like a node, so every N
# runs with the same number of capped busy processes on the 2 cores (the
# others stopped with SIGSTOP). A node's CPU per request that still grows
# with N is then the service's (the balancer, the database, the nodes'
# shares of them); one that grows only without the ballast is the machine's
# (more processes taking turns on 2 cores, each with cold caches), which a
# core per node would not have.
#
# Usage: bench/scale.sh  (ROUNDS=3 SECONDS_PER_RUN=6 NODES="1 2 3 4 6 8"
#                         NODE_CPU=0.05 PG_CPU=0.25 CONNS_PER_NODE=16
#                         PG_CLIENTS=64 BALLAST=0)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-6}
NODES=${NODES:-"1 2 3 4 6 8"}
NODE_CPU=${NODE_CPU:-0.05}
PG_CPU=${PG_CPU:-0.25}
CONNS_PER_NODE=${CONNS_PER_NODE:-16}
PG_CLIENTS=${PG_CLIENTS:-64}
BALLAST=${BALLAST:-0}
BIN=${LADDER_BIN:-build/rel/ladder}
PG_BIN=${LADDER_PG_BIN:-/usr/lib/postgresql/15/bin}
HAPROXY=${HAPROXY:-haproxy}
# CFS period: a throttled node waits out the rest of it; the kernel wants a
# quota of at least 1 ms, so 50 ms lets a cap go down to 0.02 cores.
PERIOD_US=50000

MAX_NODES=0
for n in $NODES; do
	[ "$n" -gt "$MAX_NODES" ] && MAX_NODES=$n
done
if [ "$(id -u)" != 0 ] || [ ! -w /sys/fs/cgroup/cpu ] || [ ! -w /sys/fs/cgroup/cpuacct ]; then
	echo "bench/scale.sh: needs root and cgroup v1 cpu and cpuacct hierarchies" >&2
	exit 1
fi
command -v "$HAPROXY" >/dev/null || { echo "bench/scale.sh: $HAPROXY not found" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ladder-scale.XXXXXX")
pgdir="$PWD/build/bench-scale-pg.$$"
cg="ladder-scale.$$"
pids=()
ballast=()
pgpid=
hapid=
sampler=
# stop PID...: SIGTERM, up to 10 s to go, then SIGKILL.
stop() {
	local p alive
	for p in "$@"; do kill "$p" 2>/dev/null; done
	for _ in $(seq 1 100); do
		alive=
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ -z "$alive" ] && return 0
		sleep 0.1
	done
	for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
}
cleanup() {
	set +e
	[ -n "$pgpid" ] && kill -INT "$pgpid" 2>/dev/null
	for p in "${ballast[@]}"; do kill -CONT "$p" 2>/dev/null; done
	stop $sampler $hapid "${pids[@]}" "${ballast[@]}" $pgpid
	wait 2>/dev/null
	# A cgroup goes once its last task has.
	for h in cpu cpuacct; do
		for d in /sys/fs/cgroup/$h/$cg/*/; do
			[ -d "$d" ] && rmdir "$d"
		done
		[ -d "/sys/fs/cgroup/$h/$cg" ] && rmdir "/sys/fs/cgroup/$h/$cg"
	done
	rm -rf "$work" "$pgdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. bench/lib.sh

# make_cg NAME CORES: a cgroup in both hierarchies; CORES "" = no cap.
make_cg() {
	mkdir -p "/sys/fs/cgroup/cpu/$cg/$1" "/sys/fs/cgroup/cpuacct/$cg/$1"
	if [ -n "$2" ]; then
		if awk -v c="$2" -v p="$PERIOD_US" 'BEGIN {exit !(c * p < 1000)}'; then
			echo "bench/scale.sh: a cap of $2 cores is under the kernel's 1 ms per ${PERIOD_US} us" >&2
			exit 2
		fi
		echo "$PERIOD_US" >"/sys/fs/cgroup/cpu/$cg/$1/cpu.cfs_period_us"
		awk -v c="$2" -v p="$PERIOD_US" 'BEGIN {printf "%d\n", c * p}' \
			>"/sys/fs/cgroup/cpu/$cg/$1/cpu.cfs_quota_us"
	fi
}

# in_cg NAME CMD...: becomes CMD inside cgroup NAME (both hierarchies); its
# threads and children stay there. It execs: run it in a subshell, `( )` or
# `&`.
in_cg() {
	local name=$1
	shift
	# exec: the caller's $! is then the program's own pid.
	exec bash -c 'echo $$ >"/sys/fs/cgroup/cpu/$0/cgroup.procs" &&
		echo $$ >"/sys/fs/cgroup/cpuacct/$0/cgroup.procs" && exec "$@"' "$cg/$name" "$@"
}

usage_ns() { cat "/sys/fs/cgroup/cpuacct/$cg/$1/cpuacct.usage"; }

# --- PostgreSQL, capped ---
make_cg pg "$PG_CPU"
as_pg=()
mkdir -p "$pgdir"
chmod 755 "$work"
as_pg=(runuser -u postgres --)
chown postgres:postgres "$pgdir"
chown postgres "$work"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 \
	--locale=C >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }
pgport=$(bench_free_port)
in_cg pg "${as_pg[@]}" "$PG_BIN/postgres" -D "$pgdir/data" -p "$pgport" \
	-c listen_addresses=127.0.0.1 -c unix_socket_directories="$pgdir" \
	-c max_connections=300 >"$pgdir/postgres.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
	"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$pgport" && break
	sleep 0.05
done
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$pgport" || { cat "$pgdir/postgres.log" >&2; exit 1; }
pgpid=$(head -1 "$pgdir/data/postmaster.pid")
psql_() { "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres "$@"; }
psql_ -d postgres -c "CREATE DATABASE bench" >/dev/null
conninfo="hostaddr=127.0.0.1 port=$pgport dbname=bench user=postgres"

# --- the app nodes, each capped; one token key for all (a token made by one
# node is checked by another) ---
export LADDER_TOKEN_KEYS
LADDER_TOKEN_KEYS="k1:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ports=()
for i in $(seq 1 "$MAX_NODES"); do
	make_cg "node$i" "$NODE_CPU"
	p=$(bench_free_port)
	mkdir -p "$work/node$i"
	in_cg "node$i" "$BIN" serve --listen "127.0.0.1:$p" --data "$work/node$i" --threads 1 \
		--cache none --log-requests off --ratelimit off --argon2-ops 1 --argon2-mem 64KiB \
		--store postgres --pg-primary "$conninfo" >"$work/node$i.log" 2>&1 &
	pids+=($!)
	ports+=("$p")
	# One at a time: each runs the migrations' check at open.
	bench_wait_http "http://127.0.0.1:$p/readyz" || { cat "$work/node$i.log" >&2; exit 1; }
done
make_cg lb ""
make_cg gen ""

# --- the ballast (BALLAST=1): MAX_NODES - 1 busy loops capped like a node,
# all stopped until set_ballast wakes as many as a run needs ---
if [ "$BALLAST" = 1 ]; then
	for i in $(seq 1 $((MAX_NODES - 1))); do
		make_cg "ballast$i" "$NODE_CPU"
		(in_cg "ballast$i" bash -c 'while :; do :; done') &
		ballast+=($!)
		kill -STOP "$!"
	done
fi
# set_ballast N: the first MAX_NODES - N busy loops run, the rest stop.
set_ballast() {
	local i
	for i in "${!ballast[@]}"; do
		if [ "$i" -lt $((MAX_NODES - $1)) ]; then
			kill -CONT "${ballast[$i]}"
		else
			kill -STOP "${ballast[$i]}"
		fi
	done
}

# --- CPU use of each group, sampled every 0.25 s: "t pg nodes lb gen" ---
sample() {
	local i s
	while :; do
		s=0
		for i in $(seq 1 "$MAX_NODES"); do
			s=$((s + $(usage_ns "node$i")))
		done
		echo "$(date +%s.%N) $(usage_ns pg) $s $(usage_ns lb) $(usage_ns gen)"
		sleep 0.25
	done
}
sample >"$work/cpu" &
sampler=$!

# cpu_window T0 T1: cores used by pg, all nodes, haproxy, the generator
# between T0 and T1 (the nearest samples inside).
cpu_window() {
	awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b { if (!n++) f = $0; l = $0 }
		END { split(f, x); split(l, y); d = y[1] - x[1]; if (d <= 0) d = 1;
		      printf "%.3f %.3f %.3f %.3f\n", (y[2]-x[2])/d/1e9, (y[3]-x[3])/d/1e9,
		             (y[4]-x[4])/d/1e9, (y[5]-x[5])/d/1e9 }' "$work/cpu"
}

# start_lb N: HAProxy round-robin over the first N nodes.
hport=$(bench_free_port)
start_lb() {
	local n=$1 i
	{
		echo "global"
		echo "  maxconn 4096"
		echo "  nbthread 1"
		echo "defaults"
		echo "  mode http"
		echo "  option http-keep-alive"
		echo "  timeout connect 2s"
		echo "  timeout client 30s"
		echo "  timeout server 30s"
		echo "frontend fe"
		echo "  bind 127.0.0.1:$hport"
		echo "  default_backend be"
		echo "backend be"
		echo "  balance roundrobin"
		for i in $(seq 1 "$n"); do
			echo "  server node$i 127.0.0.1:${ports[$((i - 1))]}"
		done
	} >"$work/haproxy.cfg"
	in_cg lb "$HAPROXY" -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
	hapid=$!
	bench_wait_http "http://127.0.0.1:$hport/readyz" || { cat "$work/haproxy.log" >&2; return 1; }
}
stop_lb() {
	stop "$hapid"
	wait "$hapid" 2>/dev/null || true
	hapid=
}

# run_mix: one closed-loop run of the mix through HAProxy; prints
# "rps p99_ms pg nodes lb gen" (rps: 2xx answers per second; CPU in cores
# over the measured window).
run_mix() {
	local t1 conns=$((CONNS_PER_NODE * $1))
	(in_cg gen "$BIN" bench --scenario ladder --users 20 --items-per-user 5 \
		--read-write-ratio 100:1 --rate max -c "$conns" --duration "${SECS}s" \
		--quiet --json "$work/load.json" "http://127.0.0.1:$hport") >"$work/load.out" 2>&1 ||
		{ cat "$work/load.out" >&2; return 1; }
	t1=$(date +%s.%N)
	sleep 0.3 # one more sample past the end
	python3 - "$work/load.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
status = r.get("status") or {}
total = sum(status.values()) or 1
good = sum(v for k, v in status.items() if k.startswith("2"))
shed = status.get("503", 0)
# A node sheds (503) once the database is the limit: that is the point's
# answer, counted as lost throughput (goodput is the 2xx rate). Anything
# else is a broken run.
if r.get("errors", 0) != shed:
    print(f"bench: errors in the run: {status} {r.get('errors_by_kind')}", file=sys.stderr)
    sys.exit(1)
if shed:
    print(f"bench: {shed} of {total} answers were 503 (shed): goodput counts the 2xx only",
          file=sys.stderr)
print(f'{r["achieved_rps"] * good / total:.0f} {r["latency_us"]["p99"]/1000:.2f}', end=" ")
PY
	cpu_window "$(awk -v t="$t1" -v s="$SECS" 'BEGIN {printf "%.3f", t - s}')" "$t1"
}

# run_pgbench: pgbench -S on the same capped PostgreSQL, PG_CLIENTS clients;
# prints "tps pg_cores".
pgbench_ready=
run_pgbench() {
	local t0 t1
	if [ -z "$pgbench_ready" ]; then
		"$PG_BIN/pgbench" -i -q -s 1 -h 127.0.0.1 -p "$pgport" -U postgres bench \
			>"$work/pgbench-init.log" 2>&1 || { cat "$work/pgbench-init.log" >&2; return 1; }
		pgbench_ready=1
	fi
	t0=$(date +%s.%N)
	(in_cg gen "$PG_BIN/pgbench" -n -S -M prepared -c "$PG_CLIENTS" -j 1 -T "$SECS" \
		-h 127.0.0.1 -p "$pgport" -U postgres bench) >"$work/pgbench.out" 2>&1 ||
		{ cat "$work/pgbench.out" >&2; return 1; }
	t1=$(date +%s.%N)
	sleep 0.3
	printf '%s %s\n' "$(awk '/^tps = / {printf "%.0f", $3}' "$work/pgbench.out")" \
		"$(cpu_window "$t0" "$t1" | cut -d' ' -f1)"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "PostgreSQL capped to $PG_CPU cores; $MAX_NODES ladder nodes (1 loop, --cache none) capped to $NODE_CPU cores each;"
echo "HAProxy round-robin; ladder bench --scenario ladder (100 reads : 1 write), closed loop, $CONNS_PER_NODE connections per node;"
echo "${SECS}s x $ROUNDS rounds per node count (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
[ "$BALLAST" = 1 ] && echo "ballast: beside N nodes, $MAX_NODES - N busy loops capped to $NODE_CPU cores each"
printf '  %-3s %-5s %9s %8s %8s %8s %8s %8s\n' N round "req/s" "p99 ms" "pg cpu" "nodes" haproxy gen
: >"$work/points.csv"
: >"$work/pgbench"
db_at=
for n in $NODES; do
	set_ballast "$n"
	start_lb "$n"
	: >"$work/rounds"
	for r in $(seq 1 "$ROUNDS"); do
		read -r rps p99 pgc nodec lbc genc < <(run_mix "$n") || true
		[ -n "${genc:-}" ] || { echo "bench/scale.sh: a run failed (N=$n)" >&2; exit 1; }
		echo "$rps $pgc $nodec" >>"$work/rounds"
		printf '  %-3s %-5s %9s %8s %8s %8s %8s %8s\n' "$n" "$r" "$rps" "$p99" "$pgc" "$nodec" "$lbc" "$genc"
	done
	stop_lb
	x=$(cut -d' ' -f1 "$work/rounds" | median)
	pgm=$(cut -d' ' -f2 "$work/rounds" | median)
	nodem=$(cut -d' ' -f3 "$work/rounds" | median)
	echo "$n,$x" >>"$work/points.csv"
	# The busier of the two against its cap is the limit at this N: nodes
	# with idle time while PostgreSQL is near its cap wait for the database.
	read -r nu pu lim < <(awk -v nc="$nodem" -v n="$n" -v c="$NODE_CPU" -v pc="$pgm" -v p="$PG_CPU" \
		'BEGIN {a = nc / (n * c); b = pc / p; printf "%.0f %.0f %s\n", 100 * a, 100 * b, (b > a ? "database" : "nodes")}')
	printf '  N=%s median %s req/s (%.0f per node, %.0f us of node CPU each); nodes at %s%% of their %s cores, PostgreSQL at %s%% of its %s: limit %s\n' \
		"$n" "$x" "$(awk -v x="$x" -v n="$n" 'BEGIN {print x / n}')" \
		"$(awk -v x="$x" -v c="$nodem" 'BEGIN {print c / x * 1e6}')" "$nu" \
		"$(awk -v n="$n" -v c="$NODE_CPU" 'BEGIN {print n * c}')" "$pu" "$PG_CPU" "$lim"
	if [ -z "$db_at" ] && [ "$lim" = database ]; then
		db_at=$n
	fi
done

set_ballast "$MAX_NODES"
for r in $(seq 1 "$ROUNDS"); do
	run_pgbench >>"$work/pgbench" || exit 1
done
pgb=$(cut -d' ' -f1 "$work/pgbench" | median)
pgbc=$(cut -d' ' -f2 "$work/pgbench" | median)
echo "pgbench -S on the same PostgreSQL ($PG_CLIENTS clients): median $pgb tps, PostgreSQL at $pgbc of $PG_CPU cores"

echo "points (N,req/s): $(tr '\n' ' ' <"$work/points.csv")"
# fit FILE WHAT: the USL fit of the points in FILE, in one line.
fit() {
	"$BIN" plan fit --points "$1" --format json >"$work/fit.json"
	python3 - "$work/fit.json" "$2" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
peak = (f"predicted peak {f['peak_x']:.0f} req/s at N = {f['peak_n']:.1f}" if f.get("peak_n")
        else f"no peak (kappa = 0): approaches lambda / sigma = {f['lambda'] / f['sigma']:.0f} req/s"
        if f["sigma"] > 0 else "no peak: linear")
print(f"USL fit, {sys.argv[2]}: sigma {f['sigma']:.4f}, kappa {f['kappa']:.5f}, "
      f"lambda {f['lambda']:.0f} req/s per node, R^2 {f['r2']:.3f}; {peak}")
PY
}
fit "$work/points.csv" "all points"
if [ -n "$db_at" ]; then
	awk -F, -v d="$db_at" '$1 < d' "$work/points.csv" >"$work/below.csv"
	if [ "$(wc -l <"$work/below.csv")" -ge 3 ]; then
		fit "$work/below.csv" "N < $db_at (the database not the limit)"
	fi
	echo "the database takes over at N=$db_at: PostgreSQL nearer its cap than the nodes theirs (pgbench -S: $pgb tps on the same $PG_CPU cores)"
else
	echo "the database was not the limit up to N=$MAX_NODES: the nodes stayed nearer their caps (pgbench -S: $pgb tps on PostgreSQL's $PG_CPU cores)"
fi
