//! Migrations, a restart on the same database, and a schema newer than the code.

use super::*;

on_both! {
    migrations_are_idempotent_and_concurrent => migrations_are_idempotent_and_concurrent;
    data_survives_a_restart => data_survives_a_restart;
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
    assert_eq!(stored(&refresh, &second.record.hash).await, second.record);
    // The used token is still known as used: presenting it is reuse.
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
