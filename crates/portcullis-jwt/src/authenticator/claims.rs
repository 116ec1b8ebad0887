//! The claims checks (`exp`, `nbf`, `iat`, `iss`, `aud`) and the principal built from
//! the claims.

use std::{any::Any, sync::Arc};

use portcullis_core::{
    AuthError, ClaimMapping, Claims, Principal, PrincipalKind,
    internal::{check_claim, numeric_date},
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::JwtAuthenticator;
use crate::issuer::Trusted;

impl<C> JwtAuthenticator<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    fn validate(issuer: &Trusted, claims: &Registered<'_>, now: i64) -> Result<Times, AuthError> {
        let leeway = issuer.leeway;
        let exp = match claims.exp {
            None => {
                return Err(AuthError::invalid_token("missing_exp")
                    .with_description("the token has no expiry"));
            }
            Some(v) => numeric(v).ok_or_else(|| malformed_claim("invalid_exp"))?,
        };
        if now >= exp.saturating_add(leeway) {
            return Err(
                AuthError::invalid_token("token_expired").with_description("the token has expired")
            );
        }
        if let Some(v) = claims.nbf {
            let nbf = numeric(v).ok_or_else(|| malformed_claim("invalid_nbf"))?;
            if now.saturating_add(leeway) < nbf {
                return Err(AuthError::invalid_token("token_not_yet_valid")
                    .with_description("the token is not valid yet"));
            }
        }
        let iat = match claims.iat {
            None => None,
            Some(v) => {
                let iat = numeric(v).ok_or_else(|| malformed_claim("invalid_iat"))?;
                if iat > now.saturating_add(leeway) {
                    return Err(AuthError::invalid_token("iat_in_future")
                        .with_description("the token was issued in the future"));
                }
                Some(iat)
            }
        };
        // `iss` routed the token to `issuer`, whose key verified it.
        debug_assert_eq!(claims.iss.and_then(Value::as_str), Some(&*issuer.id));
        // Every `aud` member is a string (RFC 7519 §4.1.3), whether or not an
        // audience is required: `["api", 1, null]` is malformed, not "api".
        let aud: &[Value] = match claims.aud {
            None => &[],
            Some(one @ Value::String(_)) => std::slice::from_ref(one),
            Some(Value::Array(auds)) if auds.iter().all(Value::is_string) => auds,
            Some(_) => return Err(malformed_claim("invalid_aud")),
        };
        if let Some(audiences) = &issuer.audiences {
            if claims.aud.is_none() {
                return Err(AuthError::invalid_token("missing_aud"));
            }
            let ours = |a: &Value| audiences.iter().any(|o| Some(&**o) == a.as_str());
            if !aud.iter().any(ours) {
                return Err(AuthError::invalid_token("wrong_audience")
                    .with_description("the token is not meant for this service"));
            }
        }
        for (value, reason) in [
            (claims.sub, "invalid_sub"),
            (claims.jti, "invalid_jti"),
            (claims.client_id, "invalid_client_id"),
            (claims.azp, "invalid_azp"),
        ] {
            if value.is_some_and(|v| !v.is_string()) {
                return Err(malformed_claim(reason));
            }
        }
        Ok(Times { exp, iat })
    }

    /// Routes the claims to their issuer by `iss`, has `verify` check the signature
    /// with that issuer's keys, then checks the claims at `now` and builds the
    /// principal from them.
    pub(super) fn principal(
        &self,
        claims: Map<String, Value>,
        now: i64,
        verify: impl FnOnce(&Trusted) -> Result<bool, AuthError>,
    ) -> Result<Verified, AuthError> {
        let issuers = &self.inner.issuers;
        let registered = Registered::of(&claims, issuers.shared_mapping());
        let issuer = issuers.route(registered.iss)?;
        let symmetric = verify(issuer)?;
        let times = Self::validate(issuer, &registered, now)?;
        if !registered.check_shapes(&issuer.mapping, &claims) {
            return Err(malformed_claim("malformed_claim"));
        }
        fn text(value: Option<&Value>) -> Option<&str> {
            value.and_then(Value::as_str)
        }
        let client = text(registered.client_id).or_else(|| text(registered.azp));
        let (subject, kind) = match (text(registered.sub), client) {
            (Some(sub), Some(client)) if sub == client => (sub, PrincipalKind::Service),
            (Some(sub), _) => (sub, PrincipalKind::User),
            (None, Some(client)) => (client, PrincipalKind::Service),
            (None, None) => {
                return Err(AuthError::invalid_token("missing_subject")
                    .with_description("the token names no subject"));
            }
        };
        let mut builder =
            Principal::builder(subject, kind).claim_mapping(Arc::clone(&issuer.mapping));
        if let Some(iss) = text(registered.iss) {
            builder = builder.issuer(iss);
        }
        if let Some(client) = client {
            builder = builder.client_id(client);
        }
        if let Some(jti) = text(registered.jti) {
            builder = builder.token_id(jti);
        }
        if let Some(at) = numeric_date(times.exp) {
            builder = builder.expires_at(at);
        }
        if let Some(at) = times.iat.and_then(numeric_date) {
            builder = builder.issued_at(at);
        }
        let raw = Arc::new(claims);
        let typed = typed_claims::<C>(&raw)?;
        let principal = builder.raw_claims(raw).typed_claims(typed).build();
        Ok(Verified {
            principal,
            times,
            issuer: issuer.index,
            leeway: issuer.leeway,
            symmetric,
        })
    }
}

/// Produces `C` from the parsed claims without parsing bytes again; when `C` is the
/// default map, shares it.
fn typed_claims<C: DeserializeOwned + Send + Sync + 'static>(
    raw: &Arc<Map<String, Value>>,
) -> Result<Claims<C>, AuthError> {
    let any: Arc<dyn Any + Send + Sync> = raw.clone();
    if let Ok(same) = any.downcast::<C>() {
        return Ok(Claims(same));
    }
    C::deserialize(&**raw).map(Claims::new).map_err(|_| {
        AuthError::invalid_token("invalid_claims")
            .with_description("the token's claims do not have the expected shape")
    })
}

/// A verified token: its principal, times, issuer (its index) and that issuer's
/// leeway, and whether a shared secret verified it.
pub(super) struct Verified {
    pub(super) principal: Principal,
    pub(super) times: Times,
    pub(super) issuer: usize,
    pub(super) leeway: i64,
    pub(super) symmetric: bool,
}

/// A verified token's `exp` and `iat`, in Unix seconds.
pub(super) struct Times {
    pub(super) exp: i64,
    pub(super) iat: Option<i64>,
}

/// The registered claims the checks and the principal read, found in one pass over
/// the claims rather than a map look-up each.
#[derive(Default)]
struct Registered<'a> {
    exp: Option<&'a Value>,
    nbf: Option<&'a Value>,
    iat: Option<&'a Value>,
    iss: Option<&'a Value>,
    aud: Option<&'a Value>,
    sub: Option<&'a Value>,
    jti: Option<&'a Value>,
    client_id: Option<&'a Value>,
    azp: Option<&'a Value>,
    shapes: Shapes<'a>,
}

/// What the pass over the claims did towards the shape check, which applies once the
/// issuer (and so its claim mapping) is known.
#[derive(Default)]
#[allow(
    clippy::large_enum_variant,
    reason = "lives on the stack for one verification; boxing would allocate"
)]
enum Shapes<'a> {
    /// Every member checked against the one mapping all issuers share: whether all
    /// passed.
    Checked(&'a ClaimMapping, bool),
    /// Every member, in order, when issuers differ in their mappings: walking this is
    /// cheaper than walking the map again.
    Members([(&'a str, &'a Value); MEMBERS], usize),
    /// Past [`MEMBERS`] members: the check walks the map.
    #[default]
    Unchecked,
}

/// How many members [`Shapes::Members`] keeps.
const MEMBERS: usize = 16;

/// The registered claims [`Registered`] collects, in the order of the bits of
/// [`registered_read_by`].
const REGISTERED: [&str; 9] = [
    "exp",
    "nbf",
    "iat",
    "iss",
    "aud",
    "sub",
    "jti",
    "client_id",
    "azp",
];

/// Which registered claims (a bit per [`REGISTERED`] name) `mapping` reads roles or
/// scopes from, and so must check the shape of. Usually none: for a registered claim
/// no path starts with, the shape check has nothing to check, and the claims pass
/// skips it.
pub(crate) fn registered_read_by(mapping: &ClaimMapping) -> u16 {
    // No path accepts `null`, whatever its shape: a name fails the check with it
    // exactly when some path starts with that name.
    REGISTERED
        .iter()
        .enumerate()
        .filter(|(_, name)| check_claim(mapping, name, &Value::Null).is_err())
        .fold(0, |bits, (i, _)| bits | 1 << i)
}

impl<'a> Registered<'a> {
    /// Collects the registered claims; with `shared`, the claim mapping of every
    /// issuer and the registered claims it reads, also checks every member's shape in
    /// the same pass.
    fn of(claims: &'a Map<String, Value>, shared: Option<(&'a ClaimMapping, u16)>) -> Self {
        let mut r = Self::default();
        match shared {
            Some((mapping, reads)) => {
                let mut ok = true;
                for (name, value) in claims {
                    let read = r.register(name, value).is_none_or(|bit| reads & bit != 0);
                    if read {
                        ok &= check_claim(mapping, name, value).is_ok();
                    }
                }
                r.shapes = Shapes::Checked(mapping, ok);
            }
            None => {
                let mut members = [("", &Value::Null); MEMBERS];
                let mut count = 0;
                for (name, value) in claims {
                    if let Some(slot) = members.get_mut(count) {
                        *slot = (name.as_str(), value);
                    }
                    count += 1;
                    r.register(name, value);
                }
                if count <= MEMBERS {
                    r.shapes = Shapes::Members(members, count);
                }
            }
        }
        r
    }

    /// Records `value` if `name` is a registered claim; returns its bit (see
    /// [`REGISTERED`]).
    #[inline(always)]
    fn register(&mut self, name: &str, value: &'a Value) -> Option<u16> {
        let (bit, slot) = match name {
            "exp" => (0, &mut self.exp),
            "nbf" => (1, &mut self.nbf),
            "iat" => (2, &mut self.iat),
            "iss" => (3, &mut self.iss),
            "aud" => (4, &mut self.aud),
            "sub" => (5, &mut self.sub),
            "jti" => (6, &mut self.jti),
            "client_id" => (7, &mut self.client_id),
            "azp" => (8, &mut self.azp),
            _ => return None,
        };
        *slot = Some(value);
        Some(1 << bit)
    }

    /// Checks every member against `mapping`'s shapes.
    fn check_shapes(&self, mapping: &ClaimMapping, claims: &Map<String, Value>) -> bool {
        match &self.shapes {
            Shapes::Checked(checked, ok) if std::ptr::eq(*checked, mapping) => *ok,
            Shapes::Members(members, count) => members[..*count]
                .iter()
                .all(|(name, value)| check_claim(mapping, name, value).is_ok()),
            Shapes::Checked(..) | Shapes::Unchecked => mapping.check(claims).is_ok(),
        }
    }
}

/// A refusal for a claim of the wrong type or range: the token is malformed.
fn malformed_claim(reason: &'static str) -> AuthError {
    AuthError::invalid_token(reason).with_description("the token is malformed")
}

/// A NumericDate (RFC 7519 §2): a JSON number, possibly fractional, floored to
/// seconds. Strings and other types are refused, and so is a number outside the
/// 64-bit range (`1e38` is malformed, not the end of time).
pub(crate) fn numeric(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.is_u64() {
        return None;
    }
    let f = n.as_f64()?.floor();
    // 2^63 is exactly representable; everything from it up is out of range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.is_finite() && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registered_claims_read_by_a_mapping_are_found() {
        assert_eq!(registered_read_by(&ClaimMapping::default()), 0);
        assert_eq!(registered_read_by(&ClaimMapping::keycloak()), 0);
        let odd = ClaimMapping::default()
            .with_roles(["sub"])
            .with_scopes(["azp.scopes", "scope"]);
        assert_eq!(registered_read_by(&odd), 1 << 5 | 1 << 8);
    }

    #[test]
    fn numeric_date_accepts_numbers_only() {
        assert_eq!(numeric(&json!(10)), Some(10));
        assert_eq!(numeric(&json!(10.9)), Some(10));
        assert_eq!(numeric(&json!(-0.5)), Some(-1));
        assert_eq!(numeric(&json!("10")), None);
        assert_eq!(numeric(&json!(null)), None);
        assert_eq!(numeric(&json!(u64::MAX)), None);
        assert_eq!(numeric(&json!(1e38)), None);
        assert_eq!(numeric(&json!(-1e38)), None);
        assert_eq!(numeric(&json!(9.3e18)), None);
        assert_eq!(numeric(&json!(1.7e9)), Some(1_700_000_000));
    }
}
