//! [`ApiKeyRecord`]: what a store keeps about a key (never the key itself).

use std::{fmt, ops::Deref, sync::OnceLock, time::SystemTime};

use portcullis_core::Principal;
use serde::{Deserialize, Serialize};

use crate::KeyDigest;

/// Everything a store keeps about one API key: its public id, owner, grants, lifetime,
/// and the [`KeyDigest`] of the key (never the key).
///
/// Fields are public so that backends can map rows to records. Serializes with serde
/// (times as `SystemTime`, the digest as hex) for backends that store documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The public key id (the 10 characters after the prefix). Unique in a store.
    pub id: String,
    /// The subject that owns the key; becomes [`Principal::subject`](portcullis_core::Principal::subject).
    pub owner: String,
    /// A human label ("CI deploy key").
    pub name: String,
    /// Scopes granted to requests made with the key.
    pub scopes: Vec<String>,
    /// Roles granted to requests made with the key.
    pub roles: Vec<String>,
    /// When the key was made.
    pub created_at: SystemTime,
    /// When the key stops working, if ever. Rotation shortens it to the grace expiry.
    pub expires_at: Option<SystemTime>,
    /// When the key was revoked; a revoked key never works again.
    pub revoked_at: Option<SystemTime>,
    /// When the key last authenticated a request (updated at most once a minute).
    pub last_used_at: Option<SystemTime>,
    /// The id of the key that replaced this one, once rotated.
    pub rotated_to: Option<String>,
    /// The digest of the full key.
    pub digest: KeyDigest,
}

impl ApiKeyRecord {
    /// Whether the key authenticates at `now`: not revoked and not expired.
    pub fn is_active_at(&self, now: SystemTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| now < exp)
    }
}

/// What to make a key for: owner, label, grants and lifetime. Passed to
/// [`ApiKeys::issue`](crate::ApiKeys::issue).
///
/// ```
/// use std::time::Duration;
/// use portcullis_apikey::NewApiKey;
///
/// let spec = NewApiKey::new("svc-billing", "billing exporter")
///     .scopes(["invoices:read"])
///     .roles(["service"])
///     .expires_in(Duration::from_secs(90 * 24 * 3600));
/// # let _ = spec;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct NewApiKey {
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) expires_in: Option<std::time::Duration>,
}

impl NewApiKey {
    /// A key for `owner`, labelled `name`, with no grants and no expiry.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            name: name.into(),
            scopes: Vec::new(),
            roles: Vec::new(),
            expires_in: None,
        }
    }

    /// Sets the scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the roles.
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Lets the key expire `lifetime` after it is made.
    pub fn expires_in(mut self, lifetime: std::time::Duration) -> Self {
        self.expires_in = Some(lifetime);
        self
    }
}

/// An [`ApiKeyRecord`] as an in-process store shares it with the authenticator (see
/// [`ApiKeyStore::find_now`](crate::ApiKeyStore::find_now)), with a slot where the
/// authenticator keeps the [`Principal`] it derives from the record.
///
/// A store that hands out the same `Arc<SharedRecord>` while a record is unchanged
/// (as [`MemoryStore`](crate::MemoryStore) does) lets repeated requests with one key
/// reuse one principal: a reference-count increment instead of a dozen allocations.
/// Changing the record through [`record_mut`](Self::record_mut), or cloning it (as
/// `Arc::make_mut` does), empties the slot, so a principal never outlives the record
/// version it was made from.
pub struct SharedRecord {
    record: ApiKeyRecord,
    principal: OnceLock<Principal>,
}

impl SharedRecord {
    /// Wraps a record, with an empty principal slot.
    pub fn new(record: ApiKeyRecord) -> Self {
        Self {
            record,
            principal: OnceLock::new(),
        }
    }

    /// The record.
    pub fn record(&self) -> &ApiKeyRecord {
        &self.record
    }

    /// The record, for changing it; empties the principal slot.
    pub fn record_mut(&mut self) -> &mut ApiKeyRecord {
        self.principal = OnceLock::new();
        &mut self.record
    }

    /// Unwraps the record.
    pub fn into_record(self) -> ApiKeyRecord {
        self.record
    }

    pub(crate) fn principal_or_init(
        &self,
        init: impl FnOnce(&ApiKeyRecord) -> Principal,
    ) -> Principal {
        self.principal.get_or_init(|| init(&self.record)).clone()
    }
}

impl From<ApiKeyRecord> for SharedRecord {
    fn from(record: ApiKeyRecord) -> Self {
        Self::new(record)
    }
}

impl Clone for SharedRecord {
    fn clone(&self) -> Self {
        Self::new(self.record.clone())
    }
}

impl Deref for SharedRecord {
    type Target = ApiKeyRecord;
    fn deref(&self) -> &ApiKeyRecord {
        &self.record
    }
}

impl fmt::Debug for SharedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedRecord").field(&self.record).finish()
    }
}
