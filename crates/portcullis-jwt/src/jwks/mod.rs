//! Keys from JWKS URLs and OpenID Connect / RFC 8414 discovery (feature `jwks`).
//!
//! A [`RemoteKeys`] holds one issuer's keys. It finds the issuer's `jwks_uri` in its
//! metadata (`/.well-known/openid-configuration`, falling back to RFC 8414's
//! `/.well-known/oauth-authorization-server`; see [`RemoteKeysBuilder`]) or takes a
//! JWKS URL you give, fetches the JWK Set, and keeps it fresh with a background task
//! that stops when the last handle is dropped.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use portcullis_core::{AuthLayer, Principal};
//! use portcullis_jwt::{JwtAuthenticator, jwks::RemoteKeys};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = RemoteKeys::discover("https://id.example.com/realms/main").await?;
//! let jwt = JwtAuthenticator::builder()
//!     .remote_keys(keys)
//!     .audience("my-api")
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/me", get(|p: Principal| async move { p.subject().to_owned() }))
//!     .route_layer(AuthLayer::new(jwt));
//! # let _ = app; Ok(())
//! # }
//! ```
//!
//! # Several issuers
//!
//! Give [`remote_keys`](crate::JwtAuthenticatorBuilder::remote_keys) once per issuer
//! (or [`trust`](crate::JwtAuthenticatorBuilder::trust) an
//! [`Issuer::remote`](crate::Issuer::remote) with rules of its own). A token's `iss`
//! is read from its (not yet verified) payload only to pick that issuer's keys among
//! the configured ones; the signature and every claim are then checked as usual. A token naming any other issuer is refused (`wrong_issuer`)
//! without fetching anything: only configured issuers' keys are ever fetched.
//!
//! # HTTP
//!
//! `reqwest` with rustls over `aws-lc-rs` (already compiled for signatures here), so
//! no OpenSSL; server certificates are checked against the platform's roots through
//! `rustls-platform-verifier` (the system store on Linux, read at run time). `reqwest`
//! was chosen over a hand-assembled hyper client because it brings connect and total
//! timeouts, redirect policies and connection pooling in a maintained package, for a
//! handful of requests an hour.
//!
//! - Connect timeout 5 s and total timeout 10 s by default.
//! - Documents over 256 KiB are refused: at once when `Content-Length` says so, or as
//!   soon as the bytes read pass the cap.
//! - Redirects are followed (up to 5) only within the origin: same scheme, host *and*
//!   port. `127.0.0.1` to `localhost`, or to another port, is another origin.
//! - `https` only, except to loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) or
//!   with [`danger_allow_http`](RemoteKeysBuilder::danger_allow_http). No proxy is
//!   taken from the environment.
//!
//! # Caching
//!
//! - Lifetime from `Cache-Control: max-age`, clamped to 1 min – 24 h (default 15 min
//!   without one); [`cache_ttl`](RemoteKeysBuilder::cache_ttl) changes these.
//! - The background task refreshes at three quarters of the lifetime.
//! - When a refresh fails, the last good set is served on (each failure logs a
//!   `WARN`), retried every 30 s, until 24 h past its expiry
//!   ([`stale_if_error`](RemoteKeysBuilder::stale_if_error)); then tokens get 503.
//! - A token naming a `kid` the set lacks triggers a fetch at most once per cooldown
//!   (30 s): tokens arriving while it runs wait for that same fetch (the request's
//!   future waits; no thread blocks) and are then verified or refused; tokens
//!   arriving later in the cooldown are refused at once (`unknown_kid`).
//! - The verified-token cache drops its entries when a key that was served leaves
//!   the set or changes; a refresh that only adds keys, or changes nothing, keeps
//!   them. A changed set emits [`AuthEvent::KeysRotated`](portcullis_core::AuthEvent).
//!
//! # Start-up
//!
//! [`RemoteKeysBuilder::start`] (and [`RemoteKeys::discover`],
//! [`RemoteKeys::from_jwks_url`]) wait for the first fetch and return a typed
//! [`JwksError`] when the provider is unreachable or its documents are wrong; nothing
//! is left running then. An issuer without a discovery document fails with
//! [`JwksErrorKind::NoDiscoveryDocument`]: give its JWKS URL instead
//! ([`RemoteKeys::from_jwks_url`]). [`RemoteKeysBuilder::start_lazy`] returns at
//! once; tokens get `503 Service Unavailable` until the keys arrive, and each failed
//! fetch logs a warning saying so.
//!
//! # Which keys are used
//!
//! See the rules of the JWK Set reader: keys with `use` other than `sig`, `key_ops`
//! without `verify`, unknown `kty`, unsupported `alg`, symmetric (`oct`) keys,
//! private members, weak or ROCA-affected RSA keys, EC points off their curve and
//! keys sharing a `kid` are skipped with a warning. Without `alg`, EC keys take the
//! algorithm of their curve (`P-256` → ES256, `P-384` → ES384, `P-521` → ES512), Ed25519 keys EdDSA,
//! and RSA keys RS256 (the algorithm OpenID Connect providers must support; a
//! PS256 token is then refused, never accepted under a guess).

mod builder;
mod discovery;
mod error;
pub(crate) mod http;
mod ingest;
mod source;

#[cfg(test)]
mod wycheproof;

pub use self::{
    builder::{
        DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_MAX_TTL, DEFAULT_MIN_TTL,
        DEFAULT_RETRY_INTERVAL, DEFAULT_STALE_IF_ERROR, DEFAULT_TIMEOUT, DEFAULT_TTL,
        DEFAULT_UNKNOWN_KID_COOLDOWN, RemoteKeysBuilder,
    },
    error::{JwksError, JwksErrorKind},
    source::RemoteKeys,
};

use std::{future::Future, pin::Pin};

use portcullis_core::AuthError;

use crate::{compact::Segments, key::Algorithm, keyset::TypRule};

/// A fetch to wait for before verifying once more.
pub(crate) type Demand = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Verifies a split token with `source`'s keys. When the `kid` is unknown (or no
/// keys are loaded yet) and `demand` is given, stores in it the fetch to wait for,
/// if the cooldown allows one. Returns whether the key was a shared secret.
pub(crate) fn verify(
    source: &RemoteKeys,
    segments: &Segments<'_>,
    typ: &TypRule,
    algorithms: Option<&[Algorithm]>,
    demand: Option<&mut Option<Demand>>,
) -> Result<bool, AuthError> {
    let result = match source.current_set() {
        Some(set) => set.verify_segments(segments, typ, algorithms),
        None => Err(AuthError::unavailable("jwks_unavailable")
            .with_description("the issuer's keys are not available yet")),
    };
    if let (Err(e), Some(demand)) = (&result, demand)
        && matches!(e.reason(), "unknown_kid" | "jwks_unavailable")
        && let Some(fetch) = source.demand()
    {
        *demand = Some(Box::pin(fetch));
    }
    result
}
