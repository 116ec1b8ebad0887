//! Rotating refresh tokens with token families and reuse detection.
//!
//! A login starts a *family*. Every refresh consumes the presented token and hands
//! out its successor in the same family. Presenting a token that was already consumed
//! means two parties hold it (the client and a thief): the whole family is revoked,
//! the live successor included, and [`AuthEvent::RefreshReuseDetected`] is emitted
//! ([RFC 9700 §4.14.2](https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2)).

use std::{
    collections::{HashMap, HashSet},
    fmt,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use portcullis_core::{AuthEvent, Events};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Clock, Error, ErrorKind, SystemClock, random};

/// The default absolute family lifetime: 30 days from login, however often it refreshes.
pub const DEFAULT_ABSOLUTE_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// The default idle expiry: a token unused for 7 days dies.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);

/// Length of a refresh token: 32 bytes (256 bits) as unpadded base64url.
pub const REFRESH_TOKEN_LEN: usize = 43;

/// The SHA-256 of a token: what stores keep instead of the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a token's raw bytes.
    pub fn of(raw: &[u8]) -> Self {
        Self(Sha256::digest(raw).into())
    }

    /// The hash as lowercase hex (for SQL/Redis keys).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not the secret, but there is no reason to print all of it either.
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
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

struct TokenEntry {
    family: Arc<str>,
    issued_at: SystemTime,
    expires_at: SystemTime,
    used: bool,
}

struct Family {
    subject: Arc<str>,
    client_id: Arc<str>,
    expires_at: SystemTime,
    revoked: bool,
    tokens: Vec<TokenHash>,
}

#[derive(Default)]
struct MemState {
    tokens: HashMap<TokenHash, TokenEntry>,
    families: HashMap<Arc<str>, Family>,
    subjects: HashMap<Arc<str>, HashSet<Arc<str>>>,
    sweep_at: usize,
}

impl MemState {
    fn record(&self, hash: &TokenHash) -> Option<RefreshRecord> {
        let entry = self.tokens.get(hash)?;
        let family = self.families.get(&entry.family)?;
        Some(RefreshRecord {
            hash: *hash,
            family: entry.family.to_string(),
            subject: family.subject.to_string(),
            client_id: family.client_id.to_string(),
            issued_at: entry.issued_at,
            expires_at: entry.expires_at,
            family_expires_at: family.expires_at,
        })
    }

    fn revoke(&mut self, family: &str) -> bool {
        match self.families.get_mut(family) {
            Some(f) if !f.revoked => {
                f.revoked = true;
                true
            }
            _ => false,
        }
    }

    fn purge(&mut self, now: SystemTime) {
        let dead: Vec<Arc<str>> = self
            .families
            .iter()
            .filter(|(_, f)| f.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            if let Some(family) = self.families.remove(&id) {
                for hash in &family.tokens {
                    self.tokens.remove(hash);
                }
                if let Some(set) = self.subjects.get_mut(&family.subject) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.subjects.remove(&family.subject);
                    }
                }
            }
        }
    }
}

/// An in-memory [`RefreshStore`]: one mutex over the whole state, never held across
/// an await, which makes every operation trivially atomic. Expired families are
/// swept as the store grows (and by [`purge_expired`](Self::purge_expired)), so
/// memory follows the number of live families.
///
/// For one process; use the SQL or Redis store to share families between instances.
#[derive(Clone, Default)]
pub struct MemoryRefreshStore {
    state: Arc<Mutex<MemState>>,
}

impl MemoryRefreshStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops every family whose absolute lifetime has passed.
    pub fn purge_expired(&self, now: SystemTime) {
        self.lock().purge(now);
    }

    /// How many families the store holds (live, revoked or not yet swept).
    pub fn family_count(&self) -> usize {
        self.lock().families.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for MemoryRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRefreshStore")
            .field("families", &self.family_count())
            .finish()
    }
}

impl RefreshStore for MemoryRefreshStore {
    async fn create(&self, record: RefreshRecord) -> Result<(), Error> {
        let mut state = self.lock();
        if state.families.len() >= state.sweep_at {
            state.purge(record.issued_at);
            state.sweep_at = (state.families.len() * 2).max(1024);
        }
        if state.tokens.contains_key(&record.hash) || state.families.contains_key(&*record.family) {
            return Err(Error::new(
                ErrorKind::Store,
                "duplicate refresh token or family",
            ));
        }
        let family: Arc<str> = record.family.into();
        let subject: Arc<str> = record.subject.into();
        state.tokens.insert(
            record.hash,
            TokenEntry {
                family: family.clone(),
                issued_at: record.issued_at,
                expires_at: record.expires_at,
                used: false,
            },
        );
        state.families.insert(
            family.clone(),
            Family {
                subject: subject.clone(),
                client_id: record.client_id.into(),
                expires_at: record.family_expires_at,
                revoked: false,
                tokens: vec![record.hash],
            },
        );
        state.subjects.entry(subject).or_default().insert(family);
        Ok(())
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, Error> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(entry) = state.tokens.get(rotation.presented) else {
            return Ok(RotateOutcome::Unknown);
        };
        let family_id = entry.family.clone();
        let Some(family) = state.families.get(&family_id) else {
            return Ok(RotateOutcome::Unknown);
        };
        if family.revoked {
            return Ok(RotateOutcome::FamilyRevoked);
        }
        if entry.used {
            let subject = family.subject.to_string();
            state.revoke(&family_id);
            return Ok(RotateOutcome::Reused {
                subject,
                family: family_id.to_string(),
            });
        }
        if *family.client_id != *rotation.client_id {
            return Ok(RotateOutcome::ClientMismatch);
        }
        if rotation.now >= entry.expires_at || rotation.now >= family.expires_at {
            return Ok(RotateOutcome::Expired);
        }
        if state.tokens.contains_key(rotation.successor) {
            return Err(Error::new(ErrorKind::Store, "duplicate refresh token"));
        }
        let family_expires_at = family.expires_at;
        let expires_at = (rotation.now + rotation.idle_timeout).min(family_expires_at);
        if let Some(entry) = state.tokens.get_mut(rotation.presented) {
            entry.used = true;
        }
        state.tokens.insert(
            *rotation.successor,
            TokenEntry {
                family: family_id.clone(),
                issued_at: rotation.now,
                expires_at,
                used: false,
            },
        );
        let Some(family) = state.families.get_mut(&family_id) else {
            return Ok(RotateOutcome::Unknown);
        };
        family.tokens.push(*rotation.successor);
        Ok(RotateOutcome::Rotated(RefreshRecord {
            hash: *rotation.successor,
            family: family_id.to_string(),
            subject: family.subject.to_string(),
            client_id: family.client_id.to_string(),
            issued_at: rotation.now,
            expires_at,
            family_expires_at,
        }))
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, Error> {
        Ok(self.lock().record(hash))
    }

    async fn revoke_family(&self, family: &str) -> Result<bool, Error> {
        Ok(self.lock().revoke(family))
    }

    async fn revoke_subject(&self, subject: &str) -> Result<Vec<String>, Error> {
        let mut state = self.lock();
        let families: Vec<Arc<str>> = state
            .subjects
            .get(subject)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        Ok(families
            .into_iter()
            .filter(|f| state.revoke(f))
            .map(|f| f.to_string())
            .collect())
    }
}

/// A refresh token as handed to a client: 256 random bits, base64url. A secret:
/// `Debug` redacts it, and it is wiped from memory on drop.
#[derive(Clone)]
pub struct RefreshToken(Zeroizing<String>);

impl RefreshToken {
    /// The token string, for the response body.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// A refresh token just issued, with its record.
#[derive(Debug, Clone)]
pub struct IssuedRefreshToken {
    /// The token for the client.
    pub token: RefreshToken,
    /// What the store keeps about it.
    pub record: RefreshRecord,
}

struct Inner<S> {
    store: S,
    absolute: Duration,
    idle: Duration,
    clock: Arc<dyn Clock>,
    events: Events,
}

/// Issues, rotates and revokes refresh tokens over a [`RefreshStore`].
///
/// Cheap to clone; clones share the store.
///
/// ```
/// use portcullis_tokens::{ErrorKind, MemoryRefreshStore, RefreshTokens};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), portcullis_tokens::Error> {
/// let refresh = RefreshTokens::new(MemoryRefreshStore::new());
/// let first = refresh.issue("alice", "web").await?;
/// let second = refresh.rotate(first.token.as_str(), "web").await?;
/// assert_eq!(second.record.family, first.record.family);
///
/// // The first token again: reuse. The family dies, the live second token with it.
/// let reuse = refresh.rotate(first.token.as_str(), "web").await.unwrap_err();
/// assert_eq!(reuse.kind(), ErrorKind::Reused);
/// let dead = refresh.rotate(second.token.as_str(), "web").await.unwrap_err();
/// assert_eq!(dead.kind(), ErrorKind::Revoked);
/// # Ok(()) }
/// ```
pub struct RefreshTokens<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for RefreshTokens<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S> fmt::Debug for RefreshTokens<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokens")
            .field("absolute_lifetime", &self.inner.absolute)
            .field("idle_timeout", &self.inner.idle)
            .finish_non_exhaustive()
    }
}

impl<S: RefreshStore> RefreshTokens<S> {
    /// Refresh tokens over `store` with the default lifetimes (30 days absolute, 7
    /// days idle), the system clock and `tracing` events.
    pub fn new(store: S) -> Self {
        Self::builder(store).build()
    }

    /// Starts configuring refresh tokens over `store`.
    pub fn builder(store: S) -> RefreshTokensBuilder<S> {
        RefreshTokensBuilder {
            store,
            absolute: DEFAULT_ABSOLUTE_LIFETIME,
            idle: DEFAULT_IDLE_TIMEOUT,
            clock: Arc::new(SystemClock),
            events: Events::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// Starts a new family for `subject` through `client_id` (a login).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] if the store fails.
    pub async fn issue(&self, subject: &str, client_id: &str) -> Result<IssuedRefreshToken, Error> {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let (token, hash) = new_token();
        let family_expires_at = now + inner.absolute;
        let record = RefreshRecord {
            hash,
            family: random::b64::<16>(),
            subject: subject.to_owned(),
            client_id: client_id.to_owned(),
            issued_at: now,
            expires_at: (now + inner.idle).min(family_expires_at),
            family_expires_at,
        };
        inner.store.create(record.clone()).await?;
        Ok(IssuedRefreshToken { token, record })
    }

    /// Consumes `token` (presented by `client_id`) and returns its successor.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Malformed`]: not a 43-character base64url token (no store look-up);
    /// - [`ErrorKind::Unknown`], [`ErrorKind::Expired`], [`ErrorKind::Revoked`],
    ///   [`ErrorKind::ClientMismatch`]: see [`RotateOutcome`];
    /// - [`ErrorKind::Reused`]: the token was used before; its family is now revoked and
    ///   [`AuthEvent::RefreshReuseDetected`] was emitted;
    /// - [`ErrorKind::Store`]: the store failed.
    pub async fn rotate(&self, token: &str, client_id: &str) -> Result<IssuedRefreshToken, Error> {
        let inner = &*self.inner;
        let presented = parse(token)?;
        let (successor_token, successor) = new_token();
        let outcome = inner
            .store
            .rotate(Rotation {
                presented: &presented,
                successor: &successor,
                client_id,
                now: inner.clock.now(),
                idle_timeout: inner.idle,
            })
            .await?;
        match outcome {
            RotateOutcome::Rotated(record) => Ok(IssuedRefreshToken {
                token: successor_token,
                record,
            }),
            RotateOutcome::Unknown => Err(Error::new(ErrorKind::Unknown, "unknown refresh token")),
            RotateOutcome::FamilyRevoked => {
                Err(Error::new(ErrorKind::Revoked, "refresh token revoked"))
            }
            RotateOutcome::Reused { subject, family } => {
                inner.events.emit(&AuthEvent::RefreshReuseDetected {
                    subject: &subject,
                    family: &family,
                });
                Err(Error::new(
                    ErrorKind::Reused,
                    "refresh token reused; its family was revoked",
                ))
            }
            RotateOutcome::ClientMismatch => Err(Error::new(
                ErrorKind::ClientMismatch,
                "refresh token issued to another client",
            )),
            RotateOutcome::Expired => Err(Error::new(ErrorKind::Expired, "refresh token expired")),
        }
    }

    /// Revokes the family of `token` (logout). Returns the revoked record, or `None`
    /// when the token is unknown or its family was already revoked.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Malformed`] or [`ErrorKind::Store`].
    pub async fn revoke(&self, token: &str) -> Result<Option<RefreshRecord>, Error> {
        let hash = parse(token)?;
        let Some(record) = self.inner.store.find(&hash).await? else {
            return Ok(None);
        };
        Ok(self
            .revoke_family(&record.family, &record.subject)
            .await?
            .then_some(record))
    }

    /// Revokes one family of `subject`. Returns whether it was live.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`].
    pub async fn revoke_family(&self, family: &str, subject: &str) -> Result<bool, Error> {
        let revoked = self.inner.store.revoke_family(family).await?;
        if revoked {
            self.inner.events.emit(&AuthEvent::TokenRevoked {
                subject,
                token_id: family,
            });
        }
        Ok(revoked)
    }

    /// Revokes every family of `subject`. Returns how many were live.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`].
    pub async fn revoke_subject(&self, subject: &str) -> Result<usize, Error> {
        let families = self.inner.store.revoke_subject(subject).await?;
        for family in &families {
            self.inner.events.emit(&AuthEvent::TokenRevoked {
                subject,
                token_id: family,
            });
        }
        Ok(families.len())
    }
}

/// Configures [`RefreshTokens`].
#[must_use]
pub struct RefreshTokensBuilder<S> {
    store: S,
    absolute: Duration,
    idle: Duration,
    clock: Arc<dyn Clock>,
    events: Events,
}

impl<S> fmt::Debug for RefreshTokensBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokensBuilder")
            .field("absolute_lifetime", &self.absolute)
            .field("idle_timeout", &self.idle)
            .finish_non_exhaustive()
    }
}

impl<S: RefreshStore> RefreshTokensBuilder<S> {
    /// How long a family lives from login, however often it refreshes (default 30 days).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] if zero.
    pub fn absolute_lifetime(mut self, lifetime: Duration) -> Result<Self, Error> {
        if lifetime.is_zero() {
            return Err(Error::new(
                ErrorKind::Config,
                "absolute lifetime must not be zero",
            ));
        }
        self.absolute = lifetime;
        Ok(self)
    }

    /// How long a token lives unused (default 7 days). Capped by the absolute lifetime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] if zero.
    pub fn idle_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        if timeout.is_zero() {
            return Err(Error::new(
                ErrorKind::Config,
                "idle timeout must not be zero",
            ));
        }
        self.idle = timeout;
        Ok(self)
    }

    /// The clock (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Where reuse and revocation events go (default: `tracing`).
    pub fn events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Builds.
    pub fn build(self) -> RefreshTokens<S> {
        RefreshTokens {
            inner: Arc::new(Inner {
                store: self.store,
                absolute: self.absolute,
                idle: self.idle,
                clock: self.clock,
                events: self.events,
            }),
        }
    }
}

fn new_token() -> (RefreshToken, TokenHash) {
    let raw = Zeroizing::new(random::bytes::<32>());
    let token = RefreshToken(Zeroizing::new(URL_SAFE_NO_PAD.encode(*raw)));
    (token, TokenHash::of(&*raw))
}

fn parse(token: &str) -> Result<TokenHash, Error> {
    let malformed = || Error::new(ErrorKind::Malformed, "malformed refresh token");
    if token.len() != REFRESH_TOKEN_LEN {
        return Err(malformed());
    }
    let mut raw = Zeroizing::new([0u8; 33]);
    match URL_SAFE_NO_PAD.decode_slice(token, &mut *raw) {
        Ok(32) => Ok(TokenHash::of(&raw[..32])),
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_are_refused_before_the_store() {
        for bad in [
            "",
            "short",
            &"A".repeat(42),
            &"A".repeat(44),
            &format!("{}=", "A".repeat(42)),
            &format!("{}+", "A".repeat(42)),
            &format!("{}é", "A".repeat(41)),
        ] {
            assert_eq!(
                parse(bad).unwrap_err().kind(),
                ErrorKind::Malformed,
                "{bad:?}"
            );
        }
        let (token, hash) = new_token();
        assert_eq!(token.as_str().len(), REFRESH_TOKEN_LEN);
        assert_eq!(parse(token.as_str()).unwrap(), hash);
    }

    #[test]
    fn debug_hides_token() {
        let (token, _) = new_token();
        assert!(!format!("{token:?}").contains(token.as_str()));
    }
}
