//! The rate limit of a policy entry (feature `ratelimit`): per principal subject, or
//! per client IP for anonymous calls.

use std::{fmt, net::IpAddr, sync::Arc};

use http::request::Parts;
use portcullis_core::{AuthError, AuthEvent, ClientIpResolver, Events, Principal};
use portcullis_ratelimit::{GovernorBackend, Quota};

/// Who a call is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Caller {
    Subject(Box<str>),
    Ip(IpAddr),
}

/// One entry's quota and state.
pub(super) struct Limiter {
    backend: GovernorBackend<Caller>,
    /// The entry's pattern, the policy name in events.
    name: Arc<str>,
}

impl Limiter {
    pub(super) fn new(quota: Quota, pattern: &str) -> Self {
        Self {
            backend: GovernorBackend::new(quota),
            name: Arc::from(pattern),
        }
    }

    /// Counts one call of the request `parts`.
    ///
    /// # Errors
    ///
    /// `429` when the caller is over the quota (reported as
    /// [`AuthEvent::Throttled`]); `500` for an anonymous call whose client address is
    /// unknown (the server's fault: how to fix it is logged).
    pub(super) fn count(
        &self,
        parts: &Parts,
        resolver: &ClientIpResolver,
        events: &Events,
    ) -> Result<(), AuthError> {
        let caller = match parts.extensions.get::<Principal>() {
            Some(principal) => Caller::Subject(principal.subject().into()),
            None => Caller::Ip(resolver.key(resolver.resolve_parts(parts)?)),
        };
        let decision = self.backend.check_now(&caller);
        if decision.is_allowed() {
            return Ok(());
        }
        let retry_after = decision.retry_after();
        events.emit(&AuthEvent::Throttled {
            policy: &self.name,
            key_kind: match caller {
                Caller::Subject(_) => "subject",
                Caller::Ip(_) => "ip",
            },
            retry_after,
        });
        Err(AuthError::rate_limited(retry_after))
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .finish()
    }
}
