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

fn object(v: serde_json::Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn nested_array_of_roles_is_the_wrong_shape() {
    // Regression: `roles: [["admin"]]` used to become "no roles".
    let claims = object(json!({"roles": [["admin"]]}));
    let err = ClaimMapping::default().check(&claims).unwrap_err();
    assert_eq!(err.path(), "roles");
}

#[test]
fn wrong_shapes_are_refused_and_absent_claims_are_fine() {
    let mapping = ClaimMapping::default();
    for bad in [
        json!({"roles": {"admin": true}}),
        json!({"roles": 1}),
        json!({"roles": null}),
        json!({"scp": ["a", 7]}),
        json!({"scope": true}),
    ] {
        assert!(mapping.check(&object(bad.clone())).is_err(), "{bad}");
    }
    assert!(mapping.check(&object(json!({"sub": "x"}))).is_ok());
    assert!(
        mapping
            .check(&object(json!({"roles": [], "scope": ""})))
            .is_ok()
    );
}

#[test]
fn a_path_through_a_non_object_is_the_wrong_shape() {
    let claims = object(json!({"realm_access": "admin"}));
    assert!(ClaimMapping::keycloak().check(&claims).is_err());
    let claims = object(json!({"realm_access": {"other": 1}}));
    assert!(ClaimMapping::keycloak().check(&claims).is_ok());
}

#[test]
fn rfc9068_scope_must_be_a_string() {
    let mapping = ClaimMapping::rfc9068();
    assert!(mapping.check(&object(json!({"scope": ["a"]}))).is_err());
    assert!(mapping.check(&object(json!({"roles": "admin"}))).is_err());
    let ok = object(json!({"scope": "a b", "roles": ["r"]}));
    assert!(mapping.check(&ok).is_ok());
    assert_eq!(mapping.scopes(&ok).len(), 2);
}

#[test]
fn presets_read_their_providers_claims() {
    let cases = [
        (
            "keycloak",
            json!({"realm_access": {"roles": ["admin"]}, "scope": "openid email"}),
            vec!["admin"],
            vec!["openid", "email"],
        ),
        (
            "auth0",
            json!({"permissions": ["read:data"], "scope": "openid"}),
            vec![],
            vec!["openid", "read:data"],
        ),
        (
            "okta",
            json!({"scp": ["openid", "api:read"], "groups": ["Everyone"]}),
            vec!["Everyone"],
            vec!["openid", "api:read"],
        ),
        (
            "entra-id",
            json!({"scp": "User.Read Files.Read", "roles": ["Task.Admin"]}),
            vec!["Task.Admin"],
            vec!["User.Read", "Files.Read"],
        ),
        (
            "cognito",
            json!({"cognito:groups": ["admins"], "scope": "aws.cognito.signin.user.admin"}),
            vec!["admins"],
            vec!["aws.cognito.signin.user.admin"],
        ),
        (
            "better-auth",
            json!({"role": "admin,user", "id": "u1"}),
            vec!["admin", "user"],
            vec![],
        ),
        ("rfc9068", json!({"scope": "a b"}), vec![], vec!["a", "b"]),
    ];
    for (name, claims, roles, scopes) in cases {
        let mapping = ClaimMapping::preset(name).unwrap();
        let claims = object(claims);
        assert!(mapping.check(&claims).is_ok(), "{name}");
        let got: Vec<Box<str>> = roles.into_iter().map(Into::into).collect();
        assert_eq!(mapping.roles(&claims), got, "{name} roles");
        let got: Vec<Box<str>> = scopes.into_iter().map(Into::into).collect();
        assert_eq!(mapping.scopes(&claims), got, "{name} scopes");
    }
    assert!(
        ClaimMapping::PRESETS
            .iter()
            .all(|n| ClaimMapping::preset(n).is_some())
    );
    assert!(ClaimMapping::preset("nope").is_none());
}

#[test]
fn keycloak_client_roles_are_of_that_client_only() {
    let mapping = ClaimMapping::keycloak().keycloak_client("api.v1");
    let claims = object(json!({"resource_access": {
        "api.v1": {"roles": ["editor"]}, "other": {"roles": ["root"]}
    }}));
    assert_eq!(
        mapping.roles(&claims),
        vec!["editor".into()] as Vec<Box<str>>
    );
    let bad = object(json!({"resource_access": {"api.v1": {"roles": "x"}}}));
    assert!(mapping.check(&bad).is_ok(), "a string is a role list");
    let bad = object(json!({"resource_access": {"api.v1": ["editor"]}}));
    assert!(mapping.check(&bad).is_err());
}

#[test]
fn text_fields_read_back_whatever_order_they_were_set_in() {
    let p = Principal::builder("alice", PrincipalKind::User)
        .token_id("jti-1")
        .issuer("https://issuer.example")
        .client_id("")
        .issuer("https://other.example")
        .build();
    assert_eq!(p.subject(), "alice");
    assert_eq!(p.issuer(), Some("https://other.example"));
    assert_eq!(p.client_id(), Some(""));
    assert_eq!(p.token_id(), Some("jti-1"));

    let bare = Principal::builder("", PrincipalKind::Service)
        .client_id("svc")
        .build();
    assert_eq!(bare.subject(), "");
    assert_eq!(bare.issuer(), None);
    assert_eq!(bare.client_id(), Some("svc"));
    assert_eq!(bare.token_id(), None);
}

#[test]
fn default_typed_claims_share_the_raw_claims_and_still_reach_handlers() {
    let raw = Arc::new(object(json!({"sub": "alice", "tier": "gold"})));
    // Attached in either order, the map is the one allocation both read.
    for typed_first in [false, true] {
        let builder = Principal::builder("alice", PrincipalKind::User);
        let builder = if typed_first {
            builder
                .typed_claims(Claims(Arc::clone(&raw)))
                .raw_claims(Arc::clone(&raw))
        } else {
            builder
                .raw_claims(Arc::clone(&raw))
                .typed_claims(Claims(Arc::clone(&raw)))
        };
        let p = builder.build();
        assert!(matches!(p.0.typed, Typed::Raw));
        let typed = p.claims::<Map<String, Value>>().expect("typed claims");
        assert!(Arc::ptr_eq(&typed.0, &raw));
        let mut ext = http::Extensions::new();
        p.insert_into(&mut ext);
        let inserted = ext.get::<Claims<Map<String, Value>>>().expect("inserted");
        assert_eq!(inserted["tier"], "gold");
    }
    // A different map of the same type is kept as typed claims of its own.
    let other = Principal::builder("alice", PrincipalKind::User)
        .raw_claims(Arc::clone(&raw))
        .typed_claims(Claims::new(object(json!({"tier": "silver"}))))
        .build();
    assert_eq!(
        other.claims::<Map<String, Value>>().unwrap()["tier"],
        "silver"
    );
    assert_eq!(other.raw_claims().unwrap()["tier"], "gold");
    // Raw claims alone are not typed claims.
    let untyped = Principal::builder("alice", PrincipalKind::User)
        .raw_claims(raw)
        .build();
    assert!(untyped.claims::<Map<String, Value>>().is_none());
}
