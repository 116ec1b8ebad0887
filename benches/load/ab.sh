#!/usr/bin/env bash
# Side-by-side HTTP load comparison on loopback, alternating A B A B ...
#
#   benches/load/ab.sh ROUNDS SECONDS -- NAME1 'SERVER_CMD1' 'WRK_ARGS1' -- NAME2 'SERVER_CMD2' 'WRK_ARGS2' [...]
#
# Each SERVER_CMD must start an HTTP server on the address in $BENCH_ADDR and keep running.
# The server is pinned to core 1 and wrk to core 0; 64 connections, keep-alive.
# WRK_ARGS are appended to wrk's command line (e.g. -H 'authorization: Bearer ...' and the URL
# path, where the literal string ADDR is replaced by the server address).
# Prints each run's requests/s and, per variant, the median and its ratio to the first variant.
set -euo pipefail
rounds=${1:?rounds}; secs=${2:?seconds}; shift 2
[ "${1:-}" = "--" ] && shift
names=(); cmds=(); args=()
while [ $# -gt 0 ]; do
  names+=("$1"); cmds+=("$2"); args+=("$3"); shift 3
  [ "${1:-}" = "--" ] && shift
done
port=${BENCH_PORT:-38123}
export BENCH_ADDR="127.0.0.1:$port"
declare -A results
for ((r = 1; r <= rounds; r++)); do
  for i in "${!names[@]}"; do
    taskset -c 1 bash -c "${cmds[$i]}" >/tmp/ab-server.log 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
      sleep 0.1
    done
    a=${args[$i]//ADDR/$BENCH_ADDR}
    rps=$(eval taskset -c 0 wrk -t1 -c64 -d"${secs}s" "$a" | awk '/Requests\/sec/ {print $2}')
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    echo "round $r ${names[$i]}: $rps req/s"
    results[$i]="${results[$i]:-} $rps"
  done
done
base=""
for i in "${!names[@]}"; do
  med=$(printf '%s\n' ${results[$i]} | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  [ -z "$base" ] && base=$med
  ratio=$(awk -v m="$med" -v b="$base" 'BEGIN {printf "%.3f", m/b}')
  echo "median ${names[$i]}: $med req/s (x$ratio of ${names[0]})"
done
