#!/usr/bin/env bash
# What recording metrics costs: the HS256 layer and the rate-limit layer in process,
# built without the `metrics` feature ("off") and with it and a Prometheus recorder
# installed ("on"), the two binaries run in turn (off on, on off, …) in one run.
# Prints a Markdown table on stdout, progress on stderr.
#
#   bench/metrics.sh
#
# Environment (default): RUNS (15) runs of each binary; ROUNDS (7) rounds inside each
# run and N (20000) requests per round (see bench/src/bin/metrics_cost.rs). A time is
# the median over the runs of each run's median; "÷ bare" is each run's median ratio
# to bare axum in the same rounds, which cancels most of a shared machine's drift.
# With valgrind installed, each layer's instructions per request are counted too
# (callgrind, N requests after a warm-up): exact where times are not.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-15}
export ROUNDS=${ROUNDS:-7} N=${N:-20000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
target=$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]+)".*/\1/')

log "building metrics_cost without the metrics feature"
cargo build --release -q -p portcullis-bench --bin metrics_cost
cp "$target/release/metrics_cost" "$tmp/off"
log "building metrics_cost with the metrics feature"
cargo build --release -q -p portcullis-bench --features metrics --bin metrics_cost
cp "$target/release/metrics_cost" "$tmp/on"

pin=()
if (($(nproc) >= 2)); then pin=(taskset -c 1); fi
for ((run = 1; run <= RUNS; run++)); do
  order=(off on)
  ((run % 2 == 0)) && order=(on off)
  for variant in "${order[@]}"; do
    log "run $run/$RUNS: $variant"
    "${pin[@]}" "$tmp/$variant" | tee -a "$tmp/$variant.txt" >&2
  done
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
field() { grep -oE "(^| )$2=[0-9.]+" "$tmp/$1.txt" | cut -d= -f2 | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
instructions() { # binary layer -> instructions per request, counted in `served` only
  local refs
  refs=$(valgrind --tool=callgrind --collect-atstart=no --toggle-collect=metrics_cost::served \
    --callgrind-out-file=/dev/null "$tmp/$1" serve "$2" 2>&1 | sed -n 's/.*refs: *//p' | tr -d ,)
  echo $((refs / N))
}

echo "### Metrics on vs off, in process (median of $RUNS runs × $ROUNDS rounds of $N requests)"
echo
echo "\`bench/metrics.sh\`, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
echo
if command -v valgrind > /dev/null; then
  echo "| layer | ns, off | ns, on | ÷ bare, off | ÷ bare, on | on ÷ off (÷ bare) | instructions, off | instructions, on | on ÷ off (instructions) |"
  echo "|---|---|---|---|---|---|---|---|---|"
else
  echo "| layer | ns, off | ns, on | ÷ bare, off | ÷ bare, on | on ÷ off (÷ bare) |"
  echo "|---|---|---|---|---|---|"
fi
for layer in bare hs256 ratelimit; do
  off=$(field off "$layer") on=$(field on "$layer")
  if [ "$layer" = bare ]; then
    row="| $layer | $off | $on | 1 | 1 | |"
  else
    roff=$(field off "$layer/bare") ron=$(field on "$layer/bare")
    row="| $layer | $off | $on | $roff | $ron | $(ratio "$ron" "$roff") |"
  fi
  if command -v valgrind > /dev/null; then
    log "counting instructions: $layer"
    ioff=$(instructions off "$layer") ion=$(instructions on "$layer")
    row="$row $ioff | $ion | $(ratio "$ion" "$ioff") |"
  fi
  echo "$row"
done
