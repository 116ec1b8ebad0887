//! A hello-world axum server for load comparisons, on $BENCH_ADDR, each client key hot
//! and never limited (a quota of 1e9 per second):
//!
//! - `bare`, `noop` (a `Router::layer` that does nothing), `portcullis` (the rate-limit
//!   layer as the README puts it, `Router::layer`) and `tower_governor` (the same
//!   quota, the same placement);
//! - `portcullis-outer` and `tower_governor-outer`: the layer wrapped around the whole
//!   router, limiting before routing, without axum's own price for a `Router::layer`.

use std::{net::SocketAddr, num::NonZeroU32};

use axum::{Router, ServiceExt, extract::Request};
use portcullis_bench::contenders::hello;
use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
use tower::Layer;
use tower_governor::{GovernorLayer, governor::GovernorConfigBuilder};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "bare".into());
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:38123".into());
    let burst = NonZeroU32::new(1_000_000_000).unwrap();
    let router = hello();
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
        "portcullis-outer" => {
            let app = ours.layer(router);
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
    let app: Router = match mode.as_str() {
        "bare" => router,
        // axum's own cost of a layer: a `Router::layer` that does nothing.
        "noop" => router.layer(tower::util::MapRequestLayer::new(|r: Request| r)),
        "portcullis" => router.layer(ours),
        "tower_governor" => router.layer(governor()),
        other => panic!(
            "unknown mode {other}: bare | noop | portcullis | tower_governor | portcullis-outer | tower_governor-outer"
        ),
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .unwrap();
}
