//! [`JwtAuthenticatorBuilder`]: the authenticator's configuration.

use std::{
    fmt,
    marker::PhantomData,
    num::NonZeroUsize,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use portcullis_core::{ClaimMapping, Revocation, credentials::TokenSources};
use serde::de::DeserializeOwned;

use super::{
    DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_MAX_TTL, DEFAULT_LEEWAY, DefaultClaims, Inner,
    JwtAuthenticator,
};
use crate::{
    cache::TokenCache,
    clock::{Clock, SystemClock},
    dpop::Dpop,
    error::{ConfigError, ConfigErrorKind},
    issuer::{Defaults, Issuer, Issuers},
    key::Key,
    keyset::{DEFAULT_MAX_TOKEN_LEN, TypRule},
};

/// Configures a [`JwtAuthenticator`]. Obtained from [`JwtAuthenticator::builder`].
#[must_use]
pub struct JwtAuthenticatorBuilder<C = DefaultClaims> {
    keys: Vec<Key>,
    issuers: Vec<Box<str>>,
    audiences: Vec<Box<str>>,
    any_audience: bool,
    leeway: Duration,
    clock: Arc<dyn Clock>,
    max_token_len: NonZeroUsize,
    typ: TypRule,
    mapping: ClaimMapping,
    sources: TokenSources,
    revocation: Option<Arc<dyn Revocation>>,
    cache_capacity: Option<NonZeroUsize>,
    cache_symmetric: bool,
    cache_max_ttl: Duration,
    trusted: Vec<Issuer>,
    dpop: Option<Dpop>,
    _claims: PhantomData<fn() -> C>,
}

impl<C> fmt::Debug for JwtAuthenticatorBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthenticatorBuilder")
            .field("keys", &self.keys)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("leeway", &self.leeway)
            .field("max_token_len", &self.max_token_len)
            .field("cache_capacity", &self.cache_capacity)
            .field("trusted", &self.trusted)
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

impl JwtAuthenticatorBuilder {
    pub(super) fn new() -> Self {
        Self {
            keys: Vec::new(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            any_audience: false,
            leeway: DEFAULT_LEEWAY,
            clock: Arc::new(SystemClock),
            max_token_len: NonZeroUsize::new(DEFAULT_MAX_TOKEN_LEN).expect("non-zero"),
            typ: TypRule::Default,
            mapping: ClaimMapping::default(),
            sources: TokenSources::default(),
            revocation: None,
            cache_capacity: Some(DEFAULT_CACHE_CAPACITY),
            cache_symmetric: DEFAULT_CACHE_SYMMETRIC,
            cache_max_ttl: DEFAULT_CACHE_MAX_TTL,
            trusted: Vec::new(),
            dpop: None,
            _claims: PhantomData,
        }
    }
}

/// Whether tokens verified with a shared secret (HS*) are cached by default.
const DEFAULT_CACHE_SYMMETRIC: bool = true;

impl<C> JwtAuthenticatorBuilder<C> {
    /// Deserializes claims into `C2` (any `serde` type); handlers read them as
    /// [`Claims<C2>`](portcullis_core::Claims). A token whose claims do not fit is refused (`invalid_claims`).
    pub fn claims<C2>(self) -> JwtAuthenticatorBuilder<C2> {
        JwtAuthenticatorBuilder {
            keys: self.keys,
            issuers: self.issuers,
            audiences: self.audiences,
            any_audience: self.any_audience,
            leeway: self.leeway,
            clock: self.clock,
            max_token_len: self.max_token_len,
            typ: self.typ,
            mapping: self.mapping,
            sources: self.sources,
            revocation: self.revocation,
            cache_capacity: self.cache_capacity,
            cache_symmetric: self.cache_symmetric,
            cache_max_ttl: self.cache_max_ttl,
            trusted: self.trusted,
            dpop: self.dpop,
            _claims: PhantomData,
        }
    }

    /// Accepts DPoP-bound tokens with their proofs (`Authorization: DPoP`) and
    /// refuses bound tokens sent as `Bearer`, as [`Dpop`] configures; see
    /// [`crate::dpop`]. Off by default.
    pub fn dpop(mut self, dpop: Dpop) -> Self {
        self.dpop = Some(dpop);
        self
    }

    /// Trusts `keys`' issuer and verifies its tokens with those remote keys alone
    /// (feature `jwks`): [`trust`](Self::trust)`(`[`Issuer::remote`]`(keys))`, with
    /// this builder's rules. Call once per issuer; tokens are routed by their `iss`.
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn remote_keys(self, keys: crate::jwks::RemoteKeys) -> Self {
        self.trust(Issuer::remote(keys))
    }

    /// Trusts `issuer`: its tokens are verified with its keys alone, under its rules
    /// (the builder's audience, leeway, `typ` rule and claim mapping where it sets
    /// none). Call once per issuer. See [`Issuer`].
    pub fn trust(mut self, issuer: Issuer) -> Self {
        self.trusted.push(issuer);
        self
    }

    /// Adds a verification key of the issuer named by [`issuer`](Self::issuer): the
    /// short form for one issuer with static keys. With several issuers, give each
    /// its keys with [`trust`](Self::trust).
    pub fn key(mut self, key: Key) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds several verification keys.
    pub fn keys(mut self, keys: impl IntoIterator<Item = Key>) -> Self {
        self.keys.extend(keys);
        self
    }

    /// Names the issuer of the static [`key`](Self::key)s: `iss` must equal it
    /// exactly (a trailing slash makes another issuer). Several calls are allowed
    /// only without static keys of the builder's own (keys belong to one issuer:
    /// [`ConfigErrorKind::AmbiguousKeys`]); an issuer given with
    /// [`trust`](Self::trust) or [`remote_keys`](Self::remote_keys) needs no call.
    pub fn issuer(mut self, issuer: impl Into<Box<str>>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Adds an accepted audience: `aud` (a string or an array) must contain one.
    /// Required unless [`danger_accept_any_audience`](Self::danger_accept_any_audience).
    pub fn audience(mut self, audience: impl Into<Box<str>>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Skips the audience check: a token meant for any other service is accepted.
    ///
    /// # Security
    ///
    /// Only for issuers that mint tokens for this service alone. Otherwise a token
    /// issued to another API of the same issuer works here too
    /// ([RFC 8725 §3.9](https://www.rfc-editor.org/rfc/rfc8725#section-3.9)).
    pub fn danger_accept_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// The clock skew tolerated on `exp`, `nbf` and `iat` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The clock (default: the system's). Tests inject a fixed one.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The longest token accepted, checked before any decoding (default 8 KiB).
    pub fn max_token_len(mut self, max: NonZeroUsize) -> Self {
        self.max_token_len = max;
        self
    }

    /// Accept only access tokens in the sense of
    /// [RFC 9068 §2.1](https://www.rfc-editor.org/rfc/rfc9068#section-2.1): header
    /// `typ` must be `at+jwt` or `application/at+jwt`, so ID tokens, refresh tokens,
    /// logout tokens and untyped tokens of the same issuer are refused
    /// (`typ_mismatch`).
    ///
    /// Not the default, because many issuers send `typ: JWT` or no `typ` on access
    /// tokens. The default accepts a header without `typ` (RFC 7519 §5.1 makes it
    /// optional), `JWT` and `at+jwt`, and refuses a token explicitly typed as
    /// anything else (`dpop+jwt`, `logout+jwt`, `secevent+jwt`, …). Values are media
    /// types compared as RFC 7515 §4.1.9 says: case-insensitively, the `application/`
    /// prefix optional.
    pub fn require_access_token_typ(mut self) -> Self {
        self.typ = TypRule::OneOf(vec!["at+jwt".into()].into());
        self
    }

    /// Accept only tokens whose header `typ` is one of `types` (compared
    /// case-insensitively, `application/` prefix optional); a token without `typ` is
    /// refused.
    pub fn require_typ<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        self.typ = TypRule::OneOf(types.into_iter().map(Into::into).collect());
        self
    }

    /// Where roles and scopes are read from (default: [`ClaimMapping::default`]).
    pub fn claim_mapping(mut self, mapping: ClaimMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// Where tokens are found (default: the `Authorization: Bearer` header only).
    pub fn token_sources(mut self, sources: TokenSources) -> Self {
        self.sources = sources;
        self
    }

    /// Consults `revocation` after each successful verification and on every cache
    /// hit.
    pub fn revocation(mut self, revocation: Arc<dyn Revocation>) -> Self {
        self.revocation = Some(revocation);
        self
    }

    /// The verified-token cache's size (default 10,000 tokens). The table is
    /// allocated at build time, about 68 bytes per token of capacity; each entry held
    /// adds its token's bytes (the principal built from it is shared with requests).
    pub fn cache_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.cache_capacity = Some(capacity);
        self
    }

    /// Turns the verified-token cache off.
    pub fn without_cache(mut self) -> Self {
        self.cache_capacity = None;
        self
    }

    /// Whether HMAC-verified tokens are cached too (default: yes, since a hit is
    /// cheaper than an HS256 verification plus a claims parse).
    pub fn cache_symmetric(mut self, cache: bool) -> Self {
        self.cache_symmetric = cache;
        self
    }

    /// The longest a cache entry lives, whatever the token's `exp` (default 15 min).
    pub fn cache_max_ttl(mut self, ttl: Duration) -> Self {
        self.cache_max_ttl = ttl;
        self
    }

    /// Builds the authenticator.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::NoKeys`] (an issuer without keys),
    /// [`ConfigErrorKind::NoIssuer`], an empty issuer or audience
    /// ([`ConfigErrorKind::EmptyValue`]), no audience without
    /// [`danger_accept_any_audience`](Self::danger_accept_any_audience)
    /// ([`ConfigErrorKind::NoAudience`]), an issuer trusted twice
    /// ([`ConfigErrorKind::DuplicateIssuer`]), static keys with several
    /// [`issuer`](Self::issuer)s ([`ConfigErrorKind::AmbiguousKeys`]), or a key
    /// error (two keys sharing a `kid`).
    pub fn build(self) -> Result<JwtAuthenticator<C>, ConfigError>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        if self.audiences.iter().any(|v| v.is_empty()) {
            return Err(ConfigError::new(ConfigErrorKind::EmptyValue));
        }
        let mut specs = self.trusted;
        // The short form: `.issuer(..)` names the issuer of `.key(..)`s.
        let mut named: Vec<Box<str>> = self.issuers;
        named.retain(|id| !specs.iter().any(|s| *s.id == **id));
        named.dedup();
        match (named.len(), self.keys.is_empty()) {
            (0, true) => {}
            (0, false) => return Err(ConfigError::new(ConfigErrorKind::NoIssuer)),
            (1, _) => specs.push(Issuer::new(named.remove(0)).keys(self.keys)),
            (_, false) => return Err(ConfigError::new(ConfigErrorKind::AmbiguousKeys)),
            (_, true) => return Err(ConfigError::new(ConfigErrorKind::NoKeys)),
        }
        if specs.is_empty() {
            return Err(ConfigError::new(ConfigErrorKind::NoIssuer));
        }
        let mapping = Arc::new(self.mapping);
        let defaults = Defaults {
            audiences: &self.audiences,
            any_audience: self.any_audience,
            leeway: self.leeway,
            typ: &self.typ,
            mapping: &mapping,
        };
        let trusted = specs
            .into_iter()
            .map(|spec| spec.resolve(&defaults))
            .collect::<Result<Vec<_>, _>>()?;
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Ok(JwtAuthenticator {
            inner: Arc::new(Inner {
                issuers: Issuers::new(trusted)?,
                generation: AtomicU64::new(0),
                clock: self.clock,
                max_token_len: self.max_token_len.get(),
                sources: self.sources,
                revocation: self.revocation,
                cache: self.cache_capacity.map(TokenCache::new),
                cache_symmetric: self.cache_symmetric,
                cache_max_ttl: secs(self.cache_max_ttl),
                dpop: self.dpop,
                _claims: PhantomData,
            }),
        })
    }
}
