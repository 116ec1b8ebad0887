//! Token issuance for Portcullis: what a login endpoint needs around the bearer layer.
//!
//! - [`TokenIssuer`] signs short-lived RFC 9068 access tokens (`typ: at+jwt`, EdDSA by
//!   default, ES256 and HS256 available) with a `kid`, rotates signing keys, serves
//!   the public [JWK Set](TokenIssuer::jwks) that other services verify through, and
//!   hands a verifier in the same process its
//!   [keys](TokenIssuer::verification_keys) directly;
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
//! use portcullis_core::{AuthLayer, Principal};
//! use portcullis_jwt::JwtAuthenticator;
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
//! // A verifier in the same process takes the issuer's keys directly; other services
//! // fetch the JWK Set served below.
//! let jwt = JwtAuthenticator::builder()
//!     .keys(issuer.verification_keys())
//!     .issuer(issuer.issuer())
//!     .audience(issuer.audience())
//!     .require_access_token_typ()
//!     .build()?;
//!
//! let jwks = issuer.clone();
//! let api = Router::new()
//!     .route("/me", get(|p: Principal| async move { p.subject().to_owned() }))
//!     .route_layer(AuthLayer::new(jwt));
//! let app = Router::new()
//!     .route(
//!         "/.well-known/jwks.json",
//!         get(move || { let r = jwks.jwks_response(); async move { r } }),
//!     )
//!     .merge(api);
//!
//! let token = issuer.issue(&Grant::new("alice", "web").scopes(["read"]))?;
//! let header = jsonwebtoken::decode_header(token.as_str())?;
//! assert_eq!(header.typ.as_deref(), Some("at+jwt"));
//! assert_eq!(header.kid.as_deref(), Some(issuer.active_kid().as_str()));
//!
//! let me = Request::get("/me")
//!     .header("authorization", format!("Bearer {}", token.as_str()))
//!     .body(Body::empty())?;
//! assert_eq!(app.clone().oneshot(me).await?.status(), StatusCode::OK);
//!
//! let response = app
//!     .oneshot(Request::get("/.well-known/jwks.json").body(Body::empty())?)
//!     .await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.headers()["cache-control"], "public, max-age=300");
//! # Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod grant;
mod issuer;
mod key_file;
mod keys;
mod random;
pub mod refresh;
mod revocation;
mod service;

// Injectable time, shared with the other Portcullis crates.
pub use portcullis_core::clock::{Clock, ManualClock, SystemClock};

pub use crate::{
    error::{Error, ErrorKind},
    grant::dpop_client_id,
    issuer::{
        AccessToken, DEFAULT_ACCESS_TOKEN_LIFETIME, Grant, RETIREMENT_GRACE, TokenIssuer,
        TokenIssuerBuilder,
    },
    keys::{MIN_HMAC_SECRET_LEN, SigningAlgorithm, SigningKey},
    refresh::{
        IssuedRefreshToken, MemoryRefreshStore, RefreshRecord, RefreshStore, RefreshToken,
        RefreshTokens, RefreshTokensBuilder, RotateOutcome, Rotation, SealedToken, SessionStamp,
        TokenHash,
    },
    revocation::{
        DEFAULT_CUTOFF_RETENTION, DEFAULT_MAX_DENYLIST, MemoryRevocation, RevocationStore,
        RevokedToken,
    },
    service::{TokenPair, TokenService},
};
