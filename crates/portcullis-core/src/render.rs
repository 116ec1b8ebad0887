//! Turning an [`AuthError`] into a response: the default RFC 6750 + problem+json
//! rendering, or your own.

use std::{fmt, sync::Arc};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header, request::Parts};

use crate::AuthError;

/// Renders rejections for the Portcullis layers. Closures
/// `Fn(&AuthError, &Parts) -> Response<Bytes>` are renderers too.
///
/// ```
/// use bytes::Bytes;
/// use http::{request::Parts, Response};
/// use portcullis_core::{AuthError, AuthLayer, AuthResult, Authenticator, MaybeReady};
///
/// # struct Never;
/// # impl Authenticator for Never {
/// #     fn authenticate(&self, _: &Parts) -> MaybeReady<AuthResult> { MaybeReady::Ready(Ok(None)) }
/// # }
/// let layer = AuthLayer::new(Never).with_renderer(|err: &AuthError, _: &Parts| {
///     let mut res = Response::new(Bytes::from_static(b"nope"));
///     *res.status_mut() = err.status();
///     res
/// });
/// # let _ = layer;
/// ```
pub trait RenderRejection: Send + Sync + 'static {
    /// Builds the response for `error` on the request whose head is `parts`.
    fn render(&self, error: &AuthError, parts: &Parts) -> Response<Bytes>;
}

impl<F> RenderRejection for F
where
    F: Fn(&AuthError, &Parts) -> Response<Bytes> + Send + Sync + 'static,
{
    fn render(&self, error: &AuthError, parts: &Parts) -> Response<Bytes> {
        self(error, parts)
    }
}

/// The default rendering: a trailers-only gRPC status for gRPC requests, otherwise the
/// status, RFC 6750 `WWW-Authenticate` challenge in the layer's realm, and an
/// `application/problem+json` body (see [`AuthError::to_response`]).
#[derive(Clone, Copy, Default)]
pub struct DefaultRenderer;

impl fmt::Debug for DefaultRenderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DefaultRenderer")
    }
}

impl RenderRejection for DefaultRenderer {
    fn render(&self, error: &AuthError, parts: &Parts) -> Response<Bytes> {
        let realm = parts
            .extensions
            .get::<AuthContext>()
            .map_or(crate::DEFAULT_REALM, AuthContext::realm);
        error.to_response(parts, realm)
    }
}

/// Put into request extensions by [`AuthLayer`](crate::AuthLayer): it tells extractors
/// and guards further in that an auth layer ran, and in which realm to challenge.
///
/// The layer inserts it on every request it lets through without a
/// [`Principal`](crate::Principal) (optional mode), on every request it refuses (so a
/// custom renderer can read the realm), and beside a principal when the realm is not
/// the default. A principal alone already says that a layer ran, so readers take a
/// missing context as the default realm, [`DEFAULT_REALM`](crate::DEFAULT_REALM).
#[derive(Debug, Clone)]
pub struct AuthContext {
    realm: Arc<str>,
}

impl AuthContext {
    /// A context for `realm`.
    pub fn new(realm: impl Into<Arc<str>>) -> Self {
        Self {
            realm: realm.into(),
        }
    }

    /// The realm of the `WWW-Authenticate` challenge.
    pub fn realm(&self) -> &str {
        &self.realm
    }
}

/// An RFC 9457 `application/problem+json` response in the shape of every Portcullis
/// refusal: `type`, `title`, `status`, a stable `code`, `detail`, then the `extra`
/// members, with `Cache-Control: no-store`. For an application's own errors beside
/// the layers' (a login handler's `422`, say), so that clients read one shape.
///
/// ```
/// use http::StatusCode;
///
/// let mut extra = serde_json::Map::new();
/// extra.insert("rule".into(), "length".into());
/// let response = portcullis_core::problem_response(
///     StatusCode::UNPROCESSABLE_ENTITY,
///     "password_policy",
///     "the password is too short",
///     extra,
/// );
/// assert_eq!(response.headers()["content-type"], "application/problem+json");
/// let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
/// assert_eq!(body["code"], "password_policy");
/// assert_eq!(body["rule"], "length");
/// ```
pub fn problem_response(
    status: StatusCode,
    code: &str,
    detail: &str,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Response<Bytes> {
    let mut body = serde_json::Map::with_capacity(5 + extra.len());
    body.insert("type".into(), "about:blank".into());
    body.insert(
        "title".into(),
        status.canonical_reason().unwrap_or("Error").into(),
    );
    body.insert("status".into(), status.as_u16().into());
    body.insert("code".into(), code.into());
    body.insert("detail".into(), detail.into());
    body.extend(extra);
    let mut response = Response::new(Bytes::from(serde_json::Value::Object(body).to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
