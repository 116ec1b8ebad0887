//! The header `typ` rule: by default a token without `typ` (Better Auth's JWT plugin
//! sends none), `JWT` or `at+jwt` is accepted and any other explicit type refused;
//! [`require_access_token_typ`](portcullis_jwt::JwtAuthenticatorBuilder::require_access_token_typ)
//! accepts RFC 9068 access tokens only.

use super::*;

fn typed(typ: Option<&str>) -> String {
    let header = match typ {
        Some(typ) => format!(r#"{{"alg":"HS256","typ":"{typ}"}}"#),
        None => r#"{"alg":"HS256"}"#.to_owned(),
    };
    hs(&header, &good_payload())
}

#[test]
fn untyped_token_is_accepted_by_default() {
    // Regression: resource_server refused Better Auth tokens with "the token is not
    // of the expected type" because it required `JWT` or `at+jwt`.
    assert_eq!(reason(&authenticator(), &typed(None)), "ok");
}

#[test]
fn default_typ_rule_accepts_jwt_and_access_token_spellings() {
    for typ in [
        "JWT",
        "jwt",
        "at+jwt",
        "application/at+jwt",
        "APPLICATION/AT+JWT",
    ] {
        assert_eq!(reason(&authenticator(), &typed(Some(typ))), "ok", "{typ}");
    }
}

#[test]
fn default_typ_rule_refuses_other_explicit_types() {
    for typ in [
        "dpop+jwt",
        "logout+jwt",
        "secevent+jwt",
        "application/logout+jwt",
        "JOSE+JSON",
        "",
    ] {
        assert_eq!(
            reason(&authenticator(), &typed(Some(typ))),
            "typ_mismatch",
            "{typ}"
        );
    }
}

#[test]
fn strict_access_token_mode_refuses_untyped_and_jwt() {
    let strict = builder().require_access_token_typ().build().unwrap();
    assert_eq!(reason(&strict, &typed(Some("at+jwt"))), "ok");
    assert_eq!(reason(&strict, &typed(Some("application/at+jwt"))), "ok");
    assert_eq!(reason(&strict, &typed(None)), "typ_mismatch");
    assert_eq!(reason(&strict, &typed(Some("JWT"))), "typ_mismatch");
}
