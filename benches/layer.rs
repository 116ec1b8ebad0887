//! What each layer costs per request, in process, beside its floors.
//!
//! `cargo bench --bench layer` (the side-by-side comparisons with peers are in
//! `bench/`: `bench/compare.sh`)
//!
//! Every variant serves the same axum route to the same request (an `Authorization`
//! header carrying a 409-byte HS256 token, an `x-api-key` header and a peer address),
//! and the response body is read to the end, so body wrapping is counted too.
//!
//! - `bare`: the route with no layer;
//! - `noop_route_layer`: the route behind a `route_layer` that does nothing (axum's own
//!   cost of layering a route: boxing the service, its future and its body);
//! - `auth_fixed_principal`: behind `AuthLayer` with an authenticator that returns a
//!   ready-made principal (the core layer's own work);
//! - `jwt_hs256_hit`, `jwt_es256_hit`: behind the JWT layer, the token already in the
//!   verified-token cache;
//! - `apikey`: behind the API-key layer, memory store;
//! - `ratelimit`: behind the rate-limit layer (`Router::layer`), a hot client IP that
//!   is never limited; `noop_layer` is its floor, a `Router::layer` that does nothing.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::{hint::black_box, net::SocketAddr, num::NonZeroU32};

use axum::http::{Request, request::Parts};
use axum::{Router, body::Body, extract::ConnectInfo, routing::get};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use jsonwebtoken::{EncodingKey, Header};
use portcullis_apikey::{ApiKeyRecord, ApiKeyStore, ApiKeys, KeyFormat, KeyHasher, MemoryStore};
use portcullis_core::{AuthLayer, AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind};
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key};
use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
use tower::{Service, ServiceExt, util::MapRequestLayer};

const SECRET: &[u8] = b"bench-only-hs256-secret-32-bytes";
const ISSUER: &str = "https://auth.example.com/";
const AUDIENCE: &str = "https://api.example.com";

struct Fixed(Principal);

impl Authenticator for Fixed {
    fn authenticate(&self, _: &Parts) -> MaybeReady<AuthResult> {
        MaybeReady::Ready(Ok(Some(self.0.clone())))
    }
}

/// The bench token: a realistic claims set, 409 bytes with HS256, valid until 2100.
fn token(alg: jsonwebtoken::Algorithm, key: &EncodingKey) -> String {
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": "user-7f3a9c2e-41d8-4b9a-a7e3-2c1d5f8e9b04",
        "aud": AUDIENCE,
        "exp": 4_102_444_800u64,
        "iat": 1_700_000_000u64,
        "jti": "9f1c2b7e4d3a8f6e5c1b0a9d8e7f6a5b",
        "scope": "openid profile orders:read",
        "roles": ["user"],
    });
    jsonwebtoken::encode(&Header::new(alg), &claims, key).expect("sign")
}

/// An active service key's record for `key`.
fn record(key: &portcullis_apikey::ParsedKey<'_>) -> ApiKeyRecord {
    ApiKeyRecord {
        id: key.id().to_owned(),
        owner: "svc-bench".into(),
        name: "bench".into(),
        scopes: vec!["hello:read".into()],
        roles: vec!["service".into()],
        created_at: std::time::SystemTime::now(),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_to: None,
        session_bound: true,
        digest: KeyHasher::sha256().digest(key),
    }
}

fn key_file(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/crates/portcullis-jwt/tests/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn jwt(key: Key) -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .key(key)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .expect("configuration")
}

/// The request every variant serves: a bearer token (none for the API-key variant,
/// so it does not compete with the key), an `x-api-key` header and a peer address.
fn request(bearer: Option<&str>, api_key: &str) -> Request<Body> {
    let mut req = Request::get("/");
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let mut req = req
        .header("x-api-key", api_key)
        .body(Body::empty())
        .unwrap();
    let peer: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let hello = || Router::new().route("/", get(|| async { "hello" }));

    let hs256 = token(
        jsonwebtoken::Algorithm::HS256,
        &EncodingKey::from_secret(SECRET),
    );
    let es256 = token(
        jsonwebtoken::Algorithm::ES256,
        &EncodingKey::from_ec_pem(&key_file("test-only-p256-private.pem")).unwrap(),
    );
    let format = KeyFormat::new("pk_live_").unwrap();
    let api_key = format.generate().unwrap();
    let api_key = api_key.expose_secret().to_owned();
    let store = MemoryStore::new();
    let parsed = format.parse(&api_key).unwrap();
    rt.block_on(store.create(record(&parsed))).unwrap();
    let api_keys = ApiKeys::new(store, format);

    let principal = Principal::builder("alice", PrincipalKind::User)
        .roles(["user"])
        .build();
    let hs_key = Key::hmac(Algorithm::HS256, SECRET).unwrap();
    let es_key = Key::from_pem(Algorithm::ES256, key_file("test-only-p256-public.pem")).unwrap();
    let never = NonZeroU32::new(1_000_000_000).unwrap();

    let variants: Vec<(&str, Router, &str)> = vec![
        ("bare", hello(), &hs256),
        (
            "noop_route_layer",
            hello().route_layer(MapRequestLayer::new(|r: Request<Body>| r)),
            &hs256,
        ),
        (
            "noop_layer",
            hello().layer(MapRequestLayer::new(|r: Request<Body>| r)),
            &hs256,
        ),
        (
            "auth_fixed_principal",
            hello().route_layer(AuthLayer::new(Fixed(principal))),
            &hs256,
        ),
        (
            "jwt_hs256_hit",
            hello().route_layer(AuthLayer::new(jwt(hs_key))),
            &hs256,
        ),
        (
            "jwt_es256_hit",
            hello().route_layer(AuthLayer::new(jwt(es_key))),
            &es256,
        ),
        (
            "apikey",
            hello().route_layer(AuthLayer::new(api_keys.authenticator())),
            "",
        ),
        (
            "ratelimit",
            hello().layer(RateLimitLayer::new(
                ClientIpKey::new(),
                Quota::per_second(never),
            )),
            &hs256,
        ),
    ];

    let mut group = c.benchmark_group("layer");
    for (name, router, bearer) in variants {
        let (bearer, key) = if name == "apikey" {
            (None, api_key.as_str())
        } else {
            (Some(bearer), "unused")
        };
        // What `axum::serve` does once: turn the handlers into routes.
        let mut svc = router.with_state::<()>(());
        // Warm the verified-token cache and check the variant is served.
        let status = rt.block_on(async {
            let svc = ServiceExt::<Request<Body>>::ready(&mut svc).await.unwrap();
            Service::<Request<Body>>::call(svc, request(bearer, key))
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status, 200, "{name}");
        group.bench_function(name, |b| {
            b.iter_batched(
                || request(bearer, key),
                |req| {
                    rt.block_on(async {
                        let svc = ServiceExt::<Request<Body>>::ready(&mut svc).await.unwrap();
                        let response = Service::<Request<Body>>::call(svc, req).await.unwrap();
                        let body = response.into_body().collect().await.unwrap();
                        black_box(body.to_bytes().len())
                    })
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
