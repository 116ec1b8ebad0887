//! The axum extractors [`RequireRole<R>`], [`RequireScope<S>`] and
//! [`RequireRoleOrScope<R, S>`].
//!
//! Each reads the [`Principal`] that an [`AuthLayer`](portcullis_core::AuthLayer) put
//! into the request extensions and refuses with core's [`AuthRejection`]:
//!
//! - no auth layer ran in front of the route: `500`, logged as a misconfiguration;
//! - no principal (an [`optional`](portcullis_core::AuthLayer::optional) layer let an
//!   anonymous request through): `401`;
//! - a principal without the required roles: `403` with problem `code`
//!   `insufficient_role` and the roles in its `role` member;
//! - a principal without the required scopes: `403` with
//!   `WWW-Authenticate: Bearer …, error="insufficient_scope", scope="…"` and the scopes
//!   in the problem body's `scope` member;
//! - for [`RequireRoleOrScope`], a principal with neither: `403 insufficient_scope`
//!   naming the scopes in the challenge and both in the problem body.
//!
//! gRPC requests get `PERMISSION_DENIED` (and `UNAUTHENTICATED`, `INTERNAL`) instead.
//!
//! Roles are checked through the [`RoleHierarchy`] in the request extensions, if any:
//! add one with `Router::layer(axum::Extension(hierarchy))`.
//!
//! Every refusal is reported as an [`AuthEvent::Rejected`], like the auth layer's own:
//! to the [`Events`] in the request extensions when there are some (add them with
//! `Router::layer(axum::Extension(events))`), otherwise to [`TracingSink`], which
//! logs under the target `portcullis::event`.

use std::{fmt, marker::PhantomData, ops::Deref};

use axum_core::extract::FromRequestParts;
use http::request::Parts;
use portcullis_core::{
    AuthError, AuthEvent, AuthRejection, EventSink, Events, Principal, TracingSink,
};

use crate::{
    RoleHierarchy, RoleSet, ScopeSet,
    rule::{self, Kind},
};

/// Extracts the [`Principal`] if it holds the role(s) `R`: a [`Role`](crate::Role), or
/// [`AnyOf`](crate::AnyOf) / [`AllOf`](crate::AllOf) a tuple of roles. See the
/// [module docs](self) for the refusals.
///
/// Derefs to the [`Principal`].
///
/// ```
/// use portcullis_guard::{roles, AnyOf, RequireRole};
///
/// roles! { pub Admin = "admin", pub Editor = "editor" }
///
/// async fn delete_everything(admin: RequireRole<Admin>) -> String {
///     format!("as you wish, {}", admin.subject())
/// }
///
/// async fn edit(who: RequireRole<AnyOf<(Admin, Editor)>>) -> String {
///     format!("editing as {}", who.subject())
/// }
/// # let _: axum::Router = axum::Router::new()
/// #     .route("/a", axum::routing::delete(delete_everything))
/// #     .route("/b", axum::routing::post(edit));
/// ```
///
/// A scope is not a role:
///
/// ```compile_fail
/// use portcullis_guard::{scopes, RequireRole};
///
/// scopes! { pub ReadData = "data:read" }
///
/// async fn handler(_: RequireRole<ReadData>) {}
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(handler));
/// ```
pub struct RequireRole<R> {
    principal: Principal,
    _required: PhantomData<fn() -> R>,
}

/// Extracts the [`Principal`] if it holds the scope(s) `S`: a [`Scope`](crate::Scope),
/// or [`AnyOf`](crate::AnyOf) / [`AllOf`](crate::AllOf) a tuple of scopes. See the
/// [module docs](self) for the refusals.
///
/// Derefs to the [`Principal`].
///
/// ```
/// use portcullis_guard::{scopes, AllOf, RequireScope};
///
/// scopes! { pub ReadData = "data:read", pub WriteData = "data:write" }
///
/// async fn read(_: RequireScope<ReadData>) -> &'static str {
///     "data"
/// }
///
/// async fn copy(_: RequireScope<AllOf<(ReadData, WriteData)>>) -> &'static str {
///     "copied"
/// }
/// # let _: axum::Router = axum::Router::new()
/// #     .route("/a", axum::routing::get(read))
/// #     .route("/b", axum::routing::post(copy));
/// ```
///
/// A role is not a scope:
///
/// ```compile_fail
/// use portcullis_guard::{roles, RequireScope};
///
/// roles! { pub Admin = "admin" }
///
/// async fn handler(_: RequireScope<Admin>) {}
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(handler));
/// ```
pub struct RequireScope<S> {
    principal: Principal,
    _required: PhantomData<fn() -> S>,
}

/// Extracts the [`Principal`] if it holds the role(s) `R` *or* the scope(s) `S`: people
/// by role, machine clients by scope, say. See the [module docs](self) for the
/// refusals; the `403` names both what would have done.
///
/// Derefs to the [`Principal`].
///
/// ```
/// use portcullis_guard::{roles, scopes, RequireRoleOrScope};
///
/// roles! { pub AdminRole = "admin" }
/// scopes! { pub AdminScope = "admin" }
///
/// async fn admin(who: RequireRoleOrScope<AdminRole, AdminScope>) -> String {
///     format!("welcome, {}", who.subject())
/// }
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(admin));
/// ```
///
/// The role comes first, the scope second:
///
/// ```compile_fail
/// use portcullis_guard::{roles, scopes, RequireRoleOrScope};
///
/// roles! { pub AdminRole = "admin" }
/// scopes! { pub AdminScope = "admin" }
///
/// async fn handler(_: RequireRoleOrScope<AdminScope, AdminRole>) {}
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(handler));
/// ```
pub struct RequireRoleOrScope<R, S> {
    principal: Principal,
    _required: PhantomData<fn() -> (R, S)>,
}

impl<R: RoleSet> RequireRole<R> {
    /// Checks `principal` against `R` outside of a request, through `hierarchy` if any.
    ///
    /// # Errors
    ///
    /// The `403 insufficient_role` [`AuthError`] naming the required roles, when the
    /// principal lacks them.
    pub fn check(
        principal: Principal,
        hierarchy: Option<&RoleHierarchy>,
    ) -> Result<Self, AuthError> {
        if rule::is_met(Kind::Role, R::MATCH, R::NAMES, &principal, hierarchy) {
            Ok(Self::new(principal))
        } else {
            Err(rule::insufficient(Kind::Role, rule::joined(R::NAMES)))
        }
    }
}

impl<S: ScopeSet> RequireScope<S> {
    /// Checks `principal` against `S` outside of a request (scopes know no hierarchy).
    ///
    /// # Errors
    ///
    /// The `403 insufficient_scope` [`AuthError`] naming the required scopes, when the
    /// principal lacks them.
    pub fn check(principal: Principal) -> Result<Self, AuthError> {
        if rule::is_met(Kind::Scope, S::MATCH, S::NAMES, &principal, None) {
            Ok(Self::new(principal))
        } else {
            Err(rule::insufficient(Kind::Scope, rule::joined(S::NAMES)))
        }
    }
}

impl<R: RoleSet, S: ScopeSet> RequireRoleOrScope<R, S> {
    /// Checks `principal` against `R` or `S` outside of a request, with roles checked
    /// through `hierarchy` if any.
    ///
    /// # Errors
    ///
    /// The `403 insufficient_scope` [`AuthError`] naming the required roles and scopes,
    /// when the principal holds neither.
    pub fn check(
        principal: Principal,
        hierarchy: Option<&RoleHierarchy>,
    ) -> Result<Self, AuthError> {
        if rule::is_met(Kind::Scope, S::MATCH, S::NAMES, &principal, None)
            || rule::is_met(Kind::Role, R::MATCH, R::NAMES, &principal, hierarchy)
        {
            Ok(Self::new(principal))
        } else {
            Err(rule::insufficient_role_or_scope(
                rule::joined(R::NAMES),
                rule::joined(S::NAMES),
            ))
        }
    }
}

/// Runs `check` on the request's principal, or refuses; reports every refusal.
// The result `FromRequestParts` returns, passed straight through.
#[allow(clippy::result_large_err)]
fn guard<T>(
    parts: &Parts,
    check: impl FnOnce(Principal, &Parts) -> Result<T, AuthError>,
) -> Result<T, AuthRejection> {
    let Some(principal) = parts.extensions.get::<Principal>() else {
        return Err(report(AuthRejection::unauthenticated(parts), parts));
    };
    check(principal.clone(), parts).map_err(|error| report(AuthRejection::new(error, parts), parts))
}

/// Emits the `rejected` event for `rejection`, to the sink in the extensions or to
/// `tracing`.
fn report(rejection: AuthRejection, parts: &Parts) -> AuthRejection {
    let event = AuthEvent::Rejected {
        error: rejection.error(),
        path: parts.uri.path(),
    };
    match parts.extensions.get::<Events>() {
        Some(events) => events.emit(&event),
        None => TracingSink.emit(&event),
    }
    rejection
}

fn hierarchy(parts: &Parts) -> Option<&RoleHierarchy> {
    parts.extensions.get::<RoleHierarchy>()
}

macro_rules! guard_extractor {
    ($ty:ident<$($p:ident: $bound:ident as $field:literal),+>, $check:expr) => {
        impl<$($p),+> $ty<$($p),+> {
            fn new(principal: Principal) -> Self {
                Self {
                    principal,
                    _required: PhantomData,
                }
            }

            /// The principal.
            pub fn principal(&self) -> &Principal {
                &self.principal
            }

            /// Unwraps the principal.
            pub fn into_principal(self) -> Principal {
                self.principal
            }
        }

        impl<$($p),+> Deref for $ty<$($p),+> {
            type Target = Principal;

            fn deref(&self) -> &Principal {
                &self.principal
            }
        }

        impl<$($p),+> Clone for $ty<$($p),+> {
            fn clone(&self) -> Self {
                Self::new(self.principal.clone())
            }
        }

        impl<$($p),+> fmt::Debug for $ty<$($p),+> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut s = f.debug_struct(stringify!($ty));
                $(s.field($field, &std::any::type_name::<$p>());)+
                s.field("principal", &self.principal).finish()
            }
        }

        impl<$($p,)+ St> FromRequestParts<St> for $ty<$($p),+>
        where
            $($p: $bound,)+
            St: Send + Sync,
        {
            type Rejection = AuthRejection;

            async fn from_request_parts(
                parts: &mut Parts,
                _state: &St,
            ) -> Result<Self, Self::Rejection> {
                guard(parts, $check)
            }
        }
    };
}

guard_extractor!(RequireRole<R: RoleSet as "roles">, |principal, parts| {
    Self::check(principal, hierarchy(parts))
});
guard_extractor!(RequireScope<S: ScopeSet as "scopes">, |principal, _| {
    Self::check(principal)
});
guard_extractor!(
    RequireRoleOrScope<R: RoleSet as "roles", S: ScopeSet as "scopes">,
    |principal, parts| Self::check(principal, hierarchy(parts))
);
