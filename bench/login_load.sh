#!/usr/bin/env bash
# Login throughput of quickstart binaries side by side: each binary serves in turn on
# loopback (SQLite in a fresh data directory), USERS accounts are registered, then wrk
# sends correct-password logins for SECS seconds; ROUNDS rounds, contenders alternated.
#
#   bench/login_load.sh NAME=path/to/quickstart [NAME=path/to/other ...]
#
# Env: ROUNDS (3), SECS (10), USERS (16), CONNS (8). Needs wrk and curl.
set -euo pipefail
ROUNDS="${ROUNDS:-3}" SECS="${SECS:-10}" USERS="${USERS:-16}" CONNS="${CONNS:-8}"
here="$(cd "$(dirname "$0")" && pwd)"
port=$((20000 + RANDOM % 20000))

serve() { # binary data_dir
  LOGIN_ATTEMPTS_PER_MINUTE=1000000 RUST_LOG=warn "$1" --addr "127.0.0.1:$port" \
    --data-dir "$2" >"$2/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start: $(cat "$2/log")" >&2
  exit 1
}

declare -A results
for round in $(seq 1 "$ROUNDS"); do
  for contender in "$@"; do
    name="${contender%%=*}" binary="${contender#*=}"
    data="$(mktemp -d)"
    serve "$binary" "$data"
    for u in $(seq 0 $((USERS - 1))); do
      curl -fs -o /dev/null -X POST "http://127.0.0.1:$port/auth/register" \
        -H 'content-type: application/json' \
        -d "{\"email\":\"user$u@example.com\",\"password\":\"a long enough load test passphrase\"}"
    done
    rps=$(wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$here/login.lua" \
      "http://127.0.0.1:$port/auth/login" -- "$USERS" 2>/dev/null |
      awk '/Requests\/sec/ { print $2 }')
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$data"
    results[$name]="${results[$name]:-} $rps"
    printf 'round %s  %-8s %8s logins/s\n' "$round" "$name" "$rps"
  done
done
for contender in "$@"; do
  name="${contender%%=*}"
  printf '%-8s median %s\n' "$name" \
    "$(tr ' ' '\n' <<<"${results[$name]}" | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
done
