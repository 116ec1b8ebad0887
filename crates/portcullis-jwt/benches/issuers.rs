//! Several issuers and opaque tokens, side by side in one run: a single-issuer
//! verifier, the same token among ten trusted issuers (routing by `iss`), the
//! verified-token cache, and the introspection cache.
//!
//! `cargo bench -p portcullis-jwt --features introspection --bench issuers`

#![allow(missing_docs)]

use std::{hint::black_box, time::Duration};

use axum::{Json, Router, routing::post};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::EncodingKey;
use portcullis_core::{AuthResult, MaybeReady};
use portcullis_jwt::{
    Algorithm, Issuer, JwtAuthenticator, Key, introspection::IntrospectionAuthenticator,
};
use serde_json::json;

const NOW: u64 = 1_700_000_000;
const SECRET: &[u8] = b"bench-only-hs256-secret-32-bytes";
const ISSUER: &str = "https://auth.example.com/";
const AUDIENCE: &str = "https://api.example.com";

fn token(iss: &str) -> String {
    let claims = json!({
        "iss": iss, "sub": "user-7f3a9c2e-41d8-4b9a-a7e3-2c1d5f8e9b04", "aud": AUDIENCE,
        "exp": NOW + 900, "iat": NOW, "jti": "9f1c2b7e4d3a8f6e5c1b0a9d8e7f6a5b",
        "client_id": "web-app", "scope": "openid profile orders:read", "roles": ["user"],
    });
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap()
}

fn clock() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs(NOW + 1)
}

fn ok(a: MaybeReady<AuthResult>) -> bool {
    matches!(a, MaybeReady::Ready(Ok(Some(_))))
}

fn single(cache: bool) -> JwtAuthenticator {
    let b = JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(clock);
    if cache { b } else { b.without_cache() }.build().unwrap()
}

/// Ten issuers, each with its own key; the benchmarked token is the last one's.
fn ten(cache: bool) -> (JwtAuthenticator, String) {
    let mut b = JwtAuthenticator::builder().audience(AUDIENCE).clock(clock);
    for i in 0..9 {
        b = b.trust(
            Issuer::new(format!("https://tenant-{i}.auth.example.com/"))
                .key(Key::hmac(Algorithm::HS256, [i as u8 + 1; 32]).unwrap()),
        );
    }
    let last = "https://tenant-9.auth.example.com/";
    b = b.trust(Issuer::new(last).key(Key::hmac(Algorithm::HS256, SECRET).unwrap()));
    let b = if cache { b } else { b.without_cache() };
    (b.build().unwrap(), token(last))
}

/// An introspection authenticator whose cache holds `token`'s answer.
fn introspection(runtime: &tokio::runtime::Runtime, token: &str) -> IntrospectionAuthenticator {
    runtime.block_on(async {
        let app = Router::new().route(
            "/introspect",
            post(|| async {
                Json(
                    json!({"active": true, "sub": "user-7f3a9c2e", "aud": AUDIENCE,
                    "scope": "openid profile orders:read", "client_id": "web-app",
                    "exp": NOW + 900, "iss": ISSUER}),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let auth = IntrospectionAuthenticator::builder(format!("http://{addr}/introspect"))
            .client_secret_basic("bench", "bench-secret")
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .clock(clock)
            .build()
            .unwrap();
        let MaybeReady::Pending(first) = auth.introspect(token) else {
            panic!("an unseen token is introspected")
        };
        assert!(first.await.unwrap().is_some());
        auth
    })
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let one = token(ISSUER);
    let (single_cold, single_cached) = (single(false), single(true));
    let ((ten_cold, ten_token), (ten_cached, _)) = (ten(false), ten(true));
    for (auth, t) in [
        (&single_cold, &one),
        (&single_cached, &one),
        (&ten_cold, &ten_token),
        (&ten_cached, &ten_token),
    ] {
        assert!(ok(auth.verify(t)));
    }
    let opaque = "bGFyZ2Utb3BhcXVlLWFjY2Vzcy10b2tlbi1vZi00My1ieXRlcw";
    let intro = introspection(&runtime, opaque);

    let mut g = c.benchmark_group("issuers");
    g.bench_function("single/cold", |b| {
        b.iter(|| ok(single_cold.verify(black_box(&one))))
    });
    g.bench_function("ten/cold", |b| {
        b.iter(|| ok(ten_cold.verify(black_box(&ten_token))))
    });
    g.bench_function("single/cache_hit", |b| {
        b.iter(|| ok(single_cached.verify(black_box(&one))))
    });
    g.bench_function("ten/cache_hit", |b| {
        b.iter(|| ok(ten_cached.verify(black_box(&ten_token))))
    });
    g.bench_function("introspection/cache_hit", |b| {
        b.iter(|| ok(intro.introspect(black_box(opaque))))
    });
    // The routing step alone: finding the token's issuer among the ten.
    let last = "https://tenant-9.auth.example.com/";
    assert!(ten_cold.trusts(last));
    g.bench_function("ten/route", |b| b.iter(|| ten_cold.trusts(black_box(last))));
    g.finish();
    assert_eq!(
        intro.calls(),
        1,
        "every benchmarked introspection was a cache hit"
    );
}

criterion_group! {
    name = benches;
    // The macro's generated function carries no docs.
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
