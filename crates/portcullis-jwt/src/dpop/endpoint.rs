//! Proofs at a token endpoint: the key a login or refresh binds its tokens to.

use http::request::Parts;
use portcullis_core::{AuthError, MaybeReady, clock::Clock as _, internal::unix_secs};

use super::{Dpop, proof, url};
use crate::clock::SystemClock;

impl Dpop {
    /// Checks the `DPoP` proof of a request that carries no access token, as a token
    /// endpoint receives them (`POST /auth/login`, `/auth/refresh`; [RFC 9449 §5]),
    /// and answers the thumbprint of its key, to bind the tokens issued to
    /// (`Grant::dpop_jkt` in `portcullis-tokens`).
    ///
    /// `Ok(None)` when the request has no `DPoP` header. The proof is checked as for
    /// a resource request (see [the module docs](crate::dpop)), without `ath`, against
    /// the system clock, and recorded in the replay cache.
    ///
    /// # Errors
    ///
    /// `invalid_dpop_proof` with a `DPoP` challenge for a proof that fails a check,
    /// or the replay cache's error.
    ///
    /// [RFC 9449 §5]: https://www.rfc-editor.org/rfc/rfc9449#section-5
    pub fn verify_proof(&self, parts: &Parts) -> MaybeReady<Result<Option<String>, AuthError>> {
        let algs = self.algs.clone();
        let refuse = move |e: AuthError| e.with_dpop_challenge(algs.clone());
        let mut proofs = parts.headers.get_all("dpop").iter();
        let value = match (proofs.next(), proofs.next()) {
            (None, _) => return MaybeReady::Ready(Ok(None)),
            (Some(_), Some(_)) => {
                let e = AuthError::invalid_dpop_proof("multiple_dpop_proofs");
                return MaybeReady::Ready(Err(refuse(e)));
            }
            (Some(one), None) => one,
        };
        let now = unix_secs(SystemClock.now());
        let checked = value
            .to_str()
            .map_err(|_| AuthError::invalid_dpop_proof("malformed_dpop_proof"))
            .and_then(|value| {
                let url = url::request_url(parts, self.public_url.as_ref())
                    .ok_or_else(|| AuthError::invalid_request("no_request_host"))?;
                let request = proof::Request {
                    method: &parts.method,
                    url: &url,
                    token: None,
                    now,
                };
                proof::check(self, value, &request)
            });
        let proof = match checked {
            Ok(proof) => proof,
            Err(e) => return MaybeReady::Ready(Err(refuse(e))),
        };
        let replay = self.replay.first_use(&proof.id, proof.until, now);
        let decide = move |fresh: Result<bool, AuthError>| match fresh {
            Ok(true) => Ok(Some(proof.jkt)),
            Ok(false) => Err(refuse(
                AuthError::invalid_dpop_proof("dpop_proof_replayed")
                    .with_description("the DPoP proof was used before"),
            )),
            Err(e) => Err(refuse(e)),
        };
        match replay {
            MaybeReady::Ready(fresh) => MaybeReady::Ready(decide(fresh)),
            MaybeReady::Pending(fresh) => MaybeReady::pending(async move { decide(fresh.await) }),
        }
    }
}
