use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use portcullis_core::{
    DefaultRenderer, RenderRejection, auth::ResponseFuture, body::RejectionBody,
};
use tower_service::Service;

use super::shared::Shared;

/// Lets a request through to the inner service only if its
/// [`Principal`](portcullis_core::Principal) holds the required roles or scopes. Made
/// by [`RequireRoleLayer`](super::RequireRoleLayer),
/// [`RequireScopeLayer`](super::RequireScopeLayer) and
/// [`RequireRoleOrScopeLayer`](super::RequireRoleOrScopeLayer); see the
/// [module docs](super).
///
/// It answers in the inner service's body type, with core's [`ResponseFuture`].
pub struct Guard<S, R = DefaultRenderer> {
    inner: S,
    shared: Arc<Shared<R>>,
}

impl<S, R> Guard<S, R> {
    pub(super) fn new(inner: S, shared: Arc<Shared<R>>) -> Self {
        Self { inner, shared }
    }

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

impl<S: Clone, R> Clone for Guard<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A guarded tonic service keeps its name, so one service of a server can be guarded:
/// `Server::builder().add_service(RequireRoleLayer::any(["admin"]).layer(AdminServer::new(..)))`.
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl<S: tonic::server::NamedService, R> tonic::server::NamedService for Guard<S, R> {
    const NAME: &'static str = S::NAME;
}

impl<S: fmt::Debug, R> fmt::Debug for Guard<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("inner", &self.inner)
            .field("requirement", &self.shared.requirement)
            .finish()
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for Guard<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: RenderRejection,
    ResBody: RejectionBody,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match self.shared.decide(&req) {
            Ok(()) => ResponseFuture::called(self.inner.call(req)),
            Err(denial) => ResponseFuture::rejected(self.shared.reject(req, denial)),
        }
    }
}
