//! [`ApiKeyStore`]: where key records live, and [`MemoryStore`], the in-memory default.

use std::{error::Error as StdError, fmt, future::Future, pin::Pin, sync::Arc, time::SystemTime};

use dashmap::{DashMap, mapref::entry::Entry};
use portcullis_core::MaybeReady;

use crate::ApiKeyRecord;

/// The boxed future of the [`ApiKeyStore`] methods that manage keys (create, list,
/// revoke, rotate).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where API-key records live. Object safe: `Arc<dyn ApiKeyStore>` is a store too.
///
/// The two methods the authenticator calls on every request, [`find`](Self::find) and
/// [`record_last_use`](Self::record_last_use), return a [`MaybeReady`]: a store that
/// answers without I/O (memory, a local cache) returns [`MaybeReady::Ready`]; a network
/// backend returns [`MaybeReady::pending`] with a `'static` future (clone the pool or
/// connection handle and the id into it). The other methods manage keys and return a
/// [`StoreFuture`].
///
/// # Contract for backends
///
/// - Records are keyed by their public `id`, which is unique: [`create`](Self::create)
///   fails with [`StoreErrorKind::Conflict`] when the id exists (the caller then retries
///   with a new key).
/// - A store never sees a key, only its [`KeyDigest`](crate::KeyDigest); it does not
///   compare digests (the authenticator does, in constant time).
/// - [`find`](Self::find) answers the record as it is now: a revocation, rotation or
///   expiry change is seen by the next request.
/// - [`revoke`](Self::revoke) and [`rotate`](Self::rotate) are atomic per key: two
///   concurrent rotations of one key give at most one success; a revoked key stays
///   revoked.
/// - [`record_last_use`](Self::record_last_use) is advisory and called at most about
///   once per key per minute per process (the authenticator debounces); a failure
///   there never refuses a request.
/// - Store failures are [`StoreErrorKind::Backend`]: the authenticator answers `503`,
///   never `401`, so an outage does not look like a bad key.
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Stores a new record.
    ///
    /// # Errors
    ///
    /// `Conflict` when a record with that id exists; `Backend` when the store fails.
    fn create(&self, record: ApiKeyRecord) -> StoreFuture<'_, ()>;

    /// The record with public id `id`, revoked and expired ones included.
    ///
    /// # Errors
    ///
    /// `Backend` when the store fails.
    fn find(&self, id: &str) -> MaybeReady<Result<Option<Arc<ApiKeyRecord>>, StoreError>>;

    /// Every record owned by `owner`, revoked and expired ones included, oldest first.
    fn list_by_owner<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<ApiKeyRecord>>;

    /// Marks the key revoked at `at`. Returns `true` when it was not revoked before.
    ///
    /// # Errors
    ///
    /// `NotFound` when no record has that id.
    fn revoke<'a>(&'a self, id: &'a str, at: SystemTime) -> StoreFuture<'a, bool>;

    /// Atomically stores `rotation.replacement` and marks the key `rotation.old_id` as
    /// rotated to it, setting its expiry to `rotation.old_expires_at` (the end of the
    /// grace period) if that is sooner than its current expiry.
    ///
    /// # Errors
    ///
    /// `NotFound` when `old_id` is unknown; `Inactive` when it is revoked or already
    /// expired at `now`; `Conflict` when it was already rotated or `replacement.id`
    /// exists. On error nothing is changed.
    fn rotate<'a>(&'a self, rotation: KeyRotation<'a>) -> StoreFuture<'a, ()>;

    /// Records that the key authenticated a request at `at`, unless a later use is
    /// recorded already. Unknown ids are ignored.
    ///
    /// # Errors
    ///
    /// `Backend` when the store fails (the authenticator logs it and lets the request
    /// through).
    fn record_last_use(&self, id: &str, at: SystemTime) -> MaybeReady<Result<(), StoreError>>;
}

impl<S: ApiKeyStore + ?Sized> ApiKeyStore for Arc<S> {
    fn create(&self, record: ApiKeyRecord) -> StoreFuture<'_, ()> {
        (**self).create(record)
    }
    fn find(&self, id: &str) -> MaybeReady<Result<Option<Arc<ApiKeyRecord>>, StoreError>> {
        (**self).find(id)
    }
    fn list_by_owner<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<ApiKeyRecord>> {
        (**self).list_by_owner(owner)
    }
    fn revoke<'a>(&'a self, id: &'a str, at: SystemTime) -> StoreFuture<'a, bool> {
        (**self).revoke(id, at)
    }
    fn rotate<'a>(&'a self, rotation: KeyRotation<'a>) -> StoreFuture<'a, ()> {
        (**self).rotate(rotation)
    }
    fn record_last_use(&self, id: &str, at: SystemTime) -> MaybeReady<Result<(), StoreError>> {
        (**self).record_last_use(id, at)
    }
}

/// What [`ApiKeyStore::rotate`] is asked to do.
#[derive(Debug, Clone)]
pub struct KeyRotation<'a> {
    /// The public id of the key being replaced.
    pub old_id: &'a str,
    /// The record of the new key, stored if the rotation succeeds.
    pub replacement: ApiKeyRecord,
    /// The end of the old key's grace period: its new expiry, unless it expires sooner.
    pub old_expires_at: SystemTime,
    /// The current time; the old key must still be active at it.
    pub now: SystemTime,
}

/// Why a store call failed.
pub struct StoreError {
    kind: StoreErrorKind,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

/// The class of a [`StoreError`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// No record has that id.
    NotFound,
    /// The id exists already, or the key was already rotated.
    Conflict,
    /// The key is revoked or expired.
    Inactive,
    /// The backend failed (connection, query, decoding).
    Backend,
}

impl StoreError {
    /// An error of `kind`.
    pub fn new(kind: StoreErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// A backend failure caused by `source`. Make sure `source` carries no key
    /// material (it never should: stores only see digests).
    pub fn backend(source: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            kind: StoreErrorKind::Backend,
            source: Some(Box::new(source)),
        }
    }

    /// The class of error.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            StoreErrorKind::NotFound => "api key not found",
            StoreErrorKind::Conflict => "conflicting api key write",
            StoreErrorKind::Inactive => "api key is revoked or expired",
            StoreErrorKind::Backend => "api key store failed",
        })
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// The in-memory [`ApiKeyStore`], on a sharded [`DashMap`]. The default for a single
/// process; records are lost on restart.
///
/// [`find`](ApiKeyStore::find) and [`record_last_use`](ApiKeyStore::record_last_use)
/// answer at once ([`MaybeReady::Ready`]); a lookup takes one shard read lock and
/// allocates nothing. Writes replace a record's `Arc` rather than change the shared
/// one. [`list_by_owner`](ApiKeyStore::list_by_owner) scans every record.
///
/// Cloning a `MemoryStore` shares the records.
#[derive(Clone, Default)]
pub struct MemoryStore {
    // Looked up by ids that clients send: a hash seeded at random per store.
    records: Arc<DashMap<Box<str>, Arc<ApiKeyRecord>, foldhash::fast::RandomState>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records the store holds (revoked and expired ones included).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn insert(&self, record: ApiKeyRecord) -> Result<(), StoreError> {
        match self.records.entry(record.id.as_str().into()) {
            Entry::Occupied(_) => Err(StoreError::new(StoreErrorKind::Conflict)),
            Entry::Vacant(slot) => {
                slot.insert(Arc::new(record));
                Ok(())
            }
        }
    }

    fn mark_revoked(&self, id: &str, at: SystemTime) -> Result<bool, StoreError> {
        let mut slot = self
            .records
            .get_mut(id)
            .ok_or(StoreError::new(StoreErrorKind::NotFound))?;
        if slot.revoked_at.is_some() {
            return Ok(false);
        }
        Arc::make_mut(&mut *slot).revoked_at = Some(at);
        Ok(true)
    }

    fn mark_rotated(&self, rotation: KeyRotation<'_>) -> Result<(), StoreError> {
        let (new_id, grace_end) = (rotation.replacement.id.clone(), rotation.old_expires_at);
        // Reserve the new id first: nobody knows its key yet, so the record is inert
        // until we return. Never hold two shard locks at once.
        self.insert(rotation.replacement)?;
        let outcome = match self.records.get_mut(rotation.old_id) {
            None => Err(StoreError::new(StoreErrorKind::NotFound)),
            Some(mut slot) => {
                if !slot.is_active_at(rotation.now) {
                    Err(StoreError::new(StoreErrorKind::Inactive))
                } else if slot.rotated_to.is_some() {
                    Err(StoreError::new(StoreErrorKind::Conflict))
                } else {
                    let record = Arc::make_mut(&mut *slot);
                    record.rotated_to = Some(new_id.clone());
                    record.expires_at = Some(match record.expires_at {
                        Some(exp) if exp < grace_end => exp,
                        _ => grace_end,
                    });
                    Ok(())
                }
            }
        };
        if outcome.is_err() {
            self.records.remove(new_id.as_str());
        }
        outcome
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("records", &self.records.len())
            .finish()
    }
}

fn ready<'a, T: Send + 'a>(result: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(result))
}

impl ApiKeyStore for MemoryStore {
    fn create(&self, record: ApiKeyRecord) -> StoreFuture<'_, ()> {
        ready(self.insert(record))
    }

    fn find(&self, id: &str) -> MaybeReady<Result<Option<Arc<ApiKeyRecord>>, StoreError>> {
        MaybeReady::Ready(Ok(self.records.get(id).map(|r| Arc::clone(&r))))
    }

    fn list_by_owner<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<ApiKeyRecord>> {
        let mut list: Vec<ApiKeyRecord> = self
            .records
            .iter()
            .filter(|r| r.owner == owner)
            .map(|r| ApiKeyRecord::clone(&r))
            .collect();
        list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        ready(Ok(list))
    }

    fn revoke<'a>(&'a self, id: &'a str, at: SystemTime) -> StoreFuture<'a, bool> {
        ready(self.mark_revoked(id, at))
    }

    fn rotate<'a>(&'a self, rotation: KeyRotation<'a>) -> StoreFuture<'a, ()> {
        ready(self.mark_rotated(rotation))
    }

    fn record_last_use(&self, id: &str, at: SystemTime) -> MaybeReady<Result<(), StoreError>> {
        if let Some(mut slot) = self.records.get_mut(id)
            && slot.last_used_at.is_none_or(|t| t < at)
        {
            Arc::make_mut(&mut *slot).last_used_at = Some(at);
        }
        MaybeReady::Ready(Ok(()))
    }
}
