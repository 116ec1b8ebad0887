//! One proof checked as RFC 9449 §4.3 lists.

use base64::Engine as _;
use http::Method;
use portcullis_core::AuthError;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Dpop, url::Normalized};
use crate::{
    compact::{self, B64},
    json,
    key::{Algorithm, Key},
};

/// The longest proof accepted, in bytes: a header with a 4096-bit RSA key, claims and
/// a signature fit in well under half of it.
const MAX_PROOF_LEN: usize = 8 * 1024;

/// The longest `jti` accepted, in bytes.
const MAX_JTI_LEN: usize = 256;

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A proof that passed every check but the replay check and the token binding.
#[derive(Debug)]
pub(crate) struct Proof {
    /// The RFC 7638 thumbprint of the proof's key, base64url.
    pub(crate) jkt: String,
    /// Names the proof in the replay cache: a digest of `jkt` and `jti`.
    pub(crate) id: [u8; 32],
    /// Until when the proof could be accepted (Unix seconds, exclusive).
    pub(crate) until: i64,
}

/// What the proof is checked against.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a Method,
    pub(crate) url: &'a Normalized,
    /// The access token the proof must name (`ath`); `None` at a token endpoint.
    pub(crate) token: Option<&'a str>,
    pub(crate) now: i64,
}

fn invalid(reason: &'static str) -> AuthError {
    AuthError::invalid_dpop_proof(reason)
}

/// Checks `proof` for `request`: RFC 9449 §4.3 steps 2 to 11, and the `ath` half of
/// step 12 when an access token comes with it.
pub(crate) fn check(dpop: &Dpop, proof: &str, request: &Request<'_>) -> Result<Proof, AuthError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(invalid("dpop_proof_too_large"));
    }
    let malformed = || invalid("malformed_dpop_proof");
    let segments = compact::split(proof).map_err(|_| malformed())?;
    let header = compact::decode(segments.header).map_err(|_| malformed())?;
    let header = json::parse_object(&header).map_err(|_| malformed())?;
    let payload = compact::decode(segments.payload).map_err(|_| malformed())?;
    let claims = json::parse_object(&payload).map_err(|_| malformed())?;
    let signature = compact::decode(segments.signature).map_err(|_| malformed())?;

    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(invalid("dpop_typ_mismatch"));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name)
        .filter(|alg| dpop.algorithms.contains(alg))
        .ok_or_else(|| invalid("dpop_alg_not_allowed"))?;
    if header.contains_key("crit") {
        return Err(invalid("dpop_crit_unsupported"));
    }
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("dpop_jwk_missing"))?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid("dpop_jwk_private"));
    }
    let key = Key::from_jwk_value(&Value::Object(jwk.clone()), Some(alg))
        .map_err(|_| invalid("dpop_jwk_invalid"))?;
    if !key.verify(segments.signing_input.as_bytes(), &signature) {
        return Err(invalid("dpop_bad_signature"));
    }
    let jkt = thumbprint(jwk).ok_or_else(|| invalid("dpop_jwk_invalid"))?;

    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or_else(|| invalid("dpop_jti_missing"))?;
    if text("htm") != Some(request.method.as_str()) {
        return Err(invalid("dpop_htm_mismatch"));
    }
    let htu = text("htu").and_then(super::url::normalize);
    if htu.as_ref() != Some(request.url) {
        return Err(invalid("dpop_htu_mismatch"));
    }
    if let Some(nonces) = &dpop.nonces
        && !text("nonce").is_some_and(|n| nonces.accepts(n, request.now))
    {
        return Err(AuthError::use_dpop_nonce(nonces.current(request.now)));
    }
    let iat = claims
        .get("iat")
        .and_then(numeric)
        .ok_or_else(|| invalid("dpop_iat_missing"))?;
    if iat > request.now.saturating_add(dpop.leeway) {
        return Err(invalid("dpop_iat_in_future"));
    }
    if iat < request.now.saturating_sub(dpop.max_age) {
        return Err(invalid("dpop_proof_expired"));
    }
    if let Some(token) = request.token {
        let ath = text("ath").ok_or_else(|| invalid("dpop_ath_missing"))?;
        if ath != B64.encode(Sha256::digest(token.as_bytes())) {
            return Err(invalid("dpop_ath_mismatch"));
        }
    }

    let mut digest = Sha256::new();
    digest.update(jkt.as_bytes());
    digest.update(b"\n");
    digest.update(jti.as_bytes());
    Ok(Proof {
        jkt,
        id: digest.finalize().into(),
        until: iat.saturating_add(dpop.max_age).saturating_add(1),
    })
}

/// A NumericDate, whole seconds (a fraction is dropped).
fn numeric(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

/// The JWK SHA-256 thumbprint of a public key
/// ([RFC 7638 §3](https://www.rfc-editor.org/rfc/rfc7638#section-3)): the required
/// members in lexicographic order, no whitespace, hashed, base64url.
pub(crate) fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&serde_json::to_string(name).ok()?);
        canonical.push(':');
        canonical.push_str(&serde_json::to_string(value).ok()?);
    }
    canonical.push('}');
    Some(B64.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(jwk.as_object().unwrap()).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn thumbprint_needs_the_required_members() {
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA"});
        assert_eq!(thumbprint(jwk.as_object().unwrap()), None);
        let jwk = serde_json::json!({"kty": "oct", "k": "AA"});
        assert_eq!(thumbprint(jwk.as_object().unwrap()), None);
    }
}
