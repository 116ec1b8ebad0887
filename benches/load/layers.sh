#!/usr/bin/env bash
# Every HTTP comparison of the layers against bare axum, in one alternating run.
#
#   benches/load/layers.sh [ROUNDS] [SECONDS]
#
# Builds the bench servers of portcullis-jwt, portcullis-apikey and portcullis-ratelimit
# (release), then runs benches/load/ab.sh with each layered variant beside the bare
# router of the same binary. Every variant gets the same request headers. The
# `same-body` variants are the same layers with `same_body()` (responses in axum's own
# body type); the `outer` variants wrap the whole router instead of using
# `Router::layer`. `instructions.sh` also counts the diagnostic variants (`noop`: a layer
# that does nothing; `jwt-core-only`: the core AuthLayer with a ready-made principal).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}; secs=${2:-8}
# shellcheck source=benches/load/servers.sh
. benches/load/servers.sh
H="-H 'authorization: Bearer $HS' http://ADDR/"
HE="-H 'authorization: Bearer $ES' http://ADDR/"
HK="-H 'x-api-key: $KEY' http://ADDR/"
benches/load/ab.sh "$rounds" "$secs" \
  -- jwt-bare "$J bare" "$H" \
  -- jwt-hs256 "$J hs256" "$H" \
  -- jwt-hs256-same-body "$J hs256-same-body" "$H" \
  -- jwt-es256-cached "$J es256-cached" "$HE" \
  -- jwt-es256-same-body "$J es256-same-body" "$HE" \
  -- apikey-bare "$A bare" "$HK" \
  -- apikey "BENCH_API_KEY=$KEY $A apikey" "$HK" \
  -- apikey-same-body "BENCH_API_KEY=$KEY $A apikey-same-body" "$HK" \
  -- ratelimit-bare "$R bare" "http://ADDR/" \
  -- ratelimit-ours "$R ours" "http://ADDR/" \
  -- ratelimit-same-body "$R ours-same-body" "http://ADDR/" \
  -- tower_governor "$R tower_governor" "http://ADDR/" \
  -- ratelimit-outer "$R ours-outer" "http://ADDR/" \
  -- tower_governor-outer "$R tower_governor-outer" "http://ADDR/"
