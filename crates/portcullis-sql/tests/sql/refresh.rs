//! The refresh-token store: rotation, races between instances, ending a subject's
//! sessions and purging.

use super::*;

on_both! {
    refresh_rotation_follows_the_contract => refresh_rotation_follows_the_contract;
    refresh_race_has_exactly_one_winner => refresh_race_has_exactly_one_winner;
    refresh_subject_revocation_and_purge => refresh_subject_revocation_and_purge;
}

async fn refresh_rotation_follows_the_contract(opener: Opener<'_>) {
    let db = opener.open().await;
    let clock = ManualClock::starting_now();
    let refresh = refresh_tokens(db.clone(), &clock);

    let first = login(&refresh, "alice", "web").await;
    assert_eq!(
        refused(refresh.rotate(first.token.as_str(), "cli").await),
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
    assert_eq!(stored(&refresh, &second.record.hash).await, second.record);

    // Past the reuse interval, presenting the used token again is reuse.
    clock.advance(REUSE);
    assert_eq!(
        refused(refresh.rotate(first.token.as_str(), "web").await),
        TokenErrorKind::Reused
    );
    assert_eq!(
        refused(refresh.rotate(second.token.as_str(), "web").await),
        TokenErrorKind::Revoked
    );
    // A used token stays reuse even past its expiry; the family stays revoked.
    clock.advance(Duration::from_secs(700));
    assert_eq!(
        refused(refresh.rotate(first.token.as_str(), "web").await),
        TokenErrorKind::Revoked
    );

    let third = login(&refresh, "alice", "web").await;
    clock.advance(Duration::from_secs(601));
    assert_eq!(
        refused(refresh.rotate(third.token.as_str(), "web").await),
        TokenErrorKind::Expired
    );
    let mut token = login(&refresh, "alice", "web").await;
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
            sealed_successor: &SealedToken([7; 32]),
            client_id: "web",
            now: clock.now(),
            idle_timeout: Duration::from_secs(60),
            reuse_interval: REUSE,
        },
    )
    .await
    .unwrap();
    assert_eq!(unknown, RotateOutcome::Unknown);

    let live = login(&refresh, "bob", "web").await;
    let dup = RefreshRecord {
        hash: live.record.hash,
        family: "another".into(),
        ..live.record.clone()
    };
    let stamp = refresh.stamp("bob").await.unwrap();
    assert_eq!(
        refresh.store().create(dup, stamp).await.unwrap_err().kind(),
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
        refused(refresh.rotate(live.token.as_str(), "web").await),
        TokenErrorKind::Revoked
    );
    close(db).await;
}

async fn refresh_race_has_exactly_one_winner(opener: Opener<'_>) {
    // Two instances (two pools) racing on the same tokens. Without a reuse interval,
    // every presentation after the first is reuse.
    let (a, b) = tokio::join!(opener.open(), opener.open());
    let instance = |db: &SqlDatabase| {
        RefreshTokens::builder(SqlRefreshStore::new(db.clone()))
            .reuse_interval(Duration::ZERO)
            .build()
    };
    let instances = [instance(&a), instance(&b)];
    for round in 0..opener.rounds() {
        let issued = login(&instances[0], "race", "web").await;
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
            refused(instances[1].rotate(winners[0].token.as_str(), "web").await),
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
    let a = login(&refresh, "dave", "web").await;
    let b = login(&refresh, "dave", "cli").await;
    let other = login(&refresh, "erin", "web").await;
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
    assert_eq!(
        refused(refresh.rotate(a.token.as_str(), "web").await),
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
