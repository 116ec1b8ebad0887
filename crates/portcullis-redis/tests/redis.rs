//! The Redis backends against a real server on loopback (`REDIS_URL`).

mod common;

use std::{
    net::SocketAddr,
    num::NonZeroU32,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use axum::{Router, body::Body, extract::ConnectInfo, routing::get};
use common::{OwnServer, Scoped, redis_url};
use http::{Request, StatusCode};
use portcullis_apikey::{
    ApiKeyRecord, ApiKeyStore, ApiKeys, KeyDigest, KeyFormat, NewApiKey, StoreErrorKind,
};
use portcullis_core::{AuthErrorKind, MaybeReady, Revocation, RevocationQuery};
use portcullis_ratelimit::{ClientIpKey, GovernorBackend, Quota, RateLimitBackend, RateLimitLayer};
use portcullis_redis::{
    FailurePolicy, Redis, RedisApiKeyStore, RedisRateLimit, RedisRefreshStore, RedisRevocation,
};
use portcullis_tokens::{
    Clock, ErrorKind as TokenErrorKind, ManualClock, RefreshStore, RefreshTokens, RevocationStore,
    RevokedToken, RotateOutcome, Rotation, TokenHash,
};
use tower::ServiceExt;

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap())
}

fn limited_app(backend: RedisRateLimit) -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::with_backend(ClientIpKey::new(), backend).policy_name("api"))
}

fn from(ip: [u8; 4]) -> Request<Body> {
    Request::get("/")
        .extension(ConnectInfo(SocketAddr::from((ip, 4000))))
        .body(Body::empty())
        .unwrap()
}

async fn status(app: &Router, ip: [u8; 4]) -> StatusCode {
    app.clone().oneshot(from(ip)).await.unwrap().status()
}

async fn decide(backend: &RedisRateLimit, key: &str) -> portcullis_ratelimit::Decision {
    RateLimitBackend::<Box<str>>::check(backend, &Box::from(key))
        .await
        .unwrap()
}

// ---------------------------------------------------------------- rate limit

#[tokio::test]
async fn rate_limit_matches_the_governor_backend() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let quota = per_minute(3);
    let redis_backend = RedisRateLimit::new(&scope.redis, "api", quota);
    let local = GovernorBackend::<Box<str>>::new(quota);
    for i in 0..3 {
        let remote = decide(&redis_backend, "alice").await;
        let here = local.check_now(&"alice".into());
        assert!(remote.is_allowed(), "request {i}");
        assert_eq!(remote.remaining(), here.remaining(), "request {i}");
        // The time until the next unit is back (20 s after the first request),
        // measured a few milliseconds apart on two clocks.
        let gap = remote.reset().abs_diff(here.reset());
        assert!(gap < Duration::from_millis(500), "{remote:?} vs {here:?}");
        assert!(remote.reset() > Duration::from_secs(19), "{remote:?}");
    }
    let remote = decide(&redis_backend, "alice").await;
    let here = local.check_now(&"alice".into());
    assert!(!remote.is_allowed() && !here.is_allowed());
    // Both say "the next request fits in about 20 s" (60 s / 3), measured a few
    // milliseconds apart on two clocks.
    let gap = remote.retry_after().abs_diff(here.retry_after());
    assert!(gap < Duration::from_millis(500), "{remote:?} vs {here:?}");
    assert!(remote.retry_after() > Duration::from_secs(19));
    // Other keys are independent.
    assert_eq!(decide(&redis_backend, "bob").await.remaining(), 2);
    assert_eq!(
        RateLimitBackend::<Box<str>>::quota(&redis_backend),
        (NonZeroU32::new(3).unwrap(), Duration::from_secs(60))
    );
}

#[tokio::test]
async fn rate_limit_keys_expire_when_fresh_again() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let backend = RedisRateLimit::new(&scope.redis, "api", per_minute(6));
    decide(&backend, "carol").await;
    let key = format!("{}rl:api:carol", scope.prefix);
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query(&mut scope.raw())
        .unwrap();
    // One request's worth of state: one emission interval (10 s).
    assert!(pttl > 9_000 && pttl <= 10_000, "pttl {pttl}");
    assert_eq!(scope.keys(), vec![key]);
}

#[tokio::test]
async fn rate_limit_reloads_its_script_after_a_flush() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let backend = RedisRateLimit::new(&scope.redis, "api", per_minute(10));
    assert_eq!(decide(&backend, "dave").await.remaining(), 9);
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut scope.raw())
        .unwrap();
    // EVALSHA now answers NOSCRIPT; the backend loads the script again.
    assert_eq!(decide(&backend, "dave").await.remaining(), 8);
}

#[tokio::test]
async fn layer_answers_429_with_headers_from_redis() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let app = limited_app(RedisRateLimit::new(&scope.redis, "api", per_minute(2)));
    assert_eq!(status(&app, [192, 0, 2, 1]).await, StatusCode::OK);
    assert_eq!(status(&app, [192, 0, 2, 1]).await, StatusCode::OK);
    let refused = app.clone().oneshot(from([192, 0, 2, 1])).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "30");
    assert_eq!(refused.headers()["ratelimit-policy"], r#""api";q=2;w=60"#);
    assert_eq!(refused.headers()["ratelimit"], r#""api";r=0;t=30"#);
    assert_eq!(status(&app, [192, 0, 2, 2]).await, StatusCode::OK);
}

/// Serves `app` on a loopback port; returns its address.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_enforce_one_global_limit() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    // Two applications: each its own layer, backend and Redis connection.
    let quota = Quota::per_hour(NonZeroU32::new(20).unwrap());
    let a = serve(limited_app(RedisRateLimit::new(&scope.redis, "api", quota))).await;
    let b = serve(limited_app(RedisRateLimit::new(
        &scope.another_instance(),
        "api",
        quota,
    )))
    .await;

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let get = |client: &hyper_util::client::legacy::Client<_, _>, addr: SocketAddr| {
        let client = client.clone();
        async move {
            let uri = format!("http://{addr}/");
            client.get(uri.parse().unwrap()).await.unwrap().status()
        }
    };
    let mut allowed = [0, 0];
    let mut count = |instance: usize, status: StatusCode| match status {
        StatusCode::OK => allowed[instance] += 1,
        StatusCode::TOO_MANY_REQUESTS => {}
        other => panic!("unexpected {other}"),
    };
    // Alternating, one at a time: each instance sees the other's requests.
    for i in 0..10 {
        let addr = [a, b][i % 2];
        count(i % 2, get(&client, addr).await);
    }
    // Then a concurrent burst on both.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let request = get(&client, [a, b][i % 2]);
            tokio::spawn(async move { (i % 2, request.await) })
        })
        .collect();
    for task in tasks {
        let (instance, status) = task.await.unwrap();
        count(instance, status);
    }
    // One client IP, one quota of 20 for both instances together (no replenishment
    // within the test: one unit per 3 minutes).
    assert_eq!(allowed[0] + allowed[1], 20, "{allowed:?}");
    assert!(allowed[0] >= 5 && allowed[1] >= 5, "{allowed:?}");
}

// ---------------------------------------------------------------- outage

async fn eventually(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok().await {
        assert!(Instant::now() < deadline, "{what} did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_fails_closed_or_open_and_recovers() {
    let Some(_) = redis_url() else { return };
    let mut server = OwnServer::start();
    let redis = Redis::open(&server.url()).unwrap().with_prefix("outage:");
    let quota = per_minute(1000);
    let closed = limited_app(RedisRateLimit::new(&redis, "closed", quota));
    let open =
        limited_app(RedisRateLimit::new(&redis, "open", quota).failure_policy(FailurePolicy::Open));
    let revocation = RedisRevocation::new(&redis);
    let keys = RedisApiKeyStore::new(&redis);
    let query = RevocationQuery {
        issuer: None,
        subject: "alice",
        token_id: Some("t1"),
        issued_at: Some(SystemTime::now()),
    };

    for _ in 0..3 {
        assert_eq!(status(&closed, [192, 0, 2, 7]).await, StatusCode::OK);
        assert_eq!(status(&open, [192, 0, 2, 7]).await, StatusCode::OK);
    }
    revocation.check(&query).await.unwrap();
    assert!(keys.find("nothing").await.unwrap().is_none());

    server.kill();

    let started = Instant::now();
    let refused = closed.clone().oneshot(from([192, 0, 2, 7])).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(status(&open, [192, 0, 2, 7]).await, StatusCode::OK);
    let error = revocation.check(&query).await.unwrap_err();
    assert_eq!(error.kind(), AuthErrorKind::Unavailable);
    let error = keys.find("nothing").await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Backend);
    // Every failure came back within the call timeouts, not a TCP timeout.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for _ in 0..5 {
        assert_eq!(
            status(&closed, [192, 0, 2, 7]).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(&open, [192, 0, 2, 7]).await, StatusCode::OK);
    }

    server.restart();

    eventually("fail-closed rate limit", async || {
        status(&closed, [192, 0, 2, 7]).await == StatusCode::OK
    })
    .await;
    eventually("revocation", async || {
        revocation.check(&query).await.is_ok()
    })
    .await;
    eventually("api keys", async || keys.find("nothing").await.is_ok()).await;
    // The limits work again (state lives in the fresh server: the script was
    // loaded anew after NOSCRIPT).
    let backend = RedisRateLimit::new(&redis, "after", per_minute(2));
    assert_eq!(decide(&backend, "x").await.remaining(), 1);
    assert_eq!(decide(&backend, "x").await.remaining(), 0);
    assert!(!decide(&backend, "x").await.is_allowed());
    assert_eq!(status(&open, [192, 0, 2, 7]).await, StatusCode::OK);
}

#[tokio::test]
async fn a_slow_redis_is_cut_off_by_the_timeout() {
    let Some(_) = redis_url() else { return };
    // A listener that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let redis = Redis::open(&format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .with_timeout(Duration::from_millis(100));
    let backend = RedisRateLimit::new(&redis, "api", per_minute(5));
    let started = Instant::now();
    let result = RateLimitBackend::<Box<str>>::check(&backend, &Box::from("k")).await;
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_millis(1000));
    let open = backend.failure_policy(FailurePolicy::Open);
    assert!(decide(&open, "k").await.is_allowed());
}

// ---------------------------------------------------------------- revocation

fn revoked(result: Result<(), portcullis_core::AuthError>) -> bool {
    match result {
        Ok(()) => false,
        Err(e) => {
            assert_eq!(e.kind(), AuthErrorKind::InvalidToken, "{e:?}");
            true
        }
    }
}

#[tokio::test]
async fn revocation_denies_a_jti_until_its_exp() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let revocation = RedisRevocation::new(&scope.redis);
    let query = |jti, iss| RevocationQuery {
        issuer: iss,
        subject: "alice",
        token_id: Some(jti),
        issued_at: Some(SystemTime::now()),
    };
    assert!(!revoked(
        revocation.check(&query("a", Some("https://iss"))).await
    ));
    revocation
        .revoke_token(RevokedToken {
            issuer: Some("https://iss"),
            token_id: "a",
            subject: "alice",
            expires_at: SystemTime::now() + Duration::from_secs(60),
        })
        .await
        .unwrap();
    assert!(revoked(
        revocation.check(&query("a", Some("https://iss"))).await
    ));
    assert!(revoked(revocation.check(&query("a", None)).await));
    assert!(!revoked(
        revocation.check(&query("a", Some("https://other"))).await
    ));
    assert!(!revoked(
        revocation.check(&query("b", Some("https://iss"))).await
    ));
    // As verifiers call it: a pending check.
    let MaybeReady::Pending(check) = revocation.check(&query("a", Some("https://iss"))) else {
        panic!("a Redis check must pend");
    };
    assert!(revoked(check.await));
    // The entry dies with the token.
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{}rev:jti:a", scope.prefix))
        .query(&mut scope.raw())
        .unwrap();
    assert!(pttl > 55_000 && pttl <= 60_000, "pttl {pttl}");
    // An expired token is not stored at all.
    revocation
        .revoke_token(RevokedToken {
            issuer: None,
            token_id: "old",
            subject: "alice",
            expires_at: SystemTime::now() - Duration::from_secs(1),
        })
        .await
        .unwrap();
    assert!(!revoked(revocation.check(&query("old", None)).await));
}

#[tokio::test]
async fn revocation_subject_cutoff_refuses_older_tokens_only() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let revocation = RedisRevocation::new(&scope.redis);
    let other_instance = RedisRevocation::new(&scope.another_instance());
    let t0 = SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
    revocation
        .revoke_subject("alice", t0 + Duration::from_millis(500))
        .await
        .unwrap();
    let q = |sub, iat| RevocationQuery {
        issuer: None,
        subject: sub,
        token_id: Some("x"),
        issued_at: iat,
    };
    for r in [&revocation, &other_instance] {
        assert!(revoked(
            r.check(&q("alice", Some(t0 - Duration::from_secs(10))))
                .await
        ));
        assert!(revoked(r.check(&q("alice", Some(t0))).await));
        assert!(!revoked(
            r.check(&q("alice", Some(t0 + Duration::from_secs(1))))
                .await
        ));
        assert!(!revoked(
            r.check(&q("bob", Some(t0 - Duration::from_secs(10)))).await
        ));
        assert!(revoked(r.check(&q("alice", None)).await));
        assert!(!revoked(r.check(&q("bob", None)).await));
    }
    // A cut-off never moves back.
    revocation
        .revoke_subject("alice", t0 - Duration::from_secs(100))
        .await
        .unwrap();
    assert!(revoked(revocation.check(&q("alice", Some(t0))).await));
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{}rev:sub:alice", scope.prefix))
        .query(&mut scope.raw())
        .unwrap();
    assert!(pttl > 86_000_000 && pttl <= 86_701_000, "pttl {pttl}");
}

// ---------------------------------------------------------------- refresh tokens

fn hash(n: u8) -> TokenHash {
    TokenHash::of(&[n; 32])
}

#[tokio::test]
async fn refresh_rotation_follows_the_contract() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let clock = ManualClock::starting_now();
    let refresh = RefreshTokens::builder(RedisRefreshStore::new(&scope.redis))
        .clock(clock.clone())
        .idle_timeout(Duration::from_secs(600))
        .unwrap()
        .absolute_lifetime(Duration::from_secs(3600))
        .unwrap()
        .build();

    let first = refresh.issue("alice", "web").await.unwrap();
    assert_eq!(
        refresh
            .rotate(first.token.as_str(), "cli")
            .await
            .unwrap_err()
            .kind(),
        TokenErrorKind::ClientMismatch
    );
    clock.advance(Duration::from_secs(60));
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    assert_eq!(second.record.family, first.record.family);
    assert_eq!(second.record.subject, "alice");
    assert_eq!(second.record.issued_at, clock.now());
    assert_eq!(
        second.record.expires_at,
        clock.now() + Duration::from_secs(600)
    );
    assert_eq!(
        second.record.family_expires_at,
        first.record.family_expires_at
    );
    let found = refresh
        .store()
        .find(&second.record.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, second.record);

    // Reuse of the first token: the family dies, the live second token with it.
    assert_eq!(
        refresh
            .rotate(first.token.as_str(), "web")
            .await
            .unwrap_err()
            .kind(),
        TokenErrorKind::Reused
    );
    assert_eq!(
        refresh
            .rotate(second.token.as_str(), "web")
            .await
            .unwrap_err()
            .kind(),
        TokenErrorKind::Revoked
    );

    // Idle expiry and the absolute lifetime.
    let third = refresh.issue("alice", "web").await.unwrap();
    clock.advance(Duration::from_secs(601));
    assert_eq!(
        refresh
            .rotate(third.token.as_str(), "web")
            .await
            .unwrap_err()
            .kind(),
        TokenErrorKind::Expired
    );
    let mut token = refresh.issue("alice", "web").await.unwrap();
    for _ in 0..10 {
        clock.advance(Duration::from_secs(500));
        match refresh.rotate(token.token.as_str(), "web").await {
            Ok(next) => token = next,
            Err(e) => {
                assert_eq!(e.kind(), TokenErrorKind::Expired);
                assert!(clock.now() >= token.record.family_expires_at);
                break;
            }
        }
    }
    assert!(clock.now() >= token.record.family_expires_at);

    // Unknown tokens and logout.
    let unknown = RefreshStore::rotate(
        refresh.store(),
        Rotation {
            presented: &hash(1),
            successor: &hash(2),
            client_id: "web",
            now: clock.now(),
            idle_timeout: Duration::from_secs(60),
        },
    )
    .await
    .unwrap();
    assert_eq!(unknown, RotateOutcome::Unknown);
    let live = refresh.issue("bob", "web").await.unwrap();
    let revoked = refresh.revoke(live.token.as_str()).await.unwrap().unwrap();
    assert_eq!(revoked.family, live.record.family);
    assert!(
        !refresh
            .store()
            .revoke_family(&live.record.family)
            .await
            .unwrap()
    );
    assert_eq!(
        refresh
            .rotate(live.token.as_str(), "web")
            .await
            .unwrap_err()
            .kind(),
        TokenErrorKind::Revoked
    );
}

#[tokio::test]
async fn refresh_create_refuses_duplicates_and_entries_expire_with_the_family() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let store = RedisRefreshStore::new(&scope.redis);
    let now = SystemTime::now();
    let record = portcullis_tokens::RefreshRecord {
        hash: hash(9),
        family: "fam-1".into(),
        subject: "carol".into(),
        client_id: "web".into(),
        issued_at: now,
        expires_at: now + Duration::from_secs(30),
        family_expires_at: now + Duration::from_secs(120),
    };
    store.create(record.clone()).await.unwrap();
    let err = store.create(record.clone()).await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Store);
    for key in scope.keys() {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query(&mut scope.raw())
            .unwrap();
        assert!(pttl > 100_000 && pttl <= 121_000, "{key}: {pttl}");
    }
    assert_eq!(scope.keys().len(), 3);
}

#[tokio::test]
async fn refresh_revoke_subject_revokes_every_family_once() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let refresh = RefreshTokens::new(RedisRefreshStore::new(&scope.redis));
    let a = refresh.issue("dave", "web").await.unwrap();
    let b = refresh.issue("dave", "cli").await.unwrap();
    let other = refresh.issue("erin", "web").await.unwrap();
    let mut families = refresh.store().revoke_subject("dave").await.unwrap();
    families.sort();
    let mut expected = vec![a.record.family.clone(), b.record.family.clone()];
    expected.sort();
    assert_eq!(families, expected);
    assert!(
        refresh
            .store()
            .revoke_subject("dave")
            .await
            .unwrap()
            .is_empty()
    );
    for t in [&a, &b] {
        assert_eq!(
            refresh
                .rotate(t.token.as_str(), &t.record.client_id)
                .await
                .unwrap_err()
                .kind(),
            TokenErrorKind::Revoked
        );
    }
    refresh.rotate(other.token.as_str(), "web").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_race_has_exactly_one_winner() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    // Two instances, each with its own connection, racing on the same tokens.
    let instances = [
        RefreshTokens::new(RedisRefreshStore::new(&scope.redis)),
        RefreshTokens::new(RedisRefreshStore::new(&scope.another_instance())),
    ];
    for round in 0..40 {
        let issued = instances[0].issue("race", "web").await.unwrap();
        let token: Arc<str> = issued.token.as_str().into();
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let refresh = instances[i % 2].clone();
                let token = Arc::clone(&token);
                tokio::spawn(async move { refresh.rotate(&token, "web").await })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(next) => winners.push(next),
                Err(e) => assert!(
                    matches!(e.kind(), TokenErrorKind::Reused | TokenErrorKind::Revoked),
                    "round {round}: {e:?}"
                ),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        // The losers detected reuse: the winner's successor is dead too.
        assert_eq!(
            instances[1]
                .rotate(winners[0].token.as_str(), "web")
                .await
                .unwrap_err()
                .kind(),
            TokenErrorKind::Revoked
        );
    }
}

// ---------------------------------------------------------------- api keys

fn record(id: &str, owner: &str, created_secs: u64) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        owner: owner.into(),
        name: format!("key {id}"),
        scopes: vec!["read".into(), "write".into()],
        roles: vec!["service".into()],
        created_at: SystemTime::UNIX_EPOCH
            + Duration::from_micros(1_700_000_000_000_000 + created_secs * 1_000_000),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_to: None,
        digest: KeyDigest::from_bytes([created_secs as u8; 32]),
    }
}

#[tokio::test]
async fn api_key_store_contract() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let store = RedisApiKeyStore::new(&scope.redis);
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s);

    store.create(record("k2", "alice", 2)).await.unwrap();
    store.create(record("k1", "alice", 1)).await.unwrap();
    store.create(record("k3", "bob", 3)).await.unwrap();
    assert_eq!(
        store
            .create(record("k1", "mallory", 9))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::Conflict
    );
    assert_eq!(
        *store.find("k1").await.unwrap().unwrap(),
        record("k1", "alice", 1)
    );
    assert!(store.find("nope").await.unwrap().is_none());
    let listed: Vec<String> = store
        .list_by_owner("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, ["k1", "k2"]);

    // Last use only moves forward; unknown ids are ignored.
    store.record_last_use("k1", at(50)).await.unwrap();
    store.record_last_use("k1", at(40)).await.unwrap();
    store.record_last_use("nope", at(40)).await.unwrap();
    assert_eq!(
        store.find("k1").await.unwrap().unwrap().last_used_at,
        Some(at(50))
    );

    // Revocation is final and reported once.
    assert!(store.revoke("k2", at(60)).await.unwrap());
    assert!(!store.revoke("k2", at(70)).await.unwrap());
    assert_eq!(
        store.find("k2").await.unwrap().unwrap().revoked_at,
        Some(at(60))
    );
    assert_eq!(
        store.revoke("nope", at(60)).await.unwrap_err().kind(),
        StoreErrorKind::NotFound
    );

    // Rotation: refusals change nothing.
    let new = record("k4", "alice", 4);
    assert_eq!(
        store
            .rotate("k2", new.clone(), at(100), at(80))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::Inactive
    );
    assert_eq!(
        store
            .rotate("nope", new.clone(), at(100), at(80))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        store
            .rotate("k1", record("k3", "alice", 4), at(100), at(80))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::Conflict
    );
    assert!(store.find("k4").await.unwrap().is_none());
    store
        .rotate("k1", new.clone(), at(100), at(80))
        .await
        .unwrap();
    let old = store.find("k1").await.unwrap().unwrap();
    assert_eq!(old.rotated_to.as_deref(), Some("k4"));
    assert_eq!(old.expires_at, Some(at(100)));
    assert_eq!(*store.find("k4").await.unwrap().unwrap(), new);
    assert_eq!(
        store
            .rotate("k1", record("k5", "alice", 5), at(100), at(80))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::Conflict
    );
    // Expired keys cannot be rotated.
    assert_eq!(
        store
            .rotate("k1", record("k6", "alice", 6), at(200), at(100))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::Inactive
    );
}

#[tokio::test]
async fn api_keys_survive_a_reconnect_and_authenticate() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let format = KeyFormat::new("pk_test_").unwrap();
    let issued = {
        let keys = ApiKeys::new(RedisApiKeyStore::new(&scope.redis), format.clone());
        keys.issue(NewApiKey::owned_by("svc").name("exporter").scopes(["read"]))
            .await
            .unwrap()
    };
    // A new process: new connection, same Redis.
    let keys = ApiKeys::new(RedisApiKeyStore::new(&scope.another_instance()), format);
    let record = keys.get(issued.id()).await.unwrap().unwrap();
    let original = issued.record();
    assert_eq!(record.owner, original.owner);
    assert_eq!(record.scopes, original.scopes);
    assert_eq!(record.digest, original.digest);
    let drift = record.created_at.duration_since(original.created_at);
    assert!(
        original.created_at >= record.created_at && drift.is_err()
            || drift.unwrap() < Duration::from_micros(1)
    );
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route_layer(portcullis_core::AuthLayer::new(keys.authenticator()));
    let request = |key: &str| {
        Request::get("/")
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap()
    };
    let ok = app
        .clone()
        .oneshot(request(issued.key().expose_secret()))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    keys.revoke(issued.id()).await.unwrap();
    let refused = app
        .oneshot(request(issued.key().expose_secret()))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}
