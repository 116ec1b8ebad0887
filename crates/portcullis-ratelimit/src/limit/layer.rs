use std::{fmt, num::NonZeroU32, sync::Arc};

use governor::{Quota, clock::Clock};
use http::HeaderValue;
use portcullis_core::Events;
use tower_layer::Layer;

use super::RateLimit;
use crate::{GovernorBackend, KeyExtractor, RateLimitBackend, headers};

/// Applies [`RateLimit`] to a service. See the [module docs](crate::limit).
///
/// Cloning the layer shares the extractor and the backend, so every clone (and every
/// service it builds) counts against one state.
///
/// ```
/// use std::num::NonZeroU32;
/// use axum::{routing::get, Router};
/// use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
///
/// let layer = RateLimitLayer::new(ClientIpKey::new(), Quota::per_minute(NonZeroU32::new(60).unwrap()))
///     .policy_name("api")
///     .headers_on_success(true);
/// let app: Router = Router::new().route("/", get(|| async { "hi" })).layer(layer);
/// ```
#[must_use]
pub struct RateLimitLayer<K: KeyExtractor, B = GovernorBackend<<K as KeyExtractor>::Key>> {
    // Everything the layer's services share, in one allocation made when the layer is
    // configured: axum may clone the layer and call `layer` on every request (a
    // `Router` not yet given its state), so both are one reference count.
    shared: Arc<Shared<K, B>>,
}

pub(crate) struct Shared<K, B> {
    pub(crate) extractor: Arc<K>,
    pub(crate) backend: Arc<B>,
    /// The policy name as configured.
    pub(crate) plain_name: Arc<str>,
    /// The policy name as an sf-string, for the fields.
    pub(crate) name: Arc<str>,
    /// The policy name as the `limiter` label of the metrics.
    pub(crate) limiter: &'static str,
    pub(crate) policy: HeaderValue,
    pub(crate) on_success: bool,
    pub(crate) events: Events,
}

impl<K: KeyExtractor, B: RateLimitBackend<K::Key>> Shared<K, B> {
    fn new(
        extractor: Arc<K>,
        backend: Arc<B>,
        plain_name: Arc<str>,
        on_success: bool,
        events: Events,
    ) -> Arc<Self> {
        let (q, w) = backend.quota();
        let quoted = headers::sf_string(&plain_name);
        Arc::new(Self {
            extractor,
            backend,
            policy: headers::policy_value(&quoted, q.get(), w),
            name: Arc::from(quoted),
            limiter: portcullis_core::internal::metrics::intern(&plain_name),
            plain_name,
            on_success,
            events,
        })
    }
}

impl<K: KeyExtractor> RateLimitLayer<K> {
    /// Limits each key to `quota` with the local [`GovernorBackend`] (at most 100,000
    /// tracked keys; see its docs for what happens beyond).
    pub fn new(extractor: K, quota: Quota) -> Self {
        Self::with_backend(extractor, GovernorBackend::new(quota))
    }
}

impl<K, C> RateLimitLayer<K, GovernorBackend<K::Key, C>>
where
    K: KeyExtractor,
    C: Clock + Clone + Send + Sync + 'static,
{
    /// Caps the keys tracked by the local backend (default 100,000). Resets its state:
    /// call it while configuring.
    pub fn max_keys(self, max_keys: NonZeroU32) -> Self {
        let backend = (*self.shared.backend).clone().with_max_keys(max_keys);
        self.rebuilt(|s| s.backend = Arc::new(backend))
    }
}

/// The configuration a layer is rebuilt from.
struct Config<K, B> {
    extractor: Arc<K>,
    backend: Arc<B>,
    name: Arc<str>,
    on_success: bool,
    events: Events,
}

impl<K: KeyExtractor, B: RateLimitBackend<K::Key>> RateLimitLayer<K, B> {
    /// Limits with `backend` (a [`GovernorBackend`] on a custom clock, or a shared
    /// store).
    pub fn with_backend(extractor: K, backend: B) -> Self {
        Self {
            shared: Shared::new(
                Arc::new(extractor),
                Arc::new(backend),
                Arc::from("default"),
                false,
                Events::default(),
            ),
        }
    }

    fn rebuilt(self, change: impl FnOnce(&mut Config<K, B>)) -> Self {
        let s = &self.shared;
        let mut config = Config {
            extractor: Arc::clone(&s.extractor),
            backend: Arc::clone(&s.backend),
            name: Arc::clone(&s.plain_name),
            on_success: s.on_success,
            events: s.events.clone(),
        };
        change(&mut config);
        Self {
            shared: Shared::new(
                config.extractor,
                config.backend,
                config.name,
                config.on_success,
                config.events,
            ),
        }
    }

    /// The policy name in the `RateLimit-Policy` / `RateLimit` fields and events
    /// (default `"default"`).
    pub fn policy_name(self, name: impl Into<Arc<str>>) -> Self {
        let name = name.into();
        self.rebuilt(|c| c.name = name)
    }

    /// Also send `RateLimit-Policy` and `RateLimit` on responses that were let
    /// through (default: only on `429`), so that clients can slow down before they
    /// are refused. See [the crate docs](crate#ratelimit-fields-on-every-response)
    /// for what the fields say.
    pub fn headers_on_success(self, on: bool) -> Self {
        self.rebuilt(|c| c.on_success = on)
    }

    /// Where security events go (default: `tracing`).
    pub fn with_events(self, events: Events) -> Self {
        self.rebuilt(|c| c.events = events)
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.shared.backend
    }
}

impl<K: KeyExtractor, B> Clone for RateLimitLayer<K, B> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K: KeyExtractor, B> fmt::Debug for RateLimitLayer<K, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("extractor", &std::any::type_name::<K>())
            .field("backend", &std::any::type_name::<B>())
            .field("name", &self.shared.plain_name)
            .field("headers_on_success", &self.shared.on_success)
            .finish()
    }
}

impl<S, K: KeyExtractor, B: RateLimitBackend<K::Key>> Layer<S> for RateLimitLayer<K, B> {
    type Service = RateLimit<S, K, B>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}
