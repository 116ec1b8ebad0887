//! [`FreshRevocation`]: a check that syncs first, for the few checks that must not be
//! stale.

use std::time::SystemTime;

use portcullis_core::{AuthError, MaybeReady, Revocation, RevocationQuery};

use super::SqlRevocation;

/// A [`Revocation`] over a [`SqlRevocation`] that [syncs](SqlRevocation::sync) before
/// it checks, so it sees every revocation committed by any instance before the check
/// began. Made by [`SqlRevocation::fresh`].
///
/// It costs a database query per check: keep it off the request path (the JWT layer
/// takes the [`SqlRevocation`] itself) and use it where a stale answer would leave a
/// gap, such as the re-check of
/// [`ApiKeys::issue_in_session`](portcullis_apikey::ApiKeys::issue_in_session) after
/// the key is stored: with several instances, the cut-off of a "log out everywhere"
/// made on another instance may not have reached this one's local view yet.
///
/// When the database fails, the check fails closed:
/// [`AuthError::unavailable`] (a `503`), never a pass.
#[derive(Debug, Clone)]
pub struct FreshRevocation {
    revocation: SqlRevocation,
}

impl FreshRevocation {
    pub(super) fn new(revocation: SqlRevocation) -> Self {
        Self { revocation }
    }
}

impl Revocation for FreshRevocation {
    fn check(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        let revocation = self.revocation.clone();
        let owned = OwnedQuery {
            issuer: query.issuer.map(str::to_owned),
            subject: query.subject.to_owned(),
            token_id: query.token_id.map(str::to_owned),
            issued_at: query.issued_at,
        };
        MaybeReady::pending(async move {
            if let Err(e) = revocation.sync().await {
                return Err(
                    AuthError::unavailable("the revocation store is unavailable").with_source(e),
                );
            }
            let query = RevocationQuery {
                issuer: owned.issuer.as_deref(),
                subject: &owned.subject,
                token_id: owned.token_id.as_deref(),
                issued_at: owned.issued_at,
            };
            revocation.check(&query).await
        })
    }
}

struct OwnedQuery {
    issuer: Option<String>,
    subject: String,
    token_id: Option<String>,
    issued_at: Option<SystemTime>,
}
