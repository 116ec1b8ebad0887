//! Portcullis: API authentication for any tower service (axum, tonic, hyper), one
//! `.layer()` each.
//!
//! This facade re-exports the Portcullis crates behind features:
//!
//! | feature | module | what |
//! |---|---|---|
//! | (always) | [`core`] | `Principal`, `AuthError`, `Authenticator`, the generic `AuthLayer`, extractors |
//! | `jwt` (default) | [`jwt`] | bearer-JWT verification with static keys |
//! | `jwks` | [`jwt::jwks`](jwt) | keys from JWKS URLs and OIDC discovery, cached and rotated |
//! | `apikey` (default) | [`apikey`] | API keys: generation, hashed storage, the authenticator |
//! | `ratelimit` (default) | [`ratelimit`] | rate limits on governor, and the login throttle |
//! | `guard` (default) | [`guard`] | `RequireRole` / `RequireScope` extractors and tower layers |
//! | `tokens` (default) | [`tokens`] | access-token issuance, JWK Set, refresh rotation with reuse detection, revocation |
//! | `password` (default) | [`password`] | argon2id hashing off the runtime, NIST-style policy, reset tokens |
//! | `redis` | [`redis`] | Redis backends: shared rate limits, revocation, refresh tokens, API keys |
//! | `sql` | [`sql`] | PostgreSQL and SQLite backends (sqlx): refresh tokens, API keys |
//! | `full` | all of the above | |
//!
//! ```
//! use axum::{routing::get, Router};
//! use portcullis::prelude::*;
//! use portcullis::jwt::{Algorithm, JwtAuthenticator, Key};
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
//!     .route_layer(jwt.into_layer());
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use portcullis_core as core;

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

/// The names most applications need, in one `use`.
pub mod prelude {
    pub use portcullis_core::{
        AuthError, AuthLayer, Authenticator, Claims, ClientIp, Principal, PrincipalKind,
    };
}

// The README's code is compiled as part of the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
