//! [`RemoteKeys`]: one issuer's keys, fetched over HTTP, cached and refreshed by a
//! background task.

use std::{
    fmt,
    future::Future,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use portcullis_core::{AuthEvent, Events};
use reqwest::Url;
use tokio::{
    runtime::Handle,
    sync::{Notify, watch},
    task::AbortHandle,
    time::Instant,
};

use super::{
    RemoteKeysBuilder, discovery,
    error::{Chain, JwksError, JwksErrorKind},
    http::Fetcher,
    ingest::{Ingested, Policy, ingest},
};
use crate::keyset::KeySet;

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

/// How long keys live and how failures are retried: the builder's settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub(super) min_ttl: Duration,
    pub(super) max_ttl: Duration,
    pub(super) default_ttl: Duration,
    pub(super) stale_if_error: Duration,
    pub(super) cooldown: Duration,
    pub(super) retry: Duration,
}

/// What [`RemoteKeys::spawn`] starts with, checked by the builder.
pub(super) struct Setup {
    pub(super) issuer: Box<str>,
    /// Known, or `None` until discovery finds it.
    pub(super) jwks_url: Option<Url>,
    pub(super) fetcher: Fetcher,
    pub(super) timing: Timing,
    /// The longest a caller waits for a fetch.
    pub(super) wait_limit: Duration,
    pub(super) events: Events,
    pub(super) first_failure_returned: bool,
}

struct Shared {
    issuer: Box<str>,
    jwks_url: RwLock<Option<Url>>,
    fetcher: Fetcher,
    timing: Timing,
    wait_limit: Duration,
    events: Events,
    /// Whether the first fetch's failure goes back to a caller
    /// ([`RemoteKeysBuilder::start`](super::RemoteKeysBuilder::start)) rather than
    /// leaving tokens to get 503s.
    first_failure_returned: bool,
    current: RwLock<Option<Arc<Current>>>,
    generation: AtomicU64,
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
    /// An issuer that publishes no discovery document fails with
    /// [`JwksErrorKind::NoDiscoveryDocument`]; give its JWKS URL with
    /// [`from_jwks_url`](Self::from_jwks_url) instead.
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
    pub(crate) fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
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
                    if ctl.last_demand.is_some_and(|at| {
                        now.saturating_duration_since(at) < shared.timing.cooldown
                    }) {
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

impl RemoteKeys {
    /// Starts the background task; its first fetch begins at once.
    pub(super) fn spawn(runtime: &Handle, setup: Setup) -> Self {
        let (done, _) = watch::channel(Finished {
            seq: 0,
            error: None,
        });
        let shared = Arc::new(Shared {
            issuer: setup.issuer,
            jwks_url: RwLock::new(setup.jwks_url),
            fetcher: setup.fetcher,
            timing: setup.timing,
            wait_limit: setup.wait_limit,
            events: setup.events,
            first_failure_returned: setup.first_failure_returned,
            current: RwLock::new(None),
            generation: AtomicU64::new(0),
            ctl: Mutex::new(Ctl {
                requested: 1,
                ..Ctl::default()
            }),
            wake: Notify::new(),
            done,
        });
        let task = runtime.spawn(run(Arc::clone(&shared)));
        Self {
            shared,
            _worker: Arc::new(Worker(task.abort_handle())),
        }
    }

    /// Waits for the first fetch; its error, if it failed.
    pub(super) async fn first_fetch(&self) -> Result<(), JwksError> {
        match self.shared.wait_for(1).await {
            None => Ok(()),
            Some(e) => Err(e),
        }
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
        let timing = &self.timing;
        let ttl = fetched
            .max_age
            .unwrap_or(timing.default_ttl)
            .clamp(timing.min_ttl, timing.max_ttl);
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

    /// After failed fetch `seq`: keep serving the last good set until `expires_at +
    /// stale_if_error`, then stop trusting it. Each failure is logged, saying what
    /// tokens get meanwhile; but the first fetch of
    /// [`start`](super::RemoteKeysBuilder::start) fails to its caller, who gets the
    /// error instead (and no keys to serve tokens with).
    fn failed(&self, seq: u64, error: &JwksError) {
        let now = Instant::now();
        let error = Chain(error);
        match self.current() {
            Some(current) if now >= current.expires_at + self.timing.stale_if_error => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = None;
                self.generation.fetch_add(1, Ordering::AcqRel);
                tracing::warn!(
                    target: "portcullis::jwks",
                    issuer = &*self.issuer,
                    %error,
                    "key refresh failed past the stale-if-error bound; tokens of this issuer get 503 until the provider answers"
                );
            }
            Some(current) => tracing::warn!(
                target: "portcullis::jwks",
                issuer = &*self.issuer,
                %error,
                expired = now >= current.expires_at,
                "key refresh failed; serving the last good key set"
            ),
            None if seq == 1 && self.first_failure_returned => tracing::debug!(
                target: "portcullis::jwks",
                issuer = &*self.issuer,
                %error,
                "first key fetch failed; RemoteKeysBuilder::start returns the error"
            ),
            None => tracing::warn!(
                target: "portcullis::jwks",
                issuer = &*self.issuer,
                %error,
                "key fetch failed; no keys yet, tokens of this issuer get 503 until a fetch succeeds"
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
        portcullis_core::internal::metrics::jwks_refreshed(&shared.issuer, result.is_ok());
        let now = Instant::now();
        let error = match result {
            // Refresh at three quarters of the lifetime, well before expiry.
            Ok(ttl) => {
                next = now + ttl.mul_f64(0.75);
                None
            }
            Err(e) => {
                shared.failed(seq, &e);
                next = now + shared.timing.retry;
                Some(e)
            }
        };
        shared.done.send_replace(Finished { seq, error });
    }
}
