//! LoginRateLimitLayer end to end: oneshot calls with a peer address for many client
//! IPs, a plain (non-axum) service, and a real axum server on loopback.

#[path = "login/attacks.rs"]
mod attacks;
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
use portcullis_ratelimit::{Backoff, LoginRateLimitLayer, MemoryLoginBackend, Quota};
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

fn app(layer: Layer) -> Router {
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

type Layer = LoginRateLimitLayer<MemoryLoginBackend<FakeRelativeClock>>;

/// 3 free failures per account and IP, and 3 per account, both per 15 min.
fn layer(clock: &FakeRelativeClock) -> Layer {
    LoginRateLimitLayer::with_clock(clock.clone())
        .attempts_per_ip(Quota::per_minute(nz(100)))
        .ip_failures(Backoff::new(nz(50), Duration::from_secs(900)))
        .account_ip_failures(Backoff::new(nz(3), Duration::from_secs(900)))
        .account_failures(Backoff::new(nz(3), Duration::from_secs(900)))
}

fn retry_after(h: &http::HeaderMap) -> u64 {
    h["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn account_and_ip_backoff_grows_and_a_success_clears_it() {
    let clock = FakeRelativeClock::default();
    // Only the account-and-IP count in play here.
    let app = app(layer(&clock).account_failures(Backoff::new(nz(50), Duration::from_secs(900))));
    let ip = "198.51.100.1";
    for _ in 1..=4 {
        let (s, ..) = status(&app, attempt(ip, "Alice@Example.com ", "x")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Past three free failures each one doubles the wait: 1 s, 2 s, 4 s.
    let mut waits = Vec::new();
    for _ in 0..3 {
        let (s, h, _) = status(&app, attempt(ip, "ALICE@example.com", "x")).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        waits.push(retry_after(&h));
        clock.advance(Duration::from_secs(retry_after(&h)));
        let (s, ..) = status(&app, attempt(ip, "alice@example.com", "x")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(waits, [1, 2, 4]);

    // The owner, at the same IP, after the current wait: in, and the count is gone.
    let (_, h, _) = status(&app, attempt(ip, "alice@example.com", "right")).await;
    clock.advance(Duration::from_secs(retry_after(&h)));
    let (s, _, body) = status(&app, attempt(ip, "alice@example.com", "right")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&body[..], b"token");
    for _ in 0..3 {
        let (s, ..) = status(&app, attempt(ip, "alice@example.com", "x")).await;
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
        let ip = format!("198.51.{n}.1");
        for _ in 0..4 {
            let _ = status(&app, attempt(&ip, account, "x")).await;
        }
        let (s, h, body) = status(&app, attempt(&ip, account, "x")).await;
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

/// A refusal, reduced to what must not tell the limits apart: the header names and
/// the problem body without the wait.
fn shape(h: &http::HeaderMap, body: &Bytes) -> (Vec<String>, Value) {
    let mut names: Vec<_> = h.keys().map(|k| k.as_str().to_owned()).collect();
    names.sort();
    let mut problem: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(problem["retry_after"], retry_after(h));
    problem.as_object_mut().unwrap().remove("retry_after");
    (names, problem)
}

#[tokio::test]
async fn every_limit_refuses_with_the_same_429() {
    let clock = FakeRelativeClock::default();
    let mut shapes = Vec::new();
    // Attempts per IP.
    let app1 = app(layer(&clock).attempts_per_ip(Quota::per_minute(nz(1))));
    let _ = status(&app1, attempt("192.0.2.1", "a@x", "x")).await;
    let (s, h, body) = status(&app1, attempt("192.0.2.1", "a@x", "x")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    shapes.push(shape(&h, &body));
    // Failures per IP, on two accounts.
    let app2 = app(layer(&clock).ip_failures(Backoff::new(nz(1), Duration::from_secs(900))));
    let _ = status(&app2, attempt("192.0.2.2", "a@x", "x")).await;
    let _ = status(&app2, attempt("192.0.2.2", "b@x", "x")).await;
    let (s, h, body) = status(&app2, attempt("192.0.2.2", "c@x", "x")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    shapes.push(shape(&h, &body));
    // Failures per account and IP.
    let app3 = app(layer(&clock));
    for _ in 0..4 {
        let _ = status(&app3, attempt("192.0.2.3", "a@x", "x")).await;
    }
    let (s, h, body) = status(&app3, attempt("192.0.2.3", "a@x", "x")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    shapes.push(shape(&h, &body));
    // Failures per account, for an IP that failed on it.
    let app4 = app(layer(&clock));
    for i in 0..4 {
        let _ = status(&app4, attempt(&format!("192.0.3.{i}"), "a@x", "x")).await;
    }
    let (s, h, body) = status(&app4, attempt("192.0.3.0", "a@x", "x")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    shapes.push(shape(&h, &body));
    assert!(shapes.windows(2).all(|w| w[0] == w[1]), "{shapes:#?}");
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
    // The JSON route shares the state: same normalised account, same IP.
    let (s, ..) = status(&app, attempt("192.0.2.3", " BOB@example.com", "x")).await;
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
    for _ in 0..5 {
        let _ = status(
            &app,
            attempt("10.1.1.1", "secret-user@example.com", "hunter2"),
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

    // 6 attempts per minute from 127.0.0.1: one used above (a body declared too
    // large is refused before it is counted), five more pass, then 429.
    for _ in 0..5 {
        let (s, _) = send("/login", "application/json", br#"{"email":"x@y"}"#.to_vec()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _) = send("/login", "application/json", br#"{"email":"z@y"}"#.to_vec()).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    server.abort();
}

#[tokio::test]
async fn attempts_without_an_account_are_still_limited() {
    let clock = FakeRelativeClock::default();
    // A handler that reads a field the layer does not know about: the account limits
    // must not silently turn off; they become limits per IP.
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
    for _ in 0..5 {
        codes.push(status(&app, odd("198.18.0.1")).await.0.as_u16());
    }
    assert_eq!(codes, [401, 401, 401, 401, 429]);
    // Another IP without a failure of its own is not refused.
    assert_eq!(status(&app, odd("198.18.0.2")).await.0, 401);
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

#[test]
fn layers_backends_and_services_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LoginRateLimitLayer>();
    assert_send_sync::<Layer>();
    assert_send_sync::<MemoryLoginBackend>();
    assert_send_sync::<portcullis_ratelimit::LoginRateLimit<Router>>();
}
