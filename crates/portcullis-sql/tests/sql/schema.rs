//! Migrations (and an upgrade from version 1), a restart on the same database, and a
//! schema newer than the code.

use super::*;

on_both! {
    migrations_are_idempotent_and_concurrent => migrations_are_idempotent_and_concurrent;
    data_survives_a_restart => data_survives_a_restart;
    a_version_1_database_upgrades_and_keeps_its_rows => a_version_1_database_upgrades_and_keeps_its_rows;
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

async fn data_survives_a_restart(opener: Opener<'_>) {
    let clock = ManualClock::starting_now();
    let format = KeyFormat::new("pk_test_").unwrap();
    let (first, second, issued_key) = {
        let db = opener.open().await;
        let refresh = refresh_tokens(db.clone(), &clock);
        let first = login(&refresh, "alice", "web").await;
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
    assert_eq!(stored(&refresh, &second.record.hash).await, second.record);
    // Within the reuse interval, the used token still opens its successor.
    let again = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    assert_eq!(again.token.as_str(), second.token.as_str());
    // Past it, the used token is still known as used: presenting it is reuse.
    clock.advance(REUSE);
    assert_eq!(
        refused(refresh.rotate(first.token.as_str(), "web").await),
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

/// The schema as version 1 of this crate created it, with one row of each kind.
const VERSION_1: &str = "\
    CREATE TABLE portcullis_schema (component TEXT PRIMARY KEY, version BIGINT NOT NULL); \
    INSERT INTO portcullis_schema (component, version) VALUES ('portcullis', 1); \
    CREATE TABLE portcullis_refresh_families (family TEXT PRIMARY KEY, subject TEXT NOT NULL, \
        client_id TEXT NOT NULL, expires_at BIGINT NOT NULL, revoked BIGINT NOT NULL DEFAULT 0); \
    CREATE INDEX portcullis_refresh_families_subject ON portcullis_refresh_families (subject); \
    CREATE TABLE portcullis_refresh_tokens (hash TEXT PRIMARY KEY, family TEXT NOT NULL, \
        issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used BIGINT NOT NULL DEFAULT 0); \
    CREATE INDEX portcullis_refresh_tokens_family ON portcullis_refresh_tokens (family); \
    CREATE TABLE portcullis_api_keys (id TEXT PRIMARY KEY, owner TEXT NOT NULL, \
        name TEXT NOT NULL, scopes TEXT NOT NULL, roles TEXT NOT NULL, \
        created_at BIGINT NOT NULL, expires_at BIGINT, revoked_at BIGINT, \
        last_used_at BIGINT, rotated_to TEXT, digest TEXT NOT NULL); \
    CREATE INDEX portcullis_api_keys_owner ON portcullis_api_keys (owner, created_at);";

async fn a_version_1_database_upgrades_and_keeps_its_rows(opener: Opener<'_>) {
    let clock = ManualClock::starting_now();
    let (used, live) = (TokenHash::of(b"used"), TokenHash::of(b"live"));
    let far = portcullis_core::internal::unix_micros(clock.now() + Duration::from_secs(3600));
    opener
        .execute(format!(
            "{VERSION_1} \
             INSERT INTO portcullis_refresh_families VALUES ('f1', 'alice', 'web', {far}, 0); \
             INSERT INTO portcullis_refresh_tokens VALUES ('{}', 'f1', 0, {far}, 1); \
             INSERT INTO portcullis_refresh_tokens VALUES ('{}', 'f1', 0, {far}, 0); \
             INSERT INTO portcullis_api_keys VALUES ('k1', 'svc', 'old key', '[]', '[]', \
                 1000000, NULL, NULL, NULL, NULL, '{}')",
            hex(&used.0),
            hex(&live.0),
            hex(&[9; 32]),
        ))
        .await;
    let db = opener.open().await;

    let key = SqlApiKeyStore::new(db.clone())
        .find("k1")
        .await
        .unwrap()
        .unwrap();
    assert!(
        key.session_bound,
        "keys from before the column end with sessions"
    );
    assert_eq!(key.name, "old key");

    // A token used before the upgrade has no successor to hand back: presenting it,
    // even at once, is reuse.
    let store = SqlRefreshStore::new(db.clone());
    assert_eq!(store.stamp("alice").await.unwrap().0, 0);
    let (next, sealed) = (TokenHash::of(b"next"), SealedToken([1; 32]));
    let rotate = |presented| Rotation {
        presented,
        successor: &next,
        sealed_successor: &sealed,
        client_id: "web",
        now: clock.now(),
        idle_timeout: Duration::from_secs(600),
        reuse_interval: REUSE,
    };
    assert_eq!(
        store.rotate(rotate(&used)).await.unwrap(),
        RotateOutcome::Reused {
            subject: "alice".into(),
            family: "f1".into()
        }
    );
    assert_eq!(
        store.rotate(rotate(&live)).await.unwrap(),
        RotateOutcome::FamilyRevoked
    );
    close(db).await;
}
