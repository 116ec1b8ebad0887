//! JWT or API key on one route: `AuthLayer::new((jwt, api_key))` and the reverse order,
//! with real HS256 tokens from `portcullis-jwt`, through `oneshot` and a real server on
//! loopback.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Seen, app, key_status, send};
use http::{StatusCode, request::Parts};
use jsonwebtoken::{EncodingKey, Header, encode};
use portcullis_apikey::{ApiKeys, IssuedKey, MemoryStore, NewApiKey};
use portcullis_core::{
    AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind,
    credentials::authorization_bearer,
};
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &[u8] = b"an-example-secret-of-32-bytes-!!";

fn jwt() -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer("https://issuer.example")
        .audience("my-api")
        .build()
        .unwrap()
}

fn token(sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": "https://issuer.example", "aud": "my-api", "sub": sub,
        "iat": now, "exp": now + 300,
    });
    encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

async fn issued() -> (ApiKeys<MemoryStore>, IssuedKey) {
    let keys = ApiKeys::new(MemoryStore::new(), common::format());
    let issued = keys
        .issue(
            NewApiKey::owned_by("svc-billing")
                .name("exporter")
                .scopes(["invoices:read"]),
        )
        .await
        .unwrap();
    (keys, issued)
}

fn typo(key: &str) -> String {
    let mut typo = key.to_owned();
    let flip = if typo.ends_with('A') { "B" } else { "A" };
    typo.replace_range(typo.len() - 1.., flip);
    typo
}

#[tokio::test]
async fn jwt_then_api_key_accepts_either_on_one_route() {
    let (keys, issued) = issued().await;
    let seen = Seen::default();
    let app = app((jwt(), keys.authenticator()), &seen);
    let key = issued.key().expose_secret();
    let jwt_bearer = format!("Bearer {}", token("alice"));

    let (status, _, body) = send(&app, &[("authorization", &jwt_bearer)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("alice|user|"), "{body}");

    let (status, _, body) = send(&app, &[("x-api-key", key)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("svc-billing|api_key|"), "{body}");

    // One header, either credential: the JWT authenticator declines the key (no dots).
    let key_bearer = format!("Bearer {key}");
    let (status, _, body) = send(&app, &[("authorization", &key_bearer)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("svc-billing|api_key|"), "{body}");

    // Present but invalid credentials are refused by their own authenticator.
    let bad_key = format!("Bearer {}", typo(key));
    assert_eq!(
        send(&app, &[("authorization", &bad_key)]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(seen.last(), Some("api_key_malformed"));
    assert_eq!(
        send(&app, &[("x-api-key", &typo(key))]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(seen.last(), Some("api_key_malformed"));
    let bad_jwt = format!("Bearer {}x", token("alice"));
    assert_eq!(
        send(&app, &[("authorization", &bad_jwt)]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(seen.last(), Some("bad_signature"));

    // Nothing at all: a bare challenge.
    let (status, response, _) = send(&app, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="api""#
    );
}

#[tokio::test]
async fn api_key_then_jwt_never_lets_an_invalid_key_fall_through() {
    let (keys, issued) = issued().await;
    let seen = Seen::default();
    let app = app((keys.authenticator(), jwt()), &seen);
    let key = issued.key().expose_secret();
    let jwt_bearer = format!("Bearer {}", token("alice"));

    assert_eq!(
        send(&app, &[("authorization", &jwt_bearer)]).await.0,
        StatusCode::OK
    );
    assert_eq!(key_status(&app, key).await, StatusCode::OK);

    // An invalid key next to a valid JWT: refused, not authenticated by the JWT.
    let (status, response, body) = send(
        &app,
        &[("x-api-key", &typo(key)), ("authorization", &jwt_bearer)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_request")
    );
    // Not "malformed": the refusal says what is wrong.
    assert!(
        body.contains("the request carries more than one kind of credential"),
        "{body}"
    );
    assert!(!body.contains("malformed"), "{body}");
    assert_eq!(seen.last(), Some("conflicting_credentials"));
    // Even a valid key with a JWT is two credentials at once.
    let (status, response, body) =
        send(&app, &[("x-api-key", key), ("authorization", &jwt_bearer)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(
                r#"error_description="the request carries more than one kind of credential""#
            )
    );
    assert!(body.contains(r#""code":"invalid_request""#), "{body}");
    assert_eq!(seen.last(), Some("conflicting_credentials"));

    let forged = format!("Bearer {}", common::forge_same_id(key));
    assert_eq!(
        send(&app, &[("authorization", &forged)]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(seen.last(), Some("api_key_mismatch"));
}

/// A fallback that accepts *any* bearer token: the worst case for fall-through.
struct AnyBearer;

impl Authenticator for AnyBearer {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        MaybeReady::Ready(
            authorization_bearer(&parts.headers).map(|token| {
                token.map(|_| Principal::builder("anyone", PrincipalKind::User).build())
            }),
        )
    }
}

#[tokio::test]
async fn an_invalid_key_never_reaches_a_permissive_fallback() {
    let (keys, issued) = issued().await;
    let seen = Seen::default();
    let app = app((keys.authenticator(), AnyBearer), &seen);
    let key = issued.key().expose_secret();
    for bad in [
        typo(key),
        common::forge_same_id(key),
        keys.format().generate().unwrap().expose_secret().to_owned(),
    ] {
        let bearer = format!("Bearer {bad}");
        let (status, response, body) = send(&app, &[("authorization", &bearer)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
        assert!(!body.contains("anyone"));
    }
    keys.revoke(issued.id()).await.unwrap();
    let bearer = format!("Bearer {key}");
    assert_eq!(
        send(&app, &[("authorization", &bearer)]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(seen.last(), Some("api_key_revoked"));
    // Other bearer tokens are the fallback's.
    assert_eq!(
        send(&app, &[("authorization", "Bearer opaque")]).await.0,
        StatusCode::OK
    );
}

async fn http_get(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request =
        String::from("GET /whoami HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test]
async fn composed_layer_over_a_real_loopback_server() {
    let (keys, issued) = issued().await;
    let router = app((jwt(), keys.authenticator()), &Seen::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let key = issued.key().expose_secret();
    let (status, body) = http_get(addr, &[("x-api-key", key)]).await;
    assert_eq!(status, 200);
    assert!(body.contains("svc-billing|api_key|"), "{body}");
    let (status, body) = http_get(
        addr,
        &[("authorization", &format!("Bearer {}", token("bob")))],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("bob|user|"), "{body}");
    let (status, body) = http_get(addr, &[("x-api-key", &typo(key))]).await;
    assert_eq!(status, 401);
    assert!(!body.contains(&key[8..]));
    server.abort();
}
