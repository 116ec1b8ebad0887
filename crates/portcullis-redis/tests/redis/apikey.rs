//! API keys: the store contract, and keys that survive a reconnect.

use super::*;

fn record(id: &str, owner: &str, created_secs: u64) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        owner: owner.into(),
        name: format!("key {id}"),
        scopes: vec!["read".into(), "write".into()],
        roles: vec!["service".into()],
        created_at: at(created_secs),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_to: None,
        session_bound: true,
        digest: KeyDigest::from_bytes([created_secs as u8; 32]),
    }
}

/// `secs` after a fixed instant of this test run: records retire a retention after
/// they stop working, so their times must be recent.
fn at(secs: u64) -> SystemTime {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    });
    SystemTime::UNIX_EPOCH + Duration::from_secs(base + secs)
}

/// Asks `store` to rotate `old_id` to `replacement` at `at(now)`, the grace period
/// ending at `at(grace_end)`; a refusal comes back as its kind.
async fn rotate(
    store: &RedisApiKeyStore,
    old_id: &str,
    replacement: ApiKeyRecord,
    grace_end: u64,
    now: u64,
) -> Result<(), StoreErrorKind> {
    store
        .rotate(KeyRotation {
            old_id,
            replacement,
            old_expires_at: at(grace_end),
            now: at(now),
        })
        .await
        .map_err(|e| e.kind())
}

#[tokio::test]
async fn api_key_store_contract() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let store = RedisApiKeyStore::new(&scope.redis);

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
    // A revoked record goes a retention (90 days) after the revocation; a key that
    // can still work stays.
    let ninety_days = 90 * 86_400_000;
    let ttl = pttl(&scope, &format!("{}{{ak}}:k:k2", scope.prefix));
    assert!(ttl > ninety_days && ttl <= ninety_days + 61_000, "{ttl}");
    assert_eq!(pttl(&scope, &format!("{}{{ak}}:k:k1", scope.prefix)), -1);
    assert_eq!(
        store.revoke("nope", at(60)).await.unwrap_err().kind(),
        StoreErrorKind::NotFound
    );

    // Rotation: refusals change nothing.
    let new = record("k4", "alice", 4);
    assert_eq!(
        rotate(&store, "k2", new.clone(), 100, 80).await,
        Err(StoreErrorKind::Inactive)
    );
    assert_eq!(
        rotate(&store, "nope", new.clone(), 100, 80).await,
        Err(StoreErrorKind::NotFound)
    );
    assert_eq!(
        rotate(&store, "k1", record("k3", "alice", 4), 100, 80).await,
        Err(StoreErrorKind::Conflict)
    );
    assert!(store.find("k4").await.unwrap().is_none());
    rotate(&store, "k1", new.clone(), 100, 80).await.unwrap();
    let old = store.find("k1").await.unwrap().unwrap();
    assert_eq!(old.rotated_to.as_deref(), Some("k4"));
    assert_eq!(old.expires_at, Some(at(100)));
    let ttl = pttl(&scope, &format!("{}{{ak}}:k:k1", scope.prefix));
    assert!(ttl > ninety_days && ttl <= ninety_days + 101_000, "{ttl}");
    assert_eq!(*store.find("k4").await.unwrap().unwrap(), new);
    assert_eq!(
        rotate(&store, "k1", record("k5", "alice", 5), 100, 80).await,
        Err(StoreErrorKind::Conflict)
    );
    // Expired keys cannot be rotated.
    assert_eq!(
        rotate(&store, "k1", record("k6", "alice", 6), 200, 100).await,
        Err(StoreErrorKind::Inactive)
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

#[tokio::test]
async fn api_keys_keep_whether_they_end_with_the_sessions() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let store = RedisApiKeyStore::new(&scope.redis);
    let bound = record("kb", "alice", 1);
    let lasting = ApiKeyRecord {
        session_bound: false,
        ..record("kl", "alice", 2)
    };
    store.create(bound.clone()).await.unwrap();
    store.create(lasting.clone()).await.unwrap();
    assert!(store.find("kb").await.unwrap().unwrap().session_bound);
    assert!(!store.find("kl").await.unwrap().unwrap().session_bound);
    let listed: Vec<bool> = store
        .list_by_owner("alice")
        .await
        .unwrap()
        .iter()
        .map(|r| r.session_bound)
        .collect();
    assert_eq!(listed, [true, false]);

    // A record written before the field existed ends with the sessions.
    for id in ["kb", "kl"] {
        let _: () = redis::cmd("HDEL")
            .arg(format!("{}{{ak}}:k:{id}", scope.prefix))
            .arg("sb")
            .query(&mut scope.raw())
            .unwrap();
    }
    assert!(store.find("kl").await.unwrap().unwrap().session_bound);

    // A rotation hands the replacement its own setting.
    let replacement = ApiKeyRecord {
        session_bound: false,
        ..record("kr", "alice", 3)
    };
    rotate(&store, "kb", replacement, 100, 0).await.unwrap();
    assert!(!store.find("kr").await.unwrap().unwrap().session_bound);
}
