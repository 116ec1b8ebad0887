//! Redis backends for Portcullis: what several instances of a service must share.
//!
//! - [`RedisRateLimit`]: a [`RateLimitBackend`](portcullis_ratelimit::RateLimitBackend)
//!   for [`RateLimitLayer`](portcullis_ratelimit::RateLimitLayer): GCRA in one atomic
//!   Lua script per check, on the server's clock, so every instance enforces one limit;
//! - [`RedisLoginThrottle`]: a [`LoginBackend`](portcullis_ratelimit::LoginBackend)
//!   for [`LoginRateLimitLayer`](portcullis_ratelimit::LoginRateLimitLayer): the login
//!   throttle's counts, one atomic Lua script per decision, shared by every instance;
//! - [`RedisRevocation`]: core's [`Revocation`](portcullis_core::Revocation) (and the
//!   tokens crate's [`RevocationStore`](portcullis_tokens::RevocationStore)): a `jti`
//!   denylist whose entries expire with the token, and per-subject cut-offs, checked in
//!   a local view that pub/sub keeps fresh (no round trip per request; a revocation is
//!   honoured everywhere within [`DEFAULT_MAX_STALENESS`]);
//! - [`RedisRefreshStore`]: a [`RefreshStore`](portcullis_tokens::RefreshStore) with
//!   atomic rotation, reuse detection, a reuse interval for retries, and session
//!   stamps that end every session of a subject, logins under way included (Lua
//!   scripts);
//! - [`RedisApiKeyStore`]: an [`ApiKeyStore`](portcullis_apikey::ApiKeyStore);
//! - [`RedisReplayCache`]: a DPoP [`ReplayCache`](portcullis_jwt::dpop::ReplayCache):
//!   a proof accepted by one instance is refused by every other (`SET NX`);
//! - [`RedisResetStore`]: a [`ResetStore`](portcullis_password::ResetStore) for
//!   single-use password-reset and verification tokens (hashed, `GETDEL`).
//!
//! All of them run on one [`Redis`] handle: a redis-rs `ConnectionManager` that
//! reconnects by itself after the server restarts (or redis-rs's cluster connection on
//! Redis Cluster), a key prefix, and a timeout for every call (250 ms by default). When Redis fails or is slow, each backend applies
//! its [`FailurePolicy`]: **closed** (a `503` to the client) by default, and always
//! for authentication decisions; the rate limit can be set to fail **open** (the
//! request passes, a `WARN` line is logged). Outages and recoveries are logged under
//! the target `portcullis::redis`.
//!
//! ```
//! use std::{net::SocketAddr, num::NonZeroU32};
//! use axum::{body::Body, extract::ConnectInfo, routing::get, Router};
//! use http::{Request, StatusCode};
//! use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
//! use portcullis_redis::{Redis, RedisRateLimit};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), portcullis_redis::Error> {
//! # let Ok(url) = std::env::var("REDIS_URL") else {
//! #     assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "REDIS_URL must be set in CI");
//! #     return Ok(());
//! # };
//! # let prefix = format!("doctest:{}:", rand::random::<u64>());
//! let redis = Redis::open(&url)?.with_prefix(&prefix);
//! let quota = Quota::per_minute(NonZeroU32::new(2).unwrap());
//! let limit = RateLimitLayer::with_backend(ClientIpKey::new(), RedisRateLimit::new(&redis, "api", quota))
//!     .policy_name("api");
//! let app = Router::new().route("/", get(|| async { "hello" })).layer(limit);
//!
//! let peer = ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4711)));
//! let request = || Request::get("/").extension(peer).body(Body::empty()).unwrap();
//! assert_eq!(app.clone().oneshot(request()).await.unwrap().status(), StatusCode::OK);
//! assert_eq!(app.clone().oneshot(request()).await.unwrap().status(), StatusCode::OK);
//! let refused = app.oneshot(request()).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(refused.headers()["ratelimit-policy"], r#""api";q=2;w=60"#);
//! # Ok(()) }
//! ```
//!
//! # Running several instances
//!
//! The layers and services stay the same; only where their state lives changes.
//! Two lines switch a rate limit and refresh tokens from memory to Redis:
//!
//! ```
//! # use std::num::NonZeroU32;
//! # use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
//! # use portcullis_redis::{Redis, RedisRateLimit, RedisRefreshStore};
//! # use portcullis_tokens::{MemoryRefreshStore, RefreshTokens};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), portcullis_redis::Error> {
//! # let quota = Quota::per_minute(NonZeroU32::new(60).unwrap());
//! // One instance: state in memory.
//! let limit = RateLimitLayer::new(ClientIpKey::new(), quota);
//! let refresh = RefreshTokens::new(MemoryRefreshStore::new());
//! # let _ = (limit, refresh);
//!
//! // Several instances: the same limit and refresh tokens, shared through Redis.
//! let redis = Redis::open("redis://127.0.0.1:6379")?; // connects on first use
//! let limit = RateLimitLayer::with_backend(ClientIpKey::new(), RedisRateLimit::new(&redis, "api", quota));
//! let refresh = RefreshTokens::new(RedisRefreshStore::new(&redis));
//! # let _ = (limit, refresh);
//! # Ok(()) }
//! ```
//!
//! Likewise [`RedisRevocation`] replaces `MemoryRevocation` (hand it to the JWT
//! authenticator's `revocation(..)` and to `TokenService`; await
//! [`synced`](RedisRevocation::synced) at start-up, or checks answer `503` until its
//! first sync), [`RedisApiKeyStore`]
//! replaces `MemoryStore` in `ApiKeys::new`, [`RedisResetStore`] replaces
//! `MemoryResetStore` in `ResetTokens::new`, and
//! `LoginRateLimitLayer::with_backend(RedisLoginThrottle::new(&redis, "login"))` replaces
//! `LoginRateLimitLayer::new()`.
//!
//! # Memory
//!
//! What the session, revocation and one-time-token backends write expires by itself:
//! refresh families with their absolute lifetime, denied `jti`s with their token,
//! cut-offs and session stamps after their retention, reset tokens at their expiry,
//! API-key records a retention after the key expired or was revoked. No purge task
//! is needed; only API keys that can still work are kept without a TTL.
//!
//! # Requirements
//!
//! Redis 6.2 or newer (or a compatible server with Lua scripting and pub/sub):
//! standalone, a primary, or a Redis Cluster. Run it with persistence (AOF) so that
//! ended sessions, API keys and one-time tokens survive a restart (revocations are
//! also written back by the running instances, see [`RedisRevocation`]). No TLS
//! support is compiled in.
//!
//! # Redis Cluster
//!
//! [`Redis::open`] with `redis+cluster://host:port,host:port` (or
//! [`Redis::open_cluster`]) connects through redis-rs's cluster client, which follows
//! `MOVED`/`ASK` and failovers. Every key that one script or one decision touches
//! shares a hash tag, so no call fails with `CROSSSLOT`:
//!
//! | backend | hash tag | so one slot holds |
//! |---|---|---|
//! | [`RedisRateLimit`] | none (one key per check) | one key |
//! | [`RedisLoginThrottle`] | `{login:<name>}` | the whole throttle |
//! | [`RedisRevocation`] | `{rev}` | every revocation |
//! | [`RedisRefreshStore`] | `rt:{<hash of the subject>}` | one subject's families and tokens |
//! | [`RedisApiKeyStore`] | `{ak}` | every API key |
//! | [`RedisResetStore`] | none (one key per command) | one key |
//!
//! The login throttle, revocations and API keys each live in one slot: they scale with
//! the node holding it, not with the cluster (their scripts read keys they derive, or
//! decide across IP and account counts at once). The prefix must hold no `{` or `}`.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod apikey;
mod client;
mod login;
mod policy;
mod ratelimit;
mod refresh;
mod replay;
mod reset;
mod revocation;

pub use crate::{
    apikey::{DEFAULT_RETIRED_KEY_RETENTION, RedisApiKeyStore},
    client::{DEFAULT_CALL_TIMEOUT, DEFAULT_PREFIX, Error, ErrorKind, Redis},
    login::{RedisLoginThrottle, RedisLoginTicket},
    policy::FailurePolicy,
    ratelimit::{RedisKey, RedisRateLimit},
    refresh::RedisRefreshStore,
    replay::RedisReplayCache,
    reset::RedisResetStore,
    revocation::{DEFAULT_MAX_STALENESS, RedisRevocation},
};
