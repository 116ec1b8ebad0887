//! Access-token revocation: denylisted `jti`s and per-subject cut-offs.

use super::*;
use portcullis_tokens::{
    AccessToken, Grant, SigningAlgorithm, SigningKey, TokenIssuer, TokenService,
};

fn revoked(result: Result<(), portcullis_core::AuthError>) -> bool {
    match result {
        Ok(()) => false,
        Err(e) => {
            assert_eq!(e.kind(), AuthErrorKind::InvalidToken, "{e:?}");
            true
        }
    }
}

/// A view on `redis`, synced.
async fn synced(redis: &Redis) -> RedisRevocation {
    let revocation = RedisRevocation::new(redis);
    revocation.synced(Duration::from_secs(5)).await.unwrap();
    revocation
}

/// When the entry `name` may go from Redis (Unix ms), if it is there.
fn kept_until(scope: &Scoped, name: &str) -> Option<i64> {
    redis::cmd("ZSCORE")
        .arg(format!("{}{{rev}}:x", scope.prefix))
        .arg(name)
        .query(&mut scope.raw())
        .unwrap()
}

fn unix_ms(t: SystemTime) -> i64 {
    i64::try_from(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test]
async fn revocation_denies_a_jti_until_its_exp() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let revocation = synced(&scope.redis).await;
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
    // As verifiers call it: answered at once, from memory.
    let MaybeReady::Ready(answer) = revocation.check(&query("a", Some("https://iss"))) else {
        panic!("a check must not wait for Redis");
    };
    assert!(revoked(answer));
    // The entry dies with the token.
    let left = kept_until(&scope, "j11:https://issa").unwrap() - unix_ms(SystemTime::now());
    assert!(left > 55_000 && left <= 60_000, "{left}");
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
    let revocation = synced(&scope.redis).await;
    let other_instance = synced(&scope.another_instance()).await;
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
    other_instance.synced(Duration::from_secs(1)).await.unwrap();
    wait_until_revoked(&other_instance, &q("alice", Some(t0))).await;
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
    let left = kept_until(&scope, "s-alice").unwrap() - unix_ms(SystemTime::now());
    assert!(left > 86_000_000 && left <= 86_701_000, "{left}");
}

/// Tokens of `https://auth.example` for `api`, refresh families in `redis`.
fn token_service(
    redis: &Redis,
    revocation: RedisRevocation,
) -> TokenService<RedisRefreshStore, RedisRevocation> {
    let issuer = TokenIssuer::builder(
        "https://auth.example",
        "api",
        SigningKey::generate(SigningAlgorithm::EdDsa).unwrap(),
    )
    .build();
    TokenService::new(
        issuer,
        RefreshTokens::new(RedisRefreshStore::new(redis)),
        revocation,
    )
}

/// The revocation question for alice's `access` token from `token_service`.
fn alices(access: &AccessToken) -> RevocationQuery<'_> {
    RevocationQuery {
        issuer: Some("https://auth.example"),
        subject: "alice",
        token_id: Some(access.jti()),
        issued_at: Some(access.issued_at()),
    }
}

/// `TokenService::logout_everywhere` on the Redis stores: the families end with the
/// stamp, the access tokens with the cut-off, and a login under way gets nothing.
#[tokio::test]
async fn logout_everywhere_ends_refresh_families_and_access_tokens() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let revocation = synced(&scope.redis).await;
    let service = token_service(&scope.redis, revocation.clone());
    let grant = Grant::new("alice", "web");
    let check = |access: &AccessToken| revocation.check(&alices(access));

    let stamp = service.session_stamp("alice").await.unwrap();
    let pair = service.login(&grant, stamp).await.unwrap();
    check(&pair.access).await.unwrap();
    service.logout_everywhere("alice").await.unwrap();

    assert!(revoked(check(&pair.access).await));
    let refresh = service
        .refresh(pair.refresh.token.as_str(), "web", |s| Grant::new(s, "web"))
        .await;
    assert_eq!(refused(refresh), TokenErrorKind::Revoked);
    // A login that read the stamp before the logout: nothing.
    assert_eq!(
        refused(service.login(&grant, stamp).await),
        TokenErrorKind::SessionsEnded
    );
    // A login after it works, access token included.
    let stamp = service.session_stamp("alice").await.unwrap();
    let fresh = service.login(&grant, stamp).await.unwrap();
    check(&fresh.access).await.unwrap();
    // The cut-off outlives every access token (a day) and then goes.
    let left = kept_until(&scope, "s-alice").unwrap() - unix_ms(SystemTime::now());
    assert!(left > 86_000_000 && left <= 86_701_000, "{left}");
}

#[tokio::test]
async fn revocation_is_keyed_by_issuer_and_subject() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let revocation = synced(&scope.redis).await;
    let now = SystemTime::now();
    let query = |iss, jti| RevocationQuery {
        issuer: Some(iss),
        subject: "alice",
        token_id: Some(jti),
        issued_at: Some(now - Duration::from_secs(5)),
    };
    // The same subject name at two issuers: cut off independently.
    revocation
        .revoke_issuer_subject("https://a", "alice", now)
        .await
        .unwrap();
    assert!(revoked(revocation.check(&query("https://a", "t")).await));
    assert!(!revoked(revocation.check(&query("https://b", "t")).await));
    revocation
        .revoke_issuer_subject("https://b", "alice", now)
        .await
        .unwrap();
    assert!(revoked(revocation.check(&query("https://b", "t")).await));

    // The same jti at two issuers: the second revocation does not replace the first.
    let scope = Scoped::new(&url);
    let revocation = synced(&scope.redis).await;
    for iss in ["https://a", "https://b"] {
        revocation
            .revoke_token(RevokedToken {
                issuer: Some(iss),
                token_id: "same",
                subject: "alice",
                expires_at: now + Duration::from_secs(60),
            })
            .await
            .unwrap();
    }
    assert!(revoked(revocation.check(&query("https://a", "same")).await));
    assert!(revoked(revocation.check(&query("https://b", "same")).await));
    assert!(!revoked(
        revocation.check(&query("https://c", "same")).await
    ));
}

/// Waits (at most the staleness bound and a margin) until `revocation` refuses `query`;
/// returns how long that took.
async fn wait_until_revoked(revocation: &RedisRevocation, query: &RevocationQuery<'_>) -> Duration {
    let start = Instant::now();
    loop {
        if let MaybeReady::Ready(Err(e)) = revocation.check(query) {
            assert_eq!(e.kind(), AuthErrorKind::InvalidToken, "{e:?}");
            return start.elapsed();
        }
        assert!(
            start.elapsed() < revocation.staleness_bound() + Duration::from_millis(500),
            "not refused within the bound"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Two instances, each with its own connection and view: a logout-all on one is
/// honoured by the other within the staleness bound (in practice, milliseconds).
#[tokio::test]
async fn logout_everywhere_on_one_instance_is_honoured_by_the_other_within_the_bound() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let (one, two) = (scope.redis.clone(), scope.another_instance());
    let one_view = synced(&one).await;
    let first = token_service(&one, one_view.clone());
    let second = synced(&two).await;

    let grant = Grant::new("alice", "web");
    let stamp = first.session_stamp("alice").await.unwrap();
    let pair = first.login(&grant, stamp).await.unwrap();
    let query = alices(&pair.access);
    assert!(matches!(second.check(&query), MaybeReady::Ready(Ok(()))));

    first.logout_everywhere("alice").await.unwrap();
    let took = wait_until_revoked(&second, &query).await;
    assert!(took < DEFAULT_MAX_STALENESS, "{took:?}");
    eprintln!("logout-all honoured by the other instance after {took:?}");

    // One token, too.
    let stamp = first.session_stamp("alice").await.unwrap();
    let pair = first.login(&grant, stamp).await.unwrap();
    let query = RevocationQuery {
        token_id: Some(pair.access.jti()),
        issued_at: Some(pair.access.issued_at()),
        ..query
    };
    assert!(matches!(second.check(&query), MaybeReady::Ready(Ok(()))));
    one_view
        .revoke_token(RevokedToken {
            issuer: Some("https://auth.example"),
            token_id: pair.access.jti(),
            subject: "alice",
            expires_at: SystemTime::now() + Duration::from_secs(600),
        })
        .await
        .unwrap();
    let took = wait_until_revoked(&second, &query).await;
    assert!(took < DEFAULT_MAX_STALENESS, "{took:?}");
}

/// Redis restarted without persistence: the views write back what it lost, so a
/// new instance (empty view) still refuses the revoked token.
#[tokio::test]
async fn a_redis_restart_without_persistence_loses_no_revocation() {
    let Some(_) = redis_url() else { return };
    let mut server = OwnServer::start();
    let redis = Redis::open(&server.url()).unwrap();
    let first = synced(&redis).await;
    let now = SystemTime::now();
    first.revoke_subject("alice", now).await.unwrap();
    first
        .revoke_token(RevokedToken {
            issuer: Some("https://iss"),
            token_id: "t1",
            subject: "bob",
            expires_at: now + Duration::from_secs(600),
        })
        .await
        .unwrap();
    let alice = RevocationQuery {
        issuer: None,
        subject: "alice",
        token_id: Some("t0"),
        issued_at: Some(now - Duration::from_secs(5)),
    };
    let bob = RevocationQuery {
        issuer: Some("https://iss"),
        subject: "bob",
        token_id: Some("t1"),
        issued_at: Some(now),
    };

    server.kill();
    server.restart();
    // A new instance after the restart: it reads what the first one wrote back.
    let later = RedisRevocation::new(&Redis::open(&server.url()).unwrap());
    let start = Instant::now();
    loop {
        later.synced(Duration::from_secs(5)).await.unwrap();
        if matches!(later.check(&alice), MaybeReady::Ready(Err(_)))
            && matches!(later.check(&bob), MaybeReady::Ready(Err(_)))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "revocations lost"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(revoked(first.check(&alice).into_future().await));
    let mut conn = common::raw(&server.url());
    let entries: i64 = redis::cmd("HLEN")
        .arg("portcullis:{rev}:e")
        .query(&mut conn)
        .unwrap();
    assert_eq!(entries, 2);
}

/// Redis down: the view answers for up to the staleness bound, then fails closed
/// (`503`), or keeps answering when set to fail open; it recovers by itself.
#[tokio::test]
async fn redis_down_past_the_staleness_bound_fails_closed() {
    let Some(_) = redis_url() else { return };
    let mut server = OwnServer::start();
    let redis = Redis::open(&server.url()).unwrap();
    let closed = synced(&redis).await;
    let open = RedisRevocation::new(&redis).failure_policy(FailurePolicy::Open);
    open.synced(Duration::from_secs(5)).await.unwrap();
    let now = SystemTime::now();
    closed.revoke_subject("alice", now).await.unwrap();
    wait_until_revoked(
        &open,
        &RevocationQuery {
            issuer: None,
            subject: "alice",
            token_id: None,
            issued_at: Some(now),
        },
    )
    .await;
    let query = |subject| RevocationQuery {
        issuer: None,
        subject,
        token_id: Some("t"),
        issued_at: Some(now - Duration::from_secs(5)),
    };

    server.kill();
    let down = Instant::now();
    // Within the bound: answers from the view, revoked or not.
    for view in [&closed, &open] {
        assert!(matches!(
            view.check(&query("bob")),
            MaybeReady::Ready(Ok(()))
        ));
        assert!(matches!(
            view.check(&query("alice")),
            MaybeReady::Ready(Err(_))
        ));
    }
    tokio::time::sleep(DEFAULT_MAX_STALENESS + Duration::from_millis(100)).await;
    assert!(down.elapsed() > DEFAULT_MAX_STALENESS);
    let MaybeReady::Ready(Err(e)) = closed.check(&query("bob")) else {
        panic!("a stale view must fail closed");
    };
    assert_eq!(e.kind(), AuthErrorKind::Unavailable);
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Failing open: the last view still answers.
    assert!(matches!(
        open.check(&query("bob")),
        MaybeReady::Ready(Ok(()))
    ));
    assert!(matches!(
        open.check(&query("alice")),
        MaybeReady::Ready(Err(_))
    ));

    server.restart();
    closed.synced(Duration::from_secs(5)).await.unwrap();
    assert!(matches!(
        closed.check(&query("bob")),
        MaybeReady::Ready(Ok(()))
    ));
    assert!(matches!(
        closed.check(&query("alice")),
        MaybeReady::Ready(Err(_))
    ));
}

/// On a cluster of our own, every node killed and restarted without persistence:
/// the view writes back what the cluster lost. Runs in the cluster pass of the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_restarted_without_persistence_loses_no_revocation() {
    let Some(url) = redis_url() else { return };
    if common::cluster_nodes(&url).is_none() {
        eprintln!("skipping: runs when REDIS_URL is a cluster");
        return;
    }
    let mut cluster = common::OwnCluster::start();
    let first = synced(&Redis::open(&cluster.url()).unwrap()).await;
    let now = SystemTime::now();
    first.revoke_subject("alice", now).await.unwrap();
    let alice = RevocationQuery {
        issuer: None,
        subject: "alice",
        token_id: Some("t0"),
        issued_at: Some(now - Duration::from_secs(5)),
    };

    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.restart(i);
    }
    cluster.wait_ok();
    let later = RedisRevocation::new(&Redis::open(&cluster.url()).unwrap());
    let start = Instant::now();
    loop {
        if later.synced(Duration::from_secs(1)).await.is_ok()
            && matches!(later.check(&alice), MaybeReady::Ready(Err(_)))
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "revocation lost");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With a durable store (`SqlRevocation` on SQLite), Redis and every instance
/// restarting together lose nothing; without one, the same restart loses it.
#[tokio::test]
async fn with_a_durable_store_redis_and_every_instance_restarting_lose_nothing() {
    use portcullis_sql::{SqlDatabase, SqlRevocation, sqlx::sqlite::SqlitePoolOptions};

    let Some(_) = redis_url() else { return };
    let file = std::env::temp_dir().join(format!("revocations-{:016x}.db", rand::random::<u64>()));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .unwrap();
    let db = SqlDatabase::sqlite(pool);
    db.migrate().await.unwrap();
    let instance = async |server: &OwnServer| {
        let durable = SqlRevocation::load(db.clone()).await.unwrap();
        let revocation =
            RedisRevocation::new(&Redis::open(&server.url()).unwrap()).durable_store(durable);
        revocation.synced(Duration::from_secs(5)).await.unwrap();
        revocation
    };
    let mut server = OwnServer::start();
    let now = SystemTime::now();
    let alice = RevocationQuery {
        issuer: None,
        subject: "alice",
        token_id: Some("t0"),
        issued_at: Some(now - Duration::from_secs(5)),
    };
    let first = instance(&server).await;
    first.revoke_subject("alice", now).await.unwrap();
    // Another instance, started later, refuses it too.
    let second = instance(&server).await;
    assert!(matches!(second.check(&alice), MaybeReady::Ready(Err(_))));
    drop((first, second));

    server.kill();
    server.restart();
    let without = synced(&Redis::open(&server.url()).unwrap()).await;
    assert!(matches!(without.check(&alice), MaybeReady::Ready(Ok(()))));
    let with = instance(&server).await;
    assert!(revoked(with.check(&alice).into_future().await));
    drop(db);
    let _ = std::fs::remove_file(file);
}
