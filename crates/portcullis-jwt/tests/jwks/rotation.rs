//! Keys over time: rotation, outages, stale keys and the background refresh.

use super::*;

// ---------------------------------------------------------------- rotation

#[tokio::test]
async fn rotation_new_kid_via_refetch_old_kid_until_it_leaves() {
    let (k1, k2) = (Signer::new("k1"), Signer::new("k2"));
    let p = Provider::start("", jwks(&[&k1])).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let events = Events::new(move |e: &AuthEvent<'_>| {
        if let AuthEvent::KeysRotated { keys, .. } = e {
            log.lock().unwrap().push(*keys);
        }
    });
    let keys = p.builder().events(events).start().await.unwrap();
    let jwt = authenticator([keys.clone()]);
    let old = k1.token(&p.issuer);
    assert!(check(&jwt, &old).await.is_ok());
    assert_eq!(jwt.cached_tokens(), 1);
    let generation = jwt.key_generation();

    // The provider publishes k2; a token signed with it waits for one refetch.
    p.set(|s| s.jwks = jwks(&[&k1, &k2]));
    let new = k2.token(&p.issuer);
    assert!(is_pending(&jwt, &new));
    assert_eq!(check(&jwt, &new).await.unwrap().unwrap().subject(), "alice");
    assert_eq!(p.hits(), 2);
    // Adding a key flushes nothing: the old token is still a cache hit.
    assert_eq!(jwt.key_generation(), generation);
    assert_eq!(jwt.cached_tokens(), 2);
    assert!(check(&jwt, &old).await.is_ok());

    // An identical refresh changes nothing either.
    keys.refresh().await.unwrap();
    assert_eq!(jwt.key_generation(), generation);

    // k1 leaves the set: its tokens die, cached or not.
    p.set(|s| s.jwks = jwks(&[&k2]));
    keys.refresh().await.unwrap();
    assert_ne!(jwt.key_generation(), generation);
    assert_eq!(reason(&jwt, &old).await, "unknown_kid");
    assert!(check(&jwt, &new).await.is_ok());
    assert_eq!(*seen.lock().unwrap(), [1, 2, 1], "one event per change");
}

#[tokio::test]
async fn a_changed_key_under_the_same_kid_flushes_the_cache() {
    let k1 = Signer::new("k1");
    let p = Provider::start("", jwks(&[&k1])).await;
    let keys = p.builder().start().await.unwrap();
    let jwt = authenticator([keys.clone()]);
    let token = k1.token(&p.issuer);
    check(&jwt, &token).await.unwrap();
    let impostor = Signer::new("k1");
    p.set(|s| s.jwks = jwks(&[&impostor]));
    keys.refresh().await.unwrap();
    assert_eq!(reason(&jwt, &token).await, "bad_signature");
}

// ---------------------------------------------------------------- outages

#[tokio::test]
async fn provider_down_at_start_typed_error_then_lazy_503_until_it_answers() {
    let k1 = Signer::new("k1");
    // A port with nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let issuer = format!("http://{addr}");

    let (logs, guard) = Logs::capture();
    let e = RemoteKeys::discover(issuer.clone()).await.unwrap_err();
    assert_eq!(e.kind(), JwksErrorKind::Unreachable, "{e}");
    assert!(e.to_string().contains("unreachable"), "{e}");
    // One short sentence; the causes (a refused connection) come through `source`,
    // and `Debug` (what `main` prints for `?`) lists them flat.
    assert_eq!(
        e.to_string(),
        format!("{issuer}/.well-known/openid-configuration: the provider is unreachable")
    );
    assert!(std::error::Error::source(&e).is_some());
    let debug = format!("{e:?}");
    assert!(
        debug.starts_with("JwksError { kind: Unreachable, message: "),
        "{debug}"
    );
    assert_eq!(debug.matches('{').count(), 1, "no nested dump: {debug}");
    // The caller gets the error; the log does not promise 503s from keys that
    // were never started.
    tokio::task::yield_now().await;
    assert!(!logs.text().contains("503"), "{}", logs.text());
    assert!(!logs.text().contains("WARN"), "{}", logs.text());

    let keys = RemoteKeys::builder(issuer.clone())
        .retry_interval(Duration::from_secs(3600))
        .start_lazy()
        .unwrap();
    let jwt = authenticator([keys.clone()]);
    let token = k1.token(&issuer);
    assert_eq!(status(&jwt, &token).await, StatusCode::SERVICE_UNAVAILABLE);
    // Started lazily, the keys stay: the warning says what tokens get, as they do.
    eventually("the lazy start's warning", || {
        logs.text().contains("tokens of this issuer get 503")
    })
    .await;
    let warning = logs.text();
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("the provider is unreachable: "),
        "the log carries the causes: {warning}"
    );
    drop(guard);
    let e = check(&jwt, &token).await.unwrap_err();
    assert_eq!(
        (e.status(), e.reason()),
        (StatusCode::SERVICE_UNAVAILABLE, "jwks_unavailable")
    );
    assert!(keys.key_set().is_none());

    // The provider comes up on that port; after the cooldown a token fetches.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let p = Provider::serve(listener, "", jwks(&[&k1]));
    skip(Duration::from_secs(31)).await;
    assert_eq!(status(&jwt, &token).await, StatusCode::OK);
    assert_eq!(p.hits(), 1);
}

/// A provider serving `k1` for 60 s at a time, keys from it that may serve stale for
/// 600 s after a failed refresh (and retry only after an hour), and an authenticator
/// on those keys.
async fn stale_tolerant(k1: &Signer) -> (Arc<Provider>, RemoteKeys, JwtAuthenticator) {
    let p = Provider::start("", jwks(&[k1])).await;
    p.set(|s| s.cache_control = Some("max-age=60"));
    let keys = p
        .builder()
        .stale_if_error(Duration::from_secs(600))
        .retry_interval(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let jwt = authenticator([keys.clone()]);
    (p, keys, jwt)
}

#[tokio::test]
async fn provider_down_mid_run_stale_keys_serve_then_recovery() {
    let (k1, k2) = (Signer::new("k1"), Signer::new("k2"));
    let (p, keys, jwt) = stale_tolerant(&k1).await;
    let token = k1.token(&p.issuer);

    p.set(|s| s.mode = Mode::Status(500));
    let e = keys.refresh().await.unwrap_err();
    assert_eq!((e.kind(), e.status()), (JwksErrorKind::Status, Some(500)));
    assert_eq!(
        status(&jwt, &token).await,
        StatusCode::OK,
        "stale keys still serve"
    );

    // Back up: the next refresh recovers, and rotation works again.
    p.set(|s| {
        s.mode = Mode::Normal;
        s.jwks = jwks(&[&k1, &k2]);
    });
    keys.refresh().await.unwrap();
    assert_eq!(status(&jwt, &k2.token(&p.issuer)).await, StatusCode::OK);
}

#[tokio::test]
async fn stale_keys_stop_serving_past_the_bound() {
    let k1 = Signer::new("k1");
    let (p, keys, jwt) = stale_tolerant(&k1).await;
    let token = k1.token(&p.issuer);
    check(&jwt, &token).await.unwrap();

    p.set(|s| s.mode = Mode::Status(503));
    // Expired (60 s) but within the bound: still served.
    skip(Duration::from_secs(120)).await;
    assert!(keys.refresh().await.is_err());
    assert!(keys.key_set().is_some());
    assert!(check(&jwt, &token).await.is_ok());
    // Past expiry + 600 s: no longer trusted, even from the cache.
    skip(Duration::from_secs(600)).await;
    assert!(keys.refresh().await.is_err());
    assert!(keys.key_set().is_none());
    assert_eq!(status(&jwt, &token).await, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn background_refresh_runs_before_expiry_and_stops_with_the_last_handle() {
    let k1 = Signer::new("k1");
    let p = Provider::start("", jwks(&[&k1])).await;
    p.set(|s| s.cache_control = Some("public, max-age=120"));
    let keys = p.builder().start().await.unwrap();
    assert_eq!(p.hits(), 1);
    // Refreshes at three quarters of the 120 s lifetime.
    skip(Duration::from_secs(89)).await;
    tokio::task::yield_now().await;
    assert_eq!(p.hits(), 1);
    skip(Duration::from_secs(2)).await;
    eventually("the background refresh", || p.hits() == 2).await;

    let jwt = authenticator([keys.clone()]);
    drop(keys);
    drop(jwt);
    skip(Duration::from_secs(3600)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(p.hits(), 2, "no refresh once every handle is gone");
}

#[tokio::test]
async fn max_age_is_clamped_to_the_configured_bounds() {
    let p = Provider::start("", jwks(&[&Signer::new("k1")])).await;
    p.set(|s| s.cache_control = Some("max-age=1"));
    let _keys = p.builder().start().await.unwrap();
    // max-age=1 is raised to the 60 s minimum: no refresh at 40 s, one by 46 s.
    skip(Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(p.hits(), 1);
    skip(Duration::from_secs(6)).await;
    eventually("the refresh at 45 s", || p.hits() == 2).await;
}
