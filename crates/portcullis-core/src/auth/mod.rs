//! The one authentication middleware: [`AuthLayer`] → [`AuthService`] →
//! [`ResponseFuture`], generic over any [`Authenticator`](crate::Authenticator).
//!
//! For each request the service asks the authenticator about the request head:
//!
//! - a [`Principal`](crate::Principal): it goes into the request extensions (with typed
//!   claims, if any) and the inner service is called;
//! - no credential: `401` with a bare `WWW-Authenticate: Bearer realm="…"` challenge, or,
//!   in [`optional`](AuthLayer::optional) mode, the request passes through without a
//!   principal;
//! - an error: rendered by the layer's [`RenderRejection`](crate::RenderRejection)
//!   (RFC 6750 challenge and problem+json, or a gRPC status for gRPC calls).
//!
//! A `Bearer` token that no authenticator recognised is an invalid token, not a missing
//! one, in both modes.
//!
//! With axum, put the layer on routes with `route_layer`, so that unknown paths still
//! answer `404` rather than `401`.

mod future;
mod layer;
mod service;

pub(crate) use self::service::settle;
pub use self::{future::ResponseFuture, layer::AuthLayer, service::AuthService};

#[cfg(test)]
mod tests;
