//! Regression tests for SECURITY.md "jsonwebtoken's defaults are not enough": each
//! shows what jsonwebtoken 11 does with its defaults and that we refuse.

use super::*;

fn jsonwebtoken_defaults(token: &str) -> bool {
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.leeway = 60;
    decode::<serde_json::Value>(token, &DecodingKey::from_secret(SECRET), &validation).is_ok()
}

fn fresh(mut c: serde_json::Value) -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    c["iat"] = json!(now - 10);
    c["exp"] = json!(now + 600);
    c
}

fn live_authenticator() -> portcullis_jwt::JwtAuthenticator {
    portcullis_jwt::JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

#[test]
fn gap_unknown_crit_accepted_by_jsonwebtoken_defaults() {
    let token = hs(
        r#"{"alg":"HS256","crit":["urn:unknown"]}"#,
        &fresh(claims()).to_string(),
    );
    let lenient = jsonwebtoken_defaults(&token);
    eprintln!("jsonwebtoken accepts unknown crit: {lenient}");
    assert_eq!(reason(&live_authenticator(), &token), "crit_unsupported");
}

#[test]
fn gap_empty_crit_accepted_by_jsonwebtoken_defaults() {
    let token = hs(r#"{"alg":"HS256","crit":[]}"#, &fresh(claims()).to_string());
    eprintln!(
        "jsonwebtoken accepts crit: []: {}",
        jsonwebtoken_defaults(&token)
    );
    assert_eq!(reason(&live_authenticator(), &token), "crit_unsupported");
}

#[test]
fn gap_missing_aud_accepted_by_jsonwebtoken_defaults() {
    let mut c = fresh(claims());
    c.as_object_mut().unwrap().remove("aud");
    let token = hs256(&c);
    eprintln!(
        "jsonwebtoken accepts a token without aud: {}",
        jsonwebtoken_defaults(&token)
    );
    assert_eq!(reason(&live_authenticator(), &token), "missing_aud");
}

#[test]
fn gap_nbf_not_checked_by_jsonwebtoken_defaults() {
    let mut c = fresh(claims());
    c["nbf"] = json!(c["exp"].as_u64().unwrap() - 10);
    let token = hs256(&c);
    eprintln!(
        "jsonwebtoken accepts a future nbf: {}",
        jsonwebtoken_defaults(&token)
    );
    assert_eq!(reason(&live_authenticator(), &token), "token_not_yet_valid");
}

#[test]
fn gap_iat_never_checked_by_jsonwebtoken() {
    let mut c = fresh(claims());
    c["iat"] = json!(c["exp"].as_u64().unwrap() - 10);
    let token = hs256(&c);
    eprintln!(
        "jsonwebtoken accepts a future iat: {}",
        jsonwebtoken_defaults(&token)
    );
    assert_eq!(reason(&live_authenticator(), &token), "iat_in_future");
}

#[test]
fn gap_typ_not_checked_by_jsonwebtoken() {
    let token = hs(
        r#"{"alg":"HS256","typ":"logout+jwt"}"#,
        &fresh(claims()).to_string(),
    );
    eprintln!(
        "jsonwebtoken accepts typ logout+jwt: {}",
        jsonwebtoken_defaults(&token)
    );
    let strict = portcullis_jwt::JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .require_access_token_typ()
        .build()
        .unwrap();
    assert_eq!(reason(&strict, &token), "typ_mismatch");
    let at = hs(
        r#"{"alg":"HS256","typ":"at+jwt"}"#,
        &fresh(claims()).to_string(),
    );
    assert_eq!(reason(&strict, &at), "ok");
    let at = hs(
        r#"{"alg":"HS256","typ":"application/at+jwt"}"#,
        &fresh(claims()).to_string(),
    );
    assert_eq!(reason(&strict, &at), "ok");
    let jwt = hs(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &fresh(claims()).to_string(),
    );
    assert_eq!(reason(&strict, &jwt), "typ_mismatch");
    let none = hs(r#"{"alg":"HS256"}"#, &fresh(claims()).to_string());
    assert_eq!(reason(&strict, &none), "typ_mismatch");
}
