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
    /// A DPoP proof is missing, malformed or does not fit the request or the token:
    /// `401` `invalid_dpop_proof` ([RFC 9449 §7.1]).
    ///
    /// [RFC 9449 §7.1]: https://www.rfc-editor.org/rfc/rfc9449#section-7.1
    InvalidDpopProof,
    /// The DPoP proof must carry a nonce the server issued: `401` `use_dpop_nonce`, the
    /// nonce to use in the `DPoP-Nonce` header ([RFC 9449 §9]).
    ///
    /// [RFC 9449 §9]: https://www.rfc-editor.org/rfc/rfc9449#section-9
    UseDpopNonce,
    /// Authenticated, but lacking a scope: `403` `insufficient_scope`, the missing
    /// scope in the challenge's `scope` attribute.
    InsufficientScope,
    /// Authenticated, but lacking a role: `403`, problem `code` `insufficient_role`.
    /// The challenge says `insufficient_scope` (RFC 6750's one code for a `403`) with no
    /// `scope` attribute, since a role is no OAuth scope.
    InsufficientRole,
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
            Self::MissingCredentials
            | Self::InvalidToken
            | Self::InvalidDpopProof
            | Self::UseDpopNonce => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope | Self::InsufficientRole => StatusCode::FORBIDDEN,
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
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InsufficientScope => "insufficient_scope",
            Self::InsufficientRole => "insufficient_role",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The RFC 6750 (or RFC 9449) `error` attribute of the challenge, if this kind
    /// has one.
    pub fn bearer_error(self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest => Some("invalid_request"),
            Self::InvalidToken => Some("invalid_token"),
            Self::InvalidDpopProof => Some("invalid_dpop_proof"),
            Self::UseDpopNonce => Some("use_dpop_nonce"),
            Self::InsufficientScope | Self::InsufficientRole => Some("insufficient_scope"),
            _ => None,
        }
    }

    /// The gRPC status code for this kind (UNAUTHENTICATED, PERMISSION_DENIED, …).
    pub fn grpc_status(self) -> u16 {
        match self {
            Self::MissingCredentials
            | Self::InvalidToken
            | Self::InvalidRequest
            | Self::InvalidDpopProof
            | Self::UseDpopNonce => 16,
            Self::InsufficientScope | Self::InsufficientRole => 7,
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
            Self::InvalidDpopProof => "the DPoP proof is invalid",
            Self::UseDpopNonce => "the DPoP proof must carry the server's nonce",
            Self::InsufficientScope => "the credential lacks a required scope",
            Self::InsufficientRole => "the credential lacks a required role",
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
    role: Option<Cow<'static, str>>,
    retry_after: Option<Duration>,
    /// Rarely set, so kept behind one thin pointer: the source and what DPoP adds.
    extra: Option<Arc<Extra>>,
}

/// The less common parts of an error.
#[derive(Debug, Clone, Default)]
struct Extra {
    source: Option<Arc<dyn StdError + Send + Sync>>,
    /// The algorithms DPoP proofs may use: the challenge is `DPoP`, not `Bearer`.
    dpop_algs: Option<Arc<str>>,
    /// A fresh DPoP nonce for the client.
    dpop_nonce: Option<HeaderValue>,
}

impl AuthError {
    /// An error of `kind` with a machine-readable `reason` (for logs and events).
    pub fn new(kind: AuthErrorKind, reason: &'static str) -> Self {
        Self {
            kind,
            reason,
            description: None,
            scope: None,
            role: None,
            retry_after: None,
            extra: None,
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

    /// Authenticated but lacking `scope` (space-separated when several): `403
    /// insufficient_scope`, the scope named in the challenge and the problem body.
    pub fn insufficient_scope(scope: impl Into<Cow<'static, str>>) -> Self {
        let mut err = Self::new(AuthErrorKind::InsufficientScope, "insufficient_scope");
        err.scope = non_empty(scope.into());
        err
    }

    /// Authenticated but lacking `role` (space-separated when several): `403`, problem
    /// `code` `insufficient_role`, the role named in the problem body.
    pub fn insufficient_role(role: impl Into<Cow<'static, str>>) -> Self {
        let mut err = Self::new(AuthErrorKind::InsufficientRole, "insufficient_role");
        err.role = non_empty(role.into());
        err
    }

    /// Authenticated but holding neither `role` nor `scope`, either of which would do:
    /// `403 insufficient_scope` (a client can ask for the scope), both named in the
    /// problem body.
    pub fn insufficient_role_or_scope(
        role: impl Into<Cow<'static, str>>,
        scope: impl Into<Cow<'static, str>>,
    ) -> Self {
        let mut err = Self::insufficient_scope(scope)
            .with_description("the credential lacks a required role or scope");
        err.reason = "insufficient_role_or_scope";
        err.role = non_empty(role.into());
        err
    }

    /// A DPoP proof that is missing, malformed or does not fit the request or the
    /// token: `401 invalid_dpop_proof`.
    pub fn invalid_dpop_proof(reason: &'static str) -> Self {
        Self::new(AuthErrorKind::InvalidDpopProof, reason)
    }

    /// A DPoP proof without the nonce the server requires (or with a stale one): `401
    /// use_dpop_nonce`, the nonce to use in `DPoP-Nonce`.
    pub fn use_dpop_nonce(nonce: HeaderValue) -> Self {
        Self::new(AuthErrorKind::UseDpopNonce, "use_dpop_nonce").with_dpop_nonce(nonce)
    }

    /// The credential was valid but has been revoked: `401 invalid_token`.
    pub fn revoked() -> Self {
        Self::invalid_token("token_revoked").with_description("the credential has been revoked")
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

    /// Challenges with the `DPoP` scheme ([RFC 9449 §7.1]) instead of `Bearer`, naming
    /// the proof algorithms accepted (`algs`, space-separated). On a missing credential
    /// the challenge offers both: `Bearer realm="…", DPoP realm="…", algs="…"`.
    ///
    /// [RFC 9449 §7.1]: https://www.rfc-editor.org/rfc/rfc9449#section-7.1
    ///
    /// ```
    /// use portcullis_core::AuthError;
    ///
    /// let err = AuthError::invalid_dpop_proof("dpop_htm_mismatch").with_dpop_challenge("ES256 EdDSA");
    /// assert_eq!(
    ///     err.challenge("api").unwrap(),
    ///     r#"DPoP realm="api", error="invalid_dpop_proof", error_description="the DPoP proof is invalid", algs="ES256 EdDSA""#
    /// );
    /// assert_eq!(err.to_http_response("api").headers()["www-authenticate"], err.challenge("api").unwrap());
    /// ```
    pub fn with_dpop_challenge(mut self, algs: impl Into<Arc<str>>) -> Self {
        self.extra_mut().dpop_algs = Some(algs.into());
        self
    }

    /// Sends `nonce` in a `DPoP-Nonce` response header (and gRPC metadata), for the
    /// client's next proofs (RFC 9449 §8).
    fn with_dpop_nonce(mut self, nonce: HeaderValue) -> Self {
        self.extra_mut().dpop_nonce = Some(nonce);
        self
    }

    /// The nonce sent in `DPoP-Nonce`, if any.
    pub fn dpop_nonce(&self) -> Option<&HeaderValue> {
        self.extra.as_ref()?.dpop_nonce.as_ref()
    }

    /// Attaches the underlying error, for operators (`Error::source`). It is never
    /// rendered into a response.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.extra_mut().source = Some(Arc::new(source));
        self
    }

    fn extra_mut(&mut self) -> &mut Extra {
        Arc::make_mut(self.extra.get_or_insert_default())
    }

    /// The algorithms of a DPoP challenge, when the challenge is `DPoP`.
    pub(crate) fn dpop_algs(&self) -> Option<&str> {
        self.extra.as_ref()?.dpop_algs.as_deref()
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

    /// The role(s) missing, for `insufficient_role` (and a role-or-scope refusal).
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
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
                | AuthErrorKind::InvalidDpopProof
                | AuthErrorKind::UseDpopNonce
                | AuthErrorKind::InsufficientScope
                | AuthErrorKind::InsufficientRole
        ) {
            return None;
        }
        let mut value = String::with_capacity(96);
        let algs = self.dpop_algs();
        if algs.is_some() && self.kind == AuthErrorKind::MissingCredentials {
            // No credential at a server taking either scheme: both challenges
            // (RFC 9449 §7.2).
            value.push_str("Bearer realm=\"");
            push_quoted(&mut value, realm);
            value.push_str("\", ");
        }
        value.push_str(if algs.is_some() { "DPoP" } else { "Bearer" });
        value.push_str(" realm=\"");
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
        if let Some(algs) = algs {
            value.push_str(", algs=\"");
            push_quoted(&mut value, algs);
            value.push('"');
        }
        HeaderValue::from_str(&value).ok()
    }

    /// The default HTTP rendering: status, RFC 6750 challenge, `Retry-After`,
    /// `Cache-Control: no-store` and an RFC 9457 `application/problem+json` body with a
    /// stable `code`, plus the missing `scope` or `role` and the `retry_after` seconds
    /// when they apply.
    pub fn to_http_response(&self, realm: &str) -> Response<Bytes> {
        let mut extra = serde_json::Map::new();
        if let Some(scope) = &self.scope {
            extra.insert("scope".into(), scope.as_ref().into());
        }
        if let Some(role) = &self.role {
            extra.insert("role".into(), role.as_ref().into());
        }
        if let Some(secs) = self.retry_after_secs() {
            extra.insert("retry_after".into(), secs.into());
        }
        let mut response =
            crate::problem_response(self.status(), self.kind.code(), self.description(), extra);
        let headers = response.headers_mut();
        if let Some(challenge) = self.challenge(realm) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        self.insert_retry_after(headers);
        self.insert_dpop_nonce(headers);
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

    /// `Retry-After` in whole seconds, rounded up (a client that waits the advertised
    /// seconds must be let in), at least 1.
    fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|wait| (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
    }

    fn insert_retry_after(&self, headers: &mut HeaderMap) {
        if let Some(secs) = self.retry_after_secs() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }

    fn insert_dpop_nonce(&self, headers: &mut HeaderMap) {
        if let Some(nonce) = self.dpop_nonce() {
            headers.insert(DPOP_NONCE, nonce.clone());
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

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
const DPOP_NONCE: &str = "dpop-nonce";

/// Whether the request is a gRPC call (`content-type: application/grpc` or
/// `application/grpc+proto` and the like).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}

/// `value` as a quoted string (RFC 9110 §5.6.4, and an RFC 8941 sf-string): `"` and
/// `\` escaped, characters other than visible ASCII and space dropped, so the result is
/// always a valid header value.
///
/// ```
/// assert_eq!(portcullis_core::internal::quoted_string(r#"a"b"#), r#""a\"b""#);
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

fn non_empty(value: Cow<'static, str>) -> Option<Cow<'static, str>> {
    (!value.is_empty()).then_some(value)
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthError")
            .field("kind", &self.kind)
            .field("reason", &self.reason)
            .field("scope", &self.scope)
            .field("role", &self.role)
            .field("retry_after", &self.retry_after)
            .field("extra", &self.extra)
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
        self.extra
            .as_ref()?
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

mod grpc;
#[cfg(test)]
mod tests;
