//! Shared test helpers: test-only keys, token minting (including hand-made headers),
//! a fixed clock and request helpers.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::{Router, body::Body, routing::get};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use jsonwebtoken::{EncodingKey, crypto};
use portcullis_core::{MaybeReady, Principal};
use portcullis_jwt::{Algorithm, JwtAuthenticator, JwtAuthenticatorBuilder, Key};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const NOW: u64 = 1_700_000_000;
pub const ISSUER: &str = "https://issuer.example";
pub const AUDIENCE: &str = "my-api";
pub const SECRET: &[u8; 32] = b"test-only-hs256-secret-32-bytes!";

pub fn fixed_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

pub fn read_key(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A signing key and the matching verification key, for one algorithm.
pub struct Pair {
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub key: Key,
}

/// Our algorithm as jsonwebtoken names it (both use the JWA names).
pub fn jwt_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    alg.name().parse().unwrap()
}

pub fn pair(alg: Algorithm) -> Pair {
    let (encoding, key) = match alg {
        Algorithm::HS256 => (
            EncodingKey::from_secret(SECRET),
            Key::hmac(alg, SECRET).unwrap(),
        ),
        Algorithm::HS384 => (
            EncodingKey::from_secret(&[3; 48]),
            Key::hmac(alg, [3; 48]).unwrap(),
        ),
        Algorithm::HS512 => (
            EncodingKey::from_secret(&[5; 64]),
            Key::hmac(alg, [5; 64]).unwrap(),
        ),
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => (
            EncodingKey::from_rsa_pem(&read_key("test-only-rsa2048-private.pem")).unwrap(),
            Key::from_pem(alg, read_key("test-only-rsa2048-public.pem")).unwrap(),
        ),
        Algorithm::ES256 => (
            EncodingKey::from_ec_pem(&read_key("test-only-p256-private.pem")).unwrap(),
            Key::from_pem(alg, read_key("test-only-p256-public.pem")).unwrap(),
        ),
        Algorithm::ES384 => (
            EncodingKey::from_ec_pem(&read_key("test-only-p384-private.pem")).unwrap(),
            Key::from_pem(alg, read_key("test-only-p384-public.pem")).unwrap(),
        ),
        // jsonwebtoken cannot sign ES512: `mint` signs with aws-lc-rs, and this
        // encoding key only carries the PKCS#8 bytes.
        Algorithm::ES512 => (
            EncodingKey::from_ec_pem(&read_key("test-only-p521-private.pem")).unwrap(),
            Key::from_pem(alg, read_key("test-only-p521-public.pem")).unwrap(),
        ),
        Algorithm::EdDSA => (
            EncodingKey::from_ed_pem(&read_key("test-only-ed25519-private.pem")).unwrap(),
            Key::from_pem(alg, read_key("test-only-ed25519-public.pem")).unwrap(),
        ),
        _ => unreachable!(),
    };
    Pair { alg, encoding, key }
}

pub const ALL_ALGS: [Algorithm; 13] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::EdDSA,
];

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header` and `payload` (raw JSON text, byte for byte) with `encoding`.
pub fn sign_raw(
    header: &str,
    payload: &str,
    alg: jsonwebtoken::Algorithm,
    encoding: &EncodingKey,
) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = crypto::sign(input.as_bytes(), encoding, alg).unwrap();
    format!("{input}.{sig}")
}

/// Good claims at `NOW`.
pub fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": NOW - 10,
        "exp": NOW + 600,
        "jti": "token-1",
        "scope": "read write",
        "roles": ["admin"],
    })
}

/// Mints an HS256 token with `claims`.
pub fn hs256(claims: &Value) -> String {
    sign_raw(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims.to_string(),
        jsonwebtoken::Algorithm::HS256,
        &EncodingKey::from_secret(SECRET),
    )
}

/// Mints a token for `pair` with `claims` and header `kid` if given.
pub fn mint(pair: &Pair, claims: &Value, kid: Option<&str>) -> String {
    let mut header = json!({"alg": pair.alg.name(), "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = kid.into();
    }
    if pair.alg == Algorithm::ES512 {
        return sign_es512(&header.to_string(), &claims.to_string());
    }
    sign_raw(
        &header.to_string(),
        &claims.to_string(),
        jwt_alg(pair.alg),
        &pair.encoding,
    )
}

/// Signs `header` and `payload` with the P-521 test key (ES512, which jsonwebtoken
/// cannot sign).
pub fn sign_es512(header: &str, payload: &str) -> String {
    use aws_lc_rs::{rand::SystemRandom, signature};
    let pem = pem::parse(read_key("test-only-p521-private.pem")).unwrap();
    let pair = signature::EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        pem.contents(),
    )
    .unwrap();
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", b64(sig.as_ref()))
}

/// The P-521 test key as a public JWK (no `alg`, unless given).
pub fn p521_jwk(alg: Option<&str>, kid: &str) -> Value {
    use aws_lc_rs::signature::{self, KeyPair as _};
    let pem = pem::parse(read_key("test-only-p521-private.pem")).unwrap();
    let pair = signature::EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        pem.contents(),
    )
    .unwrap();
    let point = pair.public_key().as_ref();
    let mut jwk = json!({
        "kty": "EC", "crv": "P-521", "kid": kid,
        "x": b64(&point[1..67]), "y": b64(&point[67..]),
    });
    if let Some(alg) = alg {
        jwk["alg"] = alg.into();
    }
    jwk
}

/// A builder with `key`, the test issuer and audience, and the fixed clock.
pub fn builder_with(key: Key) -> JwtAuthenticatorBuilder {
    JwtAuthenticator::builder()
        .key(key)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(fixed_now)
}

/// A builder with the HS256 test key, issuer, audience and the fixed clock.
pub fn builder() -> JwtAuthenticatorBuilder {
    builder_with(Key::hmac(Algorithm::HS256, SECRET).unwrap())
}

pub fn authenticator() -> JwtAuthenticator {
    builder().build().unwrap()
}

/// A router with `/me` (answers the subject) behind `layer`.
pub fn app<L>(layer: L) -> Router
where
    L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<Request<Body>, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<Request<Body>>>::Response: axum::response::IntoResponse + 'static,
    <L::Service as tower::Service<Request<Body>>>::Future: Send + 'static,
{
    Router::new()
        .route(
            "/me",
            get(|p: Principal| async move { p.subject().to_owned() }),
        )
        .route_layer(layer)
}

pub fn bearer(token: &str) -> Request<Body> {
    Request::get("/me")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

pub async fn send(app: &Router, req: Request<Body>) -> Response<Body> {
    app.clone().oneshot(req).await.unwrap()
}

pub async fn body_text(response: Response<Body>) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

pub fn www(response: &Response<Body>) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Verifies `token` directly and returns the refusal's reason (or "ok").
pub fn reason(auth: &JwtAuthenticator, token: &str) -> &'static str {
    match auth.verify(token) {
        MaybeReady::Ready(Ok(Some(_))) => "ok",
        MaybeReady::Ready(Ok(None)) => "not_ours",
        MaybeReady::Ready(Err(e)) => e.reason(),
        MaybeReady::Pending(_) => "pending",
    }
}

pub fn assert_invalid_token(response: &Response<Body>) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        www(response).contains(r#"error="invalid_token""#),
        "{}",
        www(response)
    );
}
