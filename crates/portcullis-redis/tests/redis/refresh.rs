//! Refresh tokens: rotation, reuse detection, expiry, and races between instances.
//! Session stamps and the reuse interval are in `sessions.rs`.

use super::*;

fn hash(n: u8) -> TokenHash {
    TokenHash::of(&[n; 32])
}

#[tokio::test]
async fn refresh_rotation_follows_the_contract() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let clock = ManualClock::starting_now();
    let refresh = RefreshTokens::builder(RedisRefreshStore::new(&scope.redis))
        .clock(clock.clone())
        .reuse_interval(Duration::ZERO)
        .idle_timeout(Duration::from_secs(600))
        .unwrap()
        .absolute_lifetime(Duration::from_secs(3600))
        .unwrap()
        .build();

    let stamp = refresh.stamp("alice").await.unwrap();
    assert_eq!(stamp, SessionStamp::default());
    let first = refresh.issue("alice", "web", stamp).await.unwrap();
    assert_eq!(
        refused(refresh.rotate(first.token.as_str(), "cli").await),
        TokenErrorKind::ClientMismatch
    );
    clock.advance(Duration::from_secs(60));
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    assert_eq!(second.record.family, first.record.family);
    assert_eq!(second.record.subject, "alice");
    assert_eq!(second.record.issued_at, clock.now());
    assert_eq!(
        second.record.expires_at,
        clock.now() + Duration::from_secs(600)
    );
    assert_eq!(
        second.record.family_expires_at,
        first.record.family_expires_at
    );
    let found = refresh
        .store()
        .find(&second.record.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, second.record);

    // Reuse of the first token: the family dies, the live second token with it.
    assert_eq!(
        refused(refresh.rotate(first.token.as_str(), "web").await),
        TokenErrorKind::Reused
    );
    assert_eq!(
        refused(refresh.rotate(second.token.as_str(), "web").await),
        TokenErrorKind::Revoked
    );

    // Idle expiry and the absolute lifetime.
    let third = refresh.issue("alice", "web", stamp).await.unwrap();
    clock.advance(Duration::from_secs(601));
    assert_eq!(
        refused(refresh.rotate(third.token.as_str(), "web").await),
        TokenErrorKind::Expired
    );
    let mut token = refresh.issue("alice", "web", stamp).await.unwrap();
    for _ in 0..10 {
        clock.advance(Duration::from_secs(500));
        match refresh.rotate(token.token.as_str(), "web").await {
            Ok(next) => token = next,
            Err(e) => {
                assert_eq!(e.kind(), TokenErrorKind::Expired);
                assert!(clock.now() >= token.record.family_expires_at);
                break;
            }
        }
    }
    assert!(clock.now() >= token.record.family_expires_at);

    // Unknown tokens and logout.
    let unknown = RefreshStore::rotate(
        refresh.store(),
        Rotation {
            presented: &hash(1),
            successor: &hash(2),
            sealed_successor: &SealedToken([0; 32]),
            client_id: "web",
            now: clock.now(),
            idle_timeout: Duration::from_secs(60),
            reuse_interval: Duration::from_secs(10),
        },
    )
    .await
    .unwrap();
    assert_eq!(unknown, RotateOutcome::Unknown);
    let live = refresh.issue("bob", "web", stamp).await.unwrap();
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
        refused(refresh.rotate(live.token.as_str(), "web").await),
        TokenErrorKind::Revoked
    );
}

#[tokio::test]
async fn refresh_create_refuses_duplicates_and_entries_expire_with_the_family() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let store = RedisRefreshStore::new(&scope.redis);
    let now = SystemTime::now();
    let record = portcullis_tokens::RefreshRecord {
        hash: hash(9),
        family: "fam-1".into(),
        subject: "carol".into(),
        client_id: "web".into(),
        issued_at: now,
        expires_at: now + Duration::from_secs(30),
        family_expires_at: now + Duration::from_secs(120),
    };
    store.create(record.clone(), SessionStamp(0)).await.unwrap();
    let err = store
        .create(record.clone(), SessionStamp(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Store);
    // The token, the subject's families, and the two index entries; no stamp, as
    // carol's sessions never ended.
    let keys = scope.keys();
    assert_eq!(keys.len(), 4, "{keys:?}");
    for key in &keys {
        let pttl = pttl(&scope, key);
        assert!(pttl > 100_000 && pttl <= 121_000, "{key}: {pttl}");
    }
    // The hash is stored, never the token; the subject only as a hash tag.
    assert!(keys.iter().all(|k| !k.contains("carol")), "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.ends_with(&format!("t:{}", hex(&hash(9).0)))),
        "{keys:?}"
    );
    // Every key of carol's decisions shares one hash tag (one Redis Cluster slot).
    let tags: std::collections::HashSet<_> = keys
        .iter()
        .filter_map(|k| Some(&k[k.find('{')?..=k.find('}')?]))
        .collect();
    assert_eq!(tags.len(), 1, "{keys:?}");
}

#[tokio::test]
async fn refresh_end_sessions_revokes_every_family_once() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let refresh = RefreshTokens::new(RedisRefreshStore::new(&scope.redis));
    let zero = SessionStamp::default();
    let a = refresh.issue("dave", "web", zero).await.unwrap();
    let b = refresh.issue("dave", "cli", zero).await.unwrap();
    let other = refresh.issue("erin", "web", zero).await.unwrap();
    let mut families = refresh.store().end_sessions("dave").await.unwrap();
    families.sort();
    let mut expected = vec![a.record.family.clone(), b.record.family.clone()];
    expected.sort();
    assert_eq!(families, expected);
    assert!(
        refresh
            .store()
            .end_sessions("dave")
            .await
            .unwrap()
            .is_empty()
    );
    for t in [&a, &b] {
        assert_eq!(
            refresh
                .rotate(t.token.as_str(), &t.record.client_id)
                .await
                .unwrap_err()
                .kind(),
            TokenErrorKind::Revoked
        );
    }
    refresh.rotate(other.token.as_str(), "web").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_race_has_exactly_one_winner() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    // Two instances, each with its own connection, racing on the same tokens; no
    // reuse interval, so every repeat is reuse (the interval is in `sessions.rs`).
    let instance = |redis: &Redis| {
        RefreshTokens::builder(RedisRefreshStore::new(redis))
            .reuse_interval(Duration::ZERO)
            .build()
    };
    let instances = [instance(&scope.redis), instance(&scope.another_instance())];
    for round in 0..40 {
        let issued = instances[0]
            .issue("race", "web", SessionStamp::default())
            .await
            .unwrap();
        let token: Arc<str> = issued.token.as_str().into();
        let tasks: Vec<_> = (0..16)
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
        // The losers detected reuse: the winner's successor is dead too.
        assert_eq!(
            refused(instances[1].rotate(winners[0].token.as_str(), "web").await),
            TokenErrorKind::Revoked
        );
    }
}

#[tokio::test]
async fn refresh_family_ids_stay_with_their_first_subject() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let store = RedisRefreshStore::new(&scope.redis);
    let now = SystemTime::now();
    let record = |n, subject: &str| portcullis_tokens::RefreshRecord {
        hash: hash(n),
        family: "fam-1".into(),
        subject: subject.into(),
        client_id: "web".into(),
        issued_at: now,
        expires_at: now + Duration::from_secs(30),
        family_expires_at: now + Duration::from_secs(120),
    };
    store
        .create(record(1, "carol"), SessionStamp(0))
        .await
        .unwrap();
    let clash = store.create(record(2, "mallory"), SessionStamp(0)).await;
    assert_eq!(refused(clash), TokenErrorKind::Store);
    // The id still names carol's family, and mallory's token was never indexed.
    assert!(store.revoke_family("fam-1").await.unwrap());
    let carol = store.find(&hash(1)).await.unwrap().unwrap();
    assert_eq!(carol.subject, "carol");
    assert!(store.find(&hash(2)).await.unwrap().is_none());
}
