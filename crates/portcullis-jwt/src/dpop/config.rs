//! [`Dpop`]: how proofs are checked.

use std::{fmt, sync::Arc, time::Duration};

use super::{
    nonce::Nonces,
    replay::{MemoryReplayCache, ReplayCache},
    url::PublicUrl,
};
use crate::{
    error::{ConfigError, ConfigErrorKind},
    key::Algorithm,
};

/// How long after its `iat` a proof is accepted by default: 60 seconds.
pub const DEFAULT_PROOF_MAX_AGE: Duration = Duration::from_secs(60);

/// How far a proof's `iat` may lie in the future by default (clock skew): 5 seconds.
pub const DEFAULT_PROOF_LEEWAY: Duration = Duration::from_secs(5);

/// The proof algorithms accepted by default: ECDSA, EdDSA, RSA-PSS and RSA PKCS #1.
const DEFAULT_ALGORITHMS: [Algorithm; 10] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
];

/// DPoP ([RFC 9449](https://www.rfc-editor.org/rfc/rfc9449)) for a
/// [`JwtAuthenticator`](crate::JwtAuthenticator): accepts `Authorization: DPoP`
/// requests with their proofs, and refuses DPoP-bound tokens sent as `Bearer`. Given
/// to [`JwtAuthenticatorBuilder::dpop`](crate::JwtAuthenticatorBuilder::dpop); see the
/// [module docs](crate::dpop).
///
/// ```
/// use portcullis_jwt::dpop::Dpop;
///
/// let dpop = Dpop::new().public_url("https://api.example.com/v1")?.require_dpop();
/// # Ok::<(), portcullis_jwt::ConfigError>(())
/// ```
#[must_use]
#[derive(Clone)]
pub struct Dpop {
    pub(crate) algorithms: Vec<Algorithm>,
    /// The `algs` attribute of challenges: the algorithms, space-separated.
    pub(crate) algs: Arc<str>,
    pub(crate) public_url: Option<PublicUrl>,
    pub(crate) max_age: i64,
    pub(crate) leeway: i64,
    pub(crate) require: bool,
    pub(crate) replay: Arc<dyn ReplayCache>,
    pub(crate) nonces: Option<Nonces>,
}

impl Dpop {
    /// Proofs signed with ECDSA, EdDSA or RSA, at most [`DEFAULT_PROOF_MAX_AGE`] old;
    /// the request URL from the request itself; replays refused by a
    /// [`MemoryReplayCache`]; unbound bearer tokens still accepted.
    pub fn new() -> Self {
        let algorithms = DEFAULT_ALGORITHMS.to_vec();
        Self {
            algs: algs(&algorithms),
            algorithms,
            public_url: None,
            max_age: secs(DEFAULT_PROOF_MAX_AGE),
            leeway: secs(DEFAULT_PROOF_LEEWAY),
            require: false,
            replay: Arc::new(MemoryReplayCache::default()),
            nonces: None,
        }
    }

    /// The algorithms proofs may be signed with; announced in challenges as `algs`.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::DpopAlgorithm`] for an empty list or an HMAC algorithm: a
    /// proof is verified with the public key it carries.
    pub fn algorithms(
        mut self,
        algorithms: impl IntoIterator<Item = Algorithm>,
    ) -> Result<Self, ConfigError> {
        let mut list: Vec<Algorithm> = Vec::new();
        for alg in algorithms {
            if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                return Err(ConfigError::new(ConfigErrorKind::DpopAlgorithm));
            }
            if !list.contains(&alg) {
                list.push(alg);
            }
        }
        if list.is_empty() {
            return Err(ConfigError::new(ConfigErrorKind::DpopAlgorithm));
        }
        self.algs = algs(&list);
        self.algorithms = list;
        Ok(self)
    }

    /// The service's URL as clients see it (`https://api.example.com`, with a port
    /// and a path prefix when they apply: `https://example.com:8443/api`). A proof's
    /// `htu` must equal this URL followed by the request's path.
    ///
    /// Without it, the URL is taken from the request (its `Host` header, `http`):
    /// set it behind a proxy or TLS terminator, and wherever the `Host` header is not
    /// the name clients use.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::PublicUrl`] for anything but an absolute `http` or `https`
    /// URL without query, fragment and user information.
    pub fn public_url(mut self, url: &str) -> Result<Self, ConfigError> {
        self.public_url = Some(PublicUrl::parse(url)?);
        Ok(self)
    }

    /// How long after its `iat` a proof is accepted (default
    /// [`DEFAULT_PROOF_MAX_AGE`]); proofs are remembered this long (plus the leeway)
    /// to refuse replays.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = secs(max_age);
        self
    }

    /// How far in the future a proof's `iat` may be (default
    /// [`DEFAULT_PROOF_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = secs(leeway);
        self
    }

    /// Refuses tokens that are not DPoP-bound: every request must prove possession
    /// of a key. Without it, unbound tokens are accepted as bearer tokens.
    pub fn require_dpop(mut self) -> Self {
        self.require = true;
        self
    }

    /// Where used proofs are remembered: share one cache between every instance that
    /// answers under the same URL (`portcullis_redis::RedisReplayCache`).
    pub fn replay_cache(mut self, cache: impl ReplayCache) -> Self {
        self.replay = Arc::new(cache);
        self
    }
}

impl Dpop {
    /// Requires server-provided nonces in proofs ([RFC 9449 §9]): a proof without
    /// one, or with one older than one to two `period`s, is refused with `401
    /// use_dpop_nonce` and a fresh nonce in the `DPoP-Nonce` header, for the client
    /// to retry with. A nonce is its period's number and an HMAC of it under
    /// `secret`: instances sharing the secret issue and accept the same nonces, with
    /// no shared state, and a new nonce starts every `period`.
    ///
    /// Nonces limit how far ahead a client can make proofs; the replay cache still
    /// refuses a proof used twice.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::DpopNonceSecret`] for a secret under 32 bytes.
    ///
    /// [RFC 9449 §9]: https://www.rfc-editor.org/rfc/rfc9449#section-9
    pub fn nonces(
        mut self,
        secret: impl AsRef<[u8]>,
        period: Duration,
    ) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        if secret.len() < 32 {
            return Err(ConfigError::new(ConfigErrorKind::DpopNonceSecret));
        }
        self.nonces = Some(Nonces::new(secret, secs(period)));
        Ok(self)
    }
}

impl Default for Dpop {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("algorithms", &self.algorithms)
            .field("public_url", &self.public_url)
            .field("max_age", &self.max_age)
            .field("leeway", &self.leeway)
            .field("require", &self.require)
            .field("nonces", &self.nonces)
            .finish_non_exhaustive()
    }
}

fn algs(algorithms: &[Algorithm]) -> Arc<str> {
    let names: Vec<&str> = algorithms.iter().map(|a| a.name()).collect();
    names.join(" ").into()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}
