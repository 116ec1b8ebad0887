//! Keys that end with their owner's sessions.
//!
//! A password reset or "log out everywhere" must not leave behind an API key that a
//! thief made with the stolen session. Two calls close that door:
//!
//! - [`ApiKeys::issue_in_session`] makes a key on behalf of an authenticated request
//!   and, *after* the key is stored, asks the revocation store whether that request's
//!   session has been ended meanwhile; if so, the key is revoked before anyone sees it;
//! - [`ApiKeys::end_sessions`] revokes every session-bound key of an owner. Call it
//!   after the access-token cut-off is in place (after
//!   `TokenService::logout_everywhere`).
//!
//! Together they leave no gap, by order rather than timing: a key stored before the
//! sweep lists the owner's keys is revoked by the sweep; one stored after it was
//! stored after the cut-off, so the re-check that follows its write sees the creating
//! session revoked and revokes it.

use portcullis_core::{Principal, Revocation, RevocationQuery};

use crate::{ApiKeyError, ApiKeyErrorKind, ApiKeyStore, ApiKeys, IssuedKey, NewApiKey};

impl<S: ApiKeyStore> ApiKeys<S> {
    /// Issues `spec` on behalf of `creator` (the principal of the request asking for
    /// it), checking `creator`'s session against `revocation` before and after the
    /// key is stored. Use the revocation store the bearer layer reads.
    ///
    /// # Errors
    ///
    /// `SessionEnded` when the creator's session is revoked (before: nothing is
    /// stored; after: the key is revoked at once); `Store` when the revocation store
    /// cannot answer (the key, if stored, is revoked: failing closed); and everything
    /// [`issue`](Self::issue) returns.
    pub async fn issue_in_session(
        &self,
        spec: NewApiKey,
        creator: &Principal,
        revocation: &impl Revocation,
    ) -> Result<IssuedKey, ApiKeyError> {
        session_live(creator, revocation).await?;
        let issued = self.issue(spec).await?;
        if let Err(e) = session_live(creator, revocation).await {
            self.core
                .store
                .revoke(issued.id(), self.core.clock.now())
                .await?;
            return Err(e);
        }
        Ok(issued)
    }

    /// Revokes every active key of `owner` that ends with its sessions (all but those
    /// made with [`NewApiKey::outlives_sessions`]). Returns how many were revoked.
    ///
    /// # Errors
    ///
    /// `Store` when the store fails; the call can be repeated.
    pub async fn end_sessions(&self, owner: &str) -> Result<usize, ApiKeyError> {
        let now = self.core.clock.now();
        let mut revoked = 0;
        for record in self.core.store.list_by_owner(owner).await? {
            if record.session_bound
                && record.is_active_at(now)
                && self.core.store.revoke(&record.id, now).await?
            {
                revoked += 1;
            }
        }
        Ok(revoked)
    }
}

async fn session_live(
    creator: &Principal,
    revocation: &impl Revocation,
) -> Result<(), ApiKeyError> {
    let query = RevocationQuery {
        issuer: creator.issuer(),
        subject: creator.subject(),
        token_id: creator.token_id(),
        issued_at: creator.issued_at(),
    };
    match revocation.check(&query).await {
        Ok(()) => Ok(()),
        Err(e) if e.status().is_server_error() => Err(ApiKeyError::new(ApiKeyErrorKind::Store)),
        Err(_) => Err(ApiKeyError::new(ApiKeyErrorKind::SessionEnded)),
    }
}
