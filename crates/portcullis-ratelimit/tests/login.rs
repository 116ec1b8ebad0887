//! LoginRateLimitLayer end to end: oneshot calls with a peer address for many client
//! IPs, a plain (non-axum) service, and a real axum server on loopback.

mod common;

use std::{
    net::SocketAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Form, Json, Router,
    body::{Body, Bytes},
    http::StatusCode,
    routing::post,
};
use common::{Logs, peer};
use governor::clock::FakeRelativeClock;
use http::Request;
use http_body_util::{BodyExt, Full};
use portcullis_core::{AuthEvent, Events, PeerAddr};
use portcullis_ratelimit::{Backoff, LoginRateLimitLayer, Quota};
use serde_json::Value;
use tower::ServiceExt;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[derive(serde::Deserialize)]
struct Creds {
    email: String,
    password: String,
}

/// The handler knows one account: alice@example.com / right.
async fn login_json(Json(c): Json<Creds>) -> (StatusCode, &'static str) {
    check(&c)
}

async fn login_form(Form(c): Form<Creds>) -> (StatusCode, &'static str) {
    check(&c)
}

fn check(c: &Creds) -> (StatusCode, &'static str) {
    if c.email == "alice@example.com" && c.password == "right" {
        (StatusCode::OK, "token")
    } else {
        (StatusCode::UNAUTHORIZED, "no")
    }
}

fn app(layer: LoginRateLimitLayer<FakeRelativeClock>) -> Router {
    Router::new()
        .route("/login", post(login_json).layer(layer.clone()))
        .route("/login-form", post(login_form).layer(layer))
        .route("/echo", post(|b: Bytes| async move { b }))
}

fn attempt(ip: &str, email: &str, password: &str) -> Request<Body> {
    let body = serde_json::json!({ "email": email, "password": password }).to_string();
    Request::post("/login")
        .header("content-type", "application/json")
        .extension(peer(ip))
        .body(Body::from(body))
        .unwrap()
}

async fn status(app: &Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, Bytes) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn layer(clock: &FakeRelativeClock) -> LoginRateLimitLayer<FakeRelativeClock> {
    LoginRateLimitLayer::with_clock(clock.clone())
        .attempts_per_ip(Quota::per_minute(nz(100)))
        .ip_failures(Backoff::new(nz(50), Duration::from_secs(900)))
        .account_failures(Backoff::new(nz(3), Duration::from_secs(900)))
}

#[tokio::test]
async fn account_backoff_grows_across_ips_and_is_not_a_lockout() {
    let clock = FakeRelativeClock::default();
    let app = app(layer(&clock));
    // A distributed guesser: a new IP every attempt.
    for i in 1..=3 {
        let (s, ..) = status(
            &app,
            attempt(&format!("198.51.100.{i}"), "Alice@Example.com ", "x"),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Fourth failure: the account now waits 1 s, then 2 s, then 4 s.
    let (s, ..) = status(&app, attempt("198.51.100.4", "alice@example.com", "x")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut waits = Vec::new();
    for i in 5..=7 {
        let (s, h, _) = status(
            &app,
            attempt(&format!("198.51.100.{i}"), "ALICE@example.com", "x"),
        )
        .await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
        waits.push(wait);
        clock.advance(Duration::from_secs(wait));
        let (s, ..) = status(
            &app,
            attempt(&format!("198.51.100.{}", i + 10), "alice@example.com", "x"),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(waits, [1, 2, 4]);

    // The legitimate owner, after the current wait, gets in; success clears the count.
    let (_, h, _) = status(&app, attempt("203.0.113.50", "alice@example.com", "right")).await;
    let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    clock.advance(Duration::from_secs(wait));
    let (s, _, body) = status(&app, attempt("203.0.113.50", "alice@example.com", "right")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&body[..], b"token");
    for _ in 0..3 {
        let (s, ..) = status(&app, attempt("203.0.113.51", "alice@example.com", "x")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "count restarted after success");
    }
}

#[tokio::test]
async fn unknown_and_existing_accounts_get_the_same_429() {
    let clock = FakeRelativeClock::default();
    let app = app(layer(&clock));
    let mut answers = Vec::new();
    for (n, account) in ["alice@example.com", "nobody@example.com"]
        .iter()
        .enumerate()
    {
        for i in 0..4 {
            let _ = status(&app, attempt(&format!("198.51.{n}.{i}"), account, "x")).await;
        }
        let (s, h, body) = status(&app, attempt(&format!("198.51.{n}.99"), account, "x")).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        let mut names: Vec<_> = h.keys().map(|k| k.as_str().to_owned()).collect();
        names.sort();
        answers.push((
            names,
            h["retry-after"].clone(),
            h["ratelimit"].clone(),
            body,
        ));
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn ip_attempt_and_failure_limits() {
    let clock = FakeRelativeClock::default();
    let layer = LoginRateLimitLayer::with_clock(clock.clone())
        .attempts_per_ip(Quota::per_minute(nz(5)))
        .ip_failures(Backoff::new(nz(2), Duration::from_secs(900)));
    let app = app(layer);
    // IP failures: distinct accounts from one IP, 2 free failures, then backoff.
    for n in 0..3 {
        let (s, ..) = status(&app, attempt("192.0.2.7", &format!("user{n}@x"), "x")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, h, _) = status(&app, attempt("192.0.2.7", "user9@x", "x")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "1");
    // Other IPs are not affected.
    let (s, ..) = status(&app, attempt("192.0.2.8", "user9@x", "x")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Attempt quota: 5 per minute counts successes too.
    let (s, ..) = status(&app, attempt("192.0.2.50", "alice@example.com", "right")).await;
    assert_eq!(s, StatusCode::OK);
    for _ in 0..4 {
        let (s, ..) = status(&app, attempt("192.0.2.50", "alice@example.com", "right")).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, h, _) = status(&app, attempt("192.0.2.50", "alice@example.com", "right")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "12");
    assert_eq!(h["ratelimit-policy"], r#""login";q=5;w=60"#);
}

#[tokio::test]
async fn form_bodies_and_custom_failure_predicate() {
    let clock = FakeRelativeClock::default();
    let app = app(layer(&clock).failure_when(|s| s == StatusCode::UNAUTHORIZED));
    let form = |email: &str| {
        Request::post("/login-form")
            .header("content-type", "application/x-www-form-urlencoded")
            .extension(PeerAddr(SocketAddr::from(([192, 0, 2, 3], 1))))
            .body(Body::from(format!("email={email}&password=x")))
            .unwrap()
    };
    for _ in 0..4 {
        assert_eq!(status(&app, form("bob%40example.com")).await.0, 401);
    }
    // The JSON route shares the account state: same normalised account.
    let (s, ..) = status(&app, attempt("192.0.2.4", " BOB@example.com", "x")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn missing_peer_is_a_500() {
    let (logs, _guard) = Logs::capture();
    let clock = FakeRelativeClock::default();
    let app = app(layer(&clock));
    let req = Request::post("/login")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (s, _, body) = status(&app, req).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("cannot determine the client address"),
        "{text}"
    );
    // How to fix the server goes to its log, not to the client.
    assert!(
        !text.contains("into_make_service_with_connect_info"),
        "{text}"
    );
    assert!(logs.text().contains("into_make_service_with_connect_info"));
}

#[tokio::test]
async fn events_carry_no_account_or_password() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let events = Events::new(move |e: &AuthEvent<'_>| log.lock().unwrap().push(format!("{e:?}")));
    let clock = FakeRelativeClock::default();
    let app = app(layer(&clock).with_events(events));
    for i in 0..5 {
        let _ = status(
            &app,
            attempt(&format!("10.1.1.{i}"), "secret-user@example.com", "hunter2"),
        )
        .await;
    }
    let seen = seen.lock().unwrap();
    assert!(seen.iter().any(|e| e.contains("LoginFailed")));
    assert!(seen.iter().any(|e| e.contains("Throttled")));
    assert!(
        seen.iter()
            .all(|e| !e.contains("secret-user") && !e.contains("hunter2"))
    );
}

/// Through a real server: body handed on unchanged, 413 over the limit, IP limit.
#[cfg(feature = "axum")]
#[tokio::test]
async fn real_server_passes_body_unchanged_and_refuses_large_bodies() {
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    let clock = FakeRelativeClock::default();
    let layer = LoginRateLimitLayer::with_clock(clock.clone())
        .attempts_per_ip(Quota::per_minute(nz(6)))
        .body_limit(1024);
    let app = Router::new()
        .route(
            "/login",
            post(|b: Bytes| async move { (StatusCode::UNAUTHORIZED, b) }).layer(layer.clone()),
        )
        .route("/login-ok", post(|b: Bytes| async move { b }).layer(layer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let send = |path: &str, ct: &str, body: Vec<u8>| {
        let req = Request::post(format!("http://{addr}{path}"))
            .header("content-type", ct)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let client = client.clone();
        async move {
            let res = client.request(req).await.unwrap();
            let status = res.status();
            (status, res.into_body().collect().await.unwrap().to_bytes())
        }
    };

    let original =
        br#"{"email":"Carol@Example.com","password":"p\u00e4ss","extra":[1,2,3]}"#.to_vec();
    let (s, body) = send("/login-ok", "application/json", original.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&body[..], &original[..]);

    let (s, body) = send("/login", "application/json", vec![b' '; 2048]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], 413);

    // 6 attempts per minute from 127.0.0.1: two used above, four more pass, then 429.
    for _ in 0..4 {
        let (s, _) = send("/login", "application/json", br#"{"email":"x@y"}"#.to_vec()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _) = send("/login", "application/json", br#"{"email":"z@y"}"#.to_vec()).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    server.abort();
}

#[tokio::test]
async fn attempts_without_an_account_share_one_bucket() {
    let clock = FakeRelativeClock::default();
    // A handler that reads a field the layer does not know about: the account limit
    // must not silently turn off.
    let app = Router::new().route(
        "/login",
        post(|| async { StatusCode::UNAUTHORIZED }).layer(layer(&clock)),
    );
    let odd = |ip: &str| {
        Request::post("/login")
            .header("content-type", "application/json")
            .extension(peer(ip))
            .body(Body::from(r#"{"login":"alice","password":"x"}"#))
            .unwrap()
    };
    let mut codes = Vec::new();
    for i in 0..5 {
        codes.push(status(&app, odd(&format!("198.18.0.{i}"))).await.0.as_u16());
    }
    assert_eq!(codes, [401, 401, 401, 401, 429]);
}

#[tokio::test]
async fn answers_in_the_body_type_of_a_plain_service() {
    // Not axum: a handler taking and answering `Full<Bytes>`. Every answer, the
    // handler's and the layer's refusals, comes back in that type.
    let clock = FakeRelativeClock::default();
    let handler = tower::service_fn(|req: Request<Full<Bytes>>| async move {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let ok = body.windows(7).any(|w| w == b"\"right\"");
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        let mut res = http::Response::new(Full::new(Bytes::from_static(b"answer")));
        *res.status_mut() = status;
        Ok::<_, std::convert::Infallible>(res)
    });
    let svc = tower::Layer::layer(&layer(&clock), handler);
    let send = |password: &str| {
        let body = serde_json::json!({ "email": "alice@example.com", "password": password });
        let req = Request::post("/login")
            .header("content-type", "application/json")
            .extension(peer("192.0.2.7"))
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let svc = svc.clone();
        async move {
            let res = svc.oneshot(req).await.unwrap();
            let status = res.status();
            (status, res.into_body().collect().await.unwrap().to_bytes())
        }
    };
    // Three free failures, a fourth that sets a wait, then refusals during it.
    for _ in 0..4 {
        assert_eq!(
            send("wrong").await,
            (StatusCode::UNAUTHORIZED, Bytes::from("answer"))
        );
    }
    let (status, body) = send("right").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(problem["retry_after"], 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(send("right").await, (StatusCode::OK, Bytes::from("answer")));
}
