#!/usr/bin/env bash
# Login flood: GET /ping throughput unloaded vs while a second wrk floods POST /login.
#
#   crates/portcullis-password/benches/flood.sh [ROUNDS] [SECONDS] [FLOOD_NICE]
#
# The server (examples/flood_server.rs, release) is pinned to core 1; both wrk
# processes to core 0; 64 keep-alive connections for /ping, 64 for /login. Rounds
# alternate unloaded / flooded; prints each run and the medians with their ratio.
set -euo pipefail
rounds=${1:-5}; secs=${2:-8}; nice=${3:-10}
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
cargo build --release -q -p portcullis-password --example flood_server
bin=${CARGO_TARGET_DIR:-target}/release/examples/flood_server
port=${BENCH_PORT:-38124}
export BENCH_ADDR="127.0.0.1:$port"
FLOOD_NICE=$nice taskset -c 1 "$bin" >/tmp/flood-server.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
lua=$(mktemp --suffix=.lua)
printf 'wrk.method = "POST"\nwrk.body = "a wrong password for the flood"\n' >"$lua"
ping() { taskset -c 0 wrk -t1 -c64 -d"${secs}s" "http://$BENCH_ADDR/ping" | awk '/Requests\/sec/ {print $2}'; }
unloaded=(); flooded=(); logins=()
for ((r = 1; r <= rounds; r++)); do
  u=$(ping); unloaded+=("$u"); echo "round $r unloaded /ping: $u req/s"
  taskset -c 0 wrk -t1 -c64 -d"$((secs + 2))s" -s "$lua" "http://$BENCH_ADDR/login" >/tmp/flood-login.txt &
  wpid=$!
  sleep 1
  f=$(ping); flooded+=("$f")
  wait $wpid
  l=$(awk '/Requests\/sec/ {print $2}' /tmp/flood-login.txt); logins+=("$l")
  echo "round $r flooded  /ping: $f req/s (login flood answered $l req/s)"
done
rm -f "$lua"
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mu=$(median "${unloaded[@]}"); mf=$(median "${flooded[@]}"); ml=$(median "${logins[@]}")
echo "median unloaded /ping: $mu req/s"
echo "median flooded  /ping: $mf req/s (x$(awk -v a="$mf" -v b="$mu" 'BEGIN {printf "%.3f", a/b}') of unloaded); /login answered $ml req/s"
