#!/usr/bin/env bash
# User-space instructions per request of each HTTP bench server, counted by callgrind.
#
#   benches/load/instructions.sh [SECONDS]
#
# The throughput runs (`layers.sh`) are the targets' measure, but on a shared 2-core
# machine their rounds move by ±10 %, and most of a hello-world request's time is the
# kernel's. Instruction counts do not move with the machine: the same binary, requests
# and environment give the same count. Each server runs under
# `valgrind --tool=callgrind` with instrumentation off while it starts; it is switched
# on for SECONDS of wrk load (64 connections) and the count is divided by the requests
# wrk completed (the up to 64 requests in flight when wrk stops add at most 64 / N to
# the figure). Prints, per variant, instructions per request and the difference to the
# nearest variant before it whose name ends in `bare`.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
# shellcheck source=benches/load/servers.sh
. benches/load/servers.sh
export BENCH_API_KEY=$KEY
port=${BENCH_PORT:-38123}
export BENCH_ADDR="127.0.0.1:$port"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

count() { # NAME 'SERVER_CMD' 'WRK_ARGS'
  local name=$1 cmd=$2 a=${3//ADDR/$BENCH_ADDR}
  # `$!` is valgrind's PID, which is the server's: valgrind runs it in its own process.
  # shellcheck disable=SC2086 # the command splits into program and mode
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/$name.%p" $cmd \
    >"$out/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  callgrind_control -i on "$pid" >/dev/null 2>&1
  local reqs
  reqs=$(eval wrk -t1 -c64 -d"${secs}s" "$a" | awk '/requests in/ {print $1}')
  callgrind_control -d "$pid" >/dev/null 2>&1
  for _ in $(seq 1 300); do
    if compgen -G "$out/$name.*.1" >/dev/null && grep -q '^totals:' "$out/$name".*.1; then break; fi
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  # The first dump (`.1`) holds the instrumented period; `totals:` is its Ir count.
  local ir
  ir=$(awk '/^totals:/ {print $2}' "$out/$name".*.1)
  awk -v ir="$ir" -v n="$reqs" 'BEGIN {printf "%.0f\n", ir / n}'
}

base=0
report() { # NAME 'SERVER_CMD' 'WRK_ARGS'
  local per
  per=$(count "$@")
  [[ $1 == *bare ]] && base=$per
  printf '%-22s %8s instructions/request (%+d)\n' "$1" "$per" $((per - base))
}

H="-H 'authorization: Bearer $HS' http://ADDR/"
HE="-H 'authorization: Bearer $ES' http://ADDR/"
HK="-H 'x-api-key: $KEY' http://ADDR/"
report jwt-bare "$J bare" "$H"
report jwt-noop "$J noop" "$H"
report jwt-core-only "$J core-only" "$H"
report jwt-hs256 "$J hs256" "$H"
report jwt-hs256-same-body "$J hs256-same-body" "$H"
report jwt-es256-cached "$J es256-cached" "$HE"
report jwt-es256-same-body "$J es256-same-body" "$HE"
report jwt-hs256-outer "$J hs256-outer" "$H"
report jwt-es256-outer "$J es256-outer" "$HE"
report apikey-bare "$A bare" "$HK"
report apikey-noop "$A noop" "$HK"
report apikey "$A apikey" "$HK"
report apikey-same-body "$A apikey-same-body" "$HK"
report apikey-outer "$A apikey-outer" "$HK"
report jwks-bare "$K bare" "-H 'authorization: Bearer $JT' http://ADDR/"
report jwks-es256 "$K jwks-es256" "-H 'authorization: Bearer $JT' http://ADDR/"
report static-es256 "$K static-es256" "-H 'authorization: Bearer $JT' http://ADDR/"
report ratelimit-bare "$R bare" "http://ADDR/"
report ratelimit-noop "$R noop" "http://ADDR/"
report ratelimit-ours "$R ours" "http://ADDR/"
report ratelimit-same-body "$R ours-same-body" "http://ADDR/"
report tower_governor "$R tower_governor" "http://ADDR/"
report ratelimit-outer "$R ours-outer" "http://ADDR/"
report tower_governor-outer "$R tower_governor-outer" "http://ADDR/"
