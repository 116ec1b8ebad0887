//! Attacks on the claims: expired, not yet valid, issued in the future, missing or
//! mistyped `exp`, and the wrong issuer or audience.

use super::*;

#[test]
fn expired_token_is_refused() {
    let mut c = claims();
    c["exp"] = json!(NOW - 61);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "token_expired");
    // Within the 60 s leeway it still passes.
    c["exp"] = json!(NOW - 59);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "ok");
}

#[test]
fn rfc7515_a1_token_is_expired() {
    // RFC 7515 Appendix A.1: HS256, exp 1300819380 (2011).
    let key =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let auth = portcullis_jwt::JwtAuthenticator::builder()
        .key(Key::from_jwk(&format!(r#"{{"kty":"oct","alg":"HS256","k":"{key}"}}"#)).unwrap())
        .issuer("joe")
        .danger_accept_any_audience()
        .build()
        .unwrap();
    assert_eq!(reason(&auth, token), "token_expired");
    // At 2011 the same token is fine: the signature and the rest check out.
    let then = portcullis_jwt::JwtAuthenticator::builder()
        .key(Key::from_jwk(&format!(r#"{{"kty":"oct","alg":"HS256","k":"{key}"}}"#)).unwrap())
        .issuer("joe")
        .danger_accept_any_audience()
        .clock(|| std::time::UNIX_EPOCH + Duration::from_secs(1_300_819_000))
        .build()
        .unwrap();
    assert_eq!(reason(&then, token), "missing_subject");
}

#[test]
fn nbf_in_the_future_is_refused() {
    let mut c = claims();
    c["nbf"] = json!(NOW + 61);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "token_not_yet_valid");
    c["nbf"] = json!(NOW + 59);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "ok");
}

#[test]
fn iat_in_the_future_is_refused() {
    let mut c = claims();
    c["iat"] = json!(NOW + 61);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "iat_in_future");
    c["iat"] = json!(NOW + 59);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "ok");
}

#[test]
fn missing_exp_is_refused() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(reason(&authenticator(), &hs256(&c)), "missing_exp");
}

#[test]
fn string_exp_is_refused() {
    let mut c = claims();
    c["exp"] = json!((NOW + 600).to_string());
    assert_eq!(reason(&authenticator(), &hs256(&c)), "invalid_exp");
    for bad in [
        json!(null),
        json!(true),
        json!([NOW + 600]),
        json!({"t": NOW + 600}),
    ] {
        c["exp"] = bad;
        assert_eq!(reason(&authenticator(), &hs256(&c)), "invalid_exp");
    }
}

#[test]
fn wrong_issuer_with_trailing_slash_is_refused() {
    let mut c = claims();
    c["iss"] = json!(format!("{ISSUER}/"));
    assert_eq!(reason(&authenticator(), &hs256(&c)), "wrong_issuer");
    c["iss"] = json!("https://ISSUER.example");
    assert_eq!(reason(&authenticator(), &hs256(&c)), "wrong_issuer");
    c["iss"] = json!([ISSUER]);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "invalid_iss");
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(reason(&authenticator(), &hs256(&c)), "missing_iss");
}

#[test]
fn wrong_audience_is_refused() {
    let mut c = claims();
    c["aud"] = json!("other-api");
    assert_eq!(reason(&authenticator(), &hs256(&c)), "wrong_audience");
    c["aud"] = json!(["other-api", "more"]);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "wrong_audience");
    c["aud"] = json!(["other-api", AUDIENCE]);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "ok");
    c["aud"] = json!(7);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "invalid_aud");
}

#[test]
fn nested_role_array_is_malformed_not_dropped() {
    // Regression: `roles: [["admin"]]` became a principal with no roles.
    let mut c = claims();
    c["roles"] = json!([["admin"]]);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "malformed_claim");
    c["roles"] = json!({"admin": true});
    assert_eq!(reason(&authenticator(), &hs256(&c)), "malformed_claim");
    c["roles"] = json!(["admin"]);
    c["scope"] = json!(42);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "malformed_claim");
}

#[test]
fn a_mapping_that_reads_a_registered_claim_checks_its_shape() {
    use portcullis_core::{ClaimMapping, ClaimPath, ClaimShape};
    // Roles read from `aud`, as an array only: a string `aud` passes the audience
    // check but not the mapping's shape.
    let mapping =
        ClaimMapping::default().with_roles([ClaimPath::new("aud").with_shape(ClaimShape::Array)]);
    let auth = builder().claim_mapping(mapping).build().unwrap();
    let mut c = claims();
    c["aud"] = json!(AUDIENCE);
    assert_eq!(reason(&auth, &hs256(&c)), "malformed_claim");
    c["aud"] = json!([AUDIENCE]);
    assert_eq!(reason(&auth, &hs256(&c)), "ok");
    assert_eq!(reason(&authenticator(), &hs256(&c)), "ok");
}

#[test]
fn audience_array_with_non_strings_is_malformed() {
    // Regression: `aud: ["quickstart", 1, null]` was accepted for "quickstart".
    let mut c = claims();
    c["aud"] = json!([AUDIENCE, 1, null]);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "invalid_aud");
    c["aud"] = json!(7);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "invalid_aud");
    let any = builder().danger_accept_any_audience().build().unwrap();
    c["aud"] = json!([{"x": 1}]);
    assert_eq!(reason(&any, &hs256(&c)), "invalid_aud");
    c["aud"] = json!(["other", AUDIENCE]);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "ok");
}

#[test]
fn huge_exp_is_malformed_not_clamped() {
    // Regression: `exp: 1e38` was clamped to i64::MAX and never expired.
    for exp in [json!(1e38), json!(u64::MAX), json!(-1e38)] {
        let mut c = claims();
        c["exp"] = exp.clone();
        assert_eq!(reason(&authenticator(), &hs256(&c)), "invalid_exp", "{exp}");
    }
    let mut c = claims();
    c["nbf"] = json!(-1e300);
    assert_eq!(reason(&authenticator(), &hs256(&c)), "invalid_nbf");
}

#[test]
fn non_string_identifiers_are_malformed() {
    for (name, value, why) in [
        ("sub", json!(12), "invalid_sub"),
        ("jti", json!(["a"]), "invalid_jti"),
        ("client_id", json!(null), "invalid_client_id"),
        ("azp", json!(1), "invalid_azp"),
        ("iss", json!([ISSUER]), "invalid_iss"),
    ] {
        let mut c = claims();
        c[name] = value;
        assert_eq!(reason(&authenticator(), &hs256(&c)), why, "{name}");
    }
}
