//! What a rate limit is keyed on: [`KeyExtractor`] and the ready-made extractors.

use std::{fmt, hash::Hash, net::IpAddr};

use http::{HeaderName, HeaderValue, request::Parts};
use portcullis_core::{AuthError, ClientIp, ClientIpResolver, Principal, PrincipalKind};

use crate::peer::peer_addr;

/// Finds the rate-limit key of a request from its head.
///
/// Closures `Fn(&Parts) -> Result<K, KeyError>` are extractors too:
///
/// ```
/// use http::request::Parts;
/// use portcullis_ratelimit::{KeyError, KeyExtractor};
///
/// let tenant = |parts: &Parts| -> Result<String, KeyError> {
///     parts.uri.path().split('/').nth(2).map(str::to_owned)
///         .ok_or_else(|| KeyError::invalid("the path names no tenant"))
/// };
/// # fn is_extractor<K: KeyExtractor>(_: &K) {}
/// # is_extractor(&tenant);
/// ```
pub trait KeyExtractor: Send + Sync + 'static {
    /// The key type.
    type Key: Clone + Hash + Eq + Send + Sync + 'static;

    /// The request's key.
    ///
    /// # Errors
    ///
    /// [`KeyError`] when there is none: a configuration error (`500`, e.g. no
    /// `Principal` because the layer sits outside the auth layer) or a bad request
    /// (`400`). Never a silent pass.
    fn extract(&self, parts: &Parts) -> Result<Self::Key, KeyError>;

    /// What the key is (`ip`, `subject`, `api_key`, `header`), for events.
    fn kind(&self) -> &'static str {
        "custom"
    }
}

impl<F, K> KeyExtractor for F
where
    F: Fn(&Parts) -> Result<K, KeyError> + Send + Sync + 'static,
    K: Clone + Hash + Eq + Send + Sync + 'static,
{
    type Key = K;

    fn extract(&self, parts: &Parts) -> Result<K, KeyError> {
        self(parts)
    }
}

/// Why a request has no rate-limit key; rendered as the inner [`AuthError`].
#[derive(Debug, Clone)]
// Boxed: a key is found on nearly every request, and a pointer-sized error keeps
// `Result<Key, KeyError>` small for the extractors' return values.
pub struct KeyError(Box<AuthError>);

impl KeyError {
    /// A configuration error: `500` with `description` (which must say how to fix it
    /// and never contain request data), logged at `ERROR`.
    pub fn missing(description: &'static str) -> Self {
        Self::from(AuthError::internal("missing_rate_limit_key").with_description(description))
    }

    /// The client's fault: `400` with `description`.
    pub fn invalid(description: &'static str) -> Self {
        Self::from(
            AuthError::invalid_request("invalid_rate_limit_key").with_description(description),
        )
    }

    /// The error that will be rendered.
    pub fn error(&self) -> &AuthError {
        &self.0
    }

    pub(crate) fn into_error(self) -> AuthError {
        *self.0
    }
}

impl From<AuthError> for KeyError {
    fn from(error: AuthError) -> Self {
        Self(Box::new(error))
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Keys on the client IP (socket peer, or through trusted proxies), masked as the
/// resolver says (IPv6 `/64` by default).
///
/// A request without a peer address is a configuration error (`500`): serve axum with
/// `into_make_service_with_connect_info::<SocketAddr>()`, or insert
/// [`PeerAddr`](portcullis_core::PeerAddr).
#[derive(Debug, Clone, Default)]
pub struct ClientIpKey {
    resolver: ClientIpResolver,
}

impl ClientIpKey {
    /// The socket peer, IPv6 grouped by `/64`.
    pub fn new() -> Self {
        Self::default()
    }

    /// With a configured resolver (trusted proxies, prefixes).
    pub fn with_resolver(resolver: ClientIpResolver) -> Self {
        Self { resolver }
    }

    /// The resolver.
    pub fn resolver(&self) -> &ClientIpResolver {
        &self.resolver
    }

    /// The client IP of a request head.
    ///
    /// # Errors
    ///
    /// A `500` when the request carries no peer address.
    pub fn client_ip(&self, parts: &Parts) -> Result<ClientIp, AuthError> {
        self.resolve(parts)
            .ok_or_else(portcullis_core::client_ip::missing_peer_error)
    }

    /// The client IP, or `None` without a peer address: small enough to come back in
    /// registers, where `client_ip`'s `AuthError` comes back through memory. Always
    /// inlined: on the rate limit's hot path a call costs as much as the look-up.
    #[inline(always)]
    fn resolve(&self, parts: &Parts) -> Option<ClientIp> {
        let peer = peer_addr(&parts.extensions)?;
        Some(self.resolver.resolve(peer.ip(), &parts.headers))
    }
}

impl KeyExtractor for ClientIpKey {
    type Key = IpAddr;

    fn extract(&self, parts: &Parts) -> Result<IpAddr, KeyError> {
        match self.resolve(parts) {
            Some(ip) => Ok(self.resolver.key(ip)),
            None => Err(no_peer()),
        }
    }

    fn kind(&self) -> &'static str {
        "ip"
    }
}

const NO_PRINCIPAL: &str = "no authenticated principal to rate limit by: \
                            put the rate limit layer inside the auth layer";

#[cold]
fn no_peer() -> KeyError {
    KeyError::from(portcullis_core::client_ip::missing_peer_error())
}

/// Keys on the authenticated [`Principal`]'s subject.
///
/// The layer must run after (inside) an auth layer; without a principal the request
/// is refused with a `500` that says so.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubjectKey;

impl KeyExtractor for SubjectKey {
    type Key = Box<str>;

    fn extract(&self, parts: &Parts) -> Result<Box<str>, KeyError> {
        match parts.extensions.get::<Principal>() {
            Some(p) => Ok(p.subject().into()),
            None => Err(KeyError::missing(NO_PRINCIPAL)),
        }
    }

    fn kind(&self) -> &'static str {
        "subject"
    }
}

/// Keys on the API key id ([`Principal::token_id`] of an API-key principal).
///
/// Other principals (a JWT user on a route that accepts both) are keyed by subject,
/// in a separate key space (`key:<id>` vs `sub:<subject>`), so each caller is still
/// limited. Without a principal: `500`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiKeyIdKey;

impl KeyExtractor for ApiKeyIdKey {
    type Key = Box<str>;

    fn extract(&self, parts: &Parts) -> Result<Box<str>, KeyError> {
        let p = parts
            .extensions
            .get::<Principal>()
            .ok_or_else(|| KeyError::missing(NO_PRINCIPAL))?;
        Ok(match (p.kind(), p.token_id()) {
            (PrincipalKind::ApiKey, Some(id)) => format!("key:{id}"),
            _ => format!("sub:{}", p.subject()),
        }
        .into())
    }

    fn kind(&self) -> &'static str {
        "api_key"
    }
}

/// Keys on the value of a request header (say `x-tenant`).
///
/// A request without the header, or with a value over 128 bytes (which would let a
/// client grow the key store), is refused with `400`.
#[derive(Debug, Clone)]
pub struct HeaderKey {
    name: HeaderName,
}

impl HeaderKey {
    /// Keys on header `name`.
    pub fn new(name: HeaderName) -> Self {
        Self { name }
    }
}

impl KeyExtractor for HeaderKey {
    type Key = HeaderValue;

    fn extract(&self, parts: &Parts) -> Result<HeaderValue, KeyError> {
        match parts.headers.get(&self.name) {
            Some(v) if !v.is_empty() && v.len() <= 128 => Ok(v.clone()),
            Some(_) => Err(KeyError::invalid(
                "the header this endpoint is rate limited by is empty or too long",
            )),
            None => Err(KeyError::invalid(
                "the request lacks the header this endpoint is rate limited by",
            )),
        }
    }

    fn kind(&self) -> &'static str {
        "header"
    }
}
