//! The claims checks (`exp`, `nbf`, `iat`, `iss`, `aud`) and the principal built from
//! the claims.

use std::{any::Any, sync::Arc};

use portcullis_core::{AuthError, Claims, Principal, PrincipalKind, internal::numeric_date};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::JwtAuthenticator;

impl<C> JwtAuthenticator<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    fn validate(&self, claims: &Registered<'_>, now: i64) -> Result<Times, AuthError> {
        let inner = &*self.inner;
        let leeway = inner.leeway;
        let exp = match claims.exp {
            None => {
                return Err(AuthError::invalid_token("missing_exp")
                    .with_description("the token has no expiry"));
            }
            Some(v) => numeric(v).ok_or_else(|| AuthError::invalid_token("invalid_exp"))?,
        };
        if now >= exp.saturating_add(leeway) {
            return Err(
                AuthError::invalid_token("token_expired").with_description("the token has expired")
            );
        }
        if let Some(v) = claims.nbf {
            let nbf = numeric(v).ok_or_else(|| AuthError::invalid_token("invalid_nbf"))?;
            if now.saturating_add(leeway) < nbf {
                return Err(AuthError::invalid_token("token_not_yet_valid")
                    .with_description("the token is not valid yet"));
            }
        }
        let iat = match claims.iat {
            None => None,
            Some(v) => {
                let iat = numeric(v).ok_or_else(|| AuthError::invalid_token("invalid_iat"))?;
                if iat > now.saturating_add(leeway) {
                    return Err(AuthError::invalid_token("iat_in_future")
                        .with_description("the token was issued in the future"));
                }
                Some(iat)
            }
        };
        match claims.iss {
            None => return Err(AuthError::invalid_token("missing_iss")),
            Some(Value::String(iss)) if inner.issuers.iter().any(|i| **i == **iss) => {}
            Some(_) => {
                return Err(AuthError::invalid_token("wrong_issuer")
                    .with_description("the token's issuer is not trusted"));
            }
        }
        if let Some(audiences) = &inner.audiences {
            let ours = |a: &str| audiences.iter().any(|o| **o == *a);
            let ok = match claims.aud {
                None => return Err(AuthError::invalid_token("missing_aud")),
                Some(Value::String(aud)) => ours(aud),
                Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(ours),
                Some(_) => false,
            };
            if !ok {
                return Err(AuthError::invalid_token("wrong_audience")
                    .with_description("the token is not meant for this service"));
            }
        }
        Ok(Times { exp, iat })
    }

    /// Checks the claims at `now` and builds the principal from them.
    pub(super) fn principal(
        &self,
        claims: Map<String, Value>,
        now: i64,
    ) -> Result<(Principal, Times), AuthError> {
        let inner = &*self.inner;
        let registered = Registered::of(&claims);
        let times = self.validate(&registered, now)?;
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
            Principal::builder(subject, kind).claim_mapping(Arc::clone(&inner.mapping));
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
        Ok((principal, times))
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
}

impl<'a> Registered<'a> {
    fn of(claims: &'a Map<String, Value>) -> Self {
        let mut r = Self::default();
        for (name, value) in claims {
            let slot = match name.as_str() {
                "exp" => &mut r.exp,
                "nbf" => &mut r.nbf,
                "iat" => &mut r.iat,
                "iss" => &mut r.iss,
                "aud" => &mut r.aud,
                "sub" => &mut r.sub,
                "jti" => &mut r.jti,
                "client_id" => &mut r.client_id,
                "azp" => &mut r.azp,
                _ => continue,
            };
            *slot = Some(value);
        }
        r
    }
}

/// A NumericDate (RFC 7519 §2): a JSON number, possibly fractional, floored to
/// seconds. Strings and other types are refused.
fn numeric(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // Saturating float-to-int conversion; NaN cannot come out of JSON.
    f.is_finite().then(|| f.floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numeric_date_accepts_numbers_only() {
        assert_eq!(numeric(&json!(10)), Some(10));
        assert_eq!(numeric(&json!(10.9)), Some(10));
        assert_eq!(numeric(&json!(-0.5)), Some(-1));
        assert_eq!(numeric(&json!("10")), None);
        assert_eq!(numeric(&json!(null)), None);
        assert_eq!(numeric(&json!(u64::MAX)), Some(i64::MAX));
    }
}
