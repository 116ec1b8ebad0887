//! What a refresh-token store keeps and the contract it implements.

use std::{
    fmt,
    future::Future,
    hash::{Hash, Hasher},
    sync::Arc,
    time::{Duration, SystemTime},
};

use portcullis_core::internal::hex;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Error;

/// The SHA-256 of a token: what stores keep instead of the token.
///
/// Compared in constant time.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a token's raw bytes.
    pub fn of(raw: &[u8]) -> Self {
        Self(Sha256::digest(raw).into())
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Hash for TokenHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not the secret, but there is no reason to print all of it either.
        write!(f, "TokenHash({}…)", hex(&self.0[..4]))
    }
}

/// One refresh token as a store keeps it (hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// The family (one per login).
    pub family: String,
    /// The subject the family belongs to.
    pub subject: String,
    /// The client the family is bound to.
    pub client_id: String,
    /// When this token was issued.
    pub issued_at: SystemTime,
    /// When this token dies unless used: `issued_at + idle timeout`, capped at
    /// `family_expires_at`.
    pub expires_at: SystemTime,
    /// When the whole family dies, however often it refreshes.
    pub family_expires_at: SystemTime,
}

/// What [`RefreshStore::rotate`] is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    /// Hash of the token the client presented.
    pub presented: &'a TokenHash,
    /// Hash of the successor to store if the rotation succeeds.
    pub successor: &'a TokenHash,
    /// The client presenting it.
    pub client_id: &'a str,
    /// The current time.
    pub now: SystemTime,
    /// The idle timeout for the successor.
    pub idle_timeout: Duration,
}

/// The result of [`RefreshStore::rotate`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The presented token was live: it is now used, and the successor (returned) is live.
    Rotated(RefreshRecord),
    /// No token with that hash.
    Unknown,
    /// The token's family was revoked before. Nothing changed.
    FamilyRevoked,
    /// The presented token was already used: the store has now revoked its family.
    Reused {
        /// The family's subject.
        subject: String,
        /// The family.
        family: String,
    },
    /// The token is live but belongs to another client. Nothing changed.
    ClientMismatch,
    /// The token (idle) or its family (absolute) has expired. Nothing changed.
    Expired,
}

/// Where refresh tokens live. Implemented in memory here, and by Redis and SQL
/// backends elsewhere.
///
/// # Contract
///
/// Stores keep hashes only. [`rotate`](Self::rotate) must behave as one atomic step
/// with respect to every other call touching the same family (a transaction with
/// row locks, a Lua script, a mutex): of two concurrent rotations presenting the same
/// token, exactly one sees the token live and returns [`RotateOutcome::Rotated`]; the
/// other sees it used and returns [`RotateOutcome::Reused`] (and revokes the family,
/// the winner's successor included). Precisely, given the record `R` whose hash is
/// `presented`, checked in this order:
///
/// 1. no `R`: [`Unknown`](RotateOutcome::Unknown);
/// 2. `R`'s family revoked: [`FamilyRevoked`](RotateOutcome::FamilyRevoked);
/// 3. `R` already used: revoke the family, then
///    [`Reused`](RotateOutcome::Reused) (a used token is reuse even past its expiry);
/// 4. `R.client_id != client_id`: [`ClientMismatch`](RotateOutcome::ClientMismatch);
/// 5. `now >= R.expires_at` or `now >= R.family_expires_at`:
///    [`Expired`](RotateOutcome::Expired);
/// 6. otherwise mark `R` used and store the successor `S` with `R`'s family, subject,
///    client and `family_expires_at`, `issued_at = now` and
///    `expires_at = min(now + idle_timeout, family_expires_at)`; return
///    [`Rotated(S)`](RotateOutcome::Rotated).
///
/// Used tokens must be remembered (as used) until their family expires, or reuse goes
/// unnoticed. A revoked family stays known as revoked until it expires. Records may be
/// dropped once `family_expires_at` has passed.
pub trait RefreshStore: Send + Sync + 'static {
    /// Stores the first token of a new family.
    fn create(&self, record: RefreshRecord) -> impl Future<Output = Result<(), Error>> + Send;

    /// Rotates atomically; see the trait docs for the exact contract.
    fn rotate(
        &self,
        rotation: Rotation<'_>,
    ) -> impl Future<Output = Result<RotateOutcome, Error>> + Send;

    /// The record with this hash, live or used, if any (for logout).
    fn find(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<RefreshRecord>, Error>> + Send;

    /// Revokes a family. Returns whether it existed and was not yet revoked.
    fn revoke_family(&self, family: &str) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Revokes every family of a subject. Returns the families newly revoked.
    fn revoke_subject(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
}

impl<S: RefreshStore> RefreshStore for Arc<S> {
    fn create(&self, record: RefreshRecord) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).create(record)
    }
    fn rotate(
        &self,
        rotation: Rotation<'_>,
    ) -> impl Future<Output = Result<RotateOutcome, Error>> + Send {
        (**self).rotate(rotation)
    }
    fn find(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<RefreshRecord>, Error>> + Send {
        (**self).find(hash)
    }
    fn revoke_family(&self, family: &str) -> impl Future<Output = Result<bool, Error>> + Send {
        (**self).revoke_family(family)
    }
    fn revoke_subject(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send {
        (**self).revoke_subject(subject)
    }
}
