//! Purging: expired rows go, live ones and session stamps stay, and a pass does
//! bounded work.

use std::num::NonZeroU32;

use portcullis_password::ResetTokens;
use portcullis_sql::{PURGE_BATCH_SIZE, PURGE_MAX_BATCHES, SqlResetStore, SqlRevocation};
use portcullis_tokens::{DEFAULT_CUTOFF_RETENTION, RevocationStore, RevokedToken, SessionStamp};

use super::*;

on_both! {
    purging_removes_what_expired_and_keeps_the_rest => purging_removes_what_expired_and_keeps_the_rest;
    a_purge_pass_does_bounded_work => a_purge_pass_does_bounded_work;
    the_purger_task_purges_until_aborted => the_purger_task_purges_until_aborted;
}

const PER_PASS: u64 = PURGE_BATCH_SIZE * PURGE_MAX_BATCHES as u64;

/// 10,500 rows, numbered from 1: one pass and a half.
const NUMBERS: &str =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10500)";

async fn purging_removes_what_expired_and_keeps_the_rest(opener: Opener<'_>) {
    let db = opener.open().await;
    let clock = ManualClock::starting_now();
    let start = clock.now();
    let refresh = refresh_tokens(db.clone(), &clock);
    let resets = ResetTokens::new(SqlResetStore::new(db.clone()))
        .with_lifetime(NonZeroU32::new(600).unwrap())
        .with_clock(clock.clone());
    let revocation = SqlRevocation::builder(db.clone())
        .clock(clock.clone())
        .load()
        .await
        .unwrap();

    // Families live an hour; this one ends at start + 3600 s, with two tokens.
    let old = login(&refresh, "alice", "web").await;
    let used = refresh.rotate(old.token.as_str(), "web").await.unwrap();
    refresh.store().end_sessions("carol").await.unwrap();
    clock.advance(Duration::from_secs(1800));
    let young = login(&refresh, "bob", "web").await;
    let _link = resets.issue("alice", "password_reset").await.unwrap();
    revocation
        .revoke_token(RevokedToken {
            issuer: None,
            token_id: "jti-1",
            subject: "alice",
            expires_at: clock.now() + Duration::from_secs(900),
        })
        .await
        .unwrap();
    revocation.revoke_subject("bob", clock.now()).await.unwrap();

    assert_eq!(db.purge_expired(clock.now()).await.unwrap(), 0);

    // An hour in: the old family (with its used token), the reset link (ended at
    // +2400 s) and the denied token (ended at +2700 s) go.
    let hour = start + Duration::from_secs(3600);
    assert_eq!(db.purge_expired(hour).await.unwrap(), 3);
    let store = refresh.store();
    assert!(store.find(&old.record.hash).await.unwrap().is_none());
    assert!(store.find(&used.record.hash).await.unwrap().is_none());
    assert_eq!(stored(&refresh, &young.record.hash).await, young.record);
    assert!(
        opener
            .strings("SELECT hash FROM portcullis_one_time_tokens")
            .await
            .is_empty()
    );
    assert_eq!(
        opener
            .strings("SELECT subject FROM portcullis_revocations")
            .await,
        ["bob"]
    );

    // Each store purges its own table too.
    let later = hour + Duration::from_secs(1800);
    assert_eq!(store.purge_expired(later).await.unwrap(), 1);
    assert!(store.find(&young.record.hash).await.unwrap().is_none());
    let cutoff_gone = later + DEFAULT_CUTOFF_RETENTION;
    assert_eq!(revocation.purge_expired(cutoff_gone).await.unwrap(), 1);

    // Session stamps are never purged.
    assert_eq!(refresh.stamp("carol").await.unwrap(), SessionStamp(1));
    assert!(
        opener
            .strings("SELECT subject FROM portcullis_session_stamps")
            .await
            .contains(&"carol".to_owned())
    );
    close(db).await;
}

async fn a_purge_pass_does_bounded_work(opener: Opener<'_>) {
    let db = opener.open().await;
    let now = SystemTime::now();

    let resets = ResetTokens::new(SqlResetStore::new(db.clone()));
    let live = resets.issue("alice", "password_reset").await.unwrap();
    opener
        .execute(format!(
            "{NUMBERS} INSERT INTO portcullis_one_time_tokens (hash, subject, purpose, expires_at) \
             SELECT 'h' || i, 'bulk', 'password_reset', 1 FROM n"
        ))
        .await;
    let store = resets.store();
    assert_eq!(store.purge_expired(now).await.unwrap(), PER_PASS);
    assert_eq!(store.purge_expired(now).await.unwrap(), 10_500 - PER_PASS);
    assert_eq!(store.purge_expired(now).await.unwrap(), 0);
    assert_eq!(
        resets
            .redeem(live.as_str(), "password_reset")
            .await
            .unwrap(),
        "alice"
    );

    // One expired family with more tokens than a pass deletes: its tokens go first,
    // the family in the pass that deletes its last token.
    opener
        .execute(format!(
            "INSERT INTO portcullis_refresh_families (family, subject, client_id, expires_at, revoked) \
             VALUES ('big', 'bulk', 'web', 1, 0); \
             {NUMBERS} INSERT INTO portcullis_refresh_tokens (hash, family, issued_at, expires_at, used) \
             SELECT 't' || i, 'big', 0, 1, 1 FROM n"
        ))
        .await;
    let refresh = SqlRefreshStore::new(db.clone());
    assert_eq!(refresh.purge_expired(now).await.unwrap(), 0);
    assert_eq!(
        opener
            .strings("SELECT hash FROM portcullis_refresh_tokens")
            .await
            .len() as u64,
        10_500 - PER_PASS
    );
    assert_eq!(refresh.purge_expired(now).await.unwrap(), 1);
    assert!(
        opener
            .strings("SELECT family FROM portcullis_refresh_families")
            .await
            .is_empty()
    );
    close(db).await;
}

async fn the_purger_task_purges_until_aborted(opener: Opener<'_>) {
    let db = opener.open().await;
    let resets = ResetTokens::new(SqlResetStore::new(db.clone()));
    let live = resets.issue("alice", "password_reset").await.unwrap();
    opener
        .execute(
            "INSERT INTO portcullis_one_time_tokens (hash, subject, purpose, expires_at) \
             VALUES ('dead', 'bob', 'password_reset', 1)",
        )
        .await;
    let purger = db.spawn_purger(Duration::from_millis(50));
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = opener
            .strings("SELECT hash FROM portcullis_one_time_tokens")
            .await
            .len();
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 1, "the purger never deleted the expired row");
    purger.abort();
    assert!(purger.await.unwrap_err().is_cancelled());
    assert_eq!(
        resets
            .redeem(live.as_str(), "password_reset")
            .await
            .unwrap(),
        "alice"
    );
    close(db).await;
}
