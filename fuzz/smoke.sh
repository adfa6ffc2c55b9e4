#!/usr/bin/env bash
# CI smoke test of the fuzzers: builds every target and runs each for SECONDS (default 30),
# two at a time, from the committed seeds only (the corpus goes to a temporary folder), so the
# targets stay buildable and a regression in the code they cover shows up.
#
#   fuzz/smoke.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo fuzz build -O --sanitizer none
mapfile -t targets < <(cargo fuzz list)
run_one() {
  local t=$1 dirs=("$work/$1" "seeds/$1")
  mkdir -p "$work/$t"
  [[ -d seeds/$t/regressions ]] && dirs+=("seeds/$t/regressions")
  if cargo fuzz run -O --sanitizer none "$t" "${dirs[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$work/$t.log" 2>&1; then
    echo "fuzz $t: ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$') runs in ${seconds}s)"
  else
    echo "fuzz $t: FAILED"
    tail -40 "$work/$t.log"
    return 1
  fi
}
export -f run_one
export work seconds
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} bash -c 'run_one {}'
