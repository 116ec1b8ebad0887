//! [`JwksError`]: why keys could not be fetched, discovered or used.

use std::{error::Error as StdError, fmt, sync::Arc};

/// What went wrong fetching or reading a provider's documents. Returned by
/// [`JwksError::kind`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwksErrorKind {
    /// A URL (issuer, JWKS URL, `jwks_uri`) does not parse, is not `https`/`http`,
    /// carries user info, or an issuer carries a query or fragment.
    InvalidUrl,
    /// Plain `http` to a host that is not loopback, without
    /// [`danger_allow_http`](crate::jwks::RemoteKeysBuilder::danger_allow_http).
    InsecureUrl,
    /// The provider could not be reached (DNS, connection refused, TLS failure).
    Unreachable,
    /// The provider did not answer within the connect or total timeout.
    Timeout,
    /// The provider redirected to another origin (or too many times); not followed.
    Redirect,
    /// The provider answered with a status other than `200 OK`.
    Status,
    /// The document is larger than the configured cap; reading stopped there.
    TooLarge,
    /// The document is not the JSON object expected (or has duplicate members).
    Malformed,
    /// The discovery document's `issuer` is not exactly the configured issuer.
    IssuerMismatch,
    /// The discovery document has no usable `jwks_uri`.
    NoJwksUri,
    /// The JWK Set holds no key usable for verification (each refusal is logged).
    NoUsableKeys,
    /// No tokio runtime to run the background refresh on.
    NoRuntime,
}

impl JwksErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::InvalidUrl => "invalid URL",
            Self::InsecureUrl => "plain http is only allowed to loopback hosts",
            Self::Unreachable => "the provider is unreachable",
            Self::Timeout => "the provider timed out",
            Self::Redirect => "redirect refused",
            Self::Status => "unexpected HTTP status",
            Self::TooLarge => "the document is too large",
            Self::Malformed => "the document is malformed",
            Self::IssuerMismatch => "the discovered issuer differs from the configured one",
            Self::NoJwksUri => "the discovery document has no jwks_uri",
            Self::NoUsableKeys => "the JWK Set has no usable verification key",
            Self::NoRuntime => "no tokio runtime",
        }
    }
}

/// Keys could not be fetched, discovered or used. See [`kind`](Self::kind).
///
/// The message names the URL (without its query) and the problem; never a key or a
/// document's content.
#[derive(Clone)]
pub struct JwksError {
    kind: JwksErrorKind,
    detail: &'static str,
    url: Option<Box<str>>,
    status: Option<u16>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl JwksError {
    pub(crate) fn new(kind: JwksErrorKind, detail: &'static str) -> Self {
        Self {
            kind,
            detail,
            url: None,
            status: None,
            source: None,
        }
    }

    pub(crate) fn with_url(mut self, url: &str) -> Self {
        // A query may carry a secret; never print it.
        let shown = url.split(['?', '#']).next().unwrap_or_default();
        self.url = Some(shown.into());
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> JwksErrorKind {
        self.kind
    }

    /// The URL concerned (query stripped), when there is one.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The HTTP status, for [`JwksErrorKind::Status`].
    pub fn status(&self) -> Option<u16> {
        self.status
    }
}

impl fmt::Debug for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksError")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .field("url", &self.url)
            .field("status", &self.status)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)?;
        if let Some(status) = self.status {
            write!(f, " (status {status})")?;
        }
        if let Some(url) = &self.url {
            write!(f, " [{url}]")?;
        }
        Ok(())
    }
}

impl StdError for JwksError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
