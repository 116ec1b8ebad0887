//! The request path with DPoP on: `Authorization: DPoP` with its proof, and the
//! bearer path that refuses bound tokens. The rules are in [`crate::dpop`].

use std::sync::Arc;

use http::{HeaderValue, header, request::Parts};
use portcullis_core::{AuthError, AuthResult, MaybeReady, Principal, internal::unix_secs};
use serde::de::DeserializeOwned;

use super::JwtAuthenticator;
use crate::dpop::{
    Dpop,
    proof::{self, Proof},
    url,
};

/// The request header carrying the proof.
const DPOP: &str = "dpop";

impl<C> JwtAuthenticator<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    /// Authenticates a request when DPoP is on.
    pub(super) fn authenticate_dpop(&self, dpop: &Dpop, parts: &Parts) -> MaybeReady<AuthResult> {
        let token = match dpop_token(parts) {
            Ok(Some(token)) => token,
            Ok(None) => return self.bearer_under_dpop(dpop, parts),
            Err(e) => return MaybeReady::Ready(Err(e)),
        };
        let challenge = Arc::clone(&dpop.algs);
        let refuse = move |e: AuthError| e.with_dpop_challenge(Arc::clone(&challenge));
        let proof = match self.check_proof(dpop, parts, token) {
            Ok(proof) => proof,
            Err(e) => return MaybeReady::Ready(Err(refuse(e))),
        };
        let verified = self.verify(token);
        let replay = Arc::clone(&dpop.replay);
        let now = unix_secs(self.inner.clock.now());
        then(verified, move |result| {
            let bound = match result {
                Ok(Some(principal)) => principal,
                Ok(None) => return MaybeReady::Ready(Err(refuse(crate::keyset::malformed()))),
                Err(e) => return MaybeReady::Ready(Err(refuse(e))),
            };
            match bound.dpop_thumbprint() {
                Some(jkt) if jkt == proof.jkt => {}
                Some(_) => return MaybeReady::Ready(Err(refuse(mismatch()))),
                None if names_a_key(&bound) => {
                    return MaybeReady::Ready(Err(refuse(mismatch())));
                }
                None => {
                    return MaybeReady::Ready(Err(refuse(
                        AuthError::invalid_token("token_not_dpop_bound")
                            .with_description("the token is not bound to a DPoP key"),
                    )));
                }
            }
            then(
                replay.first_use(&proof.id, proof.until, now),
                move |fresh| {
                    MaybeReady::Ready(match fresh {
                        Ok(true) => Ok(Some(bound)),
                        Ok(false) => Err(refuse(
                            AuthError::invalid_dpop_proof("dpop_proof_replayed")
                                .with_description("the DPoP proof was used before"),
                        )),
                        Err(e) => Err(refuse(e)),
                    })
                },
            )
        })
    }

    fn check_proof(&self, dpop: &Dpop, parts: &Parts, token: &str) -> Result<Proof, AuthError> {
        if token.len() > self.inner.max_token_len {
            return Err(AuthError::invalid_token("token_too_large")
                .with_description("the token is too large"));
        }
        let mut proofs = parts.headers.get_all(DPOP).iter();
        let proof = match (proofs.next(), proofs.next()) {
            (None, _) => return Err(AuthError::invalid_dpop_proof("missing_dpop_proof")),
            (Some(_), Some(_)) => {
                return Err(AuthError::invalid_dpop_proof("multiple_dpop_proofs"));
            }
            (Some(one), None) => one
                .to_str()
                .map_err(|_| AuthError::invalid_dpop_proof("malformed_dpop_proof"))?,
        };
        let url = url::request_url(parts, dpop.public_url.as_ref())
            .ok_or_else(|| AuthError::invalid_request("no_request_host"))?;
        let request = proof::Request {
            method: &parts.method,
            url: &url,
            token: Some(token),
            now: unix_secs(self.inner.clock.now()),
        };
        proof::check(dpop, proof, &request)
    }

    /// A request without the DPoP scheme: verified as a bearer token, then refused
    /// when the token is DPoP-bound (a downgrade), or unbound where DPoP is required.
    fn bearer_under_dpop(&self, dpop: &Dpop, parts: &Parts) -> MaybeReady<AuthResult> {
        let verified = match self.cached(parts) {
            Ok(principal) => self.check_revocation(principal),
            Err(missed) => match self.inner.sources.find(parts) {
                Ok(Some(token)) => self.verify_after(token, missed),
                // No credential: the refusal names DPoP's algorithms beside `Bearer`.
                Ok(None) => {
                    return MaybeReady::Ready(Err(AuthError::missing_credentials()
                        .with_dpop_challenge(Arc::clone(&dpop.algs))));
                }
                Err(e) => MaybeReady::Ready(Err(e)),
            },
        };
        let (algs, require) = (Arc::clone(&dpop.algs), dpop.require);
        then(verified, move |result| {
            MaybeReady::Ready(match result {
                Ok(Some(principal)) if names_a_key(&principal) => {
                    Err(AuthError::invalid_token("dpop_bound_token_as_bearer")
                        .with_description("a DPoP-bound token must be sent with a DPoP proof")
                        .with_dpop_challenge(algs))
                }
                Ok(Some(_)) if require => Err(AuthError::invalid_token("dpop_required")
                    .with_description("the token must be DPoP-bound")
                    .with_dpop_challenge(algs)),
                other => other,
            })
        })
    }
}

/// Whether the token claims a DPoP key (`cnf.jkt`), well-formed or not: one that
/// names a key in a form no proof can match is bound all the same, never a bearer
/// token.
fn names_a_key(principal: &Principal) -> bool {
    principal
        .raw_claims()
        .and_then(|c| c.get("cnf"))
        .is_some_and(|cnf| cnf.get("jkt").is_some())
}

fn mismatch() -> AuthError {
    AuthError::invalid_dpop_proof("dpop_jkt_mismatch")
        .with_description("the DPoP proof is not signed by the token's key")
}

/// The token of the request's one `Authorization: DPoP <token>` header, if it uses
/// that scheme (case-insensitive).
fn dpop_token(parts: &Parts) -> Result<Option<&str>, AuthError> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let (scheme, token) = match split_scheme(value) {
        Some(split) => split,
        None => return Ok(None),
    };
    if !scheme.eq_ignore_ascii_case("dpop") {
        return Ok(None);
    }
    if values.next().is_some() {
        return Err(AuthError::invalid_request("duplicate_authorization_header"));
    }
    let token = token.trim_matches(' ');
    if token.is_empty() || token.contains(' ') {
        return Err(AuthError::invalid_request("malformed_dpop_token"));
    }
    Ok(Some(token))
}

fn split_scheme(value: &HeaderValue) -> Option<(&str, &str)> {
    value.to_str().ok()?.split_once(' ')
}

/// `next` applied to the answer, now or when it is ready.
fn then<T: Send + 'static>(
    answer: MaybeReady<T>,
    next: impl FnOnce(T) -> MaybeReady<AuthResult> + Send + 'static,
) -> MaybeReady<AuthResult> {
    match answer {
        MaybeReady::Ready(value) => next(value),
        MaybeReady::Pending(future) => MaybeReady::pending(async move { next(future.await).await }),
    }
}
