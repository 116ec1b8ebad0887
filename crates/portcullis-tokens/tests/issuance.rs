//! Access-token issuance, key rotation and the JWK Set.

use std::{
    collections::HashSet,
    time::{Duration, SystemTime},
};

use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
use portcullis_tokens::{
    Clock, Grant, ManualClock, RETIREMENT_GRACE, SigningAlgorithm, SigningKey, TokenIssuer,
};
use serde_json::{Map, Value};

const ISS: &str = "https://auth.example.com";
const AUD: &str = "https://api.example.com";

fn issuer(alg: SigningAlgorithm, clock: &ManualClock) -> TokenIssuer {
    issuer_and_decoding_key(alg, clock).0
}

/// An issuer, and the `jsonwebtoken` key that verifies its tokens independently.
fn issuer_and_decoding_key(
    alg: SigningAlgorithm,
    clock: &ManualClock,
) -> (TokenIssuer, DecodingKey) {
    let key = SigningKey::generate(alg).unwrap();
    let decoding = key.decoding_key().unwrap();
    let issuer = TokenIssuer::builder(ISS, AUD, key)
        .clock(clock.clone())
        .build();
    (issuer, decoding)
}

fn decode_with(token: &str, key: &DecodingKey, alg: SigningAlgorithm) -> Map<String, Value> {
    let mut validation = Validation::new(alg.to_jsonwebtoken());
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[ISS]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    // The manual clock stands at the wall clock's current second, so `exp` is in the future.
    decode::<Map<String, Value>>(token, key, &validation)
        .unwrap()
        .claims
}

#[test]
fn access_token_carries_rfc9068_claims_and_header_for_every_algorithm() {
    for alg in [
        SigningAlgorithm::EdDsa,
        SigningAlgorithm::Es256,
        SigningAlgorithm::Hs256,
    ] {
        let clock = ManualClock::starting_now();
        let (issuer, key) = issuer_and_decoding_key(alg, &clock);
        let grant = Grant::new("user-42", "web-app")
            .roles(["admin", "editor"])
            .scopes(["read", "write"]);
        let token = issuer.issue(&grant).unwrap();

        let header = decode_header(token.as_str()).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"), "{alg}");
        assert_eq!(header.alg, alg.to_jsonwebtoken());
        assert_eq!(header.kid.as_deref(), Some(issuer.active_kid().as_str()));
        assert_eq!(token.kid(), issuer.active_kid());

        let claims = decode_with(token.as_str(), &key, alg);
        let now = clock
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(claims["iss"], ISS);
        assert_eq!(claims["sub"], "user-42");
        assert_eq!(claims["aud"], AUD);
        assert_eq!(claims["iat"], now);
        assert_eq!(claims["exp"], now + 15 * 60, "15 minutes by default");
        assert_eq!(claims["client_id"], "web-app");
        assert_eq!(claims["roles"], serde_json::json!(["admin", "editor"]));
        assert_eq!(claims["scope"], "read write");
        assert_eq!(claims["jti"], token.jti());
        let keys: HashSet<&str> = claims.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            HashSet::from([
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "jti",
                "client_id",
                "roles",
                "scope"
            ])
        );
    }
}

#[test]
fn jti_is_128_random_bits_and_unique() {
    let clock = ManualClock::starting_now();
    let issuer = issuer(SigningAlgorithm::EdDsa, &clock);
    let grant = Grant::new("a", "c");
    let mut seen = HashSet::new();
    for _ in 0..1000 {
        let token = issuer.issue(&grant).unwrap();
        // 16 bytes as unpadded base64url.
        assert_eq!(token.jti().len(), 22);
        assert!(seen.insert(token.jti().to_owned()));
    }
}

#[test]
fn empty_roles_and_scopes_are_omitted() {
    let clock = ManualClock::starting_now();
    let (issuer, key) = issuer_and_decoding_key(SigningAlgorithm::EdDsa, &clock);
    let token = issuer.issue(&Grant::new("a", "c")).unwrap();
    let claims = decode_with(token.as_str(), &key, SigningAlgorithm::EdDsa);
    assert!(!claims.contains_key("roles"));
    assert!(!claims.contains_key("scope"));
}

#[test]
fn lifetime_is_configurable_and_bounded() {
    let key = || SigningKey::generate(SigningAlgorithm::EdDsa).unwrap();
    assert!(
        TokenIssuer::builder(ISS, AUD, key())
            .lifetime(Duration::ZERO)
            .is_err()
    );
    assert!(
        TokenIssuer::builder(ISS, AUD, key())
            .lifetime(Duration::from_secs(2 * 86_400))
            .is_err()
    );
    let clock = ManualClock::starting_now();
    let issuer = TokenIssuer::builder(ISS, AUD, key())
        .lifetime(Duration::from_secs(300))
        .unwrap()
        .clock(clock.clone())
        .build();
    let token = issuer.issue(&Grant::new("a", "c")).unwrap();
    assert_eq!(
        token
            .expires_at()
            .duration_since(token.issued_at())
            .unwrap(),
        Duration::from_secs(300)
    );
}

/// Verifies `token` with the key of matching `kid` from a JWK Set document, as a remote
/// verifier would.
fn verify_through_jwks(jwks: &Value, token: &str) -> Result<Map<String, Value>, String> {
    let set: JwkSet = serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let header = decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or("kid not in set")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[ISS]);
    decode::<Map<String, Value>>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

#[test]
fn rotated_out_key_keeps_verifying_until_its_tokens_expire() {
    for alg in [SigningAlgorithm::EdDsa, SigningAlgorithm::Es256] {
        let clock = ManualClock::starting_now();
        let issuer = issuer(alg, &clock);
        let old = issuer.issue(&Grant::new("alice", "web")).unwrap();

        issuer.rotate(SigningKey::generate(alg).unwrap());
        let new = issuer.issue(&Grant::new("alice", "web")).unwrap();
        assert_ne!(old.kid(), new.kid());

        let jwks = issuer.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        for key in keys {
            assert_eq!(key["use"], "sig");
            assert_eq!(key["alg"], alg.as_str());
            assert!(key.get("d").is_none(), "no private members in a JWK Set");
        }
        assert_eq!(
            verify_through_jwks(&jwks, old.as_str()).unwrap()["jti"],
            old.jti()
        );
        assert_eq!(
            verify_through_jwks(&jwks, new.as_str()).unwrap()["jti"],
            new.jti()
        );

        // Still published just before the old tokens' expiry plus grace, gone after.
        clock.advance(issuer.lifetime() + RETIREMENT_GRACE - Duration::from_secs(1));
        assert_eq!(issuer.jwks()["keys"].as_array().unwrap().len(), 2);
        clock.advance(Duration::from_secs(2));
        let jwks = issuer.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["kid"], new.kid());
        assert_eq!(issuer.verification_keys().len(), 1);
    }
}

#[test]
fn token_from_another_key_does_not_verify_through_jwks() {
    let clock = ManualClock::starting_now();
    let ours = issuer(SigningAlgorithm::EdDsa, &clock);
    let forged_key = SigningKey::generate(SigningAlgorithm::EdDsa)
        .unwrap()
        .with_kid(ours.active_kid())
        .unwrap();
    let forger = TokenIssuer::builder(ISS, AUD, forged_key)
        .clock(clock.clone())
        .build();
    let forged = forger.issue(&Grant::new("admin", "web")).unwrap();
    assert!(verify_through_jwks(&ours.jwks(), forged.as_str()).is_err());
}

#[test]
fn hmac_keys_are_never_published() {
    let clock = ManualClock::starting_now();
    let issuer = issuer(SigningAlgorithm::Hs256, &clock);
    assert_eq!(issuer.jwks(), serde_json::json!({ "keys": [] }));
}

#[test]
fn rotation_emits_keys_rotated_event() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let events = portcullis_core::Events::new(move |e: &portcullis_core::AuthEvent<'_>| {
        if let portcullis_core::AuthEvent::KeysRotated { keys, .. } = e {
            log.lock().unwrap().push(*keys);
        }
    });
    let issuer = TokenIssuer::builder(
        ISS,
        AUD,
        SigningKey::generate(SigningAlgorithm::EdDsa).unwrap(),
    )
    .events(events)
    .build();
    issuer.rotate(SigningKey::generate(SigningAlgorithm::EdDsa).unwrap());
    assert_eq!(*seen.lock().unwrap(), [2]);
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn jwks_handler_serves_the_set_with_cache_control() {
    use axum::{Router, body::Body, routing::get};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let issuer = TokenIssuer::builder(
        ISS,
        AUD,
        SigningKey::generate(SigningAlgorithm::Es256).unwrap(),
    )
    .jwks_max_age(Duration::from_secs(60))
    .build();
    let app = Router::new().route("/.well-known/jwks.json", get(issuer.jwks_handler()));
    let response = app
        .oneshot(
            http::Request::get("/.well-known/jwks.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/jwk-set+json"
    );
    assert_eq!(response.headers()["cache-control"], "public, max-age=60");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let set: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(set, issuer.jwks());
    let token = issuer.issue(&Grant::new("a", "c")).unwrap();
    assert!(verify_through_jwks(&set, token.as_str()).is_ok());
}
