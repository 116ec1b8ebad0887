# Sourced by the load scripts: builds the bench servers (release) into
# $CARGO_TARGET_DIR/bench-bin and sets J, A, R, K (the jwt, apikey, ratelimit and JWKS
# servers) and HS, ES, KEY, JT (an HS256 token, an ES256 token, an API key and the JWKS
# server's token).
target=${CARGO_TARGET_DIR:-target}
bin="$target/bench-bin"
mkdir -p "$bin"
for crate in jwt apikey ratelimit; do
  cargo build -q --release -p "portcullis-$crate" --example "${crate}_bench_server"
  cp "$target/release/examples/${crate}_bench_server" "$bin/$crate"
done
cargo build -q --release -p portcullis-jwt --features jwks --example bench_jwks_server
cp "$target/release/examples/bench_jwks_server" "$bin/jwks"
J="$bin/jwt"; A="$bin/apikey"; R="$bin/ratelimit"; K="$bin/jwks"
HS=$("$J" token-hs256); ES=$("$J" token-es256); KEY=$("$A" keygen); JT=$("$K" token)
