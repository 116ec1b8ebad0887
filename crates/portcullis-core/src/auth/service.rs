use std::{
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response, request::Parts};
use tower_service::Service;

use super::{ResponseFuture, layer::Shared};
use crate::{
    AuthError, AuthEvent, AuthResult, Authenticator, MaybeReady, RenderRejection,
    body::RejectionBody, credentials::authorization_bearer, render::DefaultRenderer,
};

/// Authenticates each request before the inner service sees it. Made by
/// [`AuthLayer`](super::AuthLayer); see the [module docs](crate::auth).
pub struct AuthService<S, A, R = DefaultRenderer> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared<A, R>>,
}

impl<S, A, R> AuthService<S, A, R> {
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

impl<S: Clone, A, R> Clone for AuthService<S, A, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, A, R> fmt::Debug for AuthService<S, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .field("authenticator", &std::any::type_name::<A>())
            .field("optional", &self.shared.optional)
            .finish()
    }
}

impl<S, A, R, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S, A, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    A: Authenticator,
    R: RenderRejection,
    ResBody: RejectionBody,
    ReqBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        match self.shared.authenticator.authenticate(&parts) {
            MaybeReady::Ready(result) => match decide(&self.shared, &mut parts, result) {
                Ok(()) => ResponseFuture::called(self.inner.call(Request::from_parts(parts, body))),
                Err(response) => ResponseFuture::rejected(response),
            },
            MaybeReady::Pending(auth) => {
                // `self.inner` is the clone that was driven to readiness: take it for
                // the deferred call and leave a fresh clone behind.
                let clone = self.inner.clone();
                let mut inner = mem::replace(&mut self.inner, clone);
                let shared = Arc::clone(&self.shared);
                // The block resolves to the future that answers next, on purpose.
                #[allow(clippy::async_yields_async)]
                let then = async move {
                    match decide(&shared, &mut parts, auth.await) {
                        Ok(()) => {
                            ResponseFuture::called(inner.call(Request::from_parts(parts, body)))
                        }
                        Err(response) => ResponseFuture::rejected(response),
                    }
                };
                ResponseFuture::deferred(then)
            }
        }
    }
}

// The rejection is returned by value: it becomes the response future's state anyway,
// so boxing it would only add an allocation to the rejection path.
#[allow(clippy::result_large_err)]
/// Applies an authentication result to the request head: the principal goes into the
/// extensions, or the rejection is rendered.
fn decide<A, R: RenderRejection>(
    shared: &Shared<A, R>,
    parts: &mut Parts,
    result: AuthResult,
) -> Result<(), Response<Bytes>> {
    let error = match result {
        Ok(Some(principal)) => {
            shared.events.emit(&AuthEvent::Authenticated {
                principal: &principal,
                path: parts.uri.path(),
            });
            // A principal says by itself that an auth layer ran; the context is only
            // needed to name a realm other than the default.
            if shared.context.realm() != crate::DEFAULT_REALM {
                parts.extensions.insert(shared.context.clone());
            }
            principal.move_into(&mut parts.extensions);
            return Ok(());
        }
        Ok(None) => match authorization_bearer(&parts.headers) {
            // A bearer credential nobody recognised is invalid, not absent.
            Ok(Some(_)) => AuthError::invalid_token("unrecognized_credential"),
            Ok(None) if shared.optional => {
                parts.extensions.insert(shared.context.clone());
                return Ok(());
            }
            Ok(None) => AuthError::missing_credentials(),
            Err(error) => error,
        },
        Err(error) => error,
    };
    error.trace();
    parts.extensions.insert(shared.context.clone());
    shared.events.emit(&AuthEvent::Rejected {
        error: &error,
        path: parts.uri.path(),
    });
    Err(shared.renderer.render(&error, parts))
}
