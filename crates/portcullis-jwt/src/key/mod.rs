//! Verification keys: one algorithm each, checked for strength when built.
//!
//! A [`Key`] pins its algorithm: the token's header must name exactly that algorithm,
//! and never selects another. Keys come from HMAC secrets, PEM, DER or JWK; weak or
//! malformed material is a [`KeyError`] at build time, never a warning.
//!
//! Signatures are verified by `jsonwebtoken`'s verifiers (`JwtVerifier`, from its
//! `aws_lc_rs` provider); ES512, which jsonwebtoken lacks, by aws-lc-rs directly, the
//! backend that provider uses. Each thread builds a key's verifier once and keeps it while
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

mod jwk;
mod public;
mod rsa;
#[cfg(test)]
mod tests;
mod verifiers;

use std::{fmt, sync::Arc};

use jsonwebtoken::{DecodingKey, crypto::CryptoProvider};

use crate::error::{KeyError, KeyErrorKind};

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
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Parses a JOSE algorithm name, exactly (case-sensitive). `none` is `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "ES512" => Self::ES512,
            "EdDSA" => Self::EdDSA,
            _ => return None,
        })
    }

    /// The JOSE name (`HS256`, …, `EdDSA`).
    pub fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
        }
    }
}

/// The longest `kid` accepted, in configuration and in tokens (bytes).
pub const MAX_KID_LEN: usize = 256;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

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
        Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => Family::Ec,
        Algorithm::EdDSA => Family::Ed,
    }
}

/// What a [`Key`] verifies with, built once: for a shared secret, jsonwebtoken's key
/// and algorithm; for a public key, the key as aws-lc-rs parsed it, checked with the
/// same aws-lc-rs algorithms jsonwebtoken's provider uses. jsonwebtoken's verifiers
/// take the key's bytes and parse them again for every signature (2.7 µs of an RS256
/// verification's 18.5, 3 µs of an ES256 one's 52.6); a parsed key does not, and it
/// also covers ES512, which jsonwebtoken lacks.
enum Material {
    Jwt {
        decoding: DecodingKey,
        alg: jsonwebtoken::Algorithm,
    },
    AwsLc(aws_lc_rs::signature::ParsedPublicKey),
}

/// Our algorithm as jsonwebtoken names it, if it has it.
fn jsonwebtoken_algorithm(alg: Algorithm) -> Option<jsonwebtoken::Algorithm> {
    use jsonwebtoken::Algorithm as J;
    Some(match alg {
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
        Algorithm::ES512 => return None,
        Algorithm::EdDSA => J::EdDSA,
    })
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
            .field("alg", &self.alg.name())
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

    /// A key verified through jsonwebtoken. `alg` is one jsonwebtoken has.
    fn from_decoding(alg: Algorithm, decoding: DecodingKey) -> Self {
        install_crypto_provider();
        let jwt_alg = jsonwebtoken_algorithm(alg).expect("an algorithm jsonwebtoken verifies");
        Self::from_material(
            alg,
            Material::Jwt {
                decoding,
                alg: jwt_alg,
            },
        )
    }

    fn from_material(alg: Algorithm, material: Material) -> Self {
        Self {
            alg,
            kid: None,
            material: Arc::new(material),
        }
    }

    /// Checks `signature` (the token's decoded signature segment) over `message` with
    /// jsonwebtoken's verifier for a shared secret, or aws-lc-rs's parsed public key.
    /// HMAC tags are compared in constant time.
    pub(crate) fn verify(&self, message: &[u8], signature: &Vec<u8>) -> bool {
        match &*self.material {
            Material::AwsLc(key) => key.verify_sig(message, signature).is_ok(),
            Material::Jwt { .. } => verifiers::with(&self.material, |verifier| {
                verifier.is_some_and(|v| v.verify(message, signature).is_ok())
            }),
        }
    }
}
