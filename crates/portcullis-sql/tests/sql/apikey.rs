//! The API-key store: its contract, and concurrent rotations.

use super::*;

on_both! {
    api_key_store_contract => api_key_store_contract;
    concurrent_api_key_rotations_have_one_winner => concurrent_api_key_rotations_have_one_winner;
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn record(id: &str, owner: &str, created: u64) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        owner: owner.into(),
        name: format!("key {id}"),
        scopes: vec!["read".into(), "write".into()],
        roles: vec!["service".into()],
        created_at: at(created) + Duration::from_micros(123),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_to: None,
        session_bound: created.is_multiple_of(2),
        digest: KeyDigest::from_bytes([created as u8; 32]),
    }
}

/// Asks `store` to rotate `old_id` to `replacement` at `at(now)`, the grace period
/// ending at `at(grace_end)`; a refusal comes back as its kind.
async fn rotate(
    store: &SqlApiKeyStore,
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

async fn api_key_store_contract(opener: Opener<'_>) {
    let db = opener.open().await;
    let store = SqlApiKeyStore::new(db.clone());

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
    assert!(store.list_by_owner("nobody").await.unwrap().is_empty());

    store.record_last_use("k1", at(50)).await.unwrap();
    store.record_last_use("k1", at(40)).await.unwrap();
    store.record_last_use("nope", at(40)).await.unwrap();
    assert_eq!(
        store.find("k1").await.unwrap().unwrap().last_used_at,
        Some(at(50))
    );

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
    assert!(
        store.find("k4").await.unwrap().is_none(),
        "a refused rotation changes nothing"
    );
    rotate(&store, "k1", new.clone(), 100, 80).await.unwrap();
    let old = store.find("k1").await.unwrap().unwrap();
    assert_eq!(old.rotated_to.as_deref(), Some("k4"));
    assert_eq!(old.expires_at, Some(at(100)));
    assert_eq!(*store.find("k4").await.unwrap().unwrap(), new);
    assert_eq!(
        rotate(&store, "k1", record("k5", "alice", 5), 100, 80).await,
        Err(StoreErrorKind::Conflict)
    );
    assert_eq!(
        rotate(&store, "k1", record("k6", "alice", 6), 200, 100).await,
        Err(StoreErrorKind::Inactive)
    );
    // A grace expiry later than the key's own never extends it.
    let mut short = record("k7", "carol", 7);
    short.expires_at = Some(at(90));
    store.create(short).await.unwrap();
    rotate(&store, "k7", record("k8", "carol", 8), 500, 80)
        .await
        .unwrap();
    assert_eq!(
        store.find("k7").await.unwrap().unwrap().expires_at,
        Some(at(90))
    );
    close(db).await;
}

async fn concurrent_api_key_rotations_have_one_winner(opener: Opener<'_>) {
    let db = opener.open().await;
    let store = SqlApiKeyStore::new(db.clone());
    for round in 0..10u64 {
        let old = format!("old{round}");
        store.create(record(&old, "dan", round)).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let old = old.clone();
                tokio::spawn(async move {
                    let new = record(&format!("new{round}-{i}"), "dan", 100 + i);
                    rotate(&store, &old, new, 1000, 10).await
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => ok += 1,
                Err(kind) => assert_eq!(kind, StoreErrorKind::Conflict, "round {round}"),
            }
        }
        assert_eq!(ok, 1, "round {round}");
        // Losers left nothing behind: one old key, one replacement.
        assert_eq!(
            store.list_by_owner("dan").await.unwrap().len(),
            2 * (round as usize + 1)
        );
    }
    close(db).await;
}
