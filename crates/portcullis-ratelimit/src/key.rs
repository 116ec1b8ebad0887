//! What a rate limit is keyed on: [`KeyExtractor`] and the ready-made extractors.

use std::{fmt, hash::Hash, net::IpAddr};

use http::{HeaderName, HeaderValue, request::Parts};
use portcullis_core::{
    AuthError, ClientIp, ClientIpResolver, Principal, PrincipalKind, internal::missing_peer_error,
};

use crate::peer::peer_addr;

/// Finds the rate-limit key of a request from its head.
///
/// Closures `Fn(&Parts) -> Result<K, KeyExtractError>` are extractors too:
///
/// ```
/// use http::request::Parts;
/// use portcullis_ratelimit::{KeyExtractError, KeyExtractor};
///
/// let tenant = |parts: &Parts| -> Result<String, KeyExtractError> {
///     parts.uri.path().split('/').nth(2).map(str::to_owned)
///         .ok_or_else(|| KeyExtractError::invalid("the path names no tenant"))
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
    /// [`KeyExtractError`] when there is none: a configuration error (`500`, e.g. no
    /// `Principal` because the layer sits outside the auth layer) or a bad request
    /// (`400`). Never a silent pass.
    fn extract(&self, parts: &Parts) -> Result<Self::Key, KeyExtractError>;

    /// What the key is (`ip`, `subject`, `api_key`, `header`), for events.
    fn kind(&self) -> &'static str {
        "custom"
    }
}

impl<F, K> KeyExtractor for F
where
    F: Fn(&Parts) -> Result<K, KeyExtractError> + Send + Sync + 'static,
    K: Clone + Hash + Eq + Send + Sync + 'static,
{
    type Key = K;

    fn extract(&self, parts: &Parts) -> Result<K, KeyExtractError> {
        self(parts)
    }
}

/// Why a request has no rate-limit key; rendered as the inner [`AuthError`].
#[derive(Debug, Clone)]
// Boxed: a key is found on nearly every request, and a pointer-sized error keeps
// `Result<Key, KeyExtractError>` small for the extractors' return values.
pub struct KeyExtractError(Box<Reason>);

#[derive(Debug, Clone)]
struct Reason {
    error: AuthError,
    advice: Option<&'static str>,
}

impl KeyExtractError {
    /// A configuration error: `500`. `advice` says how to fix the server (say, where
    /// the layer belongs); it goes to the log at `ERROR` (target
    /// `portcullis::config`), never to the client, who is told only that the server
    /// cannot rate limit the request. It must never contain request data.
    pub fn missing(advice: &'static str) -> Self {
        Self(Box::new(Reason {
            error: AuthError::internal("missing_rate_limit_key")
                .with_description("the server cannot determine the rate limit key of the request"),
            advice: Some(advice),
        }))
    }

    /// The client's fault: `400` with `description`.
    pub fn invalid(description: &'static str) -> Self {
        Self::from(
            AuthError::invalid_request("invalid_rate_limit_key").with_description(description),
        )
    }

    /// The error that will be rendered.
    pub fn error(&self) -> &AuthError {
        &self.0.error
    }

    /// How to fix the server, for the log ([`missing`](Self::missing)).
    pub fn advice(&self) -> Option<&'static str> {
        self.0.advice
    }

    pub(crate) fn into_parts(self) -> (AuthError, Option<&'static str>) {
        let reason = *self.0;
        (reason.error, reason.advice)
    }
}

impl From<AuthError> for KeyExtractError {
    fn from(error: AuthError) -> Self {
        Self(Box::new(Reason {
            error,
            advice: None,
        }))
    }
}

impl fmt::Display for KeyExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.error, f)
    }
}

impl std::error::Error for KeyExtractError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0.error)
    }
}

/// Keys on the client IP (socket peer, or through trusted proxies), masked as the
/// resolver says (IPv6 `/64` by default).
///
/// The peer address is read as [`peer_addr`](crate::peer_addr) says: a
/// [`PeerAddr`](portcullis_core::PeerAddr) extension, tonic's `TcpConnectInfo` (feature
/// `tonic`) or axum's `ConnectInfo<SocketAddr>` (feature `axum`). A request without one
/// is a configuration error: a generic `500` (gRPC `INTERNAL`), with how to fix the
/// server in the log.
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
        self.resolve(parts).ok_or_else(missing_peer_error)
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

    fn extract(&self, parts: &Parts) -> Result<IpAddr, KeyExtractError> {
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
fn no_peer() -> KeyExtractError {
    KeyExtractError::from(missing_peer_error())
}

/// Keys on the authenticated [`Principal`]'s subject.
///
/// The layer must run after (inside) an auth layer; without a principal the request
/// is refused with a `500`, and the log says where the layer belongs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubjectKey;

impl KeyExtractor for SubjectKey {
    type Key = Box<str>;

    fn extract(&self, parts: &Parts) -> Result<Box<str>, KeyExtractError> {
        match parts.extensions.get::<Principal>() {
            Some(p) => Ok(p.subject().into()),
            None => Err(KeyExtractError::missing(NO_PRINCIPAL)),
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

    fn extract(&self, parts: &Parts) -> Result<Box<str>, KeyExtractError> {
        let p = parts
            .extensions
            .get::<Principal>()
            .ok_or_else(|| KeyExtractError::missing(NO_PRINCIPAL))?;
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

    fn extract(&self, parts: &Parts) -> Result<HeaderValue, KeyExtractError> {
        match parts.headers.get(&self.name) {
            Some(v) if !v.is_empty() && v.len() <= 128 => Ok(v.clone()),
            Some(_) => Err(KeyExtractError::invalid(
                "the header this endpoint is rate limited by is empty or too long",
            )),
            None => Err(KeyExtractError::invalid(
                "the request lacks the header this endpoint is rate limited by",
            )),
        }
    }

    fn kind(&self) -> &'static str {
        "header"
    }
}
