//! Rate limiting: the Redis backend against the in-process one, key expiry,
//! script reloads, the layer's answers, and one limit shared by two instances.

use super::*;

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
