//! [`AuthError`]: why a request was refused, and how that becomes a response.
//!
//! Every refusal in Portcullis is an [`AuthError`]. Its [`kind`](AuthError::kind) fixes
//! the HTTP status, the [RFC 6750 §3.1] error code in `WWW-Authenticate`, the stable
//! `code` of the `application/problem+json` body and the gRPC status. Its
//! [`reason`](AuthError::reason) is a finer, machine-readable word for logs and events
//! (`token_expired`, `bad_signature`, …); the client only ever sees a generic
//! description, never a token, key or claim value.
//!
//! [RFC 6750 §3.1]: https://www.rfc-editor.org/rfc/rfc6750#section-3.1

use std::{borrow::Cow, error::Error as StdError, fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

/// The broad class of an [`AuthError`]; it decides the status code and challenge.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthErrorKind {
    /// No credentials were presented: `401` with a challenge and no error code.
    MissingCredentials,
    /// The request is malformed (duplicated or unparsable credentials): `400`
    /// `invalid_request`.
    InvalidRequest,
    /// The credential is invalid, expired, revoked or unknown: `401` `invalid_token`.
    InvalidToken,
    /// Authenticated, but lacking a role or scope: `403` `insufficient_scope`.
    InsufficientScope,
    /// Too many requests: `429`, with `Retry-After` when known.
    RateLimited,
    /// Keys or a backend are not available right now: `503`.
    Unavailable,
    /// The service is misconfigured (for example a guard without an auth layer): `500`.
    Internal,
}

impl AuthErrorKind {
    /// The HTTP status code for this kind.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `code` member of the problem+json body.
    pub fn code(self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The RFC 6750 `error` attribute of the challenge, if this kind has one.
    pub fn bearer_error(self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest => Some("invalid_request"),
            Self::InvalidToken => Some("invalid_token"),
            Self::InsufficientScope => Some("insufficient_scope"),
            _ => None,
        }
    }

    /// The gRPC status code for this kind (UNAUTHENTICATED, PERMISSION_DENIED, …).
    pub fn grpc_status(self) -> u16 {
        match self {
            Self::MissingCredentials | Self::InvalidToken | Self::InvalidRequest => 16,
            Self::InsufficientScope => 7,
            Self::RateLimited => 8,
            Self::Unavailable => 14,
            Self::Internal => 13,
        }
    }

    fn default_description(self) -> &'static str {
        match self {
            Self::MissingCredentials => "authentication is required",
            Self::InvalidRequest => "the request's credentials are malformed",
            Self::InvalidToken => "the credential is invalid",
            Self::InsufficientScope => "the credential lacks the required permission",
            Self::RateLimited => "too many requests",
            Self::Unavailable => "authentication is temporarily unavailable",
            Self::Internal => "the server's authentication is misconfigured",
        }
    }
}

/// Why a request was refused.
///
/// Cheap to clone. The [`Display`](fmt::Display) text is the generic description
/// followed by the reason; neither ever contains a credential.
///
/// ```
/// use portcullis_core::{AuthError, AuthErrorKind};
///
/// let err = AuthError::invalid_token("token_expired").with_description("the token has expired");
/// assert_eq!(err.kind(), AuthErrorKind::InvalidToken);
/// assert_eq!(err.status(), 401);
/// assert_eq!(err.reason(), "token_expired");
/// ```
#[derive(Clone)]
pub struct AuthError {
    kind: AuthErrorKind,
    reason: &'static str,
    description: Option<&'static str>,
    scope: Option<Cow<'static, str>>,
    retry_after: Option<Duration>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl AuthError {
    /// An error of `kind` with a machine-readable `reason` (for logs and events).
    pub fn new(kind: AuthErrorKind, reason: &'static str) -> Self {
        Self {
            kind,
            reason,
            description: None,
            scope: None,
            retry_after: None,
            source: None,
        }
    }

    /// No credentials were presented.
    pub fn missing_credentials() -> Self {
        Self::new(AuthErrorKind::MissingCredentials, "missing_credentials")
    }

    /// A malformed request: `400 invalid_request`.
    pub fn invalid_request(reason: &'static str) -> Self {
        Self::new(AuthErrorKind::InvalidRequest, reason)
    }

    /// An invalid credential: `401 invalid_token`.
    pub fn invalid_token(reason: &'static str) -> Self {
        Self::new(AuthErrorKind::InvalidToken, reason)
    }

    /// Authenticated but lacking `scope` (space-separated scopes, or roles): `403`.
    pub fn insufficient_scope(scope: impl Into<Cow<'static, str>>) -> Self {
        let mut err = Self::new(AuthErrorKind::InsufficientScope, "insufficient_scope");
        let scope = scope.into();
        if !scope.is_empty() {
            err.scope = Some(scope);
        }
        err
    }

    /// Too many requests; `retry_after` becomes the `Retry-After` header.
    pub fn rate_limited(retry_after: Duration) -> Self {
        let mut err = Self::new(AuthErrorKind::RateLimited, "rate_limited");
        err.retry_after = Some(retry_after);
        err
    }

    /// Keys or a backend are unavailable: `503`.
    pub fn unavailable(reason: &'static str) -> Self {
        Self::new(AuthErrorKind::Unavailable, reason)
    }

    /// The service is misconfigured: `500`.
    pub fn internal(reason: &'static str) -> Self {
        Self::new(AuthErrorKind::Internal, reason)
    }

    /// Replaces the generic client-facing description. Keep it generic: it is sent to
    /// the client, so it must never contain a credential or claim value.
    pub fn with_description(mut self, description: &'static str) -> Self {
        self.description = Some(description);
        self
    }

    /// Sets `Retry-After` (for `429` and `503`).
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// Attaches the underlying error, for operators (`Error::source`). It is never
    /// rendered into a response.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The class of error.
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The machine-readable reason, for logs and events.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The generic, client-facing description.
    pub fn description(&self) -> &'static str {
        self.description
            .unwrap_or_else(|| self.kind.default_description())
    }

    /// The scope(s) missing, for `insufficient_scope`.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// How long the client should wait, if known.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// Renders the `WWW-Authenticate` challenge for this error in `realm`, or `None`
    /// when this kind carries no challenge (429, 500, 503).
    ///
    /// Follows [RFC 6750 §3](https://www.rfc-editor.org/rfc/rfc6750#section-3): no
    /// `error` attribute when credentials are missing.
    pub fn challenge(&self, realm: &str) -> Option<HeaderValue> {
        if !matches!(
            self.kind,
            AuthErrorKind::MissingCredentials
                | AuthErrorKind::InvalidRequest
                | AuthErrorKind::InvalidToken
                | AuthErrorKind::InsufficientScope
        ) {
            return None;
        }
        let mut value = String::with_capacity(96);
        value.push_str("Bearer realm=\"");
        push_quoted(&mut value, realm);
        value.push('"');
        if let Some(code) = self.kind.bearer_error() {
            value.push_str(", error=\"");
            value.push_str(code);
            value.push_str("\", error_description=\"");
            push_quoted(&mut value, self.description());
            value.push('"');
        }
        if let Some(scope) = &self.scope {
            value.push_str(", scope=\"");
            push_quoted(&mut value, scope);
            value.push('"');
        }
        HeaderValue::from_str(&value).ok()
    }

    /// The default HTTP rendering: status, RFC 6750 challenge, `Retry-After`,
    /// `Cache-Control: no-store` and an RFC 9457 `application/problem+json` body with a
    /// stable `code`.
    pub fn to_http_response(&self, realm: &str) -> Response<Bytes> {
        let status = self.status();
        let body = problem_json(status, self.kind.code(), self.description());
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge(realm) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        self.insert_retry_after(headers);
        response
    }

    /// The gRPC rendering: a trailers-only response (HTTP 200, `grpc-status` and
    /// `grpc-message` in the headers, empty body), as tonic clients expect.
    pub fn to_grpc_response(&self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::new());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from(self.kind.grpc_status()));
        // The description is ASCII without `%`; percent-encode spaces per the gRPC spec.
        let message = self.description().replace(' ', "%20");
        if let Ok(message) = HeaderValue::from_str(&message) {
            headers.insert("grpc-message", message);
        }
        self.insert_retry_after(headers);
        response
    }

    /// Renders for `parts`: gRPC requests (`content-type: application/grpc*`) get
    /// [`to_grpc_response`](Self::to_grpc_response), everything else
    /// [`to_http_response`](Self::to_http_response).
    pub fn to_response(&self, parts: &http::request::Parts, realm: &str) -> Response<Bytes> {
        if is_grpc(&parts.headers) {
            self.to_grpc_response()
        } else {
            self.to_http_response(realm)
        }
    }

    fn insert_retry_after(&self, headers: &mut HeaderMap) {
        if let Some(wait) = self.retry_after {
            // Round up: a client that waits the advertised seconds must be let in.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
    }

    pub(crate) fn trace(&self) {
        tracing::trace!(
            target: "portcullis::rejection",
            status = self.status().as_u16(),
            code = self.kind.code(),
            reason = self.reason,
            "request rejected"
        );
    }
}

/// Whether the request is a gRPC call (`content-type: application/grpc` or
/// `application/grpc+proto` and the like).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}

/// `value` as a quoted string (RFC 9110 §5.6.4, and an RFC 8941 sf-string): `"` and
/// `\` escaped, characters other than visible ASCII and space dropped, so the result is
/// always a valid header value.
///
/// ```
/// assert_eq!(portcullis_core::quoted_string(r#"a"b"#), r#""a\"b""#);
/// ```
pub fn quoted_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    push_quoted(&mut out, value);
    out.push('"');
    out
}

fn push_quoted(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            // Header values must be visible ASCII; drop anything else rather than fail.
            c if c == ' ' || c.is_ascii_graphic() => out.push(c),
            _ => {}
        }
    }
}

fn problem_json(status: StatusCode, code: &str, detail: &str) -> String {
    let title = status.canonical_reason().unwrap_or("Error");
    serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "code": code,
        "detail": detail,
    })
    .to_string()
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthError")
            .field("kind", &self.kind)
            .field("reason", &self.reason)
            .field("scope", &self.scope)
            .field("retry_after", &self.retry_after)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.reason)
    }
}

impl StdError for AuthError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn www(err: &AuthError) -> String {
        err.challenge("api").unwrap().to_str().unwrap().to_owned()
    }

    #[test]
    fn missing_credentials_challenge_has_no_error_code() {
        assert_eq!(
            www(&AuthError::missing_credentials()),
            r#"Bearer realm="api""#
        );
    }

    #[test]
    fn invalid_token_challenge_names_the_error() {
        let value = www(&AuthError::invalid_token("bad_signature"));
        assert_eq!(
            value,
            r#"Bearer realm="api", error="invalid_token", error_description="the credential is invalid""#
        );
    }

    #[test]
    fn insufficient_scope_challenge_carries_scope() {
        let value = www(&AuthError::insufficient_scope("admin data:write"));
        assert!(value.contains(r#"error="insufficient_scope""#), "{value}");
        assert!(value.ends_with(r#"scope="admin data:write""#), "{value}");
    }

    #[test]
    fn realm_quotes_are_escaped() {
        let value = AuthError::missing_credentials().challenge("a\"b").unwrap();
        assert_eq!(value, r#"Bearer realm="a\"b""#);
    }

    #[test]
    fn problem_body_has_stable_code() {
        let response = AuthError::invalid_token("token_expired").to_http_response("api");
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["code"], "invalid_token");
        assert_eq!(body["status"], 401);
    }

    #[test]
    fn rate_limited_rounds_retry_after_up() {
        let response = AuthError::rate_limited(Duration::from_millis(1500)).to_http_response("api");
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn grpc_rendering_is_trailers_only() {
        let response = AuthError::insufficient_scope("admin").to_grpc_response();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["grpc-status"], "7");
        assert!(response.body().is_empty());
        assert_eq!(
            AuthError::unavailable("jwks").to_grpc_response().headers()["grpc-status"],
            "14"
        );
        assert_eq!(
            AuthError::missing_credentials()
                .to_grpc_response()
                .headers()["grpc-status"],
            "16"
        );
        assert_eq!(
            AuthError::rate_limited(Duration::from_secs(1))
                .to_grpc_response()
                .headers()["grpc-status"],
            "8"
        );
    }
}
