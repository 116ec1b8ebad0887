//! Rate limiting for tower services, on [governor]: a keyed [`RateLimitLayer`] with
//! bounded memory and the IETF `RateLimit` fields, and a [`LoginRateLimitLayer`] that
//! throttles password guessing per IP and per account.
//!
//! - [`RateLimitLayer`]: one quota per key; keys from a [`KeyExtractor`] (client IP,
//!   [`Principal`](portcullis_core::Principal) subject, API key id, a header, or a
//!   closure); `429` with `Retry-After`, `RateLimit-Policy` and `RateLimit`
//!   ([draft-ietf-httpapi-ratelimit-headers-10] syntax), `grpc-status: 8` for gRPC.
//! - [`GovernorBackend`]: the local state, capped at a number of keys and cleaned up
//!   inside the layer as it runs (no background task); [`RateLimitBackend`] lets a
//!   shared store take its place.
//! - [`LoginRateLimitLayer`]: per-IP attempts, per-IP failures and per-account
//!   failures with growing backoff, read from the login response's status.
//! - The client IP comes from [`ClientIpResolver`](portcullis_core::ClientIpResolver):
//!   the socket peer, or forwarding headers from trusted proxies only.
//!
//! ```
//! use std::{net::SocketAddr, num::NonZeroU32};
//! use axum::{body::Body, extract::ConnectInfo, routing::get, Router};
//! use http::{Request, StatusCode};
//! use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let limit = RateLimitLayer::new(ClientIpKey::new(), Quota::per_minute(NonZeroU32::new(2).unwrap()))
//!     .policy_name("api");
//! let app = Router::new().route("/", get(|| async { "hello" })).layer(limit);
//!
//! // axum inserts this when served with `into_make_service_with_connect_info::<SocketAddr>()`.
//! let peer = ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4711)));
//! let request = || Request::get("/").extension(peer).body(Body::empty()).unwrap();
//!
//! assert_eq!(app.clone().oneshot(request()).await.unwrap().status(), StatusCode::OK);
//! assert_eq!(app.clone().oneshot(request()).await.unwrap().status(), StatusCode::OK);
//! let refused = app.oneshot(request()).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(refused.headers()["retry-after"], "30");
//! assert_eq!(refused.headers()["ratelimit-policy"], r#""api";q=2;w=60"#);
//! assert_eq!(refused.headers()["ratelimit"], r#""api";r=0;t=30"#);
//! # }
//! ```
//!
//! [governor]: https://docs.rs/governor
//! [draft-ietf-httpapi-ratelimit-headers-10]: https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/10/

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
pub mod headers;
mod key;
pub mod limit;
pub mod login;
mod peer;

pub use crate::{
    backend::{BackendError, Check, Decision, GovernorBackend, RateLimitBackend},
    key::{ApiKeyIdKey, ClientIpKey, HeaderKey, KeyError, KeyExtractor, SubjectKey},
    limit::{RateLimit, RateLimitLayer},
    login::{Backoff, LoginRateLimit, LoginRateLimitLayer},
    peer::peer_addr,
};
pub use governor::{Quota, clock};
