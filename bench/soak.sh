#!/usr/bin/env bash
# The fault soak, long form: two quickstart instances on a PostgreSQL and a Redis of
# their own (loopback, free ports), mixed traffic for SOAK_SECS seconds (default 180),
# Redis killed at a quarter, PostgreSQL at a half, both at three quarters, 2 s each;
# then the checks of tests/quickstart/soak.rs, and its summary. CI runs the same test
# for 20 s as part of `cargo test`.
#
#   bench/soak.sh            # SOAK_SECS=180
#   SOAK_SECS=600 bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECS="${SOAK_SECS:-180}" CI="${CI:-true}"
cargo test --all-features --test quickstart soak::two_instances -- --nocapture 2>&1 |
  grep -E '^(soak:|faults:|checked:|RSS MiB:|losses:|test result)|panicked'
