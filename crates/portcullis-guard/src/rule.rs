//! The check every guard runs: does a principal hold the roles or scopes required?

use std::borrow::Cow;

use portcullis_core::{AuthError, Principal};

use crate::{Match, RoleHierarchy};

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
