use super::*;
use crate::ManualClock;

fn query<'a>(sub: &'a str, jti: Option<&'a str>, iat: Option<SystemTime>) -> RevocationQuery<'a> {
    RevocationQuery {
        issuer: Some("https://issuer"),
        subject: sub,
        token_id: jti,
        issued_at: iat,
    }
}

fn revoked(r: &MemoryRevocation, q: &RevocationQuery<'_>) -> bool {
    match r.check(q) {
        MaybeReady::Ready(result) => result.is_err(),
        MaybeReady::Pending(_) => panic!("memory revocation never pends"),
    }
}

#[tokio::test]
async fn denylisted_jti_is_refused_and_others_are_not() {
    let clock = ManualClock::starting_now();
    let r = MemoryRevocation::with_clock(clock.clone());
    let exp = clock.now() + Duration::from_secs(60);
    r.revoke_token(RevokedToken {
        issuer: Some("https://issuer"),
        token_id: "a",
        subject: "alice",
        expires_at: exp,
    })
    .await
    .unwrap();
    assert!(revoked(&r, &query("alice", Some("a"), Some(clock.now()))));
    assert!(!revoked(&r, &query("alice", Some("b"), Some(clock.now()))));
    // Same jti from another issuer is another token.
    let other = RevocationQuery {
        issuer: Some("https://other"),
        ..query("alice", Some("a"), None)
    };
    assert!(!revoked(&r, &other));
}

#[tokio::test]
async fn denylist_entries_purge_after_exp() {
    let clock = ManualClock::starting_now();
    let r = MemoryRevocation::with_clock(clock.clone());
    let exp = clock.now() + Duration::from_secs(60);
    r.revoke_token(RevokedToken {
        issuer: None,
        token_id: "a",
        subject: "alice",
        expires_at: exp,
    })
    .await
    .unwrap();
    assert_eq!(r.len(), (1, 0));
    clock.advance(Duration::from_secs(61));
    r.purge_expired();
    assert_eq!(r.len(), (0, 0));
    assert!(r.is_empty());
    // An already expired token is not even stored.
    r.revoke_token(RevokedToken {
        issuer: None,
        token_id: "b",
        subject: "alice",
        expires_at: exp,
    })
    .await
    .unwrap();
    assert!(r.is_empty());
}

#[tokio::test]
async fn subject_cutoff_refuses_older_and_same_second_tokens_only() {
    let clock = ManualClock::starting_now();
    let r = MemoryRevocation::with_clock(clock.clone());
    let t0 = clock.now();
    r.revoke_subject("alice", t0 + Duration::from_millis(500))
        .await
        .unwrap();
    assert!(revoked(
        &r,
        &query("alice", Some("x"), Some(t0 - Duration::from_secs(10)))
    ));
    assert!(revoked(&r, &query("alice", Some("x"), Some(t0))));
    assert!(!revoked(
        &r,
        &query("alice", Some("x"), Some(t0 + Duration::from_secs(1)))
    ));
    assert!(!revoked(
        &r,
        &query("bob", Some("x"), Some(t0 - Duration::from_secs(10)))
    ));
    // No iat for a subject with a cut-off: refused. Without a cut-off: fine.
    assert!(revoked(&r, &query("alice", Some("x"), None)));
    assert!(!revoked(&r, &query("bob", Some("x"), None)));
}

#[tokio::test]
async fn same_subject_at_two_issuers_is_cut_off_independently() {
    let clock = ManualClock::starting_now();
    let r = MemoryRevocation::with_clock(clock.clone());
    let at = |issuer| RevocationQuery {
        issuer: Some(issuer),
        subject: "alice",
        token_id: Some("t"),
        issued_at: Some(clock.now()),
    };
    r.revoke_issuer_subject("https://a", "alice", clock.now())
        .await
        .unwrap();
    assert!(revoked(&r, &at("https://a")));
    assert!(!revoked(&r, &at("https://b")));
    r.revoke_issuer_subject("https://b", "alice", clock.now())
        .await
        .unwrap();
    assert!(revoked(&r, &at("https://b")));
    assert_eq!(r.len(), (0, 2));
    // Without an issuer, a cut-off holds at every issuer.
    let r = MemoryRevocation::with_clock(clock.clone());
    r.revoke_subject("alice", clock.now()).await.unwrap();
    assert!(revoked(&r, &at("https://a")) && revoked(&r, &at("https://b")));
}

#[tokio::test]
async fn same_jti_at_two_issuers_is_denied_independently() {
    let clock = ManualClock::starting_now();
    let r = MemoryRevocation::with_clock(clock.clone());
    let exp = clock.now() + Duration::from_secs(60);
    for issuer in ["https://a", "https://b"] {
        r.revoke_token(RevokedToken {
            issuer: Some(issuer),
            token_id: "same",
            subject: "alice",
            expires_at: exp,
        })
        .await
        .unwrap();
    }
    // Regression: the second revocation used to replace the first.
    let q = |issuer| RevocationQuery {
        issuer: Some(issuer),
        subject: "alice",
        token_id: Some("same"),
        issued_at: None,
    };
    assert!(revoked(&r, &q("https://a")) && revoked(&r, &q("https://b")));
    assert!(!revoked(&r, &q("https://c")));
    assert_eq!(r.len(), (2, 0));
}

#[tokio::test]
async fn full_denylist_escalates_to_subject_cutoff() {
    let clock = ManualClock::starting_now();
    let r = MemoryRevocation::with_clock(clock.clone()).max_denylist(2);
    let exp = clock.now() + Duration::from_secs(600);
    for jti in ["a", "b", "c"] {
        r.revoke_token(RevokedToken {
            issuer: None,
            token_id: jti,
            subject: "alice",
            expires_at: exp,
        })
        .await
        .unwrap();
    }
    assert_eq!(r.len(), (2, 1));
    // "c" did not fit but is refused through alice's cut-off.
    assert!(revoked(&r, &query("alice", Some("c"), Some(clock.now()))));
}
