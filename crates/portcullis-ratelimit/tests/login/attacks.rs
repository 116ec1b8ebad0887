//! The attacks of issue #20 on the login throttle, pinned: lockout by other IPs'
//! failures, entries made by refused requests, a shared overflow bucket, a count kept
//! alive by rare failures, and parallel guesses counted late.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::*;

/// Regression: one IP's failures throttled every IP trying the same account, so an
/// attacker could keep the owner out with failures from anywhere.
#[tokio::test]
async fn a_thousand_attacking_ips_never_refuse_the_owner_from_a_clean_ip() {
    let clock = FakeRelativeClock::default();
    let layer = layer(&clock);
    let app = app(layer.clone());
    let attacker = |i: u32| format!("10.{}.{}.1", i / 256, i % 256);
    for i in 0..1000 {
        let (s, ..) = status(&app, attempt(&attacker(i), "alice@example.com", "guess")).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "each new IP gets its one guess"
        );
    }
    // The account guard binds the IPs that failed: a second guess waits.
    let (s, h, _) = status(&app, attempt(&attacker(7), "alice@example.com", "guess")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&h), 900);
    // The owner, from an IP that never failed on the account: straight in.
    let (s, ..) = status(&app, attempt("203.0.113.50", "alice@example.com", "right")).await;
    assert_eq!(s, StatusCode::OK);
    // A mistyped password there is an ordinary failure, not a refusal.
    let (s, ..) = status(&app, attempt("203.0.113.51", "alice@example.com", "typo")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(layer.tracked().account_failures, 1);
    assert_eq!(layer.tracked().account_ip_failures, 1001);
}

#[tokio::test]
async fn the_account_guard_ends_the_longest_wait_after_the_ips_own_failure() {
    let clock = FakeRelativeClock::default();
    let app = app(layer(&clock).account_failures(
        Backoff::new(nz(3), Duration::from_secs(3600)).max_delay(Duration::from_secs(60)),
    ));
    // The owner mistypes once from home.
    let (s, ..) = status(&app, attempt("203.0.113.9", "alice@example.com", "typo")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Then an attacker keeps the account's wait up with a fresh IP every 30 s.
    for i in 0..10 {
        clock.advance(Duration::from_secs(30));
        let (s, ..) = status(
            &app,
            attempt(&format!("10.0.0.{i}"), "alice@example.com", "x"),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // An attacking IP that failed 30 s ago is bound by the account's wait...
    let (s, h, _) = status(&app, attempt("10.0.0.8", "alice@example.com", "x")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&h), 30);
    // ...but 5 min after their own failure the owner is bound by nobody's wait.
    let (s, ..) = status(&app, attempt("203.0.113.9", "alice@example.com", "right")).await;
    assert_eq!(s, StatusCode::OK);
}

/// Regression: one failure every 15 min kept an account's backoff alive, for the
/// owner's correct password too.
#[tokio::test]
async fn a_failure_every_15_minutes_does_not_keep_the_owner_throttled() {
    let clock = FakeRelativeClock::default();
    let app = app(layer(&clock));
    for round in 0..12 {
        let (s, ..) = status(&app, attempt("198.18.0.66", "alice@example.com", "x")).await;
        assert!(
            s == StatusCode::UNAUTHORIZED || s == StatusCode::TOO_MANY_REQUESTS,
            "{s}"
        );
        let (s, ..) = status(&app, attempt("203.0.113.50", "alice@example.com", "right")).await;
        assert_eq!(s, StatusCode::OK, "round {round}");
        clock.advance(Duration::from_secs(14 * 60 + 59));
    }
}

/// Regression: every request created an account entry, even one refused with 422
/// before any password check, and a full map pooled new accounts into one bucket.
#[tokio::test]
async fn refunded_attempts_leave_no_entries_and_throttle_no_one() {
    let clock = FakeRelativeClock::default();
    let layer = layer(&clock).max_keys(nz(50));
    let app = Router::new().route(
        "/login",
        post(|Json(c): Json<Creds>| async move {
            if c.password.is_empty() {
                (StatusCode::UNPROCESSABLE_ENTITY, "password required")
            } else {
                check(&c)
            }
        })
        .layer(layer.clone()),
    );
    for i in 0..1000u32 {
        let ip = format!("172.16.{}.{}", i / 40, i % 40);
        let (s, ..) = status(&app, attempt(&ip, &format!("flood{i}@example.com"), "")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let tracked = layer.tracked();
    assert_eq!(tracked.account_failures, 0, "{tracked:?}");
    assert_eq!(tracked.account_ip_failures, 0, "{tracked:?}");
    assert_eq!(tracked.ip_failures, 0, "{tracked:?}");
    assert!(tracked.attempts <= 50, "{tracked:?}");
    // An account nobody tracked: its own three free failures, then its own wait.
    let mut codes = Vec::new();
    for _ in 0..5 {
        let (s, ..) = status(&app, attempt("192.0.2.99", "carol@example.com", "x")).await;
        codes.push(s.as_u16());
    }
    assert_eq!(codes, [401, 401, 401, 401, 429]);
}

#[tokio::test]
async fn a_full_map_drops_its_oldest_entry_and_never_pools_new_accounts() {
    let clock = FakeRelativeClock::default();
    let layer = layer(&clock).max_keys(nz(3));
    let app = app(layer.clone());
    let ip = "192.0.2.10";
    for n in 0..10 {
        let account = format!("user{n}@example.com");
        // Every account, however late, gets its own three free failures...
        for _ in 0..4 {
            let (s, ..) = status(&app, attempt(ip, &account, "x")).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{account}");
        }
        // ...and its own wait.
        let (s, ..) = status(&app, attempt(ip, &account, "x")).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{account}");
        let tracked = layer.tracked();
        assert!(tracked.account_ip_failures <= 3, "{tracked:?}");
        assert!(tracked.account_failures <= 3, "{tracked:?}");
    }
    // The newest three are still tracked; the oldest were dropped, not pooled.
    let (s, ..) = status(&app, attempt(ip, "user9@example.com", "x")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let (s, ..) = status(&app, attempt(ip, "user0@example.com", "x")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// Wrong guesses sent at once are all counted before any finishes: past the free
/// ones, the rest are refused without reaching the handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_are_counted_before_the_handler_answers() {
    let clock = FakeRelativeClock::default();
    let reached = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicBool::new(false));
    let (r, o) = (Arc::clone(&reached), Arc::clone(&open));
    let app = Router::new().route(
        "/login",
        post(move || {
            let (r, o) = (Arc::clone(&r), Arc::clone(&o));
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                // Hold every admitted guess until all of them have been decided.
                while !o.load(Ordering::SeqCst) {
                    tokio::task::yield_now().await;
                }
                StatusCode::UNAUTHORIZED
            }
        })
        .layer(layer(&clock)),
    );
    let refused = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, refused) = (app.clone(), Arc::clone(&refused));
            tokio::spawn(async move {
                let (s, ..) = status(&app, attempt("192.0.2.77", "alice@example.com", "x")).await;
                if s == StatusCode::TOO_MANY_REQUESTS {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
                s
            })
        })
        .collect();
    while reached.load(Ordering::SeqCst) + refused.load(Ordering::SeqCst) < 20 {
        tokio::task::yield_now().await;
    }
    open.store(true, Ordering::SeqCst);
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap().as_u16());
    }
    codes.sort_unstable();
    // Three free failures and the fourth, which sets the wait; the other sixteen wait.
    assert_eq!(reached.load(Ordering::SeqCst), 4);
    assert_eq!(codes.iter().filter(|&&c| c == 401).count(), 4, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 429).count(), 16, "{codes:?}");
}
