//! The general keyed rate limit: [`RateLimitLayer`] → [`RateLimit`] →
//! [`ResponseFuture`].
//!
//! For each request the layer asks its [`KeyExtractor`](crate::KeyExtractor) for a
//! key and its [`RateLimitBackend`](crate::RateLimitBackend) for a decision:
//!
//! - allowed: the inner service is called (with the `RateLimit-Policy` / `RateLimit`
//!   fields on the response if [`headers_on_success`](RateLimitLayer::headers_on_success));
//! - refused: `429 Too Many Requests` with `Retry-After`, `RateLimit-Policy`,
//!   `RateLimit` (`r=0`) and a problem+json body, or `grpc-status: 8`
//!   (RESOURCE_EXHAUSTED) for gRPC requests, and an [`AuthEvent::Throttled`](portcullis_core::AuthEvent::Throttled);
//! - no key: the extractor's error (`500` for a configuration error such as a
//!   missing `Principal`, logged at `ERROR`; `400` for a bad request); never a pass;
//! - backend failure: `503`, failing closed.
//!
//! With axum, [`same_body`](RateLimitLayer::same_body) makes the layer answer in axum's
//! own body type. Such a layer can wrap the whole `Router` (`layer.layer(router)`, served
//! with `axum::ServiceExt::into_make_service_with_connect_info`): every request is then
//! counted before routing, unknown paths included, without axum's own cost of a
//! `Router::layer`.

mod future;
mod layer;
mod service;

pub use self::{future::ResponseFuture, layer::RateLimitLayer, service::RateLimit};
