#!/bin/bash
# Runs every libFuzzer target for SECONDS each (default 20) on its seed corpus
# (tests/fuzz/corpus/<target>/, read-only: new inputs go to a temp dir) and
# its dictionary (tests/fuzz/<target>.dict) when there is one. Expects
# `make BUILD=fuzz fuzz-build` done. Ends with "N passed, N failed" where each
# target is one test. A crash leaves its input in tests/fuzz/ (crash-*).
# FUZZ_SEED fixes libFuzzer's seed (make test uses 1, so a CI run explores
# what the last run explored and a failure reproduces); empty = random.
set -u
cd "$(dirname "$0")/../.."
secs="${1:-20}"
passed=0
failed=0
for bin in build/fuzz/tests/fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	seed="tests/fuzz/corpus/$name"
	work=$(mktemp -d)
	args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
		${FUZZ_SEED:+-seed="$FUZZ_SEED"}
		-artifact_prefix=tests/fuzz/ "$work")
	[ -d "$seed" ] && args+=("$seed")
	[ -f "tests/fuzz/$name.dict" ] && args=(-dict="tests/fuzz/$name.dict" "${args[@]}")
	echo "fuzz: $name for ${secs}s"
	if "$bin" "${args[@]}" >"$work.log" 2>&1; then
		passed=$((passed + 1))
		grep -E 'stat::number_of_executed_units' "$work.log" | sed "s/^/  $name /"
	else
		failed=$((failed + 1))
		tail -n 60 "$work.log"
		echo "FAIL fuzz $name"
	fi
	rm -rf "$work" "$work.log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
