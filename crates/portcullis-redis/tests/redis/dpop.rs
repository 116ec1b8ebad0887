//! DPoP proofs accepted by one instance are refused by another sharing the Redis
//! replay cache.

use http::request::Parts;
use jsonwebtoken::{EncodingKey, Header, encode};
use portcullis_core::{AuthError, Authenticator};
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key, dpop::Dpop};
use portcullis_redis::RedisReplayCache;
use serde_json::json;

use super::*;

#[path = "../../../portcullis-jwt/tests/common/dpop_client.rs"]
mod dpop_client;
use dpop_client::DpopClient;

const SECRET: &[u8] = b"a-dpop-test-secret-of-32-bytes!!";

fn now() -> i64 {
    portcullis_core::internal::unix_secs(SystemTime::now())
}

fn instance(redis: &Redis) -> JwtAuthenticator {
    let dpop = Dpop::new()
        .public_url("https://api.example.com")
        .unwrap()
        .replay_cache(RedisReplayCache::new(redis));
    JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer("https://issuer.example")
        .audience("api")
        .dpop(dpop)
        .build()
        .unwrap()
}

/// A bound token and one proof for `GET https://api.example.com/me`, as request parts.
fn request() -> Parts {
    let client = DpopClient::new();
    let claims = json!({
        "iss": "https://issuer.example", "aud": "api", "sub": "alice",
        "exp": now() + 300, "cnf": {"jkt": client.jkt()},
    });
    let token = encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let proof = client.proof("GET", "https://api.example.com/me", Some(&token));
    Request::get("/me")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

async fn outcome(jwt: &JwtAuthenticator, parts: &Parts) -> Result<(), AuthError> {
    jwt.authenticate(parts).await.map(|p| assert!(p.is_some()))
}

#[tokio::test]
async fn a_proof_accepted_by_one_instance_is_refused_by_another() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let (a, b) = (instance(&scope.redis), instance(&scope.another_instance()));
    let parts = request();
    outcome(&a, &parts).await.unwrap();
    let replayed = outcome(&b, &parts).await.unwrap_err();
    assert_eq!(replayed.reason(), "dpop_proof_replayed");
    assert_eq!(
        outcome(&a, &parts).await.unwrap_err().reason(),
        "dpop_proof_replayed"
    );
    // A fresh proof passes on either instance.
    outcome(&b, &request()).await.unwrap();
}

#[tokio::test]
async fn of_two_instances_racing_with_one_proof_one_wins() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let (a, b) = (instance(&scope.redis), instance(&scope.another_instance()));
    for _ in 0..20 {
        let parts = request();
        let (ra, rb) = tokio::join!(outcome(&a, &parts), outcome(&b, &parts));
        assert_eq!(ra.is_ok() as u8 + rb.is_ok() as u8, 1, "{ra:?} {rb:?}");
    }
}

#[tokio::test]
async fn the_entry_expires_when_the_proofs_window_closes() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    outcome(&instance(&scope.redis), &request()).await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}dpop:*", scope.prefix))
        .query(&mut scope.raw())
        .unwrap();
    assert_eq!(keys.len(), 1);
    let ttl = pttl(&scope, &keys[0]);
    assert!((55_000..=61_000).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn an_unreachable_redis_refuses_with_503() {
    let redis = Redis::open("redis://127.0.0.1:1")
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let err = outcome(&instance(&redis), &request()).await.unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Unavailable);
}
