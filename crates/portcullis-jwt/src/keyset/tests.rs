use super::*;
use crate::key::Algorithm;

#[test]
fn typ_rule_accepts_at_jwt_spellings_only() {
    let rule = TypRule::OneOf(vec!["at+jwt".into()].into());
    assert!(rule.allows(Some("at+jwt")));
    assert!(rule.allows(Some("application/at+jwt")));
    assert!(rule.allows(Some("AT+JWT")));
    assert!(!rule.allows(Some("JWT")));
    assert!(!rule.allows(Some("logout+jwt")));
    assert!(!rule.allows(None));
}

#[test]
fn default_typ_rule_accepts_untyped_jwt_and_access_tokens_only() {
    // Better Auth's JWT plugin sends no `typ` at all: RFC 7519 §5.1 makes it optional.
    let rule = TypRule::Default;
    for ok in [
        None,
        Some("JWT"),
        Some("jwt"),
        Some("application/JWT"),
        Some("at+jwt"),
        Some("Application/AT+JWT"),
    ] {
        assert!(rule.allows(ok), "{ok:?}");
    }
    for refused in [
        "dpop+jwt",
        "logout+jwt",
        "secevent+jwt",
        "application/dpop+jwt",
        "",
        "JOSE",
        "jwt ",
        "application/",
    ] {
        assert!(!rule.allows(Some(refused)), "{refused:?}");
    }
}

#[test]
fn several_keys_without_kid_are_refused_when_ambiguous() {
    let set = KeySet::new([
        Key::hmac(Algorithm::HS256, [1u8; 32])
            .unwrap()
            .with_kid("a")
            .unwrap(),
        Key::hmac(Algorithm::HS256, [2u8; 32])
            .unwrap()
            .with_kid("b")
            .unwrap(),
        Key::hmac(Algorithm::HS512, [2u8; 64])
            .unwrap()
            .with_kid("c")
            .unwrap(),
    ])
    .unwrap();
    assert_eq!(
        set.select_index(None, "HS256").unwrap_err().reason(),
        "missing_kid"
    );
    let kid = |i: usize| set.keys[i].kid();
    assert_eq!(kid(set.select_index(None, "HS512").unwrap()), Some("c"));
    assert_eq!(
        kid(set.select_index(Some("b"), "HS256").unwrap()),
        Some("b")
    );
    assert_eq!(
        set.select_index(Some("z"), "HS256").unwrap_err().reason(),
        "unknown_kid"
    );
}

#[test]
fn a_remembered_header_decides_nothing_the_signature_or_typ_rule_would_refuse() {
    let secret = [3u8; 32];
    let set = KeySet::new([Key::hmac(Algorithm::HS256, secret).unwrap()]).unwrap();
    let mint = |claims: &serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap()
    };
    let first = mint(&serde_json::json!({"n": 1}));
    set.verify_jws(&first, 8192).unwrap();
    assert_eq!(
        set.headers.0.read().unwrap().len(),
        1,
        "its header is remembered"
    );

    // Same header, another payload under the old signature: refused.
    let second = mint(&serde_json::json!({"n": 2}));
    let (head, _) = second.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", first.rsplit_once('.').unwrap().1);
    assert_eq!(
        set.verify_jws(&forged, 8192).unwrap_err().reason(),
        "bad_signature"
    );
    set.verify_jws(&second, 8192).unwrap();

    // A rule that wants `at+jwt` refuses the remembered `JWT` header.
    let at_jwt = TypRule::OneOf(vec!["at+jwt".into()].into());
    let err = set.verify_jws_with(&second, 8192, &at_jwt).unwrap_err();
    assert_eq!(err.reason(), "typ_mismatch");

    // A refused token's header is not remembered.
    let other = KeySet::new([Key::hmac(Algorithm::HS256, [4u8; 32]).unwrap()]).unwrap();
    other.verify_jws(&first, 8192).unwrap_err();
    assert_eq!(other.headers.0.read().unwrap().len(), 0);
}

#[test]
fn duplicate_kid_is_a_build_error() {
    let k = || {
        Key::hmac(Algorithm::HS256, [1u8; 32])
            .unwrap()
            .with_kid("a")
            .unwrap()
    };
    assert_eq!(
        KeySet::new([k(), k()]).unwrap_err().kind(),
        KeyErrorKind::DuplicateKid
    );
}
