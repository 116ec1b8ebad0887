//! Memory under a spray of distinct client IPs: ours or tower_governor, one per
//! process.
//!
//! ```text
//! cargo run --release -p portcullis-bench --bin spray -- ours [KEYS]
//! cargo run --release -p portcullis-bench --bin spray -- tower_governor [KEYS]
//! ```
//!
//! Calls the layered service directly (no network) with `ConnectInfo` set, then
//! prints peak RSS (VmHWM) and RSS after (VmRSS, with the limiter still alive) from /proc/self/status, and checks
//! that the limiter still refuses an exhausted key.

use std::{
    convert::Infallible,
    net::{Ipv4Addr, SocketAddr},
    num::NonZeroU32,
};

use axum::{body::Body, extract::ConnectInfo};
use http::{Request, Response};
use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
use tower::{Layer, Service, ServiceExt};

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn request(ip: Ipv4Addr) -> Request<Body> {
    Request::get("/")
        .extension(ConnectInfo(SocketAddr::from((ip, 4000))))
        .body(Body::empty())
        .unwrap()
}

async fn spray<S>(mut svc: S, keys: u32) -> (u32, u16)
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Error: std::fmt::Debug,
{
    // Exhaust one victim first (burst 2).
    let victim = Ipv4Addr::new(192, 0, 2, 1);
    for _ in 0..3 {
        let _ = svc
            .ready()
            .await
            .unwrap()
            .call(request(victim))
            .await
            .unwrap();
    }
    let mut refused = 0;
    for i in 0..keys {
        let ip = Ipv4Addr::from(0x0b00_0000u32 + i);
        let res = svc.ready().await.unwrap().call(request(ip)).await.unwrap();
        if res.status() == 429 {
            refused += 1;
        }
    }
    let victim_status = svc
        .ready()
        .await
        .unwrap()
        .call(request(victim))
        .await
        .unwrap()
        .status()
        .as_u16();
    (refused, victim_status)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "ours".into());
    let keys: u32 = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let inner = tower::service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    let base_kb = status_kb("VmRSS:");
    let quota = Quota::per_minute(NonZeroU32::new(2).unwrap());
    let (refused, victim, tracked, after_kb) = match which.as_str() {
        "ours" => {
            let layer = RateLimitLayer::new(ClientIpKey::new(), quota);
            let backend = layer.backend().clone();
            let (refused, victim) = spray(layer.layer(inner), keys).await;
            (refused, victim, backend.tracked(), status_kb("VmRSS:"))
        }
        "tower_governor" => {
            use tower_governor::{
                GovernorLayer, governor::GovernorConfigBuilder, key_extractor::PeerIpKeyExtractor,
            };
            let config = GovernorConfigBuilder::default()
                .per_second(30)
                .burst_size(2)
                .key_extractor(PeerIpKeyExtractor)
                .finish()
                .unwrap();
            let limiter = config.limiter().clone();
            let layer = GovernorLayer::new(config);
            let svc = layer.layer(inner).map_response(|r| r.map(Body::new));
            let (refused, victim) = spray(svc, keys).await;
            (refused, victim, limiter.len(), status_kb("VmRSS:"))
        }
        other => panic!("unknown mode {other}: ours | tower_governor"),
    };
    println!(
        "{which}: keys={keys} tracked_after={tracked} refused={refused} victim_status={victim} \
         rss_before_kb={base_kb} peak_rss_kb={} rss_after_kb={}",
        status_kb("VmHWM:"),
        after_kb
    );
}
