//! [`ApiKeyAuthenticator`]: API keys for the core [`AuthLayer`](portcullis_core::AuthLayer).

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use dashmap::{DashMap, mapref::entry::Entry};
use http::{HeaderMap, HeaderName, HeaderValue, request::Parts};
use portcullis_core::{
    AuthError, Authentication, Authenticator, Principal, PrincipalKind,
    credentials::{authorization_bearer, header_text},
};

use crate::{
    ApiKeyRecord, ApiKeyStore, Clock, KeyDigest, KeyFormat, KeyHasher, StoreError, SystemClock,
};

/// The default header an API key is read from.
pub const DEFAULT_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// The default minimum time between two last-use writes for one key.
pub const DEFAULT_LAST_USE_INTERVAL: Duration = Duration::from_secs(60);

/// What an authenticator and an [`ApiKeys`](crate::ApiKeys) service share.
pub(crate) struct Core<S> {
    pub(crate) store: Arc<S>,
    pub(crate) format: KeyFormat,
    pub(crate) hasher: KeyHasher,
    pub(crate) clock: Arc<dyn Clock>,
}

impl<S> Clone for Core<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            format: self.format.clone(),
            hasher: self.hasher.clone(),
            clock: Arc::clone(&self.clock),
        }
    }
}

impl<S> Core<S> {
    pub(crate) fn new(store: Arc<S>, format: KeyFormat) -> Self {
        Self {
            store,
            format,
            hasher: KeyHasher::sha256(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Authenticates requests by API key, for [`AuthLayer`](portcullis_core::AuthLayer).
///
/// # Where the key is read
///
/// - the `X-API-Key` header (name configurable with [`with_header`](Self::with_header));
/// - `Authorization: Bearer <key>` when the token starts with the key prefix, so one
///   header can carry either a JWT or an API key. Bearer tokens without the prefix are
///   not this authenticator's (`Ok(None)`): a JWT authenticator next to it in a tuple
///   takes them.
///
/// A key in both places, or the key header twice, is `400 invalid_request`.
///
/// # How it is checked
///
/// 1. Prefix, length, alphabet and checksum ([`KeyFormat::parse`]): a malformed or
///    mistyped key is `401 invalid_token` without any store call.
/// 2. The store's record for the key's public id; the digest of the presented key is
///    compared with the stored one in constant time.
/// 3. Revoked and expired keys are refused. Unknown, wrong, revoked and expired keys
///    all get the same `401 invalid_token` and description
///    ([RFC 6750 §3.1](https://www.rfc-editor.org/rfc/rfc6750#section-3.1)); the
///    distinction is only in the error's `reason`, for logs and events.
/// 4. A [`Principal`] of kind [`PrincipalKind::ApiKey`]: subject = the key's owner,
///    token id = the key id, the key's scopes and roles, its expiry.
///
/// A store failure is `503`, never `401`. The key's last use is recorded at most once
/// per key per [interval](Self::with_last_use_interval) per process, whatever the
/// backend.
///
/// With a store that answers synchronously ([`MemoryStore`](crate::MemoryStore)), a
/// request is decided without allocating a future.
///
/// Put tuples in the order `(api_key, jwt)` to also refuse an `X-API-Key` sent together
/// with a bearer JWT; `(jwt, api_key)` lets the JWT decide such requests.
pub struct ApiKeyAuthenticator<S> {
    core: Arc<Core<S>>,
    header: HeaderName,
    bearer: bool,
    debounce: Option<Arc<Debounce>>,
}

impl<S> Clone for ApiKeyAuthenticator<S> {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
            header: self.header.clone(),
            bearer: self.bearer,
            debounce: self.debounce.clone(),
        }
    }
}

impl<S> fmt::Debug for ApiKeyAuthenticator<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyAuthenticator")
            .field("format", &self.core.format)
            .field("hasher", &self.core.hasher)
            .field("header", &self.header)
            .field("bearer", &self.bearer)
            .field(
                "last_use_interval",
                &self.debounce.as_ref().map(|d| d.interval),
            )
            .finish_non_exhaustive()
    }
}

impl<S: ApiKeyStore> ApiKeyAuthenticator<S> {
    /// An authenticator over `store` for keys of `format`, with plain SHA-256 digests
    /// and the system clock.
    pub fn new(store: S, format: KeyFormat) -> Self {
        Self::from_core(Arc::new(Core::new(Arc::new(store), format)))
    }

    pub(crate) fn from_core(core: Arc<Core<S>>) -> Self {
        Self {
            core,
            header: DEFAULT_HEADER,
            bearer: true,
            debounce: Some(Arc::new(Debounce::new(DEFAULT_LAST_USE_INTERVAL))),
        }
    }

    /// Reads the key from header `name` instead of `X-API-Key`.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// Stops reading keys from `Authorization: Bearer`.
    #[must_use]
    pub fn without_bearer(mut self) -> Self {
        self.bearer = false;
        self
    }

    /// Digests keys with `hasher` (must match the one the keys were stored with).
    #[must_use]
    pub fn with_hasher(mut self, hasher: KeyHasher) -> Self {
        let mut core = Core::clone(&self.core);
        core.hasher = hasher;
        self.core = Arc::new(core);
        self
    }

    /// Reads time from `clock` (expiry checks and last-use debouncing).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        let mut core = Core::clone(&self.core);
        core.clock = Arc::new(clock);
        self.core = Arc::new(core);
        self
    }

    /// Writes a key's last use at most once per `interval` (default one minute).
    #[must_use]
    pub fn with_last_use_interval(mut self, interval: Duration) -> Self {
        self.debounce = Some(Arc::new(Debounce::new(interval)));
        self
    }

    /// Never records last use.
    #[must_use]
    pub fn without_last_use(mut self) -> Self {
        self.debounce = None;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.core.store
    }

    /// The key format.
    pub fn format(&self) -> &KeyFormat {
        &self.core.format
    }

    /// Finds the key in the request head: `Ok(None)` when there is none of ours.
    ///
    /// A key from the key header comes back as raw bytes, unchecked: the format check
    /// admits ASCII alphanumerics only, so the header need not be scanned for text
    /// first. Only a key that fails that check is looked at again, to tell a header
    /// that is not text at all (`400`) from a malformed key (`401`).
    fn credential<'a>(&self, headers: &'a HeaderMap) -> Result<Option<Found<'a>>, AuthError> {
        let mut values = headers.get_all(&self.header).iter();
        let from_header = match values.next() {
            None => None,
            Some(value) => {
                if values.next().is_some() {
                    return Err(AuthError::invalid_request("duplicate_api_key_header"));
                }
                // Optional whitespace around a field value (RFC 9110 §5.5).
                let key = value.as_bytes().trim_ascii();
                if key.is_empty() {
                    return Err(AuthError::invalid_request("empty_api_key_header"));
                }
                Some(Found::Header { value, key })
            }
        };
        match (from_header, authorization_bearer(headers)) {
            (Some(_), Ok(Some(_))) => {
                Err(AuthError::invalid_request("credentials_in_several_places"))
            }
            (Some(found), Ok(None)) => Ok(Some(found)),
            (Some(_), Err(error)) => Err(error),
            (None, Ok(Some(token))) if self.bearer && self.core.format.has_prefix(token) => {
                Ok(Some(Found::Bearer(token)))
            }
            // Not ours; a malformed Authorization header is the layer's (or the next
            // authenticator's) to refuse.
            (None, _) => Ok(None),
        }
    }
}

/// Where a key was found.
#[derive(Clone, Copy)]
enum Found<'a> {
    /// The key header: its value, and the key in it (trimmed, not yet known to be
    /// text).
    Header {
        value: &'a HeaderValue,
        key: &'a [u8],
    },
    /// The token of `Authorization: Bearer`, already checked to be visible ASCII.
    Bearer(&'a str),
}

impl<'a> Found<'a> {
    fn bytes(self) -> &'a [u8] {
        match self {
            Self::Header { key, .. } => key,
            Self::Bearer(token) => token.as_bytes(),
        }
    }
}

impl<S: ApiKeyStore> Authenticator for ApiKeyAuthenticator<S> {
    fn authenticate(&self, parts: &Parts) -> Authentication {
        let found = match self.credential(&parts.headers) {
            Ok(Some(found)) => found,
            Ok(None) => return Authentication::Ready(Ok(None)),
            Err(error) => return Authentication::Ready(Err(error)),
        };
        let Ok(parsed) = self.core.format.parse_bytes(found.bytes()) else {
            if let Found::Header { value, .. } = found
                && header_text(value).is_none()
            {
                return Authentication::Ready(Err(AuthError::invalid_request(
                    "api_key_header_not_ascii",
                )));
            }
            return refuse(None, "api_key_malformed");
        };
        let id = parsed.id();
        let digest = self.core.hasher.digest(&parsed);
        // A few milliseconds late at most: a key may look expired that much early.
        let now = self.core.clock.now_or_later();

        match self.core.store.find_now(id) {
            Some(Ok(found)) => {
                let Some(shared) = found.as_deref() else {
                    return refuse(Some(id), "api_key_unknown");
                };
                let record = match check(Some(shared.record()), id, &digest, now) {
                    Ok(record) => record,
                    Err(error) => return Authentication::Ready(Err(error)),
                };
                // Built once per record version, then shared.
                let principal = shared.principal_or_init(principal_of);
                let touch = self
                    .debounce
                    .as_ref()
                    .is_some_and(|d| d.claim(id, record.last_used_at, now));
                if !touch {
                    return Authentication::Ready(Ok(Some(principal)));
                }
                match self.core.store.record_last_use_now(id, now) {
                    Some(result) => {
                        report_touch(id, result);
                        Authentication::Ready(Ok(Some(principal)))
                    }
                    None => {
                        let core = Arc::clone(&self.core);
                        let id = id.to_owned();
                        Authentication::pending(async move {
                            report_touch(&id, core.store.record_last_use(&id, now).await);
                            Ok(Some(principal))
                        })
                    }
                }
            }
            Some(Err(error)) => Authentication::Ready(Err(store_failed(id, error))),
            None => {
                let core = Arc::clone(&self.core);
                let debounce = self.debounce.clone();
                let id = id.to_owned();
                Authentication::pending(async move {
                    let found = core
                        .store
                        .find(&id)
                        .await
                        .map_err(|e| store_failed(&id, e))?;
                    let record = check(found.as_ref(), &id, &digest, now)?;
                    let principal = principal_of(record);
                    if debounce.is_some_and(|d| d.claim(&id, record.last_used_at, now)) {
                        report_touch(&id, core.store.record_last_use(&id, now).await);
                    }
                    Ok(Some(principal))
                })
            }
        }
    }
}

/// Decides whether the found record accepts the presented key's digest at `now`.
fn check<'r>(
    found: Option<&'r ApiKeyRecord>,
    id: &str,
    digest: &KeyDigest,
    now: SystemTime,
) -> Result<&'r ApiKeyRecord, AuthError> {
    let Some(record) = found else {
        return Err(refusal(Some(id), "api_key_unknown"));
    };
    // Compare before looking at the record's state, so that someone holding only the
    // public id learns nothing about the key.
    if !record.digest.ct_eq(digest) {
        return Err(refusal(Some(id), "api_key_mismatch"));
    }
    if record.revoked_at.is_some() {
        return Err(refusal(Some(id), "api_key_revoked"));
    }
    if record.expires_at.is_some_and(|exp| now >= exp) {
        return Err(refusal(Some(id), "api_key_expired"));
    }
    Ok(record)
}

fn principal_of(record: &ApiKeyRecord) -> Principal {
    let mut builder = Principal::builder(record.owner.as_str(), PrincipalKind::ApiKey)
        .token_id(record.id.as_str())
        .scopes(record.scopes.iter().map(String::as_str))
        .roles(record.roles.iter().map(String::as_str))
        .issued_at(record.created_at);
    if let Some(exp) = record.expires_at {
        builder = builder.expires_at(exp);
    }
    builder.build()
}

/// Every refusal is the same `invalid_token` with the generic description; only the
/// reason (for logs) differs. Logs carry the public id at most, never the key.
fn refusal(id: Option<&str>, reason: &'static str) -> AuthError {
    tracing::debug!(target: "portcullis::apikey", key_id = id, reason, "api key refused");
    AuthError::invalid_token(reason)
}

fn refuse(id: Option<&str>, reason: &'static str) -> Authentication {
    Authentication::Ready(Err(refusal(id, reason)))
}

fn store_failed(id: &str, error: StoreError) -> AuthError {
    tracing::warn!(target: "portcullis::apikey", key_id = id, error = %error, "api key store failed");
    AuthError::unavailable("api_key_store_unavailable").with_source(error)
}

fn report_touch(id: &str, result: Result<(), StoreError>) {
    if let Err(error) = result {
        tracing::warn!(
            target: "portcullis::apikey",
            key_id = id,
            error = %error,
            "could not record api key use"
        );
    }
}

/// Per-process guard so that each key's last use is written at most once per interval,
/// whatever the backend and however many requests race.
struct Debounce {
    interval: Duration,
    // One entry per key that authenticated in this process (only genuine keys get
    // here, so an attacker cannot grow it).
    written: DashMap<Box<str>, SystemTime, foldhash::fast::RandomState>,
}

impl Debounce {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            written: DashMap::default(),
        }
    }

    fn fresh(&self, at: SystemTime, now: SystemTime) -> bool {
        // A time in the future (clock skew) counts as fresh.
        now.duration_since(at)
            .map_or(true, |age| age < self.interval)
    }

    /// Whether the caller should write `now` as the key's last use.
    fn claim(&self, id: &str, recorded: Option<SystemTime>, now: SystemTime) -> bool {
        if recorded.is_some_and(|at| self.fresh(at, now)) {
            return false;
        }
        if let Some(mut at) = self.written.get_mut(id) {
            if self.fresh(*at, now) {
                return false;
            }
            *at = now;
            return true;
        }
        match self.written.entry(id.into()) {
            Entry::Occupied(mut slot) => {
                if self.fresh(*slot.get(), now) {
                    return false;
                }
                slot.insert(now);
                true
            }
            Entry::Vacant(slot) => {
                slot.insert(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn debounce_writes_once_per_interval() {
        let d = Debounce::new(Duration::from_secs(60));
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(d.claim("k", None, t0));
        assert!(!d.claim("k", None, t0 + Duration::from_secs(59)));
        assert!(d.claim("k", None, t0 + Duration::from_secs(60)));
        assert!(d.claim("other", None, t0));
        // A recent write recorded by another process also counts.
        assert!(!d.claim("fresh", Some(t0), t0 + Duration::from_secs(1)));
    }
}
