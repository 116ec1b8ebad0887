//! [`RefreshTokens`]: issues, rotates and revokes refresh tokens over a store.

use std::{fmt, sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use portcullis_core::{AuthEvent, Events};
use zeroize::Zeroizing;

use super::{RefreshRecord, RefreshStore, RotateOutcome, Rotation, TokenHash};
use crate::{Clock, Error, ErrorKind, SystemClock, random};

/// The default absolute family lifetime: 30 days from login, however often it refreshes.
pub const DEFAULT_ABSOLUTE_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// The default idle expiry: a token unused for 7 days dies.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);

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
