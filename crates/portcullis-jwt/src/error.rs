//! Build-time errors: [`KeyError`] for key material, [`ConfigError`] for the
//! authenticator's configuration. Request-time failures are
//! [`AuthError`](portcullis_core::AuthError)s instead.

use std::{error::Error as StdError, fmt};

/// What was wrong with a key. Returned by [`KeyError::kind`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyErrorKind {
    /// The key is too weak: an HMAC secret shorter than the hash output, or an RSA
    /// modulus under 2048 bits (or a public exponent that is even or 1).
    Weak,
    /// The key material does not parse (bad PEM, DER, JWK, or an EC point off the curve).
    Malformed,
    /// The key's type does not fit the algorithm (an HMAC secret for RS256, an RSA key
    /// for ES256, a P-384 point for ES256).
    WrongType,
    /// The algorithm is not supported (`none`, ES512, unknown names).
    UnsupportedAlgorithm,
    /// A JWK names no algorithm, or one that disagrees with the one asked for.
    AlgorithmMismatch,
    /// A JWK is not meant for verifying signatures (`use` is not `sig`, or `key_ops`
    /// lacks `verify`).
    WrongUse,
    /// A JWK carries private key material where a public key belongs.
    PrivateKeyMaterial,
    /// A `kid` is empty or longer than [`MAX_KID_LEN`](crate::MAX_KID_LEN) bytes.
    InvalidKid,
    /// Two keys share a `kid`.
    DuplicateKid,
}

impl KeyErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Weak => "the key is too weak",
            Self::Malformed => "the key material is malformed",
            Self::WrongType => "the key type does not fit the algorithm",
            Self::UnsupportedAlgorithm => "the algorithm is not supported",
            Self::AlgorithmMismatch => "the key's algorithm is missing or does not match",
            Self::WrongUse => "the key is not meant for signature verification",
            Self::PrivateKeyMaterial => "the key holds private key material",
            Self::InvalidKid => "the key id is empty or too long",
            Self::DuplicateKid => "two keys share a key id",
        }
    }
}

/// A key could not be built. See [`kind`](Self::kind) for what went wrong.
///
/// The message names the problem, never the key material.
#[derive(Clone)]
pub struct KeyError {
    kind: KeyErrorKind,
    detail: &'static str,
}

impl KeyError {
    pub(crate) fn new(kind: KeyErrorKind, detail: &'static str) -> Self {
        Self { kind, detail }
    }

    /// What went wrong.
    pub fn kind(&self) -> KeyErrorKind {
        self.kind
    }
}

impl fmt::Debug for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyError")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .finish()
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)
    }
}

impl StdError for KeyError {}

/// What was wrong with a configuration. Returned by [`ConfigError::kind`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// No key was configured.
    NoKeys,
    /// No issuer was configured (`iss` is always checked).
    NoIssuer,
    /// No audience was configured, and the audience check was not explicitly waived.
    NoAudience,
    /// An issuer or audience is empty.
    EmptyValue,
    /// A key was refused; see [`ConfigError::key_error`].
    Key,
    /// Two trusted issuers share an identifier.
    DuplicateIssuer,
    /// Keys that belong to no single issuer: static keys given beside several
    /// [`issuer`](crate::JwtAuthenticatorBuilder::issuer)s (give each issuer its own
    /// with [`trust`](crate::JwtAuthenticatorBuilder::trust)), or an issuer with both
    /// static and remote keys.
    AmbiguousKeys,
    /// A DPoP proof algorithm that is not asymmetric, or an empty list of them.
    DpopAlgorithm,
    /// A DPoP nonce secret shorter than 32 bytes.
    DpopNonceSecret,
    /// A DPoP public URL that is not an absolute `http`/`https` URL without query,
    /// fragment or user information.
    PublicUrl,
}

/// The authenticator could not be built. See [`kind`](Self::kind).
#[derive(Clone)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    key: Option<KeyError>,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind) -> Self {
        Self { kind, key: None }
    }

    /// What went wrong.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The key error, when [`kind`](Self::kind) is [`ConfigErrorKind::Key`].
    pub fn key_error(&self) -> Option<&KeyError> {
        self.key.as_ref()
    }
}

impl From<KeyError> for ConfigError {
    fn from(key: KeyError) -> Self {
        Self {
            kind: ConfigErrorKind::Key,
            key: Some(key),
        }
    }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigError")
            .field("kind", &self.kind)
            .field("key", &self.key)
            .finish()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ConfigErrorKind::NoKeys => f.write_str("no verification key configured"),
            ConfigErrorKind::NoIssuer => f.write_str("no issuer configured"),
            ConfigErrorKind::NoAudience => f.write_str("no audience configured"),
            ConfigErrorKind::EmptyValue => f.write_str("an issuer or audience is empty"),
            ConfigErrorKind::Key => f.write_str("a key was refused"),
            ConfigErrorKind::DuplicateIssuer => f.write_str("an issuer is configured twice"),
            ConfigErrorKind::AmbiguousKeys => {
                f.write_str("keys must belong to exactly one issuer each")
            }
            ConfigErrorKind::DpopAlgorithm => {
                f.write_str("DPoP proofs need at least one algorithm, all asymmetric")
            }
            ConfigErrorKind::DpopNonceSecret => {
                f.write_str("the DPoP nonce secret must be at least 32 bytes")
            }
            ConfigErrorKind::PublicUrl => {
                f.write_str("the public URL must be an absolute http(s) URL without query")
            }
        }
    }
}

impl StdError for ConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.key.as_ref().map(|k| k as &(dyn StdError + 'static))
    }
}
