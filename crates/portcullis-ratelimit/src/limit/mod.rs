//! The general keyed rate limit: [`RateLimitLayer`] → [`RateLimit`] →
//! [`ResponseFuture`](portcullis_core::auth::ResponseFuture).
//!
//! For each request the layer asks its [`KeyExtractor`](crate::KeyExtractor) for a
//! key and its [`RateLimitBackend`](crate::RateLimitBackend) for a decision:
//!
//! - allowed: the inner service is called (with the `RateLimit-Policy` / `RateLimit`
//!   fields on the response if [`headers_on_success`](RateLimitLayer::headers_on_success));
//! - refused: `429 Too Many Requests` with `Retry-After`, `RateLimit-Policy`,
//!   `RateLimit` (`r=0`) and a problem+json body that names the wait
//!   (`"retry_after"`, in seconds), or `grpc-status: 8` (RESOURCE_EXHAUSTED) for gRPC
//!   requests, and an [`AuthEvent::Throttled`](portcullis_core::AuthEvent::Throttled);
//! - no key: the extractor's error (`500` for a configuration error such as a
//!   missing `Principal`, with how to fix it logged at `ERROR`; `400` for a bad
//!   request); never a pass;
//! - backend failure: `503`, failing closed.
//!
//! The layer answers in the inner service's own body type (any
//! [`RejectionBody`](portcullis_core::body::RejectionBody), axum's included), so it
//! can sit on a route (`route_layer`, or `layer` on a `Router`) or wrap a whole
//! `Router` served with `axum::ServiceExt::into_make_service_with_connect_info`: every
//! request is then counted before routing, unknown paths included.

mod layer;
mod service;

pub use self::{layer::RateLimitLayer, service::RateLimit};
