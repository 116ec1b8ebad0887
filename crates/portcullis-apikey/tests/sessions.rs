//! Keys that end with their owner's sessions, and the lifetime cap.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, SystemTime},
};

use portcullis_apikey::{ApiKeyErrorKind, ApiKeys, KeyFormat, MemoryStore, NewApiKey};
use portcullis_core::{
    AuthError, MaybeReady, Principal, PrincipalKind, Revocation, RevocationQuery,
};

fn keys() -> ApiKeys<MemoryStore> {
    ApiKeys::new(MemoryStore::new(), KeyFormat::new("pk_").unwrap())
}

fn session(subject: &str) -> Principal {
    Principal::builder(subject, PrincipalKind::User)
        .token_id("jti-1")
        .issued_at(SystemTime::now())
        .build()
}

/// A revocation store that answers "live" for the first `live` checks, then
/// "revoked": a session ended while a key was being made.
struct EndsAfter {
    live: usize,
    checks: AtomicUsize,
}

impl EndsAfter {
    fn new(live: usize) -> Self {
        Self {
            live,
            checks: AtomicUsize::new(0),
        }
    }
}

impl Revocation for EndsAfter {
    fn check(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        assert_eq!(query.subject, "alice");
        assert_eq!(query.token_id, Some("jti-1"));
        assert!(query.issued_at.is_some());
        let n = self.checks.fetch_add(1, Ordering::SeqCst);
        MaybeReady::Ready(if n < self.live {
            Ok(())
        } else {
            Err(AuthError::revoked())
        })
    }
}

#[tokio::test]
async fn a_key_made_while_the_session_ended_is_revoked_before_anyone_sees_it() {
    let keys = keys();
    let creator = session("alice");
    // Live when asked first, ended by the time the key is stored.
    let err = keys
        .issue_in_session(NewApiKey::owned_by("alice"), &creator, &EndsAfter::new(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ApiKeyErrorKind::SessionEnded);
    let stored = keys.list("alice").await.unwrap();
    assert_eq!(stored.len(), 1, "the key was stored, then revoked");
    assert!(stored[0].revoked_at.is_some());

    // Ended before: nothing is stored at all.
    let err = keys
        .issue_in_session(NewApiKey::owned_by("alice"), &creator, &EndsAfter::new(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ApiKeyErrorKind::SessionEnded);
    assert_eq!(keys.list("alice").await.unwrap().len(), 1);

    // A live session gets its key, checked twice.
    let live = EndsAfter::new(2);
    let issued = keys
        .issue_in_session(NewApiKey::owned_by("alice"), &creator, &live)
        .await
        .unwrap();
    assert!(issued.record().revoked_at.is_none());
    assert_eq!(live.checks.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn ending_sessions_revokes_only_session_bound_keys_of_that_owner() {
    let keys = keys();
    let bound = keys.issue(NewApiKey::owned_by("alice")).await.unwrap();
    let kept = keys
        .issue(NewApiKey::owned_by("alice").outlives_sessions())
        .await
        .unwrap();
    let other = keys.issue(NewApiKey::owned_by("bob")).await.unwrap();
    assert!(bound.record().session_bound);
    assert!(!kept.record().session_bound);

    assert_eq!(keys.end_sessions("alice").await.unwrap(), 1);
    assert!(
        keys.get(bound.id())
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        keys.get(kept.id())
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert!(
        keys.get(other.id())
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert_eq!(
        keys.end_sessions("alice").await.unwrap(),
        0,
        "already revoked"
    );

    // Rotation keeps the owner's choice.
    let rotated = keys.rotate(kept.id(), Duration::ZERO).await.unwrap();
    assert!(!rotated.record().session_bound);
}

#[tokio::test]
async fn the_lifetime_cap_fills_in_and_refuses() {
    let keys = keys().with_max_lifetime(Duration::from_secs(3600));
    let capped = keys.issue(NewApiKey::owned_by("alice")).await.unwrap();
    let record = capped.record();
    let lifetime = record
        .expires_at
        .unwrap()
        .duration_since(record.created_at)
        .unwrap();
    assert_eq!(lifetime, Duration::from_secs(3600));
    let err = keys
        .issue(NewApiKey::owned_by("alice").expires_in(Duration::from_secs(3601)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ApiKeyErrorKind::InvalidInput);
    assert!(
        keys.issue(NewApiKey::owned_by("alice").expires_in(Duration::from_secs(60)))
            .await
            .is_ok()
    );
}
