#!/usr/bin/env bash
# Every HTTP comparison of the layers against bare axum, in one alternating run.
#
#   benches/load/layers.sh [ROUNDS] [SECONDS]
#
# Builds the bench servers of portcullis-jwt, portcullis-apikey and portcullis-ratelimit
# (release), then runs benches/load/ab.sh with each layered variant beside the bare
# router of the same binary. Every variant gets the same request headers. The `noop`
# variants put a layer that does nothing where ours goes (axum's own cost of a layer),
# and `jwt-core-only` runs the core AuthLayer with a ready-made principal (its cost
# before any token is read).
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
  -- jwt-noop "$J noop" "$H" \
  -- jwt-core-only "$J core-only" "$H" \
  -- jwt-hs256 "$J hs256" "$H" \
  -- jwt-es256-cached "$J es256-cached" "$HE" \
  -- apikey-bare "$A bare" "$HK" \
  -- apikey "BENCH_API_KEY=$KEY $A apikey" "$HK" \
  -- ratelimit-bare "$R bare" "http://ADDR/" \
  -- ratelimit-noop "$R noop" "http://ADDR/" \
  -- ratelimit-ours "$R ours" "http://ADDR/" \
  -- tower_governor "$R tower_governor" "http://ADDR/"
