//! [`ApiKeyRecord`]: what a store keeps about a key (never the key itself).

use std::time::{Duration, SystemTime};

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
    /// Whether the key ends when its owner's sessions end (password change or reset,
    /// logout everywhere: [`ApiKeys::end_sessions`](crate::ApiKeys::end_sessions)).
    /// `true` unless the key was made with
    /// [`NewApiKey::outlives_sessions`]; records that predate the field read as `true`.
    #[serde(default = "session_bound_default")]
    pub session_bound: bool,
    /// The digest of the full key.
    pub digest: KeyDigest,
}

fn session_bound_default() -> bool {
    true
}

impl ApiKeyRecord {
    /// Whether the key authenticates at `now`: not revoked and not expired.
    pub fn is_active_at(&self, now: SystemTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| now < exp)
    }
}

/// What to make a key for: its owner, then a label, grants and lifetime. Passed to
/// [`ApiKeys::issue`](crate::ApiKeys::issue).
///
/// ```
/// use std::time::Duration;
/// use portcullis_apikey::NewApiKey;
///
/// let spec = NewApiKey::owned_by("svc-billing")
///     .name("billing exporter")
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
    pub(crate) expiry: Option<Expiry>,
    pub(crate) session_bound: bool,
}

/// When a new key stops working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// This long after it is made.
    In(Duration),
    /// At this instant.
    At(SystemTime),
}

impl NewApiKey {
    /// A key owned by `owner`, the subject requests made with it act as
    /// ([`Principal::subject`](portcullis_core::Principal::subject)). No label, no
    /// grants, no expiry until set; it ends with its owner's sessions unless
    /// [`outlives_sessions`](Self::outlives_sessions) says otherwise.
    pub fn owned_by(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            name: String::new(),
            scopes: Vec::new(),
            roles: Vec::new(),
            expiry: None,
            session_bound: true,
        }
    }

    /// Keeps the key working when its owner's sessions end (a password reset, logout
    /// everywhere). By default a key ends with them, so a stolen session cannot turn
    /// into a credential that outlives the owner's "sign me out everywhere"; opt out
    /// only for keys a person deliberately made to outlast their sessions (a CI key).
    pub fn outlives_sessions(mut self) -> Self {
        self.session_bound = false;
        self
    }

    /// Sets the human label ("CI deploy key"), shown in listings only.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
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

    /// Lets the key expire `lifetime` after it is made. Rotation gives the replacement
    /// the same lifetime.
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expiry = Some(Expiry::In(lifetime));
        self
    }

    /// Lets the key expire at `instant`. Rotation gives the replacement the lifetime
    /// this key had (from its creation to `instant`).
    pub fn expires_at(mut self, instant: SystemTime) -> Self {
        self.expiry = Some(Expiry::At(instant));
        self
    }
}
