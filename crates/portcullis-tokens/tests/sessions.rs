//! Sessions that really end: the session stamp, the reuse interval and the bounded
//! in-memory store.

use std::{sync::Arc, time::Duration};

use portcullis_core::{MaybeReady, Revocation, RevocationQuery};
use portcullis_tokens::{
    Clock, ErrorKind, Grant, ManualClock, MemoryRefreshStore, MemoryRevocation, RefreshStore,
    RefreshTokens, SessionStamp, SigningAlgorithm, SigningKey, TokenIssuer, TokenPair,
    TokenService,
};

fn service(clock: &ManualClock) -> TokenService<MemoryRefreshStore> {
    let issuer = TokenIssuer::builder(
        "https://auth.example",
        "api",
        SigningKey::generate(SigningAlgorithm::Hs256).unwrap(),
    )
    .clock(clock.clone())
    .build();
    let refresh = RefreshTokens::builder(MemoryRefreshStore::new())
        .clock(clock.clone())
        .build();
    TokenService::new(issuer, refresh, MemoryRevocation::with_clock(clock.clone()))
        .with_clock(clock.clone())
}

/// Alice's login as an endpoint does it: the stamp first, then the pair.
async fn log_in_alice(service: &TokenService<MemoryRefreshStore>) -> TokenPair {
    let stamp = service.session_stamp("alice").await.unwrap();
    service
        .login(&Grant::new("alice", "web"), stamp)
        .await
        .unwrap()
}

fn refused(revocation: &MemoryRevocation, subject: &str, iat: std::time::SystemTime) -> bool {
    let query = RevocationQuery {
        issuer: None,
        subject,
        token_id: None,
        issued_at: Some(iat),
    };
    match revocation.check(&query) {
        MaybeReady::Ready(result) => result.is_err(),
        MaybeReady::Pending(_) => panic!("memory revocation answers at once"),
    }
}

#[tokio::test]
async fn a_login_that_began_before_the_sessions_ended_gets_no_session() {
    let clock = ManualClock::starting_now();
    let service = service(&clock);
    // The login reads the stamp, then (slowly) checks the password...
    let stamp = service.session_stamp("alice").await.unwrap();
    assert_eq!(stamp, SessionStamp::default());
    // ...while a password reset ends every session.
    service.logout_everywhere("alice").await.unwrap();
    let err = service
        .login(&Grant::new("alice", "web"), stamp)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SessionsEnded);
    assert!(err.kind().is_client_error());
    assert_eq!(service.refresh_tokens().store().family_count(), 0);

    // A login that starts afterwards reads the new stamp and works.
    clock.advance(Duration::from_secs(1));
    let stamp = service.session_stamp("alice").await.unwrap();
    assert_eq!(stamp, SessionStamp(1));
    let pair = service
        .login(&Grant::new("alice", "web"), stamp)
        .await
        .unwrap();
    assert!(!refused(
        service.revocation(),
        "alice",
        pair.access.issued_at()
    ));
}

#[tokio::test]
async fn a_session_granted_before_the_sessions_ended_dies_whole() {
    let clock = ManualClock::starting_now();
    let service = service(&clock);
    let pair = log_in_alice(&service).await;
    // The reset lands after the store granted the family, even a second later.
    clock.advance(Duration::from_secs(1));
    service.logout_everywhere("alice").await.unwrap();
    assert!(refused(
        service.revocation(),
        "alice",
        pair.access.issued_at()
    ));
    let err = service
        .refresh(pair.refresh.token.as_str(), "web", |s| Grant::new(s, "web"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked);
}

#[tokio::test]
async fn a_refreshed_access_token_is_stamped_before_the_store_decides() {
    let clock = ManualClock::starting_now();
    let service = service(&clock);
    let pair = log_in_alice(&service).await;
    clock.advance(Duration::from_secs(5));
    let before = clock.now();
    // `grant_for` runs after the rotation: the clock moving there (a slow user
    // look-up) does not move the access token's `iat` past the store's decision.
    let next = service
        .refresh(pair.refresh.token.as_str(), "web", |s| {
            clock.advance(Duration::from_secs(3));
            Grant::new(s, "web")
        })
        .await
        .unwrap();
    let iat = next.access.issued_at();
    assert!(iat <= before, "iat {iat:?} is not after {before:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_racing_an_end_of_sessions_never_leave_a_live_family() {
    // Each round: logins that read the stamp before the end of sessions race it.
    // Whatever the interleaving, every family they open is revoked or refused.
    let store = MemoryRefreshStore::new();
    let refresh = RefreshTokens::builder(store.clone()).build();
    for round in 0..200 {
        let subject = format!("user-{round}");
        let stamp = refresh.stamp(&subject).await.unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(9));
        let mut logins = Vec::new();
        for _ in 0..8 {
            let (refresh, subject, barrier) = (refresh.clone(), subject.clone(), barrier.clone());
            logins.push(tokio::spawn(async move {
                barrier.wait().await;
                refresh.issue(&subject, "web", stamp).await
            }));
        }
        let ending = {
            let (refresh, subject, barrier) = (refresh.clone(), subject.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                refresh.end_sessions(&subject).await
            })
        };
        ending.await.unwrap().unwrap();
        for login in logins {
            match login.await.unwrap() {
                Ok(issued) => {
                    let err = refresh
                        .rotate(issued.token.as_str(), "web")
                        .await
                        .unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::Revoked, "round {round}");
                }
                Err(e) => assert_eq!(e.kind(), ErrorKind::SessionsEnded, "round {round}"),
            }
        }
    }
}

fn with_interval(clock: &ManualClock, interval: Duration) -> RefreshTokens<MemoryRefreshStore> {
    RefreshTokens::builder(MemoryRefreshStore::new())
        .reuse_interval(interval)
        .clock(clock.clone())
        .build()
}

#[tokio::test]
async fn a_repeat_within_the_reuse_interval_gets_the_same_successor() {
    let clock = ManualClock::starting_now();
    let refresh = with_interval(&clock, Duration::from_secs(10));
    let first = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    // The answer was lost; the client retries just inside the interval.
    clock.advance(Duration::from_secs(10) - Duration::from_millis(1));
    let again = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    assert_eq!(again.token.as_str(), second.token.as_str());
    assert_eq!(again.record, second.record);
    // Nothing was revoked: the successor rotates on.
    let third = refresh.rotate(second.token.as_str(), "web").await.unwrap();
    assert_eq!(third.record.family, first.record.family);
}

#[tokio::test]
async fn a_repeat_at_the_end_of_the_reuse_interval_is_reuse() {
    let clock = ManualClock::starting_now();
    let refresh = with_interval(&clock, Duration::from_secs(10));
    let first = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    clock.advance(Duration::from_secs(10));
    let err = refresh
        .rotate(first.token.as_str(), "web")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Reused);
    let err = refresh
        .rotate(second.token.as_str(), "web")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked, "the whole family died");
}

#[tokio::test]
async fn a_repeat_from_another_client_is_reuse_even_within_the_interval() {
    let clock = ManualClock::starting_now();
    let refresh = with_interval(&clock, Duration::from_secs(10));
    let first = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    let err = refresh
        .rotate(first.token.as_str(), "cli")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Reused);
    let err = refresh
        .rotate(second.token.as_str(), "web")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_refreshing_at_once_share_one_successor() {
    let clock = ManualClock::starting_now();
    let refresh = with_interval(&clock, Duration::from_secs(10));
    for _ in 0..50 {
        let first = refresh
            .issue("alice", "web", SessionStamp::default())
            .await
            .unwrap();
        let tabs: Vec<_> = (0..2)
            .map(|_| {
                let (refresh, token) = (refresh.clone(), first.token.as_str().to_owned());
                tokio::spawn(async move { refresh.rotate(&token, "web").await })
            })
            .collect();
        let mut successors = Vec::new();
        for tab in tabs {
            successors.push(tab.await.unwrap().unwrap().token.as_str().to_owned());
        }
        assert_eq!(successors[0], successors[1]);
        assert!(refresh.rotate(&successors[0], "web").await.is_ok());
    }
}

#[tokio::test]
async fn the_memory_store_is_bounded_per_subject_and_in_all() {
    let store = MemoryRefreshStore::new()
        .max_families_per_subject(3)
        .max_families(5);
    let refresh = RefreshTokens::new(store.clone());
    let stamp = SessionStamp::default();
    let mut alice = Vec::new();
    for _ in 0..4 {
        alice.push(refresh.issue("alice", "web", stamp).await.unwrap());
    }
    assert_eq!(store.family_count(), 3, "the fourth login ended the oldest");
    let err = refresh
        .rotate(alice[0].token.as_str(), "web")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unknown);
    assert!(refresh.rotate(alice[3].token.as_str(), "web").await.is_ok());
    refresh.issue("bob", "web", stamp).await.unwrap();
    refresh.issue("carol", "web", stamp).await.unwrap();
    let err = refresh.issue("dave", "web", stamp).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Store,
        "full: refused, nobody evicted"
    );
    assert_eq!(store.family_count(), 5);
    assert_eq!(store.stamp("dave").await.unwrap(), stamp);
}
