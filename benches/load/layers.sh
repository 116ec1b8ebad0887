#!/usr/bin/env bash
# Every HTTP comparison of the layers against bare axum, in one bracketed run.
#
#   benches/load/layers.sh [ROUNDS] [SECONDS]
#
# Builds the bench servers of portcullis-jwt, portcullis-apikey and portcullis-ratelimit
# (release), then runs benches/load/bracket.sh: each layered variant is measured between
# two runs of the bare router of the same binary, taken just before and after it. Every
# variant of a group gets the same request headers. The `same-body` variants are the
# layers with `same_body()` (responses in axum's own body type) put on the route; the
# `outer` variants are `same_body()` layers wrapped around the whole router, so axum's
# own price for a `route_layer` / `Router::layer` is not paid; `ratelimit-noop` is that
# price alone (a `Router::layer` that does nothing), the ceiling for any layer put
# there, and `apikey-noop` the same for a `route_layer`. `instructions.sh` also counts
# the other diagnostic variants (`jwt-noop`; `jwt-core-only`: the core AuthLayer with a
# ready-made principal); `profile.sh` shows where the time of any of them goes.
# `ab.sh` is the older method: every variant once per round, a fresh server each time.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-15}; secs=${2:-2}
# shellcheck source=benches/load/servers.sh
. benches/load/servers.sh
H="-H 'authorization: Bearer $HS' http://ADDR/"
HE="-H 'authorization: Bearer $ES' http://ADDR/"
HK="-H 'x-api-key: $KEY' http://ADDR/"
HJ="-H 'authorization: Bearer $JT' http://ADDR/"
benches/load/bracket.sh "$rounds" "$secs" \
  -- jwt-bare "$J bare" "$H" \
  -- jwt-hs256 "$J hs256" "$H" \
  -- jwt-hs256-same-body "$J hs256-same-body" "$H" \
  -- jwt-hs256-outer "$J hs256-outer" "$H" \
  -- jwt-es256-cached "$J es256-cached" "$HE" \
  -- jwt-es256-same-body "$J es256-same-body" "$HE" \
  -- jwt-es256-outer "$J es256-outer" "$HE" \
  -- jwks-bare "$K bare" "$HJ" \
  -- jwks-es256 "$K jwks-es256" "$HJ" \
  -- apikey-bare "$A bare" "$HK" \
  -- apikey-noop "$A noop" "$HK" \
  -- apikey "BENCH_API_KEY=$KEY $A apikey" "$HK" \
  -- apikey-same-body "BENCH_API_KEY=$KEY $A apikey-same-body" "$HK" \
  -- apikey-outer "BENCH_API_KEY=$KEY $A apikey-outer" "$HK" \
  -- ratelimit-bare "$R bare" "http://ADDR/" \
  -- ratelimit-noop "$R noop" "http://ADDR/" \
  -- ratelimit-ours "$R ours" "http://ADDR/" \
  -- ratelimit-same-body "$R ours-same-body" "http://ADDR/" \
  -- tower_governor "$R tower_governor" "http://ADDR/" \
  -- ratelimit-outer "$R ours-outer" "http://ADDR/" \
  -- tower_governor-outer "$R tower_governor-outer" "http://ADDR/"
