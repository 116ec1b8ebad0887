//! [`JwtAuthenticator`]: bearer JWTs to [`Principal`]s, and its builder.

mod builder;
mod claims;
mod dpop;

use std::{
    fmt,
    marker::PhantomData,
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use http::request::Parts;
use portcullis_core::{
    AuthError, AuthResult, Authenticator, MaybeReady, Principal, Revocation, RevocationQuery,
    credentials::TokenSources, internal::unix_secs,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use self::builder::JwtAuthenticatorBuilder;
#[cfg(feature = "introspection")]
pub(crate) use self::claims::numeric;
pub(crate) use self::claims::registered_read_by;
use crate::{
    cache::{Slot, TokenCache, Validity},
    clock::{Clock, DebugClock},
    compact::{self, Segments},
    issuer::{Issuers, Trusted, TrustedKeys},
    json::{self, JsonError},
    keyset::{KeySet, malformed},
};

/// A fetch a token waits for before it is verified again (feature `jwks`).
#[cfg(feature = "jwks")]
type Demand = crate::jwks::Demand;
#[cfg(not(feature = "jwks"))]
type Demand = std::convert::Infallible;

/// The default claims type: the token's JSON object.
pub type DefaultClaims = Map<String, Value>;

/// The default clock leeway for `exp`, `nbf` and `iat`: 60 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The default verified-token cache size: 10,000 tokens.
pub const DEFAULT_CACHE_CAPACITY: NonZeroUsize = NonZeroUsize::new(10_000).unwrap();

/// The default cap on how long a cache entry lives: 15 minutes.
pub const DEFAULT_CACHE_MAX_TTL: Duration = Duration::from_secs(15 * 60);

struct Inner<C> {
    issuers: Issuers,
    generation: AtomicU64,
    clock: Arc<dyn Clock>,
    max_token_len: usize,
    sources: TokenSources,
    revocation: Option<Arc<dyn Revocation>>,
    cache: Option<TokenCache>,
    cache_symmetric: bool,
    cache_max_ttl: i64,
    dpop: Option<crate::dpop::Dpop>,
    _claims: PhantomData<fn() -> C>,
}

/// Verifies bearer JWTs and turns them into [`Principal`]s carrying typed claims
/// [`Claims<C>`](portcullis_core::Claims).
///
/// Built with [`JwtAuthenticator::builder`]; cheap to clone (shared state). Run it on
/// a service with core's [`AuthLayer::new`](portcullis_core::AuthLayer::new). See the
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
/// subject. The principal is [`PrincipalKind::Service`](portcullis_core::PrincipalKind::Service)
/// when the token has no `sub`, or when `sub` equals its `client_id`/`azp` (the
/// client-credentials shape); otherwise
/// [`PrincipalKind::User`](portcullis_core::PrincipalKind::User). A token with none
/// of the three is refused (`missing_subject`).
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
        f.debug_struct("JwtAuthenticator")
            .field("issuers", &i.issuers)
            .field("clock", &DebugClock)
            .field("max_token_len", &i.max_token_len)
            .field("sources", &i.sources)
            .field("revocation", &i.revocation.is_some())
            .field(
                "cache",
                &i.cache
                    .as_ref()
                    .map(|c| c.len(|issuer| self.inner.issuer_generation(issuer))),
            )
            .field("claims", &std::any::type_name::<C>())
            .finish()
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
    /// Replaces the static keys of the first issuer that has static keys (the only
    /// one, in a single-issuer configuration); see
    /// [`set_issuer_keys`](Self::set_issuer_keys). The generation counter moves on,
    /// so every cached verification made under the old keys is dropped.
    pub fn set_keys(&self, keys: KeySet) {
        let first = self
            .inner
            .issuers
            .iter()
            .find(|t| matches!(t.keys, TrustedKeys::Static(_)))
            .map(|t| t.id.clone());
        if let Some(id) = first {
            self.set_issuer_keys(&id, keys);
        }
    }

    /// Replaces the static keys of `issuer`. Returns `false`, changing nothing, when
    /// no trusted issuer of that identifier has static keys.
    pub fn set_issuer_keys(&self, issuer: &str, keys: KeySet) -> bool {
        let Some(TrustedKeys::Static(lock)) = self
            .inner
            .issuers
            .iter()
            .find(|t| *t.id == *issuer)
            .map(|t| &t.keys)
        else {
            return false;
        };
        let mut guard = lock.write().unwrap_or_else(|e| e.into_inner());
        *guard = Arc::new(keys);
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        drop(guard);
        if let Some(cache) = &self.inner.cache {
            cache.clear();
        }
        true
    }

    /// The key-set generation: bumped by each [`set_keys`](Self::set_keys), and
    /// (feature `jwks`) whenever a remote key that was served leaves its set. Tokens
    /// verified under an earlier generation are verified again, not served from the
    /// cache.
    pub fn key_generation(&self) -> u64 {
        let local = self.inner.generation.load(Ordering::Acquire);
        #[cfg(feature = "jwks")]
        let local = self
            .inner
            .issuers
            .iter()
            .fold(local, |sum, t| match &t.keys {
                TrustedKeys::Remote(r) => sum.wrapping_add(r.generation()),
                TrustedKeys::Static(_) => sum,
            });
        local
    }

    /// Whether `issuer` is one this authenticator trusts (compared exactly, as a
    /// token's `iss` is).
    pub fn trusts(&self, issuer: &str) -> bool {
        self.inner.issuers.find(issuer).is_some()
    }

    /// How many live verified tokens the cache holds (0 when the cache is off). Walks
    /// the whole cache: meant for diagnostics and tests, not for every request.
    pub fn cached_tokens(&self) -> usize {
        self.inner
            .cache
            .as_ref()
            .map_or(0, |c| c.len(|issuer| self.inner.issuer_generation(issuer)))
    }

    /// Verifies one token (already taken out of the request) and builds its principal.
    ///
    /// Returns `Ready(Ok(None))` only for a value that cannot be a JWS (no `.`).
    ///
    /// With remote keys (feature `jwks`), a token naming a `kid` its issuer's set
    /// lacks may wait for one shared refetch (see [`crate::jwks`]): the answer is then
    /// [`MaybeReady::Pending`]. So may a [`Revocation`] that must ask a store.
    pub fn verify(&self, token: &str) -> MaybeReady<AuthResult> {
        self.verify_after(token, None)
    }

    /// [`verify`](Self::verify), told of a cache look-up that already missed for these
    /// exact bytes.
    fn verify_after(&self, token: &str, missed: Option<Missed<'_>>) -> MaybeReady<AuthResult> {
        let mut demand = None;
        match self.verify_ready(token, Some(&mut demand), missed) {
            Ok(Some(principal)) => self.check_revocation(principal),
            #[cfg(feature = "jwks")]
            Err(_) if demand.is_some() => {
                let fetch: crate::jwks::Demand = demand.expect("checked");
                let this = self.clone();
                let token = token.to_owned();
                MaybeReady::pending(async move {
                    fetch.await;
                    match this.verify_ready(&token, None, None)? {
                        Some(principal) => match this.check_revocation(principal) {
                            MaybeReady::Ready(result) => result,
                            MaybeReady::Pending(check) => check.await,
                        },
                        None => Ok(None),
                    }
                })
            }
            other => {
                let _ = demand;
                MaybeReady::Ready(other)
            }
        }
    }

    /// Verifies the signature with the keys of the token's issuer: its remote keys
    /// (feature `jwks`) or its static keys. Returns whether the key was a shared
    /// secret.
    fn verify_signature(
        issuer: &Trusted,
        segments: &Segments<'_>,
        demand: Option<&mut Option<Demand>>,
    ) -> Result<bool, AuthError> {
        let algorithms = issuer.algorithms.as_deref();
        match &issuer.keys {
            TrustedKeys::Static(keys) => {
                let _ = demand;
                let keys = keys.read().unwrap_or_else(|e| e.into_inner());
                keys.verify_segments(segments, &issuer.typ, algorithms)
            }
            #[cfg(feature = "jwks")]
            TrustedKeys::Remote(remote) => {
                crate::jwks::verify(remote, segments, &issuer.typ, algorithms, demand)
            }
        }
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
        // A miss of the quick path already looked this token up: reuse its slot and time.
        let missed = missed.filter(|m| std::ptr::eq(m.token, token.as_bytes()));
        let now = missed.map_or_else(|| unix_secs(inner.clock.now()), |m| m.now);
        let current = |issuer| self.inner.issuer_generation(issuer);
        let slot = match (&inner.cache, missed) {
            (Some(_), Some(missed)) => Some(missed.slot),
            (Some(cache), None) => {
                let slot = cache.slot(token.as_bytes());
                if let Some(principal) = cache.get(slot, token.as_bytes(), now, current) {
                    return Ok(Some(principal));
                }
                Some(slot)
            }
            (None, _) => None,
        };

        // A value without a `.` cannot be a JWS (so it may be another authenticator's;
        // the cache holds only tokens that verified, so it never held this one);
        // anything else that does not split is malformed.
        let segments = match compact::split(token) {
            Ok(segments) => segments,
            Err(_) if !token.contains('.') => return Ok(None),
            Err(_) => return Err(malformed()),
        };
        // The claims are parsed once, before the signature is checked, only so that
        // `iss` picks whose keys check it; nothing in them is trusted until then.
        let claims = compact::with_decoded(segments.payload, |payload| json::parse_object(payload))
            .map_err(|_| malformed())?
            .map_err(|e| match e {
                JsonError::Duplicate => AuthError::invalid_token("duplicate_claim")
                    .with_description("the token is malformed"),
                JsonError::Malformed => malformed(),
            })?;
        // The issuer's key generation is read before its keys are: a rotation racing
        // this verification leaves an entry that is already stale.
        let mut generation = 0;
        let verified = self.principal(claims, now, |issuer| {
            if slot.is_some() {
                generation = current(issuer.index);
            }
            Self::verify_signature(issuer, &segments, demand)
        })?;
        let (principal, times) = (verified.principal, verified.times);

        if let (Some(cache), Some(slot)) = (&inner.cache, slot)
            && (!verified.symmetric || inner.cache_symmetric)
        {
            let validity = Validity {
                until: times
                    .exp
                    .saturating_add(verified.leeway)
                    .min(now.saturating_add(inner.cache_max_ttl)),
                issuer: verified.issuer,
                generation,
            };
            cache.insert(
                slot,
                token.as_bytes(),
                principal.clone(),
                validity,
                now,
                current,
            );
        }
        Ok(Some(principal))
    }

    /// The quick answer for a token verified before: the cache is consulted with the
    /// header's raw bytes, before any parsing. Only bytes identical to a token that
    /// went through [`TokenSources::find`] and full verification can match, so the
    /// answer is the one the full path would give. Misses take the full path.
    /// On a miss, what was looked up, so the full path does not look again.
    fn cached<'a>(&self, parts: &'a Parts) -> Result<Principal, Option<Missed<'a>>> {
        let cache = self.inner.cache.as_ref().ok_or(None)?;
        let token = self.inner.sources.raw_bearer(parts).ok_or(None)?;
        let now = unix_secs(self.inner.clock.now());
        let slot = cache.slot(token);
        cache
            .get(slot, token, now, |issuer| {
                self.inner.issuer_generation(issuer)
            })
            .ok_or(Some(Missed { token, slot, now }))
    }

    fn check_revocation(&self, principal: Principal) -> MaybeReady<AuthResult> {
        let Some(revocation) = &self.inner.revocation else {
            return MaybeReady::Ready(Ok(Some(principal)));
        };
        let query = RevocationQuery {
            issuer: principal.issuer(),
            subject: principal.subject(),
            token_id: principal.token_id(),
            issued_at: principal.issued_at(),
        };
        match revocation.check(&query) {
            MaybeReady::Ready(Ok(())) => MaybeReady::Ready(Ok(Some(principal))),
            MaybeReady::Ready(Err(e)) => MaybeReady::Ready(Err(e)),
            MaybeReady::Pending(check) => {
                MaybeReady::pending(async move { check.await.map(|()| Some(principal)) })
            }
        }
    }
}

impl<C> Inner<C> {
    /// The key-set generation of the issuer at `index`: moved by
    /// [`set_keys`](JwtAuthenticator::set_keys) and, for remote keys, by theirs. A
    /// cached verification is served only while its issuer's generation stands.
    fn issuer_generation(&self, index: usize) -> u64 {
        let local = self.generation.load(Ordering::Acquire);
        #[cfg(feature = "jwks")]
        if let Some(TrustedKeys::Remote(r)) = self.issuers.get(index).map(|t| &t.keys) {
            return local.wrapping_add(r.generation());
        }
        #[cfg(not(feature = "jwks"))]
        let _ = index;
        local
    }
}

/// A cache look-up that missed: the exact bytes looked up (a slice of the request)
/// and their slot. The full path reuses it when it verifies the same slice.
#[derive(Clone, Copy)]
struct Missed<'a> {
    token: &'a [u8],
    slot: Slot,
    /// The time the look-up used, so the full path reads the clock only once.
    now: i64,
}

impl<C> Authenticator for JwtAuthenticator<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        if let Some(dpop) = &self.inner.dpop {
            return self.authenticate_dpop(dpop, parts);
        }
        let missed = match self.cached(parts) {
            Ok(principal) => return self.check_revocation(principal),
            Err(missed) => missed,
        };
        match self.inner.sources.find(parts) {
            Ok(Some(token)) => self.verify_after(token, missed),
            Ok(None) => MaybeReady::Ready(Ok(None)),
            Err(e) => MaybeReady::Ready(Err(e)),
        }
    }
}
