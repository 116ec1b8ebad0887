//! Role and scope guards for Portcullis: authorisation that reads like a handler's
//! signature, and the same checks as tower layers for any service, gRPC included.
//!
//! - [`roles!`] and [`scopes!`] declare marker types with their names;
//! - [`RequireRole<R>`], [`RequireScope<S>`] and [`RequireRoleOrScope<R, S>`] are axum
//!   extractors that let a request in only if its
//!   [`Principal`](portcullis_core::Principal) holds the role, the scope, or either, or
//!   [`AnyOf`] / [`AllOf`] a tuple of them;
//! - [`RoleHierarchy`] is configuration (`admin` implies `editor`), carried to the
//!   guards as a plain request extension (`Router::layer(axum::Extension(hierarchy))`);
//! - [`RequireRoleLayer`], [`RequireScopeLayer`] and [`RequireRoleOrScopeLayer`] do the
//!   same checks for any tower stack: tonic servers, or whole axum routers;
//! - [`PolicyLayer`] authenticates, authorises and rate-limits each gRPC method (or
//!   route) by one table of [`Access`] entries, in one layer (see [`policy`]);
//! - `grpc::RequestExt` (feature `tonic`) checks scopes and roles inside tonic
//!   handlers as `Result<_, Status>`.
//!
//! Every guard reads the principal that [`AuthLayer`](portcullis_core::AuthLayer) put
//! into the request, whatever authenticated it (a JWT, an API key, …). A request
//! without one is a `401`. A principal lacking a role gets `403` with problem `code`
//! `insufficient_role` naming the role; one lacking a scope gets `403` with
//! `WWW-Authenticate: Bearer realm="…", error="insufficient_scope", scope="…"`; both
//! with an `application/problem+json` body, and gRPC calls get `PERMISSION_DENIED`.
//! Every refusal is reported as an [`AuthEvent::Rejected`](portcullis_core::AuthEvent)
//! like the auth layer's own. A guard with no auth layer in front answers `500` and
//! logs the misconfiguration, rather than treating the request as anonymous. The
//! `Principal`, `Option<Principal>` and `Claims<C>` extractors live in
//! [`portcullis_core::extract`].
//!
//! ```
//! use axum::{body::Body, routing::get, Router};
//! use http::{request::Parts, Request, StatusCode};
//! use portcullis_core::{AuthLayer, AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind};
//! use portcullis_guard::{roles, RequireRole};
//! use tower::ServiceExt;
//!
//! roles! { pub Admin = "admin" }
//!
//! /// A toy authenticator: the bearer token is the subject, and "root" is an admin.
//! struct Demo;
//!
//! impl Authenticator for Demo {
//!     fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
//!         let result = portcullis_core::credentials::authorization_bearer(&parts.headers)
//!             .map(|token| {
//!                 token.map(|name| {
//!                     let roles: &[&str] = if name == "root" { &["admin"] } else { &[] };
//!                     Principal::builder(name, PrincipalKind::User).roles(roles.iter().copied()).build()
//!                 })
//!             });
//!         MaybeReady::Ready(result)
//!     }
//! }
//!
//! async fn admin_only(admin: RequireRole<Admin>) -> String {
//!     format!("hello, {}", admin.subject())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new()
//!     .route("/admin", get(admin_only))
//!     .route_layer(AuthLayer::new(Demo));
//!
//! let get = |token: &str| {
//!     Request::get("/admin").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap()
//! };
//!
//! let response = app.clone().oneshot(get("alice")).await.unwrap();
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! assert_eq!(
//!     response.headers()["www-authenticate"],
//!     r#"Bearer realm="api", error="insufficient_scope", error_description="the credential lacks a required role""#
//! );
//!
//! let response = app.oneshot(get("root")).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! # }
//! ```
//!
//! # Protecting handlers with roles and scopes
//!
//! ```
//! use axum::{routing::{get, post}, Extension, Router};
//! use portcullis_core::{AuthLayer, Authenticator};
//! use portcullis_guard::{
//!     roles, scopes, AllOf, AnyOf, RequireRole, RequireRoleOrScope, RequireScope, RoleHierarchy,
//! };
//!
//! roles! { pub Admin = "admin", pub Editor = "editor" }
//! scopes! { pub ReadData = "data:read", pub WriteData = "data:write", pub AdminScope = "admin" }
//!
//! async fn dashboard(admin: RequireRole<Admin>) -> String {
//!     format!("welcome, {}", admin.subject()) // derefs to the Principal
//! }
//!
//! async fn edit(_: RequireRole<AnyOf<(Admin, Editor)>>) -> &'static str {
//!     "edited"
//! }
//!
//! async fn sync(_: RequireScope<AllOf<(ReadData, WriteData)>>) -> &'static str {
//!     "synced"
//! }
//!
//! // People by role, machine clients by scope.
//! async fn reindex(_: RequireRoleOrScope<Admin, AdminScope>) -> &'static str {
//!     "reindexed"
//! }
//!
//! fn app(authenticator: impl Authenticator) -> Router {
//!     Router::new()
//!         .route("/admin", get(dashboard))
//!         .route("/edit", post(edit))
//!         .route("/sync", post(sync))
//!         .route("/reindex", post(reindex))
//!         // route_layer: unknown paths still answer 404, not 401.
//!         .route_layer(AuthLayer::new(authenticator))
//!         // Configuration, not code: admins may do what editors may.
//!         .layer(Extension(RoleHierarchy::new().grant("admin", ["editor"])))
//! }
//! # struct None_;
//! # impl Authenticator for None_ {
//! #     fn authenticate(&self, _: &http::request::Parts) -> portcullis_core::MaybeReady<portcullis_core::AuthResult> {
//! #         portcullis_core::MaybeReady::Ready(Ok(None))
//! #     }
//! # }
//! # let _ = app(None_);
//! ```
//!
//! # Protecting a tower or tonic service
//!
//! ```
//! use portcullis_guard::RequireScopeLayer;
//! use tower::ServiceBuilder;
//! # use portcullis_core::{AuthLayer, AuthResult, Authenticator, MaybeReady};
//! # struct MyAuthenticator;
//! # impl Authenticator for MyAuthenticator {
//! #     fn authenticate(&self, _: &http::request::Parts) -> MaybeReady<AuthResult> { MaybeReady::Ready(Ok(None)) }
//! # }
//!
//! // The auth layer first (outermost), then the guard.
//! let stack = ServiceBuilder::new()
//!     .layer(AuthLayer::new(MyAuthenticator))
//!     .layer(RequireScopeLayer::any(["data:read"]));
//! # let _ = stack;
//! ```
//!
//! With tonic, the same two layers go on `Server::builder().layer(..).layer(..)` (with
//! the `tonic` feature, so that tonic's body can hold a refusal), or a guard wraps one
//! service, which keeps its gRPC name: `.add_service(layer.layer(AdminServer::new(..)))`.
//! When methods need different things, one [`PolicyLayer`] on the server says what each
//! needs; the workspace's `examples/tonic-inventory` serves generated tonic code that way.
//!
//! # Features
//!
//! | Feature | Default | What it adds |
//! |---|---|---|
//! | `ratelimit` | no | `Access::rate_limit`: quotas in the policy table |
//! | `tonic` | no | `grpc::RequestExt`; tonic's body holds the layers' refusals |

#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub mod extract;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub mod grpc;
mod hierarchy;
pub mod layer;
mod marker;
pub mod policy;
mod rule;

pub use crate::{
    error::{GuardConfigError, GuardConfigErrorKind},
    extract::{RequireRole, RequireRoleOrScope, RequireScope},
    hierarchy::RoleHierarchy,
    layer::{Guard, RequireRoleLayer, RequireRoleOrScopeLayer, RequireScopeLayer},
    marker::{AllOf, AnyOf, Match, Role, RoleSet, Scope, ScopeSet, is_valid_name},
    policy::{Access, Policy, PolicyLayer},
};

/// The refusal of the extractors, from [`portcullis_core::extract`].
pub use portcullis_core::AuthRejection;
