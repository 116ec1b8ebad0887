//! [`TokenService`]: what a login endpoint needs, in one place.

use std::{fmt, time::SystemTime};

use portcullis_core::{AuthEvent, Events, Principal};
use serde_json::json;

use crate::{
    AccessToken, Clock, Error, Grant, IssuedRefreshToken, MemoryRevocation, RefreshStore,
    RefreshTokens, RevocationStore, RevokedToken, SystemClock, TokenIssuer,
};

/// An access token and a refresh token, as a login or refresh hands them out.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// The access token (JWT).
    pub access: AccessToken,
    /// The refresh token and its record.
    pub refresh: IssuedRefreshToken,
}

impl TokenPair {
    /// The OAuth 2.0 token response body (RFC 6749 §5.1):
    /// `{"access_token", "token_type", "expires_in", "refresh_token"}`, the type `DPoP`
    /// for a DPoP-bound token, else `Bearer`.
    /// Contains secrets: send it with `Cache-Control: no-store`.
    pub fn to_json(&self) -> serde_json::Value {
        let expires_in = self
            .access
            .expires_at()
            .duration_since(self.access.issued_at())
            .map_or(0, |d| d.as_secs());
        json!({
            "access_token": self.access.as_str(),
            "token_type": self.access.token_type(),
            "expires_in": expires_in,
            "refresh_token": self.refresh.token.as_str(),
        })
    }
}

/// Issues token pairs, refreshes them, logs out one session or all of a subject's.
///
/// `R` is the revocation store the JWT verifier also reads (by default a shared
/// [`MemoryRevocation`]: hand a clone of it to the bearer layer).
///
/// ```
/// use portcullis_tokens::{
///     Grant, MemoryRefreshStore, MemoryRevocation, RefreshTokens, SigningAlgorithm,
///     SigningKey, TokenIssuer, TokenService,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), portcullis_tokens::Error> {
/// let issuer = TokenIssuer::builder("https://auth.example", "api",
///     SigningKey::generate(SigningAlgorithm::EdDsa)?).build();
/// let revocation = MemoryRevocation::new(); // also give a clone to the JWT layer
/// let service = TokenService::new(issuer, RefreshTokens::new(MemoryRefreshStore::new()), revocation);
///
/// // Before reading the password hash: the stamp that the login must still hold.
/// let stamp = service.session_stamp("alice").await?;
/// // ... the password checks out ...
/// let pair = service.login(&Grant::new("alice", "web").roles(["user"]), stamp).await?;
/// let next = service
///     .refresh(pair.refresh.token.as_str(), "web", |subject| Grant::new(subject, "web"))
///     .await?;
/// assert_ne!(next.access.jti(), pair.access.jti());
/// service.logout_everywhere("alice").await?;
/// # Ok(()) }
/// ```
pub struct TokenService<S, R = MemoryRevocation> {
    issuer: TokenIssuer,
    refresh: RefreshTokens<S>,
    revocation: R,
    clock: std::sync::Arc<dyn Clock>,
    events: Events,
}

impl<S, R: Clone> Clone for TokenService<S, R> {
    fn clone(&self) -> Self {
        Self {
            issuer: self.issuer.clone(),
            refresh: self.refresh.clone(),
            revocation: self.revocation.clone(),
            clock: self.clock.clone(),
            events: self.events.clone(),
        }
    }
}

impl<S, R> fmt::Debug for TokenService<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl<S: RefreshStore, R: RevocationStore> TokenService<S, R> {
    /// Combines an issuer, refresh tokens and a revocation store.
    pub fn new(issuer: TokenIssuer, refresh: RefreshTokens<S>, revocation: R) -> Self {
        Self {
            issuer,
            refresh,
            revocation,
            clock: std::sync::Arc::new(SystemClock),
            events: Events::default(),
        }
    }

    /// The clock used for logout-everywhere cut-offs (default [`SystemClock`]; use the
    /// issuer's clock).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = std::sync::Arc::new(clock);
        self
    }

    /// Where [`AuthEvent::TokenRevoked`] and [`AuthEvent::SubjectRevoked`] go.
    #[must_use]
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    /// The refresh tokens.
    pub fn refresh_tokens(&self) -> &RefreshTokens<S> {
        &self.refresh
    }

    /// The revocation store.
    pub fn revocation(&self) -> &R {
        &self.revocation
    }

    /// The subject's current [`SessionStamp`](crate::SessionStamp). A login reads it
    /// *before* it reads the password hash and hands it to [`login`](Self::login).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`](crate::ErrorKind::Store).
    pub async fn session_stamp(&self, subject: &str) -> Result<crate::SessionStamp, Error> {
        self.refresh.stamp(subject).await
    }

    /// A successful login: a new refresh family and an access token, if the subject's
    /// sessions were not ended since `stamp` was read.
    ///
    /// The access token is signed first, so its `iat` is earlier than the store's
    /// decision: if [`logout_everywhere`](Self::logout_everywhere) runs after the
    /// family is created, its cut-off refuses this access token too.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::SessionsEnded`](crate::ErrorKind::SessionsEnded) when the stamp
    /// moved (nothing was stored; the access token is dropped),
    /// [`ErrorKind::Signing`](crate::ErrorKind::Signing) or
    /// [`ErrorKind::Store`](crate::ErrorKind::Store).
    pub async fn login(
        &self,
        grant: &Grant,
        stamp: crate::SessionStamp,
    ) -> Result<TokenPair, Error> {
        let access = self.issuer.issue(grant)?;
        let refresh = self
            .refresh
            .issue(grant.subject(), &grant.refresh_client_id(), stamp)
            .await?;
        Ok(TokenPair { access, refresh })
    }

    /// Rotates `refresh_token` and issues a new access token. `grant_for` receives the
    /// family's subject and returns the grant (look the roles up afresh there).
    ///
    /// For a family bound to a DPoP key, `client_id` is
    /// [`dpop_client_id`](crate::dpop_client_id) of the client and the thumbprint of
    /// the request's verified proof, and the grant is bound to that key.
    ///
    /// The access token's `iat` is the time taken before the store rotated, so a
    /// [`logout_everywhere`](Self::logout_everywhere) that lands after the rotation
    /// refuses it too.
    ///
    /// # Errors
    ///
    /// Everything [`RefreshTokens::rotate`] returns, notably
    /// [`ErrorKind::Reused`](crate::ErrorKind::Reused). A grant for another subject or
    /// client is refused with [`ErrorKind::ClientMismatch`](crate::ErrorKind::ClientMismatch).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
        grant_for: impl FnOnce(&str) -> Grant,
    ) -> Result<TokenPair, Error> {
        let now = self.issuer.now();
        let refresh = self
            .refresh
            .rotate_at(refresh_token, client_id, now)
            .await?;
        let grant = grant_for(&refresh.record.subject);
        if grant.subject() != refresh.record.subject || grant.refresh_client_id() != client_id {
            return Err(Error::new(
                crate::ErrorKind::ClientMismatch,
                "grant does not match the refresh token's subject and client",
            ));
        }
        let access = self.issuer.issue_at(&grant, now)?;
        Ok(TokenPair { access, refresh })
    }

    /// Logs one session out: denylists the access token (the principal the bearer layer
    /// produced, if given) and revokes the refresh token's family (if given).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Malformed`](crate::ErrorKind::Malformed) for a malformed refresh
    /// token, or [`ErrorKind::Store`](crate::ErrorKind::Store).
    pub async fn logout(
        &self,
        access: Option<&Principal>,
        refresh_token: Option<&str>,
    ) -> Result<(), Error> {
        if let Some(principal) = access
            && let Some(jti) = principal.token_id()
        {
            let expires_at = principal
                .expires_at()
                .unwrap_or_else(|| self.clock.now() + self.issuer.lifetime());
            self.revocation
                .revoke_token(RevokedToken {
                    issuer: principal.issuer(),
                    token_id: jti,
                    subject: principal.subject(),
                    expires_at,
                })
                .await?;
            self.events.emit(&AuthEvent::TokenRevoked {
                subject: principal.subject(),
                token_id: jti,
            });
        }
        if let Some(token) = refresh_token {
            self.refresh.revoke(token).await?;
        }
        Ok(())
    }

    /// Ends every session of `subject` (logout everywhere; also what a password change
    /// or reset must do): advances its [`SessionStamp`](crate::SessionStamp) and
    /// revokes every refresh family in one atomic step of the store, then refuses
    /// every access token issued until now (a cut-off the bearer layer checks on
    /// every request, cache hits included).
    ///
    /// In that order, no session escapes: a login or refresh that the store granted
    /// before the first step is revoked by it, and its access token (stamped before
    /// the store decided) is older than the cut-off; one that reaches the store after
    /// it is refused there.
    ///
    /// The cut-off has whole-second precision (`iat`): a token issued in its second
    /// is refused as well, so this returns only once the clock is past that second,
    /// and a login that follows gets a token that works.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`](crate::ErrorKind::Store). The call can be repeated.
    pub async fn logout_everywhere(&self, subject: &str) -> Result<(), Error> {
        self.refresh.end_sessions(subject).await?;
        let now: SystemTime = self.clock.now();
        self.revocation.revoke_subject(subject, now).await?;
        self.events.emit(&AuthEvent::SubjectRevoked { subject });
        past_the_second(now).await;
        Ok(())
    }
}

/// Waits until the wall clock is past the second of `cutoff`, at most a second.
async fn past_the_second(cutoff: SystemTime) {
    let into = cutoff
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let wait = std::time::Duration::from_nanos(u64::from(1_000_000_000 - into));
    let deadline = cutoff + wait;
    if let Ok(rest) = deadline.duration_since(SystemTime::now()) {
        tokio::time::sleep(rest.min(std::time::Duration::from_secs(1))).await;
    }
}
