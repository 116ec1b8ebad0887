//! [`Policy`]: the service, and the one order every call is checked in.

use std::{
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response, request::Parts};
use portcullis_core::{
    AuthError, AuthErrorKind, AuthEvent, AuthResult, Authenticator, DefaultRenderer, MaybeReady,
    Principal, RenderRejection,
    auth::ResponseFuture,
    body::RejectionBody,
    internal::{self, decided, settle},
};
use tower_service::Service;

use super::{access::Gate, layer::Shared, table::Entry};
use crate::{
    RoleHierarchy,
    rule::{Kind, insufficient},
};

/// Checks each call against the entry of its path in the policy table: authentication,
/// then roles and scopes, then the rate limit, then the inner service. Made by
/// [`PolicyLayer`](super::PolicyLayer); see the [module docs](super).
///
/// It answers in the inner service's body type, with core's [`ResponseFuture`].
pub struct Policy<S, A> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared<A>>,
}

impl<S, A> Policy<S, A> {
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

impl<S: Clone, A> Clone for Policy<S, A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A tonic service behind a policy keeps its name, for `Server::builder().add_service(..)`.
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl<S: tonic::server::NamedService, A> tonic::server::NamedService for Policy<S, A> {
    const NAME: &'static str = S::NAME;
}

impl<S: fmt::Debug, A> fmt::Debug for Policy<S, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("inner", &self.inner)
            .field("table", &self.shared.table)
            .finish()
    }
}

impl<S, A, ReqBody, ResBody> Service<Request<ReqBody>> for Policy<S, A>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    A: Authenticator,
    ReqBody: Send + 'static,
    ResBody: RejectionBody,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        let entry = self.shared.table.find(parts.uri.path());
        // One span per authentication, as the auth layer makes; none for open entries.
        let span = match entry.gate {
            Gate::Open => tracing::Span::none(),
            Gate::Anonymous | Gate::Authenticated => internal::auth_span("policy"),
        };
        let authenticated = match entry.gate {
            Gate::Open => None,
            Gate::Anonymous | Gate::Authenticated => {
                match span.in_scope(|| self.shared.authenticator.authenticate(&parts)) {
                    MaybeReady::Ready(result) => Some(result),
                    MaybeReady::Pending(pending) => {
                        // The inner service is called once the authenticator has
                        // answered: take the one that is ready, leave a clone.
                        let clone = self.inner.clone();
                        let mut inner = mem::replace(&mut self.inner, clone);
                        let shared = Arc::clone(&self.shared);
                        let entry = Arc::clone(entry);
                        // The block resolves to the future that answers next.
                        #[allow(clippy::async_yields_async)]
                        return ResponseFuture::deferred(async move {
                            let result =
                                tracing::Instrument::instrument(pending, span.clone()).await;
                            match shared.decide(&entry, &mut parts, Some(result), &span) {
                                Ok(()) => ResponseFuture::called(
                                    inner.call(Request::from_parts(parts, body)),
                                ),
                                Err(response) => ResponseFuture::rejected(response),
                            }
                        });
                    }
                }
            }
        };
        match self.shared.decide(entry, &mut parts, authenticated, &span) {
            Ok(()) => ResponseFuture::called(self.inner.call(Request::from_parts(parts, body))),
            Err(response) => ResponseFuture::rejected(response),
        }
    }
}

// The refusal is returned by value: it becomes the response future's state anyway.
#[allow(clippy::result_large_err)]
impl<A> Shared<A> {
    /// Runs the checks after authentication (`None` when the entry is open) and
    /// renders a refusal.
    fn decide(
        &self,
        entry: &Entry,
        parts: &mut Parts,
        authenticated: Option<AuthResult>,
        span: &tracing::Span,
    ) -> Result<(), Response<Bytes>> {
        let checked = self.check(entry, parts, authenticated);
        let result = checked.as_ref().map(|_| ());
        decided("policy", span, &parts.extensions, result);
        checked.map_err(|error| self.refuse(&error, parts))
    }

    fn check(
        &self,
        entry: &Entry,
        parts: &mut Parts,
        authenticated: Option<AuthResult>,
    ) -> Result<(), AuthError> {
        match authenticated {
            Some(result) => {
                let optional = entry.gate == Gate::Anonymous;
                settle(parts, result, optional, &self.events, &self.context)?;
                self.authorise(entry, parts)?;
            }
            // Handlers of an open method can still ask for a principal, and are told
            // it is missing rather than that no auth layer runs.
            None => {
                parts.extensions.insert(self.context.clone());
            }
        }
        #[cfg(feature = "ratelimit")]
        if let Some(limiter) = &entry.limiter {
            limiter.count(parts, &self.resolver, &self.events)?;
        }
        Ok(())
    }

    /// The entry's roles and scopes, held by the principal (if any: an entry that
    /// requires either requires authentication).
    fn authorise(&self, entry: &Entry, parts: &mut Parts) -> Result<(), AuthError> {
        let extensions = &parts.extensions;
        let Some(principal) = extensions.get::<Principal>() else {
            return Ok(());
        };
        if let Some(roles) = &entry.roles {
            let hierarchy = self
                .hierarchy
                .as_ref()
                .or_else(|| extensions.get::<RoleHierarchy>());
            if !roles.is_met(principal, hierarchy) {
                return Err(insufficient(Kind::Role, roles.joined()));
            }
        }
        if let Some(scopes) = &entry.scopes
            && !scopes.is_met(principal, None)
        {
            return Err(insufficient(Kind::Scope, scopes.joined()));
        }
        if let Some(hierarchy) = &self.hierarchy {
            parts.extensions.insert(hierarchy.clone());
        }
        Ok(())
    }

    #[cold]
    fn refuse(&self, error: &AuthError, parts: &mut Parts) -> Response<Bytes> {
        parts.extensions.insert(self.context.clone());
        // A rate limit reports itself as throttled.
        if error.kind() != AuthErrorKind::RateLimited {
            self.events.emit(&AuthEvent::Rejected {
                error,
                path: parts.uri.path(),
            });
        }
        DefaultRenderer.render(error, parts)
    }
}
