//! [`RefreshTokens`]: issues, rotates and revokes refresh tokens over a store.

use std::{fmt, sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use portcullis_core::{AuthEvent, Events};
use zeroize::Zeroizing;

use sha2::{Digest, Sha256};

use super::{
    RefreshRecord, RefreshStore, RotateOutcome, Rotation, SealedToken, SessionStamp, TokenHash,
};
use crate::{Clock, Error, ErrorKind, SystemClock, random};

/// The default absolute family lifetime: 30 days from login, however often it refreshes.
pub const DEFAULT_ABSOLUTE_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// The default idle expiry: a token unused for 7 days dies.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);
/// The default reuse interval: for 10 seconds after a refresh token is used, the same
/// client presenting it again gets the same successor (two tabs, a retried request
/// whose answer was lost) instead of revoking the family.
pub const DEFAULT_REUSE_INTERVAL: Duration = Duration::from_secs(10);

/// Length of a refresh token: 32 bytes (256 bits) as unpadded base64url.
pub const REFRESH_TOKEN_LEN: usize = 43;

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
    reuse: Duration,
    clock: Arc<dyn Clock>,
    events: Events,
}

/// Issues, rotates and revokes refresh tokens over a [`RefreshStore`].
///
/// Cheap to clone; clones share the store.
///
/// ```
/// use std::time::Duration;
/// use portcullis_tokens::{ErrorKind, MemoryRefreshStore, RefreshTokens};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), portcullis_tokens::Error> {
/// let refresh = RefreshTokens::builder(MemoryRefreshStore::new())
///     .reuse_interval(Duration::ZERO)
///     .build();
/// // Read the stamp before checking the password; the family opens only if no one
/// // ended alice's sessions in between.
/// let stamp = refresh.stamp("alice").await?;
/// let first = refresh.issue("alice", "web", stamp).await?;
/// let second = refresh.rotate(first.token.as_str(), "web").await?;
/// assert_eq!(second.record.family, first.record.family);
///
/// // The first token again (and no reuse interval): the family dies, the live second
/// // token with it.
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
            .field("reuse_interval", &self.inner.reuse)
            .finish_non_exhaustive()
    }
}

impl<S: RefreshStore> RefreshTokens<S> {
    /// Refresh tokens over `store` with the defaults (30 days absolute, 7 days idle,
    /// a 10-second reuse interval), the system clock and `tracing` events.
    pub fn new(store: S) -> Self {
        Self::builder(store).build()
    }

    /// Starts configuring refresh tokens over `store`.
    pub fn builder(store: S) -> RefreshTokensBuilder<S> {
        RefreshTokensBuilder {
            store,
            absolute: DEFAULT_ABSOLUTE_LIFETIME,
            idle: DEFAULT_IDLE_TIMEOUT,
            reuse: DEFAULT_REUSE_INTERVAL,
            clock: Arc::new(SystemClock),
            events: Events::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The subject's current [`SessionStamp`]. Read it before the password check and
    /// hand it to [`issue`](Self::issue).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] if the store fails.
    pub async fn stamp(&self, subject: &str) -> Result<SessionStamp, Error> {
        self.inner.store.stamp(subject).await
    }

    /// Starts a new family for `subject` through `client_id` (a login), if the
    /// subject's stamp is still `stamp`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::SessionsEnded`] if the subject's sessions were ended since `stamp`
    /// was read (nothing is stored); [`ErrorKind::Store`] if the store fails.
    pub async fn issue(
        &self,
        subject: &str,
        client_id: &str,
        stamp: SessionStamp,
    ) -> Result<IssuedRefreshToken, Error> {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let (token, _, hash) = new_token();
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
        inner.store.create(record.clone(), stamp).await?;
        portcullis_core::internal::metrics::token_issued("refresh");
        Ok(IssuedRefreshToken { token, record })
    }

    /// Consumes `token` (presented by `client_id`) and returns its successor.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Malformed`]: not a 43-character base64url token (no store look-up);
    /// - [`ErrorKind::Unknown`], [`ErrorKind::Expired`], [`ErrorKind::Revoked`],
    ///   [`ErrorKind::ClientMismatch`]: see [`RotateOutcome`];
    /// - [`ErrorKind::Reused`]: the token was used before, longer ago than the reuse
    ///   interval; its family is now revoked and [`AuthEvent::RefreshReuseDetected`]
    ///   was emitted;
    /// - [`ErrorKind::Store`]: the store failed.
    ///
    /// Within the reuse interval after a token was used, presenting it again (same
    /// client) returns the same successor it was rotated to, unchanged.
    pub async fn rotate(&self, token: &str, client_id: &str) -> Result<IssuedRefreshToken, Error> {
        self.rotate_at(token, client_id, self.inner.clock.now())
            .await
    }

    pub(crate) async fn rotate_at(
        &self,
        token: &str,
        client_id: &str,
        now: std::time::SystemTime,
    ) -> Result<IssuedRefreshToken, Error> {
        let inner = &*self.inner;
        let (presented_raw, presented) = parse(token)?;
        let (successor_token, successor_raw, successor) = new_token();
        let sealed_successor = seal(&presented_raw, &successor_raw);
        let outcome = inner
            .store
            .rotate(Rotation {
                presented: &presented,
                successor: &successor,
                sealed_successor: &sealed_successor,
                client_id,
                now,
                idle_timeout: inner.idle,
                reuse_interval: inner.reuse,
            })
            .await?;
        if matches!(outcome, RotateOutcome::Rotated(_)) {
            portcullis_core::internal::metrics::refresh_rotated();
        }
        match outcome {
            RotateOutcome::Rotated(record) => Ok(IssuedRefreshToken {
                token: successor_token,
                record,
            }),
            RotateOutcome::Repeated { successor, sealed } => {
                let raw = unseal(&presented_raw, &sealed);
                if TokenHash::of(&*raw) != successor.hash {
                    return Err(Error::new(
                        ErrorKind::Store,
                        "the stored successor does not open with this token",
                    ));
                }
                Ok(IssuedRefreshToken {
                    token: encode(&raw),
                    record: successor,
                })
            }
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
        let (_, hash) = parse(token)?;
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

    /// Ends every session of `subject`: advances its [`SessionStamp`] and revokes every
    /// family, in one atomic step of the store. Returns how many families were live.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`].
    pub async fn end_sessions(&self, subject: &str) -> Result<usize, Error> {
        let families = self.inner.store.end_sessions(subject).await?;
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
    reuse: Duration,
    clock: Arc<dyn Clock>,
    events: Events,
}

impl<S> fmt::Debug for RefreshTokensBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokensBuilder")
            .field("absolute_lifetime", &self.absolute)
            .field("idle_timeout", &self.idle)
            .field("reuse_interval", &self.reuse)
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

    /// How long after a token is used the same client may present it again and get
    /// the same successor (default [`DEFAULT_REUSE_INTERVAL`], 10 s). Past it, a
    /// repeat is reuse and revokes the family. `Duration::ZERO` turns it off.
    pub fn reuse_interval(mut self, interval: Duration) -> Self {
        self.reuse = interval;
        self
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
                reuse: self.reuse,
                clock: self.clock,
                events: self.events,
            }),
        }
    }
}

type Raw = Zeroizing<[u8; 32]>;

fn encode(raw: &Raw) -> RefreshToken {
    RefreshToken(Zeroizing::new(URL_SAFE_NO_PAD.encode(**raw)))
}

fn new_token() -> (RefreshToken, Raw, TokenHash) {
    let raw = Zeroizing::new(random::bytes::<32>());
    (encode(&raw), raw.clone(), TokenHash::of(&*raw))
}

fn parse(token: &str) -> Result<(Raw, TokenHash), Error> {
    let malformed = || Error::new(ErrorKind::Malformed, "malformed refresh token");
    if token.len() != REFRESH_TOKEN_LEN {
        return Err(malformed());
    }
    let mut buf = Zeroizing::new([0u8; 33]);
    match URL_SAFE_NO_PAD.decode_slice(token, &mut *buf) {
        Ok(32) => {
            let mut raw = Zeroizing::new([0u8; 32]);
            raw.copy_from_slice(&buf[..32]);
            let hash = TokenHash::of(&*raw);
            Ok((raw, hash))
        }
        _ => Err(malformed()),
    }
}

/// The pad that seals a successor for the holder of `presented`: a SHA-256 under a
/// domain label, so it shares nothing with the `TokenHash` a store keeps.
fn pad(presented: &Raw) -> Raw {
    let mut hasher = Sha256::new();
    hasher.update(b"portcullis refresh successor v1\0");
    hasher.update(**presented);
    Zeroizing::new(hasher.finalize().into())
}

fn seal(presented: &Raw, successor: &Raw) -> SealedToken {
    let pad = pad(presented);
    SealedToken(std::array::from_fn(|i| successor[i] ^ pad[i]))
}

fn unseal(presented: &Raw, sealed: &SealedToken) -> Raw {
    let pad = pad(presented);
    Zeroizing::new(std::array::from_fn(|i| sealed.0[i] ^ pad[i]))
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
        let (token, raw, hash) = new_token();
        assert_eq!(token.as_str().len(), REFRESH_TOKEN_LEN);
        let (parsed_raw, parsed) = parse(token.as_str()).unwrap();
        assert_eq!(parsed, hash);
        assert_eq!(*parsed_raw, *raw);
    }

    #[test]
    fn a_sealed_successor_opens_only_with_its_predecessor() {
        let (_, presented, presented_hash) = new_token();
        let (_, successor, _) = new_token();
        let sealed = seal(&presented, &successor);
        assert_eq!(*unseal(&presented, &sealed), *successor);
        assert_ne!(sealed.0, *successor, "sealing changes the bytes");
        let (_, other, _) = new_token();
        assert_ne!(*unseal(&other, &sealed), *successor);
        // What a store keeps of the predecessor does not open it.
        let as_raw = Zeroizing::new(presented_hash.0);
        assert_ne!(*unseal(&as_raw, &sealed), *successor);
    }

    #[test]
    fn debug_hides_token() {
        let (token, _, _) = new_token();
        assert!(!format!("{token:?}").contains(token.as_str()));
    }
}
