use std::{
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, request::Parts};
use portcullis_core::{
    AuthError, AuthEvent, DefaultRenderer, MaybeReady, RenderRejection, auth::ResponseFuture,
    body::RejectionBody, internal::metrics,
};
use tower_service::Service;

use super::layer::Shared;
use crate::{BackendError, Decision, KeyExtractor, RateLimitBackend, headers};

/// Rate-limits requests before the inner service sees them. Made by
/// [`RateLimitLayer`](super::RateLimitLayer); see the [module docs](crate::limit).
pub struct RateLimit<S, K, B> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared<K, B>>,
}

impl<S, K, B> RateLimit<S, K, B> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, K, B> Clone for RateLimit<S, K, B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A rate-limited tonic service keeps its name, so one service of a server can be
/// limited: `Server::builder().add_service(limit.layer(SearchServer::new(..)))`.
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl<S: tonic::server::NamedService, K, B> tonic::server::NamedService for RateLimit<S, K, B> {
    const NAME: &'static str = S::NAME;
}

impl<S: fmt::Debug, K, B> fmt::Debug for RateLimit<S, K, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("name", &self.shared.name)
            .finish()
    }
}

impl<S, K, B, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S, K, B>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    K: KeyExtractor,
    B: RateLimitBackend<K::Key>,
    ReqBody: Send + 'static,
    ResBody: RejectionBody,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    // A deferred decision resolves to what to answer next, itself a future by design.
    #[allow(clippy::async_yields_async)]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let key = match self.shared.extractor.extract(&parts) {
            Ok(key) => key,
            Err(error) => {
                let (error, advice) = error.into_parts();
                if let Some(advice) = advice {
                    tracing::error!(
                        target: "portcullis::config",
                        reason = error.reason(),
                        "rate limit key unavailable: {advice}"
                    );
                }
                return ResponseFuture::rejected(reject(&parts, &error));
            }
        };
        match self.shared.backend.check(&key) {
            MaybeReady::Ready(result) => answer(&self.shared, &mut self.inner, parts, body, result),
            MaybeReady::Pending(check) => {
                // The inner service is called once the backend has answered: take the
                // one that is ready, leave a clone.
                let clone = self.inner.clone();
                let mut inner = mem::replace(&mut self.inner, clone);
                let shared = Arc::clone(&self.shared);
                ResponseFuture::deferred(async move {
                    let result = check.await;
                    answer(&shared, &mut inner, parts, body, result)
                })
            }
        }
    }
}

/// Calls the inner service (with the fields, if asked for) or refuses. Always
/// inlined: a call would move the request head through memory once more.
#[inline(always)]
fn answer<S, K, B, ReqBody>(
    shared: &Shared<K, B>,
    inner: &mut S,
    parts: Parts,
    body: ReqBody,
    result: Result<Decision, BackendError>,
) -> ResponseFuture<S::Future>
where
    S: Service<Request<ReqBody>>,
    K: KeyExtractor,
{
    match result {
        Ok(decision) if decision.is_allowed() => {
            metrics::rate_limit_decision(shared.limiter, "allowed");
            let future = inner.call(Request::from_parts(parts, body));
            if shared.on_success {
                ResponseFuture::called_with_headers(future, success_fields(shared, &decision))
            } else {
                // Without success headers an allowed request's counts are never
                // worked out.
                ResponseFuture::called(future)
            }
        }
        Ok(decision) => {
            metrics::rate_limit_decision(shared.limiter, "throttled");
            ResponseFuture::rejected(throttled(shared, &parts, &decision))
        }
        Err(error) => {
            metrics::rate_limit_decision(shared.limiter, "error");
            ResponseFuture::rejected(unavailable(&parts, error))
        }
    }
}

fn success_fields<K, B>(
    shared: &Shared<K, B>,
    decision: &Decision,
) -> [(HeaderName, HeaderValue); 2] {
    headers::fields(
        &shared.policy,
        headers::limit_value(&shared.name, decision.remaining(), decision.reset()),
    )
}

#[cold]
fn unavailable(parts: &Parts, error: BackendError) -> Response<Bytes> {
    tracing::warn!(target: "portcullis::ratelimit", error = %error, "rate limit backend failed");
    let error = AuthError::unavailable("rate_limit_backend").with_source(error);
    reject(parts, &error)
}

#[cold]
#[inline(never)]
fn throttled<K: KeyExtractor, B>(
    shared: &Shared<K, B>,
    parts: &Parts,
    decision: &Decision,
) -> Response<Bytes> {
    let retry_after = decision.retry_after();
    shared.events.emit(&AuthEvent::Throttled {
        policy: shared.name.trim_matches('"'),
        key_kind: shared.extractor.kind(),
        retry_after,
    });
    // `AuthError` renders `Retry-After` and names the wait in the problem body too
    // (`retry_after`, in seconds).
    let mut response = reject(parts, &AuthError::rate_limited(retry_after));
    headers::insert(
        response.headers_mut(),
        &shared.policy,
        headers::limit_value(&shared.name, 0, decision.reset()),
    );
    response
}

fn reject(parts: &Parts, error: &AuthError) -> Response<Bytes> {
    tracing::trace!(
        target: "portcullis::rejection",
        status = error.status().as_u16(),
        code = error.kind().code(),
        reason = error.reason(),
        "request rejected"
    );
    DefaultRenderer.render(error, parts)
}
