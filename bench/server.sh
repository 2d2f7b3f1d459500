#!/bin/bash
# The server half of `make bench` (issue: ladder serve, "How fast").
#
#  1. GET /v1/items/{id} from `ladder serve` (every request reads SQLite, no
#     cache) against nginx serving the same response bytes as a static file.
#  2. POST /v1/items with 64 concurrent clients, durable (synchronous=FULL,
#     group commit): acknowledged writes/s and latency percentiles.
#
# Each server is pinned to core 1 with one loop thread (nginx: one worker);
# the load generator runs on core 0. ROUNDS alternating runs of SECONDS each;
# the medians are reported. The load generator is `ladder bench` in its
# closed-loop full-speed mode (LOADGEN=wrk switches to wrk for comparison).
#
# Usage: bench/server.sh            (ROUNDS=3 SECONDS=10 CONNS=64 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-10}
CONNS=${CONNS:-64}
LOADGEN=${LOADGEN:-ladder}
BIN=${LADDER_BIN:-build/rel/ladder}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}

. bench/lib.sh
bench_init bench

# run_load URL METHOD [BODYFILE HEADER]: prints "rps p50_ms p99_ms"
run_load() {
	local url=$1 method=$2 body=${3:-} header=${4:-} out
	out="$work/load.out"
	if [ "$LOADGEN" = wrk ]; then
		local script="$work/req.lua"
		if [ "$method" = POST ]; then
			cat >"$script" <<LUA
wrk.method = "POST"
wrk.body = io.open("$body"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "${header#Authorization: }"
done = function(summary, latency, requests)
  io.write(string.format("LAT %f %f\n", latency:percentile(50)/1000, latency:percentile(99)/1000))
end
LUA
		else
			cat >"$script" <<LUA
done = function(summary, latency, requests)
  io.write(string.format("LAT %f %f\n", latency:percentile(50)/1000, latency:percentile(99)/1000))
end
LUA
		fi
		taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$script" "$url" >"$out"
		awk '/Requests\/sec/ {r=$2} /^LAT/ {p50=$2; p99=$3} END {printf "%.0f %.3f %.3f\n", r, p50, p99}' "$out"
	else
		local args=()
		if [ "$method" = POST ]; then
			args+=(-X POST -H "Content-Type: application/json" -H "$header" --body-file "$body")
		fi
		bench_load "$CLIENT_CPU" "$url" "${args[@]}"
	fi
}

# --- ladder serve, durable, one loop thread on one core ---
lport=$(bench_free_port)
mkdir -p "$data"
taskset -c "$SERVER_CPU" "$BIN" serve --listen "127.0.0.1:$lport" --data "$data" --threads 1 --cache none \
	--log-requests off --argon2-ops 1 --argon2-mem 64KiB >"$work/serve.log" 2>&1 &
pids+=($!)
bench_wait_http "http://127.0.0.1:$lport/readyz"

curl -fs -X POST -H 'Content-Type: application/json' \
	-d '{"handle":"bench_user","password":"bench-password"}' \
	"http://127.0.0.1:$lport/v1/users" >/dev/null
token=$(curl -fs -X POST -H 'Content-Type: application/json' \
	-d '{"handle":"bench_user","password":"bench-password"}' \
	"http://127.0.0.1:$lport/v1/sessions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
auth="Authorization: Bearer $token"
python3 -c 'import json; print(json.dumps({"content": "x" * 200}))' >"$work/item.json"
item_url=$(curl -fs -D "$work/hdr" -o "$work/item.body" -X POST -H 'Content-Type: application/json' \
	-H "$auth" --data-binary @"$work/item.json" "http://127.0.0.1:$lport/v1/items" &&
	awk 'tolower($1)=="location:" {gsub("\r",""); print $2}' "$work/hdr")
curl -fs -o "$work/item.body" "http://127.0.0.1:$lport$item_url"

# --- nginx serving the same bytes as a static file, one worker on the same core ---
bench_nginx file "$SERVER_CPU" nginx "$item_url" "$work/item.body"
nport=$BENCH_NGINX_PORT

echo "GET $item_url: $LOADGEN, $CONNS connections, ${SECS}s x $ROUNDS rounds (server on cpu $SERVER_CPU, load on cpu $CLIENT_CPU)"
: >"$work/get_ladder"
: >"$work/get_nginx"
for r in $(seq 1 "$ROUNDS"); do
	read -r rps p50 p99 < <(run_load "http://127.0.0.1:$lport$item_url" GET)
	echo "$rps" >>"$work/get_ladder"
	printf '  round %d ladder: %8s req/s  p50 %s ms  p99 %s ms\n' "$r" "$rps" "$p50" "$p99"
	read -r rps p50 p99 < <(run_load "http://127.0.0.1:$nport$item_url" GET)
	echo "$rps" >>"$work/get_nginx"
	printf '  round %d nginx : %8s req/s  p50 %s ms  p99 %s ms\n' "$r" "$rps" "$p50" "$p99"
done
gl=$(bench_median <"$work/get_ladder")
gn=$(bench_median <"$work/get_nginx")
ratio=$(bench_ratio "$gl" "$gn")
echo "GET median: ladder $gl req/s, nginx $gn req/s, ratio ${ratio}x (target >= 0.7x)"

echo "POST /v1/items durable: $LOADGEN, $CONNS connections, ${SECS}s x $ROUNDS rounds"
: >"$work/post"
for r in $(seq 1 "$ROUNDS"); do
	read -r rps p50 p99 < <(run_load "http://127.0.0.1:$lport/v1/items" POST "$work/item.json" "$auth")
	echo "$rps $p99" >>"$work/post"
	printf '  round %d: %8s writes/s  p50 %s ms  p99 %s ms\n' "$r" "$rps" "$p50" "$p99"
done
pw=$(cut -d' ' -f1 "$work/post" | bench_median)
pp=$(cut -d' ' -f2 "$work/post" | bench_median)
echo "POST median: $pw acknowledged writes/s, p99 $pp ms (target >= 20000/s)"
curl -fs "http://127.0.0.1:$lport/metrics" | grep -E '^ladder_store_write_batch_size_(sum|count) ' |
	awk '{v[$1]=$2} END {if (v["ladder_store_write_batch_size_count"]) printf "mean write batch: %.1f ops per commit\n", v["ladder_store_write_batch_size_sum"]/v["ladder_store_write_batch_size_count"]}'
