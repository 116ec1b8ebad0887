//! Outages: a Redis server killed mid-run, and one that never answers.

use super::*;

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
    let refresh = RefreshTokens::new(RedisRefreshStore::new(&redis));
    let resets = portcullis_password::ResetTokens::new(RedisResetStore::new(&redis));
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
    revocation.synced(Duration::from_secs(5)).await.unwrap();
    revocation.check(&query).await.unwrap();
    assert!(keys.find("nothing").await.unwrap().is_none());
    let session = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    let reset = resets.issue("alice", "password_reset").await.unwrap();

    server.kill();

    let started = Instant::now();
    let refused = closed.clone().oneshot(from([192, 0, 2, 7])).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(status(&open, [192, 0, 2, 7]).await, StatusCode::OK);
    // The revocation view answers from memory up to its staleness bound (see
    // `redis_down_past_the_staleness_bound_fails_closed`).
    revocation.check(&query).await.unwrap();
    let error = keys.find("nothing").await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Backend);
    // Sessions and one-time tokens fail closed: no stamp, no token, no redemption.
    assert_eq!(
        super::refused(refresh.stamp("alice").await),
        TokenErrorKind::Store
    );
    let rotated = refresh.rotate(session.token.as_str(), "web").await;
    assert_eq!(super::refused(rotated), TokenErrorKind::Store);
    assert_eq!(
        super::refused(refresh.end_sessions("alice").await),
        TokenErrorKind::Store
    );
    let redeemed = resets.redeem(reset.as_str(), "password_reset").await;
    assert_eq!(
        redeemed.unwrap_err().kind(),
        portcullis_password::ResetErrorKind::Store
    );
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
