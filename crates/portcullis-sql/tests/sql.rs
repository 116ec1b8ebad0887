//! The SQL stores against real PostgreSQL (`DATABASE_URL`, a fresh schema per test)
//! and SQLite (a file in a temporary directory). Every contract runs on both.

mod common;

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use common::{PgScope, SqliteScope, database_url};
use portcullis_apikey::{
    ApiKeyRecord, ApiKeyStore, ApiKeys, KeyDigest, KeyFormat, NewApiKey, StoreErrorKind,
};
use portcullis_sql::{SqlApiKeyStore, SqlDatabase, SqlRefreshStore};
use portcullis_tokens::{
    Clock, ErrorKind as TokenErrorKind, ManualClock, RefreshRecord, RefreshStore, RefreshTokens,
    RotateOutcome, Rotation, TokenHash,
};

/// Declares `$name` twice: `postgres::$name` and `sqlite::$name`, each running
/// `$body(db)` on a fresh database.
macro_rules! on_both {
    ($($name:ident => $body:ident;)+) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(url) = super::database_url() else { return };
                    let scope = super::PgScope::new(&url).await;
                    super::$body(super::Opener::Postgres(&scope)).await;
                }
            )+
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let scope = super::SqliteScope::new();
                    super::$body(super::Opener::Sqlite(&scope)).await;
                }
            )+
        }
    };
}

/// Opens (and re-opens) the test's database.
#[derive(Clone, Copy)]
enum Opener<'a> {
    Postgres(&'a PgScope),
    Sqlite(&'a SqliteScope),
}

impl Opener<'_> {
    async fn open(self) -> SqlDatabase {
        match self {
            Self::Postgres(scope) => scope.database().await,
            Self::Sqlite(scope) => scope.database().await,
        }
    }

    fn rounds(self) -> usize {
        match self {
            Self::Postgres(_) => 40,
            Self::Sqlite(_) => 25,
        }
    }
}

async fn close(db: SqlDatabase) {
    // Waits until every connection is returned and closed.
    db.close().await;
}

on_both! {
    migrations_are_idempotent_and_concurrent => migrations_are_idempotent_and_concurrent;
    refresh_rotation_follows_the_contract => refresh_rotation_follows_the_contract;
    refresh_race_has_exactly_one_winner => refresh_race_has_exactly_one_winner;
    refresh_subject_revocation_and_purge => refresh_subject_revocation_and_purge;
    data_survives_a_restart => data_survives_a_restart;
    api_key_store_contract => api_key_store_contract;
    concurrent_api_key_rotations_have_one_winner => concurrent_api_key_rotations_have_one_winner;
}

async fn migrations_are_idempotent_and_concurrent(opener: Opener<'_>) {
    // Several instances starting at once on an empty database.
    let dbs = futures_join(opener).await;
    for db in &dbs {
        db.migrate().await.unwrap();
    }
    let store = SqlRefreshStore::new(dbs[0].clone());
    assert!(store.find(&TokenHash::of(b"x")).await.unwrap().is_none());
    for db in dbs {
        close(db).await;
    }
}

async fn futures_join(opener: Opener<'_>) -> Vec<SqlDatabase> {
    let (a, b, c) = tokio::join!(opener.open(), opener.open(), opener.open());
    vec![a, b, c]
}

fn refresh_tokens(db: SqlDatabase, clock: &ManualClock) -> RefreshTokens<SqlRefreshStore> {
    RefreshTokens::builder(SqlRefreshStore::new(db))
        .clock(clock.clone())
        .idle_timeout(Duration::from_secs(600))
        .unwrap()
        .absolute_lifetime(Duration::from_secs(3600))
        .unwrap()
        .build()
}

async fn refresh_rotation_follows_the_contract(opener: Opener<'_>) {
    let db = opener.open().await;
    let clock = ManualClock::starting_now();
    let refresh = refresh_tokens(db.clone(), &clock);

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
    assert_eq!(second.record.issued_at, clock.now());
    assert_eq!(
        second.record.expires_at,
        clock.now() + Duration::from_secs(600)
    );
    assert_eq!(
        second.record.family_expires_at,
        first.record.family_expires_at
    );
    assert_eq!(
        refresh
            .store()
            .find(&second.record.hash)
            .await
            .unwrap()
            .unwrap(),
        second.record
    );

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
    // A used token stays reuse even past its expiry; the family stays revoked.
    clock.advance(Duration::from_secs(700));
    assert_eq!(
        refresh
            .rotate(first.token.as_str(), "web")
            .await
            .unwrap_err()
            .kind(),
        TokenErrorKind::Revoked
    );

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
    let mut expired = false;
    for _ in 0..10 {
        clock.advance(Duration::from_secs(500));
        match refresh.rotate(token.token.as_str(), "web").await {
            Ok(next) => token = next,
            Err(e) => {
                assert_eq!(e.kind(), TokenErrorKind::Expired);
                assert!(clock.now() >= token.record.family_expires_at);
                expired = true;
                break;
            }
        }
    }
    assert!(expired, "the absolute lifetime must end the family");
    // The last successor's idle expiry was capped at the family's end.
    assert_eq!(
        token.record.expires_at.min(token.record.family_expires_at),
        token.record.expires_at
    );

    let unknown = RefreshStore::rotate(
        refresh.store(),
        Rotation {
            presented: &TokenHash::of(b"nobody"),
            successor: &TokenHash::of(b"next"),
            client_id: "web",
            now: clock.now(),
            idle_timeout: Duration::from_secs(60),
        },
    )
    .await
    .unwrap();
    assert_eq!(unknown, RotateOutcome::Unknown);

    let live = refresh.issue("bob", "web").await.unwrap();
    let dup = RefreshRecord {
        hash: live.record.hash,
        family: "another".into(),
        ..live.record.clone()
    };
    assert_eq!(
        refresh.store().create(dup).await.unwrap_err().kind(),
        TokenErrorKind::Store
    );
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
    close(db).await;
}

async fn refresh_race_has_exactly_one_winner(opener: Opener<'_>) {
    // Two instances (two pools) racing on the same tokens.
    let (a, b) = tokio::join!(opener.open(), opener.open());
    let instances = [
        RefreshTokens::new(SqlRefreshStore::new(a.clone())),
        RefreshTokens::new(SqlRefreshStore::new(b.clone())),
    ];
    for round in 0..opener.rounds() {
        let issued = instances[0].issue("race", "web").await.unwrap();
        let token: Arc<str> = issued.token.as_str().into();
        let tasks: Vec<_> = (0..12)
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
        assert_eq!(
            instances[1]
                .rotate(winners[0].token.as_str(), "web")
                .await
                .unwrap_err()
                .kind(),
            TokenErrorKind::Revoked
        );
    }
    close(a).await;
    close(b).await;
}

async fn refresh_subject_revocation_and_purge(opener: Opener<'_>) {
    let db = opener.open().await;
    let clock = ManualClock::starting_now();
    let refresh = refresh_tokens(db.clone(), &clock);
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
    assert_eq!(
        refresh
            .rotate(a.token.as_str(), "web")
            .await
            .unwrap_err()
            .kind(),
        TokenErrorKind::Revoked
    );
    let next = refresh.rotate(other.token.as_str(), "web").await.unwrap();

    // Purging: nothing before the families end, all three after.
    let store = refresh.store();
    assert_eq!(store.purge_expired(clock.now()).await.unwrap(), 0);
    assert_eq!(
        store
            .purge_expired(clock.now() + Duration::from_secs(3601))
            .await
            .unwrap(),
        3
    );
    assert!(store.find(&next.record.hash).await.unwrap().is_none());
    assert!(store.find(&other.record.hash).await.unwrap().is_none());
    close(db).await;
}

async fn data_survives_a_restart(opener: Opener<'_>) {
    let clock = ManualClock::starting_now();
    let format = KeyFormat::new("pk_test_").unwrap();
    let (first, second, issued_key) = {
        let db = opener.open().await;
        let refresh = refresh_tokens(db.clone(), &clock);
        let first = refresh.issue("alice", "web").await.unwrap();
        let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
        let keys = ApiKeys::new(SqlApiKeyStore::new(db.clone()), format.clone());
        let issued = keys
            .issue(NewApiKey::owned_by("svc").name("exporter").scopes(["read"]))
            .await
            .unwrap();
        close(db).await;
        (first, second, issued)
    };

    // A new process: a new pool on the same database.
    let db = opener.open().await;
    let refresh = refresh_tokens(db.clone(), &clock);
    assert_eq!(
        refresh
            .store()
            .find(&second.record.hash)
            .await
            .unwrap()
            .unwrap(),
        second.record
    );
    // The used token is still known as used: presenting it is reuse.
    assert_eq!(
        refresh
            .rotate(first.token.as_str(), "web")
            .await
            .unwrap_err()
            .kind(),
        TokenErrorKind::Reused
    );

    let keys = ApiKeys::new(SqlApiKeyStore::new(db.clone()), format);
    let record = keys.get(issued_key.id()).await.unwrap().unwrap();
    let original = issued_key.record();
    assert_eq!(record.owner, original.owner);
    assert_eq!(record.scopes, original.scopes);
    assert_eq!(record.digest, original.digest);
    let listed = keys.list("svc").await.unwrap();
    assert_eq!(listed.len(), 1);
    // And the key still authenticates.
    use axum::{Router, body::Body, routing::get};
    use tower::ServiceExt;
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route_layer(portcullis_core::AuthLayer::new(keys.authenticator()));
    let request = http::Request::get("/")
        .header("x-api-key", issued_key.key().expose_secret())
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.oneshot(request).await.unwrap().status(),
        http::StatusCode::OK
    );
    close(db).await;
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
        digest: KeyDigest::from_bytes([created as u8; 32]),
    }
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
    assert!(
        store.find("k4").await.unwrap().is_none(),
        "a refused rotation changes nothing"
    );
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
    assert_eq!(
        store
            .rotate("k1", record("k6", "alice", 6), at(200), at(100))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::Inactive
    );
    // A grace expiry later than the key's own never extends it.
    let mut short = record("k7", "carol", 7);
    short.expires_at = Some(at(90));
    store.create(short).await.unwrap();
    store
        .rotate("k7", record("k8", "carol", 8), at(500), at(80))
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
                    store.rotate(&old, new, at(1000), at(10)).await
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => ok += 1,
                Err(e) => assert_eq!(e.kind(), StoreErrorKind::Conflict, "round {round}"),
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

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let scope = SqliteScope::new();
    let db = scope.database().await;
    portcullis_sql::sqlx::query("UPDATE portcullis_schema SET version = 99")
        .execute(&scope.pool().await)
        .await
        .unwrap();
    let err = db.migrate().await.unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}
