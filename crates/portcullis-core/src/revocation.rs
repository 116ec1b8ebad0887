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

use std::{sync::Arc, time::SystemTime};

use crate::{AuthError, MaybeReady};

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

/// Decides whether a verified credential has been revoked.
///
/// [`check`](Self::check) answers `Ok(())` when the credential still stands, or the
/// error to refuse it with: [`AuthError::revoked`], or `unavailable` when the store
/// cannot say and fails closed. Answer [`MaybeReady::Ready`] when no I/O is needed.
pub trait Revocation: Send + Sync + 'static {
    /// Checks one credential.
    fn check(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>>;
}

impl<R: Revocation + ?Sized> Revocation for Arc<R> {
    fn check(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        (**self).check(query)
    }
}

/// Revokes nothing. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocation;

impl Revocation for NoRevocation {
    fn check(&self, _: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        MaybeReady::Ready(Ok(()))
    }
}
