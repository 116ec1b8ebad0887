use std::{fmt, marker::PhantomData, num::NonZeroU32, sync::Arc};

use governor::{Quota, clock::Clock};
use http::HeaderValue;
use portcullis_core::{
    Events,
    body::{SameBody, Wrapped},
};
use tower_layer::Layer;

use super::RateLimit;
use crate::{GovernorBackend, KeyExtractor, RateLimitBackend, headers};

/// Applies [`RateLimit`] to a service. See the [module docs](crate::limit).
///
/// Cloning the layer shares the extractor and the backend, so every clone (and every
/// service it builds) counts against one state. `M` is the
/// [`BodyMode`](portcullis_core::body::BodyMode) of its responses (see
/// [`same_body`](Self::same_body)).
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
pub struct RateLimitLayer<
    K: KeyExtractor,
    B = GovernorBackend<<K as KeyExtractor>::Key>,
    M = Wrapped,
> {
    extractor: Arc<K>,
    backend: Arc<B>,
    name: Arc<str>,
    on_success: bool,
    events: Events,
    mode: PhantomData<fn() -> M>,
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

impl<K: KeyExtractor, C: Clock + Clone, M> RateLimitLayer<K, GovernorBackend<K::Key, C>, M> {
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
            mode: PhantomData,
        }
    }
}

impl<K: KeyExtractor, B, M> RateLimitLayer<K, B, M> {
    /// Answers in the inner service's own body type ([`SameBody`]; it must implement
    /// `From<Bytes>`, as axum's `Body` does) instead of a
    /// [`ResponseBody`](portcullis_core::body::ResponseBody) around it. With axum this
    /// saves boxing every response body again, and lets the layer wrap a whole
    /// `Router` handed to `axum::serve`, limiting requests before they are routed.
    pub fn same_body(self) -> RateLimitLayer<K, B, SameBody> {
        RateLimitLayer {
            extractor: self.extractor,
            backend: self.backend,
            name: self.name,
            on_success: self.on_success,
            events: self.events,
            mode: PhantomData,
        }
    }

    /// The policy name in the `RateLimit-Policy` / `RateLimit` fields and events
    /// (default `"default"`).
    pub fn policy_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Also send `RateLimit-Policy` and `RateLimit` on responses that were let
    /// through (default: only on `429`).
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

impl<K: KeyExtractor, B, M> Clone for RateLimitLayer<K, B, M> {
    fn clone(&self) -> Self {
        Self {
            extractor: Arc::clone(&self.extractor),
            backend: Arc::clone(&self.backend),
            name: Arc::clone(&self.name),
            on_success: self.on_success,
            events: self.events.clone(),
            mode: PhantomData,
        }
    }
}

impl<K: KeyExtractor, B, M> fmt::Debug for RateLimitLayer<K, B, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("extractor", &std::any::type_name::<K>())
            .field("backend", &std::any::type_name::<B>())
            .field("name", &self.name)
            .field("headers_on_success", &self.on_success)
            .finish()
    }
}

impl<S, K: KeyExtractor, B: RateLimitBackend<K::Key>, M> Layer<S> for RateLimitLayer<K, B, M> {
    type Service = RateLimit<S, K, B, M>;

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
            mode: PhantomData,
        }
    }
}
