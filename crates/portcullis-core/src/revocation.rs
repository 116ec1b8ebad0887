//! [`Revocation`]: the hook through which verifiers ask whether a credential that
//! verified has been revoked since.
//!
//! Verifiers consult it after the signature and claims checks *and* on every
//! verified-token cache hit, so a revoked token stops working at once. Revocation is
//! keyed by identifiers (`iss`, `jti`, `sub`, `iat`), never by token bytes: ECDSA
//! signatures are malleable, so the same claims can arrive under other bytes.
//!
//! Implementations live with the stores: an in-memory one in `portcullis-tokens`, a
//! shared one in `portcullis-redis`.

use std::{fmt, future::Future, pin::Pin, sync::Arc, time::SystemTime};

use crate::AuthError;

/// What a verifier knows about a credential when it asks about revocation.
#[derive(Debug, Clone, Copy)]
pub struct RevocationQuery<'a> {
    /// The issuer (`iss`), if any.
    pub issuer: Option<&'a str>,
    /// The subject (`sub`).
    pub subject: &'a str,
    /// The token id (`jti`), if any.
    pub token_id: Option<&'a str>,
    /// When the token was issued (`iat`), if known.
    pub issued_at: Option<SystemTime>,
}

/// The answer of a [`Revocation`] check: now, or after I/O.
pub enum RevocationCheck {
    /// Answered without waiting: `Ok(())` when the credential still stands, or the
    /// error to refuse it with (`invalid_token` when revoked, `unavailable` when the
    /// store cannot say and fails closed).
    Ready(Result<(), AuthError>),
    /// Must ask a remote store.
    Pending(Pin<Box<dyn Future<Output = Result<(), AuthError>> + Send + 'static>>),
}

impl RevocationCheck {
    /// Not revoked.
    pub fn valid() -> Self {
        Self::Ready(Ok(()))
    }

    /// Revoked: `401 invalid_token`.
    pub fn revoked() -> Self {
        Self::Ready(Err(AuthError::invalid_token("token_revoked")
            .with_description("the credential has been revoked")))
    }

    /// Wraps a future.
    pub fn pending(future: impl Future<Output = Result<(), AuthError>> + Send + 'static) -> Self {
        Self::Pending(Box::pin(future))
    }
}

impl fmt::Debug for RevocationCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(result) => f.debug_tuple("Ready").field(result).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}

/// Decides whether a verified credential has been revoked.
///
/// Implement [`check`](Self::check) so that the common case (nothing revoked, an
/// in-memory look-up) answers [`RevocationCheck::Ready`] without allocating.
pub trait Revocation: Send + Sync + 'static {
    /// Checks one credential.
    fn check(&self, query: &RevocationQuery<'_>) -> RevocationCheck;
}

impl<R: Revocation + ?Sized> Revocation for Arc<R> {
    fn check(&self, query: &RevocationQuery<'_>) -> RevocationCheck {
        (**self).check(query)
    }
}

/// Revokes nothing. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocation;

impl Revocation for NoRevocation {
    fn check(&self, _: &RevocationQuery<'_>) -> RevocationCheck {
        RevocationCheck::valid()
    }
}
