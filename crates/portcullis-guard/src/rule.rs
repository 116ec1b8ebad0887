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

/// The `403 insufficient_scope` refusal naming what is required.
///
/// For scopes, `scope="…"` lists the required scopes as RFC 6750 §3 describes; for
/// roles the same attribute lists the required roles, so a client can tell what it is
/// missing.
pub(crate) fn insufficient(kind: Kind, required: Cow<'static, str>) -> AuthError {
    let error = AuthError::insufficient_scope(required);
    match kind {
        Kind::Scope => error.with_description("the credential lacks a required scope"),
        Kind::Role => error.with_description("the credential lacks a required role"),
    }
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
    use portcullis_core::PrincipalKind;

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
    fn insufficient_names_what_is_required() {
        let err = insufficient(Kind::Role, joined(&["admin", "editor"]));
        assert_eq!(err.scope(), Some("admin editor"));
        assert_eq!(err.status(), 403);
    }
}
