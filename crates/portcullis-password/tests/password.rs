//! Hashing, rehash detection, dummy verify, policy and reset tokens.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use portcullis_password::{
    HashErrorKind, HashParams, MemoryResetStore, Password, PasswordHasher, PasswordPolicy,
    PolicyRule, ResetErrorKind, ResetTokens, Verification,
};

const FAST: HashParams = HashParams {
    memory_kib: 256,
    iterations: 1,
    parallelism: 1,
};

fn hasher(params: HashParams) -> PasswordHasher {
    PasswordHasher::builder().params(params).build().unwrap()
}

/// What `hasher` says of `password` against `hash`; panics on an error.
async fn verify(hasher: &PasswordHasher, password: impl Into<String>, hash: &str) -> Verification {
    hasher.verify(&Password::new(password), hash).await.unwrap()
}

#[tokio::test]
async fn default_parameters_are_owasp_argon2id() {
    let hasher = PasswordHasher::new().unwrap();
    assert_eq!(
        hasher.params(),
        HashParams {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1
        }
    );
    let hash = hasher
        .hash(&Password::new("correct horse battery staple"))
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_eq!(
        verify(&hasher, "correct horse battery staple", &hash).await,
        Verification::Valid {
            needs_rehash: false
        }
    );
}

#[tokio::test]
async fn each_hash_has_its_own_salt() {
    let hasher = hasher(FAST);
    let password = Password::new("same password twice");
    let a = hasher.hash(&password).await.unwrap();
    let b = hasher.hash(&password).await.unwrap();
    assert_ne!(a, b);
    let salt = |h: &str| h.split('$').nth(4).unwrap().to_owned();
    assert_ne!(salt(&a), salt(&b));
    // 16 bytes of salt: 22 base64 characters.
    assert_eq!(salt(&a).len(), 22);
    assert!(hasher.verify(&password, &a).await.unwrap().is_valid());
    assert!(hasher.verify(&password, &b).await.unwrap().is_valid());
}

#[tokio::test]
async fn wrong_password_is_invalid() {
    let hasher = hasher(FAST);
    let hash = hasher.hash(&Password::new("the right one")).await.unwrap();
    assert_eq!(
        verify(&hasher, "the wrong one", &hash).await,
        Verification::Invalid
    );
}

#[tokio::test]
async fn no_truncation_a_difference_at_the_end_of_a_long_password_counts() {
    let hasher = hasher(FAST);
    let long = "x".repeat(200);
    let hash = hasher
        .hash(&Password::new(format!("{long}a")))
        .await
        .unwrap();
    assert!(!verify(&hasher, format!("{long}b"), &hash).await.is_valid());
    assert!(verify(&hasher, format!("{long}a"), &hash).await.is_valid());
}

#[tokio::test]
async fn rehash_is_reported_when_parameters_changed() {
    let weak = hasher(FAST);
    let stronger = hasher(HashParams {
        memory_kib: 512,
        iterations: 2,
        parallelism: 1,
    });
    let password = Password::new("correct horse battery staple");
    let old_hash = weak.hash(&password).await.unwrap();
    assert_eq!(
        stronger.verify(&password, &old_hash).await.unwrap(),
        Verification::Valid { needs_rehash: true }
    );
    // Wrong password against an old hash: invalid, never "rehash".
    assert_eq!(
        verify(&stronger, "nope", &old_hash).await,
        Verification::Invalid
    );
    let new_hash = stronger.hash(&password).await.unwrap();
    assert_eq!(
        stronger.verify(&password, &new_hash).await.unwrap(),
        Verification::Valid {
            needs_rehash: false
        }
    );
}

#[tokio::test]
async fn argon2i_hash_verifies_but_needs_rehash() {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, Version};
    let params = Params::new(FAST.memory_kib, FAST.iterations, 1, Some(32)).unwrap();
    let legacy = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
        .hash_password_with_salt(b"legacy password", b"0123456789abcdef")
        .unwrap()
        .to_string();
    assert!(legacy.starts_with("$argon2i$"));
    let hasher = hasher(FAST);
    assert_eq!(
        verify(&hasher, "legacy password", &legacy).await,
        Verification::Valid { needs_rehash: true }
    );
}

#[tokio::test]
async fn pepper_is_required_to_verify() {
    let peppered = PasswordHasher::builder()
        .params(FAST)
        .pepper(b"server-side secret pepper".to_vec())
        .build()
        .unwrap();
    let plain = hasher(FAST);
    let password = Password::new("correct horse battery staple");
    let hash = peppered.hash(&password).await.unwrap();
    assert!(peppered.verify(&password, &hash).await.unwrap().is_valid());
    assert!(!plain.verify(&password, &hash).await.unwrap().is_valid());
    assert!(!format!("{peppered:?}").contains("pepper\""));
    assert!(!format!("{peppered:?}").contains("server-side"));
}

#[tokio::test]
async fn nfkc_makes_equivalent_spellings_match() {
    let hasher = hasher(FAST);
    let composed = "caf\u{e9} au lait";
    let decomposed = "cafe\u{301} au lait";
    let hash = hasher.hash(&Password::new(composed)).await.unwrap();
    assert!(verify(&hasher, decomposed, &hash).await.is_valid());
}

#[tokio::test]
async fn oversized_input_is_refused_before_hashing() {
    let hasher = hasher(FAST);
    let huge = Password::new("a".repeat(1025));
    assert_eq!(
        hasher.hash(&huge).await.unwrap_err().kind(),
        HashErrorKind::InputTooLarge
    );
    let hash = hasher.hash(&Password::new("fine")).await.unwrap();
    assert_eq!(
        hasher.verify(&huge, &hash).await.unwrap_err().kind(),
        HashErrorKind::InputTooLarge
    );
    assert_eq!(
        hasher.verify_dummy(&huge).await.unwrap_err().kind(),
        HashErrorKind::InputTooLarge
    );
    // Exactly 1 KiB is fine.
    assert!(hasher.hash(&Password::new("a".repeat(1024))).await.is_ok());
}

#[tokio::test]
async fn malformed_stored_hash_is_a_typed_error() {
    let hasher = hasher(FAST);
    for bad in [
        "",
        "plaintext",
        "$argon2id$v=19$m=x$y$z",
        "$2b$12$abcdefghijklmnopqrstuv",
    ] {
        assert_eq!(
            hasher
                .verify(&Password::new("pw"), bad)
                .await
                .unwrap_err()
                .kind(),
            HashErrorKind::MalformedHash,
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn dummy_verify_is_always_false() {
    let hasher = hasher(FAST);
    for pw in ["", "password", "correct horse battery staple"] {
        assert!(!hasher.verify_dummy(&Password::new(pw)).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_hashes_complete_with_one_permit() {
    let hasher = PasswordHasher::builder()
        .params(FAST)
        .max_concurrency(NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                let pw = Password::new(format!("password number {i}"));
                let hash = hasher.hash(&pw).await.unwrap();
                hasher.verify(&pw, &hash).await.unwrap().is_valid()
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap());
    }
}

#[test]
fn debug_never_shows_the_password() {
    let pw = Password::new("hunter2-but-longer");
    assert!(!format!("{pw:?}").contains("hunter2"));
}

// ---- policy ----

#[test]
fn policy_length_rules() {
    let policy = PasswordPolicy::new();
    assert_eq!(policy.check("").unwrap_err().rule(), PolicyRule::TooShort);
    let short = policy.check("zq7#mK2").unwrap_err();
    assert_eq!((short.rule(), short.limit()), (PolicyRule::TooShort, 8));
    assert_eq!(short.rule().as_str(), "too_short");
    assert!(policy.check("zq7#mK2!").is_ok(), "8 characters");
    assert!(
        policy.check(&"kx".repeat(32)).is_ok(),
        "64 characters allowed"
    );
    assert!(
        policy.check(&"kx".repeat(64)).is_ok(),
        "128 characters allowed"
    );
    let long = policy.check(&"k".repeat(129)).unwrap_err();
    assert_eq!((long.rule(), long.limit()), (PolicyRule::TooLong, 128));
    assert_eq!(
        policy.check(&"k".repeat(1025)).unwrap_err().rule(),
        PolicyRule::InputTooLarge
    );
}

#[test]
fn no_composition_rules_by_default() {
    let policy = PasswordPolicy::new();
    assert!(policy.check("alllowercaseletters").is_ok());
    assert!(policy.check("9384756102938").is_ok());
}

#[test]
fn unicode_counts_code_points_after_nfkc() {
    let policy = PasswordPolicy::new();
    // Eight code points once composed, nine bytes-wise-or-decomposed.
    assert!(policy.check("cafe\u{301}bar!").is_ok());
    assert_eq!(
        policy.check("caf\u{e9}bar").unwrap_err().rule(),
        PolicyRule::TooShort,
        "7 code points"
    );
    // Emoji and scripts are fine.
    assert!(policy.check("пароль-для-входа").is_ok());
    assert!(policy.check("🔒🔑🚪🏰🐉🗝️🛡️⚔️").is_ok());
}

#[test]
fn common_passwords_are_refused_ignoring_case_and_width() {
    let policy = PasswordPolicy::new();
    for common in [
        "password",
        "Password",
        "PASSWORD1",
        "iloveyou",
        "12345678",
        "qwertyuiop",
        "ｐａｓｓｗｏｒｄ",
    ] {
        let err = policy.check(common).unwrap_err();
        assert_eq!(err.rule(), PolicyRule::Common, "{common}");
        assert_eq!(err.to_string(), "password is too common");
    }
    assert!(
        PasswordPolicy::new()
            .without_blocklist()
            .check("password")
            .is_ok()
    );
}

#[test]
fn context_words_are_refused() {
    let policy = PasswordPolicy::new();
    let err = policy
        .check_with_context("Alice@Example.com", &["alice@example.com", "acme"])
        .unwrap_err();
    assert_eq!(err.rule(), PolicyRule::ContextSpecific);
    assert!(
        policy
            .check_with_context("a different secret", &["alice@example.com"])
            .is_ok()
    );
}

#[test]
fn policy_configuration_bounds() {
    assert!(PasswordPolicy::new().min_chars(7).is_err());
    assert!(PasswordPolicy::new().max_chars(63).is_err());
    assert!(PasswordPolicy::new().max_chars(1025).is_err());
    let strict = PasswordPolicy::new().min_chars(15).unwrap();
    let err = strict.check("zq7#mK2!abc").unwrap_err();
    assert_eq!((err.rule(), err.limit()), (PolicyRule::TooShort, 15));
    assert!(strict.check("correct horse battery staple").is_ok());
}

// ---- reset tokens ----

#[derive(Clone)]
struct TestClock(Arc<Mutex<SystemTime>>);

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

fn resets() -> (ResetTokens<MemoryResetStore>, TestClock) {
    let clock = TestClock(Arc::new(Mutex::new(SystemTime::now())));
    let c = clock.clone();
    let tokens = ResetTokens::new(MemoryResetStore::new()).with_clock(move || *c.0.lock().unwrap());
    (tokens, clock)
}

/// Why `resets` refuses `token` for a password reset; panics if it redeems it.
async fn refusal(resets: &ResetTokens<MemoryResetStore>, token: &str) -> ResetErrorKind {
    resets
        .redeem(token, "password_reset")
        .await
        .unwrap_err()
        .kind()
}

#[tokio::test]
async fn reset_token_is_single_use_and_hashed_at_rest() {
    let (resets, _) = resets();
    let token = resets.issue("alice", "password_reset").await.unwrap();
    assert_eq!(token.as_str().len(), 43);
    assert!(!format!("{token:?}").contains(token.as_str()));
    assert_eq!(resets.store().len(), 1);
    assert_eq!(
        resets
            .redeem(token.as_str(), "password_reset")
            .await
            .unwrap(),
        "alice"
    );
    assert_eq!(
        refusal(&resets, token.as_str()).await,
        ResetErrorKind::Invalid
    );
    assert!(resets.store().is_empty());
}

#[tokio::test]
async fn reset_token_expires_after_30_minutes() {
    let (resets, clock) = resets();
    let early = resets.issue("alice", "password_reset").await.unwrap();
    let late = resets.issue("alice", "password_reset").await.unwrap();
    clock.advance(Duration::from_secs(29 * 60));
    assert!(
        resets
            .redeem(early.as_str(), "password_reset")
            .await
            .is_ok()
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        refusal(&resets, late.as_str()).await,
        ResetErrorKind::Expired
    );
}

#[tokio::test]
async fn reset_token_only_serves_its_purpose_and_malformed_is_refused() {
    let (resets, _) = resets();
    let token = resets.issue("alice", "email_verification").await.unwrap();
    assert_eq!(
        refusal(&resets, token.as_str()).await,
        ResetErrorKind::Invalid
    );
    // Presenting it for another purpose did not spend it.
    assert_eq!(
        resets
            .redeem(token.as_str(), "email_verification")
            .await
            .unwrap(),
        "alice"
    );
    for bad in ["", "short", &"A".repeat(44), &"*".repeat(43)] {
        assert_eq!(refusal(&resets, bad).await, ResetErrorKind::Malformed);
    }
}

#[tokio::test]
async fn revoking_a_subject_kills_outstanding_links() {
    let (resets, _) = resets();
    let a = resets.issue("alice", "password_reset").await.unwrap();
    let b = resets.issue("bob", "password_reset").await.unwrap();
    assert_eq!(resets.revoke_subject("alice").await.unwrap(), 1);
    assert!(resets.redeem(a.as_str(), "password_reset").await.is_err());
    assert!(resets.redeem(b.as_str(), "password_reset").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redeems_have_one_winner() {
    let (resets, _) = resets();
    for _ in 0..50 {
        let token = resets.issue("alice", "password_reset").await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let resets = resets.clone();
                let token = token.as_str().to_owned();
                tokio::spawn(async move { resets.redeem(&token, "password_reset").await.is_ok() })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1);
    }
}
