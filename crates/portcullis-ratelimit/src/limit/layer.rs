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
    extractor: Arc<K>,
    backend: Arc<B>,
    name: Arc<str>,
    on_success: bool,
    events: Events,
}

pub(crate) struct Shared<K, B> {
    pub(crate) extractor: Arc<K>,
    pub(crate) backend: Arc<B>,
    pub(crate) name: Arc<str>,
    pub(crate) policy: HeaderValue,
    pub(crate) on_success: bool,
    pub(crate) events: Events,
}

impl<K: KeyExtractor> RateLimitLayer<K> {
    /// Limits each key to `quota` with the local [`GovernorBackend`] (at most 100,000
    /// tracked keys; see its docs for what happens beyond).
    pub fn new(extractor: K, quota: Quota) -> Self {
        Self::with_backend(extractor, GovernorBackend::new(quota))
    }
}

impl<K: KeyExtractor, C: Clock + Clone> RateLimitLayer<K, GovernorBackend<K::Key, C>> {
    /// Caps the keys tracked by the local backend (default 100,000). Resets its state:
    /// call it while configuring.
    pub fn max_keys(mut self, max_keys: NonZeroU32) -> Self {
        let backend = (*self.backend).clone().with_max_keys(max_keys);
        self.backend = Arc::new(backend);
        self
    }
}

impl<K: KeyExtractor, B> RateLimitLayer<K, B> {
    /// Limits with `backend` (a [`GovernorBackend`] on a custom clock, or a shared
    /// store).
    pub fn with_backend(extractor: K, backend: B) -> Self {
        Self {
            extractor: Arc::new(extractor),
            backend: Arc::new(backend),
            name: Arc::from("default"),
            on_success: false,
            events: Events::default(),
        }
    }
}

impl<K: KeyExtractor, B> RateLimitLayer<K, B> {
    /// The policy name in the `RateLimit-Policy` / `RateLimit` fields and events
    /// (default `"default"`).
    pub fn policy_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Also send `RateLimit-Policy` and `RateLimit` on responses that were let
    /// through (default: only on `429`), so that clients can slow down before they
    /// are refused. See [the crate docs](crate#ratelimit-fields-on-every-response)
    /// for what the fields say.
    pub fn headers_on_success(mut self, on: bool) -> Self {
        self.on_success = on;
        self
    }

    /// Where security events go (default: `tracing`).
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }
}

impl<K: KeyExtractor, B> Clone for RateLimitLayer<K, B> {
    fn clone(&self) -> Self {
        Self {
            extractor: Arc::clone(&self.extractor),
            backend: Arc::clone(&self.backend),
            name: Arc::clone(&self.name),
            on_success: self.on_success,
            events: self.events.clone(),
        }
    }
}

impl<K: KeyExtractor, B> fmt::Debug for RateLimitLayer<K, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("extractor", &std::any::type_name::<K>())
            .field("backend", &std::any::type_name::<B>())
            .field("name", &self.name)
            .field("headers_on_success", &self.on_success)
            .finish()
    }
}

impl<S, K: KeyExtractor, B: RateLimitBackend<K::Key>> Layer<S> for RateLimitLayer<K, B> {
    type Service = RateLimit<S, K, B>;

    fn layer(&self, inner: S) -> Self::Service {
        let (q, w) = self.backend.quota();
        let quoted = headers::sf_string(&self.name);
        RateLimit {
            inner,
            shared: Arc::new(Shared {
                extractor: Arc::clone(&self.extractor),
                backend: Arc::clone(&self.backend),
                policy: headers::policy_value(&quoted, q.get(), w),
                name: Arc::from(quoted),
                on_success: self.on_success,
                events: self.events.clone(),
            }),
        }
    }
}
