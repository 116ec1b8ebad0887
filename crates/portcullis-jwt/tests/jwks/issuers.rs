//! Several issuers, and the unknown-`kid` storm.

use super::*;

// ---------------------------------------------------------------- several issuers

#[tokio::test]
async fn tokens_are_routed_by_iss_among_configured_issuers_only() {
    let (ka, kb, kx) = (Signer::new("a1"), Signer::new("b1"), Signer::new("x1"));
    let a = Provider::start("/a", jwks(&[&ka])).await;
    let b = Provider::start("/b", jwks(&[&kb])).await;
    let stranger = Provider::start("/x", jwks(&[&kx])).await;
    let jwt = authenticator([
        RemoteKeys::discover(a.issuer.clone()).await.unwrap(),
        RemoteKeys::discover(b.issuer.clone()).await.unwrap(),
    ]);
    assert_eq!(
        principal(&jwt, &ka.token(&a.issuer)).await.issuer(),
        Some(&*a.issuer)
    );
    assert_eq!(
        principal(&jwt, &kb.token(&b.issuer)).await.issuer(),
        Some(&*b.issuer)
    );
    // A's key claiming B's issuer: B's keys do not have it (one refetch of B, no more).
    assert_eq!(
        reason(&jwt, &ka.token_for(&b.issuer, "a1")).await,
        "unknown_kid"
    );
    // An unconfigured issuer: refused, and nothing is fetched from anywhere.
    let (ha, hb) = (a.hits(), b.hits());
    assert_eq!(
        reason(&jwt, &kx.token(&stranger.issuer)).await,
        "wrong_issuer"
    );
    assert_eq!((a.hits(), b.hits(), stranger.hits()), (ha, hb, 0));
    assert_eq!(stranger.oidc_hits.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------- the storm

#[tokio::test]
async fn a_thousand_unknown_kids_cause_one_fetch_per_cooldown() {
    let k1 = Signer::new("k1");
    let p = Provider::start("", jwks(&[&k1])).await;
    let keys = p.builder().start().await.unwrap();
    let jwt = authenticator([keys.clone()]);
    assert_eq!(p.hits(), 1);

    let storm = |jwt: &JwtAuthenticator| {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..1000u32 {
            let kid = format!("kid-{:08x}", i.wrapping_mul(2_654_435_761) ^ rand_seed());
            let token = k1.token_for(&p.issuer, &kid);
            let jwt = jwt.clone();
            set.spawn(async move { check(&jwt, &token).await });
        }
        set
    };

    let results = storm(&jwt).join_all().await;
    assert_eq!(results.len(), 1000);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap_err().reason() == "unknown_kid")
    );
    assert_eq!(p.hits(), 2, "1,000 misses shared one fetch");

    // Within the cooldown: refused at once, no fetch, nothing pending.
    assert!(!is_pending(&jwt, &k1.token_for(&p.issuer, "another")));
    storm(&jwt).join_all().await;
    assert_eq!(p.hits(), 2);

    // After it: one more fetch for the next storm.
    skip(Duration::from_secs(31)).await;
    storm(&jwt).join_all().await;
    assert_eq!(p.hits(), 3);
    // Known tokens kept working throughout.
    assert!(check(&jwt, &k1.token(&p.issuer)).await.is_ok());
}

fn rand_seed() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

// ---------------------------------------------------------------- ES512

#[tokio::test]
async fn es512_key_from_a_jwks_without_alg_verifies() {
    use aws_lc_rs::signature::ECDSA_P521_SHA512_FIXED_SIGNING;
    let pair = EcdsaKeyPair::generate(&ECDSA_P521_SHA512_FIXED_SIGNING).unwrap();
    let point = pair.public_key().as_ref();
    let set = json!({"keys": [{
        "kty": "EC", "crv": "P-521", "use": "sig", "kid": "p521",
        "x": B64.encode(&point[1..67]), "y": B64.encode(&point[67..]),
    }]});
    let p = Provider::start("", set.to_string()).await;
    let jwt = authenticator([p.builder().start().await.unwrap()]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |alg: &str| {
        let header = json!({"alg": alg, "kid": "p521"});
        let claims =
            json!({"iss": p.issuer, "aud": AUDIENCE, "sub": "carol", "iat": now, "exp": now + 60});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    };
    assert_eq!(principal(&jwt, &sign("ES512")).await.subject(), "carol");
    assert_eq!(reason(&jwt, &sign("ES384")).await, "alg_mismatch");
}
