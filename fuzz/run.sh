#!/usr/bin/env bash
# Runs a fuzz target (or all of them, one after the other) for MINUTES each.
#
#   fuzz/run.sh TARGET|all MINUTES [libFuzzer options...]
#   fuzz/run.sh list                      the targets
#
# Builds with cargo-fuzz on the stable toolchain (`cargo install --locked cargo-fuzz`):
# libFuzzer's coverage instrumentation (-Cpasses=sancov-module, -Cllvm-args) and
# `--cfg fuzzing` are stable rustc flags. `-O` optimizes; fuzz/Cargo.toml turns debug
# assertions and overflow checks on for fido2d's crates (not for the crypto crates, which they
# slow down tenfold). Only the
# sanitizers need unstable `-Zsanitizer`: FUZZ_SANITIZER=address builds with AddressSanitizer
# by letting stable rustc accept that one flag (RUSTC_BOOTSTRAP=1, the same compiler, no
# nightly download). fido2d's own crates have no unsafe code outside daemon/, so the default
# is no sanitizer; use address for the dependencies' unsafe code.
#
# New inputs go to fuzz/corpus/TARGET (gitignored); the committed seeds in fuzz/seeds/TARGET
# and its regressions/ are read too. A crash stops the run, leaves the input in
# fuzz/artifacts/TARGET/ and makes this script fail; `cargo fuzz fmt TARGET FILE` and
# `cargo test --manifest-path fuzz/Cargo.toml` (which replays fuzz/seeds) help to fix it.
set -euo pipefail
cd "$(dirname "$0")"

if [[ ${1:-} == list ]]; then
  cargo fuzz list
  exit 0
fi
if (($# < 2)); then
  echo "usage: fuzz/run.sh TARGET|all MINUTES [libFuzzer options...]" >&2
  exit 2
fi
target=$1
seconds=$(awk "BEGIN { printf \"%d\", $2 * 60 }")
shift 2

sanitizer=${FUZZ_SANITIZER:-none}
if [[ $sanitizer != none ]]; then
  export RUSTC_BOOTSTRAP=1
fi

if [[ $target == all ]]; then
  mapfile -t targets < <(cargo fuzz list)
  cargo fuzz build -O --sanitizer "$sanitizer"
else
  targets=("$target")
  cargo fuzz build -O --sanitizer "$sanitizer" "$target"
fi

for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "seeds/$t"
  dirs=("corpus/$t" "seeds/$t")
  [[ -d seeds/$t/regressions ]] && dirs+=("seeds/$t/regressions")
  echo "== fuzzing $t for ${seconds}s"
  cargo fuzz run -O --sanitizer "$sanitizer" "$t" "${dirs[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@"
done
