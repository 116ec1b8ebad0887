//! Verification keys: one algorithm each, checked for strength when built.
//!
//! A [`Key`] pins its algorithm: the token's header must name exactly that algorithm,
//! and never selects another. Keys come from HMAC secrets, PEM, DER or JWK; weak or
//! malformed material is a [`KeyError`] at build time, never a warning.
//!
//! Signatures are verified by `jsonwebtoken`'s verifiers (`JwtVerifier`, from its
//! `aws_lc_rs` provider). Each thread builds a key's verifier once and keeps it while
//! the key lives, so an HMAC key schedule is not recomputed per token. Each key is
//! checked and parsed once, at build time: public keys
//! are parsed by aws-lc-rs (a point off its curve, a DER that does not parse, or an RSA
//! key under 2048 bits or with a bad exponent is a [`KeyError`] then, not a refusal per
//! request), and the [`jsonwebtoken::DecodingKey`] a request verifies with is built
//! from the checked key, in the form aws-lc-rs reads first (PKCS#1 `RSAPublicKey` for
//! RSA, SubjectPublicKeyInfo for EC, the raw 32 bytes for Ed25519, the secret for
//! HMAC). Building a key also installs jsonwebtoken's aws-lc-rs `CryptoProvider` as the
//! process default when none is installed yet, so verification never depends on which
//! of jsonwebtoken's crypto features the dependency graph happens to enable.

use std::{fmt, sync::Arc};

use aws_lc_rs::{
    encoding::AsDer as _,
    signature::{self as sig, ParsedPublicKey},
};
use base64::Engine as _;
use jsonwebtoken::{DecodingKey, crypto::CryptoProvider};
use serde_json::Value;

use crate::{
    compact::B64,
    error::{KeyError, KeyErrorKind},
};

/// A JWS algorithm a [`Key`] can be pinned to
/// ([RFC 7518 §3.1](https://www.rfc-editor.org/rfc/rfc7518#section-3.1), and EdDSA with
/// Ed25519 from RFC 8037). `none` is not one of them.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Parses a JOSE algorithm name, exactly (case-sensitive). `none` is `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        algorithm_from_name(name)
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        algorithm_name(self)
    }
}

/// The longest `kid` accepted, in configuration and in tokens (bytes).
pub const MAX_KID_LEN: usize = 256;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// The JOSE name of `alg` (`HS256`, …, `EdDSA`).
pub fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
    }
}

fn algorithm_from_name(name: &str) -> Option<Algorithm> {
    Some(match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

fn family(alg: Algorithm) -> Family {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Hmac,
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Family::Rsa,
        Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
        Algorithm::EdDSA => Family::Ed,
    }
}

fn public_algorithm(alg: Algorithm) -> &'static dyn sig::VerificationAlgorithm {
    match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        // HMAC never reaches here; EdDSA is the rest.
        _ => &sig::ED25519,
    }
}

/// What a [`Key`] verifies with: jsonwebtoken's key, built once, and its algorithm.
struct Material {
    decoding: DecodingKey,
    alg: jsonwebtoken::Algorithm,
}

/// Our algorithm as jsonwebtoken names it.
fn jsonwebtoken_algorithm(alg: Algorithm) -> jsonwebtoken::Algorithm {
    use jsonwebtoken::Algorithm as J;
    match alg {
        Algorithm::HS256 => J::HS256,
        Algorithm::HS384 => J::HS384,
        Algorithm::HS512 => J::HS512,
        Algorithm::RS256 => J::RS256,
        Algorithm::RS384 => J::RS384,
        Algorithm::RS512 => J::RS512,
        Algorithm::PS256 => J::PS256,
        Algorithm::PS384 => J::PS384,
        Algorithm::PS512 => J::PS512,
        Algorithm::ES256 => J::ES256,
        Algorithm::ES384 => J::ES384,
        Algorithm::EdDSA => J::EdDSA,
    }
}

/// Makes jsonwebtoken's aws-lc-rs provider the process default unless one is already
/// installed (by the application, or by an earlier call). Without it, a dependency
/// graph that enables both of jsonwebtoken's crypto features would leave jsonwebtoken
/// with a provider that panics.
fn install_crypto_provider() {
    // `Err` means a provider is already installed: that one stays.
    let _ = CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
}

/// A verification key pinned to one [`Algorithm`], optionally named by a `kid`.
///
/// ```
/// use portcullis_jwt::{Algorithm, Key};
///
/// let key = Key::hmac(Algorithm::HS256, b"0123456789abcdef0123456789abcdef")?.with_kid("k1")?;
/// assert_eq!(key.algorithm(), Algorithm::HS256);
/// assert_eq!(key.kid(), Some("k1"));
/// // Secrets never show in Debug output.
/// assert!(!format!("{key:?}").contains("0123"));
///
/// // A 16-byte secret is too weak for HS256: a build error, not a warning.
/// assert!(Key::hmac(Algorithm::HS256, b"0123456789abcdef").is_err());
/// # Ok::<(), portcullis_jwt::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Key {
    alg: Algorithm,
    kid: Option<Arc<str>>,
    material: Arc<Material>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("alg", &algorithm_name(self.alg))
            .field("kid", &self.kid)
            .field("material", &"<redacted>")
            .finish()
    }
}

fn err(kind: KeyErrorKind, detail: &'static str) -> KeyError {
    KeyError::new(kind, detail)
}

impl Key {
    /// An HMAC key (`HS256`, `HS384`, `HS512`).
    ///
    /// # Errors
    ///
    /// [`KeyErrorKind::WrongType`] when `alg` is not an HMAC algorithm;
    /// [`KeyErrorKind::Weak`] when the secret is shorter than the hash output
    /// (32, 48 or 64 bytes; [RFC 7518 §3.2](https://www.rfc-editor.org/rfc/rfc7518#section-3.2)).
    pub fn hmac(alg: Algorithm, secret: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let secret = secret.as_ref();
        let min = match alg {
            Algorithm::HS256 => 32,
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            _ => {
                return Err(err(
                    KeyErrorKind::WrongType,
                    "a shared secret only serves HS256, HS384 or HS512",
                ));
            }
        };
        if secret.len() < min {
            return Err(err(
                KeyErrorKind::Weak,
                "the HMAC secret is shorter than the hash output",
            ));
        }
        Ok(Self::from_decoding(alg, DecodingKey::from_secret(secret)))
    }

    /// A public key from PEM: `PUBLIC KEY` (SubjectPublicKeyInfo) for RSA, EC and
    /// Ed25519, or `RSA PUBLIC KEY` (PKCS#1) for RSA.
    ///
    /// # Errors
    ///
    /// [`KeyErrorKind::WrongType`] for an HMAC `alg` or a key of another type;
    /// [`KeyErrorKind::Malformed`] when the PEM or the key does not parse (private
    /// keys and certificates included: give the public key);
    /// [`KeyErrorKind::Weak`] for RSA under 2048 bits.
    pub fn from_pem(alg: Algorithm, pem: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let block = pem::parse(pem.as_ref())
            .map_err(|_| err(KeyErrorKind::Malformed, "the PEM does not parse"))?;
        match block.tag() {
            "PUBLIC KEY" => Self::from_der(alg, block.contents()),
            "RSA PUBLIC KEY" if family(alg) == Family::Rsa => Self::from_der(alg, block.contents()),
            "RSA PUBLIC KEY" => Err(err(
                KeyErrorKind::WrongType,
                "an RSA key cannot serve this algorithm",
            )),
            _ => Err(err(
                KeyErrorKind::Malformed,
                "expected a PEM PUBLIC KEY or RSA PUBLIC KEY block",
            )),
        }
    }

    /// A public key from DER: SubjectPublicKeyInfo, or PKCS#1 `RSAPublicKey` for RSA,
    /// or the raw public point / 32-byte Ed25519 key.
    ///
    /// # Errors
    ///
    /// As for [`from_pem`](Self::from_pem).
    pub fn from_der(alg: Algorithm, der: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let der = der.as_ref();
        match family(alg) {
            Family::Hmac => Err(err(
                KeyErrorKind::WrongType,
                "an HMAC algorithm needs a shared secret, not a public key",
            )),
            Family::Rsa => {
                let info = rsa::inspect(der)?;
                check_rsa(&info)?;
                // Parsed once by aws-lc-rs purely as a check; jsonwebtoken gets PKCS#1.
                parse_public(alg, der)?;
                Ok(Self::from_decoding(
                    alg,
                    DecodingKey::from_rsa_der(info.pkcs1),
                ))
            }
            Family::Ec | Family::Ed => {
                if rsa::inspect(der).is_ok() {
                    return Err(err(
                        KeyErrorKind::WrongType,
                        "an RSA key cannot serve this algorithm",
                    ));
                }
                Self::public(alg, der)
            }
        }
    }

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
            (Some(name), Some(wanted)) if name != algorithm_name(wanted) => {
                return Err(err(
                    KeyErrorKind::AlgorithmMismatch,
                    "the JWK's alg differs from the algorithm asked for",
                ));
            }
            (_, Some(wanted)) => wanted,
            (Some(name), None) => algorithm_from_name(name).ok_or_else(|| {
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
                    _ => ("P-384", 48),
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

    /// Names the key; tokens select it with their header's `kid`.
    ///
    /// # Errors
    ///
    /// [`KeyErrorKind::InvalidKid`] when `kid` is empty or over [`MAX_KID_LEN`] bytes.
    pub fn with_kid(mut self, kid: impl AsRef<str>) -> Result<Self, KeyError> {
        let kid = kid.as_ref();
        if kid.is_empty() || kid.len() > MAX_KID_LEN {
            return Err(err(KeyErrorKind::InvalidKid, "a kid is 1 to 256 bytes"));
        }
        self.kid = Some(kid.into());
        Ok(self)
    }

    /// The pinned algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id, if named.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether this is a shared secret (HMAC) rather than a public key.
    pub fn is_symmetric(&self) -> bool {
        family(self.alg) == Family::Hmac
    }

    fn from_decoding(alg: Algorithm, decoding: DecodingKey) -> Self {
        install_crypto_provider();
        Self {
            alg,
            kid: None,
            material: Arc::new(Material {
                decoding,
                alg: jsonwebtoken_algorithm(alg),
            }),
        }
    }

    /// An EC or Ed25519 key from SubjectPublicKeyInfo DER or the raw public key.
    fn public(alg: Algorithm, der: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let parsed = parse_public(alg, der.as_ref())?;
        let spki = parsed.as_der().map_err(|_| {
            err(
                KeyErrorKind::Malformed,
                "the public key does not parse for this algorithm",
            )
        })?;
        let spki = spki.as_ref();
        let decoding = match family(alg) {
            Family::Ed => {
                let raw = spki
                    .strip_prefix(ED25519_SPKI_PREFIX)
                    .ok_or_else(|| err(KeyErrorKind::Malformed, "an Ed25519 key is 32 bytes"))?;
                DecodingKey::from_ed_der(raw)
            }
            _ => DecodingKey::from_ec_der(spki),
        };
        Ok(Self::from_decoding(alg, decoding))
    }

    /// Checks `signature` (the token's decoded signature segment) over `message` with
    /// jsonwebtoken's verifier for this key. HMAC tags are compared in constant time.
    pub(crate) fn verify(&self, message: &[u8], signature: &Vec<u8>) -> bool {
        verifiers::with(&self.material, |verifier| {
            verifier.is_some_and(|v| v.verify(message, signature).is_ok())
        })
    }
}

/// Each thread's jsonwebtoken verifiers, one per live key. A `JwtVerifier` is neither
/// `Send` nor `Sync`, so it cannot sit in the shared key; built per thread and kept,
/// it costs its construction (for HMAC, the key schedule) once per thread and key
/// instead of once per token.
mod verifiers {
    use std::{
        cell::RefCell,
        sync::{Arc, Weak},
    };

    use jsonwebtoken::crypto::JwtVerifier;

    use super::Material;

    /// Past this many keys a thread drops the verifiers of keys that are gone, then,
    /// if still full, all of them.
    const PER_THREAD: usize = 32;

    /// A key (weakly held) and the verifier built for it, if jsonwebtoken built one.
    type Entry = (Weak<Material>, Option<Box<dyn JwtVerifier>>);

    thread_local! {
        // The `Weak` keeps its key's allocation reserved while the entry exists, so an
        // address match always means the same key, never a new one at a reused address.
        static VERIFIERS: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    }

    /// Runs `f` with this thread's verifier for `material` (`None` when jsonwebtoken
    /// cannot build one for it, which verifies nothing).
    pub(super) fn with<R>(
        material: &Arc<Material>,
        f: impl FnOnce(Option<&dyn JwtVerifier>) -> R,
    ) -> R {
        VERIFIERS.with(|cell| {
            let mut verifiers = cell.borrow_mut();
            let ptr = Arc::as_ptr(material);
            let index = match verifiers.iter().position(|(w, _)| w.as_ptr() == ptr) {
                Some(i) => i,
                None => {
                    if verifiers.len() >= PER_THREAD {
                        verifiers.retain(|(w, _)| w.strong_count() > 0);
                        if verifiers.len() >= PER_THREAD {
                            verifiers.clear();
                        }
                    }
                    let built = (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.verifier_factory)(
                        &material.alg,
                        &material.decoding,
                    )
                    .ok();
                    verifiers.push((Arc::downgrade(material), built));
                    verifiers.len() - 1
                }
            };
            f(verifiers[index].1.as_deref())
        })
    }

    #[cfg(test)]
    pub(super) fn cached() -> usize {
        VERIFIERS.with(|cell| cell.borrow().len())
    }
}

/// The SubjectPublicKeyInfo header of an Ed25519 key (RFC 8410): the raw 32-byte key
/// follows it.
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Parses a public key with aws-lc-rs, as a build-time check of its encoding, its
/// curve and its point.
fn parse_public(alg: Algorithm, der: &[u8]) -> Result<ParsedPublicKey, KeyError> {
    ParsedPublicKey::new(public_algorithm(alg), der).map_err(|_| {
        err(
            KeyErrorKind::Malformed,
            "the public key does not parse for this algorithm",
        )
    })
}

fn check_rsa(info: &rsa::Info<'_>) -> Result<(), KeyError> {
    if info.modulus_bits < MIN_RSA_BITS {
        return Err(err(
            KeyErrorKind::Weak,
            "the RSA modulus is under 2048 bits",
        ));
    }
    if !info.exponent_ok {
        return Err(err(
            KeyErrorKind::Weak,
            "the RSA public exponent is even or 1",
        ));
    }
    Ok(())
}

/// Just enough DER to read an RSA public key's modulus size and exponent, and to
/// write a PKCS#1 `RSAPublicKey` from JWK components.
mod rsa {
    use super::{KeyError, KeyErrorKind, err};

    pub(super) struct Info<'a> {
        pub(super) modulus_bits: usize,
        pub(super) exponent_ok: bool,
        /// The PKCS#1 `RSAPublicKey`, within the input.
        pub(super) pkcs1: &'a [u8],
    }

    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const BIT_STRING: u8 = 0x03;
    const OID: u8 = 0x06;
    /// 1.2.840.113549.1.1.1, rsaEncryption.
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

    fn malformed() -> KeyError {
        err(KeyErrorKind::Malformed, "the RSA public key does not parse")
    }

    /// Reads one TLV; returns (tag, contents, rest).
    fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), KeyError> {
        let (&tag, rest) = input.split_first().ok_or_else(malformed)?;
        let (&first, mut rest) = rest.split_first().ok_or_else(malformed)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(malformed());
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | usize::from(b);
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(malformed());
        }
        Ok((tag, &rest[..len], &rest[len..]))
    }

    fn strip(int: &[u8]) -> &[u8] {
        let zeros = int.iter().take_while(|&&b| b == 0).count();
        &int[zeros..]
    }

    /// Reads `RSAPublicKey` (PKCS#1) or a SubjectPublicKeyInfo holding one.
    pub(super) fn inspect(der: &[u8]) -> Result<Info<'_>, KeyError> {
        let (tag, body, rest) = tlv(der)?;
        if tag != SEQUENCE || !rest.is_empty() {
            return Err(malformed());
        }
        let (tag, first, after) = tlv(body)?;
        match tag {
            INTEGER => {
                let (tag, e, rest) = tlv(after)?;
                if tag != INTEGER || !rest.is_empty() {
                    return Err(malformed());
                }
                let n = strip(first);
                let e = strip(e);
                let Some(&top) = n.first() else {
                    return Err(malformed());
                };
                let bits = n.len() * 8 - top.leading_zeros() as usize;
                let exponent_ok = e.last().is_some_and(|&b| b & 1 == 1) && e != [1];
                Ok(Info {
                    modulus_bits: bits,
                    exponent_ok,
                    pkcs1: der,
                })
            }
            SEQUENCE => {
                let (tag, oid, _) = tlv(first)?;
                if tag != OID || oid != RSA_ENCRYPTION {
                    return Err(malformed());
                }
                let (tag, bits, rest) = tlv(after)?;
                if tag != BIT_STRING || !rest.is_empty() {
                    return Err(malformed());
                }
                match bits.split_first() {
                    Some((0, key)) => inspect(key),
                    _ => Err(malformed()),
                }
            }
            _ => Err(malformed()),
        }
    }

    fn push_len(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }

    fn push_uint(out: &mut Vec<u8>, value: &[u8]) {
        let value = strip(value);
        let pad = value.first().is_none_or(|&b| b & 0x80 != 0);
        out.push(INTEGER);
        push_len(out, value.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(value);
    }

    /// Encodes PKCS#1 `RSAPublicKey { n, e }`.
    pub(super) fn encode_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
        let mut body = Vec::with_capacity(n.len() + e.len() + 16);
        push_uint(&mut body, n);
        push_uint(&mut body, e);
        let mut out = Vec::with_capacity(body.len() + 6);
        out.push(SEQUENCE);
        push_len(&mut out, body.len());
        out.extend_from_slice(&body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/");

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!("{KEYS}{name}")).unwrap()
    }

    #[test]
    fn hmac_secret_shorter_than_hash_is_weak() {
        for (alg, len) in [
            (Algorithm::HS256, 32),
            (Algorithm::HS384, 48),
            (Algorithm::HS512, 64),
        ] {
            let e = Key::hmac(alg, vec![1; len - 1]).unwrap_err();
            assert_eq!(e.kind(), KeyErrorKind::Weak);
            assert!(Key::hmac(alg, vec![1; len]).is_ok());
        }
    }

    #[test]
    fn rsa_1024_is_weak() {
        let e = Key::from_pem(Algorithm::RS256, read("test-only-rsa1024-public.pem")).unwrap_err();
        assert_eq!(e.kind(), KeyErrorKind::Weak);
    }

    #[test]
    fn rsa_2048_parses_from_spki_pem_pkcs1_pem_and_der() {
        for alg in [Algorithm::RS256, Algorithm::PS512] {
            Key::from_pem(alg, read("test-only-rsa2048-public.pem")).unwrap();
            Key::from_pem(alg, read("test-only-rsa2048-public-pkcs1.pem")).unwrap();
            Key::from_der(alg, read("test-only-rsa2048-public.der")).unwrap();
        }
    }

    #[test]
    fn rsa_modulus_is_measured_from_der() {
        let der = read("test-only-rsa2048-public.der");
        let info = rsa::inspect(&der).unwrap();
        assert_eq!(info.modulus_bits, 2048);
        assert!(info.exponent_ok);
    }

    #[test]
    fn jwk_rsa_components_round_trip_through_der() {
        let der = rsa::encode_public_key(&[0xc5; 256], &[1, 0, 1]);
        let info = rsa::inspect(&der).unwrap();
        assert_eq!(info.modulus_bits, 2048);
        let small = rsa::encode_public_key(&[0xc5; 128], &[1, 0, 1]);
        assert_eq!(rsa::inspect(&small).unwrap().modulus_bits, 1024);
        let e1 = rsa::encode_public_key(&[0xc5; 256], &[1]);
        assert!(!rsa::inspect(&e1).unwrap().exponent_ok);
    }

    #[test]
    fn ec_and_ed_keys_parse_and_pin_their_curve() {
        Key::from_pem(Algorithm::ES256, read("test-only-p256-public.pem")).unwrap();
        Key::from_der(Algorithm::ES256, read("test-only-p256-public.der")).unwrap();
        Key::from_pem(Algorithm::ES384, read("test-only-p384-public.pem")).unwrap();
        Key::from_pem(Algorithm::EdDSA, read("test-only-ed25519-public.pem")).unwrap();
        Key::from_der(Algorithm::EdDSA, read("test-only-ed25519-public.der")).unwrap();
        // A P-384 key cannot serve ES256, nor an RSA key EdDSA.
        assert!(Key::from_pem(Algorithm::ES256, read("test-only-p384-public.pem")).is_err());
        assert_eq!(
            Key::from_pem(Algorithm::EdDSA, read("test-only-rsa2048-public.pem"))
                .unwrap_err()
                .kind(),
            KeyErrorKind::WrongType
        );
    }

    #[test]
    fn ec_point_off_the_curve_is_malformed() {
        let mut point = vec![4u8];
        point.extend_from_slice(&[1; 64]);
        let e = Key::from_der(Algorithm::ES256, point).unwrap_err();
        assert_eq!(e.kind(), KeyErrorKind::Malformed);
    }

    #[test]
    fn private_key_pem_is_refused() {
        let e = Key::from_pem(Algorithm::ES256, read("test-only-p256-private.pem")).unwrap_err();
        assert_eq!(e.kind(), KeyErrorKind::Malformed);
    }

    #[test]
    fn public_key_never_serves_hmac_and_secret_never_serves_rsa() {
        assert_eq!(
            Key::from_pem(Algorithm::HS256, read("test-only-rsa2048-public.pem"))
                .unwrap_err()
                .kind(),
            KeyErrorKind::WrongType
        );
        assert_eq!(
            Key::hmac(Algorithm::RS256, [0u8; 64]).unwrap_err().kind(),
            KeyErrorKind::WrongType
        );
    }

    #[test]
    fn jwk_rules() {
        let ok = r#"{"kty":"oct","alg":"HS256","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","kid":"a"}"#;
        assert_eq!(Key::from_jwk(ok).unwrap().kid(), Some("a"));
        let no_alg = r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
        assert_eq!(
            Key::from_jwk(no_alg).unwrap_err().kind(),
            KeyErrorKind::AlgorithmMismatch
        );
        let enc = r#"{"kty":"oct","alg":"HS256","use":"enc","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
        assert_eq!(
            Key::from_jwk(enc).unwrap_err().kind(),
            KeyErrorKind::WrongUse
        );
        let short = r#"{"kty":"oct","alg":"HS256","k":"AAAA"}"#;
        assert_eq!(Key::from_jwk(short).unwrap_err().kind(), KeyErrorKind::Weak);
        let none = r#"{"kty":"oct","alg":"none","k":"AAAA"}"#;
        assert_eq!(
            Key::from_jwk(none).unwrap_err().kind(),
            KeyErrorKind::UnsupportedAlgorithm
        );
        let confused =
            r#"{"kty":"oct","alg":"RS256","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
        assert_eq!(
            Key::from_jwk(confused).unwrap_err().kind(),
            KeyErrorKind::WrongType
        );
    }

    #[test]
    fn kid_is_length_capped() {
        let key = Key::hmac(Algorithm::HS256, [1u8; 32]).unwrap();
        assert!(key.clone().with_kid("x".repeat(MAX_KID_LEN)).is_ok());
        assert_eq!(
            key.clone()
                .with_kid("x".repeat(MAX_KID_LEN + 1))
                .unwrap_err()
                .kind(),
            KeyErrorKind::InvalidKid
        );
        assert!(key.with_kid("").is_err());
    }

    #[test]
    fn building_a_key_selects_the_aws_lc_provider() {
        Key::hmac(Algorithm::HS256, [1u8; 32]).unwrap();
        let installed =
            CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER)
                .unwrap_err();
        assert!(std::ptr::eq(
            installed,
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
        ));
    }

    #[test]
    fn decoding_keys_hold_the_canonical_forms() {
        let bytes = |key: &Key| key.material.decoding.try_get_as_bytes().unwrap().to_vec();
        // RSA: PKCS#1 whether given as SubjectPublicKeyInfo or PKCS#1.
        let pkcs1 = pem::parse(read("test-only-rsa2048-public-pkcs1.pem")).unwrap();
        let from_spki =
            Key::from_pem(Algorithm::RS256, read("test-only-rsa2048-public.pem")).unwrap();
        assert_eq!(bytes(&from_spki), pkcs1.contents());
        // Ed25519: the raw 32 bytes, from SubjectPublicKeyInfo or raw.
        let ed = Key::from_pem(Algorithm::EdDSA, read("test-only-ed25519-public.pem")).unwrap();
        let raw = bytes(&ed);
        assert_eq!(raw.len(), 32);
        assert_eq!(bytes(&Key::from_der(Algorithm::EdDSA, &raw).unwrap()), raw);
        // EC: SubjectPublicKeyInfo, also from the bare point.
        let ec = Key::from_der(Algorithm::ES256, read("test-only-p256-public.der")).unwrap();
        let spki = bytes(&ec);
        let point = &spki[spki.len() - 65..];
        assert_eq!(point[0], 4);
        assert_eq!(
            bytes(&Key::from_der(Algorithm::ES256, point).unwrap()),
            spki
        );
    }

    #[test]
    fn verify_goes_through_jsonwebtoken_and_refuses_tampering() {
        use jsonwebtoken::{EncodingKey, crypto::sign};
        let message = b"header.payload";
        let cases = [
            (
                Key::hmac(Algorithm::HS384, [7u8; 48]).unwrap(),
                EncodingKey::from_secret(&[7u8; 48]),
            ),
            (
                Key::from_pem(Algorithm::PS256, read("test-only-rsa2048-public.pem")).unwrap(),
                EncodingKey::from_rsa_pem(&read("test-only-rsa2048-private.pem")).unwrap(),
            ),
            (
                Key::from_pem(Algorithm::ES256, read("test-only-p256-public.pem")).unwrap(),
                EncodingKey::from_ec_pem(&read("test-only-p256-private.pem")).unwrap(),
            ),
            (
                Key::from_pem(Algorithm::EdDSA, read("test-only-ed25519-public.pem")).unwrap(),
                EncodingKey::from_ed_pem(&read("test-only-ed25519-private.pem")).unwrap(),
            ),
        ];
        for (key, signing) in cases {
            let signature_b64 =
                sign(message, &signing, jsonwebtoken_algorithm(key.algorithm())).unwrap();
            let signature = crate::compact::decode(&signature_b64).unwrap();
            assert!(key.verify(message, &signature), "{:?}", key.algorithm());
            assert!(!key.verify(b"header.payloaD", &signature));
            let mut other = signature.clone();
            other[0] ^= 1;
            assert!(!key.verify(message, &other));
            // Truncated or empty: refused, not a panic.
            assert!(!key.verify(message, &signature[..signature.len() - 1].to_vec()));
            assert!(!key.verify(message, &Vec::new()));
        }
    }

    #[test]
    fn each_thread_builds_a_keys_verifier_once_and_forgets_dead_keys() {
        std::thread::spawn(|| {
            let key = Key::hmac(Algorithm::HS256, [9u8; 32]).unwrap();
            let signing = jsonwebtoken::EncodingKey::from_secret(&[9u8; 32]);
            let signature_b64 =
                jsonwebtoken::crypto::sign(b"m", &signing, jsonwebtoken::Algorithm::HS256).unwrap();
            let signature = crate::compact::decode(&signature_b64).unwrap();
            for _ in 0..3 {
                assert!(key.verify(b"m", &signature));
            }
            assert_eq!(super::verifiers::cached(), 1, "one verifier for one key");
            // A different key with the same secret is another entry, never the first's.
            let twin = Key::hmac(Algorithm::HS256, [9u8; 32]).unwrap();
            assert!(twin.verify(b"m", &signature));
            assert_eq!(super::verifiers::cached(), 2);
            drop((key, twin));
            // Many short-lived keys: the thread's list stays bounded.
            for i in 0..200u8 {
                let k = Key::hmac(Algorithm::HS256, [i; 32]).unwrap();
                assert!(!k.verify(b"m", &signature) || i == 9);
                assert!(super::verifiers::cached() <= 32);
            }
            // A key whose secret differs refuses even when built at a reused address.
            let other = Key::hmac(Algorithm::HS256, [8u8; 32]).unwrap();
            assert!(!other.verify(b"m", &signature));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn debug_redacts_material() {
        let key = Key::hmac(Algorithm::HS256, b"super-secret-super-secret-123456").unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("super-secret"), "{shown}");
    }
}
