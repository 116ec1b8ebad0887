//! Rate limiting for tower services, on [governor]: a keyed [`RateLimitLayer`] with
//! bounded memory and the IETF `RateLimit` fields, and a [`LoginRateLimitLayer`] that
//! throttles password guessing per IP and per account.
//!
//! - [`RateLimitLayer`]: one quota per key; keys from a [`KeyExtractor`] (client IP,
//!   [`Principal`](portcullis_core::Principal) subject, API key id, a header, or a
//!   closure); `429` with `Retry-After`, `RateLimit-Policy`, `RateLimit`
//!   ([draft-ietf-httpapi-ratelimit-headers-10] syntax) and a problem+json body that
//!   names the wait, `grpc-status: 8` for gRPC.
//! - [`GovernorBackend`]: the local state, capped at a number of keys and cleaned up
//!   inside the layer as it runs (no background task); [`RateLimitBackend`] lets a
//!   shared store take its place.
//! - [`LoginRateLimitLayer`]: per-IP attempts, per-IP failures, per-account-and-IP
//!   failures and a per-account guard, with growing backoff, read from the login
//!   response's status; in memory ([`MemoryLoginBackend`]) or in a shared store
//!   ([`LoginBackend`]).
//! - The client IP comes from [`ClientIpResolver`](portcullis_core::ClientIpResolver):
//!   the socket peer, or forwarding headers from trusted proxies only.
//!
//! ```
//! use std::{net::SocketAddr, num::NonZeroU32};
//! use axum::{body::Body, routing::get, Router};
//! use http::{Request, StatusCode};
//! use http_body_util::BodyExt;
//! use portcullis_core::PeerAddr;
//! use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let limit = RateLimitLayer::new(ClientIpKey::new(), Quota::per_minute(NonZeroU32::new(2).unwrap()))
//!     .policy_name("api");
//! let app = Router::new().route("/", get(|| async { "hello" })).route_layer(limit);
//!
//! // The client's address, as a server puts it into the request (see below).
//! let peer = PeerAddr(SocketAddr::from(([192, 0, 2, 1], 4711)));
//! let request = || Request::get("/").extension(peer).body(Body::empty()).unwrap();
//!
//! assert_eq!(app.clone().oneshot(request()).await.unwrap().status(), StatusCode::OK);
//! assert_eq!(app.clone().oneshot(request()).await.unwrap().status(), StatusCode::OK);
//! let refused = app.oneshot(request()).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(refused.headers()["retry-after"], "30");
//! assert_eq!(refused.headers()["ratelimit-policy"], r#""api";q=2;w=60"#);
//! assert_eq!(refused.headers()["ratelimit"], r#""api";r=0;t=30"#);
//! let body = refused.into_body().collect().await.unwrap().to_bytes();
//! let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(problem["code"], "rate_limited");
//! assert_eq!(problem["retry_after"], 30);
//! # }
//! ```
//!
//! # The client address
//!
//! [`ClientIpKey`] and the login throttle need the socket peer of each request
//! ([`peer_addr`]). A server puts it into the request extensions:
//!
//! - axum, with this crate's **`axum` feature**: serve the app with
//!   `into_make_service_with_connect_info::<SocketAddr>()`, and the layers read the
//!   `ConnectInfo<SocketAddr>` it inserts;
//!
//!   ```no_run
//!   # use std::net::SocketAddr;
//!   # #[tokio::main(flavor = "current_thread")]
//!   # async fn main() {
//!   # let app = axum::Router::new();
//!   let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await.unwrap();
//!   axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
//!       .await
//!       .unwrap();
//!   # }
//!   ```
//!
//! - tonic, with this crate's **`tonic` feature**: `Server::builder()` records the peer
//!   of every call (`TcpConnectInfo`), and the layers read it;
//! - any other server (or axum without the feature): insert a
//!   [`PeerAddr`](portcullis_core::PeerAddr), as the example above does.
//!
//! A request with neither is a configuration error, never a pass: it is answered
//! `500`, and the log (`ERROR`, target `portcullis::config`) says how to fix it.
//!
//! # `RateLimit` fields on every response
//!
//! A refusal always carries `Retry-After`, `RateLimit-Policy` and `RateLimit`.
//! [`headers_on_success`](RateLimitLayer::headers_on_success) adds the two `RateLimit`
//! fields to the responses that were let through too, so that clients can pace
//! themselves before they are refused. `r` is the quota left and `t` the seconds until
//! more becomes available: the same meaning on a `200` and on a `429`, so walking a
//! key through its burst reads as one story.
//!
//! ```
//! # use std::{net::SocketAddr, num::NonZeroU32};
//! # use axum::{body::Body, routing::get, Router};
//! # use http::{Request, StatusCode};
//! # use portcullis_core::PeerAddr;
//! # use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
//! # use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let limit = RateLimitLayer::new(ClientIpKey::new(), Quota::per_minute(NonZeroU32::new(2).unwrap()))
//!     .policy_name("api")
//!     .headers_on_success(true);
//! let app = Router::new().route("/", get(|| async { "hello" })).route_layer(limit);
//! # let peer = PeerAddr(SocketAddr::from(([192, 0, 2, 1], 4711)));
//! # let request = || Request::get("/").extension(peer).body(Body::empty()).unwrap();
//!
//! // A burst of two, one unit back every 30 s.
//! let first = app.clone().oneshot(request()).await.unwrap();
//! assert_eq!(first.headers()["ratelimit-policy"], r#""api";q=2;w=60"#);
//! assert_eq!(first.headers()["ratelimit"], r#""api";r=1;t=30"#);
//! let last = app.clone().oneshot(request()).await.unwrap();
//! assert_eq!(last.headers()["ratelimit"], r#""api";r=0;t=30"#);
//! // Nothing left: refused, and told the same time.
//! let refused = app.oneshot(request()).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(refused.headers()["ratelimit"], r#""api";r=0;t=30"#);
//! assert_eq!(refused.headers()["retry-after"], "30");
//! # }
//! ```
//!
//! # Features
//!
//! | Feature | Default | What it adds |
//! |---|---|---|
//! | `axum` | no | the peer address from axum's `ConnectInfo<SocketAddr>` |
//! | `tonic` | no | the peer address from tonic's `TcpConnectInfo`; tonic's body holds a refusal |
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
    backend::{BackendError, Decision, GovernorBackend, RateLimitBackend},
    key::{ApiKeyIdKey, ClientIpKey, HeaderKey, KeyExtractError, KeyExtractor, SubjectKey},
    limit::{RateLimit, RateLimitLayer},
    login::{Backoff, LoginBackend, LoginRateLimit, LoginRateLimitLayer, MemoryLoginBackend},
    peer::peer_addr,
};
pub use governor::{Quota, clock};
