//! [`JwksError`]: why keys could not be fetched, discovered or used.

use std::{borrow::Cow, error::Error as StdError, fmt, sync::Arc};

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
    /// The issuer publishes no metadata: neither its OpenID discovery document nor
    /// its RFC 8414 metadata exists (both answered `404 Not Found`). Give its JWKS URL
    /// instead ([`RemoteKeys::from_jwks_url`](crate::jwks::RemoteKeys::from_jwks_url)).
    NoDiscoveryDocument,
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

/// Keys could not be fetched, discovered or used. See [`kind`](Self::kind).
///
/// Displays as one short sentence naming the URL concerned and the problem (and,
/// where there is one, what to do instead); the underlying failure (a refused
/// connection, a TLS error) is its [`source`](StdError::source). Neither a key, a
/// document's content, a URL's query nor its user info is ever shown.
///
/// ```
/// # async fn run() {
/// use portcullis_jwt::jwks::RemoteKeys;
///
/// if let Err(e) = RemoteKeys::discover("https://id.example.com").await {
///     // "https://id.example.com/.well-known/openid-configuration: the provider is
///     // unreachable", then a "caused by" line per cause (a refused connection...).
///     eprintln!("{e}");
///     let mut cause = std::error::Error::source(&e);
///     while let Some(c) = cause {
///         eprintln!("  caused by: {c}");
///         cause = c.source();
///     }
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct JwksError {
    kind: JwksErrorKind,
    detail: Cow<'static, str>,
    url: Option<Box<str>>,
    status: Option<u16>,
    hint: Option<&'static str>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl JwksError {
    /// An error of `kind`; `detail` says what happened, in lowercase words that read
    /// after the URL (`"<url>: <detail>"`).
    pub(crate) fn new(kind: JwksErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            url: None,
            status: None,
            hint: None,
            source: None,
        }
    }

    /// The URL concerned, shown without its query, fragment or user info.
    pub(crate) fn with_url(mut self, url: &str) -> Self {
        self.url = Some(shown_url(url).into());
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// What to do instead, shown after the problem.
    pub(crate) fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
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

    /// The URL concerned (without query, fragment or user info), when there is one.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The HTTP status, for [`JwksErrorKind::Status`] and
    /// [`JwksErrorKind::NoDiscoveryDocument`].
    pub fn status(&self) -> Option<u16> {
        self.status
    }
}

/// `url` without its query and fragment (either may carry a secret) nor its user
/// info.
pub(crate) fn shown_url(url: &str) -> Cow<'_, str> {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Cow::Borrowed(url);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => Cow::Owned(format!("{scheme}://{}", &rest[at + 1..])),
        None => Cow::Borrowed(url),
    }
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(url) = &self.url {
            write!(f, "{url}: ")?;
        }
        f.write_str(&self.detail)?;
        if let Some(hint) = self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// One line: the kind, the message and the causes' messages, never a nested dump.
impl fmt::Debug for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut causes = Vec::new();
        let mut cause = StdError::source(self);
        while let Some(c) = cause {
            causes.push(c.to_string());
            cause = c.source();
        }
        f.debug_struct("JwksError")
            .field("kind", &self.kind)
            .field("message", &self.to_string())
            .field("caused_by", &causes)
            .finish()
    }
}

impl StdError for JwksError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// Shows an error and its causes as one line, `error: cause: cause`, for logs.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_sentence_with_the_url_first_and_the_hint_last() {
        let e = JwksError::new(JwksErrorKind::Status, "answered 503 Service Unavailable")
            .with_url("https://id.example/jwks?secret=1")
            .with_status(503)
            .with_hint("try later");
        assert_eq!(
            e.to_string(),
            "https://id.example/jwks: answered 503 Service Unavailable; try later"
        );
        assert_eq!(e.status(), Some(503));
    }

    #[test]
    fn display_leaves_causes_to_source_and_debug_lists_them_flat() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = JwksError::new(JwksErrorKind::Unreachable, "could not connect")
            .with_url("http://127.0.0.1:1/jwks")
            .with_source(io);
        assert_eq!(e.to_string(), "http://127.0.0.1:1/jwks: could not connect");
        assert_eq!(StdError::source(&e).unwrap().to_string(), "refused");
        assert_eq!(
            format!("{e:?}"),
            r#"JwksError { kind: Unreachable, message: "http://127.0.0.1:1/jwks: could not connect", caused_by: ["refused"] }"#
        );
        assert_eq!(
            Chain(&e).to_string(),
            "http://127.0.0.1:1/jwks: could not connect: refused"
        );
    }

    #[test]
    fn urls_are_shown_without_query_fragment_or_user_info() {
        for (raw, shown) in [
            ("https://id.example/jwks?k=v#f", "https://id.example/jwks"),
            ("https://user:pw@id.example/jwks", "https://id.example/jwks"),
            ("https://user@id.example", "https://id.example"),
            ("https://id.example/a@b", "https://id.example/a@b"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(shown_url(raw), shown, "{raw}");
        }
    }
}
