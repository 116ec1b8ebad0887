//! [`ApiKeyAuthenticator`]: API keys for the core [`AuthLayer`](portcullis_core::AuthLayer).

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use http::{HeaderMap, HeaderName, HeaderValue, request::Parts};
use portcullis_core::{
    AuthError, AuthResult, Authenticator, MaybeReady,
    credentials::authorization_bearer,
    internal::{header_text, metrics},
};

use crate::{
    ApiKeyRecord, ApiKeyStore, Clock, KeyDigest, KeyFormat, KeyHasher, StoreError, SystemClock,
    cache::{Debounce, Principals},
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
/// A key in both places, or the key header twice, is `400 invalid_request`; so is the
/// key header next to a bearer token of another kind (a JWT): one request, one
/// credential (the problem body then says the request "carries more than one kind of
/// credential").
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
/// 4. A [`Principal`](portcullis_core::Principal) of kind
///    [`PrincipalKind::ApiKey`](portcullis_core::PrincipalKind::ApiKey): subject = the
///    key's owner, token id = the key id, the key's scopes and roles, its expiry.
///
/// A store failure is `503`, never `401`. The key's last use is recorded at most once
/// per key per [interval](Self::with_last_use_interval) per process, whatever the
/// backend.
///
/// With a store that answers at once ([`MemoryStore`](crate::MemoryStore)), a request
/// is decided without allocating a future. The principal made from a record is kept
/// (shared by clones of the authenticator) and reused while the store answers the same
/// record; any change to the record (revocation, rotation, expiry, grants) makes a new
/// one on the next request.
///
/// Put tuples in the order `(api_key, jwt)` to also refuse an `X-API-Key` sent together
/// with a bearer JWT; `(jwt, api_key)` lets the JWT decide such requests.
pub struct ApiKeyAuthenticator<S> {
    core: Arc<Core<S>>,
    header: HeaderName,
    bearer: bool,
    debounce: Option<Arc<Debounce>>,
    principals: Arc<Principals>,
}

impl<S> Clone for ApiKeyAuthenticator<S> {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
            header: self.header.clone(),
            bearer: self.bearer,
            debounce: self.debounce.clone(),
            principals: Arc::clone(&self.principals),
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
            principals: Arc::default(),
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
            // The key in both places (RFC 6750 §2: one method per request).
            (Some(_), Ok(Some(token))) if self.bearer && self.core.format.has_prefix(token) => {
                Err(AuthError::invalid_request("credentials_in_several_places"))
            }
            (Some(_), Ok(Some(_))) => Err(AuthError::invalid_request("conflicting_credentials")
                .with_description("the request carries more than one kind of credential")),
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
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        let found = match self.credential(&parts.headers) {
            Ok(Some(found)) => found,
            Ok(None) => return MaybeReady::Ready(Ok(None)),
            Err(error) => return MaybeReady::Ready(Err(error)),
        };
        let Ok(parsed) = self.core.format.parse_bytes(found.bytes()) else {
            if let Found::Header { value, .. } = found
                && header_text(value).is_none()
            {
                return MaybeReady::Ready(Err(AuthError::invalid_request(
                    "api_key_header_not_ascii",
                )));
            }
            return MaybeReady::Ready(Err(refusal(None, "api_key_malformed")));
        };
        let id = parsed.id();
        let digest = self.core.hasher.digest(&parsed);
        let now = self.core.clock.now();
        match self.core.store.find(id) {
            MaybeReady::Ready(found) => self.decide(id, &digest, now, found),
            MaybeReady::Pending(lookup) => {
                let this = self.clone();
                let id = id.to_owned();
                MaybeReady::pending(async move {
                    match this.decide(&id, &digest, now, lookup.await) {
                        MaybeReady::Ready(result) => result,
                        MaybeReady::Pending(touch) => touch.await,
                    }
                })
            }
        }
    }
}

impl<S: ApiKeyStore> ApiKeyAuthenticator<S> {
    /// Decides on the store's answer for key `id` presented with `digest` at `now`;
    /// waits only to record the key's last use with a store that cannot answer at once.
    fn decide(
        &self,
        id: &str,
        digest: &KeyDigest,
        now: SystemTime,
        found: Result<Option<Arc<ApiKeyRecord>>, StoreError>,
    ) -> MaybeReady<AuthResult> {
        let found = match found {
            Ok(found) => found,
            Err(error) => return MaybeReady::Ready(Err(store_failed(id, error))),
        };
        let record = match check(found, id, digest, now) {
            Ok(record) => record,
            Err(error) => return MaybeReady::Ready(Err(error)),
        };
        metrics::api_key_lookup("valid");
        let principal = self.principals.get(id, &record);
        let touch = self
            .debounce
            .as_ref()
            .is_some_and(|d| d.claim(id, record.last_used_at, now));
        if !touch {
            return MaybeReady::Ready(Ok(Some(principal)));
        }
        match self.core.store.record_last_use(id, now) {
            MaybeReady::Ready(result) => {
                report_touch(id, result);
                MaybeReady::Ready(Ok(Some(principal)))
            }
            MaybeReady::Pending(write) => {
                let id = id.to_owned();
                MaybeReady::pending(async move {
                    report_touch(&id, write.await);
                    Ok(Some(principal))
                })
            }
        }
    }
}

/// Decides whether the found record accepts the presented key's digest at `now`.
fn check(
    found: Option<Arc<ApiKeyRecord>>,
    id: &str,
    digest: &KeyDigest,
    now: SystemTime,
) -> Result<Arc<ApiKeyRecord>, AuthError> {
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

/// Every refusal is the same `invalid_token` with the generic description; only the
/// reason (for logs) differs. Logs carry the public id at most, never the key.
fn refusal(id: Option<&str>, reason: &'static str) -> AuthError {
    metrics::api_key_lookup(reason);
    tracing::debug!(target: "portcullis::apikey", key_id = id, reason, "api key refused");
    AuthError::invalid_token(reason)
}

fn store_failed(id: &str, error: StoreError) -> AuthError {
    metrics::api_key_lookup("error");
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
