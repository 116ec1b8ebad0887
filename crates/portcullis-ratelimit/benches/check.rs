//! The cost of one check on a hot key: our backend beside governor's plain keyed
//! limiter (the floor), the whole layer around a no-op service, and an axum router
//! bare, behind our layer and behind tower_governor's, side by side (the in-process
//! twin of the HTTP comparison in `benches/load/layers.sh`).

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use std::{
    convert::Infallible,
    hint::black_box,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
};

use axum::{Router, body::Body, extract::ConnectInfo, routing::get};
use criterion::{Criterion, criterion_group, criterion_main};
use governor::RateLimiter;
use http::{Request, Response};
use portcullis_ratelimit::{ClientIpKey, GovernorBackend, Quota, RateLimitLayer};
use tower::{Layer, Service, ServiceExt};

fn bench(c: &mut Criterion) {
    let quota = Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap());
    let key = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    let floor = RateLimiter::<IpAddr, _, _>::dashmap(quota);
    c.bench_function("governor check_key (floor)", |b| {
        b.iter(|| black_box(floor.check_key(black_box(&key)).is_ok()))
    });

    let ours = GovernorBackend::new(quota);
    // What the layer asks without success headers: whether to admit.
    c.bench_function("GovernorBackend::check_now", |b| {
        b.iter(|| black_box(ours.check_now(black_box(&key)).is_allowed()))
    });
    // With success headers: the counts for `r` and `t` too.
    c.bench_function("GovernorBackend::check_now + counts", |b| {
        b.iter(|| {
            let d = ours.check_now(black_box(&key));
            black_box((d.is_allowed(), d.remaining(), d.reset()))
        })
    });

    let peer = ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4000)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (name, on_success) in [
        ("RateLimit service call (layer + no-op inner)", false),
        ("RateLimit service call, headers_on_success", true),
    ] {
        let mut svc = RateLimitLayer::new(ClientIpKey::new(), quota)
            .headers_on_success(on_success)
            .layer(tower::service_fn(|_: Request<Body>| async {
                Ok::<_, Infallible>(Response::new(Body::empty()))
            }));
        c.bench_function(name, |b| {
            b.iter(|| {
                let req = Request::get("/")
                    .extension(peer)
                    .body(Body::empty())
                    .unwrap();
                rt.block_on(svc.call(req)).unwrap()
            })
        });
    }
    let mut bare = tower::service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    c.bench_function("bare no-op service call", |b| {
        b.iter(|| {
            let req = Request::get("/")
                .extension(peer)
                .body(Body::empty())
                .unwrap();
            rt.block_on(bare.call(req)).unwrap()
        })
    });

    // Routers as `axum::serve` runs them, with a never-reached quota.
    let hello = || Router::new().route("/", get(|| async { "hello" }));
    let burst = NonZeroU32::new(1_000_000_000).unwrap();
    let governor_config = tower_governor::governor::GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(burst.get())
        .finish()
        .unwrap();
    let routers = [
        ("router/bare", hello()),
        (
            "router/ours",
            hello().layer(RateLimitLayer::new(ClientIpKey::new(), quota)),
        ),
        (
            "router/tower_governor",
            hello().layer(tower_governor::GovernorLayer::new(governor_config)),
        ),
    ];
    for (name, router) in routers {
        let mut svc = router.with_state::<()>(());
        c.bench_function(name, |b| {
            b.iter(|| {
                let req = Request::get("/")
                    .extension(peer)
                    .body(Body::empty())
                    .unwrap();
                rt.block_on(async {
                    let svc = ServiceExt::<Request<Body>>::ready(&mut svc).await.unwrap();
                    let response = svc.call(req).await.unwrap();
                    assert_eq!(response.status(), 200);
                })
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
