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

/// A subject's session stamp: a value that moves forward every time every session of
/// the subject is ended (password change or reset, logout everywhere, an
/// administrator's "revoke everything") and never repeats. Zero until the first end.
///
/// A login reads the stamp *before* it reads the password hash, and the store opens
/// the new family only if the stamp is still the same
/// ([`RefreshStore::create`]); [`RefreshStore::end_sessions`] moves it forward in the
/// same atomic step that revokes every family. So a login whose password check began
/// before the sessions were ended never gets a session, whatever the timing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionStamp(pub u64);

/// A successor token sealed for whoever holds its predecessor: the successor's 32
/// raw bytes XOR a pad derived from the predecessor's raw bytes (a hash independent
/// of the [`TokenHash`] a store keeps). A store holding it cannot open it; the client
/// retrying with the predecessor can, which is what lets a retry within the reuse
/// interval get the same successor back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SealedToken(pub [u8; 32]);

impl fmt::Debug for SealedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedToken(..)")
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
    /// The successor sealed for the presented token's holder: kept with the presented
    /// token when it is marked used, handed back on a repeat within `reuse_interval`.
    pub sealed_successor: &'a SealedToken,
    /// The client presenting it.
    pub client_id: &'a str,
    /// The current time.
    pub now: SystemTime,
    /// The idle timeout for the successor.
    pub idle_timeout: Duration,
    /// How long after a token is used a repeat presentation of it (by the same
    /// client) still gets the same successor instead of counting as reuse.
    pub reuse_interval: Duration,
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
    /// The presented token was used less than `reuse_interval` ago (two tabs
    /// refreshing at once, or a retry after a lost answer): nothing changed, and the
    /// successor it was rotated to comes back with its sealed token.
    Repeated {
        /// The successor's record, as stored now.
        successor: RefreshRecord,
        /// The successor sealed at the first rotation.
        sealed: SealedToken,
    },
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
/// 3. `R` already used, at `U`:
///    - if `reuse_interval` is not zero, `now < U + reuse_interval` (`now` may be
///      earlier than `U`: it was read before the store was reached),
///      `R.client_id == client_id` and the successor
///      `S` stored by that use still exists: nothing changes;
///      [`Repeated`](RotateOutcome::Repeated) with `S` and the sealed successor stored
///      at `U`;
///    - otherwise revoke the family, then [`Reused`](RotateOutcome::Reused) (a used
///      token is reuse even past its expiry);
/// 4. `R.client_id != client_id`: [`ClientMismatch`](RotateOutcome::ClientMismatch);
/// 5. `now >= R.expires_at` or `now >= R.family_expires_at`:
///    [`Expired`](RotateOutcome::Expired);
/// 6. otherwise mark `R` used at `now`, keeping `successor` and `sealed_successor`
///    with it, and store the successor `S` with `R`'s family, subject,
///    client and `family_expires_at`, `issued_at = now` and
///    `expires_at = min(now + idle_timeout, family_expires_at)`; return
///    [`Rotated(S)`](RotateOutcome::Rotated).
///
/// Used tokens must be remembered (as used) until their family expires, or reuse goes
/// unnoticed. A revoked family stays known as revoked until it expires. Records may be
/// dropped once `family_expires_at` has passed.
///
/// Each subject has a [`SessionStamp`]. [`create`](Self::create) compares the stamp
/// it is given with the subject's current one in the same atomic step as the write,
/// and [`end_sessions`](Self::end_sessions) advances the stamp in the same atomic
/// step that revokes the subject's families: either the family was created first
/// (and is revoked), or the creation sees the new stamp (and is refused). A stamp is
/// never lost while a family of its subject may live (keep it at least as long as
/// the absolute family lifetime; forgetting it later is harmless only if stamps read
/// before are no older than that lifetime).
pub trait RefreshStore: Send + Sync + 'static {
    /// The subject's current session stamp ([`SessionStamp::default`] if it never
    /// ended its sessions).
    fn stamp(&self, subject: &str) -> impl Future<Output = Result<SessionStamp, Error>> + Send;

    /// Stores the first token of a new family, if `record.subject`'s stamp still equals
    /// `stamp`; otherwise stores nothing and fails with
    /// [`ErrorKind::SessionsEnded`](crate::ErrorKind::SessionsEnded). The comparison
    /// and the write are one atomic step.
    fn create(
        &self,
        record: RefreshRecord,
        stamp: SessionStamp,
    ) -> impl Future<Output = Result<(), Error>> + Send;

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

    /// Advances the subject's stamp and revokes every family of the subject, in one
    /// atomic step. Returns the families newly revoked.
    fn end_sessions(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
}

impl<S: RefreshStore> RefreshStore for Arc<S> {
    fn stamp(&self, subject: &str) -> impl Future<Output = Result<SessionStamp, Error>> + Send {
        (**self).stamp(subject)
    }
    fn create(
        &self,
        record: RefreshRecord,
        stamp: SessionStamp,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).create(record, stamp)
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
    fn end_sessions(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send {
        (**self).end_sessions(subject)
    }
}
