//! API keys for Portcullis: prefixed, checksummed keys stored as digests, and an
//! authenticator for the core [`AuthLayer`](portcullis_core::AuthLayer).
//!
//! ```
//! use axum::{body::Body, routing::get, Router};
//! use http::{Request, StatusCode};
//! use portcullis_apikey::{ApiKeys, KeyFormat, MemoryStore, NewApiKey};
//! use portcullis_core::{AuthLayer, Principal};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let keys = ApiKeys::new(MemoryStore::new(), KeyFormat::new("pk_live_").unwrap());
//! let issued = keys
//!     .issue(NewApiKey::owned_by("svc-billing").name("exporter").scopes(["invoices:read"]))
//!     .await
//!     .unwrap();
//!
//! let app = Router::new()
//!     .route("/whoami", get(|p: Principal| async move { p.subject().to_owned() }))
//!     .route_layer(AuthLayer::new(keys.authenticator()));
//!
//! // The key in `X-API-Key` (or `Authorization: Bearer pk_live_…`).
//! let ok = Request::get("/whoami")
//!     .header("x-api-key", issued.key().to_header_value())
//!     .body(Body::empty())
//!     .unwrap();
//! assert_eq!(app.clone().oneshot(ok).await.unwrap().status(), StatusCode::OK);
//!
//! // One character off: the checksum refuses it before any store lookup.
//! let mut typo = issued.key().expose_secret().to_owned();
//! let last = if typo.ends_with('A') { "B" } else { "A" };
//! typo.replace_range(typo.len() - 1.., last);
//! let bad = Request::get("/whoami").header("x-api-key", typo).body(Body::empty()).unwrap();
//! let response = app.oneshot(bad).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
//! # }
//! ```
//!
//! # Pieces
//!
//! - [`KeyFormat`]: `{prefix}{id}_{secret}{checksum}`, generation from the OS CSPRNG
//!   and the format check; see the [`format`](mod@format) module for the layout, the choices behind
//!   it, and the regular expression for secret scanners.
//! - [`KeyHasher`] and [`KeyDigest`]: SHA-256, or HMAC-SHA256 with a server-side pepper.
//!   Stores keep digests, never keys.
//! - [`ApiKeyStore`]: the trait backends implement; [`MemoryStore`] on `dashmap` is the
//!   default.
//! - [`ApiKeys`]: issue, list, revoke, rotate (with a grace period), and hand out the
//!   matching [`ApiKeyAuthenticator`].
//! - [`Clock`]: injectable time; [`ManualClock`] for tests.
//!
//! # With a JWT layer on the same route
//!
//! `AuthLayer::new((api_key, jwt))` accepts either: the API-key authenticator claims
//! `X-API-Key` and bearer tokens carrying its prefix and leaves other bearer tokens to
//! the JWT authenticator. A present but invalid key is refused; it never falls through
//! to the other authenticator. In this order, a request carrying both an `X-API-Key`
//! and a bearer JWT is refused with `400 invalid_request` ("the request carries more
//! than one kind of credential"); in the order `(jwt, api_key)` the JWT decides it.
//!
//! # Security
//!
//! - 256 random bits per key; a checksum so mistyped keys never reach the store.
//! - Only digests at rest, compared in constant time.
//! - Keys never appear in `Debug` output, logs or error bodies: [`SecretKey`] has no
//!   `Display`, its `Debug` shows the public id, its memory is zeroed on drop.
//! - Unknown, wrong, revoked and expired keys get the same `401 invalid_token`.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod authenticator;
mod cache;
mod clock;
mod digest;
mod error;
pub mod format;
mod keys;
mod record;
mod sessions;
mod store;

pub use crate::{
    authenticator::{ApiKeyAuthenticator, DEFAULT_HEADER, DEFAULT_LAST_USE_INTERVAL},
    clock::{Clock, ManualClock, SystemClock},
    digest::{InvalidDigest, KeyDigest, KeyHasher},
    error::{ApiKeyConfigError, ApiKeyError, ApiKeyErrorKind},
    format::{KeyFormat, MalformedKey, ParsedKey, RandomnessError, SecretKey},
    keys::{ApiKeys, IssuedKey},
    record::{ApiKeyRecord, NewApiKey},
    store::{ApiKeyStore, KeyRotation, MemoryStore, StoreError, StoreErrorKind, StoreFuture},
};
