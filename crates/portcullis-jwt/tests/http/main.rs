//! The JWT layer through real axum routers: RFC 6750 answers, every key type, the
//! principal and typed claims, optional mode, tuple composition, gRPC answers, the
//! cache and revocation, token sources, and one real server on loopback.

mod cache;
#[path = "../common/mod.rs"]
mod common;
mod keys;

use std::{
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use axum::{Router, body::Body, routing::get};
use common::*;
use http::{Request, StatusCode, request::Parts};
use jsonwebtoken::jwk::Jwk;
use portcullis_core::{
    AuthError, AuthLayer, AuthResult, Authenticator, Claims, MaybeReady, Principal, PrincipalKind,
    Revocation, RevocationQuery, credentials::TokenSources, internal::numeric_date,
};
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key, KeySet};
use serde::Deserialize;
use serde_json::json;

#[tokio::test]
async fn no_token_gets_a_bare_challenge() {
    let app = app(AuthLayer::new(authenticator()));
    let response = send(&app, Request::get("/me").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(www(&response), r#"Bearer realm="api""#);
}

#[tokio::test]
async fn good_token_passes_with_its_principal() {
    let app = app(AuthLayer::new(authenticator()));
    let response = send(&app, bearer(&hs256(&claims()))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "alice");
}

#[tokio::test]
async fn bad_signature_gets_invalid_token_with_problem_json() {
    let app = app(AuthLayer::new(authenticator()));
    let token = hs256(&claims());
    let forged = format!(
        "{}A{}",
        &token[..token.len() - 2],
        &token[token.len() - 1..]
    );
    let response = send(&app, bearer(&forged)).await;
    assert_invalid_token(&response);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = body_text(response).await;
    assert!(body.contains(r#""code":"invalid_token""#), "{body}");
    assert!(!body.contains(&forged[..20]), "the token is never echoed");
}

#[tokio::test]
async fn expired_token_gets_invalid_token() {
    let app = app(AuthLayer::new(authenticator()));
    let mut c = claims();
    c["exp"] = json!(NOW - 3600);
    assert_invalid_token(&send(&app, bearer(&hs256(&c))).await);
}

#[tokio::test]
async fn malformed_authorization_gets_invalid_request() {
    let app = app(AuthLayer::new(authenticator()));
    for value in ["Bearer", "Bearer ", "Bearer a b"] {
        let req = Request::get("/me")
            .header("authorization", value)
            .body(Body::empty())
            .unwrap();
        let response = send(&app, req).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{value:?}");
        assert!(www(&response).contains(r#"error="invalid_request""#));
    }
}

#[tokio::test]
async fn token_in_header_and_cookie_gets_invalid_request() {
    let auth = builder()
        .token_sources(TokenSources::default().with_cookie("at"))
        .build()
        .unwrap();
    let app = app(AuthLayer::new(auth));
    let token = hs256(&claims());
    let req = Request::get("/me")
        .header("authorization", format!("Bearer {token}"))
        .header("cookie", format!("at={token}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cookie_source_is_opt_in() {
    let token = hs256(&claims());
    let cookie_req = || {
        Request::get("/me")
            .header("cookie", format!("at={token}"))
            .body(Body::empty())
            .unwrap()
    };
    let default_app = app(AuthLayer::new(authenticator()));
    assert_eq!(
        send(&default_app, cookie_req()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let cookie_app = app(AuthLayer::new(
        builder()
            .token_sources(TokenSources::default().with_cookie("at"))
            .build()
            .unwrap(),
    ));
    assert_eq!(
        send(&cookie_app, cookie_req()).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn query_token_only_with_the_danger_switch() {
    let token = hs256(&claims());
    let uri = format!("/me?access_token={token}");
    let default_app = app(AuthLayer::new(authenticator()));
    let req = Request::get(&uri).body(Body::empty()).unwrap();
    assert_eq!(
        send(&default_app, req).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let sources = TokenSources::default().danger_with_query_parameter("access_token");
    let query_app = app(AuthLayer::new(
        builder().token_sources(sources).build().unwrap(),
    ));
    let req = Request::get(&uri).body(Body::empty()).unwrap();
    assert_eq!(send(&query_app, req).await.status(), StatusCode::OK);
}

#[derive(Debug, Deserialize)]
struct MyClaims {
    sub: String,
    tenant: String,
}

#[tokio::test]
async fn typed_claims_reach_the_handler() {
    let auth = builder().claims::<MyClaims>().build().unwrap();
    let layer: AuthLayer<JwtAuthenticator<MyClaims>> = AuthLayer::new(auth);
    let app = Router::new()
        .route(
            "/me",
            get(|c: Claims<MyClaims>, p: Principal| async move {
                format!("{}@{} {:?}", c.sub, c.tenant, p.kind())
            }),
        )
        .route_layer(layer);
    let mut c = claims();
    c["tenant"] = json!("acme");
    let response = send(&app, bearer(&hs256(&c))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "alice@acme User");
    // Claims that do not fit the type: refused.
    assert_invalid_token(&send(&app, bearer(&hs256(&claims()))).await);
    assert_eq!(
        reason_typed(
            &builder().claims::<MyClaims>().build().unwrap(),
            &hs256(&claims())
        ),
        "invalid_claims"
    );
}

fn reason_typed<C: serde::de::DeserializeOwned + Send + Sync + 'static>(
    auth: &JwtAuthenticator<C>,
    token: &str,
) -> &'static str {
    match auth.verify(token) {
        MaybeReady::Ready(Ok(Some(_))) => "ok",
        MaybeReady::Ready(Err(e)) => e.reason(),
        _ => "other",
    }
}

#[test]
fn principal_carries_the_claims() {
    let auth = authenticator();
    let MaybeReady::Ready(Ok(Some(p))) = auth.verify(&hs256(&claims())) else {
        panic!()
    };
    assert_eq!(p.subject(), "alice");
    assert_eq!(p.kind(), PrincipalKind::User);
    assert_eq!(p.issuer(), Some(ISSUER));
    assert_eq!(p.token_id(), Some("token-1"));
    assert!(p.has_role("admin"));
    assert!(p.has_scope("read") && p.has_scope("write"));
    assert_eq!(p.expires_at(), numeric_date((NOW + 600) as i64));
    assert_eq!(p.issued_at(), numeric_date((NOW - 10) as i64));
    assert_eq!(p.raw_claims().unwrap()["jti"], "token-1");
    let typed = p
        .claims::<serde_json::Map<String, serde_json::Value>>()
        .unwrap();
    assert_eq!(typed["sub"], "alice");
}

#[test]
fn service_kind_rule() {
    let auth = authenticator();
    let mut c = claims();
    c["client_id"] = json!("svc-1");
    c["sub"] = json!("svc-1");
    let MaybeReady::Ready(Ok(Some(p))) = auth.verify(&hs256(&c)) else {
        panic!()
    };
    assert_eq!(p.kind(), PrincipalKind::Service);
    assert_eq!(p.client_id(), Some("svc-1"));
    c.as_object_mut().unwrap().remove("sub");
    let MaybeReady::Ready(Ok(Some(p))) = auth.verify(&hs256(&c)) else {
        panic!()
    };
    assert_eq!((p.subject(), p.kind()), ("svc-1", PrincipalKind::Service));
    c["sub"] = json!("alice");
    let MaybeReady::Ready(Ok(Some(p))) = auth.verify(&hs256(&c)) else {
        panic!()
    };
    assert_eq!(
        (p.kind(), p.client_id()),
        (PrincipalKind::User, Some("svc-1"))
    );
    c.as_object_mut().unwrap().remove("sub");
    c.as_object_mut().unwrap().remove("client_id");
    assert_eq!(reason(&auth, &hs256(&c)), "missing_subject");
}

#[tokio::test]
async fn optional_mode_passes_anonymous_but_refuses_bad_tokens() {
    let layer = AuthLayer::new(authenticator()).optional();
    let app = Router::new()
        .route(
            "/",
            get(|p: Option<Principal>| async move {
                p.map_or("anonymous".to_owned(), |p| p.subject().to_owned())
            }),
        )
        .route_layer(layer);
    let anon = send(&app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(anon.status(), StatusCode::OK);
    assert_eq!(body_text(anon).await, "anonymous");
    let good = Request::get("/")
        .header("authorization", format!("Bearer {}", hs256(&claims())))
        .body(Body::empty())
        .unwrap();
    assert_eq!(body_text(send(&app, good).await).await, "alice");
    let bad = Request::get("/")
        .header("authorization", "Bearer a.b.c")
        .body(Body::empty())
        .unwrap();
    assert_invalid_token(&send(&app, bad).await);
}

/// A tiny API-key authenticator: `Authorization: Bearer key-123` (no dots).
struct TestApiKey;

impl Authenticator for TestApiKey {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        MaybeReady::Ready(
            match portcullis_core::credentials::authorization_bearer(&parts.headers) {
                Ok(Some("key-123")) => Ok(Some(
                    Principal::builder("key-holder", PrincipalKind::ApiKey).build(),
                )),
                Ok(_) => Ok(None),
                Err(e) => Err(e),
            },
        )
    }
}

#[tokio::test]
async fn tuple_with_an_api_key_authenticator() {
    let layer = AuthLayer::new((authenticator(), TestApiKey));
    let app = app(layer);
    let jwt = send(&app, bearer(&hs256(&claims()))).await;
    assert_eq!(body_text(jwt).await, "alice");
    let key = send(&app, bearer("key-123")).await;
    assert_eq!(key.status(), StatusCode::OK);
    assert_eq!(body_text(key).await, "key-holder");
    // A bearer nobody recognises: invalid_token (core's rule).
    assert_invalid_token(&send(&app, bearer("unknown-key")).await);
    // A bad JWT never falls through to the next authenticator.
    assert_invalid_token(&send(&app, bearer("key.123.x")).await);
    let none = send(&app, Request::get("/me").body(Body::empty()).unwrap()).await;
    assert_eq!(www(&none), r#"Bearer realm="api""#);
}

#[tokio::test]
async fn grpc_requests_get_a_grpc_status() {
    let app = app(AuthLayer::new(authenticator()));
    for auth in [None, Some("Bearer a.b.c".to_owned())] {
        let mut req = Request::post("/me").header("content-type", "application/grpc");
        if let Some(auth) = &auth {
            req = req.header("authorization", auth);
        }
        let response = send(&app, req.body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "16", "{auth:?}");
        assert_eq!(response.headers()["content-type"], "application/grpc");
    }
}

#[test]
fn non_jws_bearer_is_not_ours() {
    assert_eq!(reason(&authenticator(), "opaque-api-key"), "not_ours");
    assert_eq!(reason(&authenticator(), "a.b"), "malformed_token");
}

#[test]
fn build_errors() {
    use portcullis_jwt::ConfigErrorKind;
    let kind = |b: portcullis_jwt::JwtAuthenticatorBuilder| b.build().unwrap_err().kind();
    assert_eq!(
        kind(JwtAuthenticator::builder().issuer("i").audience("a")),
        ConfigErrorKind::NoKeys
    );
    let key = || Key::hmac(Algorithm::HS256, SECRET).unwrap();
    assert_eq!(
        kind(JwtAuthenticator::builder().key(key()).audience("a")),
        ConfigErrorKind::NoIssuer
    );
    assert_eq!(
        kind(JwtAuthenticator::builder().key(key()).issuer("i")),
        ConfigErrorKind::NoAudience
    );
    assert_eq!(
        kind(
            JwtAuthenticator::builder()
                .key(key())
                .issuer("")
                .audience("a")
        ),
        ConfigErrorKind::EmptyValue
    );
    let dup = JwtAuthenticator::builder()
        .key(key().with_kid("a").unwrap())
        .key(key().with_kid("a").unwrap())
        .issuer("i")
        .audience("a");
    assert_eq!(kind(dup), ConfigErrorKind::Key);
    let shown = format!("{:?}", builder().build().unwrap());
    assert!(!shown.contains("test-only-hs256"), "{shown}");
}

#[test]
fn authenticator_and_layer_are_send_and_sync() {
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}
    assert_send::<JwtAuthenticator>();
    assert_sync::<JwtAuthenticator>();
    assert_send::<AuthLayer<JwtAuthenticator>>();
    assert_sync::<AuthLayer<JwtAuthenticator>>();
    assert_send::<AuthLayer<JwtAuthenticator<MyClaims>>>();
    assert_sync::<AuthLayer<JwtAuthenticator<MyClaims>>>();
    assert_send::<Key>();
    assert_sync::<Key>();
}

#[tokio::test]
async fn real_server_on_loopback() {
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app(AuthLayer::new(authenticator()));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();
    let get = |auth: Option<String>| {
        let mut req = Request::get(format!("http://{addr}/me"));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        client.request(req.body(Body::empty()).unwrap())
    };
    let ok = get(Some(format!("Bearer {}", hs256(&claims()))))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let none = get(None).await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], r#"Bearer realm="api""#);
    let bad = get(Some("Bearer x.y.z".into())).await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let huge = get(Some(format!(
        "Bearer {}.{}.{}",
        "a".repeat(100_000),
        "b".repeat(100_000),
        "c"
    )))
    .await
    .unwrap();
    assert!(huge.status().is_client_error(), "{}", huge.status());
    server.abort();
}
