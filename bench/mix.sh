#!/bin/bash
# The design mix of `make bench` (issue 10, "How fast"): `ladder bench
# --scenario ladder` (100 reads to 1 write, Zipf 1.0 over users and items,
# a quarter of the reads the owner's first page of 20 items) against one
# app core on SQLite, uncached (--cache none) and cached (--cache local):
# the highest rate that holds p99 < 5 ms (ladder bench --breakpoint, open
# loop, latency from each request's intended send time), and the hit ratio
# the cached run met (the server's counters, in ladder bench's report).
#
# Each server runs with one loop thread pinned to SERVER_CPU; ladder bench
# on CLIENT_CPU (512 connections; requests that find none free wait, and
# their wait counts in the latency). With --profile, each step also shows
# the loop's CPU time per request (the server's /debug/stats and /proc),
# so a step broken by other processes on the server's core still tells
# what one core would hold alone. The rate steps from STEP by STEP up to MAX, each for
# STEP_SECONDS, and stops at the first step that breaks the objective.
# Aim: 40,400 requests/s (40,000 reads + 400 writes) at p99 < 5 ms.
#
# Usage: bench/mix.sh     (USERS=1000 ITEMS=20 STEP=4000 MAX=48000 STEP_SECONDS=5)
#        MODES="local" bench/mix.sh      only the cached server
#        SERVE_ARGS="--cache-ttl 1m" bench/mix.sh   more flags for the servers
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${LADDER_BIN:-build/rel/ladder}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
USERS=${USERS:-1000}
ITEMS=${ITEMS:-20}
STEP=${STEP:-4000}
MAX=${MAX:-48000}
STEP_SECONDS=${STEP_SECONDS:-5}
MODES=${MODES:-none local}
SLO=${SLO:-p99<5ms}

. bench/lib.sh
bench_init mix

echo "ladder bench --scenario ladder (100:1, Zipf 1.0, $USERS users x $ITEMS items), --breakpoint $STEP:$STEP:$MAX x ${STEP_SECONDS}s, --slo '$SLO' (server: 1 loop on cpu $SERVER_CPU, SQLite; load on cpu $CLIENT_CPU)"
for mode in $MODES; do
	port=$(bench_free_port)
	mkdir -p "$data/$mode"
	taskset -c "$SERVER_CPU" "$BIN" serve --listen "127.0.0.1:$port" --data "$data/$mode" \
		--threads 1 --cache "$mode" --log-requests off --argon2-ops 1 --argon2-mem 64KiB \
		${SERVE_ARGS:-} >"$work/$mode.log" 2>&1 &
	pids+=($!)
	bench_wait_http "http://127.0.0.1:$port/readyz" || { cat "$work/$mode.log" >&2; exit 1; }
	# exit 3: the objective broke at some step, which is how a breakpoint ends.
	rc=0
	taskset -c "$CLIENT_CPU" "$BIN" bench --scenario ladder --users "$USERS" \
		--items-per-user "$ITEMS" --seed-concurrency 32 -c 512 --profile "http://127.0.0.1:$port" \
		--breakpoint "$STEP:$STEP:$MAX" --step-duration "${STEP_SECONDS}s" --slo "$SLO" \
		--quiet --json "$work/$mode.json" "http://127.0.0.1:$port" >"$work/$mode.out" 2>&1 || rc=$?
	if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
		cat "$work/$mode.out" >&2
		exit 1
	fi
	python3 - "$work/$mode.json" "$mode" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
mode = sys.argv[2]
prof = {round(p["offered_rps"]): p for p in r.get("profile", {}).get("steps", [])}
for s in r["breakpoint"]["steps"]:
    p = prof.get(round(s["rate"]))
    cost = ""
    if p:
        # The loop's CPU per request, and how much of the server's core
        # other processes took: the capacity the core would have alone.
        ns = p["server"]["loop_cpu_per_request_ns"]
        u = p["utilisation"]
        other = max(0.0, p["server"]["pinned_busy"] - u["server_cpu_cores"])
        cost = f'  loop {ns/1000:5.1f} us/req (1 core: {1e9/ns:6.0f}/s), others on its core {100*other:3.0f}%'
    print(f'  {mode:5} step {s["rate"]:6.0f}/s: achieved {s["achieved_rps"]:6.0f}/s  '
          f'p99 {s["p99_us"]/1000:7.2f} ms  errors {s["errors"]}{cost}  {"held" if s["held"] else "broke: " + s["why"]}')
held = r["breakpoint"]["max_rate_held"]
c = r.get("cache")
hit = (f'; hit ratio {100 * c["hit_ratio"]:.1f}% of {c["lookups"]} look-ups'
       if c and c.get("hit_ratio") is not None else "")
print(f'mix {mode}: highest rate held {held or 0:.0f}/s at p99 < 5 ms{hit}')
PY
	if [ -n "${KEEP_REPORTS:-}" ]; then
		cp "$work/$mode.json" "$KEEP_REPORTS.$mode.json"
	fi
	kill "${pids[-1]}" 2>/dev/null || true
done
echo "aim: 40400/s (40,000 reads + 400 writes) at p99 < 5 ms on one core"
