//! Access-token revocation: denylisted `jti`s and per-subject cut-offs.

use super::*;

fn revoked(result: Result<(), portcullis_core::AuthError>) -> bool {
    match result {
        Ok(()) => false,
        Err(e) => {
            assert_eq!(e.kind(), AuthErrorKind::InvalidToken, "{e:?}");
            true
        }
    }
}

#[tokio::test]
async fn revocation_denies_a_jti_until_its_exp() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let revocation = RedisRevocation::new(&scope.redis);
    let query = |jti, iss| RevocationQuery {
        issuer: iss,
        subject: "alice",
        token_id: Some(jti),
        issued_at: Some(SystemTime::now()),
    };
    assert!(!revoked(
        revocation.check(&query("a", Some("https://iss"))).await
    ));
    revocation
        .revoke_token(RevokedToken {
            issuer: Some("https://iss"),
            token_id: "a",
            subject: "alice",
            expires_at: SystemTime::now() + Duration::from_secs(60),
        })
        .await
        .unwrap();
    assert!(revoked(
        revocation.check(&query("a", Some("https://iss"))).await
    ));
    assert!(revoked(revocation.check(&query("a", None)).await));
    assert!(!revoked(
        revocation.check(&query("a", Some("https://other"))).await
    ));
    assert!(!revoked(
        revocation.check(&query("b", Some("https://iss"))).await
    ));
    // As verifiers call it: a pending check.
    let MaybeReady::Pending(check) = revocation.check(&query("a", Some("https://iss"))) else {
        panic!("a Redis check must pend");
    };
    assert!(revoked(check.await));
    // The entry dies with the token.
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{}rev:jti:a", scope.prefix))
        .query(&mut scope.raw())
        .unwrap();
    assert!(pttl > 55_000 && pttl <= 60_000, "pttl {pttl}");
    // An expired token is not stored at all.
    revocation
        .revoke_token(RevokedToken {
            issuer: None,
            token_id: "old",
            subject: "alice",
            expires_at: SystemTime::now() - Duration::from_secs(1),
        })
        .await
        .unwrap();
    assert!(!revoked(revocation.check(&query("old", None)).await));
}

#[tokio::test]
async fn revocation_subject_cutoff_refuses_older_tokens_only() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let revocation = RedisRevocation::new(&scope.redis);
    let other_instance = RedisRevocation::new(&scope.another_instance());
    let t0 = SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
    revocation
        .revoke_subject("alice", t0 + Duration::from_millis(500))
        .await
        .unwrap();
    let q = |sub, iat| RevocationQuery {
        issuer: None,
        subject: sub,
        token_id: Some("x"),
        issued_at: iat,
    };
    for r in [&revocation, &other_instance] {
        assert!(revoked(
            r.check(&q("alice", Some(t0 - Duration::from_secs(10))))
                .await
        ));
        assert!(revoked(r.check(&q("alice", Some(t0))).await));
        assert!(!revoked(
            r.check(&q("alice", Some(t0 + Duration::from_secs(1))))
                .await
        ));
        assert!(!revoked(
            r.check(&q("bob", Some(t0 - Duration::from_secs(10)))).await
        ));
        assert!(revoked(r.check(&q("alice", None)).await));
        assert!(!revoked(r.check(&q("bob", None)).await));
    }
    // A cut-off never moves back.
    revocation
        .revoke_subject("alice", t0 - Duration::from_secs(100))
        .await
        .unwrap();
    assert!(revoked(revocation.check(&q("alice", Some(t0))).await));
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{}rev:sub:alice", scope.prefix))
        .query(&mut scope.raw())
        .unwrap();
    assert!(pttl > 86_000_000 && pttl <= 86_701_000, "pttl {pttl}");
}

/// `TokenService::logout_everywhere` on the Redis stores: the families end with the
/// stamp, the access tokens with the cut-off, and a login under way gets nothing.
#[tokio::test]
async fn logout_everywhere_ends_refresh_families_and_access_tokens() {
    use portcullis_tokens::{Grant, SigningAlgorithm, SigningKey, TokenIssuer, TokenService};

    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let issuer = TokenIssuer::builder(
        "https://auth.example",
        "api",
        SigningKey::generate(SigningAlgorithm::EdDsa).unwrap(),
    )
    .build();
    let revocation = RedisRevocation::new(&scope.redis);
    let service = TokenService::new(
        issuer,
        RefreshTokens::new(RedisRefreshStore::new(&scope.redis)),
        revocation.clone(),
    );
    let grant = Grant::new("alice", "web");
    let check = |access: &portcullis_tokens::AccessToken| {
        let query = RevocationQuery {
            issuer: Some("https://auth.example"),
            subject: "alice",
            token_id: Some(access.jti()),
            issued_at: Some(access.issued_at()),
        };
        revocation.check(&query)
    };

    let stamp = service.session_stamp("alice").await.unwrap();
    let pair = service.login(&grant, stamp).await.unwrap();
    check(&pair.access).await.unwrap();
    service.logout_everywhere("alice").await.unwrap();

    assert!(revoked(check(&pair.access).await));
    let refresh = service
        .refresh(pair.refresh.token.as_str(), "web", |s| Grant::new(s, "web"))
        .await;
    assert_eq!(refused(refresh), TokenErrorKind::Revoked);
    // A login that read the stamp before the logout: nothing.
    assert_eq!(
        refused(service.login(&grant, stamp).await),
        TokenErrorKind::SessionsEnded
    );
    // A login after it works, access token included.
    let stamp = service.session_stamp("alice").await.unwrap();
    let fresh = service.login(&grant, stamp).await.unwrap();
    check(&fresh.access).await.unwrap();
    // The cut-off outlives every access token (a day) and then goes.
    let ttl = pttl(&scope, &format!("{}rev:sub:alice", scope.prefix));
    assert!(ttl > 86_000_000 && ttl <= 86_701_000, "{ttl}");
}

#[tokio::test]
async fn revocation_is_keyed_by_issuer_and_subject() {
    let Some(url) = redis_url() else { return };
    let scope = Scoped::new(&url);
    let revocation = RedisRevocation::new(&scope.redis);
    let now = SystemTime::now();
    let query = |iss, jti| RevocationQuery {
        issuer: Some(iss),
        subject: "alice",
        token_id: Some(jti),
        issued_at: Some(now - Duration::from_secs(5)),
    };
    // The same subject name at two issuers: cut off independently.
    revocation
        .revoke_issuer_subject("https://a", "alice", now)
        .await
        .unwrap();
    assert!(revoked(revocation.check(&query("https://a", "t")).await));
    assert!(!revoked(revocation.check(&query("https://b", "t")).await));
    revocation
        .revoke_issuer_subject("https://b", "alice", now)
        .await
        .unwrap();
    assert!(revoked(revocation.check(&query("https://b", "t")).await));

    // The same jti at two issuers: the second revocation does not replace the first.
    let scope = Scoped::new(&url);
    let revocation = RedisRevocation::new(&scope.redis);
    for iss in ["https://a", "https://b"] {
        revocation
            .revoke_token(RevokedToken {
                issuer: Some(iss),
                token_id: "same",
                subject: "alice",
                expires_at: now + Duration::from_secs(60),
            })
            .await
            .unwrap();
    }
    assert!(revoked(revocation.check(&query("https://a", "same")).await));
    assert!(revoked(revocation.check(&query("https://b", "same")).await));
    assert!(!revoked(
        revocation.check(&query("https://c", "same")).await
    ));
}
