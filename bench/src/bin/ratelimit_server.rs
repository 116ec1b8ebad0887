//! A hello-world axum server for load comparisons, on $BENCH_ADDR:
//!
//! - `bare`, `noop` (a `Router::layer` that does nothing), `ours` (a hot key never
//!   limited), `ours-same-body` (the same with `same_body()`) and `tower_governor` (the
//!   same quota), each put on the router with `Router::layer`;
//! - `ours-outer` and `tower_governor-outer`: the layer wrapped around the whole router
//!   (`ours` with `same_body()`, so that the router's `Response<Body>` is kept), limiting
//!   before routing and without axum's own price for a `Router::layer`.
//!
//! ```text
//! benches/load/ab.sh 5 8 -- bare './target/release/examples/ratelimit_bench_server bare' 'http://ADDR/' \
//!   -- ours './target/release/examples/ratelimit_bench_server ours' 'http://ADDR/' \
//!   -- tower_governor './target/release/examples/ratelimit_bench_server tower_governor' 'http://ADDR/'
//! ```

use std::{net::SocketAddr, num::NonZeroU32};

use axum::{Router, ServiceExt, extract::Request, routing::get};
use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
use tower::Layer;
use tower_governor::{GovernorLayer, governor::GovernorConfigBuilder};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "bare".into());
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:38123".into());
    // A quota no load run reaches: 1e9 per second, burst 1e9.
    let burst = NonZeroU32::new(1_000_000_000).unwrap();
    let router = Router::new().route("/", get(|| async { "hello" }));
    let ours = RateLimitLayer::new(ClientIpKey::new(), Quota::per_second(burst));
    let governor = || {
        let config = GovernorConfigBuilder::default()
            .per_nanosecond(1)
            .burst_size(burst.get())
            .finish()
            .unwrap();
        GovernorLayer::new(config)
    };
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    match mode.as_str() {
        "ours-outer" => {
            let app = ours.same_body().layer(router);
            let make =
                ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app);
            return axum::serve(listener, make).await.unwrap();
        }
        "tower_governor-outer" => {
            let app = governor().layer(router);
            let make =
                ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app);
            return axum::serve(listener, make).await.unwrap();
        }
        _ => {}
    }
    let app = match mode.as_str() {
        "bare" => router,
        // axum's own cost of a layer: a `Router::layer` that does nothing.
        "noop" => router.layer(tower::util::MapRequestLayer::new(
            |r: axum::http::Request<axum::body::Body>| r,
        )),
        "ours" => router.layer(ours),
        "ours-same-body" => router.layer(ours.same_body()),
        "tower_governor" => router.layer(governor()),
        other => panic!("unknown mode {other}"),
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .unwrap();
}
