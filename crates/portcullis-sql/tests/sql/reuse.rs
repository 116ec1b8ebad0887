//! The reuse interval: a repeat presentation of a used token, shortly after and by
//! the same client, gets the same successor back instead of ending the family.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use super::*;

on_both! {
    a_repeat_within_the_interval_gets_the_same_successor => a_repeat_within_the_interval_gets_the_same_successor;
    a_repeat_at_the_interval_is_reuse => a_repeat_at_the_interval_is_reuse;
    concurrent_rotations_within_the_interval_share_one_successor => concurrent_rotations_within_the_interval_share_one_successor;
}

async fn a_repeat_within_the_interval_gets_the_same_successor(opener: Opener<'_>) {
    let db = opener.open().await;
    let clock = ManualClock::starting_now();
    let refresh = refresh_tokens(db.clone(), &clock);
    let first = login(&refresh, "alice", "web").await;
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();

    clock.advance(REUSE - Duration::from_millis(1));
    let again = refresh.rotate(first.token.as_str(), "web").await.unwrap();
    assert_eq!(again.token.as_str(), second.token.as_str());
    assert_eq!(again.record, stored(&refresh, &second.record.hash).await);
    assert_eq!(
        opener
            .strings("SELECT hash FROM portcullis_refresh_tokens")
            .await
            .len(),
        2,
        "a repeat stores nothing"
    );

    // Another client presenting it is reuse, even within the interval.
    let other = login(&refresh, "bob", "web").await;
    refresh.rotate(other.token.as_str(), "web").await.unwrap();
    assert_eq!(
        refused(refresh.rotate(other.token.as_str(), "cli").await),
        TokenErrorKind::Reused
    );

    // The family is live: the successor rotates. The database holds the successor
    // sealed, never the token itself.
    let third = refresh.rotate(second.token.as_str(), "web").await.unwrap();
    assert_eq!(third.record.family, first.record.family);
    let raw = URL_SAFE_NO_PAD.decode(second.token.as_str()).unwrap();
    let sealed = opener
        .strings("SELECT sealed_successor FROM portcullis_refresh_tokens WHERE used = 1")
        .await;
    assert_eq!(sealed.len(), 3);
    assert!(!sealed.contains(&hex(&raw)));
    close(db).await;
}

async fn a_repeat_at_the_interval_is_reuse(opener: Opener<'_>) {
    let db = opener.open().await;
    let clock = ManualClock::starting_now();
    let refresh = refresh_tokens(db.clone(), &clock);
    let first = login(&refresh, "alice", "web").await;
    let second = refresh.rotate(first.token.as_str(), "web").await.unwrap();

    clock.advance(REUSE);
    assert_eq!(
        refused(refresh.rotate(first.token.as_str(), "web").await),
        TokenErrorKind::Reused
    );
    assert_eq!(
        refused(refresh.rotate(second.token.as_str(), "web").await),
        TokenErrorKind::Revoked
    );
    // Revoked stays revoked, even for a repeat.
    assert_eq!(
        refused(refresh.rotate(first.token.as_str(), "web").await),
        TokenErrorKind::Revoked
    );
    close(db).await;
}

async fn concurrent_rotations_within_the_interval_share_one_successor(opener: Opener<'_>) {
    // Two tabs on two instances refreshing with one token at once.
    let (a, b) = tokio::join!(opener.open(), opener.open());
    let instances = [
        RefreshTokens::new(SqlRefreshStore::new(a.clone())),
        RefreshTokens::new(SqlRefreshStore::new(b.clone())),
    ];
    for round in 0..opener.rounds() {
        let issued = login(&instances[0], "tabs", "web").await;
        let token: Arc<str> = issued.token.as_str().into();
        let tasks: Vec<_> = instances
            .iter()
            .map(|refresh| {
                let refresh = refresh.clone();
                let token = Arc::clone(&token);
                tokio::spawn(async move { refresh.rotate(&token, "web").await })
            })
            .collect();
        let mut successors = Vec::new();
        for task in tasks {
            let next = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            successors.push(next);
        }
        assert_eq!(
            successors[0].token.as_str(),
            successors[1].token.as_str(),
            "round {round}"
        );
        assert_eq!(successors[0].record.hash, successors[1].record.hash);
        instances[1]
            .rotate(successors[0].token.as_str(), "web")
            .await
            .unwrap();
    }
    close(a).await;
    close(b).await;
}
