//! The Redis backends against a real server on loopback (`REDIS_URL`).

mod apikey;
#[path = "../common/mod.rs"]
mod common;
mod dpop;
mod login;
mod outage;
mod ratelimit;
mod refresh;
mod reset;
mod revocation;
mod sessions;

use std::{
    net::SocketAddr,
    num::NonZeroU32,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use axum::{Router, body::Body, extract::ConnectInfo, routing::get};
use common::{OwnServer, Scoped, redis_url};
use http::{Request, StatusCode};
use portcullis_apikey::{
    ApiKeyRecord, ApiKeyStore, ApiKeys, KeyDigest, KeyFormat, KeyRotation, NewApiKey,
    StoreErrorKind,
};
use portcullis_core::{AuthErrorKind, MaybeReady, Revocation, RevocationQuery};
use portcullis_ratelimit::{ClientIpKey, GovernorBackend, Quota, RateLimitBackend, RateLimitLayer};
use portcullis_redis::{
    DEFAULT_MAX_STALENESS, FailurePolicy, Redis, RedisApiKeyStore, RedisRateLimit,
    RedisRefreshStore, RedisResetStore, RedisRevocation,
};
use portcullis_tokens::{
    Clock, Error as TokenError, ErrorKind as TokenErrorKind, ManualClock, RefreshStore,
    RefreshTokens, RevocationStore, RevokedToken, RotateOutcome, Rotation, SealedToken,
    SessionStamp, TokenHash,
};
use tower::ServiceExt;

/// The kind of a refusal; panics on success.
fn refused<T: std::fmt::Debug>(result: Result<T, TokenError>) -> TokenErrorKind {
    result.unwrap_err().kind()
}

/// Lowercase hex, as the stores write hashes into keys.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The remaining life of `key` in ms (-1 without expiry, -2 when absent).
fn pttl(scope: &Scoped, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(&mut scope.raw()).unwrap()
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap())
}

fn limited_app(backend: RedisRateLimit) -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::with_backend(ClientIpKey::new(), backend).policy_name("api"))
}

fn from(ip: [u8; 4]) -> Request<Body> {
    Request::get("/")
        .extension(ConnectInfo(SocketAddr::from((ip, 4000))))
        .body(Body::empty())
        .unwrap()
}

async fn status(app: &Router, ip: [u8; 4]) -> StatusCode {
    app.clone().oneshot(from(ip)).await.unwrap().status()
}

async fn decide(backend: &RedisRateLimit, key: &str) -> portcullis_ratelimit::Decision {
    RateLimitBackend::<Box<str>>::check(backend, &Box::from(key))
        .await
        .unwrap()
}

/// `.ci/run` runs this suite a second time with `REDIS_URL` set to the local cluster
/// (`REDIS_CLUSTER_URL`); under `CI=true` a missing or broken cluster fails here.
#[tokio::test]
async fn the_cluster_the_suite_also_runs_on_is_up() {
    let url = match std::env::var("REDIS_CLUSTER_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "REDIS_CLUSTER_URL is not set, but CI=true requires the cluster"
            );
            eprintln!("skipping: REDIS_CLUSTER_URL is not set");
            return;
        }
    };
    let redis = Redis::open(&url).unwrap();
    assert!(redis.is_cluster());
    redis.ping().await.unwrap();
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut common::raw(&url))
        .unwrap();
    assert!(info.contains("cluster_state:ok"), "{info}");
}
