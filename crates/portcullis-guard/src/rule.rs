//! The check every guard runs: does a principal hold the roles or scopes required?

use std::{borrow::Cow, fmt};

use portcullis_core::{AuthError, Principal};

use crate::{GuardConfigError, Match, RoleHierarchy, is_valid_name};

/// Roles or scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Role,
    Scope,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Role => "role",
            Self::Scope => "scope",
        }
    }
}

/// Names of one kind, of which any or all are required.
pub(crate) struct Rule {
    pub(crate) kind: Kind,
    pub(crate) mode: Match,
    names: Box<[Box<str>]>,
}

impl Rule {
    pub(crate) fn new<I, N>(kind: Kind, mode: Match, names: I) -> Result<Self, GuardConfigError>
    where
        I: IntoIterator<Item = N>,
        N: Into<Box<str>>,
    {
        let names: Box<[Box<str>]> = names.into_iter().map(Into::into).collect();
        if names.is_empty() {
            return Err(GuardConfigError::empty());
        }
        if let Some(index) = names.iter().position(|n| !is_valid_name(n)) {
            return Err(GuardConfigError::invalid_name(index));
        }
        Ok(Self { kind, mode, names })
    }

    /// The rule of a typed set.
    ///
    /// # Panics
    ///
    /// When a hand-written set has no name or an invalid one (the macros' markers are
    /// checked at compile time).
    pub(crate) fn of(kind: Kind, mode: Match, names: &'static [&'static str]) -> Self {
        Self::new(kind, mode, names.iter().copied()).unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.names.iter().map(|n| &**n)
    }

    pub(crate) fn is_met(&self, principal: &Principal, hierarchy: Option<&RoleHierarchy>) -> bool {
        is_met(self.kind, self.mode, &self.names, principal, hierarchy)
    }

    /// The names joined by spaces, as a refusal names them.
    pub(crate) fn joined(&self) -> Cow<'static, str> {
        Cow::Owned(self.names.join(" "))
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("kind", &self.kind.as_str())
            .field("mode", &self.mode)
            .field("names", &self.names)
            .finish()
    }
}

/// Whether `principal` meets a requirement of `kind` on `names`.
///
/// `hierarchy` applies to roles only. An empty `names` is never passed (typed sets
/// have at least one name; runtime rules are validated when built).
pub(crate) fn is_met<N: AsRef<str>>(
    kind: Kind,
    mode: Match,
    names: &[N],
    principal: &Principal,
    hierarchy: Option<&RoleHierarchy>,
) -> bool {
    let holds = |name: &str| match (kind, hierarchy) {
        (Kind::Scope, _) => principal.has_scope(name),
        (Kind::Role, None) => principal.has_role(name),
        (Kind::Role, Some(h)) => h.has_role(principal, name),
    };
    match mode {
        Match::Any => names.iter().any(|n| holds(n.as_ref())),
        Match::All => !names.is_empty() && names.iter().all(|n| holds(n.as_ref())),
    }
}

/// The `403` refusal naming what is required: `insufficient_role` for roles (the roles
/// in the problem body's `role`, no `scope` attribute, since a role is no OAuth scope),
/// `insufficient_scope` for scopes (the scopes in the challenge's `scope` attribute, as
/// RFC 6750 §3 describes, and in the problem body).
pub(crate) fn insufficient(kind: Kind, required: Cow<'static, str>) -> AuthError {
    match kind {
        Kind::Role => AuthError::insufficient_role(required),
        Kind::Scope => AuthError::insufficient_scope(required),
    }
}

/// The `403` refusal of a role-or-scope guard: `insufficient_scope` (a client can ask
/// for the scope), the scopes in the challenge, both roles and scopes in the body.
pub(crate) fn insufficient_role_or_scope(
    roles: Cow<'static, str>,
    scopes: Cow<'static, str>,
) -> AuthError {
    AuthError::insufficient_role_or_scope(roles, scopes)
        .with_description("the credential lacks a required role or scope")
}

/// `names` joined by spaces, borrowed when there is only one.
pub(crate) fn joined(names: &'static [&'static str]) -> Cow<'static, str> {
    match names {
        [one] => Cow::Borrowed(one),
        many => Cow::Owned(many.join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::{AuthErrorKind, PrincipalKind};

    use super::*;

    fn principal() -> Principal {
        Principal::builder("p", PrincipalKind::User)
            .roles(["editor"])
            .scopes(["a", "b"])
            .build()
    }

    #[test]
    fn all_requires_every_name() {
        let p = principal();
        assert!(is_met(Kind::Scope, Match::All, &["a", "b"], &p, None));
        assert!(!is_met(Kind::Scope, Match::All, &["a", "c"], &p, None));
    }

    #[test]
    fn any_requires_one_name() {
        let p = principal();
        assert!(is_met(Kind::Scope, Match::Any, &["c", "b"], &p, None));
        assert!(!is_met(Kind::Scope, Match::Any, &["c", "d"], &p, None));
    }

    #[test]
    fn empty_requirement_is_never_met() {
        let p = principal();
        let none: [&str; 0] = [];
        assert!(!is_met(Kind::Scope, Match::All, &none, &p, None));
        assert!(!is_met(Kind::Scope, Match::Any, &none, &p, None));
    }

    #[test]
    fn roles_and_scopes_do_not_mix() {
        let p = principal();
        assert!(!is_met(Kind::Role, Match::All, &["a"], &p, None));
        assert!(!is_met(Kind::Scope, Match::All, &["editor"], &p, None));
    }

    #[test]
    fn hierarchy_never_expands_scopes() {
        let h = RoleHierarchy::new().grant("a", ["z"]);
        let p = principal();
        assert!(!is_met(Kind::Scope, Match::All, &["z"], &p, Some(&h)));
    }

    #[test]
    fn missing_roles_are_named_as_roles_not_scopes() {
        let err = insufficient(Kind::Role, joined(&["admin", "editor"]));
        assert_eq!(err.kind(), AuthErrorKind::InsufficientRole);
        assert_eq!(err.role(), Some("admin editor"));
        assert_eq!(err.scope(), None);
        assert_eq!(err.status(), 403);
    }

    #[test]
    fn missing_scopes_are_named_as_scopes() {
        let err = insufficient(Kind::Scope, joined(&["data:read"]));
        assert_eq!(err.kind(), AuthErrorKind::InsufficientScope);
        assert_eq!(err.scope(), Some("data:read"));
        assert_eq!(err.role(), None);
        assert_eq!(err.status(), 403);
    }

    #[test]
    fn role_or_scope_refusal_names_both() {
        let err = insufficient_role_or_scope(joined(&["admin"]), joined(&["admin:all"]));
        assert_eq!(err.status(), 403);
        assert_eq!(err.role(), Some("admin"));
        assert_eq!(err.scope(), Some("admin:all"));
        assert_eq!(
            err.description(),
            "the credential lacks a required role or scope"
        );
    }
}
