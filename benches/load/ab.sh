#!/usr/bin/env bash
# Side-by-side HTTP load comparison on loopback, alternating A B A B ...
#
#   benches/load/ab.sh ROUNDS SECONDS -- NAME1 'SERVER_CMD1' 'WRK_ARGS1' -- NAME2 'SERVER_CMD2' 'WRK_ARGS2' [...]
#
# Each SERVER_CMD must start an HTTP server on the address in $BENCH_ADDR and keep running.
# The server is pinned to core 1 and wrk to core 0; 64 connections, keep-alive.
# WRK_ARGS are appended to wrk's command line (e.g. -H 'authorization: Bearer ...' and the URL
# path, where the literal string ADDR is replaced by the server address).
#
# Each variant is compared with its baseline: the nearest variant before it (or itself)
# whose name ends in `bare`, else the first variant.
#
# Prints each run's requests/s and the server's CPU time per request (user and system,
# read from /proc/PID/stat around the wrk run), then per variant:
# - the median requests/s and its ratio to the baseline's median;
# - the median of the per-round ratios (each run against the baseline's run in the same
#   round), which cancels slow phases of the host that span a round;
# - the median user-space CPU time per request, and its difference to the baseline's:
#   the layer's own work, which the kernel's share (most of a hello-world request) does
#   not blur.
set -euo pipefail
rounds=${1:?rounds}; secs=${2:?seconds}; shift 2
# shellcheck source=benches/load/common.sh
. "$(dirname "$0")/common.sh"
parse_variants "$@"
port=${BENCH_PORT:-38123}
export BENCH_ADDR="127.0.0.1:$port"
ticks=$(getconf CLK_TCK)
declare -A rps_of ratio_of user_of base_of
b=0
for i in "${!names[@]}"; do
  [[ ${names[$i]} == *bare ]] && b=$i
  base_of[$i]=$b
done
declare -A round_rps
for ((r = 1; r <= rounds; r++)); do
  for i in "${!names[@]}"; do
    taskset -c 1 bash -c "${cmds[$i]}" >/tmp/ab-server.log 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
      sleep 0.1
    done
    a=${args[$i]//ADDR/$BENCH_ADDR}
    read -r u0 s0 < <(cpu_ticks "$pid")
    out=$(eval taskset -c 0 wrk -t1 -c64 -d"${secs}s" "$a")
    read -r u1 s1 < <(cpu_ticks "$pid")
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    user=$(awk -v d=$((u1 - u0)) -v t="$ticks" -v n="$reqs" 'BEGIN {printf "%.3f", d / t * 1e6 / n}')
    sys=$(awk -v d=$((s1 - s0)) -v t="$ticks" -v n="$reqs" 'BEGIN {printf "%.3f", d / t * 1e6 / n}')
    round_rps[$i]=$rps
    ratio=$(awk -v a="$rps" -v b="${round_rps[${base_of[$i]}]}" 'BEGIN {printf "%.4f", a / b}')
    echo "round $r ${names[$i]}: $rps req/s (x$ratio), CPU per request: user $user µs, system $sys µs"
    rps_of[$i]="${rps_of[$i]:-} $rps"
    ratio_of[$i]="${ratio_of[$i]:-} $ratio"
    user_of[$i]="${user_of[$i]:-} $user"
  done
done
declare -A med_of med_user_of
for i in "${!names[@]}"; do
  med_of[$i]=$(printf '%s\n' ${rps_of[$i]} | median)
  med_user_of[$i]=$(printf '%s\n' ${user_of[$i]} | median)
  med_ratio=$(printf '%s\n' ${ratio_of[$i]} | median)
  b=${base_of[$i]}
  ratio=$(awk -v m="${med_of[$i]}" -v b="${med_of[$b]}" 'BEGIN {printf "%.3f", m/b}')
  extra=$(awk -v m="${med_user_of[$i]}" -v b="${med_user_of[$b]}" 'BEGIN {printf "%+.3f", m - b}')
  echo "median ${names[$i]}: ${med_of[$i]} req/s (x$ratio of ${names[$b]}); per-round ratio median x$med_ratio; user CPU ${med_user_of[$i]} µs/request ($extra)"
done
