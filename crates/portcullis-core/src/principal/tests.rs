use super::*;
use serde_json::json;

#[test]
fn scope_string_and_scp_array_merge() {
    let claims = json!({"scope": "a b", "scp": ["b", "c", 7]});
    let scopes = ClaimMapping::default().scopes(claims.as_object().unwrap());
    assert_eq!(
        scopes,
        vec!["a".into(), "b".into(), "c".into()] as Vec<Box<str>>
    );
}

#[test]
fn nested_role_path_is_followed() {
    let claims = json!({"realm_access": {"roles": ["admin"]}, "roles": "user"});
    let roles = ClaimMapping::keycloak().roles(claims.as_object().unwrap());
    assert_eq!(roles, vec!["admin".into(), "user".into()] as Vec<Box<str>>);
}

#[test]
fn path_through_non_object_finds_nothing() {
    let claims = json!({"realm_access": "admin"});
    assert!(
        ClaimMapping::keycloak()
            .roles(claims.as_object().unwrap())
            .is_empty()
    );
}

#[test]
fn typed_claims_round_trip_through_extensions() {
    #[derive(Debug, PartialEq)]
    struct Mine(u8);
    let p = Principal::builder("s", PrincipalKind::Service)
        .typed_claims(Claims::new(Mine(3)))
        .build();
    assert_eq!(p.claims::<Mine>().map(|c| c.0.0), Some(3));
    assert!(p.claims::<String>().is_none());
    let mut ext = http::Extensions::new();
    p.insert_into(&mut ext);
    assert_eq!(ext.get::<Claims<Mine>>().map(|c| c.0.0), Some(3));
    assert_eq!(
        ext.get::<Principal>()
            .map(|p| p.subject().to_owned())
            .as_deref(),
        Some("s")
    );
}

#[test]
fn negative_numeric_date_is_none() {
    assert!(numeric_date(-1).is_none());
    assert_eq!(numeric_date(0), Some(UNIX_EPOCH));
}
