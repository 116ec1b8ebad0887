//! Bearer-JWT verification for tower services: the JWT layer of Portcullis.
//!
//! A [`JwtAuthenticator`] verifies `Authorization: Bearer` JWTs against keys you
//! configure and hands each request a [`Principal`](portcullis_core::Principal) and
//! typed [`Claims<C>`](portcullis_core::Claims); core's
//! [`AuthLayer`](portcullis_core::AuthLayer) runs it on any tower service (axum,
//! tonic, hyper) and answers refusals per RFC 6750 (or with a gRPC status).
//!
//! ```
//! use axum::{body::Body, routing::get, Router};
//! use http::{Request, StatusCode};
//! use jsonwebtoken::{encode, EncodingKey, Header};
//! use portcullis_core::{AuthLayer, Principal};
//! use portcullis_jwt::{Algorithm, JwtAuthenticator, Key};
//! use serde_json::json;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = b"an-example-secret-of-32-bytes-!!";
//! let jwt = JwtAuthenticator::builder()
//!     .key(Key::hmac(Algorithm::HS256, secret)?)
//!     .issuer("https://issuer.example")
//!     .audience("my-api")
//!     .build()?;
//!
//! let app = Router::new()
//!     .route("/me", get(|p: Principal| async move { p.subject().to_owned() }))
//!     .route_layer(AuthLayer::new(jwt));
//!
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
//! let claims = json!({
//!     "iss": "https://issuer.example", "aud": "my-api", "sub": "alice",
//!     "iat": now, "exp": now + 300,
//! });
//! let token = encode(&Header::new(jsonwebtoken::Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))?;
//!
//! let ok = Request::get("/me").header("authorization", format!("Bearer {token}")).body(Body::empty())?;
//! assert_eq!(app.clone().oneshot(ok).await?.status(), StatusCode::OK);
//!
//! let forged = format!("{}x", &token[..token.len() - 1]);
//! let bad = Request::get("/me").header("authorization", format!("Bearer {forged}")).body(Body::empty())?;
//! let response = app.oneshot(bad).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert!(response.headers()["www-authenticate"].to_str()?.contains(r#"error="invalid_token""#));
//! # Ok(())
//! # }
//! ```
//!
//! # What is checked
//!
//! In this order, each failure a `401 invalid_token` with a precise
//! [`reason`](portcullis_core::AuthError::reason) for logs and events:
//!
//! 1. Length: over [`DEFAULT_MAX_TOKEN_LEN`] (8 KiB, configurable) is refused before
//!    any decoding (`token_too_large`).
//! 2. Shape: exactly three segments of strict base64url; a header that is a JSON
//!    object without duplicate members at any depth (`malformed_token`,
//!    `duplicate_header_member`).
//! 3. Header: `alg` `none` in any spelling (`alg_none`); any `crit`, empty or not,
//!    since no extension is supported (`crit_unsupported`); `b64`
//!    (`b64_unsupported`); `typ` (`typ_mismatch`): absent, `JWT` or `at+jwt` by
//!    default, only `at+jwt` with
//!    [`JwtAuthenticatorBuilder::require_access_token_typ`]. `jwk`, `jku`, `x5u`,
//!    `x5c` and `x5t` are ignored: keys come from configuration only, nothing is
//!    ever fetched.
//! 4. Issuer: the claims are parsed once (into a duplicate-refusing JSON map,
//!    `duplicate_claim`) and `iss` picks the trusted [`Issuer`] whose keys verify
//!    the token (`missing_iss`, `invalid_iss`, `wrong_issuer`): a key of one issuer
//!    never verifies a token of another, and nothing in the claims is trusted
//!    before that issuer's key has verified the signature.
//! 5. Key: chosen by `kid` in that issuer's [`KeySet`] (`unknown_kid`,
//!    `missing_kid`, `kid_too_long`); its pinned algorithm must equal `alg`
//!    (`alg_mismatch`), so an HMAC secret never verifies an RSA token nor the
//!    reverse, and be one of the issuer's [`algorithms`](Issuer::algorithms) when
//!    set (`alg_not_allowed`).
//! 6. Signature (`bad_signature`). Shared secrets are verified by `jsonwebtoken`'s
//!    verifier ([`jsonwebtoken::crypto::JwtVerifier`]) from its aws-lc-rs provider,
//!    built once per thread and key. Public keys are parsed by aws-lc-rs once, when
//!    the [`Key`] is built, and verify with the same aws-lc-rs algorithms that
//!    provider uses (jsonwebtoken's own verifiers would parse the key again for
//!    every signature; ES512, which jsonwebtoken lacks, is covered too). A key set remembers the headers of tokens that verified, byte
//!    for byte: decoding and parsing a header and choosing its key run once per
//!    distinct header; the `typ` rule, the signature and the claims are checked for
//!    every token.
//! 7. Claims, under the issuer's rules: `exp` required and a NumericDate in the
//!    64-bit range (`missing_exp`, `invalid_exp`, `token_expired`); `nbf` when
//!    present (`token_not_yet_valid`); `iat` not in the future (`iat_in_future`);
//!    all within the leeway (60 s by default) of an injectable [`Clock`]; `aud`
//!    required, every member a string (`invalid_aud`), and containing a configured
//!    audience (`missing_aud`, `wrong_audience`); `sub`, `jti`, `client_id`, `azp`
//!    strings when present (`invalid_sub`, …); the mapped role and scope claims of
//!    their [shape](portcullis_core::ClaimMapping) (`malformed_claim`); a subject
//!    (`missing_subject`); the claims fit `C` (`invalid_claims`).
//! 8. Revocation, when configured: on every verification and every cache hit,
//!    keyed by (issuer, subject) and (issuer, `jti`).
//!
//! # The verified-token cache
//!
//! On by default (10,000 tokens): a token seen before costs a keyed hash, a read lock
//! and a constant-time comparison with the stored token instead of a signature check
//! and a JSON parse. The cache is a fixed table of two-way sets, like a CPU cache: a
//! verified token takes an empty place in its set at once, but displaces an entry
//! only when it is seen a second time, so a stream of one-off tokens costs next to
//! nothing (no allocation) and pushes out no token that repeats; an insert replaces at
//! most one entry, in constant time. Memory is bounded: about 68 bytes per unit of
//! capacity, allocated when the authenticator is built (680 KB for 10,000), plus each
//! held token's bytes (about 4 MB for 10,000 tokens of 400 bytes). Those are live
//! bearer tokens held in memory until they expire (15 min at most by default), as
//! in-flight requests and HMAC secrets are; where process memory may be read by others,
//! [`JwtAuthenticatorBuilder::without_cache`] turns it off. Entries die at the token's
//! `exp` (and after [`DEFAULT_CACHE_MAX_TTL`] at most), when the keys change
//! ([`JwtAuthenticator::set_keys`]) and when replaced; revocation is still consulted on
//! each hit.
//!
//! # Not ours
//!
//! A bearer value with no `.` is not a JWS: the authenticator declines it
//! (`Ok(None)`) so another authenticator of a tuple (API keys) can claim it.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod authenticator;
mod cache;
mod clock;
mod compact;
pub mod dpop;
mod error;
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub mod introspection;
mod issuer;
mod json;
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub mod jwks;
mod key;
mod keyset;

pub use crate::{
    authenticator::{
        DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_MAX_TTL, DEFAULT_LEEWAY, DefaultClaims,
        JwtAuthenticator, JwtAuthenticatorBuilder,
    },
    clock::{Clock, ManualClock, SystemClock},
    error::{ConfigError, ConfigErrorKind, KeyError, KeyErrorKind},
    issuer::Issuer,
    key::{Algorithm, Key, MAX_KID_LEN, MIN_RSA_BITS},
    keyset::{DEFAULT_MAX_TOKEN_LEN, KeySet},
};
