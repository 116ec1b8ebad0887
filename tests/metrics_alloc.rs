//! Recording metrics allocates nothing on the request path: with a Prometheus recorder
//! installed, the HS256 layer and the rate-limit layer allocate exactly as much per
//! request as they do with nothing recording, and the recording calls themselves
//! allocate nothing once a series is registered. Counted by `allocation-counter`'s
//! global allocator, on this thread only.

use std::{
    convert::Infallible,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    time::{SystemTime, UNIX_EPOCH},
};

use allocation_counter::measure;
use http::{Request, Response, StatusCode};
use jsonwebtoken::{EncodingKey, Header};
use metrics::NoopRecorder;
use metrics_exporter_prometheus::PrometheusBuilder;
use portcullis_core::{AuthError, AuthLayer, PeerAddr, internal};
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key};
use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
use tower::{Layer, Service, ServiceExt, service_fn};

const SECRET: &[u8] = b"metrics-test-hs256-secret-32-byt";

fn token() -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = serde_json::json!({ "sub": "alice", "iss": "https://issuer.test", "aud": "api", "exp": exp });
    jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn request(bearer: &str) -> Request<String> {
    let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 4000);
    Request::get("/")
        .header("authorization", format!("Bearer {bearer}"))
        .extension(PeerAddr(peer))
        .body(String::new())
        .unwrap()
}

/// Allocations made while `n` requests with `token` go through both layers (built
/// and warmed up first, outside the count).
fn allocations(rt: &tokio::runtime::Runtime, token: &str, n: usize) -> u64 {
    let jwt = JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer("https://issuer.test")
        .audience("api")
        .build()
        .unwrap();
    let quota = Quota::per_second(NonZeroU32::new(1_000_000).unwrap());
    let inner = service_fn(|_: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let mut service = RateLimitLayer::new(ClientIpKey::new(), quota)
        .policy_name("api")
        .layer(AuthLayer::new(jwt).layer(inner));
    let mut serve = |requests: Vec<Request<String>>| {
        rt.block_on(async {
            for request in requests {
                let response = service.ready().await.unwrap().call(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        })
    };
    // Warm up: the cache holds the token, the limiter its key, the handles exist.
    serve((0..3).map(|_| request(token)).collect());
    let requests: Vec<_> = (0..n).map(|_| request(token)).collect();
    measure(|| serve(requests)).count_total
}

#[test]
fn recording_allocates_nothing_per_request() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let token = token();

    let recorded = allocations(&rt, &token, 1_000);
    let unrecorded =
        metrics::with_local_recorder(&NoopRecorder, || allocations(&rt, &token, 1_000));
    println!("allocations for 1,000 requests: {recorded} recording, {unrecorded} not");
    assert_eq!(
        recorded, unrecorded,
        "1,000 requests allocated {recorded} times while recording, {unrecorded} times without"
    );

    // The requests were counted, each in the series of its decision.
    let text = handle.render();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .rsplit_once(' ')
            .unwrap()
            .1
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(
        line("portcullis_rate_limit_decisions_total{limiter=\"api\",outcome=\"allowed\"}"),
        1_003
    );
    assert_eq!(
        line("portcullis_jwt_cache_lookups_total{result=\"hit\"}"),
        1_002
    );

    // The recording calls alone, once their series exist: nothing at all.
    let error = AuthError::invalid_token("token_expired");
    let extensions = http::Extensions::new();
    let span = tracing::Span::none();
    let record = || {
        internal::decided("auth", &span, &extensions, Err(&error));
        internal::decided("auth", &span, &extensions, Ok(()));
        internal::metrics::rate_limit_decision("api", "allowed");
        internal::metrics::jwt_cache_lookup(true);
    };
    record();
    let recording = measure(|| (0..1_000).for_each(|_| record()));
    assert_eq!(recording.count_total, 0);
}
