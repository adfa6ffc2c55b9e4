#!/usr/bin/env bash
# Records real traffic for the seed corpora: starts fido2d over UDP, runs the python-fido2
# end-to-end ceremonies against it with FIDO2D_TRACE_DIR set (tests/e2e/udp_hid.py writes one
# trace per connection), then turns the traces into seeds with tools/seeds.py.
#
# Usage: fuzz/tools/record.sh [TRACE_DIR]   (needs python-fido2: .ci/deps installs it)
# The seeds under fuzz/seeds/ are committed; re-run this when the protocol grows.
set -euo pipefail
cd "$(dirname "$0")/../.."
traces=${1:-$(mktemp -d)}
mkdir -p "$traces"
state=$(mktemp -d)
log=$(mktemp)
port=18731

cargo build --release -p fido2d
trap 'rm -rf "$state" "$log"' EXIT

# Runs SCRIPT ARGS... against a fresh fido2d (its own state directory).
record() {
  local script=$1
  shift
  [[ -f $script ]] || return 0
  rm -rf "$state/state"
  ./target/release/fido2d --config /dev/null --transport udp --udp-port "$port" \
    --state-dir "$state/state" --presence auto-approve 2>"$log" &
  local daemon=$!
  for _ in $(seq 100); do
    grep -q "CTAPHID over UDP on" "$log" && break
    sleep 0.1
  done
  echo "== recording $script $*"
  FIDO2D_TRACE_DIR="$traces" python3 "$script" "$port" "$@" >/dev/null ||
    echo "($script had failures)"
  kill "$daemon"
  wait "$daemon" || true
}

record tests/e2e/ceremonies.py
record tests/e2e/pin.py features
python3 fuzz/tools/seeds.py "$traces" fuzz/seeds
echo "traces in $traces"
