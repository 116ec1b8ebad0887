use std::{
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, header, request::Parts};
use tower_service::Service;
use tracing::{Instrument as _, Span};

use super::{ResponseFuture, layer::Shared};
use crate::{
    AuthContext, AuthError, AuthErrorKind, AuthEvent, AuthResult, Authenticator, Events,
    MaybeReady, RenderRejection, body::RejectionBody, credentials::authorization_bearer, internal,
    render::DefaultRenderer,
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

/// A layered tonic service keeps its name, so `Server::builder().add_service(..)` takes
/// it as it took the bare one.
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl<S: tonic::server::NamedService, A, R> tonic::server::NamedService for AuthService<S, A, R> {
    const NAME: &'static str = S::NAME;
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
        let span = internal::auth_span("auth");
        match span.in_scope(|| self.shared.authenticator.authenticate(&parts)) {
            MaybeReady::Ready(result) => match decide(&self.shared, &mut parts, result, &span) {
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
                    let result = auth.instrument(span.clone()).await;
                    match decide(&shared, &mut parts, result, &span) {
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
    span: &Span,
) -> Result<(), Response<Bytes>> {
    let context = &shared.context;
    let settled = settle(parts, result, shared.optional, &shared.events, context);
    let outcome = settled.as_ref().map(|_| ());
    internal::decided("auth", span, &parts.extensions, outcome);
    settled.map_err(|error| {
        error.trace();
        parts.extensions.insert(context.clone());
        shared.events.emit(&AuthEvent::Rejected {
            error: &error,
            path: parts.uri.path(),
        });
        shared.renderer.render(&error, parts)
    })
}

/// Applies an authentication result to the request head: a principal goes into the
/// extensions (reported as [`AuthEvent::Authenticated`]); a request without any
/// credential passes, marked with `context`, only when `optional`; a bearer credential
/// that no authenticator recognised is invalid. A refusal is returned, neither
/// rendered nor reported: `AuthLayer` and the guard's policy layer share this much.
pub(crate) fn settle(
    parts: &mut Parts,
    result: AuthResult,
    optional: bool,
    events: &Events,
    context: &AuthContext,
) -> Result<(), AuthError> {
    match result {
        Ok(Some(principal)) => {
            events.emit(&AuthEvent::Authenticated {
                principal: &principal,
                path: parts.uri.path(),
            });
            // A principal says by itself that an auth layer ran; the context is only
            // needed to name a realm other than the default.
            if context.realm() != crate::DEFAULT_REALM {
                parts.extensions.insert(context.clone());
            }
            principal.move_into(&mut parts.extensions);
            Ok(())
        }
        Ok(None) => match authorization_bearer(&parts.headers) {
            // A bearer credential nobody recognised is invalid, not absent.
            Ok(Some(_)) => Err(AuthError::invalid_token("unrecognized_credential")),
            Ok(None) if optional => {
                parts.extensions.insert(context.clone());
                Ok(())
            }
            Ok(None) => Err(missing(&parts.headers)),
            Err(error) => Err(error),
        },
        // An authenticator that found no credential but names its own challenge (DPoP's
        // `algs`): absent all the same, so an optional layer lets the request through.
        Err(error) if error.kind() == AuthErrorKind::MissingCredentials && optional => {
            parts.extensions.insert(context.clone());
            Ok(())
        }
        Err(error) if error.kind() == AuthErrorKind::MissingCredentials => {
            let hint = missing(&parts.headers);
            Err(match error.dpop_algs() {
                Some(algs) if hint.reason() != error.reason() => {
                    hint.with_dpop_challenge(algs.to_owned())
                }
                _ => error,
            })
        }
        Err(error) => Err(error),
    }
}

/// The refusal of a request without a credential. An `Authorization` header holding a
/// bare value (a token sent without its `Bearer ` scheme, a common slip with gRPC
/// metadata) gets a description that says how to send it.
#[cold]
fn missing(headers: &HeaderMap) -> AuthError {
    let bare = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| !value.is_empty() && !value.as_bytes().contains(&b' '));
    if bare {
        AuthError::new(AuthErrorKind::MissingCredentials, "missing_bearer_scheme")
            .with_description("authentication is required: send the token as `Bearer <token>`")
    } else {
        AuthError::missing_credentials()
    }
}
