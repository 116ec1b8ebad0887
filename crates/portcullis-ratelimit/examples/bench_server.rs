//! A hello-world axum server for load comparisons: `bare`, `noop` (a layer that does
//! nothing), `ours` (a hot key never limited) or `tower_governor` (the same quota), on
//! $BENCH_ADDR.
//!
//! ```text
//! benches/load/ab.sh 5 8 -- bare './target/release/examples/bench_server bare' 'http://ADDR/' \
//!   -- ours './target/release/examples/bench_server ours' 'http://ADDR/' \
//!   -- tower_governor './target/release/examples/bench_server tower_governor' 'http://ADDR/'
//! ```

use std::{net::SocketAddr, num::NonZeroU32};

use axum::{Router, routing::get};
use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "bare".into());
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:38123".into());
    // A quota no load run reaches: 1e9 per second, burst 1e9.
    let burst = NonZeroU32::new(1_000_000_000).unwrap();
    let router = Router::new().route("/", get(|| async { "hello" }));
    let app = match mode.as_str() {
        "bare" => router,
        // axum's own cost of a layer: a `Router::layer` that does nothing.
        "noop" => router.layer(tower::util::MapRequestLayer::new(
            |r: axum::http::Request<axum::body::Body>| r,
        )),
        "ours" => router.layer(RateLimitLayer::new(
            ClientIpKey::new(),
            Quota::per_second(burst),
        )),
        "tower_governor" => {
            use tower_governor::{GovernorLayer, governor::GovernorConfigBuilder};
            let config = GovernorConfigBuilder::default()
                .per_nanosecond(1)
                .burst_size(burst.get())
                .finish()
                .unwrap();
            router.layer(GovernorLayer::new(config))
        }
        other => panic!("unknown mode {other}"),
    };
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .unwrap();
}
