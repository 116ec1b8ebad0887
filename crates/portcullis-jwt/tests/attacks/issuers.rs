//! Several trusted issuers: each token is verified with its own issuer's keys and
//! rules only.

use std::time::Duration;

use portcullis_core::{ClaimMapping, MaybeReady};
use portcullis_jwt::{ConfigErrorKind, Issuer, JwtAuthenticator};

use super::*;

const B: &str = "https://b.example";
const C: &str = "https://c.example";
const KB: [u8; 32] = [0xb; 32];
const KC: [u8; 32] = [0xc; 32];

fn signed(secret: &[u8], header: &str, claims: &serde_json::Value) -> String {
    sign_raw(
        header,
        &claims.to_string(),
        jsonwebtoken::Algorithm::HS256,
        &EncodingKey::from_secret(secret),
    )
}

fn claims_of(iss: &str) -> serde_json::Value {
    let mut c = claims();
    c["iss"] = json!(iss);
    c
}

fn two_issuers() -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .trust(Issuer::new(B).key(Key::hmac(Algorithm::HS256, KB).unwrap()))
        .trust(Issuer::new(C).key(Key::hmac(Algorithm::HS256, KC).unwrap()))
        .audience(AUDIENCE)
        .clock(fixed_now)
        .build()
        .unwrap()
}

#[test]
fn key_of_b_never_verifies_a_token_claiming_c() {
    // Regression: with static keys kB and kC and issuers B and C, a token signed with
    // kB that claimed `iss = C` was accepted.
    let jwt = two_issuers();
    let header = r#"{"alg":"HS256"}"#;
    assert_eq!(reason(&jwt, &signed(&KB, header, &claims_of(B))), "ok");
    assert_eq!(reason(&jwt, &signed(&KC, header, &claims_of(C))), "ok");
    assert_eq!(
        reason(&jwt, &signed(&KB, header, &claims_of(C))),
        "bad_signature"
    );
    assert_eq!(
        reason(&jwt, &signed(&KC, header, &claims_of(B))),
        "bad_signature"
    );
    // With kids too: C's set does not know B's kid.
    let jwt = JwtAuthenticator::builder()
        .trust(
            Issuer::new(B).key(
                Key::hmac(Algorithm::HS256, KB)
                    .unwrap()
                    .with_kid("b")
                    .unwrap(),
            ),
        )
        .trust(
            Issuer::new(C).key(
                Key::hmac(Algorithm::HS256, KC)
                    .unwrap()
                    .with_kid("c")
                    .unwrap(),
            ),
        )
        .audience(AUDIENCE)
        .clock(fixed_now)
        .build()
        .unwrap();
    let with_kid = r#"{"alg":"HS256","kid":"b"}"#;
    assert_eq!(reason(&jwt, &signed(&KB, with_kid, &claims_of(B))), "ok");
    assert_eq!(
        reason(&jwt, &signed(&KB, with_kid, &claims_of(C))),
        "unknown_kid"
    );
    assert_eq!(
        reason(&jwt, &signed(&KB, header, &claims_of("https://x.example"))),
        "wrong_issuer"
    );
}

#[test]
fn shared_static_keys_across_issuers_are_a_build_error() {
    let err = JwtAuthenticator::builder()
        .issuer(B)
        .issuer(C)
        .key(Key::hmac(Algorithm::HS256, KB).unwrap())
        .key(
            Key::hmac(Algorithm::HS256, KC)
                .unwrap()
                .with_kid("c")
                .unwrap(),
        )
        .audience(AUDIENCE)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::AmbiguousKeys);
    let err = JwtAuthenticator::builder()
        .trust(Issuer::new(B).key(Key::hmac(Algorithm::HS256, KB).unwrap()))
        .trust(Issuer::new(B).key(Key::hmac(Algorithm::HS256, KC).unwrap()))
        .audience(AUDIENCE)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::DuplicateIssuer);
    let err = JwtAuthenticator::builder()
        .trust(Issuer::new(B))
        .audience(AUDIENCE)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::NoKeys);
}

#[test]
fn each_issuer_has_its_own_audience_typ_leeway_algorithms_and_mapping() {
    let jwt = JwtAuthenticator::builder()
        .trust(
            Issuer::new(B)
                .key(Key::hmac(Algorithm::HS256, KB).unwrap())
                .claim_mapping(ClaimMapping::keycloak())
                .leeway(Duration::ZERO),
        )
        .trust(
            Issuer::new(C)
                .key(Key::hmac(Algorithm::HS256, KC).unwrap())
                .audience("c-api")
                .require_access_token_typ()
                .algorithms([Algorithm::HS512]),
        )
        .audience(AUDIENCE)
        .clock(fixed_now)
        .build()
        .unwrap();
    // B: the builder's audience; Keycloak roles; no leeway.
    let mut c = claims_of(B);
    c["realm_access"] = json!({"roles": ["staff"]});
    let token = signed(&KB, r#"{"alg":"HS256"}"#, &c);
    let MaybeReady::Ready(Ok(Some(p))) = jwt.verify(&token) else {
        panic!("B's token verifies")
    };
    assert!(p.has_role("staff") && p.has_role("admin"));
    c["exp"] = json!(NOW - 1);
    assert_eq!(
        reason(&jwt, &signed(&KB, r#"{"alg":"HS256"}"#, &c)),
        "token_expired"
    );
    // C: its own audience, at+jwt only, HS512 only.
    let mut c = claims_of(C);
    c["aud"] = json!("c-api");
    let at = r#"{"alg":"HS256","typ":"at+jwt"}"#;
    assert_eq!(reason(&jwt, &signed(&KC, at, &c)), "alg_not_allowed");
    assert_eq!(
        reason(&jwt, &signed(&KC, r#"{"alg":"HS256"}"#, &c)),
        "typ_mismatch"
    );
    c["aud"] = json!(AUDIENCE);
    let jwt_c_any_alg = JwtAuthenticator::builder()
        .trust(
            Issuer::new(C)
                .key(Key::hmac(Algorithm::HS256, KC).unwrap())
                .audience("c-api"),
        )
        .audience(AUDIENCE)
        .clock(fixed_now)
        .build()
        .unwrap();
    assert_eq!(
        reason(&jwt_c_any_alg, &signed(&KC, at, &c)),
        "wrong_audience"
    );
    c["aud"] = json!("c-api");
    assert_eq!(reason(&jwt_c_any_alg, &signed(&KC, at, &c)), "ok");
}

#[test]
fn ten_issuers_route_by_iss() {
    let mut builder = JwtAuthenticator::builder()
        .audience(AUDIENCE)
        .clock(fixed_now);
    for i in 0..10u8 {
        builder = builder.trust(
            Issuer::new(format!("https://tenant-{i}.example"))
                .key(Key::hmac(Algorithm::HS256, [i + 1; 32]).unwrap()),
        );
    }
    let jwt = builder.build().unwrap();
    for i in 0..10u8 {
        let iss = format!("https://tenant-{i}.example");
        let ok = signed(&[i + 1; 32], r#"{"alg":"HS256"}"#, &claims_of(&iss));
        assert_eq!(reason(&jwt, &ok), "ok", "{iss}");
        let other = signed(
            &[(i + 1) % 10 + 1; 32],
            r#"{"alg":"HS256"}"#,
            &claims_of(&iss),
        );
        assert_eq!(reason(&jwt, &other), "bad_signature", "{iss}");
    }
    let stranger = signed(
        &[1; 32],
        r#"{"alg":"HS256"}"#,
        &claims_of("https://tenant-10.example"),
    );
    assert_eq!(reason(&jwt, &stranger), "wrong_issuer");
}

#[test]
fn single_issuer_short_form_still_works() {
    let jwt = builder().build().unwrap();
    assert_eq!(reason(&jwt, &hs256(&claims())), "ok");
    assert_eq!(reason(&jwt, &hs256(&claims_of(B))), "wrong_issuer");
}

#[test]
fn claim_shapes_are_checked_against_the_token_issuers_own_mapping() {
    // B reads roles from `realm_access.roles`; C keeps the default mapping, which
    // never looks at `realm_access`.
    let jwt = JwtAuthenticator::builder()
        .trust(
            Issuer::new(B)
                .key(Key::hmac(Algorithm::HS256, KB).unwrap())
                .claim_mapping(ClaimMapping::keycloak()),
        )
        .trust(Issuer::new(C).key(Key::hmac(Algorithm::HS256, KC).unwrap()))
        .audience(AUDIENCE)
        .clock(fixed_now)
        .build()
        .unwrap();
    let header = r#"{"alg":"HS256"}"#;
    let mut b = claims_of(B);
    b["realm_access"] = json!("staff");
    assert_eq!(reason(&jwt, &signed(&KB, header, &b)), "malformed_claim");
    let mut c = claims_of(C);
    c["realm_access"] = json!("staff");
    assert_eq!(reason(&jwt, &signed(&KC, header, &c)), "ok");
    c["roles"] = json!([["admin"]]);
    assert_eq!(reason(&jwt, &signed(&KC, header, &c)), "malformed_claim");
}

#[test]
fn issuers_sharing_a_mapping_still_refuse_malformed_claims() {
    let jwt = two_issuers();
    let header = r#"{"alg":"HS256"}"#;
    for (iss, key) in [(B, &KB), (C, &KC)] {
        let mut c = claims_of(iss);
        assert_eq!(reason(&jwt, &signed(key, header, &c)), "ok");
        c["scope"] = json!({"read": true});
        assert_eq!(reason(&jwt, &signed(key, header, &c)), "malformed_claim");
    }
}
