//! Errors of configuration and key management.

use std::{error::Error as StdError, fmt};

use crate::{RandomnessError, StoreError, StoreErrorKind};

/// An invalid configuration value: a key prefix ([`KeyFormat::new`](crate::KeyFormat::new))
/// or a pepper ([`KeyHasher::hmac_sha256`](crate::KeyHasher::hmac_sha256)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyConfigError {
    message: &'static str,
}

impl ApiKeyConfigError {
    pub(crate) fn new(message: &'static str) -> Self {
        Self { message }
    }
}

impl fmt::Display for ApiKeyConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl StdError for ApiKeyConfigError {}

/// Why a key-management call on [`ApiKeys`](crate::ApiKeys) failed.
#[derive(Debug)]
pub struct ApiKeyError {
    kind: ApiKeyErrorKind,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

/// The class of an [`ApiKeyError`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKeyErrorKind {
    /// No key has that id (or it belongs to someone else).
    NotFound,
    /// The key is revoked or expired, so it cannot be rotated.
    Inactive,
    /// A conflicting write: the id exists already, or the key was already rotated.
    Conflict,
    /// The store failed.
    Store,
    /// The operating system's random source failed.
    Randomness,
    /// The request was invalid (an empty owner, a zero lifetime).
    InvalidInput,
    /// The session that asked for the key was ended (its owner's password was reset,
    /// or they logged out everywhere) before the key was safely stored; the key was
    /// revoked at once.
    SessionEnded,
}

impl ApiKeyError {
    pub(crate) fn new(kind: ApiKeyErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// The class of error.
    pub fn kind(&self) -> ApiKeyErrorKind {
        self.kind
    }
}

impl fmt::Display for ApiKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            ApiKeyErrorKind::NotFound => "api key not found",
            ApiKeyErrorKind::Inactive => "api key is revoked or expired",
            ApiKeyErrorKind::Conflict => "conflicting api key write",
            ApiKeyErrorKind::Store => "api key store failed",
            ApiKeyErrorKind::Randomness => "the operating system's random source failed",
            ApiKeyErrorKind::InvalidInput => "invalid api key request",
            ApiKeyErrorKind::SessionEnded => "the session asking for the key has ended",
        })
    }
}

impl StdError for ApiKeyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<StoreError> for ApiKeyError {
    fn from(err: StoreError) -> Self {
        let kind = match err.kind() {
            StoreErrorKind::NotFound => ApiKeyErrorKind::NotFound,
            StoreErrorKind::Inactive => ApiKeyErrorKind::Inactive,
            StoreErrorKind::Conflict => ApiKeyErrorKind::Conflict,
            _ => ApiKeyErrorKind::Store,
        };
        Self {
            kind,
            source: Some(Box::new(err)),
        }
    }
}

impl From<RandomnessError> for ApiKeyError {
    fn from(err: RandomnessError) -> Self {
        Self {
            kind: ApiKeyErrorKind::Randomness,
            source: Some(Box::new(err)),
        }
    }
}
