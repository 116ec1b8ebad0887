//! Single-use reset tokens: one redemption under concurrency, hashed at rest, TTLs.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use portcullis_password::{ResetErrorKind, ResetStore, ResetTokens};

use super::*;

/// The hex SHA-256 of a token for `purpose` (the purpose, length-prefixed, then the
/// raw bytes): what the store may keep.
fn stored_hash(token: &str, purpose: &str) -> String {
    use sha2::{Digest, Sha256};
    let raw = URL_SAFE_NO_PAD.decode(token).unwrap();
    hex(&Sha256::new()
        .chain_update((purpose.len() as u64).to_be_bytes())
        .chain_update(purpose.as_bytes())
        .chain_update(&raw)
        .finalize())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reset_token_is_redeemed_once_under_concurrency() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let instances = [
        ResetTokens::new(RedisResetStore::new(&scope.redis)),
        ResetTokens::new(RedisResetStore::new(&scope.another_instance())),
    ];
    for round in 0..20 {
        let token = instances[0].issue("alice", "password_reset").await.unwrap();
        let token: Arc<str> = token.as_str().into();
        let redeems: Vec<_> = (0..16)
            .map(|i| {
                let resets = instances[i % 2].clone();
                let token = Arc::clone(&token);
                tokio::spawn(async move { resets.redeem(&token, "password_reset").await })
            })
            .collect();
        let mut winners = 0;
        for redeem in redeems {
            match redeem.await.unwrap() {
                Ok(subject) => {
                    assert_eq!(subject, "alice");
                    winners += 1;
                }
                Err(e) => assert_eq!(e.kind(), ResetErrorKind::Invalid, "round {round}"),
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
    // Redeemed tokens leave nothing but the (expiring) index behind.
    assert!(scope.keys().iter().all(|k| k.contains("ot:s:")));
}

#[tokio::test]
async fn a_reset_token_is_stored_hashed_with_its_expiry() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let resets = ResetTokens::new(RedisResetStore::new(&scope.redis))
        .with_lifetime(std::num::NonZeroU32::new(600).unwrap());
    let token = resets.issue("bob", "email_verification").await.unwrap();
    let token_key = format!(
        "{}ot:t:{}",
        scope.prefix,
        stored_hash(token.as_str(), "email_verification")
    );
    let index_key = format!("{}ot:s:bob", scope.prefix);
    let mut keys = scope.keys();
    keys.sort();
    assert_eq!(keys, [index_key.clone(), token_key.clone()]);
    let value: String = redis::cmd("GET")
        .arg(&token_key)
        .query(&mut scope.raw())
        .unwrap();
    assert!(!value.contains(token.as_str()) && !token_key.contains(token.as_str()));
    assert!(value.contains("email_verification"), "{value}");
    for key in [&token_key, &index_key] {
        let ttl = pttl(&scope, key);
        assert!(ttl > 595_000 && ttl <= 601_000, "{key}: {ttl}");
    }
}

#[tokio::test]
async fn a_reset_token_works_only_for_its_purpose_and_before_its_expiry() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let clock = ManualClock::starting_now();
    let resets = ResetTokens::new(RedisResetStore::new(&scope.redis)).with_clock(clock.clone());

    // Another purpose: refused, and the token still serves its own, once.
    let token = resets.issue("carol", "email_verification").await.unwrap();
    let wrong = resets.redeem(token.as_str(), "password_reset").await;
    assert_eq!(wrong.unwrap_err().kind(), ResetErrorKind::Invalid);
    let own = resets.redeem(token.as_str(), "email_verification").await;
    assert_eq!(own.unwrap(), "carol");
    let spent = resets.redeem(token.as_str(), "email_verification").await;
    assert_eq!(spent.unwrap_err().kind(), ResetErrorKind::Invalid);

    // Expired by the application's clock (Redis still holds it): refused.
    let token = resets.issue("carol", "password_reset").await.unwrap();
    clock.advance(portcullis_password::DEFAULT_RESET_LIFETIME);
    let late = resets.redeem(token.as_str(), "password_reset").await;
    assert_eq!(late.unwrap_err().kind(), ResetErrorKind::Expired);

    // A token already expired when stored never reaches Redis's memory for long.
    let past = ResetTokens::new(RedisResetStore::new(&scope.redis)).with_clock(ManualClock::new(
        SystemTime::now() - Duration::from_secs(3600),
    ));
    let dead = past.issue("dan", "password_reset").await.unwrap();
    assert!(
        !scope
            .keys()
            .iter()
            .any(|k| k.ends_with(&stored_hash(dead.as_str(), "password_reset")))
    );
}

#[tokio::test]
async fn remove_subject_ends_every_outstanding_token_of_the_subject() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let store = RedisResetStore::new(&scope.redis);
    let resets = ResetTokens::new(store.clone());
    let a = resets.issue("erin", "password_reset").await.unwrap();
    let b = resets.issue("erin", "email_verification").await.unwrap();
    let used = resets.issue("erin", "password_reset").await.unwrap();
    let other = resets.issue("frank", "password_reset").await.unwrap();
    resets
        .redeem(used.as_str(), "password_reset")
        .await
        .unwrap();
    assert_eq!(resets.revoke_subject("erin").await.unwrap(), 2);
    for (token, purpose) in [(&a, "password_reset"), (&b, "email_verification")] {
        let gone = resets.redeem(token.as_str(), purpose).await;
        assert_eq!(gone.unwrap_err().kind(), ResetErrorKind::Invalid);
    }
    assert_eq!(store.remove_subject("erin").await.unwrap(), 0);
    assert_eq!(
        resets
            .redeem(other.as_str(), "password_reset")
            .await
            .unwrap(),
        "frank"
    );
}
