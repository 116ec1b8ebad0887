//! Keys from JWKs (RFC 7517).

use base64::Engine as _;
use serde_json::Value;

use super::{Algorithm, Family, Key, err, family, rsa};
use crate::{
    compact::B64,
    error::{KeyError, KeyErrorKind},
};

impl Key {
    /// A key from a JWK (RFC 7517) given as JSON text. The JWK's `alg` is required and
    /// pins the algorithm; `kid`, when present, names the key.
    ///
    /// # Errors
    ///
    /// [`KeyErrorKind::AlgorithmMismatch`] without `alg`; [`KeyErrorKind::WrongUse`]
    /// when `use` is not `sig` or `key_ops` lacks `verify`;
    /// [`KeyErrorKind::PrivateKeyMaterial`] for a private RSA/EC/OKP key; and the
    /// errors of the other constructors.
    pub fn from_jwk(jwk: &str) -> Result<Self, KeyError> {
        let value: Value = serde_json::from_str(jwk)
            .map_err(|_| err(KeyErrorKind::Malformed, "the JWK is not JSON"))?;
        Self::from_jwk_value(&value, None)
    }

    /// A key from a parsed JWK. With `alg` given, the JWK's own `alg` may be absent but
    /// must agree when present.
    ///
    /// # Errors
    ///
    /// As for [`from_jwk`](Self::from_jwk).
    pub fn from_jwk_value(jwk: &Value, alg: Option<Algorithm>) -> Result<Self, KeyError> {
        let obj = jwk
            .as_object()
            .ok_or_else(|| err(KeyErrorKind::Malformed, "the JWK is not a JSON object"))?;
        let text = |name: &str| -> Result<Option<&str>, KeyError> {
            match obj.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(err(
                    KeyErrorKind::Malformed,
                    "a JWK member has the wrong type",
                )),
            }
        };
        let bytes = |name: &str| -> Result<Vec<u8>, KeyError> {
            let value = text(name)?
                .ok_or_else(|| err(KeyErrorKind::Malformed, "a JWK member is missing"))?;
            B64.decode(value)
                .map_err(|_| err(KeyErrorKind::Malformed, "a JWK member is not base64url"))
        };

        let alg = match (text("alg")?, alg) {
            (Some(name), Some(wanted)) if name != wanted.name() => {
                return Err(err(
                    KeyErrorKind::AlgorithmMismatch,
                    "the JWK's alg differs from the algorithm asked for",
                ));
            }
            (_, Some(wanted)) => wanted,
            (Some(name), None) => Algorithm::from_name(name).ok_or_else(|| {
                err(
                    KeyErrorKind::UnsupportedAlgorithm,
                    "the JWK's alg is not supported",
                )
            })?,
            (None, None) => {
                return Err(err(
                    KeyErrorKind::AlgorithmMismatch,
                    "the JWK names no alg; give one explicitly",
                ));
            }
        };
        if let Some(key_use) = text("use")?
            && key_use != "sig"
        {
            return Err(err(KeyErrorKind::WrongUse, "the JWK's use is not sig"));
        }
        if let Some(ops) = obj.get("key_ops") {
            let ops = ops
                .as_array()
                .ok_or_else(|| err(KeyErrorKind::Malformed, "key_ops is not an array"))?;
            if !ops.iter().any(|op| op == "verify") {
                return Err(err(KeyErrorKind::WrongUse, "the JWK's key_ops lack verify"));
            }
        }

        let kty = text("kty")?.ok_or_else(|| err(KeyErrorKind::Malformed, "the JWK has no kty"))?;
        let key = match (kty, family(alg)) {
            ("oct", Family::Hmac) => Self::hmac(alg, bytes("k")?)?,
            ("RSA", Family::Rsa) => {
                if obj.contains_key("d") {
                    return Err(err(
                        KeyErrorKind::PrivateKeyMaterial,
                        "give the public JWK (n, e), not the private one",
                    ));
                }
                let der = rsa::encode_public_key(&bytes("n")?, &bytes("e")?);
                Self::from_der(alg, der)?
            }
            ("EC", Family::Ec) => {
                if obj.contains_key("d") {
                    return Err(err(
                        KeyErrorKind::PrivateKeyMaterial,
                        "give the public JWK (x, y), not the private one",
                    ));
                }
                let (crv, size) = match alg {
                    Algorithm::ES256 => ("P-256", 32),
                    Algorithm::ES384 => ("P-384", 48),
                    _ => ("P-521", 66),
                };
                if text("crv")? != Some(crv) {
                    return Err(err(
                        KeyErrorKind::WrongType,
                        "the JWK's crv does not fit alg",
                    ));
                }
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != size || y.len() != size {
                    return Err(err(
                        KeyErrorKind::Malformed,
                        "the EC coordinates have the wrong length",
                    ));
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Self::public(alg, point)?
            }
            ("OKP", Family::Ed) => {
                if obj.contains_key("d") {
                    return Err(err(
                        KeyErrorKind::PrivateKeyMaterial,
                        "give the public JWK (x), not the private one",
                    ));
                }
                if text("crv")? != Some("Ed25519") {
                    return Err(err(KeyErrorKind::WrongType, "only Ed25519 is supported"));
                }
                let x = bytes("x")?;
                if x.len() != 32 {
                    return Err(err(KeyErrorKind::Malformed, "an Ed25519 key is 32 bytes"));
                }
                Self::public(alg, x)?
            }
            _ => {
                return Err(err(
                    KeyErrorKind::WrongType,
                    "the JWK's kty does not fit its algorithm",
                ));
            }
        };
        match text("kid")? {
            Some(kid) => key.with_kid(kid),
            None => Ok(key),
        }
    }
}
