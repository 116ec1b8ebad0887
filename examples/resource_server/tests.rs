//! Tests of the resource server example: arguments, several issuers, revocation.

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use portcullis::jwt::{Algorithm, Key};
use tower::ServiceExt;

use super::*;

const SECRET: &[u8; 32] = b"a-secret-of-at-least-32-bytes!!!";

fn token(roles: &[&str], scope: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": "https://id.example", "aud": "api", "sub": "alice",
        "roles": roles, "scope": scope, "iat": now, "exp": now + 300,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

async fn get_admin(token: Option<String>) -> (StatusCode, Value) {
    let jwt = JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer("https://id.example")
        .audience("api")
        .build()
        .unwrap();
    let mut request = Request::get("/admin");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app(jwt)
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn admin_is_the_role_or_the_scope() {
    let (status, body) = get_admin(Some(token(&["admin"], "profile"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sub"], "alice");
    let (status, _) = get_admin(Some(token(&[], "profile admin"))).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = get_admin(Some(token(&["editor"], "profile"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "insufficient_scope");
    assert_eq!(body["role"], "admin");
    assert_eq!(body["scope"], "admin");
    let (status, _) = get_admin(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn issuer_token(secret: &[u8], iss: &str, sub: &str, iat: u64) -> String {
    let claims = json!({
        "iss": iss, "aud": "api", "sub": sub, "iat": iat, "exp": iat + 300,
        "jti": format!("{iss}#{sub}"),
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

async fn whoami(app: &Router, token: &str) -> (StatusCode, Value) {
    let request = Request::get("/whoami")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn two_issuers_same_subject_are_revoked_independently() {
    use portcullis::{
        jwt::Issuer,
        tokens::{MemoryRevocation, RevocationStore},
    };
    const A: &str = "https://a.example";
    const B: &str = "https://b.example";
    let (ka, kb) = (
        b"issuer-a-secret-of-32-bytes!!!!!",
        b"issuer-b-secret-of-32-bytes!!!!!",
    );
    let revocation = MemoryRevocation::new();
    let jwt = JwtAuthenticator::builder()
        .trust(Issuer::new(A).key(Key::hmac(Algorithm::HS256, ka).unwrap()))
        .trust(Issuer::new(B).key(Key::hmac(Algorithm::HS256, kb).unwrap()))
        .audience("api")
        .revocation(std::sync::Arc::new(revocation.clone()))
        .build()
        .unwrap();
    let app = app(jwt);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 10;
    let (at_a, at_b) = (
        issuer_token(ka, A, "alice", now),
        issuer_token(kb, B, "alice", now),
    );
    let (status, body) = whoami(&app, &at_a).await;
    assert_eq!(
        (status, body["iss"].as_str(), body["kind"].as_str()),
        (StatusCode::OK, Some(A), Some("jwt"))
    );
    assert_eq!(whoami(&app, &at_b).await.0, StatusCode::OK);
    // A's key never verifies a token claiming B.
    assert_eq!(
        whoami(&app, &issuer_token(ka, B, "alice", now)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Logout-all of "alice" at A leaves B's "alice" signed in, cached or not.
    revocation
        .revoke_issuer_subject(A, "alice", std::time::SystemTime::now())
        .await
        .unwrap();
    assert_eq!(whoami(&app, &at_a).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(whoami(&app, &at_b).await.0, StatusCode::OK);
    revocation
        .revoke_issuer_subject(B, "alice", std::time::SystemTime::now())
        .await
        .unwrap();
    assert_eq!(whoami(&app, &at_b).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn untyped_tokens_are_accepted_by_default() {
    // Regression: a Better Auth token (no `typ`) got "the token is not of the
    // expected type" from this example.
    let claims = json!({"iss": "https://id.example", "aud": "api", "sub": "u1",
        "role": "admin", "exp": 4_000_000_000u64});
    let header = jsonwebtoken::Header {
        typ: None,
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
    };
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let args = parse(&[
        "--issuer",
        "https://id.example",
        "--audience",
        "api",
        "--preset",
        "better-auth",
    ])
    .unwrap()
    .unwrap();
    let jwt = JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer("https://id.example")
        .audience("api")
        .claim_mapping(args.mapping)
        .build()
        .unwrap();
    let (status, body) = whoami(&app(jwt), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["roles"], json!(["admin"]));
}

fn parse(args: &[&str]) -> Result<Option<Args>, String> {
    parse_args(args.iter().map(|s| s.to_string()))
}

#[test]
fn issuers_and_jwks_urls_repeat_and_pair_in_order() {
    let two = parse(&[
        "--issuer",
        "https://a",
        "--issuer",
        "https://b",
        "--audience",
        "api",
        "--jwks-url",
        "https://a/jwks",
        "--jwks-url",
        "https://b/jwks",
        "--preset",
        "keycloak",
    ])
    .unwrap()
    .unwrap();
    assert_eq!(two.issuers, ["https://a", "https://b"]);
    assert_eq!(two.jwks_urls, ["https://a/jwks", "https://b/jwks"]);
    assert_eq!(two.mapping, ClaimMapping::keycloak());
    let discovered = parse(&[
        "--issuer",
        "https://a",
        "--issuer",
        "https://b",
        "--audience",
        "x",
    ])
    .unwrap()
    .unwrap();
    assert!(discovered.jwks_urls.is_empty());
    let err = parse(&[
        "--issuer",
        "https://a",
        "--issuer",
        "https://b",
        "--audience",
        "api",
        "--jwks-url",
        "https://a/jwks",
    ])
    .unwrap_err();
    assert!(
        err.contains("once per issuer") || err.contains("one per issuer"),
        "{err}"
    );
    let err = parse(&["--issuer", "a", "--audience", "api", "--preset", "nope"]).unwrap_err();
    assert!(err.contains("keycloak"), "{err}");
}

#[test]
fn arguments_are_checked() {
    let ok = parse(&["--issuer", "https://id.example", "--audience", "api"])
        .unwrap()
        .unwrap();
    assert_eq!(ok.addr.to_string(), "127.0.0.1:8080");
    assert!(
        parse(&["--audience", "api"])
            .unwrap_err()
            .contains("--issuer")
    );
    assert!(
        parse(&["--issuer", "https://id.example"])
            .unwrap_err()
            .contains("--audience")
    );
    assert!(
        parse(&["--issuer", "x", "--audience", "a", "--addr", "nope"])
            .unwrap_err()
            .contains("IP:PORT")
    );
    assert!(
        parse(&["--issuer", "--audience", "a"])
            .unwrap_err()
            .contains("needs a value")
    );
    assert!(parse(&["--what"]).unwrap_err().contains("unknown"));
    assert!(parse(&["--help"]).unwrap().is_none());
}

#[test]
fn introspection_flags_go_together() {
    let base = ["--issuer", "https://as.example", "--audience", "api"];
    let with = |extra: &[&str]| {
        let mut all = base.to_vec();
        all.extend_from_slice(extra);
        parse(&all)
    };
    let ok = with(&[
        "--introspection-url",
        "https://as.example/introspect",
        "--client-id",
        "rs",
        "--client-secret",
        "s",
    ])
    .unwrap()
    .unwrap();
    let config = ok.introspection.as_ref().unwrap();
    assert_eq!(
        (config.url.as_str(), config.client_id.as_str()),
        ("https://as.example/introspect", "rs")
    );
    assert!(
        !format!("{ok:?}").contains("\"s\""),
        "the secret is redacted"
    );
    let err = with(&["--introspection-url", "https://as.example/introspect"]).unwrap_err();
    assert!(err.contains("go together"), "{err}");
    assert!(with(&[]).unwrap().unwrap().introspection.is_none());
}
