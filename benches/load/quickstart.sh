#!/usr/bin/env bash
# Load benchmark of the quickstart example (release build), on loopback:
#
#   1. GET /me (bearer JWT: EdDSA signature, verified-token cache, revocation check)
#      against GET /healthz (a bare route of the same server), alternating runs via ab.sh;
#   2. POST /auth/login throughput at the default argon2id cost (m=19456 KiB, t=2, p=1).
#
#   cargo build --release --example quickstart
#   benches/load/quickstart.sh [ROUNDS=5] [SECONDS=8] [LOGIN_CONNECTIONS=4]
#
# The server is pinned to core 1 and wrk to core 0 (as in ab.sh). Data lives in a fresh
# temporary SQLite directory; the token used for /me survives the restarts ab.sh does,
# because the signing key is kept in that directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}; secs=${2:-8}; login_conns=${3:-4}
target=${CARGO_TARGET_DIR:-target}
bin="$target/release/examples/quickstart"
[ -x "$bin" ] || { echo "build it first: cargo build --release --example quickstart" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

data=$(mktemp -d)
trap 'rm -rf "$data"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
port=${BENCH_PORT:-38123}
addr="127.0.0.1:$port"
email=bench@example.com
password='a long enough benchmark passphrase'

wait_up() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "server did not start" >&2; exit 1
}

# One user and one access token, made once.
LOGIN_ATTEMPTS_PER_MINUTE=1000000 "$bin" --addr "$addr" --data-dir "$data" >"$data/setup.log" 2>&1 &
pid=$!
wait_up
curl -fsS -o /dev/null -X POST "http://$addr/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"$password\"}"
token=$(curl -fsS -X POST "http://$addr/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"$password\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
curl -fsS -o /dev/null -H "authorization: Bearer $token" "http://$addr/me"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

echo "== GET /healthz (bare) vs GET /me (bearer JWT), $rounds rounds of ${secs}s, 64 connections"
server="'$bin' --addr \$BENCH_ADDR --data-dir '$data'"
BENCH_PORT=$port benches/load/ab.sh "$rounds" "$secs" \
  -- healthz "$server" "http://ADDR/healthz" \
  -- me "$server" "-H 'authorization: Bearer $token' http://ADDR/me"

echo "== POST /auth/login, default argon2id cost, $login_conns connections, ${secs}s x $rounds"
cat >"$data/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"email":"$email","password":"$password"}'
statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format("p50 %.1f ms, p99 %.1f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
LOGIN_ATTEMPTS_PER_MINUTE=1000000 taskset -c 1 "$bin" --addr "$addr" --data-dir "$data" >"$data/login.log" 2>&1 &
pid=$!
wait_up
for ((r = 1; r <= rounds; r++)); do
  out=$(taskset -c 0 wrk -t1 -c"$login_conns" -d"${secs}s" -s "$data/login.lua" "http://$addr/auth/login")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  lat=$(grep '^p50' <<<"$out" || true)
  echo "round $r login: $rps logins/s (${lat}; non-2xx: ${non2xx:-0})"
done
