#!/bin/bash
# bench/lib.sh - shell helpers shared by the bench scripts; sourced, never
# run. Every helper keeps its state in what the caller passes or in the
# caller's $work (a temp directory) and $pids (an array of the processes it
# started, which the caller's EXIT trap stops).

# bench_init NAME: sets $work (a new temp directory, ladder-NAME.XXXXXX),
# $data (build/NAME-data.PID, for a database: on a real disk, never tmpfs,
# or fsync costs nothing) and $pids (empty), and an EXIT trap that stops
# every process in $pids and removes both directories.
bench_init() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/ladder-$1.XXXXXX")
	data="$PWD/build/$1-data.$$"
	pids=()
	trap bench_cleanup EXIT
}

# bench_cleanup: what bench_init's EXIT trap runs.
bench_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work" "$data"
}

# bench_free_port: a free TCP port on 127.0.0.1.
bench_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bench_wait_http URL: waits up to 10 s for URL to answer 2xx.
bench_wait_http() {
	local url=$1 i
	for i in $(seq 1 100); do
		curl -fs -o /dev/null "$url" && return 0
		sleep 0.1
	done
	echo "bench: $url did not come up" >&2
	return 1
}

# bench_median: the median of the numbers on stdin, one a line (the lower
# middle one for an even count, so it is always a measured figure).
bench_median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# bench_ratio A B: A / B with two decimals.
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }

# bench_load CPU URL [ARGS...]: one closed-loop `ladder bench --rate max`
# run pinned to CPU ($BIN, $CONNS connections, $SECS seconds; ARGS are more
# ladder bench options); prints "rps p50_ms p99_ms" (service time) and
# writes the number of requests answered (2xx: less any shed, below) to
# $work/load.requests. A run with an error (a 4xx counts) is no figure: it
# fails. The one exception is
# a 503 from the server's overload protection: a closed loop at saturation
# on a shared core can see a queued request wait past the admission target
# now and then (a scheduler stall), and shedding it is the server doing its
# job. Up to BENCH_SHED_MAX (default 0.0001) of the requests may be such
# 503s: they are said on stderr and left out of the rate (2xx per second).
bench_load() {
	local cpu=$1 url=$2
	shift 2
	taskset -c "$cpu" "$BIN" bench --rate max -c "$CONNS" --duration "${SECS}s" --quiet \
		--errors-4xx --json "$work/load.json" "$@" "$url" >"$work/load.out"
	python3 - "$work/load.json" "${BENCH_SHED_MAX:-0.0001}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
lat = r.get("service_time_us") or r["latency_us"]
bad, n = r.get("errors", 0), r["requests"]
shed = int((r.get("status") or {}).get("503", 0))
if bad - shed or shed > float(sys.argv[2]) * n:
    print(f"bench: {bad} errors in the run: {r.get('status')} {r.get('errors_by_kind')}",
          file=sys.stderr)
    sys.exit(1)
rps = r["achieved_rps"] * (n - shed) / n if n else 0
if shed:
    print(f"bench: {shed} of {n} requests shed with 503 (overload protection at "
          f"saturation): left out of the rate", file=sys.stderr)
print(f'{rps:.0f} {lat["p50"]/1000:.3f} {lat["p99"]/1000:.3f}')
open(sys.argv[1].replace(".json", ".requests"), "w").write(f'{n - shed}\n')
PY
}

# bench_cpu_ticks PID: the CPU time PID (all its threads) has used so far,
# user + system, in clock ticks (getconf CLK_TCK a second).
bench_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench_cpu_us TICKS REQUESTS: microseconds of CPU per request.
bench_cpu_us() {
	awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0)}'
}

# bench_nginx KIND CPU NAME PATH BODYFILE [ETAG]: starts nginx (one worker,
# pinned to CPU, config and logs under $work/NAME) answering GET PATH with
# the bytes of BODYFILE as application/json, and sets BENCH_NGINX_PORT and
# BENCH_NGINX_WORKER (its worker's pid; the master's goes in $pids). KIND
# "memory": `return 200` with the bytes in the config (no $ in them), no
# file system work per request, the cheapest answer nginx has;
# "file": a static file under $work/NAME/www, at nginx's best for one (open
# file cache, sendfile). ETAG, when given, is sent as the ETag header (so
# nginx's headers weigh what ladder's do). Waits until nginx serves exactly
# those bytes.
bench_nginx() {
	local kind=$1 cpu=$2 name=$3 path=$4 bodyfile=$5 etag=${6:-} dir port body loc
	dir="$work/$name"
	mkdir -p "$dir"
	# nginx workers drop to an unprivileged user when started as root.
	chmod 755 "$work" "$dir"
	port=$(bench_free_port)
	if [ "$kind" = memory ]; then
		# nginx expands $ in strings, and has no escape for it.
		if grep -q '[$]' "$bodyfile"; then
			echo "bench: $bodyfile has a \$: nginx cannot return it from its config" >&2
			return 1
		fi
		# The body goes in a single-quoted nginx string: \ ' and newlines
		# escaped (nginx reads \\ \' \n \r \t in strings).
		body=$(python3 -c 'import sys; b = open(sys.argv[1], "rb").read().decode()
print(b.replace("\\", "\\\\").replace("\x27", "\\\x27").replace("\n", "\\n").replace("\r", "\\r"))' "$bodyfile")
		loc="location = $path { ${etag:+add_header ETag '$etag';} return 200 '$body'; }"
	else
		mkdir -p "$dir/www$(dirname "$path")"
		cp "$bodyfile" "$dir/www$path"
		chmod -R a+rX "$dir/www"
		loc="root $dir/www; open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s; sendfile on;"
	fi
	cat >"$dir/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	default_type application/json;
	keepalive_requests 1000000;
	client_body_temp_path $dir;
	proxy_temp_path $dir;
	fastcgi_temp_path $dir;
	uwsgi_temp_path $dir;
	scgi_temp_path $dir;
	server {
		listen 127.0.0.1:$port;
		$loc
	}
}
NGINX
	taskset -c "$cpu" nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/stdout" 2>&1 &
	pids+=($!)
	BENCH_NGINX_MASTER=$!
	bench_wait_http "http://127.0.0.1:$port$path" || { cat "$dir/error.log" >&2; return 1; }
	cmp -s <(curl -fs "http://127.0.0.1:$port$path") "$bodyfile" ||
		{ echo "bench: nginx does not serve the same bytes as $bodyfile" >&2; return 1; }
	BENCH_NGINX_PORT=$port
	# The one worker, which answers (the master only watches it).
	BENCH_NGINX_WORKER=$(cat "/proc/$BENCH_NGINX_MASTER/task/$BENCH_NGINX_MASTER/children")
	BENCH_NGINX_WORKER=${BENCH_NGINX_WORKER%% *}
}
