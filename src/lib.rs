//! Portcullis: API authentication for any tower service (axum, tonic, hyper), one
//! `.layer()` each.
//!
//! Put an [`AuthLayer`] in front of your routes with the authenticator you need, read
//! the [`Principal`] in your handlers, and guard routes by role or scope:
//!
//! ```
//! use axum::{Router, routing::get};
//! use portcullis::prelude::*;
//!
//! roles! { pub Admin = "admin" }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let jwt = JwtAuthenticator::builder()
//!     .key(Key::hmac(Algorithm::HS256, b"a-secret-of-at-least-32-bytes!!!")?)
//!     .issuer("https://issuer.example")
//!     .audience("my-api")
//!     .build()?;
//!
//! let app: Router = Router::new()
//!     .route("/me", get(|me: Principal| async move { me.subject().to_owned() }))
//!     .route("/admin", get(|_: RequireRole<Admin>| async { "welcome" }))
//!     .route_layer(AuthLayer::new(jwt));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! What a request meets, and what it gets back:
//!
//! - no credential: `401` with `WWW-Authenticate: Bearer realm="api"`;
//! - a bad, expired or forged one: `401` `invalid_token`; a malformed request: `400`;
//! - a missing role or scope: `403`, naming what is missing;
//! - each with an RFC 9457 `application/problem+json` body carrying a stable `code`, and
//!   gRPC calls get the matching `grpc-status` instead.
//!
//! The layers answer in the wrapped service's own body type, so they work unchanged
//! around an axum route or `Router`, a tonic server (feature `tonic`) or a hyper
//! service (see [`body`]).
//!
//! # Features
//!
//! The default is what a resource server needs: verify bearer tokens and guard routes.
//!
//! | feature | module | what |
//! |---|---|---|
//! | (always) | the crate root | [`Principal`], [`AuthError`], [`Authenticator`], [`AuthLayer`], extractors |
//! | `jwt` (default) | `jwt` | bearer-JWT verification with static keys |
//! | `jwks` | `jwt::jwks` | keys from JWKS URLs and OIDC discovery, cached and rotated |
//! | `introspection` | `jwt::introspection` | opaque access tokens by RFC 7662 introspection, cached and coalesced |
//! | `guard` (default) | `guard` | `RequireRole` / `RequireScope` extractors and tower layers, the per-method `PolicyLayer` |
//! | `apikey` | `apikey` | API keys: generation, hashed storage, the authenticator |
//! | `ratelimit` | `ratelimit` | rate limits on governor, and the login throttle; quotas in the `PolicyLayer` table |
//! | `tokens` | `tokens` | access-token issuance, JWK Set, refresh rotation with reuse detection, revocation |
//! | `password` | `password` | argon2id hashing off the runtime, NIST-style policy, reset tokens |
//! | `redis` | `redis` | Redis backends: shared rate limits, revocation, refresh tokens, API keys |
//! | `sql` | `sql` | PostgreSQL and SQLite backends (sqlx): refresh tokens, API keys |
//! | `tonic` | `guard::grpc` | the layers wrap tonic servers directly; the client address from tonic's connect info; `From<AuthError> for tonic::Status`; scope and role checks in handlers |
//! | `axum` | | rate limits read the client address from axum's `ConnectInfo` |
//! | `metrics` | `metrics` | counters, gauges and histograms for every decision, through the `metrics` facade (README: Metrics) |
//! | `serve` | [`serve`](mod@serve) | serve an HTTP/1.1 app with head and body timeouts, a connection cap and the peer address |
//! | `full` | all of the above | |

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use portcullis_core::*;

#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use portcullis_jwt as jwt;

#[cfg(feature = "apikey")]
#[cfg_attr(docsrs, doc(cfg(feature = "apikey")))]
pub use portcullis_apikey as apikey;

#[cfg(feature = "ratelimit")]
#[cfg_attr(docsrs, doc(cfg(feature = "ratelimit")))]
pub use portcullis_ratelimit as ratelimit;

#[cfg(feature = "guard")]
#[cfg_attr(docsrs, doc(cfg(feature = "guard")))]
pub use portcullis_guard as guard;

#[cfg(feature = "tokens")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokens")))]
pub use portcullis_tokens as tokens;

#[cfg(feature = "password")]
#[cfg_attr(docsrs, doc(cfg(feature = "password")))]
pub use portcullis_password as password;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use portcullis_redis as redis;

#[cfg(feature = "sql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
pub use portcullis_sql as sql;

/// The names most applications need, in one `use`: what the README's examples use.
pub mod prelude {
    pub use portcullis_core::{
        AuthError, AuthLayer, Authenticator, Claims, ClientIp, Principal, PrincipalKind,
    };

    #[cfg(feature = "jwt")]
    pub use portcullis_jwt::{Algorithm, JwtAuthenticator, Key};

    #[cfg(feature = "guard")]
    pub use portcullis_guard::{
        Access, PolicyLayer, RequireRole, RequireRoleOrScope, RequireScope, roles, scopes,
    };

    #[cfg(all(feature = "guard", feature = "tonic"))]
    pub use portcullis_guard::grpc::RequestExt;

    #[cfg(feature = "apikey")]
    pub use portcullis_apikey::{ApiKeyAuthenticator, ApiKeys};

    #[cfg(feature = "ratelimit")]
    pub use portcullis_ratelimit::{ClientIpKey, RateLimitLayer};
}

// The README's code is compiled as part of the doc tests (it uses every feature).
#[cfg(all(doctest, feature = "full"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
