//! What the core `AuthLayer` costs per request, in process, beside its floors.
//!
//! `cargo bench --bench layer`
//!
//! - `bare`: an axum route with no layer;
//! - `noop_route_layer`: the same route behind a `route_layer` that does nothing
//!   (axum's own cost of layering a route: boxing the service and its future);
//! - `auth_fixed_principal`: behind `AuthLayer` with an authenticator that returns a
//!   ready-made principal (the layer's own work: extensions, events, body wrapping).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::{convert::Infallible, hint::black_box};

use axum::http::{Request, request::Parts};
use axum::{Router, body::Body, routing::get};
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::core::{AuthLayer, Authentication, Authenticator, Principal, PrincipalKind};
use tower::{Service, ServiceExt, util::MapRequestLayer};

struct Fixed(Principal);

impl Authenticator for Fixed {
    fn authenticate(&self, _: &Parts) -> Authentication {
        Authentication::Ready(Ok(Some(self.0.clone())))
    }
}

fn request() -> Request<Body> {
    Request::get("/")
        .header("authorization", "Bearer x")
        .body(Body::empty())
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bare = Router::new().route("/", get(|| async { "hello" }));
    let noop = Router::new()
        .route("/", get(|| async { "hello" }))
        .route_layer(MapRequestLayer::new(|r: Request<Body>| r));
    let principal = Principal::builder("alice", PrincipalKind::User)
        .roles(["user"])
        .build();
    let auth = Router::new()
        .route("/", get(|| async { "hello" }))
        .route_layer(AuthLayer::new(Fixed(principal)));

    let mut group = c.benchmark_group("layer");
    for (name, router) in [
        ("bare", bare),
        ("noop_route_layer", noop),
        ("auth_fixed_principal", auth),
    ] {
        group.bench_function(name, |b| {
            let mut svc = router.clone();
            b.iter(|| {
                rt.block_on(async {
                    let svc = ServiceExt::<Request<Body>>::ready(&mut svc).await.unwrap();
                    let response = Service::<Request<Body>>::call(svc, request()).await;
                    black_box(Ok::<_, Infallible>(response.unwrap().status()))
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
