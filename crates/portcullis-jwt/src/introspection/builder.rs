//! [`IntrospectionAuthenticatorBuilder`]: the introspection authenticator's
//! configuration.

use std::{
    fmt,
    num::NonZeroUsize,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use portcullis_core::{ClaimMapping, Revocation, credentials::TokenSources};
use tokio::sync::Semaphore;

use super::{
    ClientAuth, Inner, IntrospectionAuthenticator, IntrospectionError, IntrospectionErrorKind,
    cache::Cache, response::Rules,
};
use crate::{
    DEFAULT_CACHE_CAPACITY, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN,
    clock::{Clock, SystemClock},
    jwks::http::{Fetcher, HttpOptions, check_url},
};

/// The default total timeout of one introspection call: 5 seconds.
pub const DEFAULT_INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The default cap on an introspection answer: 64 KiB.
pub const DEFAULT_INTROSPECTION_MAX_RESPONSE_SIZE: usize = 64 * 1024;

/// The default longest life of a cached active answer: 2 minutes (less when the
/// token's `exp` comes sooner).
pub const DEFAULT_INTROSPECTION_MAX_TTL: Duration = Duration::from_secs(120);

/// The default life of a cached refusal (inactive, expired, wrong audience…): 10 s.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// Configures an [`IntrospectionAuthenticator`]; from
/// [`IntrospectionAuthenticator::builder`].
#[must_use]
pub struct IntrospectionAuthenticatorBuilder {
    endpoint: String,
    auth: Option<ClientAuth>,
    issuers: Vec<Box<str>>,
    audiences: Vec<Box<str>>,
    any_audience: bool,
    leeway: Duration,
    clock: Arc<dyn Clock>,
    mapping: ClaimMapping,
    sources: TokenSources,
    revocation: Option<Arc<dyn Revocation>>,
    http: HttpOptions,
    max_token_len: NonZeroUsize,
    cache_capacity: NonZeroUsize,
    max_ttl: Duration,
    negative_ttl: Duration,
    max_calls: NonZeroUsize,
}

impl fmt::Debug for IntrospectionAuthenticatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionAuthenticatorBuilder")
            .field("endpoint", &self.endpoint)
            .field("client", &"<redacted>")
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl IntrospectionAuthenticatorBuilder {
    pub(super) fn new(endpoint: String) -> Self {
        Self {
            endpoint,
            auth: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            any_audience: false,
            leeway: DEFAULT_LEEWAY,
            clock: Arc::new(SystemClock),
            mapping: ClaimMapping::default(),
            sources: TokenSources::default(),
            revocation: None,
            http: HttpOptions {
                connect_timeout: Duration::from_secs(5),
                timeout: DEFAULT_INTROSPECTION_TIMEOUT,
                max_response_size: DEFAULT_INTROSPECTION_MAX_RESPONSE_SIZE,
                allow_http: false,
            },
            max_token_len: NonZeroUsize::new(DEFAULT_MAX_TOKEN_LEN).expect("non-zero"),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            max_ttl: DEFAULT_INTROSPECTION_MAX_TTL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            max_calls: NonZeroUsize::new(64).expect("non-zero"),
        }
    }

    /// Authenticates to the endpoint with HTTP Basic (`client_secret_basic`).
    pub fn client_secret_basic(mut self, id: &str, secret: &str) -> Self {
        self.auth = Some(ClientAuth::basic(id, secret));
        self
    }

    /// Authenticates to the endpoint with `client_id` and `client_secret` in the
    /// form (`client_secret_post`).
    pub fn client_secret_post(mut self, id: &str, secret: &str) -> Self {
        self.auth = Some(ClientAuth::Post {
            id: id.to_owned(),
            secret: secret.to_owned(),
        });
        self
    }

    /// Adds a trusted issuer: an answer's `iss`, when present, must be one. The
    /// first is the endpoint's own, assumed for answers without `iss`. Required.
    pub fn issuer(mut self, issuer: impl Into<Box<str>>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Adds an accepted audience: the answer's `aud` must contain one. Required
    /// unless [`danger_accept_any_audience`](Self::danger_accept_any_audience).
    pub fn audience(mut self, audience: impl Into<Box<str>>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Skips the audience check.
    ///
    /// # Security
    ///
    /// Only when the authorization server issues tokens for this service alone.
    pub fn danger_accept_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// The clock skew tolerated on `exp` and `nbf` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The clock (default: the system's).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Where roles and scopes are read in the answer (default:
    /// [`ClaimMapping::default`], which reads `scope`).
    pub fn claim_mapping(mut self, mapping: ClaimMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// Where tokens are found (default: the `Authorization: Bearer` header only).
    pub fn token_sources(mut self, sources: TokenSources) -> Self {
        self.sources = sources;
        self
    }

    /// Consults `revocation` on every answer, cached or fresh.
    pub fn revocation(mut self, revocation: Arc<dyn Revocation>) -> Self {
        self.revocation = Some(revocation);
        self
    }

    /// The total timeout of one call (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.http.timeout = timeout;
        self
    }

    /// The connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.http.connect_timeout = timeout;
        self
    }

    /// The largest answer read (default 64 KiB).
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.http.max_response_size = bytes;
        self
    }

    /// The longest token sent to the endpoint (default 8 KiB); longer ones are
    /// refused at once.
    pub fn max_token_len(mut self, max: NonZeroUsize) -> Self {
        self.max_token_len = max;
        self
    }

    /// How many answers are cached at most (default 10,000).
    pub fn cache_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// The longest an active answer is cached (default 2 min): a token revoked at
    /// the authorization server may work here that long.
    pub fn cache_max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// How long a refusal is cached (default 10 s).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// How many calls may be in flight at once (default 64); more wait, up to the
    /// timeout.
    pub fn max_concurrent_calls(mut self, max: NonZeroUsize) -> Self {
        self.max_calls = max;
        self
    }

    /// Allows plain `http` to an endpoint that is not on loopback.
    ///
    /// # Security
    ///
    /// Tokens and client credentials then cross the network in clear text.
    pub fn danger_allow_http(mut self) -> Self {
        self.http.allow_http = true;
        self
    }

    /// Builds the authenticator. Call within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`IntrospectionErrorKind::Config`] without client credentials, issuer or
    /// audience; [`IntrospectionErrorKind::InvalidUrl`] or
    /// [`IntrospectionErrorKind::InsecureUrl`] for the endpoint.
    pub fn build(self) -> Result<IntrospectionAuthenticator, IntrospectionError> {
        let config = |detail| IntrospectionError::new(IntrospectionErrorKind::Config, detail);
        let auth = self.auth.ok_or_else(|| config("no client credentials"))?;
        if self.issuers.is_empty() || self.issuers.iter().any(|i| i.is_empty()) {
            return Err(config("no issuer"));
        }
        if self.audiences.is_empty() && !self.any_audience {
            return Err(config("no audience"));
        }
        let endpoint = check_url(&self.endpoint, self.http.allow_http)?;
        let fetcher = Fetcher::new(&self.http)?;
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Ok(IntrospectionAuthenticator {
            inner: Arc::new(Inner {
                endpoint,
                fetcher,
                auth,
                rules: Rules {
                    issuers: self.issuers.into(),
                    audiences: (!self.audiences.is_empty()).then(|| self.audiences.into()),
                    leeway: secs(self.leeway),
                    mapping: Arc::new(self.mapping),
                },
                cache: Cache::new(self.cache_capacity.get()),
                clock: self.clock,
                max_token_len: self.max_token_len.get(),
                max_ttl: secs(self.max_ttl),
                negative_ttl: secs(self.negative_ttl),
                timeout: self.http.timeout,
                sources: self.sources,
                revocation: self.revocation,
                calls: Semaphore::new(self.max_calls.get()),
                called: AtomicU64::new(0),
            }),
        })
    }
}
