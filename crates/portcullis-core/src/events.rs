//! Security events: what every Portcullis layer reports, and where it goes.
//!
//! Layers describe what happened as an [`AuthEvent`] and hand it to an [`EventSink`].
//! The default sink, [`TracingSink`], emits structured `tracing` events under the
//! target `portcullis::event`. Events carry subjects, ids and reasons, never a token,
//! key, password or other secret.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use portcullis_core::{AuthEvent, Events};
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let log = seen.clone();
//! let events = Events::new(move |event: &AuthEvent<'_>| {
//!     log.lock().unwrap().push(event.name());
//! });
//! events.emit(&AuthEvent::RefreshReuseDetected { subject: "alice", family: "f1" });
//! assert_eq!(*seen.lock().unwrap(), ["refresh_reuse_detected"]);
//! ```

use std::{fmt, sync::Arc, time::Duration};

use crate::{AuthError, Principal};

/// Something security-relevant that happened.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum AuthEvent<'a> {
    /// A request was authenticated.
    Authenticated {
        /// Who.
        principal: &'a Principal,
        /// The request path.
        path: &'a str,
    },
    /// A request was refused.
    Rejected {
        /// Why (kind and machine-readable reason; never the credential).
        error: &'a AuthError,
        /// The request path.
        path: &'a str,
    },
    /// A request was throttled by a rate limit.
    Throttled {
        /// The policy's name.
        policy: &'a str,
        /// What the limit was keyed on (`ip`, `account`, `subject`, …).
        key_kind: &'a str,
        /// How long the client must wait.
        retry_after: Duration,
    },
    /// A login attempt failed.
    LoginFailed {
        /// Which limit bucket counted it (`ip`, `account`).
        key_kind: &'a str,
    },
    /// An already-used refresh token was presented: its whole family was revoked.
    RefreshReuseDetected {
        /// The family's subject.
        subject: &'a str,
        /// The family id.
        family: &'a str,
    },
    /// A token or token family was revoked.
    TokenRevoked {
        /// The subject.
        subject: &'a str,
        /// The token id (`jti`) or family id.
        token_id: &'a str,
    },
    /// All of a subject's sessions and tokens issued before now were revoked.
    SubjectRevoked {
        /// The subject.
        subject: &'a str,
    },
    /// An API key was revoked.
    ApiKeyRevoked {
        /// The key's public id.
        key_id: &'a str,
    },
    /// A signing or verification key set changed.
    KeysRotated {
        /// Where the keys come from (issuer or JWKS URL).
        source: &'a str,
        /// How many keys the set now holds.
        keys: usize,
    },
}

impl AuthEvent<'_> {
    /// A short, stable name for the event (`authenticated`, `rejected`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Authenticated { .. } => "authenticated",
            Self::Rejected { .. } => "rejected",
            Self::Throttled { .. } => "throttled",
            Self::LoginFailed { .. } => "login_failed",
            Self::RefreshReuseDetected { .. } => "refresh_reuse_detected",
            Self::TokenRevoked { .. } => "token_revoked",
            Self::SubjectRevoked { .. } => "subject_revoked",
            Self::ApiKeyRevoked { .. } => "api_key_revoked",
            Self::KeysRotated { .. } => "keys_rotated",
        }
    }
}

/// Receives [`AuthEvent`]s. Closures `Fn(&AuthEvent<'_>)` are sinks too.
pub trait EventSink: Send + Sync + 'static {
    /// Handles one event. Called on the request path: keep it quick.
    fn emit(&self, event: &AuthEvent<'_>);
}

impl<F> EventSink for F
where
    F: Fn(&AuthEvent<'_>) + Send + Sync + 'static,
{
    fn emit(&self, event: &AuthEvent<'_>) {
        self(event)
    }
}

/// The default sink: structured `tracing` events with target `portcullis::event`.
///
/// Successes are `DEBUG`, client rejections `INFO`, throttling and revocations `INFO`,
/// refresh-token reuse `WARN`, server-side failures (`5xx`) `WARN`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn emit(&self, event: &AuthEvent<'_>) {
        const T: &str = "portcullis::event";
        match event {
            AuthEvent::Authenticated { principal, path } => tracing::debug!(
                target: T,
                event = "authenticated",
                subject = principal.subject(),
                kind = principal.kind().as_str(),
                path,
            ),
            AuthEvent::Rejected { error, path } if error.status().is_server_error() => {
                tracing::warn!(
                    target: T,
                    event = "rejected",
                    status = error.status().as_u16(),
                    code = error.kind().code(),
                    reason = error.reason(),
                    path,
                )
            }
            AuthEvent::Rejected { error, path } => tracing::info!(
                target: T,
                event = "rejected",
                status = error.status().as_u16(),
                code = error.kind().code(),
                reason = error.reason(),
                path,
            ),
            AuthEvent::Throttled {
                policy,
                key_kind,
                retry_after,
            } => tracing::info!(
                target: T,
                event = "throttled",
                policy,
                key_kind,
                retry_after_ms = retry_after.as_millis() as u64,
            ),
            AuthEvent::LoginFailed { key_kind } => {
                tracing::info!(target: T, event = "login_failed", key_kind)
            }
            AuthEvent::RefreshReuseDetected { subject, family } => tracing::warn!(
                target: T,
                event = "refresh_reuse_detected",
                subject,
                family,
            ),
            AuthEvent::TokenRevoked { subject, token_id } => {
                tracing::info!(target: T, event = "token_revoked", subject, token_id)
            }
            AuthEvent::SubjectRevoked { subject } => {
                tracing::info!(target: T, event = "subject_revoked", subject)
            }
            AuthEvent::ApiKeyRevoked { key_id } => {
                tracing::info!(target: T, event = "api_key_revoked", key_id)
            }
            AuthEvent::KeysRotated { source, keys } => {
                tracing::info!(target: T, event = "keys_rotated", source, keys)
            }
        }
    }
}

/// A shared handle to an [`EventSink`]; cheap to clone. Defaults to [`TracingSink`].
#[derive(Clone)]
pub struct Events(Arc<dyn EventSink>);

impl Events {
    /// Wraps a sink.
    pub fn new(sink: impl EventSink) -> Self {
        Self(Arc::new(sink))
    }

    /// Emits one event (and, with the `metrics` feature, counts reuse detections,
    /// revocations and login failures; see [`crate::metrics`]).
    #[inline]
    pub fn emit(&self, event: &AuthEvent<'_>) {
        crate::metrics::hooks::event(event);
        self.0.emit(event)
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new(TracingSink)
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Events(..)")
    }
}
