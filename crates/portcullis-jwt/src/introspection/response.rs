//! An RFC 7662 introspection response, checked and turned into a [`Principal`].

use std::sync::Arc;

use portcullis_core::{
    AuthError, ClaimMapping, Claims, Principal, PrincipalKind, internal::numeric_date,
};
use serde_json::{Map, Value};

use super::Introspected;
use crate::authenticator::numeric;

/// The rules a response is checked against.
pub(super) struct Rules {
    /// Trusted issuers; the first is assumed when the response names none.
    pub(super) issuers: Box<[Box<str>]>,
    pub(super) audiences: Option<Box<[Box<str>]>>,
    pub(super) leeway: i64,
    pub(super) mapping: Arc<ClaimMapping>,
}

/// What the endpoint said about a token, once checked.
#[derive(Clone, Debug)]
pub(super) enum Outcome {
    /// Active and acceptable: the principal, and its `exp` if any.
    Active {
        principal: Principal,
        exp: Option<i64>,
    },
    /// Inactive, or refused by a check: the refusal's reason.
    Refused(&'static str),
}

impl Outcome {
    /// The refusal for a token this outcome refuses.
    pub(super) fn error(reason: &'static str) -> AuthError {
        let description = match reason {
            "token_expired" => "the token has expired",
            "token_not_yet_valid" => "the token is not valid yet",
            "wrong_issuer" => "the token's issuer is not trusted",
            "wrong_audience" => "the token is not meant for this service",
            "token_inactive" => "the token is not active",
            "dpop_bound_token_as_bearer" => "a DPoP-bound token must be sent with a DPoP proof",
            _ => "the token is malformed",
        };
        AuthError::invalid_token(reason).with_description(description)
    }
}

fn text<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, &'static str> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err("malformed_claim"),
    }
}

fn date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, &'static str> {
    claims
        .get(name)
        .map(|v| numeric(v).ok_or("malformed_claim"))
        .transpose()
}

/// Token types an access token may be introspected as (RFC 7662 §2.2 leaves the
/// values open; these are the ones servers send for access tokens).
fn access_token_type(token_type: &str) -> bool {
    [
        "bearer",
        "access_token",
        "urn:ietf:params:oauth:token-type:access_token",
    ]
    .iter()
    .any(|t| t.eq_ignore_ascii_case(token_type))
}

/// Checks `claims` (the response object) at `now`.
pub(super) fn check(rules: &Rules, claims: Map<String, Value>, now: i64) -> Outcome {
    match principal(rules, claims, now) {
        Ok(outcome) => outcome,
        Err(reason) => Outcome::Refused(reason),
    }
}

fn principal(rules: &Rules, claims: Map<String, Value>, now: i64) -> Result<Outcome, &'static str> {
    match claims.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Err("token_inactive"),
        _ => return Err("malformed_claim"),
    }
    let (exp, nbf, iat) = (
        date(&claims, "exp")?,
        date(&claims, "nbf")?,
        date(&claims, "iat")?,
    );
    if exp.is_some_and(|exp| now >= exp.saturating_add(rules.leeway)) {
        return Err("token_expired");
    }
    if nbf.is_some_and(|nbf| now.saturating_add(rules.leeway) < nbf) {
        return Err("token_not_yet_valid");
    }
    if text(&claims, "token_type")?.is_some_and(|t| !access_token_type(t)) {
        return Err("wrong_token_type");
    }
    // A token bound to a DPoP key (RFC 9449 §6.2) reaches introspection only as a
    // bearer token: without its proof it is a stolen one.
    if claims
        .get("cnf")
        .is_some_and(|cnf| cnf.get("jkt").is_some())
    {
        return Err("dpop_bound_token_as_bearer");
    }
    let issuer = match text(&claims, "iss")? {
        Some(iss) if rules.issuers.iter().any(|i| **i == *iss) => iss,
        Some(_) => return Err("wrong_issuer"),
        None => &rules.issuers[0],
    };
    let aud: &[Value] = match claims.get("aud") {
        None => &[],
        Some(one @ Value::String(_)) => std::slice::from_ref(one),
        Some(Value::Array(all)) if all.iter().all(Value::is_string) => all,
        Some(_) => return Err("malformed_claim"),
    };
    if let Some(audiences) = &rules.audiences {
        let ours = |a: &Value| audiences.iter().any(|o| Some(&**o) == a.as_str());
        if !aud.iter().any(ours) {
            return Err("wrong_audience");
        }
    }
    if matches!(claims.get("scope"), Some(v) if !v.is_string()) {
        return Err("malformed_claim");
    }
    rules
        .mapping
        .check(&claims)
        .map_err(|_| "malformed_claim")?;
    let client = text(&claims, "client_id")?;
    // A response without `sub` is a client's own token (client credentials).
    let (subject, kind) = match (text(&claims, "sub")?, client) {
        (Some(sub), Some(client)) if sub == client => (sub, PrincipalKind::Service),
        (Some(sub), _) => (sub, PrincipalKind::User),
        (None, Some(client)) => (client, PrincipalKind::Service),
        (None, None) => return Err("missing_subject"),
    };
    let mut builder = Principal::builder(subject, kind)
        .issuer(issuer)
        .claim_mapping(Arc::clone(&rules.mapping));
    if let Some(client) = client {
        builder = builder.client_id(client);
    }
    if let Some(jti) = text(&claims, "jti")? {
        builder = builder.token_id(jti);
    }
    if let Some(at) = exp.and_then(numeric_date) {
        builder = builder.expires_at(at);
    }
    if let Some(at) = iat.and_then(numeric_date) {
        builder = builder.issued_at(at);
    }
    let raw = Arc::new(claims);
    let principal = builder
        .typed_claims(Claims::new(Introspected(Arc::clone(&raw))))
        .raw_claims(raw)
        .build();
    Ok(Outcome::Active { principal, exp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Rules {
        Rules {
            issuers: vec!["https://as".into()].into(),
            audiences: Some(vec!["api".into()].into()),
            leeway: 0,
            mapping: Arc::new(ClaimMapping::default()),
        }
    }

    fn run(v: Value) -> Result<Principal, &'static str> {
        match check(&rules(), v.as_object().unwrap().clone(), 1000) {
            Outcome::Active { principal, .. } => Ok(principal),
            Outcome::Refused(reason) => Err(reason),
        }
    }

    #[test]
    fn active_response_becomes_a_principal() {
        let p = run(
            json!({"active": true, "sub": "alice", "aud": ["api"], "scope": "a b",
            "exp": 2000, "client_id": "web", "iss": "https://as"}),
        )
        .unwrap();
        assert_eq!(p.subject(), "alice");
        assert_eq!(p.kind(), PrincipalKind::User);
        assert!(p.has_scope("a") && p.has_scope("b"));
        assert!(p.claims::<Introspected>().is_some());
    }

    #[test]
    fn client_credentials_response_is_the_client() {
        let p = run(json!({"active": true, "client_id": "svc", "aud": "api"})).unwrap();
        assert_eq!((p.subject(), p.kind()), ("svc", PrincipalKind::Service));
        assert_eq!(p.issuer(), Some("https://as"));
    }

    #[test]
    fn refusals_name_their_reason() {
        let base = json!({"active": true, "sub": "a", "aud": "api"});
        let with = |k: &str, v: Value| {
            let mut o = base.clone();
            o[k] = v;
            o
        };
        assert_eq!(run(json!({"active": false})).unwrap_err(), "token_inactive");
        assert_eq!(run(json!({"sub": "a"})).unwrap_err(), "malformed_claim");
        assert_eq!(
            run(with("active", json!("true"))).unwrap_err(),
            "malformed_claim"
        );
        assert_eq!(run(with("exp", json!(999))).unwrap_err(), "token_expired");
        assert_eq!(
            run(with("exp", json!(1e38))).unwrap_err(),
            "malformed_claim"
        );
        assert_eq!(
            run(with("nbf", json!(1001))).unwrap_err(),
            "token_not_yet_valid"
        );
        assert_eq!(
            run(with("iss", json!("https://x"))).unwrap_err(),
            "wrong_issuer"
        );
        assert_eq!(
            run(with("aud", json!("other"))).unwrap_err(),
            "wrong_audience"
        );
        assert_eq!(
            run(with("aud", json!(["api", 1]))).unwrap_err(),
            "malformed_claim"
        );
        assert_eq!(
            run(with("token_type", json!("refresh_token"))).unwrap_err(),
            "wrong_token_type"
        );
        assert!(run(with("token_type", json!("Bearer"))).is_ok());
        assert_eq!(
            run(with("token_type", json!("DPoP"))).unwrap_err(),
            "wrong_token_type"
        );
        assert_eq!(
            run(with(
                "cnf",
                json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
            ))
            .unwrap_err(),
            "dpop_bound_token_as_bearer"
        );
        assert!(
            run(with(
                "cnf",
                json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"})
            ))
            .is_ok()
        );
        assert_eq!(
            run(with("scope", json!(["a"]))).unwrap_err(),
            "malformed_claim"
        );
        assert_eq!(
            run(with("roles", json!([["admin"]]))).unwrap_err(),
            "malformed_claim"
        );
        assert_eq!(
            run(json!({"active": true, "aud": "api"})).unwrap_err(),
            "missing_subject"
        );
        assert_eq!(
            run(json!({"active": true, "sub": "a"})).unwrap_err(),
            "wrong_audience"
        );
    }
}
