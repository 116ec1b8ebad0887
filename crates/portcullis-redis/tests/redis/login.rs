//! The login throttle on Redis: one budget for several instances, the owner never
//! refused from a clean IP, no keys left by refunded attempts, parallel guesses all
//! counted, and `503` when Redis is gone.

use std::{
    num::NonZeroU32,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
};

use axum::{body::Bytes, routing::post};
use http::HeaderMap;
use portcullis_ratelimit::{Backoff, LoginRateLimitLayer};
use portcullis_redis::RedisLoginThrottle;

use super::*;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// 3 free failures per account and IP and per account, per 15 min.
fn throttle(redis: &Redis) -> LoginRateLimitLayer<RedisLoginThrottle> {
    let window = Duration::from_secs(900);
    LoginRateLimitLayer::with_backend(RedisLoginThrottle::new(redis, "login"))
        .attempts_per_ip(per_minute(100))
        .ip_failures(Backoff::new(nz(50), window))
        .account_ip_failures(Backoff::new(nz(3), window))
        .account_failures(Backoff::new(nz(3), window))
}

/// The handler knows alice@example.com / right; an empty password is a 422.
async fn login(body: Bytes) -> StatusCode {
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match (body["email"].as_str(), body["password"].as_str()) {
        (_, Some("")) => StatusCode::UNPROCESSABLE_ENTITY,
        (Some("alice@example.com"), Some("right")) => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    }
}

fn login_app(layer: LoginRateLimitLayer<RedisLoginThrottle>) -> Router {
    Router::new().route("/login", post(login).layer(layer))
}

fn attempt(ip: [u8; 4], email: &str, password: &str) -> Request<Body> {
    let body = serde_json::json!({ "email": email, "password": password }).to_string();
    Request::post("/login")
        .header("content-type", "application/json")
        .extension(ConnectInfo(SocketAddr::from((ip, 4000))))
        .body(Body::from(body))
        .unwrap()
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap) {
    let response = app.clone().oneshot(request).await.unwrap();
    (response.status(), response.headers().clone())
}

/// The scope's keys of one kind (`i:`, `p:`, `u:`, `a:`).
fn keys_of(scope: &Scoped, kind: &str) -> Vec<String> {
    let tag = format!("{}{{login:login}}:{kind}", scope.prefix);
    scope
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(&tag))
        .collect()
}

#[tokio::test]
async fn login_attackers_on_a_thousand_ips_never_refuse_the_owner_from_a_clean_ip() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let app = login_app(throttle(&scope.redis));
    let started = std::time::Instant::now();
    for i in 0..1000u32 {
        let ip = [10, (i >> 8) as u8, i as u8, 1];
        let (s, _) = send(&app, attempt(ip, "alice@example.com", "guess")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "attacker {i}");
    }
    // A second guess from an attacking IP waits for the account...
    let (s, h) = send(&app, attempt([10, 0, 7, 1], "alice@example.com", "guess")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // The account's window opened at the first failure, however long the thousand took.
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    let waited = started.elapsed().as_secs() + 1;
    assert!(
        (900 - waited..=900).contains(&retry),
        "Retry-After {retry} after {waited} s"
    );
    // ...the owner, from an IP without a failure on the account, does not.
    let (s, _) = send(
        &app,
        attempt([203, 0, 113, 50], "alice@example.com", "right"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys_of(&scope, "u:").len(), 1);
    assert_eq!(keys_of(&scope, "p:").len(), 1000);
}

#[tokio::test]
async fn login_two_instances_share_one_budget() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    // Two applications, each with its own layer, backend, connection and salt.
    let apps = [
        login_app(throttle(&scope.redis)),
        login_app(throttle(&scope.another_instance())),
    ];
    let ip = [192, 0, 2, 20];
    // Four failures, alternating: three free and one that sets a 1 s wait.
    for i in 0..4 {
        let (s, _) = send(&apps[i % 2], attempt(ip, "Bob@Example.com", "x")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    for app in &apps {
        let (s, h) = send(app, attempt(ip, "bob@example.com", "x")).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h["retry-after"], "1");
        assert_eq!(h["ratelimit-policy"], r#""login";q=100;w=60"#);
    }
    // One account, one key: both instances hashed it with the same salt.
    assert_eq!(keys_of(&scope, "u:").len(), 1);
    assert_eq!(keys_of(&scope, "p:").len(), 1);

    // The attempt quota is shared too: 3 per minute for both together.
    let strict = |redis: &Redis| {
        login_app(
            LoginRateLimitLayer::with_backend(RedisLoginThrottle::new(redis, "strict"))
                .attempts_per_ip(per_minute(3)),
        )
    };
    let apps = [strict(&scope.redis), strict(&scope.another_instance())];
    let mut codes = Vec::new();
    for i in 0..5 {
        let (s, _) = send(
            &apps[i % 2],
            attempt([192, 0, 2, 21], "alice@example.com", "right"),
        )
        .await;
        codes.push(s.as_u16());
    }
    assert_eq!(codes, [200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn login_refunded_attempts_leave_no_keys_and_counts_expire() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let app = login_app(throttle(&scope.redis));
    for i in 0..50u8 {
        let email = format!("flood{i}@example.com");
        let (s, _) = send(&app, attempt([172, 16, 0, i], &email, "")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    for kind in ["i:", "p:", "u:"] {
        assert_eq!(keys_of(&scope, kind), Vec::<String>::new(), "{kind}");
    }
    // A success leaves no account-and-IP or account count either.
    let (s, _) = send(&app, attempt([172, 16, 1, 1], "alice@example.com", "right")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(keys_of(&scope, "p:").is_empty() && keys_of(&scope, "u:").is_empty());

    // A failure writes three counts, each expiring with its 15 min window.
    let (s, _) = send(&app, attempt([172, 16, 1, 2], "carol@example.com", "x")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut conn = scope.raw();
    for kind in ["i:", "p:", "u:"] {
        let keys = keys_of(&scope, kind);
        assert_eq!(keys.len(), 1, "{kind}");
        let pttl: i64 = redis::cmd("PTTL").arg(&keys[0]).query(&mut conn).unwrap();
        assert!(pttl > 899_000 && pttl <= 900_000, "{kind} {pttl}");
    }
    // The attempt quota's keys expire once they are fresh again.
    for key in keys_of(&scope, "a:") {
        let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
        assert!(pttl > 0 && pttl <= 600, "{pttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_concurrent_guesses_on_two_instances_are_all_counted() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let reached = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicBool::new(false));
    let app = |redis: &Redis| {
        let (r, o) = (Arc::clone(&reached), Arc::clone(&open));
        Router::new().route(
            "/login",
            post(move || {
                let (r, o) = (Arc::clone(&r), Arc::clone(&o));
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    while !o.load(Ordering::SeqCst) {
                        tokio::task::yield_now().await;
                    }
                    StatusCode::UNAUTHORIZED
                }
            })
            .layer(throttle(redis)),
        )
    };
    let apps = [app(&scope.redis), app(&scope.another_instance())];
    let refused = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (app, refused) = (apps[i % 2].clone(), Arc::clone(&refused));
            tokio::spawn(async move {
                let (s, _) = send(&app, attempt([192, 0, 2, 30], "alice@example.com", "x")).await;
                if s == StatusCode::TOO_MANY_REQUESTS {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
                s.as_u16()
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reached.load(Ordering::SeqCst) + refused.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "attempts were not decided");
        tokio::task::yield_now().await;
    }
    open.store(true, Ordering::SeqCst);
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap());
    }
    // Three free failures and the fourth that sets the wait reach the handler.
    assert_eq!(reached.load(Ordering::SeqCst), 4);
    assert_eq!(codes.iter().filter(|&&c| c == 429).count(), 16, "{codes:?}");
}

#[tokio::test]
async fn login_throttle_fails_closed_when_redis_is_gone() {
    // Nothing listens on port 1.
    let redis = Redis::open("redis://127.0.0.1:1")
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let app = login_app(throttle(&redis));
    let started = Instant::now();
    let (s, _) = send(&app, attempt([192, 0, 2, 40], "alice@example.com", "right")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(2));

    // Open: the attempt passes uncounted.
    let open = LoginRateLimitLayer::with_backend(
        RedisLoginThrottle::new(&redis, "login").failure_policy(FailurePolicy::Open),
    );
    let (s, _) = send(
        &login_app(open),
        attempt([192, 0, 2, 40], "alice@example.com", "right"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}
