//! [`Access`]: what one method or route of a [`PolicyLayer`](super::PolicyLayer) needs.

use std::{fmt, sync::Arc};

use crate::{
    Match,
    rule::{Kind, Rule},
};

/// Whether a call is authenticated at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// The authenticator does not run.
    Open,
    /// The authenticator runs; a call without a credential passes.
    Anonymous,
    /// A principal is required.
    Authenticated,
}

/// What one method (or route) needs: nothing, a valid credential if one is sent, a
/// principal, roles, scopes, and optionally a rate limit. Given to
/// [`PolicyLayer::route`](super::PolicyLayer::route); see the [module docs](super).
///
/// A call is checked in one order, whatever order the builder methods were called in:
/// authentication, then roles and scopes, then the rate limit. So a caller lacking a
/// scope is told so and never spends quota, and an anonymous caller never learns
/// whether a method is over its limit.
///
/// ```
/// use portcullis_guard::{Match, policy::Access};
///
/// let read = Access::anonymous();
/// let write = Access::scope("inventory:write");
/// let purge = Access::role("admin");
/// let either = Access::authenticated().roles(Match::Any, ["admin", "owner"]);
/// let health = Access::open();
/// # let _ = (read, write, purge, either, health);
/// ```
#[derive(Clone)]
pub struct Access {
    pub(super) gate: Gate,
    pub(super) roles: Option<Arc<Rule>>,
    pub(super) scopes: Option<Arc<Rule>>,
    #[cfg(feature = "ratelimit")]
    pub(super) quota: Option<portcullis_ratelimit::Quota>,
}

impl Access {
    fn new(gate: Gate) -> Self {
        Self {
            gate,
            roles: None,
            scopes: None,
            #[cfg(feature = "ratelimit")]
            quota: None,
        }
    }

    /// Nothing is checked: the authenticator does not run and a credential, even a bad
    /// one, is ignored. For health checks, reflection and other public plumbing.
    pub fn open() -> Self {
        Self::new(Gate::Open)
    }

    /// Anyone may call. A credential, if one is sent, must be valid, and its
    /// [`Principal`](portcullis_core::Principal) reaches the handler (as behind
    /// [`AuthLayer::optional`](portcullis_core::AuthLayer::optional)).
    pub fn anonymous() -> Self {
        Self::new(Gate::Anonymous)
    }

    /// A valid credential is required: `401` / `UNAUTHENTICATED` without one.
    pub fn authenticated() -> Self {
        Self::new(Gate::Authenticated)
    }

    /// A principal holding `scope`. Shorthand for
    /// `Access::authenticated().scopes(Match::All, [scope])`.
    ///
    /// # Panics
    ///
    /// When `scope` is no valid name (see [`is_valid_name`](crate::is_valid_name)).
    pub fn scope(scope: &str) -> Self {
        Self::authenticated().scopes(Match::All, [scope])
    }

    /// A principal holding `role`. Shorthand for
    /// `Access::authenticated().roles(Match::All, [role])`.
    ///
    /// # Panics
    ///
    /// When `role` is no valid name (see [`is_valid_name`](crate::is_valid_name)).
    pub fn role(role: &str) -> Self {
        Self::authenticated().roles(Match::All, [role])
    }

    /// Also requires any or all of the scopes `names` (replacing scopes required
    /// before). Requiring a scope requires authentication.
    ///
    /// A principal lacking them gets `403` `insufficient_scope` / `PERMISSION_DENIED`,
    /// naming the scopes.
    ///
    /// # Panics
    ///
    /// When `names` is empty or holds an invalid name (see
    /// [`is_valid_name`](crate::is_valid_name)): a policy table is code, and a typo in
    /// it is a bug to find at start-up.
    pub fn scopes<I, N>(self, mode: Match, names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<Box<str>>,
    {
        self.require(Kind::Scope, mode, names)
    }

    /// Also requires any or all of the roles `names` (replacing roles required
    /// before), through the layer's [`RoleHierarchy`](crate::RoleHierarchy) if it has
    /// one. Requiring a role requires authentication.
    ///
    /// A principal lacking them gets `403` `insufficient_role` / `PERMISSION_DENIED`,
    /// naming the roles.
    ///
    /// # Panics
    ///
    /// When `names` is empty or holds an invalid name (see
    /// [`is_valid_name`](crate::is_valid_name)).
    pub fn roles<I, N>(self, mode: Match, names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<Box<str>>,
    {
        self.require(Kind::Role, mode, names)
    }

    fn require<I, N>(mut self, kind: Kind, mode: Match, names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<Box<str>>,
    {
        let rule = Rule::new(kind, mode, names).unwrap_or_else(|e| panic!("{e}"));
        match kind {
            Kind::Role => self.roles = Some(Arc::new(rule)),
            Kind::Scope => self.scopes = Some(Arc::new(rule)),
        }
        self.gate = Gate::Authenticated;
        self
    }

    /// Limits calls to `quota` per caller, counted only for calls that passed every
    /// other check: per principal subject when authenticated, else per client IP (as
    /// the layer's [`ClientIpResolver`](portcullis_core::ClientIpResolver) finds it).
    /// Over the limit: `429` / `RESOURCE_EXHAUSTED` with `Retry-After`.
    ///
    /// The state is kept in memory ([`GovernorBackend`](portcullis_ratelimit::GovernorBackend),
    /// bounded) and belongs to the table entry: every method a wildcard entry covers
    /// shares one budget per caller.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use portcullis_guard::policy::Access;
    /// use portcullis_ratelimit::Quota;
    ///
    /// // A burst of three, one more every 20 seconds.
    /// let add = Access::scope("inventory:write")
    ///     .rate_limit(Quota::per_minute(NonZeroU32::new(3).unwrap()));
    /// # let _ = add;
    /// ```
    #[cfg(feature = "ratelimit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ratelimit")))]
    pub fn rate_limit(mut self, quota: portcullis_ratelimit::Quota) -> Self {
        self.quota = Some(quota);
        self
    }
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Access");
        s.field("gate", &self.gate)
            .field("roles", &self.roles)
            .field("scopes", &self.scopes);
        #[cfg(feature = "ratelimit")]
        s.field("quota", &self.quota);
        s.finish()
    }
}
