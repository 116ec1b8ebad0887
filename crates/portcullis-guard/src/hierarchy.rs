//! [`RoleHierarchy`]: which roles imply which, as configuration.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::Arc,
};

use portcullis_core::Principal;

/// Which roles imply which: `admin` implies `editor`, `editor` implies `viewer`.
///
/// Implication is transitive and cycles are harmless (roles in a cycle imply each
/// other). The transitive closure is computed when the hierarchy is built, so a check
/// at request time is a hash lookup per role the principal holds. Cloning shares the
/// computed table.
///
/// It reaches the guards as a plain request extension: with axum,
/// `Router::layer(axum::Extension(hierarchy))` (any layer that inserts an extension
/// will do, tower-http's `AddExtensionLayer` too). The tower guards also take one
/// directly, with [`RequireRoleLayer::with_hierarchy`](crate::RequireRoleLayer::with_hierarchy)
/// and [`RequireRoleOrScopeLayer::with_hierarchy`](crate::RequireRoleOrScopeLayer::with_hierarchy),
/// which wins over the extension. Scopes are never expanded: a hierarchy is about roles
/// only.
///
/// ```
/// use portcullis_core::{Principal, PrincipalKind};
/// use portcullis_guard::RoleHierarchy;
///
/// let hierarchy = RoleHierarchy::new()
///     .grant("admin", ["editor"])
///     .grant("editor", ["viewer"]);
///
/// assert!(hierarchy.implies("admin", "viewer"));
/// assert!(!hierarchy.implies("viewer", "editor"));
///
/// let alice = Principal::builder("alice", PrincipalKind::User).roles(["admin"]).build();
/// assert!(hierarchy.has_role(&alice, "editor"));
/// assert!(!alice.has_role("editor")); // the principal itself is unchanged
/// ```
///
/// Given to the guards of a router:
///
/// ```
/// use axum::{body::Body, routing::get, Extension, Router};
/// use http::{Request, StatusCode};
/// use portcullis_core::{AuthLayer, AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind};
/// use portcullis_guard::{roles, RequireRole, RoleHierarchy};
/// use tower::ServiceExt;
///
/// roles! { pub Editor = "editor" }
///
/// /// Everyone is an admin, in this demo.
/// struct Admins;
///
/// impl Authenticator for Admins {
///     fn authenticate(&self, _: &http::request::Parts) -> MaybeReady<AuthResult> {
///         MaybeReady::Ready(Ok(Some(
///             Principal::builder("alice", PrincipalKind::User).roles(["admin"]).build(),
///         )))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = Router::new()
///     .route("/edit", get(|_: RequireRole<Editor>| async { "edited" }))
///     .route_layer(AuthLayer::new(Admins))
///     .layer(Extension(RoleHierarchy::new().grant("admin", ["editor"])));
///
/// let response = app.oneshot(Request::get("/edit").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct RoleHierarchy {
    inner: Arc<Inner>,
}

/// Role → sorted roles, sorted by role: a flat table searched by binary search, which
/// for the few dozen roles a service has beats hashing the name.
#[derive(Clone, Default)]
struct Table(Box<[Row]>);

/// A role and the sorted roles related to it.
type Row = (Box<str>, Box<[Box<str>]>);

impl Table {
    fn get(&self, role: &str) -> Option<&[Box<str>]> {
        self.0
            .binary_search_by(|(r, _)| (**r).cmp(role))
            .ok()
            .map(|i| &*self.0[i].1)
    }
}

impl FromIterator<Row> for Table {
    fn from_iter<I: IntoIterator<Item = Row>>(iter: I) -> Self {
        let mut rows: Vec<_> = iter.into_iter().collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Self(rows.into_boxed_slice())
    }
}

#[derive(Clone, Default)]
struct Inner {
    /// Direct grants, as configured.
    edges: BTreeMap<Box<str>, BTreeSet<Box<str>>>,
    /// Every role each role implies (transitively, itself excluded unless in a cycle),
    /// sorted for binary search.
    closure: Table,
    /// The inverse: every role that implies a given role, sorted. A check looks the
    /// required role up once, whatever number of roles the principal holds.
    granted_by: Table,
}

impl RoleHierarchy {
    /// An empty hierarchy: every role implies only itself.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares that holding `role` grants each of `implied` too (and, transitively,
    /// whatever those imply).
    #[must_use]
    pub fn grant<I, N>(mut self, role: impl Into<Box<str>>, implied: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<Box<str>>,
    {
        let inner = Arc::make_mut(&mut self.inner);
        let role = role.into();
        let targets = inner.edges.entry(role).or_default();
        for name in implied {
            targets.insert(name.into());
        }
        inner.closure = closure(&inner.edges);
        inner.granted_by = inverse(&inner.closure);
        self
    }

    /// Whether holding `held` grants `required`: they are equal, or `held` implies
    /// `required` through the hierarchy.
    pub fn implies(&self, held: &str, required: &str) -> bool {
        held == required
            || self
                .inner
                .closure
                .get(held)
                .is_some_and(|implied| implied.binary_search_by(|r| (**r).cmp(required)).is_ok())
    }

    /// Whether `principal` holds `role`, directly or through the hierarchy.
    pub fn has_role(&self, principal: &Principal, role: &str) -> bool {
        match self.inner.granted_by.get(role) {
            None => principal.has_role(role),
            Some(granters) => principal
                .roles()
                .any(|held| held == role || granters.binary_search_by(|g| (**g).cmp(held)).is_ok()),
        }
    }

    /// Every role `role` implies, itself excluded (unless it sits in a cycle), sorted.
    pub fn implied_by(&self, role: &str) -> impl Iterator<Item = &str> + '_ {
        self.inner
            .closure
            .get(role)
            .into_iter()
            .flat_map(|implied| implied.iter().map(|r| &**r))
    }

    /// Whether no grant was declared.
    pub fn is_empty(&self) -> bool {
        self.inner.edges.is_empty()
    }
}

fn closure(edges: &BTreeMap<Box<str>, BTreeSet<Box<str>>>) -> Table {
    edges
        .keys()
        .map(|start| {
            let mut seen: BTreeSet<&str> = BTreeSet::new();
            let mut stack: Vec<&str> = vec![start];
            while let Some(role) = stack.pop() {
                for next in edges.get(role).into_iter().flatten() {
                    // `seen` stops cycles: each role is expanded once.
                    if seen.insert(next) {
                        stack.push(next);
                    }
                }
            }
            let implied: Box<[Box<str>]> = seen.into_iter().map(Box::from).collect();
            (start.clone(), implied)
        })
        .collect()
}

fn inverse(closure: &Table) -> Table {
    let mut inverse: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (role, implied) in closure.0.iter() {
        for target in implied.iter() {
            inverse.entry(target).or_default().insert(role);
        }
    }
    inverse
        .into_iter()
        .map(|(target, granters)| {
            (
                Box::from(target),
                granters.into_iter().map(Box::from).collect(),
            )
        })
        .collect()
}

impl fmt::Debug for RoleHierarchy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.inner.edges.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implication_is_transitive() {
        let h = RoleHierarchy::new()
            .grant("admin", ["editor"])
            .grant("editor", ["viewer"])
            .grant("viewer", ["guest"]);
        assert!(h.implies("admin", "guest"));
        assert!(h.implies("editor", "guest"));
        assert!(!h.implies("guest", "viewer"));
        assert_eq!(
            h.implied_by("admin").collect::<Vec<_>>(),
            ["editor", "guest", "viewer"]
        );
    }

    #[test]
    fn grants_declared_in_any_order_are_transitive() {
        let h = RoleHierarchy::new()
            .grant("editor", ["viewer"])
            .grant("admin", ["editor"]);
        assert!(h.implies("admin", "viewer"));
    }

    #[test]
    fn cycles_terminate_and_imply_each_other() {
        let h = RoleHierarchy::new()
            .grant("a", ["b"])
            .grant("b", ["c"])
            .grant("c", ["a"]);
        assert!(h.implies("a", "c"));
        assert!(h.implies("c", "b"));
        assert!(h.implies("b", "a"));
        assert!(!h.implies("a", "d"));
        assert_eq!(h.implied_by("a").collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn self_grant_is_harmless() {
        let h = RoleHierarchy::new().grant("a", ["a"]);
        assert!(h.implies("a", "a"));
        assert!(!h.implies("a", "b"));
    }

    #[test]
    fn unknown_role_implies_only_itself() {
        let h = RoleHierarchy::new().grant("admin", ["editor"]);
        assert!(h.implies("viewer", "viewer"));
        assert!(!h.implies("viewer", "editor"));
        assert_eq!(h.implied_by("viewer").count(), 0);
    }

    #[test]
    fn clones_made_before_a_grant_are_unchanged() {
        let base = RoleHierarchy::new().grant("admin", ["editor"]);
        let wider = base.clone().grant("editor", ["viewer"]);
        assert!(!base.implies("admin", "viewer"));
        assert!(wider.implies("admin", "viewer"));
    }

    #[test]
    fn has_role_agrees_with_implies() {
        let h = RoleHierarchy::new()
            .grant("admin", ["editor", "auditor"])
            .grant("editor", ["viewer"])
            .grant("x", ["y"])
            .grant("y", ["x"]);
        let roles = ["admin", "editor", "auditor", "viewer", "x", "y", "other"];
        for held in roles {
            let p = Principal::builder("p", portcullis_core::PrincipalKind::User)
                .roles(["unrelated", held])
                .build();
            for required in roles {
                assert_eq!(
                    h.has_role(&p, required),
                    h.implies(held, required),
                    "{held} -> {required}"
                );
            }
        }
    }

    #[test]
    fn long_chain_is_fully_expanded() {
        let mut h = RoleHierarchy::new();
        for i in 0..100 {
            h = h.grant(format!("r{i}"), [format!("r{}", i + 1)]);
        }
        assert!(h.implies("r0", "r100"));
        assert!(!h.implies("r100", "r0"));
    }
}
