#!/usr/bin/env bash
# Every side-by-side comparison of Portcullis in one run; prints the tables (Markdown)
# on stdout, progress on stderr. BENCH.md at the workspace root explains the method.
#
#   bench/compare.sh [SECTION...]
#
# Sections (default: inproc http memory flood redis):
#   inproc  in process: the JWT layer against bare axum and the peers for every
#           algorithm and traffic shape; cold HS256 against its floor; the API-key and
#           rate-limit layers against bare axum and tower_governor (the `inproc` binary);
#   http    the same contenders as HTTP servers under wrk on loopback;
#   memory  1,000,000 distinct client IPs sprayed at the rate limit and at tower_governor;
#   flood   a cheap route's throughput while a login route hashes passwords;
#   redis   the Redis rate-limit backend against the in-process one (skipped when
#           nothing answers at REDIS_URL).
#
# Environment (default):
#   ROUNDS (7)        in-process rounds; contenders alternate, the order reversed every
#                     other round; each cell is the median
#   SCALE (1)         in-process requests per round, times each group's base
#   ALGS, SHAPES      in-process algorithms (HS256,ES256,EdDSA,RS256) and shapes
#                     (one,distinct,zipf)
#   HTTP_ROUNDS (3), SECS (2)    rounds of SECS-second wrk runs per contender
#   HTTP_ALGS (HS256,ES256), HTTP_SHAPES (one,distinct,zipf)
#   BASELINE_DIR      another checkout (e.g. the previous release) whose
#                     jwt_bench_server and ratelimit_bench_server examples join the HTTP
#                     groups as "baseline" (HS256, ES256 and the rate limit, in their
#                     default modes; the JWT one on a one-worker multi-thread runtime)
#
# HTTP runs: wrk -t1 -c64 (keep-alive) pinned to core 0, every server of a group
# started at once on its own port and pinned to core 1, each warmed for one second,
# then SECS-second runs, each between two runs of the group's bare server (see
# http_group). Needs wrk (`apt-get install wrk`) and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
sections=("$@")
((${#sections[@]})) || sections=(inproc http memory flood redis)
HTTP_ROUNDS=${HTTP_ROUNDS:-3}
SECS=${SECS:-2}
HTTP_ALGS=${HTTP_ALGS:-HS256,ES256}
HTTP_SHAPES=${HTTP_SHAPES:-one,distinct,zipf}
PORT0=${BENCH_PORT:-23150}
tmp=$(mktemp -d)
pids=()
stop_servers() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_servers; rm -rf "$tmp"' EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

if (($(nproc) >= 2)); then server_cpu=(taskset -c 1); client_cpu=(taskset -c 0); else server_cpu=(); client_cpu=(); fi

log "building the bench binaries (release, with the peers)"
cargo build --release -q -p portcullis-bench --features peers --bins
target=$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]+)".*/\1/')
bin=$target/release
cp "$bin"/{inproc,jwt_server,apikey_server,ratelimit_server,spray,flood_server,redis_server,redis_bench} "$tmp/"
bin=$tmp

baseline_jwt="" baseline_rl=""
if [ -n "${BASELINE_DIR:-}" ]; then
  log "building the baseline's bench servers in $BASELINE_DIR"
  (cd "$BASELINE_DIR" && cargo build --release -q -p portcullis-jwt --example jwt_bench_server &&
    cargo build --release -q -p portcullis-ratelimit --example ratelimit_bench_server)
  cp "$target/release/examples/jwt_bench_server" "$tmp/baseline_jwt"
  cp "$target/release/examples/ratelimit_bench_server" "$tmp/baseline_ratelimit"
  baseline_jwt=$tmp/baseline_jwt baseline_rl=$tmp/baseline_ratelimit
fi

echo "## Portcullis side by side, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "\`bench/compare.sh ${sections[*]}\` at $(git describe --always --dirty 2>/dev/null || echo '?');" \
  "$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), load average $(cut -d' ' -f1-3 /proc/loadavg) at the start."
echo

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
thousands() { LC_ALL=C awk -v n="$1" 'BEGIN {s = sprintf("%.0f", n); o = ""; while (length(s) > 3) {o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3)}; print s o}'; }

wait_port() {
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# http_group LABEL NAME 'SERVER_CMD' 'WRK_ARGS' [NAME ...]
# Starts every server (SERVER_CMD sees its address in $BENCH_ADDR) and warms each. The
# first one is the baseline: in each of HTTP_ROUNDS rounds every other contender runs
# between two runs of it (bare, A, bare, B, bare, ...; the order of A, B, ... reversed
# every other round) and its ratio is taken against the mean of those two, so that the
# machine's slow phases, which last seconds, cancel. WRK_ARGS may use ADDR (the server's
# address) and OFFSET (a random number, new for each run). Sets rps[LABEL/NAME] (median
# requests per second) and ratio[LABEL/NAME] (median ratio to the baseline; for the
# baseline, each inner run against its neighbours: the method's own noise, ideally 1),
# or "failed" when a server did not start or answered anything but 2xx.
declare -A rps ratio
http_group() {
  local label=$1 names=() cmds=() args=() i r
  shift
  while (($#)); do names+=("$1"); cmds+=("$2"); args+=("$3"); shift 3; done
  local n=${#names[@]} ok=()
  for ((i = 0; i < n; i++)); do
    BENCH_ADDR=127.0.0.1:$((PORT0 + i)) "${server_cpu[@]}" bash -c "exec ${cmds[$i]}" >"$tmp/server-$i.log" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < n; i++)); do
    if wait_port $((PORT0 + i)); then ok[i]=1; else ok[i]=0; log "$label ${names[$i]} did not start: $(tail -3 "$tmp/server-$i.log")"; fi
  done
  local -A samples=() ratios=() failed=()
  measure() { # index seconds: sets got
    local a=${args[$1]//ADDR/127.0.0.1:$((PORT0 + $1))} out
    a=${a//OFFSET/$((RANDOM * 32768 + RANDOM))}
    out=$(eval "${client_cpu[*]}" wrk -t1 -c64 -d"$2s" "$a")
    got=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    if grep -q 'Non-2xx' <<<"$out"; then failed[$1]=1; fi
  }
  local got
  for ((i = 0; i < n; i++)); do
    if ((ok[i])); then measure "$i" 1; fi
  done
  for ((r = 0; r < HTTP_ROUNDS; r++)); do
    local order=() before after
    for ((i = 1; i < n; i++)); do if ((ok[i])); then order+=("$i"); fi; done
    if ((r % 2)); then order=($(printf '%s\n' "${order[@]}" | tac)); fi
    measure 0 "$SECS"; before=$got; samples[0]="${samples[0]:-} $got"
    local bares=("$got")
    for i in "${order[@]}"; do
      measure "$i" "$SECS"; local v=$got
      measure 0 "$SECS"; after=$got
      samples[$i]="${samples[$i]:-} $v"; samples[0]="${samples[0]} $after"; bares+=("$after")
      ratios[$i]="${ratios[$i]:-} $(awk -v v="$v" -v a="$before" -v b="$after" 'BEGIN {printf "%.4f", 2 * v / (a + b)}')"
      log "$label round $((r + 1)) ${names[$i]}: $v req/s between ${names[0]} runs of $before and $after"
      before=$after
    done
    for ((i = 1; i + 1 < ${#bares[@]}; i++)); do
      ratios[0]="${ratios[0]:-} $(awk -v v="${bares[$i]}" -v a="${bares[$((i - 1))]}" -v b="${bares[$((i + 1))]}" 'BEGIN {printf "%.4f", 2 * v / (a + b)}')"
    done
  done
  for ((i = 0; i < n; i++)); do
    if ((ok[i] == 0)) || [ -n "${failed[$i]:-}" ] || [ -z "${samples[$i]:-}" ]; then
      rps[$label/${names[$i]}]=failed; ratio[$label/${names[$i]}]=failed
    else
      rps[$label/${names[$i]}]=$(printf '%s\n' ${samples[$i]} | median)
      ratio[$label/${names[$i]}]=$(printf '%s\n' ${ratios[$i]:-1} | median)
    fi
  done
  stop_servers
}

# cell LABEL NAME: "0.89× (81,234)", NAME's median ratio to the baseline and its median
# requests/s; for the baseline, "81,234 (A/A 1.00)".
cell() {
  local v=${rps[$1/$2]:-} q=${ratio[$1/$2]:-}
  if [ -z "$v" ]; then echo "not measured"
  elif [ "$v" = failed ]; then echo "failed"
  elif [ "$2" = "${3:-}" ]; then echo "$(thousands "$v") (A/A $(awk -v q="$q" 'BEGIN {printf "%.2f", q}'))"
  else echo "$(awk -v q="$q" 'BEGIN {printf "%.2f", q}')× ($(thousands "$v"))"
  fi
}

# versus LABEL A B: A's ratio divided by B's ("1.01×").
versus() {
  local a=${ratio[$1/$2]:-} b=${ratio[$1/$3]:-}
  case "$a$b" in *failed* | "") echo "—"; return ;; esac
  [ -n "$a" ] && [ -n "$b" ] || { echo "—"; return; }
  awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f×", a / b}'
}

section_inproc() {
  log "in process: ROUNDS=${ROUNDS:-7} SCALE=${SCALE:-1} ALGS=${ALGS:-all} SHAPES=${SHAPES:-all}"
  "$bin/inproc" jwt floor layers
}

section_http() {
  local alg shape tokens_n
  echo "### JWT layer over HTTP (median ratio to the bare runs around each run, and median requests/s; $HTTP_ROUNDS rounds of ${SECS}s runs)"
  echo
  local head="| alg | shape | bare | Portcullis (default) | Portcullis, cache off | axum-jwt-auth | jwt-authorizer; its axum 0.7 bare |"
  local rule="|---|---|---|---|---|---|---|"
  if [ -n "$baseline_jwt" ]; then head="$head baseline |"; rule="$rule---|"; fi
  local rows=()
  for alg in ${HTTP_ALGS//,/ }; do
    for shape in ${HTTP_SHAPES//,/ }; do
      case $alg/$shape in
        */one) tokens_n=1 ;;
        HS256/*) tokens_n=250000 ;;
        RS256/*) tokens_n=30000 ;;
        *) tokens_n=150000 ;;
      esac
      log "HTTP $alg $shape: writing tokens"
      "$bin/jwt_server" tokens "$alg" "$shape" "$tokens_n" "$tmp/$alg-$shape" 2>&1 | sed 's/^/  /' >&2
      local w="-s bench/load.lua http://ADDR/ -- $tmp/$alg-$shape OFFSET"
      local group=(bare "$bin/jwt_server serve bare $alg" "$w"
        portcullis "$bin/jwt_server serve portcullis $alg" "$w"
        nocache "$bin/jwt_server serve portcullis-nocache $alg" "$w"
        axum-jwt-auth "$bin/jwt_server serve axum-jwt-auth $alg" "$w"
        jwt-authorizer-bare "$bin/jwt_server serve jwt-authorizer-bare $alg" "$w"
        jwt-authorizer "$bin/jwt_server serve jwt-authorizer $alg" "$w")
      if [ -n "$baseline_jwt" ]; then
        case $alg in
          HS256) group+=(baseline "env TOKIO_WORKER_THREADS=1 $baseline_jwt hs256" "$w") ;;
          ES256) group+=(baseline "env TOKIO_WORKER_THREADS=1 $baseline_jwt es256-cached" "$w") ;;
        esac
      fi
      http_group "$alg-$shape" "${group[@]}"
      local L=$alg-$shape
      local row="| $alg | $shape | $(cell "$L" bare bare) | $(cell "$L" portcullis) | $(cell "$L" nocache) | $(cell "$L" axum-jwt-auth) | $(cell "$L" jwt-authorizer); its bare $(cell "$L" jwt-authorizer-bare | cut -d" " -f1) |"
      if [ -n "$baseline_jwt" ]; then row="$row $(cell "$L" baseline) |"; fi
      rows+=("$row")
      rm -f "$tmp/$alg-$shape".*
    done
  done
  printf '%s\n' "$head" "$rule" "${rows[@]}"
  echo

  log "HTTP: rate limit and API key"
  local group=(bare "$bin/ratelimit_server bare" "http://ADDR/"
    noop "$bin/ratelimit_server noop" "http://ADDR/"
    portcullis "$bin/ratelimit_server portcullis" "http://ADDR/"
    tower_governor "$bin/ratelimit_server tower_governor" "http://ADDR/"
    portcullis-outer "$bin/ratelimit_server portcullis-outer" "http://ADDR/"
    tower_governor-outer "$bin/ratelimit_server tower_governor-outer" "http://ADDR/")
  if [ -n "$baseline_rl" ]; then group+=(baseline "$baseline_rl ours" "http://ADDR/"); fi
  http_group ratelimit "${group[@]}"
  local key; key=$("$bin/apikey_server" keygen)
  local h="-H 'x-api-key: $key' http://ADDR/"
  http_group apikey bare "$bin/apikey_server bare" "$h" \
    noop "$bin/apikey_server noop" "$h" \
    apikey "env BENCH_API_KEY=$key $bin/apikey_server apikey" "$h" \
    apikey-outer "env BENCH_API_KEY=$key $bin/apikey_server apikey-outer" "$h"
  echo "### Rate-limit and API-key layers over HTTP (median ratio to the bare runs around each run, and median requests/s; $HTTP_ROUNDS rounds of ${SECS}s runs)"
  echo
  echo "| variant | ratio to bare (requests/s) | ÷ tower_governor in the same place |"
  echo "|---|---|---|"
  echo "| rate limit: bare | $(cell ratelimit bare bare) | |"
  echo "| a \`Router::layer\` doing nothing | $(cell ratelimit noop) | |"
  echo "| Portcullis rate limit, \`Router::layer\` (README) | $(cell ratelimit portcullis) | $(versus ratelimit portcullis tower_governor) |"
  echo "| tower_governor, \`Router::layer\` | $(cell ratelimit tower_governor) | |"
  echo "| Portcullis rate limit around the router | $(cell ratelimit portcullis-outer) | $(versus ratelimit portcullis-outer tower_governor-outer) |"
  echo "| tower_governor around the router | $(cell ratelimit tower_governor-outer) | |"
  if [ -n "$baseline_rl" ]; then echo "| baseline rate limit, \`Router::layer\` | $(cell ratelimit baseline) | |"; fi
  echo "| API key: bare | $(cell apikey bare bare) | |"
  echo "| a \`route_layer\` doing nothing | $(cell apikey noop) | |"
  echo "| Portcullis API key, \`route_layer\` (README), memory store, 10,000 keys | $(cell apikey apikey) | |"
  echo "| Portcullis API key around the router | $(cell apikey apikey-outer) | |"
  echo
}

section_memory() {
  log "memory: spraying 1,000,000 client IPs"
  echo "### 1,000,000 distinct client IPs sprayed at a rate limit (quota 2 per minute)"
  echo
  echo "| limiter | keys tracked after | peak RSS | RSS after | exhausted key still refused |"
  echo "|---|---|---|---|---|"
  local which line
  for which in ours tower_governor; do
    line=$("$bin/spray" "$which" 1000000)
    # "ours: keys=… tracked_after=… refused=… victim_status=… rss_before_kb=… peak_rss_kb=… rss_after_kb=…"
    awk -v w="$which" '{
      for (i = 2; i <= NF; i++) {split($i, kv, "="); f[kv[1]] = kv[2]}
      name = (w == "ours") ? "Portcullis (default key cap)" : "tower_governor"
      n = f["tracked_after"] ""; t = ""
      while (length(n) > 3) {t = "," substr(n, length(n) - 2) t; n = substr(n, 1, length(n) - 3)}
      printf "| %s | %s | %.1f MB | %.1f MB | %s |\n", name, n t, f["peak_rss_kb"] / 1024, f["rss_after_kb"] / 1024, (f["victim_status"] == 429) ? "yes" : "no (" f["victim_status"] ")"
    }' <<<"$line"
  done
  echo
}

section_flood() {
  log "flood: /ping unloaded and while /login is flooded"
  local port=$PORT0 rounds=${HTTP_ROUNDS} u f l unloaded=() flooded=() logins=()
  BENCH_ADDR=127.0.0.1:$port "${server_cpu[@]}" "$bin/flood_server" >"$tmp/flood.log" 2>&1 &
  pids+=($!)
  wait_port "$port" || { log "flood_server did not start"; return; }
  printf 'wrk.method = "POST"\nwrk.body = "a wrong password for the flood"\n' >"$tmp/login.lua"
  for ((r = 0; r < rounds; r++)); do
    u=$("${client_cpu[@]}" wrk -t1 -c64 -d"${SECS}s" "http://127.0.0.1:$port/ping" | awk '/Requests\/sec/ {print $2}')
    "${client_cpu[@]}" wrk -t1 -c64 -d"$((SECS + 2))s" -s "$tmp/login.lua" "http://127.0.0.1:$port/login" >"$tmp/login.out" &
    local w=$!
    sleep 1
    f=$("${client_cpu[@]}" wrk -t1 -c64 -d"${SECS}s" "http://127.0.0.1:$port/ping" | awk '/Requests\/sec/ {print $2}')
    wait "$w"
    l=$(awk '/Requests\/sec/ {print $2}' "$tmp/login.out")
    unloaded+=("$u"); flooded+=("$f"); logins+=("$l")
    log "flood round $((r + 1)): /ping $u req/s unloaded, $f flooded (/login $l req/s)"
  done
  stop_servers
  local mu mf ml
  mu=$(printf '%s\n' "${unloaded[@]}" | median); mf=$(printf '%s\n' "${flooded[@]}" | median)
  ml=$(printf '%s\n' "${logins[@]}" | median)
  echo "### Login flood (argon2id at the default cost, hashing threads at nice 10)"
  echo
  echo "| /ping unloaded | /ping while /login is flooded | ratio | /login answered |"
  echo "|---|---|---|---|"
  echo "| $(thousands "$mu") req/s | $(thousands "$mf") req/s | $(awk -v a="$mf" -v b="$mu" 'BEGIN {printf "%.2f", a / b}')× | $(awk -v l="$ml" 'BEGIN {printf "%.1f", l}') req/s |"
  echo
}

section_redis() {
  local url=${REDIS_URL:-redis://127.0.0.1:6379}
  local hostport=${url#redis://}; hostport=${hostport%%/*}
  if ! (exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}") 2>/dev/null; then
    log "redis: nothing answers at $url, skipped"
    echo "Redis: not measured (nothing answered at $url)."
    echo
    return
  fi
  log "redis: checks per second, then over HTTP"
  echo "### Redis rate-limit backend (one multiplexed connection, concurrent checks pipelined)"
  echo
  echo '```'
  REDIS_URL=$url "$bin/redis_bench" "$SECS" 64
  echo '```'
  echo
  http_group redis bare "$bin/redis_server bare" "http://ADDR/" \
    governor "$bin/redis_server governor" "http://ADDR/" \
    redis "env REDIS_URL=$url $bin/redis_server redis" "http://ADDR/"
  echo "| rate limit over HTTP, \`Router::layer\` | ratio to bare (requests/s) |"
  echo "|---|---|"
  echo "| bare | $(cell redis bare bare) |"
  echo "| in-process backend (governor) | $(cell redis governor) |"
  echo "| Redis backend | $(cell redis redis) |"
  echo
}

for s in "${sections[@]}"; do
  case $s in
    inproc | http | memory | flood | redis) "section_$s" ;;
    *) echo "unknown section $s: inproc http memory flood redis" >&2; exit 2 ;;
  esac
done
