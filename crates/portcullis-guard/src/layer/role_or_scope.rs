//! [`RequireRoleOrScopeLayer`]: roles, or else scopes.

use portcullis_core::DefaultRenderer;

use super::shared::{Rule, Shared};
use crate::{GuardConfigError, Match, RoleHierarchy, RoleSet, ScopeSet, rule::Kind};

/// Requires roles *or* scopes of every request's
/// [`Principal`](portcullis_core::Principal): people by role, machine clients by scope,
/// say. Applies [`Guard`](super::Guard); see the [module docs](super).
///
/// Roles are checked through a [`RoleHierarchy`]: the one given with
/// [`with_hierarchy`](Self::with_hierarchy), else one found in the request extensions.
/// A principal holding neither gets `403` `insufficient_scope` (a client can ask for
/// the scope), naming the scopes in the challenge and both the roles and the scopes in
/// the problem body.
///
/// ```
/// use portcullis_guard::{roles, scopes, RequireRoleOrScopeLayer};
///
/// roles! { pub AdminRole = "admin" }
/// scopes! { pub AdminScope = "admin" }
///
/// let by_name = RequireRoleOrScopeLayer::any(["admin"], ["admin"]);
/// let typed = RequireRoleOrScopeLayer::of::<AdminRole, AdminScope>();
/// assert!(by_name.roles().eq(typed.roles()));
/// assert!(by_name.scopes().eq(typed.scopes()));
///
/// assert!(RequireRoleOrScopeLayer::try_any(["admin"], Vec::<String>::new()).is_err());
/// ```
#[must_use]
pub struct RequireRoleOrScopeLayer<R = DefaultRenderer> {
    shared: std::sync::Arc<Shared<R>>,
}

impl RequireRoleOrScopeLayer {
    /// Requires at least one of the roles `roles` or at least one of the scopes `scopes`.
    ///
    /// # Panics
    ///
    /// When either list is empty or a name is invalid (see
    /// [`is_valid_name`](crate::is_valid_name)); use [`try_any`](Self::try_any) for
    /// names read from configuration.
    pub fn any<I, N, J, M>(roles: I, scopes: J) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<Box<str>>,
        J: IntoIterator<Item = M>,
        M: Into<Box<str>>,
    {
        Self::try_any(roles, scopes).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Requires at least one of the roles `roles` or at least one of the scopes `scopes`.
    ///
    /// # Errors
    ///
    /// When either list is empty or a name is invalid; the error's
    /// [`index`](GuardConfigError::index) counts the scopes after the roles.
    pub fn try_any<I, N, J, M>(roles: I, scopes: J) -> Result<Self, GuardConfigError>
    where
        I: IntoIterator<Item = N>,
        N: Into<Box<str>>,
        J: IntoIterator<Item = M>,
        M: Into<Box<str>>,
    {
        let roles = Rule::new(Kind::Role, Match::Any, roles)?;
        let scopes =
            Rule::new(Kind::Scope, Match::Any, scopes).map_err(|e| e.after(roles.names().len()))?;
        Ok(Self {
            shared: std::sync::Arc::new(Shared::new(roles, Some(scopes))),
        })
    }

    /// Requires the typed role set `T` or the typed scope set `U`: each a marker,
    /// `AnyOf<(..)>` or `AllOf<(..)>`.
    ///
    /// # Panics
    ///
    /// When a hand-written `RoleSet` or `ScopeSet` implementation has an invalid name
    /// (markers from the macros are checked at compile time).
    pub fn of<T: RoleSet, U: ScopeSet>() -> Self {
        let roles = Rule::of(Kind::Role, T::MATCH, T::NAMES);
        let scopes = Rule::of(Kind::Scope, U::MATCH, U::NAMES);
        Self {
            shared: std::sync::Arc::new(Shared::new(roles, Some(scopes))),
        }
    }
}

impl<R> RequireRoleOrScopeLayer<R> {
    /// Checks roles through `hierarchy`, whatever the request extensions hold.
    pub fn with_hierarchy(mut self, hierarchy: RoleHierarchy) -> Self {
        std::sync::Arc::make_mut(&mut self.shared).hierarchy = Some(hierarchy);
        self
    }

    /// The roles, any (or, from [`of`](RequireRoleOrScopeLayer::of), all) of which let
    /// a request in.
    pub fn roles(&self) -> impl Iterator<Item = &str> + '_ {
        self.shared.requirement.rule.names()
    }

    /// The scopes, any (or, from [`of`](RequireRoleOrScopeLayer::of), all) of which let
    /// a request in.
    pub fn scopes(&self) -> impl Iterator<Item = &str> + '_ {
        self.shared
            .requirement
            .or_scope
            .iter()
            .flat_map(Rule::names)
    }
}

guard_layer_common!(RequireRoleOrScopeLayer);
