//! Access-token revocations: durable across restarts, shared through `sync`.

use portcullis_apikey::ApiKeyErrorKind;
use portcullis_core::{
    AuthErrorKind, MaybeReady, Principal, PrincipalKind, Revocation, RevocationQuery,
};
use portcullis_sql::SqlRevocation;
use portcullis_tokens::{RevocationStore, RevokedToken};

use super::*;

on_both! {
    revocations_survive_a_reload => revocations_survive_a_reload;
    sync_picks_up_another_instances_revocations => sync_picks_up_another_instances_revocations;
    a_fresh_check_sees_other_instances_at_once => a_fresh_check_sees_other_instances_at_once;
}

const ISSUER: &str = "https://auth.example.com";

fn revoked(revocation: &SqlRevocation, subject: &str, jti: &str, iat: SystemTime) -> bool {
    let query = RevocationQuery {
        issuer: Some(ISSUER),
        subject,
        token_id: Some(jti),
        issued_at: Some(iat),
    };
    match revocation.check(&query) {
        MaybeReady::Ready(result) => result.is_err(),
        MaybeReady::Pending(_) => panic!("checks never wait for the database"),
    }
}

fn token<'a>(jti: &'a str, subject: &'a str, expires_at: SystemTime) -> RevokedToken<'a> {
    RevokedToken {
        issuer: Some(ISSUER),
        token_id: jti,
        subject,
        expires_at,
    }
}

async fn revocations_survive_a_reload(opener: Opener<'_>) {
    let clock = ManualClock::starting_now();
    let now = clock.now();
    let exp = now + Duration::from_secs(900);
    {
        let db = opener.open().await;
        let revocation = SqlRevocation::builder(db.clone())
            .clock(clock.clone())
            .load()
            .await
            .unwrap();
        revocation
            .revoke_token(token("jti-1", "alice", exp))
            .await
            .unwrap();
        revocation.revoke_subject("bob", now).await.unwrap();
        // Already expired: nothing to keep.
        revocation
            .revoke_token(token("jti-old", "alice", now))
            .await
            .unwrap();
        assert!(revoked(&revocation, "alice", "jti-1", now));
        close(db).await;
    }

    // A restart: a new pool, a new list loaded from the database.
    let db = opener.open().await;
    let revocation = SqlRevocation::builder(db.clone())
        .clock(clock.clone())
        .load()
        .await
        .unwrap();
    assert!(revoked(&revocation, "alice", "jti-1", now));
    assert!(!revoked(&revocation, "alice", "jti-2", now));
    assert!(revoked(
        &revocation,
        "bob",
        "jti-9",
        now - Duration::from_secs(60)
    ));
    assert!(!revoked(
        &revocation,
        "bob",
        "jti-9",
        now + Duration::from_secs(1)
    ));
    assert_eq!(revocation.local().len(), (1, 1));
    assert_eq!(
        opener
            .strings("SELECT subject FROM portcullis_revocations ORDER BY seq")
            .await,
        ["alice", "bob"]
    );
    close(db).await;
}

async fn sync_picks_up_another_instances_revocations(opener: Opener<'_>) {
    let (a, b) = tokio::join!(opener.open(), opener.open());
    let now = SystemTime::now();
    let exp = now + Duration::from_secs(900);
    let first = SqlRevocation::load(a.clone()).await.unwrap();
    let second = SqlRevocation::load(b.clone()).await.unwrap();

    first
        .revoke_token(token("jti-1", "alice", exp))
        .await
        .unwrap();
    first.revoke_subject("bob", now).await.unwrap();
    // Until it syncs, the other instance does not know (no database per check).
    assert!(!revoked(&second, "alice", "jti-1", now));
    assert_eq!(second.sync().await.unwrap(), 2);
    assert!(revoked(&second, "alice", "jti-1", now));
    assert!(revoked(&second, "bob", "jti-2", now));
    assert_eq!(second.sync().await.unwrap(), 0, "nothing new");
    // Its own rows come back once, applied again harmlessly.
    assert_eq!(first.sync().await.unwrap(), 2);

    // A cut-off moved forward on one instance moves on the other.
    let later = now + Duration::from_secs(30);
    second.revoke_subject("bob", later).await.unwrap();
    assert!(!revoked(&first, "bob", "jti-3", later));
    assert_eq!(first.sync().await.unwrap(), 1);
    assert!(revoked(&first, "bob", "jti-3", later));

    // Many rows written elsewhere arrive in pages.
    opener
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) \
             INSERT INTO portcullis_revocations \
             (id, subject, issuer, token_id, cutoff, keep_until, seq) \
             SELECT 'bulk-' || i, 'carol', NULL, 'bulk-' || i, NULL, 4102444800000000, \
             1000000 + i FROM n",
        )
        .await;
    assert_eq!(first.sync().await.unwrap(), 2500);
    assert!(revoked(&first, "carol", "bulk-2500", now));
    assert_eq!(first.local().len().0, 2501);
    close(a).await;
    close(b).await;
}

async fn a_fresh_check_sees_other_instances_at_once(opener: Opener<'_>) {
    // "Log out everywhere" on one instance while a stolen session asks another for an
    // API key: the key's re-check after it is stored must see the cut-off, even before
    // that instance's next sync.
    let (a, b) = tokio::join!(opener.open(), opener.open());
    let first = SqlRevocation::load(a.clone()).await.unwrap();
    let second = SqlRevocation::load(b.clone()).await.unwrap();
    let iat = SystemTime::now() - Duration::from_secs(60);
    let session = Principal::builder("alice", PrincipalKind::User)
        .issuer(ISSUER)
        .token_id("jti-1")
        .issued_at(iat)
        .build();

    first
        .revoke_subject("alice", SystemTime::now())
        .await
        .unwrap();
    assert!(
        !revoked(&second, "alice", "jti-1", iat),
        "the local view lags"
    );
    let keys = ApiKeys::new(
        SqlApiKeyStore::new(b.clone()),
        KeyFormat::new("pk_test_").unwrap(),
    );
    let refused = keys
        .issue_in_session(NewApiKey::owned_by("alice"), &session, &second.fresh())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ApiKeyErrorKind::SessionEnded);
    assert!(keys.list("alice").await.unwrap().is_empty());
    // The fresh check brought the local view up to date too.
    assert!(revoked(&second, "alice", "jti-1", iat));

    // Without its database, a fresh check fails closed.
    close(b).await;
    let query = RevocationQuery {
        issuer: Some(ISSUER),
        subject: "bob",
        token_id: Some("jti-2"),
        issued_at: Some(iat),
    };
    let down = second.fresh().check(&query).await.unwrap_err();
    assert_eq!(down.kind(), AuthErrorKind::Unavailable);
    close(a).await;
}
