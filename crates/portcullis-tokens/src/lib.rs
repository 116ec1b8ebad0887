//! Token issuance for Portcullis: what a login endpoint needs around the bearer layer.
//!
//! - [`TokenIssuer`] signs short-lived RFC 9068 access tokens (`typ: at+jwt`, EdDSA by
//!   default, ES256 and HS256 available) with a `kid`, rotates signing keys and serves
//!   the public [JWK Set](TokenIssuer::jwks) that other services verify through;
//! - [`RefreshTokens`] hands out opaque, hashed-at-rest refresh tokens that rotate on
//!   every use, grouped in families with absolute and idle expiry; presenting a used
//!   token revokes the whole family and emits
//!   [`AuthEvent::RefreshReuseDetected`](portcullis_core::AuthEvent::RefreshReuseDetected);
//! - [`MemoryRevocation`] implements core's [`Revocation`](portcullis_core::Revocation):
//!   a `jti` denylist and per-subject cut-offs, consulted by the JWT verifier after the
//!   signature check and on cache hits;
//! - [`TokenService`] ties them together: login, refresh, logout, logout everywhere.
//!
//! ```
//! use axum::{body::Body, routing::get, Router};
//! use http::{Request, StatusCode};
//! use portcullis_tokens::{Grant, SigningAlgorithm, SigningKey, TokenIssuer};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = TokenIssuer::builder(
//!     "https://auth.example.com",
//!     "https://api.example.com",
//!     SigningKey::generate(SigningAlgorithm::EdDsa)?,
//! )
//! .build();
//!
//! let jwks = issuer.clone();
//! let app = Router::new().route(
//!     "/.well-known/jwks.json",
//!     get(move || { let r = jwks.jwks_response(); async move { r } }),
//! );
//! let response = app
//!     .oneshot(Request::get("/.well-known/jwks.json").body(Body::empty())?)
//!     .await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.headers()["cache-control"], "public, max-age=300");
//!
//! let token = issuer.issue(&Grant::new("alice", "web").scopes(["read"]))?;
//! let header = jsonwebtoken::decode_header(token.as_str())?;
//! assert_eq!(header.typ.as_deref(), Some("at+jwt"));
//! assert_eq!(header.kid.as_deref(), Some(issuer.active_kid().as_str()));
//! # Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
mod error;
mod issuer;
mod keys;
mod random;
pub mod refresh;
mod revocation;
mod service;

pub use crate::{
    clock::{Clock, ManualClock, SystemClock},
    error::{Error, ErrorKind},
    issuer::{
        AccessToken, DEFAULT_ACCESS_TOKEN_LIFETIME, Grant, RETIREMENT_GRACE, TokenIssuer,
        TokenIssuerBuilder,
    },
    keys::{MIN_HMAC_SECRET_LEN, SigningAlgorithm, SigningKey},
    refresh::{
        IssuedRefreshToken, MemoryRefreshStore, RefreshRecord, RefreshStore, RefreshToken,
        RefreshTokens, RefreshTokensBuilder, RotateOutcome, Rotation, TokenHash,
    },
    revocation::{
        DEFAULT_CUTOFF_RETENTION, DEFAULT_MAX_DENYLIST, MemoryRevocation, RevocationStore,
        RevokedToken,
    },
    service::{TokenPair, TokenService},
};
