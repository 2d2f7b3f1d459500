#!/bin/bash
# `make bench`: every throughput figure, each side by side with its reference
# in the same run. Not part of `make test` (timings are noisy on shared
# machines); the figures it prints go into the issues' closing notes.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ladder serve vs nginx, and durable writes =="
bench/server.sh
if [ -x bench/generator.sh ]; then
	echo
	echo "== ladder bench vs wrk (load generator speed) =="
	bench/generator.sh
fi
echo
echo "== the response cache: L1 hit vs nginx, L2 hit vs redis-benchmark =="
bench/cache.sh
echo
echo "== the design mix on one core: highest rate at p99 < 5 ms, uncached and cached =="
bench/mix.sh
echo
echo "== ladder on PostgreSQL vs pgbench (reads, durable writes) =="
bench/postgres.sh
echo
echo "== scale-out: capped app nodes behind HAProxy, USL fit =="
bench/scale.sh
echo
echo "== overload: goodput and p99 at 2x capacity, admission control on and off =="
bench/overload.sh
echo
echo "== memory per idle keep-alive connection =="
bench/idle.sh
echo
echo "== ladder worker vs vipsthumbnail, and the job queue =="
bench/thumbs.sh
