//! Sender-constrained tokens: DPoP ([RFC 9449]).
//!
//! A DPoP-bound access token names a key in its `cnf.jkt` claim; the client sends it as
//! `Authorization: DPoP <token>` together with a `DPoP` header: a fresh JWT signed by
//! that key over the request's method and URL. A stolen token is useless without the
//! key. Give a [`Dpop`] to [`JwtAuthenticatorBuilder::dpop`](crate::JwtAuthenticatorBuilder::dpop)
//! and the authenticator checks every proof as [RFC 9449 §4.3] lists, in this order,
//! each failure a `401` with `WWW-Authenticate: DPoP error="invalid_dpop_proof",
//! algs="…"` and a precise [`reason`](portcullis_core::AuthError::reason):
//!
//! 1. exactly one `DPoP` header (`missing_dpop_proof`, `multiple_dpop_proofs`), at
//!    most 8 KiB (`dpop_proof_too_large`), a compact JWS whose header and claims are
//!    JSON objects without duplicate members (`malformed_dpop_proof`);
//! 2. `typ` `dpop+jwt` (`dpop_typ_mismatch`); `alg` one of the configured asymmetric
//!    [`algorithms`](Dpop::algorithms), so never `none` nor HMAC
//!    (`dpop_alg_not_allowed`); no `crit` (`dpop_crit_unsupported`);
//! 3. `jwk`: a public key (`dpop_jwk_missing`, `dpop_jwk_private` for any private
//!    member, `dpop_jwk_invalid`) that verifies the signature (`dpop_bad_signature`);
//! 4. `jti` (`dpop_jti_missing`), `htm` equal to the method (`dpop_htm_mismatch`),
//!    `htu` equal to the request URL without query and fragment after RFC 3986
//!    normalization (`dpop_htu_mismatch`): the [public URL](Dpop::public_url) and
//!    the request path;
//! 5. with [nonces](Dpop::nonces) on, `nonce` one the server issued in the current
//!    period or the one before (`use_dpop_nonce`: `401` with a `DPoP-Nonce` header
//!    carrying a fresh one, [RFC 9449 §9]);
//! 6. `iat` no older than [`max_age`](Dpop::max_age) and not in the future beyond the
//!    [`leeway`](Dpop::leeway) (`dpop_iat_missing`, `dpop_proof_expired`,
//!    `dpop_iat_in_future`);
//! 7. `ath` equal to the base64url SHA-256 of the access token (`dpop_ath_missing`,
//!    `dpop_ath_mismatch`);
//! 8. the access token verified as any bearer token would be (`invalid_token`), and
//!    bound to the proof's key: its `cnf.jkt` equals the key's [RFC 7638] thumbprint
//!    (`token_not_dpop_bound` for an unbound token, `dpop_jkt_mismatch`);
//! 9. the proof never accepted before within its window: its key and `jti` go into a
//!    [`ReplayCache`] (`dpop_proof_replayed`), in memory by default
//!    ([`MemoryReplayCache`], bounded) or shared through Redis by several instances.
//!
//! A DPoP-bound token sent as `Bearer` is refused (`dpop_bound_token_as_bearer`,
//! [RFC 9449 §7.2]). Unbound bearer tokens are still accepted unless
//! [`require_dpop`](Dpop::require_dpop) is set (`dpop_required`).
//!
//! The verified-token cache holds tokens, never proofs: a cached token skips its
//! signature check, but every request's proof is checked in full, and a proof is
//! recorded as used before its request is admitted. The handler finds the binding on
//! the [`Principal`](portcullis_core::Principal):
//! [`dpop_thumbprint`](portcullis_core::Principal::dpop_thumbprint).
//!
//! ```
//! use axum::{body::Body, routing::get, Router};
//! use http::{Request, StatusCode};
//! use portcullis_core::AuthLayer;
//! use portcullis_jwt::{dpop::Dpop, Algorithm, JwtAuthenticator, Key};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let jwt = JwtAuthenticator::builder()
//!     .key(Key::hmac(Algorithm::HS256, b"an-example-secret-of-32-bytes-!!")?)
//!     .issuer("https://issuer.example")
//!     .audience("my-api")
//!     .dpop(Dpop::new().public_url("https://api.example.com")?)
//!     .build()?;
//! let app = Router::new().route("/me", get(|| async { "hi" })).route_layer(AuthLayer::new(jwt));
//!
//! let without_proof = Request::get("/me").header("authorization", "DPoP a.b.c").body(Body::empty())?;
//! let response = app.oneshot(without_proof).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! let challenge = response.headers()["www-authenticate"].to_str()?;
//! assert!(challenge.starts_with("DPoP ") && challenge.contains(r#"error="invalid_dpop_proof""#));
//! # Ok(())
//! # }
//! ```
//!
//! [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
//! [RFC 9449 §4.3]: https://www.rfc-editor.org/rfc/rfc9449#section-4.3
//! [RFC 9449 §7.2]: https://www.rfc-editor.org/rfc/rfc9449#section-7.2
//! [RFC 9449 §9]: https://www.rfc-editor.org/rfc/rfc9449#section-9
//! [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638

mod config;
mod endpoint;
mod nonce;
pub(crate) mod proof;
mod replay;
pub(crate) mod url;

pub use self::{
    config::{DEFAULT_PROOF_LEEWAY, DEFAULT_PROOF_MAX_AGE, Dpop},
    replay::{DEFAULT_REPLAY_CAPACITY, MemoryReplayCache, ReplayCache},
};
