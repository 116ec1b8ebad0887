//! [`RemoteKeys`]: one issuer's keys, fetched over HTTP, cached and refreshed by a
//! background task.

use std::{
    fmt,
    future::Future,
    num::NonZeroUsize,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use portcullis_core::{AuthEvent, Events};
use reqwest::Url;
use tokio::{
    sync::{Notify, watch},
    task::AbortHandle,
    time::Instant,
};

use super::{
    discovery,
    error::{JwksError, JwksErrorKind},
    http::{Fetcher, HttpOptions, check_url},
    ingest::{Ingested, Policy, ingest},
};
use crate::keyset::KeySet;

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

/// The key set being served.
struct Current {
    set: Arc<KeySet>,
    digests: Vec<[u8; 32]>,
    expires_at: Instant,
}

/// The outcome of the latest finished fetch.
#[derive(Clone)]
struct Finished {
    seq: u64,
    error: Option<JwksError>,
}

#[derive(Default)]
struct Ctl {
    /// Sequence number of the latest fetch started.
    started: u64,
    /// The highest sequence number someone waits for.
    requested: u64,
    /// The fetch the latest unknown-`kid` demand waits for.
    demand_target: Option<u64>,
    last_demand: Option<Instant>,
}

struct Shared {
    issuer: Box<str>,
    jwks_url: RwLock<Option<Url>>,
    fetcher: Fetcher,
    min_ttl: Duration,
    max_ttl: Duration,
    default_ttl: Duration,
    stale_if_error: Duration,
    cooldown: Duration,
    retry: Duration,
    wait_limit: Duration,
    events: Events,
    current: RwLock<Option<Arc<Current>>>,
    generation: AtomicU64,
    fetches: AtomicU64,
    ctl: Mutex<Ctl>,
    wake: Notify,
    done: watch::Sender<Finished>,
}

/// Aborts the background task when the last [`RemoteKeys`] handle goes.
struct Worker(AbortHandle);

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One issuer's verification keys, fetched from its JWKS URL (found by OpenID
/// Connect / RFC 8414 discovery, or given), cached, and refreshed in the background.
///
/// Give it to [`JwtAuthenticatorBuilder::remote_keys`](crate::JwtAuthenticatorBuilder::remote_keys);
/// several, for several issuers. Cheap to clone; the background task stops when the
/// last clone (the authenticator's included) is dropped. See the [module
/// docs](crate::jwks) for the caching rules.
///
/// ```no_run
/// use portcullis_jwt::{JwtAuthenticator, jwks::RemoteKeys};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let keys = RemoteKeys::discover("https://id.example.com/realms/main").await?;
/// let jwt = JwtAuthenticator::builder()
///     .remote_keys(keys) // also trusts its issuer
///     .audience("my-api")
///     .build()?;
/// # let _ = jwt; Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RemoteKeys {
    shared: Arc<Shared>,
    _worker: Arc<Worker>,
}

impl fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        let current = s.current.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("RemoteKeys")
            .field("issuer", &s.issuer)
            .field("jwks_url", &self.jwks_url())
            .field("keys", &current.as_ref().map(|c| c.set.len()))
            .field("generation", &s.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RemoteKeys {
    /// Discovers `issuer`'s JWKS URL and fetches its keys, with the default settings.
    /// Shorthand for `RemoteKeys::builder(issuer).start().await`.
    ///
    /// # Errors
    ///
    /// See [`RemoteKeysBuilder::start`].
    pub async fn discover(issuer: impl Into<String>) -> Result<Self, JwksError> {
        Self::builder(issuer).start().await
    }

    /// Fetches `issuer`'s keys from `jwks_url` (no discovery), with the default
    /// settings.
    ///
    /// # Errors
    ///
    /// See [`RemoteKeysBuilder::start`].
    pub async fn from_jwks_url(
        issuer: impl Into<String>,
        jwks_url: impl Into<String>,
    ) -> Result<Self, JwksError> {
        Self::builder(issuer).jwks_url(jwks_url).start().await
    }

    /// Starts a configuration for tokens issued by `issuer` (compared exactly with
    /// the tokens' `iss` and the discovered metadata's `issuer`).
    pub fn builder(issuer: impl Into<String>) -> RemoteKeysBuilder {
        RemoteKeysBuilder::new(issuer.into())
    }

    /// The issuer these keys verify for.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The JWKS URL: configured, or discovered (`None` until discovery succeeds).
    pub fn jwks_url(&self) -> Option<String> {
        let url = self
            .shared
            .jwks_url
            .read()
            .unwrap_or_else(|e| e.into_inner());
        url.as_ref().map(|u| u.to_string())
    }

    /// The keys served now (`None` before the first successful fetch, or once the
    /// stale-if-error bound has passed).
    pub fn key_set(&self) -> Option<Arc<KeySet>> {
        self.shared.current().map(|c| Arc::clone(&c.set))
    }

    /// Bumped whenever a key that was served leaves the set (or changes), so that
    /// tokens verified with it are no longer trusted from the cache.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// How many fetches of the JWK Set (or of discovery plus the set) were started.
    pub fn fetch_count(&self) -> u64 {
        self.shared.fetches.load(Ordering::Relaxed)
    }

    /// Fetches the keys now, whatever the cache says (no cooldown), and waits for
    /// the outcome. Concurrent calls share one fetch.
    ///
    /// # Errors
    ///
    /// The fetch's error; the previous keys are still served.
    pub async fn refresh(&self) -> Result<(), JwksError> {
        let target = {
            let mut ctl = self.shared.lock();
            let target = ctl.started + 1;
            ctl.requested = ctl.requested.max(target);
            target
        };
        self.shared.wake.notify_one();
        match self.shared.wait_for(target).await {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Crate API for the authenticator: the set to verify with.
    pub(crate) fn current_set(&self) -> Option<Arc<KeySet>> {
        self.key_set()
    }

    /// Crate API for the authenticator: a fetch because a token names a `kid` we do
    /// not have (or no keys are loaded yet). `None` within the cooldown after the
    /// previous such fetch finished; otherwise a future that resolves when the
    /// (shared) fetch is done.
    pub(crate) fn demand(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let shared = &self.shared;
        let now = Instant::now();
        let finished = shared.done.borrow().seq;
        let target = {
            let mut ctl = shared.lock();
            match ctl.demand_target {
                Some(target) if finished < target => target,
                _ => {
                    if ctl
                        .last_demand
                        .is_some_and(|at| now.saturating_duration_since(at) < shared.cooldown)
                    {
                        return None;
                    }
                    ctl.last_demand = Some(now);
                    let target = ctl.started + 1;
                    ctl.demand_target = Some(target);
                    ctl.requested = ctl.requested.max(target);
                    shared.wake.notify_one();
                    target
                }
            }
        };
        let wait = shared.wait_for(target);
        Some(async move {
            wait.await;
        })
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ctl> {
        self.ctl.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self) -> Option<Arc<Current>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits (bounded) until fetch `seq` has finished; its error, if any.
    fn wait_for(&self, seq: u64) -> impl Future<Output = Option<JwksError>> + Send + 'static {
        let mut rx = self.done.subscribe();
        let limit = self.wait_limit;
        async move {
            match tokio::time::timeout(limit, rx.wait_for(|f| f.seq >= seq)).await {
                Ok(Ok(finished)) => finished.error.clone(),
                Ok(Err(_)) => Some(JwksError::new(
                    JwksErrorKind::Unreachable,
                    "the key refresh task stopped",
                )),
                Err(_) => Some(JwksError::new(
                    JwksErrorKind::Timeout,
                    "the key fetch did not finish in time",
                )),
            }
        }
    }

    fn jwks_url(&self) -> Option<Url> {
        self.jwks_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One fetch: discovery when the JWKS URL is not known yet, then the set.
    /// Returns the cache lifetime.
    async fn fetch_once(&self) -> Result<Duration, JwksError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let url = match self.jwks_url() {
            Some(url) => url,
            None => {
                let url = discovery::discover(&self.fetcher, &self.issuer).await?;
                *self.jwks_url.write().unwrap_or_else(|e| e.into_inner()) = Some(url.clone());
                url
            }
        };
        let fetched = self.fetcher.get(&url).await?;
        let ingested = ingest(&fetched.body, Policy::REMOTE, &self.issuer)
            .map_err(|e| e.with_url(url.as_str()))?;
        let ttl = fetched
            .max_age
            .unwrap_or(self.default_ttl)
            .clamp(self.min_ttl, self.max_ttl);
        self.install(ingested, Instant::now() + ttl);
        Ok(ttl)
    }

    /// Serves a new set. The generation moves on only when a key that was served
    /// is gone or changed: an added key invalidates no cached verification.
    fn install(&self, new: Ingested, expires_at: Instant) {
        let keys = new.set.len();
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let (changed, removed) = match current.as_ref() {
            None => (true, false),
            Some(old) => (
                old.digests != new.digests,
                old.digests
                    .iter()
                    .any(|d| new.digests.binary_search(d).is_err()),
            ),
        };
        *current = Some(Arc::new(Current {
            set: Arc::new(new.set),
            digests: new.digests,
            expires_at,
        }));
        if removed {
            // After the new set is in place, so a reader that sees the new
            // generation also sees the new keys.
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        drop(current);
        if changed {
            tracing::info!(
                target: "portcullis::jwks",
                issuer = &*self.issuer,
                keys,
                skipped = new.skipped,
                "JWK Set loaded"
            );
            self.events.emit(&AuthEvent::KeysRotated {
                source: &self.issuer,
                keys,
            });
        }
    }

    /// After a failed fetch: keep serving the last good set until `expires_at +
    /// stale_if_error`, then stop trusting it.
    fn failed(&self, error: &JwksError) {
        let now = Instant::now();
        match self.current() {
            Some(current) if now >= current.expires_at + self.stale_if_error => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = None;
                self.generation.fetch_add(1, Ordering::AcqRel);
                tracing::warn!(
                    target: "portcullis::jwks",
                    issuer = &*self.issuer,
                    %error,
                    "key refresh failed past the stale-if-error bound; refusing tokens until the provider answers"
                );
            }
            Some(current) => tracing::warn!(
                target: "portcullis::jwks",
                issuer = &*self.issuer,
                %error,
                expired = now >= current.expires_at,
                "key refresh failed; serving the last good key set"
            ),
            None => tracing::warn!(
                target: "portcullis::jwks",
                issuer = &*self.issuer,
                %error,
                "key fetch failed; no keys yet, tokens get 503"
            ),
        }
    }
}

/// The background task: fetch on request or when the refresh time comes.
async fn run(shared: Arc<Shared>) {
    let mut next = Instant::now();
    loop {
        loop {
            let wanted = {
                let ctl = shared.lock();
                ctl.requested > ctl.started
            };
            if wanted || Instant::now() >= next {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = shared.wake.notified() => {}
            }
        }
        let seq = {
            let mut ctl = shared.lock();
            ctl.started += 1;
            ctl.started
        };
        let result = shared.fetch_once().await;
        let now = Instant::now();
        let error = match result {
            // Refresh at three quarters of the lifetime, well before expiry.
            Ok(ttl) => {
                next = now + ttl.mul_f64(0.75);
                None
            }
            Err(e) => {
                shared.failed(&e);
                next = now + shared.retry;
                Some(e)
            }
        };
        shared.done.send_replace(Finished { seq, error });
    }
}

/// Configures [`RemoteKeys`]. Obtained from [`RemoteKeys::builder`].
#[must_use]
#[derive(Debug)]
pub struct RemoteKeysBuilder {
    issuer: String,
    jwks_url: Option<String>,
    http: HttpOptions,
    min_ttl: Duration,
    max_ttl: Duration,
    default_ttl: Duration,
    stale_if_error: Duration,
    cooldown: Duration,
    retry: Duration,
    events: Events,
}

impl RemoteKeysBuilder {
    fn new(issuer: String) -> Self {
        Self {
            issuer,
            jwks_url: None,
            http: HttpOptions {
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                timeout: DEFAULT_TIMEOUT,
                max_response_size: DEFAULT_MAX_RESPONSE_SIZE.get(),
                allow_http: false,
            },
            min_ttl: DEFAULT_MIN_TTL,
            max_ttl: DEFAULT_MAX_TTL,
            default_ttl: DEFAULT_TTL,
            stale_if_error: DEFAULT_STALE_IF_ERROR,
            cooldown: DEFAULT_UNKNOWN_KID_COOLDOWN,
            retry: DEFAULT_RETRY_INTERVAL,
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
        self.min_ttl = min;
        self.max_ttl = max;
        self.default_ttl = default.clamp(min, max);
        self
    }

    /// How long past its expiry a set is still served while the provider fails
    /// (default 24 hours). Each failure logs a warning.
    pub fn stale_if_error(mut self, bound: Duration) -> Self {
        self.stale_if_error = bound;
        self
    }

    /// The least time between two fetches caused by tokens naming unknown `kid`s
    /// (default 30 s). Tokens arriving meanwhile share the fetch in flight, or are
    /// refused at once.
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// How long the background task waits after a failed fetch before trying again
    /// (default 30 s).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry = interval;
        self
    }

    /// Where [`AuthEvent::KeysRotated`] goes (default: `tracing`).
    pub fn events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Checks the URLs, starts the background task and waits for the first fetch.
    ///
    /// # Errors
    ///
    /// A [`JwksError`] saying what failed: a URL that is not `https` (or loopback
    /// `http`), an unreachable or slow provider, an HTTP error status, a document
    /// that is too large or malformed, a discovered `issuer` that differs from the
    /// configured one, no `jwks_uri`, no usable key; or no tokio runtime.
    pub async fn start(self) -> Result<RemoteKeys, JwksError> {
        let keys = self.start_lazy()?;
        match keys.shared.wait_for(1).await {
            None => Ok(keys),
            Some(e) => Err(e),
        }
    }

    /// Checks the URLs and starts the background task, without waiting for keys.
    /// Until the first fetch succeeds, tokens for this issuer get
    /// `503 Service Unavailable` (`jwks_unavailable`); a token arriving then may
    /// trigger a fetch (at most one per cooldown) and waits for it.
    ///
    /// # Errors
    ///
    /// [`JwksErrorKind::InvalidUrl`] and [`JwksErrorKind::InsecureUrl`] for the
    /// issuer or JWKS URL; [`JwksErrorKind::NoRuntime`] outside a tokio runtime.
    pub fn start_lazy(self) -> Result<RemoteKeys, JwksError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            JwksError::new(
                JwksErrorKind::NoRuntime,
                "start RemoteKeys inside a tokio runtime",
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
        let fetcher = Fetcher::new(&self.http)?;
        let (done, _) = watch::channel(Finished {
            seq: 0,
            error: None,
        });
        let shared = Arc::new(Shared {
            issuer: self.issuer.into(),
            jwks_url: RwLock::new(jwks_url),
            fetcher,
            min_ttl: self.min_ttl,
            max_ttl: self.max_ttl,
            default_ttl: self.default_ttl,
            stale_if_error: self.stale_if_error,
            cooldown: self.cooldown,
            retry: self.retry,
            // Discovery (up to two documents) and the set, twice over (one fetch
            // may be in flight already), and a margin.
            wait_limit: (self.http.timeout * 6).saturating_add(Duration::from_secs(1)),
            events: self.events,
            current: RwLock::new(None),
            generation: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            ctl: Mutex::new(Ctl {
                requested: 1,
                ..Ctl::default()
            }),
            wake: Notify::new(),
            done,
        });
        let task = runtime.spawn(run(Arc::clone(&shared)));
        Ok(RemoteKeys {
            shared,
            _worker: Arc::new(Worker(task.abort_handle())),
        })
    }
}
