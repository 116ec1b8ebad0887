#!/usr/bin/env bash
# Runs every fuzz target for SECS seconds (default 30) from its committed seeds, on the
# stable toolchain: `cargo fuzz` with `--sanitizer none` (AddressSanitizer needs nightly;
# the targets cap the heap at 32 MiB and time every input instead). Fails on any crash,
# panic, input slower than 10 ms, or heap past the cap; the crashing input is kept in
# $WORK/artifacts/<target>/.
#
#   fuzz/run.sh [target ...]
#
# Env: SECS (30); WORK (~/.cache/portcullis/fuzz): the growing corpora and artifacts,
# outside the clone; CARGO_TARGET_DIR (default $WORK/target).
set -euo pipefail
cd "$(dirname "$0")"
SECS="${SECS:-30}"
WORK="${WORK:-$HOME/.cache/portcullis/fuzz}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$WORK/target}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(bearer_token signed_parts jwk forwarded api_key dpop_proof)
fi
cargo fuzz build -s none -O
for target in "${targets[@]}"; do
  mkdir -p "$WORK/corpus/$target" "$WORK/artifacts/$target"
  echo "== fuzz $target (${SECS}s)"
  if ! cargo fuzz run -s none -O "$target" "$WORK/corpus/$target" "seeds/$target" -- \
      -max_total_time="$SECS" -max_len=4096 -timeout=1 -rss_limit_mb=1024 \
      -artifact_prefix="$WORK/artifacts/$target/" -print_final_stats=1 2>"$WORK/$target.log"; then
    grep -v '^ *[0-9]*: \|^ *at ' "$WORK/$target.log" | tail -30
    echo "fuzz $target: FAILED (input in $WORK/artifacts/$target/)"
    exit 1
  fi
  grep -E '^Done|stat::number_of_executed_units|stat::peak_rss_mb' "$WORK/$target.log" || true
done
echo "fuzz: every target ran ${SECS}s, no crash"
