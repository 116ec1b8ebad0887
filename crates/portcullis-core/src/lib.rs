//! The core of Portcullis: the types every layer shares.
//!
//! - [`Principal`]: who made the request (subject, kind, issuer, roles, scopes, token
//!   id, expiry, raw and typed claims), with [`ClaimMapping`] for where roles and
//!   scopes live in a token;
//! - [`AuthError`]: every refusal, rendered per RFC 6750 with a problem+json body, or
//!   as a gRPC status for gRPC requests;
//! - [`Authenticator`]: turns a request head into a principal; tuples of them compose;
//! - [`AuthLayer`]: the one tower middleware that runs any authenticator;
//! - [`credentials`]: where bearer tokens are found;
//! - [`AuthEvent`] and [`EventSink`]: security events, to `tracing` by default;
//! - [`metrics`]: the names of the counters the layers keep (feature `metrics`);
//! - axum extractors for `Principal`, `Option<Principal>` and [`Claims<C>`].
//!
//! ```
//! use axum::{body::Body, routing::get, Router};
//! use http::{request::Parts, Request, StatusCode};
//! use portcullis_core::{AuthLayer, AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind};
//! use tower::ServiceExt;
//!
//! /// A toy authenticator: `Authorization: Bearer letmein` is user "demo".
//! struct Demo;
//!
//! impl Authenticator for Demo {
//!     fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
//!         MaybeReady::Ready(match portcullis_core::credentials::authorization_bearer(&parts.headers) {
//!             Ok(Some("letmein")) => Ok(Some(Principal::builder("demo", PrincipalKind::User).build())),
//!             Ok(_) => Ok(None), // not ours: the layer decides (401 or invalid_token)
//!             Err(e) => Err(e),
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new()
//!     .route("/me", get(|p: Principal| async move { p.subject().to_owned() }))
//!     .route_layer(AuthLayer::new(Demo));
//!
//! let ok = Request::get("/me").header("authorization", "Bearer letmein").body(Body::empty()).unwrap();
//! assert_eq!(app.clone().oneshot(ok).await.unwrap().status(), StatusCode::OK);
//!
//! let anonymous = Request::get("/me").body(Body::empty()).unwrap();
//! let response = app.oneshot(anonymous).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="api""#);
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod authenticator;
pub mod body;
pub mod client_ip;
pub mod clock;
pub mod credentials;
mod error;
pub mod events;
pub mod extract;
#[doc(hidden)]
pub mod internal;
mod maybe_ready;
pub mod metrics;
mod principal;
mod render;
pub mod revocation;
#[cfg(feature = "serve")]
#[cfg_attr(docsrs, doc(cfg(feature = "serve")))]
pub mod serve;

pub use crate::{
    auth::{AuthLayer, AuthService},
    authenticator::{AuthResult, Authenticator},
    client_ip::{ClientIp, ClientIpResolver, PeerAddr},
    error::{AuthError, AuthErrorKind},
    events::{AuthEvent, EventSink, Events, TracingSink},
    extract::AuthRejection,
    maybe_ready::MaybeReady,
    principal::{
        ClaimMapping, ClaimPath, ClaimShape, ClaimShapeError, Claims, Principal, PrincipalBuilder,
        PrincipalKind,
    },
    render::{AuthContext, DefaultRenderer, RenderRejection, problem_response},
    revocation::{NoRevocation, Revocation, RevocationQuery},
};

/// The realm of `WWW-Authenticate` challenges unless a layer names another.
pub const DEFAULT_REALM: &str = "api";
