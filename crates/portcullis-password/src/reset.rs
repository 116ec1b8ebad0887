//! Single-use reset (or e-mail verification) tokens, hashed at rest.

use std::{
    collections::HashMap,
    error::Error as StdError,
    fmt,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{TryRngCore, rngs::OsRng};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The default lifetime of a reset token: 30 minutes.
pub const DEFAULT_RESET_LIFETIME: Duration = Duration::from_secs(30 * 60);

pub use portcullis_core::clock::Clock;

/// One stored reset token (hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRecord {
    /// SHA-256 over the purpose (length-prefixed) and the token's raw bytes.
    pub hash: [u8; 32],
    /// The account.
    pub subject: String,
    /// What the token is for (`"password_reset"`, `"email_verification"`, …); a token
    /// is only redeemed for its own purpose.
    pub purpose: String,
    /// When it dies.
    pub expires_at: SystemTime,
}

/// An error from a [`ResetStore`] or from redeeming a token.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetErrorKind {
    /// Not a token this crate issued (wrong length or alphabet); no store look-up.
    Malformed,
    /// Unknown, already used, or for another purpose.
    Invalid,
    /// Expired.
    Expired,
    /// The store failed.
    Store,
}

/// An error from [`ResetTokens`]. Never contains the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetError {
    kind: ResetErrorKind,
    message: &'static str,
}

impl ResetError {
    /// A store failure with a short lowercase message (for store implementations).
    pub fn store(message: &'static str) -> Self {
        Self {
            kind: ResetErrorKind::Store,
            message,
        }
    }

    fn new(kind: ResetErrorKind, message: &'static str) -> Self {
        Self { kind, message }
    }

    /// What went wrong.
    pub fn kind(&self) -> ResetErrorKind {
        self.kind
    }
}

impl fmt::Display for ResetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl StdError for ResetError {}

/// Where reset tokens live.
///
/// # Contract
///
/// [`take`](Self::take) removes and returns the record in one atomic step: of two
/// concurrent calls with one hash, at most one gets `Some` (single use).
pub trait ResetStore: Send + Sync + 'static {
    /// Stores a record.
    fn insert(&self, record: ResetRecord) -> impl Future<Output = Result<(), ResetError>> + Send;
    /// Removes and returns the record with this hash, if any.
    fn take(
        &self,
        hash: &[u8; 32],
    ) -> impl Future<Output = Result<Option<ResetRecord>, ResetError>> + Send;
    /// Removes every record of `subject` (after a successful reset, so older links die).
    fn remove_subject(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<usize, ResetError>> + Send;
}

/// An in-memory [`ResetStore`]; expired records are swept as it grows.
#[derive(Clone, Default)]
pub struct MemoryResetStore {
    records: Arc<Mutex<HashMap<[u8; 32], ResetRecord>>>,
}

impl MemoryResetStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], ResetRecord>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for MemoryResetStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryResetStore")
            .field("records", &self.len())
            .finish()
    }
}

impl ResetStore for MemoryResetStore {
    async fn insert(&self, record: ResetRecord) -> Result<(), ResetError> {
        let mut records = self.lock();
        if records.len() >= 1024 && records.len().is_power_of_two() {
            // `expires_at - lifetime` is unknown here; records past expiry relative to
            // the newest one are certainly dead.
            let now = record.expires_at;
            records.retain(|_, r| r.expires_at + DEFAULT_RESET_LIFETIME * 48 > now);
        }
        records.insert(record.hash, record);
        Ok(())
    }

    async fn take(&self, hash: &[u8; 32]) -> Result<Option<ResetRecord>, ResetError> {
        Ok(self.lock().remove(hash))
    }

    async fn remove_subject(&self, subject: &str) -> Result<usize, ResetError> {
        let mut records = self.lock();
        let before = records.len();
        records.retain(|_, r| r.subject != subject);
        Ok(before - records.len())
    }
}

/// A reset token for the e-mail link: 256 random bits, base64url. `Debug` redacts it.
#[derive(Clone)]
pub struct ResetToken(Zeroizing<String>);

impl ResetToken {
    /// The token, for the link.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetToken(<redacted>)")
    }
}

/// Issues and redeems single-use tokens for password resets and e-mail verification.
///
/// Tokens are 256 random bits; the store keeps their SHA-256 only; redeeming removes
/// the record atomically, so a token works once; tokens die after 30 minutes by
/// default. Forgot-password handlers should answer the same whether or not the account
/// exists (issue only for real accounts, but respond identically).
///
/// ```
/// use portcullis_password::{MemoryResetStore, ResetErrorKind, ResetTokens};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), portcullis_password::ResetError> {
/// let resets = ResetTokens::new(MemoryResetStore::new());
/// let token = resets.issue("alice", "password_reset").await?;
/// assert_eq!(resets.redeem(token.as_str(), "password_reset").await?, "alice");
/// let again = resets.redeem(token.as_str(), "password_reset").await.unwrap_err();
/// assert_eq!(again.kind(), ResetErrorKind::Invalid);
/// # Ok(()) }
/// ```
pub struct ResetTokens<S> {
    store: S,
    lifetime: Duration,
    clock: Arc<dyn Clock>,
}

impl<S: Clone> Clone for ResetTokens<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            lifetime: self.lifetime,
            clock: self.clock.clone(),
        }
    }
}

impl<S> fmt::Debug for ResetTokens<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResetTokens")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl<S: ResetStore> ResetTokens<S> {
    /// Reset tokens over `store`, 30-minute lifetime, system clock.
    pub fn new(store: S) -> Self {
        Self {
            store,
            lifetime: DEFAULT_RESET_LIFETIME,
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Sets the lifetime (non-zero; keep it short).
    #[must_use]
    pub fn with_lifetime(mut self, lifetime: std::num::NonZeroU32) -> Self {
        self.lifetime = Duration::from_secs(u64::from(lifetime.get()));
        self
    }

    /// Sets the clock.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Issues a token for `subject` and `purpose`.
    ///
    /// # Errors
    ///
    /// [`ResetErrorKind::Store`].
    pub async fn issue(&self, subject: &str, purpose: &str) -> Result<ResetToken, ResetError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(&mut *raw)
            .expect("the operating system's random source failed");
        let token = ResetToken(Zeroizing::new(URL_SAFE_NO_PAD.encode(*raw)));
        self.store
            .insert(ResetRecord {
                hash: bound_hash(purpose, &raw[..]),
                subject: subject.to_owned(),
                purpose: purpose.to_owned(),
                expires_at: self.clock.now() + self.lifetime,
            })
            .await?;
        Ok(token)
    }

    /// Redeems a token for `purpose`, once. Returns the subject.
    ///
    /// # Errors
    ///
    /// [`ResetErrorKind::Malformed`], [`ResetErrorKind::Invalid`] (unknown, used, or
    /// another purpose: the stored hash covers the purpose, so a token presented for
    /// another purpose is not found and stays usable for its own),
    /// [`ResetErrorKind::Expired`], [`ResetErrorKind::Store`].
    pub async fn redeem(&self, token: &str, purpose: &str) -> Result<String, ResetError> {
        let malformed = || ResetError::new(ResetErrorKind::Malformed, "malformed token");
        if token.len() != 43 {
            return Err(malformed());
        }
        let mut raw = Zeroizing::new([0u8; 33]);
        if URL_SAFE_NO_PAD.decode_slice(token, &mut *raw) != Ok(32) {
            return Err(malformed());
        }
        let hash = bound_hash(purpose, &raw[..32]);
        let invalid = || ResetError::new(ResetErrorKind::Invalid, "invalid or used token");
        let record = self.store.take(&hash).await?.ok_or_else(invalid)?;
        if record.purpose != purpose {
            return Err(invalid());
        }
        if self.clock.now() >= record.expires_at {
            return Err(ResetError::new(ResetErrorKind::Expired, "token expired"));
        }
        Ok(record.subject)
    }

    /// Invalidates every outstanding token of `subject`.
    ///
    /// # Errors
    ///
    /// [`ResetErrorKind::Store`].
    pub async fn revoke_subject(&self, subject: &str) -> Result<usize, ResetError> {
        self.store.remove_subject(subject).await
    }
}
/// What a store keeps of a token: SHA-256 over the purpose (length-prefixed) and the
/// token's raw bytes, so a token is only ever found for its own purpose.
fn bound_hash(purpose: &str, raw: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update((purpose.len() as u64).to_be_bytes())
        .chain_update(purpose.as_bytes())
        .chain_update(raw)
        .finalize()
        .into()
}
