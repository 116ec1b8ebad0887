//! Per-method access for gRPC, per-route for any tower service: one [`PolicyLayer`]
//! with a table from request paths to the [`Access`] each needs → [`Policy`] → core's
//! [`ResponseFuture`](portcullis_core::auth::ResponseFuture).
//!
//! The layer runs the authenticator itself, so it replaces the server-wide
//! [`AuthLayer`](portcullis_core::AuthLayer) and the guards behind it. For each call it
//! looks up the call's path (`/pkg.Service/Method` for gRPC): an exact entry, else the
//! longest `…/*` entry covering it (`/pkg.Service/*`, a whole service), else the
//! [`fallback`](PolicyLayer::fallback), which by default requires authentication. Then,
//! in this order, whatever order the table was written in:
//!
//! 1. **authentication**, unless the entry is [`Access::open`]: a bad credential is
//!    `401` / `UNAUTHENTICATED`, and so is a missing one unless the entry is
//!    [`Access::anonymous`]; the [`Principal`](portcullis_core::Principal) goes into
//!    the request extensions, as the auth layer puts it;
//! 2. **roles and scopes**: `403` / `PERMISSION_DENIED`, naming what is missing;
//! 3. **the rate limit** (feature `ratelimit`), per subject or, for anonymous calls,
//!    per client IP: `429` / `RESOURCE_EXHAUSTED` with `Retry-After`. A call refused
//!    earlier spends no quota.
//!
//! gRPC calls get trailers-only statuses whose message and metadata name the missing
//! scope or role; other requests get the RFC 6750 challenge and a problem+json body.
//! Every refusal is reported to the layer's [`Events`](portcullis_core::Events).
//!
//! One layer is one concrete service type, `Policy<S, A>`, however large the table: a
//! change to the table changes no type. With tonic, put it on the whole server,
//! `Server::builder().layer(policy).add_service(..)`, so that it needs no
//! `NamedService` and covers every service the server hosts (health and reflection
//! stay open with one `.route("/grpc.health.v1.Health/*", Access::open())`).
//!
//! ```
//! use std::convert::Infallible;
//! use http::{request::Parts, Request, Response};
//! use portcullis_core::{AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind};
//! use portcullis_guard::policy::{Access, PolicyLayer};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! /// A toy authenticator: the bearer token is the subject; "root" is an admin and
//! /// "clerk" holds the scope `inventory:write`.
//! struct Demo;
//!
//! impl Authenticator for Demo {
//!     fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
//!         let result = portcullis_core::credentials::authorization_bearer(&parts.headers);
//!         MaybeReady::Ready(result.map(|token| {
//!             token.map(|name| {
//!                 let (roles, scopes): (&[&str], &[&str]) = match name {
//!                     "root" => (&["admin"], &[]),
//!                     "clerk" => (&[], &["inventory:write"]),
//!                     _ => (&[], &[]),
//!                 };
//!                 Principal::builder(name, PrincipalKind::User)
//!                     .roles(roles.iter().copied())
//!                     .scopes(scopes.iter().copied())
//!                     .build()
//!             })
//!         }))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let policy = PolicyLayer::new(Demo)
//!     .route("/inventory.Inventory/*", Access::authenticated())
//!     .route("/inventory.Inventory/List", Access::anonymous())
//!     .route("/inventory.Inventory/Add", Access::scope("inventory:write"))
//!     .route("/inventory.Inventory/Purge", Access::role("admin"))
//!     .route("/grpc.health.v1.Health/*", Access::open());
//! let server = policy.layer(service_fn(|_: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(String::from("served")))
//! }));
//!
//! // The gRPC status of a call: none when the service answered.
//! let call = |method: &str, token: Option<&str>| {
//!     let mut request = Request::post(method).header("content-type", "application/grpc");
//!     if let Some(token) = token {
//!         request = request.header("authorization", format!("Bearer {token}"));
//!     }
//!     let server = server.clone();
//!     let request = request.body(()).unwrap();
//!     async move {
//!         let response = server.oneshot(request).await.unwrap();
//!         response.headers().get("grpc-status").map(|s| s.to_str().unwrap().to_owned())
//!     }
//! };
//!
//! assert_eq!(call("/inventory.Inventory/List", None).await, None);
//! assert_eq!(call("/inventory.Inventory/Add", None).await.as_deref(), Some("16"));
//! assert_eq!(call("/inventory.Inventory/Add", Some("root")).await.as_deref(), Some("7"));
//! assert_eq!(call("/inventory.Inventory/Add", Some("clerk")).await, None);
//! assert_eq!(call("/inventory.Inventory/Purge", Some("clerk")).await.as_deref(), Some("7"));
//! assert_eq!(call("/inventory.Inventory/Purge", Some("root")).await, None);
//! assert_eq!(call("/inventory.Inventory/Count", Some("clerk")).await, None);
//! assert_eq!(call("/grpc.health.v1.Health/Check", None).await, None);
//! // Not in the table: the fallback requires authentication.
//! assert_eq!(call("/other.Service/Get", None).await.as_deref(), Some("16"));
//! # }
//! ```

mod access;
mod layer;
#[cfg(feature = "ratelimit")]
mod limit;
mod service;
mod table;

pub use self::{access::Access, layer::PolicyLayer, service::Policy};

#[cfg(test)]
mod tests;
