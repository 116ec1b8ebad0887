//! Session stamps (a login that read the stamp before the sessions ended gets
//! nothing) and the reuse interval (a retried refresh gets the same successor).

use super::*;

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test]
async fn a_login_holding_the_old_stamp_gets_nothing_after_end_sessions() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let refresh = RefreshTokens::new(RedisRefreshStore::new(&scope.redis));
    let old = refresh.stamp("alice").await.unwrap();
    assert_eq!(old, SessionStamp::default());
    let live = refresh.issue("alice", "web", old).await.unwrap();

    // The login under way has read `old`; now the password changes.
    assert_eq!(refresh.end_sessions("alice").await.unwrap(), 1);
    let new = refresh.stamp("alice").await.unwrap();
    assert!(new > old, "{new:?} after {old:?}");
    let keys_before = scope.keys();
    let late = refresh.issue("alice", "web", old).await.unwrap_err();
    assert_eq!(late.kind(), TokenErrorKind::SessionsEnded);
    // Nothing was stored for it.
    assert_eq!(scope.keys(), keys_before);
    assert_eq!(
        refused(refresh.rotate(live.token.as_str(), "web").await),
        TokenErrorKind::Revoked
    );
    // A login that read the new stamp works; bob never ended anything.
    let fresh = refresh.issue("alice", "web", new).await.unwrap();
    refresh.rotate(fresh.token.as_str(), "web").await.unwrap();
    refresh
        .issue("bob", "web", SessionStamp::default())
        .await
        .unwrap();

    // The stamp outlives the absolute family lifetime (30 days by default) and every
    // family it admitted; it moves again on the next end.
    let stamp_key = scope
        .keys()
        .into_iter()
        .find(|k| k.ends_with("}:n"))
        .expect("alice's stamp key");
    let stamp_ttl = pttl(&scope, &stamp_key);
    assert!(
        stamp_ttl >= (30 * DAY).as_millis() as i64 - 5_000,
        "{stamp_ttl}"
    );
    refresh.end_sessions("alice").await.unwrap();
    assert!(refresh.stamp("alice").await.unwrap() > new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_racing_end_sessions_never_leave_a_live_family() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    // Four instances with their own connections.
    let instances: Vec<_> = (0..4)
        .map(|_| RefreshTokens::new(RedisRefreshStore::new(&scope.another_instance())))
        .collect();
    let (mut created, mut refused_logins) = (0, 0);
    for round in 0..30 {
        let subject = format!("racer-{round}");
        let stamp = instances[0].stamp(&subject).await.unwrap();
        let logins: Vec<_> = (0..12)
            .map(|i| {
                let refresh = instances[i % 4].clone();
                let subject = subject.clone();
                tokio::spawn(async move {
                    if i % 3 == 0 {
                        tokio::task::yield_now().await;
                    }
                    refresh.issue(&subject, "web", stamp).await
                })
            })
            .collect();
        let ender = {
            let refresh = instances[round % 4].clone();
            let subject = subject.clone();
            tokio::spawn(async move { refresh.end_sessions(&subject).await })
        };
        ender.await.unwrap().unwrap();
        for login in logins {
            match login.await.unwrap() {
                // Created before the end: it must have been revoked by it.
                Ok(issued) => {
                    created += 1;
                    assert_eq!(
                        refused(instances[1].rotate(issued.token.as_str(), "web").await),
                        TokenErrorKind::Revoked,
                        "round {round}: a family opened with the old stamp is live"
                    );
                }
                Err(e) => {
                    assert_eq!(e.kind(), TokenErrorKind::SessionsEnded, "round {round}");
                    refused_logins += 1;
                }
            }
        }
        // Every login still holding the old stamp is refused from now on.
        let late = instances[2].issue(&subject, "web", stamp).await;
        assert_eq!(refused(late), TokenErrorKind::SessionsEnded);
    }
    assert_eq!(created + refused_logins, 30 * 12);
}

fn with_clock(
    redis: &Redis,
    clock: &ManualClock,
    reuse: Duration,
) -> RefreshTokens<RedisRefreshStore> {
    RefreshTokens::builder(RedisRefreshStore::new(redis))
        .clock(clock.clone())
        .reuse_interval(reuse)
        .build()
}

#[tokio::test]
async fn a_repeat_within_the_reuse_interval_gets_the_same_successor() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let clock = ManualClock::starting_now();
    let interval = Duration::from_secs(10);
    let refresh = with_clock(&scope.redis, &clock, interval);
    let zero = SessionStamp::default();

    // One millisecond before the interval ends: the same successor, nothing changed.
    let first = refresh.issue("alice", "web", zero).await.unwrap();
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    clock.advance(interval - Duration::from_millis(1));
    let again = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    assert_eq!(again.token.as_str(), second.token.as_str());
    assert_eq!(again.record, second.record);
    // The family is live: the successor rotates.
    let third = refresh.rotate(second.token.as_str(), "web").await.unwrap();
    assert_eq!(third.record.family, first.record.family);

    // At the interval: reuse, and the family dies with its live token.
    let first = refresh.issue("alice", "web", zero).await.unwrap();
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    clock.advance(interval);
    assert_eq!(
        refused(refresh.rotate(first.token.as_str(), "web").await),
        TokenErrorKind::Reused
    );
    assert_eq!(
        refused(refresh.rotate(second.token.as_str(), "web").await),
        TokenErrorKind::Revoked
    );

    // Within the interval but from another client: reuse too.
    let first = refresh.issue("alice", "web", zero).await.unwrap();
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    assert_eq!(
        refused(refresh.rotate(first.token.as_str(), "cli").await),
        TokenErrorKind::Reused
    );
    assert_eq!(
        refused(refresh.rotate(second.token.as_str(), "web").await),
        TokenErrorKind::Revoked
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_within_the_interval_share_one_successor() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let instances = [
        RefreshTokens::new(RedisRefreshStore::new(&scope.redis)),
        RefreshTokens::new(RedisRefreshStore::new(&scope.another_instance())),
    ];
    for round in 0..20 {
        let issued = instances[0]
            .issue("tabs", "web", SessionStamp::default())
            .await
            .unwrap();
        let token: Arc<str> = issued.token.as_str().into();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let refresh = instances[i % 2].clone();
                let token = Arc::clone(&token);
                tokio::spawn(async move { refresh.rotate(&token, "web").await })
            })
            .collect();
        let mut successors = std::collections::HashSet::new();
        for task in tasks {
            let next = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            successors.insert(next.token.as_str().to_owned());
        }
        assert_eq!(successors.len(), 1, "round {round}");
        let successor = successors.into_iter().next().unwrap();
        instances[1].rotate(&successor, "web").await.unwrap();
    }
}

#[tokio::test]
async fn a_lost_index_write_is_repaired_by_the_retry() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let refresh = RefreshTokens::new(RedisRefreshStore::new(&scope.redis));
    let first = refresh
        .issue("alice", "web", SessionStamp::default())
        .await
        .unwrap();
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    // As if the answer and the successor's index entry were lost together.
    let index = format!("{}rt:tok:{}", scope.prefix, hex(&second.record.hash.0));
    let _: () = redis::cmd("DEL")
        .arg(&index)
        .query(&mut scope.raw())
        .unwrap();
    let retried = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    assert_eq!(retried.token.as_str(), second.token.as_str());
    refresh.rotate(second.token.as_str(), "web").await.unwrap();
}

#[tokio::test]
async fn every_refresh_key_expires_and_old_families_are_forgotten() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let clock = ManualClock::starting_now();
    let refresh =
        RefreshTokens::builder(RedisRefreshStore::new(&scope.redis).max_families_per_subject(2))
            .clock(clock.clone())
            .absolute_lifetime(DAY)
            .unwrap()
            .build();
    let zero = SessionStamp::default();
    let oldest = refresh.issue("erin", "web", zero).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let middle = refresh.issue("erin", "web", zero).await.unwrap();
    let next = refresh.rotate(middle.token.as_str(), "web").await.unwrap();
    clock.advance(Duration::from_secs(1));
    let newest = refresh.issue("erin", "web", zero).await.unwrap();
    // The cap ended the oldest session; the others live.
    assert_eq!(
        refused(refresh.rotate(oldest.token.as_str(), "web").await),
        TokenErrorKind::Unknown
    );
    refresh.rotate(next.token.as_str(), "web").await.unwrap();
    refresh.rotate(newest.token.as_str(), "web").await.unwrap();
    refresh.end_sessions("erin").await.unwrap();
    // Used tokens, live ones, families, indexes and the stamp: all expire, none
    // later than the stamp retention (30 days) or the family lifetime (a day).
    let keys = scope.keys();
    assert!(keys.len() >= 8, "{keys:?}");
    for key in &keys {
        let ttl = pttl(&scope, key);
        let limit = if key.ends_with("}:n") {
            30 * DAY
        } else {
            DAY + Duration::from_secs(5)
        };
        assert!(ttl > 0 && ttl <= limit.as_millis() as i64, "{key}: {ttl}");
    }
}
