//! [`IntrospectionError`]: the endpoint could not answer, or the configuration is
//! unusable.

use std::{error::Error as StdError, fmt, sync::Arc};

use crate::jwks::{JwksError, JwksErrorKind};

/// What went wrong. Returned by [`IntrospectionError::kind`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntrospectionErrorKind {
    /// The configuration is incomplete: no issuer, no audience (and the check not
    /// waived), or no client credentials.
    Config,
    /// The endpoint URL does not parse or is not `https`/`http`.
    InvalidUrl,
    /// Plain `http` to a host that is not loopback, without
    /// [`danger_allow_http`](super::IntrospectionAuthenticatorBuilder::danger_allow_http).
    InsecureUrl,
    /// The endpoint could not be reached.
    Unreachable,
    /// The endpoint did not answer within the timeout.
    Timeout,
    /// The endpoint answered with a status other than `200 OK` (a `401` when the
    /// client credentials are wrong).
    Status,
    /// The answer is larger than the size cap; reading stopped there.
    TooLarge,
    /// The answer is not a JSON object (or has duplicate members).
    Malformed,
}

/// The introspection endpoint could not be used. See [`kind`](Self::kind).
///
/// A request whose token could not be introspected gets `503 Service Unavailable`
/// with this error as the [`AuthError`](portcullis_core::AuthError)'s source.
/// Cheap to clone: every request waiting for one call shares its error.
#[derive(Clone)]
pub struct IntrospectionError {
    kind: IntrospectionErrorKind,
    detail: &'static str,
    source: Option<Arc<JwksError>>,
}

impl IntrospectionError {
    pub(super) fn new(kind: IntrospectionErrorKind, detail: &'static str) -> Self {
        Self {
            kind,
            detail,
            source: None,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> IntrospectionErrorKind {
        self.kind
    }
}

impl From<JwksError> for IntrospectionError {
    fn from(e: JwksError) -> Self {
        let (kind, detail) = match e.kind() {
            JwksErrorKind::InvalidUrl => (IntrospectionErrorKind::InvalidUrl, "invalid URL"),
            JwksErrorKind::InsecureUrl => (
                IntrospectionErrorKind::InsecureUrl,
                "plain http off loopback",
            ),
            JwksErrorKind::Timeout => (IntrospectionErrorKind::Timeout, "no answer in time"),
            JwksErrorKind::Status => (IntrospectionErrorKind::Status, "an error status"),
            JwksErrorKind::TooLarge => (IntrospectionErrorKind::TooLarge, "answer too large"),
            JwksErrorKind::Malformed => (IntrospectionErrorKind::Malformed, "malformed answer"),
            _ => (IntrospectionErrorKind::Unreachable, "unreachable"),
        };
        Self {
            kind,
            detail,
            source: Some(Arc::new(e)),
        }
    }
}

impl fmt::Debug for IntrospectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionError")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for IntrospectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token introspection failed: {}", self.detail)
    }
}

impl StdError for IntrospectionError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
