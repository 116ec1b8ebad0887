//! Session stamps: ending a subject's sessions refuses the logins that began before,
//! however the two interleave.

use portcullis_tokens::SessionStamp;

use super::*;

on_both! {
    a_login_with_a_stale_stamp_stores_nothing => a_login_with_a_stale_stamp_stores_nothing;
    ending_sessions_during_logins_leaves_no_live_family => ending_sessions_during_logins_leaves_no_live_family;
}

async fn a_login_with_a_stale_stamp_stores_nothing(opener: Opener<'_>) {
    let db = opener.open().await;
    let clock = ManualClock::starting_now();
    let refresh = refresh_tokens(db.clone(), &clock);
    let store = refresh.store();

    assert_eq!(refresh.stamp("alice").await.unwrap(), SessionStamp(0));
    let before = refresh.stamp("alice").await.unwrap();
    let live = login(&refresh, "alice", "web").await;
    let families = store.end_sessions("alice").await.unwrap();
    assert_eq!(families, std::slice::from_ref(&live.record.family));
    assert_eq!(refresh.stamp("alice").await.unwrap(), SessionStamp(1));
    assert_eq!(
        refused(refresh.rotate(live.token.as_str(), "web").await),
        TokenErrorKind::Revoked
    );

    // A login whose password check began before the sessions ended.
    let late = refresh.issue("alice", "web", before).await.unwrap_err();
    assert_eq!(late.kind(), TokenErrorKind::SessionsEnded);
    let record = RefreshRecord {
        hash: TokenHash::of(b"late login"),
        family: "late-family".into(),
        ..live.record.clone()
    };
    assert_eq!(
        store
            .create(record.clone(), before)
            .await
            .unwrap_err()
            .kind(),
        TokenErrorKind::SessionsEnded
    );
    assert!(store.find(&record.hash).await.unwrap().is_none());
    assert!(!store.revoke_family("late-family").await.unwrap());
    assert_eq!(
        opener
            .strings("SELECT family FROM portcullis_refresh_families")
            .await,
        std::slice::from_ref(&live.record.family),
        "a refused login stores no family"
    );

    // Ending again moves the stamp again; other subjects are untouched.
    store.end_sessions("alice").await.unwrap();
    assert_eq!(refresh.stamp("alice").await.unwrap(), SessionStamp(2));
    assert_eq!(refresh.stamp("bob").await.unwrap(), SessionStamp(0));
    let fresh = login(&refresh, "alice", "web").await;
    refresh.rotate(fresh.token.as_str(), "web").await.unwrap();
    close(db).await;
}

async fn ending_sessions_during_logins_leaves_no_live_family(opener: Opener<'_>) {
    // Logins on one instance, "log out everywhere" on another, at once, again and
    // again. A login that read the stamp before the end either lost (SessionsEnded)
    // or made a family that the end revoked; never a live one.
    let (a, b) = tokio::join!(opener.open(), opener.open());
    let logins = RefreshTokens::new(SqlRefreshStore::new(a.clone()));
    let ender = SqlRefreshStore::new(b.clone());
    let (mut opened, mut refused_logins) = (0, 0);
    for round in 0..opener.rounds() {
        let stamp = logins.stamp("race").await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let logins = logins.clone();
            tasks.push(tokio::spawn(async move {
                logins.issue("race", "web", stamp).await
            }));
        }
        let end = {
            let ender = ender.clone();
            tokio::spawn(async move { ender.end_sessions("race").await })
        };
        for _ in 0..3 {
            let logins = logins.clone();
            tasks.push(tokio::spawn(async move {
                logins.issue("race", "web", stamp).await
            }));
        }
        end.await.unwrap().unwrap();
        for task in tasks {
            match task.await.unwrap() {
                Ok(issued) => {
                    opened += 1;
                    assert_eq!(
                        refused(logins.rotate(issued.token.as_str(), "web").await),
                        TokenErrorKind::Revoked,
                        "round {round}: a family opened with the old stamp is live"
                    );
                }
                Err(e) => {
                    refused_logins += 1;
                    assert_eq!(e.kind(), TokenErrorKind::SessionsEnded, "round {round}");
                }
            }
        }
        assert_eq!(
            logins.stamp("race").await.unwrap(),
            SessionStamp(stamp.0 + 1)
        );
    }
    assert!(
        opened > 0 && refused_logins > 0,
        "the race never went both ways ({opened} opened, {refused_logins} refused)"
    );
    close(a).await;
    close(b).await;
}
