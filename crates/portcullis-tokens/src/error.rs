//! The crate's error type.

use std::{error::Error as StdError, fmt};

/// What went wrong, for callers that branch on it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A configuration value is out of range.
    Config,
    /// A key could not be generated, parsed or used, or is too weak.
    Key,
    /// Signing an access token failed.
    Signing,
    /// A presented token is not in the expected format (refused without a store look-up).
    Malformed,
    /// A presented refresh or reset token is not known to the store.
    Unknown,
    /// The token expired (idle or absolute lifetime).
    Expired,
    /// The token's family was revoked (logout, reuse detected earlier, logout-everywhere).
    Revoked,
    /// An already-used refresh token was presented: its whole family has now been revoked.
    Reused,
    /// The token belongs to another client.
    ClientMismatch,
    /// The subject's sessions were ended (its [`SessionStamp`](crate::SessionStamp)
    /// moved) after this login began: no session was opened.
    SessionsEnded,
    /// The backing store failed.
    Store,
}

impl ErrorKind {
    /// A short, stable name (`malformed`, `reused`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Key => "key",
            Self::Signing => "signing",
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Reused => "reused",
            Self::ClientMismatch => "client_mismatch",
            Self::SessionsEnded => "sessions_ended",
            Self::Store => "store",
        }
    }

    /// Whether the client is at fault (an OAuth token endpoint answers
    /// `400 invalid_grant`); `false` for server-side failures (`Config`, `Key`, `Signing`, `Store`).
    pub fn is_client_error(self) -> bool {
        !matches!(self, Self::Config | Self::Key | Self::Signing | Self::Store)
    }
}

/// An error from issuing, refreshing or revoking tokens. Never contains a secret.
pub struct Error {
    kind: ErrorKind,
    message: &'static str,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Error {
    /// An error of `kind` with a short lowercase message.
    pub fn new(kind: ErrorKind, message: &'static str) -> Self {
        Self {
            kind,
            message,
            source: None,
        }
    }

    /// A store failure wrapping its cause (for [`RefreshStore`](crate::RefreshStore)
    /// and [`RevocationStore`](crate::RevocationStore) implementations).
    pub fn store(source: impl StdError + Send + Sync + 'static) -> Self {
        Self::new(ErrorKind::Store, "token store failed").with_source(source)
    }

    /// Attaches a cause.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
