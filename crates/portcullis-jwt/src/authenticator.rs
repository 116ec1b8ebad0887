//! [`JwtAuthenticator`]: bearer JWTs to [`Principal`]s, and its builder.

use std::{
    any::Any,
    fmt,
    marker::PhantomData,
    num::NonZeroUsize,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use http::request::Parts;
use portcullis_core::{
    AuthError, AuthLayer, Authentication, Authenticator, ClaimMapping, Claims, Principal,
    PrincipalKind, Revocation, RevocationCheck, RevocationQuery, credentials::TokenSources,
    numeric_date,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{
    cache::{Slot, TokenCache},
    clock::{Clock, DebugClock, SystemClock, unix_secs},
    error::{ConfigError, ConfigErrorKind},
    json::{self, JsonError},
    key::Key,
    keyset::{DEFAULT_MAX_TOKEN_LEN, KeySet, TypRule, VerifiedJws, malformed},
};

/// A fetch a token waits for before it is verified again (feature `jwks`).
#[cfg(feature = "jwks")]
type Demand = crate::jwks::Demand;
#[cfg(not(feature = "jwks"))]
type Demand = std::convert::Infallible;

/// The default claims type: the token's JSON object.
pub type DefaultClaims = Map<String, Value>;

/// An [`AuthLayer`] running a [`JwtAuthenticator`].
pub type JwtLayer<C = DefaultClaims> = AuthLayer<JwtAuthenticator<C>>;

/// The default clock leeway for `exp`, `nbf` and `iat`: 60 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The default verified-token cache size: 10,000 tokens.
pub const DEFAULT_CACHE_CAPACITY: NonZeroUsize = NonZeroUsize::new(10_000).unwrap();

/// The default cap on how long a cache entry lives: 15 minutes.
pub const DEFAULT_CACHE_MAX_TTL: Duration = Duration::from_secs(15 * 60);

struct Inner<C> {
    keys: RwLock<Arc<KeySet>>,
    generation: AtomicU64,
    issuers: Box<[Box<str>]>,
    audiences: Option<Box<[Box<str>]>>,
    leeway: i64,
    clock: Arc<dyn Clock>,
    max_token_len: usize,
    typ: TypRule,
    mapping: Arc<ClaimMapping>,
    sources: TokenSources,
    revocation: Option<Arc<dyn Revocation>>,
    cache: Option<TokenCache>,
    cache_symmetric: bool,
    cache_max_ttl: i64,
    #[cfg(feature = "jwks")]
    remote: Box<[crate::jwks::RemoteKeys]>,
    _claims: PhantomData<fn() -> C>,
}

/// Verifies bearer JWTs and turns them into [`Principal`]s carrying typed claims
/// [`Claims<C>`].
///
/// Built with [`JwtAuthenticator::builder`]; cheap to clone (shared state). See the
/// [crate docs](crate) for the checks it makes and an example.
///
/// # Credentials that are not ours
///
/// A bearer value without any `.` cannot be a JWS: `authenticate` returns `Ok(None)`
/// so another authenticator in a tuple (an API-key one, say) may claim it. Anything
/// with a dot that fails verification is refused (`401 invalid_token`).
///
/// # Subject and kind
///
/// The subject is `sub`. A token without `sub` takes its `client_id` (or `azp`) as
/// subject. The principal is [`PrincipalKind::Service`] when the token has no `sub`,
/// or when `sub` equals its `client_id`/`azp` (the client-credentials shape);
/// otherwise [`PrincipalKind::User`]. A token with none of the three is refused
/// (`missing_subject`).
pub struct JwtAuthenticator<C = DefaultClaims> {
    inner: Arc<Inner<C>>,
}

impl<C> Clone for JwtAuthenticator<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> fmt::Debug for JwtAuthenticator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let mut f = f.debug_struct("JwtAuthenticator");
        f.field("keys", &*i.keys.read().unwrap_or_else(|e| e.into_inner()))
            .field("issuers", &i.issuers)
            .field("audiences", &i.audiences)
            .field("leeway_secs", &i.leeway)
            .field("clock", &DebugClock)
            .field("max_token_len", &i.max_token_len)
            .field("typ", &i.typ)
            .field("mapping", &i.mapping)
            .field("sources", &i.sources)
            .field("revocation", &i.revocation.is_some())
            .field("cache", &i.cache.as_ref().map(TokenCache::len));
        #[cfg(feature = "jwks")]
        f.field("remote", &i.remote);
        f.field("claims", &std::any::type_name::<C>()).finish()
    }
}

impl JwtAuthenticator {
    /// Starts a configuration with the default claims type (a JSON map); switch with
    /// [`JwtAuthenticatorBuilder::claims`].
    pub fn builder() -> JwtAuthenticatorBuilder {
        JwtAuthenticatorBuilder::new()
    }
}

impl<C> JwtAuthenticator<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    /// Wraps this authenticator in an [`AuthLayer`].
    pub fn into_layer(self) -> JwtLayer<C> {
        AuthLayer::new(self)
    }

    /// Replaces the key set. The generation counter moves on, so every cached
    /// verification made under the old keys is dropped.
    pub fn set_keys(&self, keys: KeySet) {
        let mut guard = self.inner.keys.write().unwrap_or_else(|e| e.into_inner());
        *guard = Arc::new(keys);
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        drop(guard);
        if let Some(cache) = &self.inner.cache {
            cache.clear();
        }
    }

    /// The key-set generation: bumped by each [`set_keys`](Self::set_keys), and
    /// (feature `jwks`) whenever a remote key that was served leaves its set.
    pub fn key_generation(&self) -> u64 {
        let local = self.inner.generation.load(Ordering::Acquire);
        #[cfg(feature = "jwks")]
        let local = self
            .inner
            .remote
            .iter()
            .fold(local, |sum, r| sum.wrapping_add(r.generation()));
        local
    }

    /// How many verified tokens the cache holds (0 when the cache is off).
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Verifies one token (already taken out of the request) and builds its principal.
    ///
    /// Returns `Ready(Ok(None))` only for a value that cannot be a JWS (no `.`).
    ///
    /// With remote keys (feature `jwks`), a token naming a `kid` its issuer's set
    /// lacks may wait for one shared refetch (see [`crate::jwks`]): the answer is then
    /// [`Authentication::Pending`].
    pub fn verify(&self, token: &str) -> Authentication {
        self.verify_after(token, None)
    }

    /// [`verify`](Self::verify), told of a cache look-up that already missed for these
    /// exact bytes.
    fn verify_after(&self, token: &str, missed: Option<Missed<'_>>) -> Authentication {
        let mut demand = None;
        match self.verify_ready(token, Some(&mut demand), missed) {
            Ok(Some(principal)) => self.check_revocation(principal),
            #[cfg(feature = "jwks")]
            Err(_) if demand.is_some() => {
                let fetch: crate::jwks::Demand = demand.expect("checked");
                let this = self.clone();
                let token = token.to_owned();
                Authentication::pending(async move {
                    fetch.await;
                    match this.verify_ready(&token, None, None)? {
                        Some(principal) => match this.check_revocation(principal) {
                            Authentication::Ready(result) => result,
                            Authentication::Pending(check) => check.await,
                        },
                        None => Ok(None),
                    }
                })
            }
            other => {
                let _ = demand;
                Authentication::Ready(other)
            }
        }
    }

    /// Verifies the signature with the key set that applies: the token's issuer's
    /// remote keys when it has some (feature `jwks`), the static keys otherwise.
    fn verify_signature(
        &self,
        token: &str,
        demand: Option<&mut Option<Demand>>,
    ) -> Result<VerifiedJws, AuthError> {
        let inner = &*self.inner;
        #[cfg(feature = "jwks")]
        if !inner.remote.is_empty() {
            match crate::jwks::verify(
                &inner.remote,
                token,
                inner.max_token_len,
                &inner.typ,
                demand,
            ) {
                crate::jwks::Remote::Verified(result) => return result,
                crate::jwks::Remote::NotOurs => {
                    if inner.static_keys_empty() {
                        return Err(AuthError::invalid_token("wrong_issuer")
                            .with_description("the token's issuer is not trusted"));
                    }
                }
            }
        }
        #[cfg(not(feature = "jwks"))]
        let _ = demand;
        let keys = inner.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.verify_jws_with(token, inner.max_token_len, &inner.typ)
    }

    fn verify_ready(
        &self,
        token: &str,
        demand: Option<&mut Option<Demand>>,
        missed: Option<Missed<'_>>,
    ) -> Result<Option<Principal>, AuthError> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_len {
            return Err(AuthError::invalid_token("token_too_large")
                .with_description("the token is too large"));
        }
        if !token.contains('.') {
            return Ok(None);
        }
        let now = unix_secs(inner.clock.now());
        let generation = self.key_generation();
        let slot = match (&inner.cache, missed) {
            (Some(_), Some(missed)) if std::ptr::eq(missed.token, token.as_bytes()) => {
                Some(missed.slot)
            }
            (Some(cache), _) => {
                let slot = cache.slot(token.as_bytes());
                if let Some(principal) = cache.get(slot, token.as_bytes(), now, generation) {
                    return Ok(Some(principal));
                }
                Some(slot)
            }
            (None, _) => None,
        };

        let jws = self.verify_signature(token, demand)?;
        let claims = json::parse_object(&jws.payload).map_err(|e| match e {
            JsonError::Duplicate => AuthError::invalid_token("duplicate_claim")
                .with_description("the token is malformed"),
            JsonError::Malformed => malformed(),
        })?;
        let (principal, times) = self.principal(claims, now)?;

        if let (Some(cache), Some(slot)) = (&inner.cache, slot)
            && (!jws.symmetric || inner.cache_symmetric)
        {
            let until = times
                .exp
                .saturating_add(inner.leeway)
                .min(now.saturating_add(inner.cache_max_ttl));
            cache.insert(
                slot,
                token.as_bytes(),
                principal.clone(),
                until,
                now,
                generation,
            );
        }
        Ok(Some(principal))
    }

    fn validate(&self, claims: &Registered<'_>, now: i64) -> Result<Times, AuthError> {
        let inner = &*self.inner;
        let leeway = inner.leeway;
        let exp = match claims.exp {
            None => {
                return Err(AuthError::invalid_token("missing_exp")
                    .with_description("the token has no expiry"));
            }
            Some(v) => numeric(v).ok_or_else(|| AuthError::invalid_token("invalid_exp"))?,
        };
        if now >= exp.saturating_add(leeway) {
            return Err(
                AuthError::invalid_token("token_expired").with_description("the token has expired")
            );
        }
        if let Some(v) = claims.nbf {
            let nbf = numeric(v).ok_or_else(|| AuthError::invalid_token("invalid_nbf"))?;
            if now.saturating_add(leeway) < nbf {
                return Err(AuthError::invalid_token("token_not_yet_valid")
                    .with_description("the token is not valid yet"));
            }
        }
        let iat = match claims.iat {
            None => None,
            Some(v) => {
                let iat = numeric(v).ok_or_else(|| AuthError::invalid_token("invalid_iat"))?;
                if iat > now.saturating_add(leeway) {
                    return Err(AuthError::invalid_token("iat_in_future")
                        .with_description("the token was issued in the future"));
                }
                Some(iat)
            }
        };
        match claims.iss {
            None => return Err(AuthError::invalid_token("missing_iss")),
            Some(Value::String(iss)) if inner.issuers.iter().any(|i| **i == **iss) => {}
            Some(_) => {
                return Err(AuthError::invalid_token("wrong_issuer")
                    .with_description("the token's issuer is not trusted"));
            }
        }
        if let Some(audiences) = &inner.audiences {
            let ours = |a: &str| audiences.iter().any(|o| **o == *a);
            let ok = match claims.aud {
                None => return Err(AuthError::invalid_token("missing_aud")),
                Some(Value::String(aud)) => ours(aud),
                Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(ours),
                Some(_) => false,
            };
            if !ok {
                return Err(AuthError::invalid_token("wrong_audience")
                    .with_description("the token is not meant for this service"));
            }
        }
        Ok(Times { exp, iat })
    }

    /// Checks the claims at `now` and builds the principal from them.
    fn principal(
        &self,
        claims: Map<String, Value>,
        now: i64,
    ) -> Result<(Principal, Times), AuthError> {
        let inner = &*self.inner;
        let registered = Registered::of(&claims);
        let times = self.validate(&registered, now)?;
        fn text(value: Option<&Value>) -> Option<&str> {
            value.and_then(Value::as_str)
        }
        let client = text(registered.client_id).or_else(|| text(registered.azp));
        let (subject, kind) = match (text(registered.sub), client) {
            (Some(sub), Some(client)) if sub == client => (sub, PrincipalKind::Service),
            (Some(sub), _) => (sub, PrincipalKind::User),
            (None, Some(client)) => (client, PrincipalKind::Service),
            (None, None) => {
                return Err(AuthError::invalid_token("missing_subject")
                    .with_description("the token names no subject"));
            }
        };
        let mut builder =
            Principal::builder(subject, kind).claim_mapping(Arc::clone(&inner.mapping));
        if let Some(iss) = text(registered.iss) {
            builder = builder.issuer(iss);
        }
        if let Some(client) = client {
            builder = builder.client_id(client);
        }
        if let Some(jti) = text(registered.jti) {
            builder = builder.token_id(jti);
        }
        if let Some(at) = numeric_date(times.exp) {
            builder = builder.expires_at(at);
        }
        if let Some(at) = times.iat.and_then(numeric_date) {
            builder = builder.issued_at(at);
        }
        let raw = Arc::new(claims);
        let typed = typed_claims::<C>(&raw)?;
        let principal = builder.raw_claims(raw).typed_claims(typed).build();
        Ok((principal, times))
    }

    /// The quick answer for a token verified before: the cache is consulted with the
    /// header's raw bytes, before any parsing. Only bytes identical to a token that
    /// went through [`TokenSources::find`] and full verification can match, so the
    /// answer is the one the full path would give. Misses take the full path.
    /// On a miss, what was looked up, so the full path does not look again.
    fn cached<'a>(&self, parts: &'a Parts) -> Result<Principal, Option<Missed<'a>>> {
        let cache = self.inner.cache.as_ref().ok_or(None)?;
        let token = self.inner.sources.raw_bearer(parts).ok_or(None)?;
        // Erring late only makes an entry look dead early; the full path then decides.
        let now = unix_secs(self.inner.clock.now_or_later());
        let slot = cache.slot(token);
        cache
            .get(slot, token, now, self.key_generation())
            .ok_or(Some(Missed { token, slot }))
    }

    fn check_revocation(&self, principal: Principal) -> Authentication {
        let Some(revocation) = &self.inner.revocation else {
            return Authentication::Ready(Ok(Some(principal)));
        };
        let query = RevocationQuery {
            issuer: principal.issuer(),
            subject: principal.subject(),
            token_id: principal.token_id(),
            issued_at: principal.issued_at(),
        };
        match revocation.check(&query) {
            RevocationCheck::Ready(Ok(())) => Authentication::Ready(Ok(Some(principal))),
            RevocationCheck::Ready(Err(e)) => Authentication::Ready(Err(e)),
            RevocationCheck::Pending(check) => {
                Authentication::pending(async move { check.await.map(|()| Some(principal)) })
            }
        }
    }
}

/// Produces `C` from the parsed claims without parsing bytes again; when `C` is the
/// default map, shares it.
fn typed_claims<C: DeserializeOwned + Send + Sync + 'static>(
    raw: &Arc<Map<String, Value>>,
) -> Result<Claims<C>, AuthError> {
    let any: Arc<dyn Any + Send + Sync> = raw.clone();
    if let Ok(same) = any.downcast::<C>() {
        return Ok(Claims(same));
    }
    C::deserialize(&**raw).map(Claims::new).map_err(|_| {
        AuthError::invalid_token("invalid_claims")
            .with_description("the token's claims do not have the expected shape")
    })
}

impl<C> Inner<C> {
    #[cfg(feature = "jwks")]
    fn static_keys_empty(&self) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

/// A cache look-up that missed: the exact bytes looked up (a slice of the request)
/// and their slot. The full path reuses it when it verifies the same slice.
#[derive(Clone, Copy)]
struct Missed<'a> {
    token: &'a [u8],
    slot: Slot,
}

struct Times {
    exp: i64,
    iat: Option<i64>,
}

/// The registered claims the checks and the principal read, found in one pass over
/// the claims rather than a map look-up each.
#[derive(Default)]
struct Registered<'a> {
    exp: Option<&'a Value>,
    nbf: Option<&'a Value>,
    iat: Option<&'a Value>,
    iss: Option<&'a Value>,
    aud: Option<&'a Value>,
    sub: Option<&'a Value>,
    jti: Option<&'a Value>,
    client_id: Option<&'a Value>,
    azp: Option<&'a Value>,
}

impl<'a> Registered<'a> {
    fn of(claims: &'a Map<String, Value>) -> Self {
        let mut r = Self::default();
        for (name, value) in claims {
            let slot = match name.as_str() {
                "exp" => &mut r.exp,
                "nbf" => &mut r.nbf,
                "iat" => &mut r.iat,
                "iss" => &mut r.iss,
                "aud" => &mut r.aud,
                "sub" => &mut r.sub,
                "jti" => &mut r.jti,
                "client_id" => &mut r.client_id,
                "azp" => &mut r.azp,
                _ => continue,
            };
            *slot = Some(value);
        }
        r
    }
}

/// A NumericDate (RFC 7519 §2): a JSON number, possibly fractional, floored to
/// seconds. Strings and other types are refused.
fn numeric(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // Saturating float-to-int conversion; NaN cannot come out of JSON.
    f.is_finite().then(|| f.floor() as i64)
}

impl<C> Authenticator for JwtAuthenticator<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    fn authenticate(&self, parts: &Parts) -> Authentication {
        let missed = match self.cached(parts) {
            Ok(principal) => return self.check_revocation(principal),
            Err(missed) => missed,
        };
        match self.inner.sources.find(parts) {
            Ok(Some(token)) => self.verify_after(token, missed),
            Ok(None) => Authentication::Ready(Ok(None)),
            Err(e) => Authentication::Ready(Err(e)),
        }
    }
}

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
    #[cfg(feature = "jwks")]
    remote: Vec<crate::jwks::RemoteKeys>,
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
            .finish_non_exhaustive()
    }
}

impl JwtAuthenticatorBuilder {
    fn new() -> Self {
        Self {
            keys: Vec::new(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            any_audience: false,
            leeway: DEFAULT_LEEWAY,
            clock: Arc::new(SystemClock),
            max_token_len: NonZeroUsize::new(DEFAULT_MAX_TOKEN_LEN).expect("non-zero"),
            typ: TypRule::Any,
            mapping: ClaimMapping::default(),
            sources: TokenSources::default(),
            revocation: None,
            cache_capacity: Some(DEFAULT_CACHE_CAPACITY),
            cache_symmetric: DEFAULT_CACHE_SYMMETRIC,
            cache_max_ttl: DEFAULT_CACHE_MAX_TTL,
            #[cfg(feature = "jwks")]
            remote: Vec::new(),
            _claims: PhantomData,
        }
    }
}

/// Whether tokens verified with a shared secret (HS*) are cached by default.
const DEFAULT_CACHE_SYMMETRIC: bool = true;

impl<C> JwtAuthenticatorBuilder<C> {
    /// Deserializes claims into `C2` (any `serde` type); handlers read them as
    /// [`Claims<C2>`]. A token whose claims do not fit is refused (`invalid_claims`).
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
            #[cfg(feature = "jwks")]
            remote: self.remote,
            _claims: PhantomData,
        }
    }

    /// Verifies tokens of `keys`' issuer with its remote keys (feature `jwks`), and
    /// trusts that issuer (as [`issuer`](Self::issuer) would). Call once per issuer;
    /// tokens are routed by their `iss`. Static [`key`](Self::key)s still serve the
    /// other configured issuers.
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn remote_keys(mut self, keys: crate::jwks::RemoteKeys) -> Self {
        if !self.issuers.iter().any(|i| **i == *keys.issuer()) {
            self.issuers.push(keys.issuer().into());
        }
        self.remote.push(keys);
        self
    }

    /// Adds a verification key.
    pub fn key(mut self, key: Key) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds several verification keys.
    pub fn keys(mut self, keys: impl IntoIterator<Item = Key>) -> Self {
        self.keys.extend(keys);
        self
    }

    /// Adds a trusted issuer. `iss` must equal one of them exactly (a trailing slash
    /// makes another issuer). At least one is required.
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
    /// `typ` must be `at+jwt` or `application/at+jwt`, so ID tokens, refresh tokens
    /// and logout tokens of the same issuer are refused (`typ_mismatch`).
    ///
    /// Off by default, because many issuers still send `typ: JWT` on access tokens.
    pub fn require_access_token_typ(mut self) -> Self {
        self.typ = TypRule::OneOf(vec!["at+jwt".into()].into());
        self
    }

    /// Accept only tokens whose header `typ` is one of `types` (compared
    /// case-insensitively, `application/` prefix optional).
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

    /// The verified-token cache's size (default 10,000 tokens). Each entry holds its
    /// token's bytes and the principal built from it.
    pub fn cache_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.cache_capacity = Some(capacity);
        self
    }

    /// Turns the verified-token cache off.
    pub fn without_cache(mut self) -> Self {
        self.cache_capacity = None;
        self
    }

    /// Whether HMAC-verified tokens are cached too (default: yes; see the crate's
    /// benchmark notes: a hit is cheaper than an HS256 verification plus claims parse).
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
    /// [`ConfigErrorKind::NoKeys`], [`ConfigErrorKind::NoIssuer`], an empty issuer or
    /// audience ([`ConfigErrorKind::EmptyValue`]), no audience without
    /// [`danger_accept_any_audience`](Self::danger_accept_any_audience)
    /// ([`ConfigErrorKind::NoAudience`]), or a key error (two keys sharing a `kid`).
    pub fn build(self) -> Result<JwtAuthenticator<C>, ConfigError>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        #[cfg(feature = "jwks")]
        let no_remote = self.remote.is_empty();
        #[cfg(not(feature = "jwks"))]
        let no_remote = true;
        if self.keys.is_empty() && no_remote {
            return Err(ConfigError::new(ConfigErrorKind::NoKeys));
        }
        if self.issuers.is_empty() {
            return Err(ConfigError::new(ConfigErrorKind::NoIssuer));
        }
        if self.audiences.is_empty() && !self.any_audience {
            return Err(ConfigError::new(ConfigErrorKind::NoAudience));
        }
        if self
            .issuers
            .iter()
            .chain(&self.audiences)
            .any(|v| v.is_empty())
        {
            return Err(ConfigError::new(ConfigErrorKind::EmptyValue));
        }
        let keys = KeySet::new(self.keys)?;
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Ok(JwtAuthenticator {
            inner: Arc::new(Inner {
                keys: RwLock::new(Arc::new(keys)),
                generation: AtomicU64::new(0),
                issuers: self.issuers.into(),
                audiences: (!self.audiences.is_empty()).then(|| self.audiences.into()),
                leeway: secs(self.leeway),
                clock: self.clock,
                max_token_len: self.max_token_len.get(),
                typ: self.typ,
                mapping: Arc::new(self.mapping),
                sources: self.sources,
                revocation: self.revocation,
                cache: self.cache_capacity.map(TokenCache::new),
                cache_symmetric: self.cache_symmetric,
                cache_max_ttl: secs(self.cache_max_ttl),
                #[cfg(feature = "jwks")]
                remote: self.remote.into(),
                _claims: PhantomData,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numeric_date_accepts_numbers_only() {
        assert_eq!(numeric(&json!(10)), Some(10));
        assert_eq!(numeric(&json!(10.9)), Some(10));
        assert_eq!(numeric(&json!(-0.5)), Some(-1));
        assert_eq!(numeric(&json!("10")), None);
        assert_eq!(numeric(&json!(null)), None);
        assert_eq!(numeric(&json!(u64::MAX)), Some(i64::MAX));
    }
}
