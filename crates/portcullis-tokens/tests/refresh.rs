//! Refresh-token rotation, reuse detection, the concurrent race and expiry.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use portcullis_core::{AuthEvent, Events};
use portcullis_tokens::{
    Clock, ErrorKind, ManualClock, MemoryRefreshStore, RefreshStore, RefreshTokens, SessionStamp,
    TokenHash,
};

type Log = Arc<Mutex<Vec<(String, String, String)>>>;

fn capture() -> (Events, Log) {
    let log: Log = Arc::default();
    let sink = log.clone();
    let events = Events::new(move |e: &AuthEvent<'_>| {
        let entry = match e {
            AuthEvent::RefreshReuseDetected { subject, family } => {
                (e.name().to_owned(), subject.to_string(), family.to_string())
            }
            AuthEvent::TokenRevoked { subject, token_id } => (
                e.name().to_owned(),
                subject.to_string(),
                token_id.to_string(),
            ),
            other => (other.name().to_owned(), String::new(), String::new()),
        };
        sink.lock().unwrap().push(entry);
    });
    (events, log)
}

/// Without a reuse interval, so that every repeat is reuse (the interval has its own
/// tests in `sessions.rs`).
fn tokens(clock: &ManualClock, events: Events) -> RefreshTokens<MemoryRefreshStore> {
    RefreshTokens::builder(MemoryRefreshStore::new())
        .reuse_interval(Duration::ZERO)
        .absolute_lifetime(Duration::from_secs(30 * 86_400))
        .unwrap()
        .idle_timeout(Duration::from_secs(86_400))
        .unwrap()
        .clock(clock.clone())
        .events(events)
        .build()
}

#[tokio::test]
async fn every_refresh_rotates_within_the_family() {
    let clock = ManualClock::starting_now();
    let refresh = tokens(&clock, Events::default());
    let first = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    assert_eq!(first.token.as_str().len(), 43);
    let mut current = first.clone();
    for _ in 0..5 {
        clock.advance(Duration::from_secs(60));
        let next = refresh.rotate(current.token.as_str(), "web").await.unwrap();
        assert_ne!(next.token.as_str(), current.token.as_str());
        assert_eq!(next.record.family, first.record.family);
        assert_eq!(next.record.subject, "alice");
        assert_eq!(next.record.client_id, "web");
        assert_eq!(next.record.issued_at, clock.now());
        assert_eq!(
            next.record.family_expires_at,
            first.record.family_expires_at
        );
        // The consumed token no longer rotates... (checked in the reuse test); the
        // store keeps only hashes.
        let stored = refresh
            .store()
            .find(&next.record.hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, next.record);
        current = next;
    }
    // A fresh login is a new family.
    let other = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    assert_ne!(other.record.family, first.record.family);
}

#[tokio::test]
async fn store_keeps_only_the_hash() {
    let clock = ManualClock::starting_now();
    let refresh = tokens(&clock, Events::default());
    let issued = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    let debug = format!("{:?} {:?}", issued, refresh.store());
    assert!(!debug.contains(issued.token.as_str()));
    // The record's hash is the SHA-256 of the decoded token, not the token itself.
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(issued.token.as_str())
        .unwrap();
    assert_eq!(raw.len(), 32);
    assert_eq!(issued.record.hash, TokenHash::of(&raw));
}

#[tokio::test]
async fn reuse_revokes_the_whole_family_including_the_live_token_and_emits_event() {
    let clock = ManualClock::starting_now();
    let (events, log) = capture();
    let refresh = tokens(&clock, events);
    let first = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    let third = refresh.rotate(second.token.as_str(), "web").await.unwrap();
    // A second login of the same subject is another family and survives.
    let elsewhere = refresh
        .issue("alice", "phone", SessionStamp::default())
        .await
        .unwrap();

    // An attacker replays the first token.
    let err = refresh
        .rotate(first.token.as_str(), "web")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Reused);
    assert_eq!(
        *log.lock().unwrap(),
        [(
            "refresh_reuse_detected".to_owned(),
            "alice".to_owned(),
            first.record.family.clone()
        )]
    );

    // The legitimate client's live token is dead too.
    let err = refresh
        .rotate(third.token.as_str(), "web")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked);
    // Replaying again does not emit a second reuse event: the family is already revoked.
    let err = refresh
        .rotate(second.token.as_str(), "web")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked);
    assert_eq!(log.lock().unwrap().len(), 1);

    assert!(
        refresh
            .rotate(elsewhere.token.as_str(), "phone")
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_with_one_token_have_exactly_one_winner() {
    const TASKS: usize = 64;
    const ROUNDS: usize = 200;
    let clock = ManualClock::starting_now();
    let (events, log) = capture();
    let refresh = tokens(&clock, events);
    for round in 0..ROUNDS {
        let issued = refresh
            .issue("alice", "web", SessionStamp::default())
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                let refresh = refresh.clone();
                let token = issued.token.as_str().to_owned();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    refresh.rotate(&token, "web").await
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut losers = 0;
        for handle in handles {
            match handle.await.unwrap() {
                Ok(next) => winners.push(next),
                Err(e) => {
                    assert!(
                        matches!(e.kind(), ErrorKind::Reused | ErrorKind::Revoked),
                        "round {round}: {e:?}"
                    );
                    losers += 1;
                }
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        assert_eq!(losers, TASKS - 1);
        // At least one loser saw the used token, so the family (winner's token too) is
        // revoked: the race itself is reuse.
        let err = refresh
            .rotate(winners[0].token.as_str(), "web")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Revoked, "round {round}");
    }
    let reuse_events = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, ..)| name == "refresh_reuse_detected")
        .count();
    assert_eq!(reuse_events, ROUNDS, "one reuse event per family");
}

#[tokio::test]
async fn idle_expiry_with_injected_clock() {
    let clock = ManualClock::starting_now();
    let refresh = tokens(&clock, Events::default());
    let first = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    // Used just before the idle deadline: fine, and the successor gets a fresh day.
    clock.advance(Duration::from_secs(86_400 - 1));
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    clock.advance(Duration::from_secs(86_400));
    let err = refresh
        .rotate(second.token.as_str(), "web")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired);
}

#[tokio::test]
async fn absolute_expiry_ends_a_busy_family() {
    let clock = ManualClock::starting_now();
    let refresh = RefreshTokens::builder(MemoryRefreshStore::new())
        .absolute_lifetime(Duration::from_secs(3 * 3600))
        .unwrap()
        .idle_timeout(Duration::from_secs(3600))
        .unwrap()
        .clock(clock.clone())
        .build();
    let mut current = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    let family_end = current.record.family_expires_at;
    // Refreshing every 50 minutes keeps it from idling out...
    for _ in 0..3 {
        clock.advance(Duration::from_secs(50 * 60));
        current = refresh.rotate(current.token.as_str(), "web").await.unwrap();
        assert!(
            current.record.expires_at <= family_end,
            "idle deadline capped by family"
        );
    }
    // ...but not past the absolute lifetime (2h30 used, next at 3h20).
    clock.advance(Duration::from_secs(50 * 60));
    let err = refresh
        .rotate(current.token.as_str(), "web")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired);
}

#[tokio::test]
async fn token_is_bound_to_its_client() {
    let clock = ManualClock::starting_now();
    let refresh = tokens(&clock, Events::default());
    let issued = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    let err = refresh
        .rotate(issued.token.as_str(), "other-client")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ClientMismatch);
    // A mismatch changes nothing: the right client still rotates.
    assert!(refresh.rotate(issued.token.as_str(), "web").await.is_ok());
}

#[tokio::test]
async fn unknown_and_malformed_tokens() {
    let clock = ManualClock::starting_now();
    let refresh = tokens(&clock, Events::default());
    let err = refresh.rotate(&"A".repeat(43), "web").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unknown);
    for bad in [
        "",
        "x",
        &"A".repeat(500),
        "not a token at all, but 43 bytes long ok!!",
    ] {
        let err = refresh.rotate(bad, "web").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Malformed, "{bad:?}");
    }
}

#[tokio::test]
async fn revoke_one_family_or_all_of_a_subject() {
    let clock = ManualClock::starting_now();
    let (events, log) = capture();
    let refresh = tokens(&clock, events);
    let web = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    let phone = refresh
        .issue("alice", "phone", SessionStamp::default())
        .await
        .unwrap();
    let tablet = refresh
        .issue("alice", "tablet", SessionStamp::default())
        .await
        .unwrap();
    let bob = refresh
        .issue("bob", "web", SessionStamp::default())
        .await
        .unwrap();

    let revoked = refresh.revoke(web.token.as_str()).await.unwrap().unwrap();
    assert_eq!(revoked.family, web.record.family);
    assert!(refresh.revoke(web.token.as_str()).await.unwrap().is_none());
    assert_eq!(
        refresh
            .rotate(web.token.as_str(), "web")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Revoked
    );
    assert!(refresh.rotate(phone.token.as_str(), "phone").await.is_ok());

    assert_eq!(refresh.end_sessions("alice").await.unwrap(), 2);
    assert_eq!(
        refresh
            .rotate(tablet.token.as_str(), "tablet")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Revoked
    );
    assert!(refresh.rotate(bob.token.as_str(), "web").await.is_ok());
    let revocations = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, ..)| name == "token_revoked")
        .count();
    assert_eq!(revocations, 3);
}

#[tokio::test]
async fn expired_families_are_swept_from_memory() {
    let clock = ManualClock::starting_now();
    let refresh = RefreshTokens::builder(MemoryRefreshStore::new())
        .absolute_lifetime(Duration::from_secs(60))
        .unwrap()
        .clock(clock.clone())
        .build();
    for i in 0..100 {
        refresh
            .issue(&format!("user-{i}"), "web", SessionStamp::default())
            .await
            .unwrap();
    }
    assert_eq!(refresh.store().family_count(), 100);
    clock.advance(Duration::from_secs(61));
    refresh.store().purge_expired(clock.now());
    assert_eq!(refresh.store().family_count(), 0);
    // Growth past the sweep threshold also sweeps without being asked.
    for i in 0..1024 {
        refresh
            .issue(&format!("user-{i}"), "web", SessionStamp::default())
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(61));
    for i in 0..5 {
        refresh
            .issue(&format!("late-{i}"), "web", SessionStamp::default())
            .await
            .unwrap();
    }
    assert!(refresh.store().family_count() <= 5);
}
