//! One-time tokens (password resets, e-mail verification) through `ResetTokens`.

use std::num::NonZeroU32;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use portcullis_password::{ResetErrorKind, ResetTokens};
use portcullis_sql::SqlResetStore;
use sha2::{Digest, Sha256};

use super::*;

on_both! {
    a_one_time_token_works_once_under_concurrency => a_one_time_token_works_once_under_concurrency;
    one_time_tokens_keep_purpose_expiry_and_only_a_hash => one_time_tokens_keep_purpose_expiry_and_only_a_hash;
}

const RESET: &str = "password_reset";

async fn a_one_time_token_works_once_under_concurrency(opener: Opener<'_>) {
    let (a, b) = tokio::join!(opener.open(), opener.open());
    let instances = [
        ResetTokens::new(SqlResetStore::new(a.clone())),
        ResetTokens::new(SqlResetStore::new(b.clone())),
    ];
    for round in 0..opener.rounds() {
        let token: Arc<str> = instances[0]
            .issue("alice", RESET)
            .await
            .unwrap()
            .as_str()
            .into();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let resets = instances[i % 2].clone();
                let token = Arc::clone(&token);
                tokio::spawn(async move { resets.redeem(&token, RESET).await })
            })
            .collect();
        let mut redeemed = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(subject) => {
                    assert_eq!(subject, "alice");
                    redeemed += 1;
                }
                Err(e) => assert_eq!(e.kind(), ResetErrorKind::Invalid, "round {round}"),
            }
        }
        assert_eq!(redeemed, 1, "round {round}");
    }
    close(a).await;
    close(b).await;
}

async fn one_time_tokens_keep_purpose_expiry_and_only_a_hash(opener: Opener<'_>) {
    let db = opener.open().await;
    let clock = ManualClock::starting_now();
    let resets = ResetTokens::new(SqlResetStore::new(db.clone()))
        .with_lifetime(NonZeroU32::new(600).unwrap())
        .with_clock(clock.clone());

    // Only the SHA-256 of the token is stored.
    let token = resets.issue("alice", RESET).await.unwrap();
    let raw = URL_SAFE_NO_PAD.decode(token.as_str()).unwrap();
    let stored = opener
        .strings("SELECT hash FROM portcullis_one_time_tokens")
        .await;
    // The hash covers the purpose (length-prefixed) and the raw bytes.
    let bound = Sha256::new()
        .chain_update((RESET.len() as u64).to_be_bytes())
        .chain_update(RESET.as_bytes())
        .chain_update(&raw)
        .finalize();
    assert_eq!(stored, [hex(&bound)]);
    assert_ne!(stored[0], token.as_str());
    assert_ne!(stored[0], hex(&raw));

    // Another purpose is refused, and the token stays usable for its own, once.
    assert_eq!(
        resets
            .redeem(token.as_str(), "email_verification")
            .await
            .unwrap_err()
            .kind(),
        ResetErrorKind::Invalid
    );
    assert_eq!(resets.redeem(token.as_str(), RESET).await.unwrap(), "alice");
    assert_eq!(
        resets
            .redeem(token.as_str(), RESET)
            .await
            .unwrap_err()
            .kind(),
        ResetErrorKind::Invalid
    );

    // Expired: refused at the lifetime, not a moment before.
    let late = resets.issue("alice", RESET).await.unwrap();
    let in_time = resets.issue("alice", RESET).await.unwrap();
    clock.advance(Duration::from_secs(599));
    assert_eq!(
        resets.redeem(in_time.as_str(), RESET).await.unwrap(),
        "alice"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        resets
            .redeem(late.as_str(), RESET)
            .await
            .unwrap_err()
            .kind(),
        ResetErrorKind::Expired
    );

    // A successful reset invalidates the subject's other links, not others'.
    let one = resets.issue("bob", RESET).await.unwrap();
    let two = resets.issue("bob", "email_verification").await.unwrap();
    let carol = resets.issue("carol", RESET).await.unwrap();
    assert_eq!(resets.revoke_subject("bob").await.unwrap(), 2);
    assert_eq!(
        resets.redeem(one.as_str(), RESET).await.unwrap_err().kind(),
        ResetErrorKind::Invalid
    );
    assert_eq!(
        resets
            .redeem(two.as_str(), "email_verification")
            .await
            .unwrap_err()
            .kind(),
        ResetErrorKind::Invalid
    );
    assert_eq!(resets.redeem(carol.as_str(), RESET).await.unwrap(), "carol");
    close(db).await;
}
