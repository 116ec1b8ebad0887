//! What the rate limit is keyed on: the client IP (and what happens without one), the
//! principal's subject or API key id, a header, a closure; and the throttle event.

mod common;

use std::{
    num::NonZeroU32,
    sync::{Arc, Mutex},
};

use axum::{Router, body::Body, routing::get};
use common::{Logs, peer};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use portcullis_core::{
    AuthEvent, AuthLayer, AuthResult, Authenticator, ClientIpResolver, Events, MaybeReady,
    Principal, PrincipalKind,
};
use portcullis_ratelimit::{
    ApiKeyIdKey, ClientIpKey, HeaderKey, KeyExtractError, Quota, RateLimitLayer, SubjectKey,
};
use tower::ServiceExt;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn from(ip: &str) -> Request<Body> {
    Request::get("/")
        .extension(peer(ip))
        .body(Body::empty())
        .unwrap()
}

fn ip_app(quota: Quota, key: ClientIpKey) -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(key, quota))
}

async fn body_text(res: axum::response::Response) -> String {
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn missing_peer_address_is_a_500_that_explains_in_the_log() {
    let (logs, _guard) = Logs::capture();
    let app = ip_app(Quota::per_hour(nz(2)), ClientIpKey::new());
    let res = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = body_text(res).await;
    assert!(
        text.contains("cannot determine the client address"),
        "{text}"
    );
    // How to fix the server is for its operator, not for the client.
    assert!(
        !text.contains("into_make_service_with_connect_info"),
        "{text}"
    );
    assert!(
        logs.text().contains("into_make_service_with_connect_info"),
        "{}",
        logs.text()
    );
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_connect_info_is_the_peer_with_the_axum_feature() {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;

    let app = ip_app(Quota::per_hour(nz(1)), ClientIpKey::new());
    let req = |ip: [u8; 4]| {
        Request::get("/")
            .extension(ConnectInfo(SocketAddr::from((ip, 4000))))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        app.clone()
            .oneshot(req([192, 0, 2, 1]))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.clone()
            .oneshot(req([192, 0, 2, 1]))
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        app.oneshot(req([192, 0, 2, 2])).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn subject_key_without_principal_is_a_500_never_a_pass() {
    let (logs, _guard) = Logs::capture();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(SubjectKey, Quota::per_hour(nz(2))));
    let res = app.oneshot(from("192.0.2.1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = body_text(res).await;
    assert!(
        text.contains("cannot determine the rate limit key"),
        "{text}"
    );
    assert!(!text.contains("inside the auth layer"), "{text}");
    let log = logs.text();
    assert!(log.contains("ERROR"), "{log}");
    assert!(log.contains("inside the auth layer"), "{log}");
}

struct Users;

impl Authenticator for Users {
    fn authenticate(&self, parts: &http::request::Parts) -> MaybeReady<AuthResult> {
        let p = match parts.headers.get("x-user").and_then(|v| v.to_str().ok()) {
            Some(k) if k.starts_with("key-") => Some(
                Principal::builder("owner", PrincipalKind::ApiKey)
                    .token_id(k)
                    .build(),
            ),
            Some(u) => Some(Principal::builder(u, PrincipalKind::User).build()),
            None => None,
        };
        MaybeReady::Ready(Ok(p))
    }
}

#[tokio::test]
async fn subject_and_api_key_keys_inside_the_auth_layer() {
    for (limit, a, b) in [
        (
            RateLimitLayer::new(SubjectKey, Quota::per_hour(nz(1))).policy_name("s"),
            "alice",
            "bob",
        ),
        (
            RateLimitLayer::new(SubjectKey, Quota::per_hour(nz(1))).policy_name("s2"),
            "carol",
            "dave",
        ),
    ] {
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(limit)
            .layer(AuthLayer::new(Users));
        let req = |u: &str| {
            Request::get("/")
                .header("x-user", u)
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(app.clone().oneshot(req(a)).await.unwrap().status(), 200);
        assert_eq!(app.clone().oneshot(req(a)).await.unwrap().status(), 429);
        assert_eq!(app.clone().oneshot(req(b)).await.unwrap().status(), 200);
    }

    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(ApiKeyIdKey, Quota::per_hour(nz(1))))
        .layer(AuthLayer::new(Users));
    let req = |u: &str| {
        Request::get("/")
            .header("x-user", u)
            .body(Body::empty())
            .unwrap()
    };
    // Two keys of the same owner are limited separately.
    assert_eq!(
        app.clone().oneshot(req("key-1")).await.unwrap().status(),
        200
    );
    assert_eq!(
        app.clone().oneshot(req("key-1")).await.unwrap().status(),
        429
    );
    assert_eq!(
        app.clone().oneshot(req("key-2")).await.unwrap().status(),
        200
    );
    // A user principal is keyed by subject in its own key space.
    assert_eq!(
        app.clone().oneshot(req("owner")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn header_key_and_closure_key() {
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(
            HeaderKey::new("x-tenant".parse().unwrap()),
            Quota::per_hour(nz(1)),
        ));
    let req = |t: Option<&str>| {
        let mut b = Request::get("/");
        if let Some(t) = t {
            b = b.header("x-tenant", t);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(
        app.clone().oneshot(req(Some("a"))).await.unwrap().status(),
        200
    );
    assert_eq!(
        app.clone().oneshot(req(Some("a"))).await.unwrap().status(),
        429
    );
    assert_eq!(app.clone().oneshot(req(None)).await.unwrap().status(), 400);
    let long = "x".repeat(200);
    assert_eq!(app.oneshot(req(Some(&long))).await.unwrap().status(), 400);

    let by_path = |parts: &http::request::Parts| -> Result<String, KeyExtractError> {
        Ok(parts.uri.path().to_owned())
    };
    let app = Router::new()
        .route("/{x}", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(by_path, Quota::per_hour(nz(1))));
    let get = |p: &str| Request::get(p).body(Body::empty()).unwrap();
    assert_eq!(app.clone().oneshot(get("/a")).await.unwrap().status(), 200);
    assert_eq!(app.clone().oneshot(get("/a")).await.unwrap().status(), 429);
    assert_eq!(app.oneshot(get("/b")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn ipv6_clients_share_their_64_and_spoofed_xff_is_ignored() {
    let key = ClientIpKey::with_resolver(
        ClientIpResolver::new()
            .trust_proxies(["10.0.0.0/8"])
            .unwrap(),
    );
    let app = ip_app(Quota::per_hour(nz(1)), key);
    let status = |req: Request<Body>| {
        let app = app.clone();
        async move { app.oneshot(req).await.unwrap().status() }
    };
    assert_eq!(status(from("2001:db8:0:1::1")).await, 200);
    assert_eq!(status(from("2001:db8:0:1:ffff::9")).await, 429);
    assert_eq!(status(from("2001:db8:0:2::1")).await, 200);

    // An untrusted client cannot pick a fresh key with X-Forwarded-For.
    let spoof = |xff: &str| {
        let mut r = from("198.51.100.7");
        r.headers_mut()
            .insert("x-forwarded-for", xff.parse().unwrap());
        r
    };
    assert_eq!(status(spoof("1.1.1.1")).await, 200);
    assert_eq!(status(spoof("2.2.2.2")).await, 429);

    // Through the trusted proxy, the forwarded client is the key.
    let proxied = |client: &str| {
        let mut r = from("10.0.0.1");
        r.headers_mut().insert(
            "x-forwarded-for",
            format!("{client}, 10.0.0.5").parse().unwrap(),
        );
        r
    };
    assert_eq!(status(proxied("203.0.113.1")).await, 200);
    assert_eq!(status(proxied("203.0.113.1")).await, 429);
    assert_eq!(status(proxied("203.0.113.2")).await, 200);
}

#[tokio::test]
async fn throttled_event_is_emitted() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let events = Events::new(move |e: &AuthEvent<'_>| {
        if let AuthEvent::Throttled {
            policy, key_kind, ..
        } = e
        {
            log.lock().unwrap().push(format!("{policy}/{key_kind}"));
        }
    });
    let app = Router::new().route("/", get(|| async { "ok" })).layer(
        RateLimitLayer::new(ClientIpKey::new(), Quota::per_hour(nz(1)))
            .policy_name("api")
            .with_events(events),
    );
    let _ = app.clone().oneshot(from("192.0.2.1")).await.unwrap();
    let _ = app.oneshot(from("192.0.2.1")).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["api/ip"]);
}
