#!/usr/bin/env bash
# Where a bench server's time per request goes, natively, function by function.
#
#   benches/load/profile.sh SECONDS [TOP] -- NAME 'SERVER_CMD' 'WRK_ARGS' [-- NAME ...]
#
# Same variant arguments as bracket.sh (ADDR in WRK_ARGS is replaced by the server's
# address). Each variant runs alone: the server pinned to core 1, wrk on core 0 with 64
# keep-alive connections, and `perf record -e cpu-clock` sampling the server at 4 kHz
# for SECONDS from one second into the load. The server is saturated (one thread, one
# core), so a function's share of the samples times wrk's mean time per request is its
# time per request.
#
# Why, beside instructions.sh: callgrind counts instructions exactly, but under valgrind
# SHA-256 runs in software (SHA-NI is hidden) and a division or a cache miss counts as
# one instruction. This samples the real run. Its totals move with the machine's phases
# like any throughput run (compare variants over repeated runs); the user-space part
# moves much less than the kernel's.
#
# Prints per variant the time per request, split into user space and kernel, and the
# TOP (default 12) user-space functions; for a variant after a baseline (a name ending
# in `bare`), the functions whose time differs most from the baseline's instead.
# Needs Debian's linux-perf, and perf_event_paranoid ≤ 2 (one's own processes).
set -euo pipefail
secs=${1:?seconds}; shift
top=12
if [ "${1:-}" != "--" ]; then top=$1; shift; fi
# shellcheck source=benches/load/common.sh
. "$(dirname "$0")/common.sh"
parse_variants "$@"
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 2; }
port=${BENCH_PORT:-23150}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# profile I: runs variant I; leaves "[k|.] ns/request symbol" lines in $out/I.ns and
# the time per request in $out/I.total.
profile() {
  local i=$1 addr="127.0.0.1:$port" pid wrk_pid rps
  BENCH_ADDR=$addr taskset -c 1 bash -c "exec ${cmds[$i]}" >"$out/$i.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  eval taskset -c 0 wrk -t1 -c64 -d"$((secs + 2))s" "${args[$i]//ADDR/$addr}" >"$out/$i.wrk" &
  wrk_pid=$!
  sleep 1
  perf record -q -e cpu-clock -F 4000 -p "$pid" -o "$out/$i.data" -- sleep "$secs" \
    >/dev/null 2>&1
  wait "$wrk_pid"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rps=$(awk '/Requests\/sec/ {print $2}' "$out/$i.wrk")
  awk -v r="$rps" 'BEGIN {printf "%.0f\n", 1e9 / r}' >"$out/$i.total"
  # "  12.34%  [.] symbol": the share becomes nanoseconds per request.
  perf report -i "$out/$i.data" --no-children --sort symbol 2>/dev/null |
    awk -v r="$rps" '/^ +[0-9.]+%/ {
      share = $1; sub(/%/, "", share); kind = $2; $1 = ""; $2 = ""
      sub(/^ +/, ""); sub(/ +- +- *$/, "")
      printf "%s %.1f %s\n", kind, share / 100 * 1e9 / r, $0
    }' >"$out/$i.ns"
}

summary() { # I: total, user space, kernel
  awk -v t="$(cat "$out/$1.total")" '
    $1 == "[.]" {u += $2} $1 == "[k]" {k += $2}
    END {printf "%s ns/request: user space %.0f, kernel %.0f\n", t, u, k}' "$out/$1.ns"
}

base=""
for i in "${!names[@]}"; do
  profile "$i"
  echo "${names[$i]}: $(summary "$i")"
  if [[ ${names[$i]} == *bare ]] || [ -z "$base" ]; then
    [[ ${names[$i]} == *bare ]] && base=$i
    awk -v top="$top" '$1 == "[.]" && ++k <= top {
      n = $2; $1 = ""; $2 = ""; sub(/^ +/, ""); printf "  %8.1f  %.110s\n", n, $0
    }' "$out/$i.ns"
  else
    # User-space functions by their difference to the baseline, largest first.
    awk 'FNR == 1 {f++} $1 == "[.]" {
           n = $2; $1 = ""; $2 = ""; sub(/^ +/, "")
           if (f == 1) a[$0] = n; else b[$0] = n; seen[$0] = 1
         }
         END {for (s in seen) printf "%.1f\t%.1f\t%.1f\t%s\n", b[s] - a[s], a[s], b[s], s}' \
      "$out/$base.ns" "$out/$i.ns" |
      awk -F '\t' '{d = $1 < 0 ? -$1 : $1; print d "\t" $0}' |
      sort -t "$(printf '\t')" -k1,1gr |
      awk -F '\t' -v top="$top" 'NR <= top {
        printf "  %+8.1f  (%6.1f → %6.1f)  %.100s\n", $2, $3, $4, $5
      }'
  fi
done
