#!/bin/bash
# The cache half of `make bench` (issue 10, "How fast"; docs/cache.md,
# "Figures"). Every server under test and every reference runs pinned to
# core SERVER_CPU (one loop thread, one nginx worker, one redis-server); the
# load generator to CLIENT_CPU. ROUNDS alternating runs of SECONDS_PER_RUN
# each; medians reported.
#
#  1. L1 hits: GET /v1/items/{id} from `ladder serve --cache local` (every
#     request an L1 hit) against nginx returning the same bytes from memory
#     (`return 200`, with an ETag header as ladder sends), and `--cache
#     none` beside them. Target: local / nginx >= 1.0x. Each run also gives
#     the server's CPU time per request (/proc/PID/stat over the run): on a
#     machine with other load, or when the generator is the limit, the
#     rates tie and the CPU per answer still tells the servers apart.
#  2. L2 hits: `ladder serve --cache redis` with the smallest L1 (64KiB)
#     and the load spread round-robin over 64 items of 1000 bytes (the
#     most URLs ladder bench takes, the largest content) by L2_CONNS (16)
#     connections, so L1 (LRU, room for about 50 such entries) never holds
#     the next one and no two requests in flight share a key: each request
#     is an L1 miss and an L2 hit, one Redis GET on the loopback (the L1
#     hits in the runs are printed to show it); against `redis-benchmark -t
#     get` at the same number of clients, no pipelining (ladder bench sends
#     one request per connection at a time), over as many keys of the same
#     value size, redis-server on the same core in both.
#
# Usage: bench/cache.sh            (ROUNDS=3 SECONDS_PER_RUN=10 CONNS=64 L2_CONNS=16)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-10}
CONNS=${CONNS:-64}
L2_KEYS=64
L2_CONNS=${L2_CONNS:-16}
BIN=${LADDER_BIN:-build/rel/ladder}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}

work=$(mktemp -d "${TMPDIR:-/tmp}/ladder-cache-bench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

. bench/lib.sh

# start NAME MODE N SIZE [SERVE ARGS...]: starts a server with --cache MODE
# and N items of SIZE bytes of content; sets PORT and SPID (its pid), and writes the items' paths
# to $work/NAME.paths, one a line.
start() {
	local name=$1 mode=$2 n=$3 size=$4
	shift 4
	PORT=$(bench_free_port)
	mkdir -p "$work/$name"
	taskset -c "$SERVER_CPU" "$BIN" serve --listen "127.0.0.1:$PORT" --data "$work/$name" \
		--threads 1 --cache "$mode" --log-requests off --argon2-ops 1 --argon2-mem 64KiB \
		"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	SPID=$!
	bench_wait_http "http://127.0.0.1:$PORT/readyz" || { cat "$work/$name.log" >&2; return 1; }
	python3 - "$PORT" "$n" "$size" >"$work/$name.paths" <<'PY'
import http.client, json, sys
port, n, size = (int(a) for a in sys.argv[1:4])
c = http.client.HTTPConnection("127.0.0.1", port)
def call(method, path, body, hdrs={}):
    c.request(method, path, json.dumps(body), {"Content-Type": "application/json", **hdrs})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"bench: {method} {path}: {r.status} {data!r}")
    return r, data
cred = {"handle": "bench_user", "password": "bench-password"}
call("POST", "/v1/users", cred)
token = json.loads(call("POST", "/v1/sessions", cred)[1])["token"]
for _ in range(n):
    r, _ = call("POST", "/v1/items", {"content": "x" * size}, {"Authorization": "Bearer " + token})
    print(r.getheader("Location"))
PY
}

# metric PORT NAME LABELS: the value of one series in PORT's /metrics (0 when absent).
metric() {
	curl -fs "http://127.0.0.1:$1/metrics" |
		awk -v k="$2{$3}" '$1 == k {v=$2} END {print v + 0}'
}

# ---- 1. L1 hits against nginx from memory ----
start none none 1 200
pn=$PORT
sn=$SPID
itn=$(head -1 "$work/none.paths")
start local local 1 200
pl=$PORT
sl=$SPID
itl=$(head -1 "$work/local.paths")
curl -fs -D "$work/item.hdr" -o "$work/item.body" "http://127.0.0.1:$pl$itl"
etag=$(awk 'tolower($1)=="etag:" {sub(/\r$/, ""); sub(/^[^:]*: */, ""); print}' "$work/item.hdr")
bench_nginx memory "$SERVER_CPU" nginx "$itl" "$work/item.body" "$etag"
pg=$BENCH_NGINX_PORT
sg=$BENCH_NGINX_WORKER

# timed PID URL: one load run against URL; prints "rps p99_ms cpu_us", the
# last the server's (PID's) CPU time per request answered: what each answer
# costs the server, which the machine's other load changes much less than
# the rate (when the generator or a busy core is the limit, the rates tie).
timed() {
	local pid=$1 url=$2 t0 t1 rps p99
	t0=$(bench_cpu_ticks "$pid")
	read -r rps _ p99 < <(bench_load "$CLIENT_CPU" "$url")
	t1=$(bench_cpu_ticks "$pid")
	echo "$rps $p99 $(bench_cpu_us $((t1 - t0)) "$(cat "$work/load.requests")")"
}

echo "GET /v1/items/{id} ($(wc -c <"$work/item.body") bytes): ladder bench --rate max, $CONNS connections, ${SECS}s x $ROUNDS rounds alternated (servers on cpu $SERVER_CPU, load on cpu $CLIENT_CPU)"
: >"$work/none.rps"
: >"$work/local.rps"
: >"$work/nginx.rps"
h0=$(metric "$pl" ladder_cache_hits_total 'level="l1",route="/v1/items/{id}"')
for r in $(seq 1 "$ROUNDS"); do
	read -r n _ nc < <(timed "$sn" "http://127.0.0.1:$pn$itn")
	read -r l lp99 lc < <(timed "$sl" "http://127.0.0.1:$pl$itl")
	read -r g gp99 gc < <(timed "$sg" "http://127.0.0.1:$pg$itl")
	echo "  round $r: none $n/s ($nc us cpu/req), local $l/s (p99 $lp99 ms, $lc us cpu/req), nginx $g/s (p99 $gp99 ms, $gc us cpu/req)"
	echo "$n" >>"$work/none.rps"
	echo "$l" >>"$work/local.rps"
	echo "$g" >>"$work/nginx.rps"
	echo "$nc" >>"$work/none.cpu"
	echo "$lc" >>"$work/local.cpu"
	echo "$gc" >>"$work/nginx.cpu"
done
cn=$(bench_median <"$work/none.cpu")
cl=$(bench_median <"$work/local.cpu")
cg=$(bench_median <"$work/nginx.cpu")
mn=$(bench_median <"$work/none.rps")
ml=$(bench_median <"$work/local.rps")
mg=$(bench_median <"$work/nginx.rps")
h1=$(metric "$pl" ladder_cache_hits_total 'level="l1",route="/v1/items/{id}"')
m1=$(metric "$pl" ladder_cache_misses_total 'level="l1",route="/v1/items/{id}"')
echo "L1 median: none $mn/s, local $ml/s (x$(bench_ratio "$ml" "$mn") of none), nginx from memory $mg/s"
echo "L1 server cpu per request (median): none $cn us, local $cl us, nginx $cg us"
echo "L1 hit vs nginx: ratio $(bench_ratio "$ml" "$mg")x by rate, $(bench_ratio "$cg" "$cl")x by server cpu per request (target >= 1.0x); L1 hits in the runs $((h1 - h0)), misses $m1 in all"

# ---- 2. L2 (Redis) hits against redis-benchmark ----
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
	echo "L2: redis-server or redis-benchmark missing (scripts/deps.sh bench): skipped"
	exit 0
fi
rport=$(bench_free_port)
mkdir -p "$work/redis"
taskset -c "$SERVER_CPU" redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$work/redis" --maxmemory 256mb --maxmemory-policy allkeys-lru \
	--logfile "$work/redis/redis.log" &
pids+=($!)
rpid=$!
for _ in $(seq 1 100); do
	redis-cli -p "$rport" ping >/dev/null 2>&1 && break
	sleep 0.1
done
start redis redis "$L2_KEYS" 1000 --redis "redis://127.0.0.1:$rport" --cache-bytes 64KiB
pr=$PORT
sr=$SPID
mapfile -t urls < <(sed "s|^|http://127.0.0.1:$pr|" "$work/redis.paths")
# One pass fills Redis; every later request is an L2 hit.
taskset -c "$CLIENT_CPU" "$BIN" bench --rate max -c 1 --duration 1s --quiet --errors-4xx "${urls[@]}" >/dev/null
vsize=$(redis-cli -p "$rport" --raw strlen "ladder:c:i$(basename "$(head -1 "$work/redis.paths")")")
echo "L2: ladder bench -c $L2_CONNS, GET over $L2_KEYS items of 1000 bytes round-robin, --cache redis --cache-bytes 64KiB, Redis value $vsize bytes; redis-benchmark -t get -c $L2_CONNS -P 1 -r $L2_KEYS -d $vsize"
: >"$work/l2.rps"
: >"$work/rb.rps"
l2h0=$(metric "$pr" ladder_cache_hits_total 'level="l2",route="/v1/items/{id}"')
l1h0=$(metric "$pr" ladder_cache_hits_total 'level="l1",route="/v1/items/{id}"')
for r in $(seq 1 "$ROUNDS"); do
	# CPU per request: ladder's and Redis's together for an L2 hit, Redis's
	# alone for a GET of redis-benchmark.
	t0=$(($(bench_cpu_ticks "$sr") + $(bench_cpu_ticks "$rpid")))
	read -r l _ lp99 < <(CONNS=$L2_CONNS bench_load "$CLIENT_CPU" "${urls[0]}" "${urls[@]:1}")
	t1=$(($(bench_cpu_ticks "$sr") + $(bench_cpu_ticks "$rpid")))
	lc=$(bench_cpu_us $((t1 - t0)) "$(cat "$work/load.requests")")
	# Keys key:000000000000 to key:L2_KEYS-1 set to vsize bytes, then GETs.
	taskset -c "$CLIENT_CPU" redis-benchmark -p "$rport" -c "$L2_CONNS" -P 1 -r "$L2_KEYS" \
		-d "$vsize" -n $((L2_KEYS * 10)) -t set -q >/dev/null
	t0=$(bench_cpu_ticks "$rpid")
	g=$(taskset -c "$CLIENT_CPU" redis-benchmark -p "$rport" -c "$L2_CONNS" -P 1 -r "$L2_KEYS" \
		-d "$vsize" -n $((SECS * 20000)) -t get --csv | awk -F'"' '$2 == "GET" {printf "%.0f", $4}')
	t1=$(bench_cpu_ticks "$rpid")
	gc=$(bench_cpu_us $((t1 - t0)) $((SECS * 20000)))
	echo "  round $r: ladder L2 hit $l/s (p99 $lp99 ms, $lc us cpu/req with Redis's), redis-benchmark GET $g/s ($gc us Redis cpu/req)"
	echo "$l" >>"$work/l2.rps"
	echo "$g" >>"$work/rb.rps"
	echo "$lc" >>"$work/l2.cpu"
	echo "$gc" >>"$work/rb.cpu"
done
cl2=$(bench_median <"$work/l2.cpu")
crb=$(bench_median <"$work/rb.cpu")
l2h1=$(metric "$pr" ladder_cache_hits_total 'level="l2",route="/v1/items/{id}"')
l1h1=$(metric "$pr" ladder_cache_hits_total 'level="l1",route="/v1/items/{id}"')
ml2=$(bench_median <"$work/l2.rps")
mrb=$(bench_median <"$work/rb.rps")
echo "L2 median: ladder $ml2/s ($cl2 us cpu/req), redis-benchmark GET $mrb/s ($crb us cpu/req), ratio $(bench_ratio "$ml2" "$mrb")x by rate, $(bench_ratio "$crb" "$cl2")x by server cpu per request; in the runs L2 hits $((l2h1 - l2h0)), L1 hits $((l1h1 - l1h0))"
