//! [`RemoteKeysBuilder`]: how one issuer's keys are fetched and kept.

use std::{num::NonZeroUsize, time::Duration};

use portcullis_core::Events;
use tokio::runtime::Handle;

use super::{
    RemoteKeys, discovery,
    error::{JwksError, JwksErrorKind},
    http::{Fetcher, HttpOptions, check_url},
    source::{Setup, Timing},
};

/// Default connect timeout: 5 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default total timeout of one HTTP request (connect, headers and body): 10 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a fetched document: 256 KiB.
pub const DEFAULT_MAX_RESPONSE_SIZE: NonZeroUsize = NonZeroUsize::new(256 * 1024).unwrap();
/// Default shortest cache lifetime, whatever `Cache-Control` says: 1 minute.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(60);
/// Default longest cache lifetime, whatever `Cache-Control` says: 24 hours.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default cache lifetime when the provider sends no `max-age`: 15 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// Default bound on serving an expired set while the provider fails: 24 hours.
pub const DEFAULT_STALE_IF_ERROR: Duration = Duration::from_secs(24 * 3600);
/// Default minimum time between two fetches caused by unknown `kid`s: 30 seconds.
pub const DEFAULT_UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(30);
/// Default wait before the background task retries a failed fetch: 30 seconds.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(30);

/// Configures [`RemoteKeys`]. Obtained from [`RemoteKeys::builder`].
#[must_use]
#[derive(Debug)]
pub struct RemoteKeysBuilder {
    issuer: String,
    jwks_url: Option<String>,
    http: HttpOptions,
    timing: Timing,
    events: Events,
}

impl RemoteKeysBuilder {
    pub(super) fn new(issuer: String) -> Self {
        Self {
            issuer,
            jwks_url: None,
            http: HttpOptions {
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                timeout: DEFAULT_TIMEOUT,
                max_response_size: DEFAULT_MAX_RESPONSE_SIZE.get(),
                allow_http: false,
            },
            timing: Timing {
                min_ttl: DEFAULT_MIN_TTL,
                max_ttl: DEFAULT_MAX_TTL,
                default_ttl: DEFAULT_TTL,
                stale_if_error: DEFAULT_STALE_IF_ERROR,
                cooldown: DEFAULT_UNKNOWN_KID_COOLDOWN,
                retry: DEFAULT_RETRY_INTERVAL,
            },
            events: Events::default(),
        }
    }

    /// Fetches the keys from `url` and skips discovery (for issuers without a
    /// metadata document).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// The connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.http.connect_timeout = timeout;
        self
    }

    /// The total timeout of one request, body included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.http.timeout = timeout;
        self
    }

    /// The largest document accepted (default 256 KiB). A larger one is refused as
    /// soon as its `Content-Length`, or the bytes read so far, pass the cap.
    pub fn max_response_size(mut self, max: NonZeroUsize) -> Self {
        self.http.max_response_size = max.get();
        self
    }

    /// Allows plain `http` to any host (it is always allowed to loopback hosts:
    /// `localhost`, `127.0.0.0/8`, `::1`).
    ///
    /// # Security
    ///
    /// Keys fetched over plain http can be replaced by anyone on the path, who can
    /// then mint tokens you accept. For local development only.
    pub fn danger_allow_http(mut self) -> Self {
        self.http.allow_http = true;
        self
    }

    /// Bounds on the cache lifetime taken from `Cache-Control: max-age` (default
    /// 1 minute to 24 hours), and the lifetime when there is no `max-age` (default
    /// 15 minutes, clamped to the bounds). `no-store` and `no-cache` count as zero,
    /// hence the lower bound.
    ///
    /// # Panics
    ///
    /// When `min` is greater than `max`.
    pub fn cache_ttl(mut self, min: Duration, default: Duration, max: Duration) -> Self {
        assert!(min <= max, "cache_ttl: min must not exceed max");
        self.timing.min_ttl = min;
        self.timing.max_ttl = max;
        self.timing.default_ttl = default.clamp(min, max);
        self
    }

    /// How long past its expiry a set is still served while the provider fails
    /// (default 24 hours). Each failure logs a warning.
    pub fn stale_if_error(mut self, bound: Duration) -> Self {
        self.timing.stale_if_error = bound;
        self
    }

    /// The least time between two fetches caused by tokens naming unknown `kid`s
    /// (default 30 s). Tokens arriving meanwhile share the fetch in flight, or are
    /// refused at once.
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.timing.cooldown = cooldown;
        self
    }

    /// How long the background task waits after a failed fetch before trying again
    /// (default 30 s).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.timing.retry = interval;
        self
    }

    /// Where [`AuthEvent::KeysRotated`](portcullis_core::AuthEvent::KeysRotated) goes
    /// (default: `tracing`).
    pub fn events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Checks the URLs, starts the background task and waits for the first fetch.
    ///
    /// When that fetch fails, the error is returned (and the task stopped): nothing
    /// is left running that would answer tokens with 503s. Use
    /// [`start_lazy`](Self::start_lazy) to start while the provider is down.
    ///
    /// # Errors
    ///
    /// A [`JwksError`] saying what failed: a URL that is not `https` (or loopback
    /// `http`), an unreachable or slow provider, an HTTP error status, no discovery
    /// document ([`JwksErrorKind::NoDiscoveryDocument`]: give the JWKS URL with
    /// [`jwks_url`](Self::jwks_url) instead), a document that is too large or
    /// malformed, a discovered `issuer` that differs from the configured one, no
    /// `jwks_uri`, no usable key; or no tokio runtime.
    pub async fn start(self) -> Result<RemoteKeys, JwksError> {
        let keys = self.spawn(true)?;
        keys.first_fetch().await?;
        Ok(keys)
    }

    /// Checks the URLs and starts the background task, without waiting for keys.
    /// Until the first fetch succeeds, tokens for this issuer get
    /// `503 Service Unavailable` (`jwks_unavailable`), and each failed fetch logs a
    /// warning; a token arriving then may trigger a fetch (at most one per cooldown)
    /// and waits for it.
    ///
    /// # Errors
    ///
    /// [`JwksErrorKind::InvalidUrl`] and [`JwksErrorKind::InsecureUrl`] for the
    /// issuer or JWKS URL; [`JwksErrorKind::NoRuntime`] outside a tokio runtime.
    pub fn start_lazy(self) -> Result<RemoteKeys, JwksError> {
        self.spawn(false)
    }

    fn spawn(self, first_failure_returned: bool) -> Result<RemoteKeys, JwksError> {
        let runtime = Handle::try_current().map_err(|_| {
            JwksError::new(
                JwksErrorKind::NoRuntime,
                "RemoteKeys must be started inside a tokio runtime",
            )
        })?;
        if self.issuer.is_empty() {
            return Err(JwksError::new(
                JwksErrorKind::InvalidUrl,
                "the issuer is empty",
            ));
        }
        let jwks_url = match &self.jwks_url {
            Some(url) => Some(check_url(url, self.http.allow_http)?),
            None => {
                discovery::check_issuer(&self.issuer, self.http.allow_http)?;
                None
            }
        };
        let setup = Setup {
            issuer: self.issuer.into(),
            jwks_url,
            fetcher: Fetcher::new(&self.http)?,
            timing: self.timing,
            // Discovery (up to two documents) and the set, twice over (one fetch
            // may be in flight already), and a margin.
            wait_limit: (self.http.timeout * 6).saturating_add(Duration::from_secs(1)),
            events: self.events,
            first_failure_returned,
        };
        Ok(RemoteKeys::spawn(&runtime, setup))
    }
}
