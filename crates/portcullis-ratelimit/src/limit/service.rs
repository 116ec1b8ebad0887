// A rejection is the refusal path: built once and returned at once; boxing it would
// only add an allocation.
#![allow(clippy::result_large_err)]

use std::{
    fmt,
    marker::PhantomData,
    mem,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response, request::Parts};
use portcullis_core::{
    AuthError, AuthEvent, DefaultRenderer, RenderRejection,
    body::{BodyMode, Wrapped},
};
use tower_service::Service;

use super::{ResponseFuture, future::Fields, layer::Shared};
use crate::{BackendError, Check, Decision, KeyExtractor, RateLimitBackend, headers};

/// Rate-limits requests before the inner service sees them. Made by
/// [`RateLimitLayer`](super::RateLimitLayer); see the [module docs](crate::limit).
pub struct RateLimit<S, K, B, M = Wrapped> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared<K, B>>,
    pub(super) mode: PhantomData<fn() -> M>,
}

impl<S, K, B, M> RateLimit<S, K, B, M> {
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

impl<S: Clone, K, B, M> Clone for RateLimit<S, K, B, M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            mode: PhantomData,
        }
    }
}

impl<S: fmt::Debug, K, B, M> fmt::Debug for RateLimit<S, K, B, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("name", &self.shared.name)
            .finish()
    }
}

impl<S, K, B, M, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S, K, B, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    K: KeyExtractor,
    B: RateLimitBackend<K::Key>,
    M: BodyMode<ResBody>,
    ReqBody: Send + 'static,
{
    type Response = Response<M::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, M>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let key = match self.shared.extractor.extract(&parts) {
            Ok(key) => key,
            Err(error) => {
                let error = error.into_error();
                if error.status().is_server_error() {
                    tracing::error!(
                        target: "portcullis::config",
                        reason = error.reason(),
                        "rate limit key unavailable: {}",
                        error.description()
                    );
                }
                return ResponseFuture::rejected(reject(&self.shared, &parts, &error));
            }
        };
        // Without success headers, an allowed request's counts are never read.
        let check = if self.shared.on_success {
            self.shared.backend.check(&key)
        } else {
            self.shared.backend.check_admission(&key)
        };
        match check {
            Check::Ready(result) => match decide(&self.shared, &parts, result) {
                Ok(fields) => ResponseFuture::called(
                    self.inner.call(Request::from_parts(parts, body)),
                    fields,
                ),
                Err(response) => ResponseFuture::rejected(response),
            },
            Check::Pending(check) => {
                let clone = self.inner.clone();
                let mut inner = mem::replace(&mut self.inner, clone);
                let shared = Arc::clone(&self.shared);
                ResponseFuture::checking(check, move |result| {
                    let fields = decide(&shared, &parts, result)?;
                    Ok((inner.call(Request::from_parts(parts, body)), fields))
                })
            }
        }
    }
}

fn decide<K: KeyExtractor, B>(
    shared: &Shared<K, B>,
    parts: &Parts,
    result: Result<Decision, BackendError>,
) -> Result<Fields, Response<Bytes>> {
    let decision = match result {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(target: "portcullis::ratelimit", error = %e, "rate limit backend failed");
            let error = AuthError::unavailable("rate_limit_backend").with_source(e);
            return Err(reject(shared, parts, &error));
        }
    };
    if decision.is_allowed() {
        return Ok(shared.on_success.then(|| {
            Box::new((
                shared.policy.clone(),
                headers::limit_value(&shared.name, decision.remaining(), decision.reset()),
            ))
        }));
    }
    let retry_after = decision.retry_after();
    shared.events.emit(&AuthEvent::Throttled {
        policy: shared.name.trim_matches('"'),
        key_kind: shared.extractor.kind(),
        retry_after,
    });
    let error = AuthError::rate_limited(retry_after);
    let mut response = reject(shared, parts, &error);
    headers::insert(
        response.headers_mut(),
        &shared.policy,
        headers::limit_value(&shared.name, 0, decision.reset()),
    );
    Err(response)
}

fn reject<K, B>(shared: &Shared<K, B>, parts: &Parts, error: &AuthError) -> Response<Bytes> {
    let _ = shared;
    tracing::trace!(
        target: "portcullis::rejection",
        status = error.status().as_u16(),
        code = error.kind().code(),
        reason = error.reason(),
        "request rejected"
    );
    DefaultRenderer.render(error, parts)
}
