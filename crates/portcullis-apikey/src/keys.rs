//! [`ApiKeys`]: issuing, listing, revoking and rotating keys.

use std::{fmt, sync::Arc, time::Duration};

use portcullis_core::{AuthEvent, Events};

use crate::{
    ApiKeyAuthenticator, ApiKeyConfigError, ApiKeyError, ApiKeyErrorKind, ApiKeyRecord,
    ApiKeyStore, Clock, KeyFormat, KeyHasher, KeyRotation, NewApiKey, SecretKey, StoreErrorKind,
    authenticator::Core, record::Expiry,
};

/// How many fresh ids [`ApiKeys::issue`] tries when the store reports an id collision
/// (with 62^10 ids, even one collision is unlikely).
const ISSUE_ATTEMPTS: usize = 3;

/// Manages API keys in a store: the one place that makes keys, so the format, the
/// digest and the clock always agree with the [`authenticator`](Self::authenticator).
///
/// Cloning shares everything.
///
/// ```
/// use portcullis_apikey::{ApiKeys, KeyFormat, MemoryStore, NewApiKey};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let keys = ApiKeys::new(MemoryStore::new(), KeyFormat::new("pk_live_").unwrap());
/// let issued = keys.issue(NewApiKey::owned_by("alice").name("laptop")).await.unwrap();
/// // Show `issued.key().expose_secret()` to alice, once. The store has only a digest.
/// assert_eq!(keys.list("alice").await.unwrap().len(), 1);
/// assert!(keys.revoke(issued.id()).await.unwrap());
/// # }
/// ```
pub struct ApiKeys<S> {
    pub(crate) core: Arc<Core<S>>,
    pub(crate) events: Events,
    max_lifetime: Option<Duration>,
}

impl<S> Clone for ApiKeys<S> {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
            events: self.events.clone(),
            max_lifetime: self.max_lifetime,
        }
    }
}

impl<S> fmt::Debug for ApiKeys<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("format", &self.core.format)
            .field("hasher", &self.core.hasher)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

/// A key just made: the secret, returned this once, and its record.
#[derive(Debug)]
pub struct IssuedKey {
    key: SecretKey,
    record: ApiKeyRecord,
}

impl IssuedKey {
    /// The full key. Show it to its owner once; it cannot be recovered later.
    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// The stored record.
    pub fn record(&self) -> &ApiKeyRecord {
        &self.record
    }

    /// The public key id.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// Splits into the key and the record.
    pub fn into_parts(self) -> (SecretKey, ApiKeyRecord) {
        (self.key, self.record)
    }
}

impl<S: ApiKeyStore> ApiKeys<S> {
    /// Manages keys of `format` in `store`, with plain SHA-256 digests, the system clock
    /// and events to `tracing`.
    pub fn new(store: S, format: KeyFormat) -> Self {
        Self {
            core: Arc::new(Core::new(Arc::new(store), format)),
            events: Events::default(),
            max_lifetime: None,
        }
    }

    /// Caps the lifetime of every key issued from now on: a key asked for without an
    /// expiry gets `lifetime`; one asked for with a longer one is refused
    /// (`InvalidInput`). Rotation keeps the old key's lifetime, so it stays capped.
    #[must_use]
    pub fn with_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }

    /// Digests keys with HMAC-SHA256 keyed with `pepper` (at least 32 bytes).
    ///
    /// # Errors
    ///
    /// When the pepper is too short.
    pub fn with_pepper(self, pepper: &[u8]) -> Result<Self, ApiKeyConfigError> {
        Ok(self.with_hasher(KeyHasher::hmac_sha256(pepper)?))
    }

    /// Digests keys with `hasher`.
    #[must_use]
    pub fn with_hasher(self, hasher: KeyHasher) -> Self {
        self.map_core(|core| core.hasher = hasher)
    }

    /// Reads time from `clock`.
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.map_core(|core| core.clock = Arc::new(clock))
    }

    /// Sends [`AuthEvent::ApiKeyRevoked`] events to `events`.
    #[must_use]
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    fn map_core(mut self, f: impl FnOnce(&mut Core<S>)) -> Self {
        let mut core = Core::clone(&self.core);
        f(&mut core);
        self.core = Arc::new(core);
        self
    }

    /// An authenticator sharing this service's store, format, hasher and clock.
    pub fn authenticator(&self) -> ApiKeyAuthenticator<S> {
        ApiKeyAuthenticator::from_core(Arc::clone(&self.core))
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.core.store
    }

    /// The key format.
    pub fn format(&self) -> &KeyFormat {
        &self.core.format
    }

    /// Makes a key for `spec` and stores its record. The returned [`IssuedKey`] is the
    /// only time the full key is available.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an empty owner, an expiry that is not in the future (a
    /// zero lifetime) or one past the [maximum lifetime](Self::with_max_lifetime);
    /// `Randomness` when the OS random source fails; `Store` when the store fails.
    pub async fn issue(&self, spec: NewApiKey) -> Result<IssuedKey, ApiKeyError> {
        let now = self.core.clock.now();
        let cap = self.max_lifetime.map(|max| now + max);
        let expires_at = match spec.expiry {
            None => cap,
            Some(Expiry::In(lifetime)) => Some(now + lifetime),
            Some(Expiry::At(instant)) => Some(instant),
        };
        let too_long = matches!((expires_at, cap), (Some(exp), Some(cap)) if exp > cap);
        if spec.owner.is_empty() || expires_at.is_some_and(|exp| exp <= now) || too_long {
            return Err(ApiKeyError::new(ApiKeyErrorKind::InvalidInput));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let key = self.core.format.generate()?;
            let record = ApiKeyRecord {
                id: key.id().to_owned(),
                owner: spec.owner.clone(),
                name: spec.name.clone(),
                scopes: spec.scopes.clone(),
                roles: spec.roles.clone(),
                created_at: now,
                expires_at,
                revoked_at: None,
                last_used_at: None,
                rotated_to: None,
                session_bound: spec.session_bound,
                digest: self.core.hasher.digest(&key.parsed()),
            };
            match self.core.store.create(record.clone()).await {
                Ok(()) => {
                    tracing::info!(
                        target: "portcullis::apikey",
                        event = "api_key_issued",
                        key_id = record.id.as_str(),
                        owner = record.owner.as_str(),
                    );
                    return Ok(IssuedKey { key, record });
                }
                Err(e) if e.kind() == StoreErrorKind::Conflict && attempt < ISSUE_ATTEMPTS => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The record of key `id`.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, ApiKeyError> {
        Ok(self.core.store.find(id).await?.map(Arc::unwrap_or_clone))
    }

    /// Every key of `owner`, oldest first, revoked and expired ones included.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn list(&self, owner: &str) -> Result<Vec<ApiKeyRecord>, ApiKeyError> {
        Ok(self.core.store.list_by_owner(owner).await?)
    }

    /// Revokes key `id` at once. Returns `false` when it was already revoked.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown id; `Store` when the store fails.
    pub async fn revoke(&self, id: &str) -> Result<bool, ApiKeyError> {
        let revoked = self.core.store.revoke(id, self.core.clock.now()).await?;
        if revoked {
            self.events.emit(&AuthEvent::ApiKeyRevoked { key_id: id });
        }
        Ok(revoked)
    }

    /// Revokes key `id` only if `owner` owns it: for self-service endpoints, where a
    /// user must not revoke someone else's key by guessing its id.
    ///
    /// # Errors
    ///
    /// `NotFound` when the key is unknown or owned by someone else (the same error, so
    /// ids cannot be probed); `Store` when the store fails.
    pub async fn revoke_owned(&self, owner: &str, id: &str) -> Result<bool, ApiKeyError> {
        match self.core.store.find(id).await? {
            Some(record) if record.owner == owner => self.revoke(id).await,
            _ => Err(ApiKeyError::new(ApiKeyErrorKind::NotFound)),
        }
    }

    /// Replaces key `id` with a new one carrying the same owner, name, scopes, roles
    /// and lifetime length. The old key keeps working for `grace` (no longer than it
    /// would have anyway), then stops. Returns the new key, this once.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown id; `Inactive` when the key is revoked or expired;
    /// `Conflict` when it was already rotated; `Randomness` or `Store` otherwise.
    pub async fn rotate(&self, id: &str, grace: Duration) -> Result<IssuedKey, ApiKeyError> {
        let now = self.core.clock.now();
        let old = self
            .core
            .store
            .find(id)
            .await?
            .map(Arc::unwrap_or_clone)
            .ok_or_else(|| ApiKeyError::new(ApiKeyErrorKind::NotFound))?;
        if !old.is_active_at(now) {
            return Err(ApiKeyError::new(ApiKeyErrorKind::Inactive));
        }
        if old.rotated_to.is_some() {
            return Err(ApiKeyError::new(ApiKeyErrorKind::Conflict));
        }
        let lifetime = old
            .expires_at
            .map(|exp| exp.duration_since(old.created_at).unwrap_or(Duration::ZERO));
        let key = self.core.format.generate()?;
        let record = ApiKeyRecord {
            id: key.id().to_owned(),
            owner: old.owner,
            name: old.name,
            scopes: old.scopes,
            roles: old.roles,
            created_at: now,
            expires_at: lifetime.map(|d| now + d),
            revoked_at: None,
            last_used_at: None,
            rotated_to: None,
            session_bound: old.session_bound,
            digest: self.core.hasher.digest(&key.parsed()),
        };
        self.core
            .store
            .rotate(KeyRotation {
                old_id: id,
                replacement: record.clone(),
                old_expires_at: now + grace,
                now,
            })
            .await?;
        tracing::info!(
            target: "portcullis::apikey",
            event = "api_key_rotated",
            key_id = id,
            new_key_id = record.id.as_str(),
            grace_secs = grace.as_secs(),
        );
        Ok(IssuedKey { key, record })
    }
}
