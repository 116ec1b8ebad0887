//! The axum extractors [`RequireRole<R>`] and [`RequireScope<S>`].
//!
//! Both read the [`Principal`] that an [`AuthLayer`](portcullis_core::AuthLayer) put into
//! the request extensions and refuse with core's [`Rejection`]:
//!
//! - no auth layer ran in front of the route: `500`, logged as a misconfiguration;
//! - no principal (an [`optional`](portcullis_core::AuthLayer::optional) layer let an
//!   anonymous request through): `401`;
//! - a principal without the required roles or scopes: `403` with
//!   `WWW-Authenticate: Bearer …, error="insufficient_scope", scope="…"` and a
//!   problem+json body, or `PERMISSION_DENIED` for gRPC requests.
//!
//! Roles are checked through the [`RoleHierarchy`] in the request extensions, if any.

use std::{fmt, marker::PhantomData, ops::Deref};

use axum_core::extract::FromRequestParts;
use http::request::Parts;
use portcullis_core::{Principal, extract::Rejection};

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

macro_rules! guard_extractor {
    ($ty:ident, $set:ident, $kind:expr, $hierarchy:expr) => {
        impl<R> $ty<R> {
            /// The principal.
            pub fn principal(&self) -> &Principal {
                &self.principal
            }

            /// Unwraps the principal.
            pub fn into_principal(self) -> Principal {
                self.principal
            }
        }

        impl<R: $set> $ty<R> {
            /// Checks `principal` against `R` outside of a request, with an optional
            /// role hierarchy (ignored for scopes).
            ///
            /// # Errors
            ///
            /// The `403 insufficient_scope` [`AuthError`](portcullis_core::AuthError)
            /// naming what is required, when the principal lacks it.
            pub fn check(
                principal: Principal,
                hierarchy: Option<&RoleHierarchy>,
            ) -> Result<Self, portcullis_core::AuthError> {
                if rule::is_met($kind, R::MATCH, R::NAMES, &principal, hierarchy) {
                    Ok(Self {
                        principal,
                        _required: PhantomData,
                    })
                } else {
                    Err(rule::insufficient($kind, rule::joined(R::NAMES)))
                }
            }
        }

        impl<R> Deref for $ty<R> {
            type Target = Principal;

            fn deref(&self) -> &Principal {
                &self.principal
            }
        }

        impl<R> Clone for $ty<R> {
            fn clone(&self) -> Self {
                Self {
                    principal: self.principal.clone(),
                    _required: PhantomData,
                }
            }
        }

        impl<R> fmt::Debug for $ty<R> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("required", &std::any::type_name::<R>())
                    .field("principal", &self.principal)
                    .finish()
            }
        }

        impl<R, S> FromRequestParts<S> for $ty<R>
        where
            R: $set,
            S: Send + Sync,
        {
            type Rejection = Rejection;

            async fn from_request_parts(
                parts: &mut Parts,
                _state: &S,
            ) -> Result<Self, Self::Rejection> {
                let Some(principal) = parts.extensions.get::<Principal>() else {
                    return Err(Rejection::unauthenticated(parts));
                };
                let hierarchy: fn(&Parts) -> Option<&RoleHierarchy> = $hierarchy;
                Self::check(principal.clone(), hierarchy(parts))
                    .map_err(|error| Rejection::new(error, parts))
            }
        }
    };
}

guard_extractor!(RequireRole, RoleSet, Kind::Role, |parts| {
    RoleHierarchy::from_extensions(&parts.extensions)
});
guard_extractor!(RequireScope, ScopeSet, Kind::Scope, |_| None);
