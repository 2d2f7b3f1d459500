#!/bin/bash
# bench/generator.sh - is `ladder bench` ever the bottleneck? Runs it at full
# speed (closed loop, --rate max) side by side with wrk against nginx
# answering 512 bytes from memory (`return 200`, no file I/O): each generator
# pinned to core 0, nginx (one worker) to core 1, alternating runs so drift
# hurts both alike. Prints the medians and the ratio ladder/wrk (the target
# is >= 1.0).
#
# nginx answers from memory so that it is cheaper per request than either
# generator: then the generator is the limit and req/s measures it. Serving a
# file from disk made nginx the limit and both generators tied.
#
#   bench/generator.sh            3 runs of 10 s each per tool
#   GEN_RUNS=5 GEN_DURATION=20s GEN_CONNECTIONS=64 bench/generator.sh
#
# Needs wrk, nginx (nginx-light), taskset: scripts/deps.sh bench.
# LADDER_BIN picks the binary (default build/rel/ladder).
set -eu
cd "$(dirname "$0")/.."

BIN="${LADDER_BIN:-build/rel/ladder}"
RUNS="${GEN_RUNS:-3}"
DUR="${GEN_DURATION:-10s}"
CONNS="${GEN_CONNECTIONS:-64}"

for tool in wrk nginx taskset python3; do
	if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
		echo "generator.sh: $tool is missing (scripts/deps.sh bench)" >&2
		exit 2
	fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$BIN" ]; then
	echo "generator.sh: $BIN not built (make)" >&2
	exit 2
fi

if [ "$(nproc)" -ge 2 ]; then
	GEN_PIN=(taskset -c 0)
	SRV_PIN=(taskset -c 1)
else
	echo "generator.sh: one core only: running unpinned" >&2
	GEN_PIN=()
	SRV_PIN=()
fi

tmp=$(mktemp -d)
nginx_pid=""
cleanup() {
	if [ -n "$nginx_pid" ]; then
		kill "$nginx_pid" 2>/dev/null || true
		wait "$nginx_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# The answer nginx gives from memory: 512 bytes.
body=$(head -c 512 /dev/zero | tr '\0' 'x')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path $tmp;
	proxy_temp_path $tmp;
	fastcgi_temp_path $tmp;
	uwsgi_temp_path $tmp;
	scgi_temp_path $tmp;
	server {
		listen 127.0.0.1:$port;
		location = /index.html {
			default_type text/html;
			return 200 "$body";
		}
	}
}
CONF
"${SRV_PIN[@]}" "$NGINX" -c "$tmp/nginx.conf" -p "$tmp" &
nginx_pid=$!
up=0
for _ in $(seq 50); do
	if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
		up=1
		break
	fi
	sleep 0.1
done
if [ "$up" != 1 ]; then
	echo "generator.sh: nginx did not come up on 127.0.0.1:$port (see below)" >&2
	cat "$tmp/error.log" >&2 2>/dev/null || true
	exit 1
fi
url="http://127.0.0.1:$port/index.html"

median() {
	sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

# cpu_of CMD...: runs CMD with stdout to $tmp/out and prints the CPU seconds
# (user + system) it used: the cost per request tells the generators apart
# even when the server is what limits both.
cpu_of() {
	local TIMEFORMAT='%3U %3S'
	{ time "$@" >"$tmp/out"; } 2>"$tmp/time"
	awk '{print $1 + $2}' "$tmp/time"
}

wrk_rps=()
ladder_rps=()
wrk_cpu=()
ladder_cpu=()
for i in $(seq "$RUNS"); do
	c=$(cpu_of "${GEN_PIN[@]}" wrk -t1 -c"$CONNS" -d"$DUR" "$url")
	out=$(cat "$tmp/out")
	if grep -q "Non-2xx" <<<"$out"; then
		echo "generator.sh: wrk saw non-2xx answers:" >&2
		echo "$out" >&2
		exit 1
	fi
	r=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	wrk_rps+=("$r")
	wrk_cpu+=("$(awk -v c="$c" -v n="$n" 'BEGIN {print c * 1e6 / n}')")
	printf 'run %d  wrk           %12.1f req/s  %6.2f us cpu/req\n' "$i" "$r" "${wrk_cpu[-1]}"

	c=$(cpu_of "${GEN_PIN[@]}" "$BIN" bench --rate max -c "$CONNS" --duration "$DUR" -q \
		--json "$tmp/ladder.json" "$url")
	r=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["results"]
bad = d["requests"] - d["status"].get("200", 0)
if bad or d["errors"]:
    sys.exit("ladder bench saw %d failed answers" % max(bad, d["errors"]))
print(d["achieved_rps"], d["requests"])' "$tmp/ladder.json")
	n=${r#* }
	r=${r% *}
	ladder_rps+=("$r")
	ladder_cpu+=("$(awk -v c="$c" -v n="$n" 'BEGIN {print c * 1e6 / n}')")
	printf 'run %d  ladder bench  %12.1f req/s  %6.2f us cpu/req\n' "$i" "$r" "${ladder_cpu[-1]}"
done

w=$(printf '%s\n' "${wrk_rps[@]}" | median)
l=$(printf '%s\n' "${ladder_rps[@]}" | median)
echo "generator: nginx return 200 with 512 B, $CONNS connections, $DUR x $RUNS runs, pinned"
printf 'generator: wrk median          %12.1f req/s\n' "$w"
printf 'generator: ladder bench median %12.1f req/s\n' "$l"
awk -v l="$l" -v w="$w" 'BEGIN {printf "generator: ladder bench / wrk = %.2fx (target >= 1.0x)\n", l / w}'
wc=$(printf '%s\n' "${wrk_cpu[@]}" | median)
lc=$(printf '%s\n' "${ladder_cpu[@]}" | median)
printf 'generator: cpu per request: wrk %.2f us, ladder bench %.2f us (wrk/ladder = %.2fx)\n' \
	"$wc" "$lc" "$(awk -v a="$wc" -v b="$lc" 'BEGIN {print a / b}')"
echo "generator: when neither uses its whole core, the server is the limit and req/s ties"
