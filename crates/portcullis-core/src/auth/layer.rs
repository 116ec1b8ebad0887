use std::{fmt, sync::Arc};

use tower_layer::Layer;

use super::AuthService;
use crate::{AuthContext, Events, RenderRejection, render::DefaultRenderer};

/// Applies [`AuthService`] to a service. See the [module docs](crate::auth).
///
/// Cloning the layer shares the authenticator, renderer and event sink. The layered
/// service answers in the inner service's body type (see the [`body`](crate::body)
/// module), so a layer can wrap a single route or a whole `Router`.
///
/// ```
/// use axum::{routing::get, Router};
/// use portcullis_core::{AuthLayer, Principal};
/// # use portcullis_core::{AuthResult, Authenticator, MaybeReady};
/// # struct MyAuthenticator;
/// # impl Authenticator for MyAuthenticator {
/// #     fn authenticate(&self, _: &http::request::Parts) -> MaybeReady<AuthResult> { MaybeReady::Ready(Ok(None)) }
/// # }
///
/// let app: Router = Router::new()
///     .route("/me", get(|p: Principal| async move { p.subject().to_owned() }))
///     .route_layer(AuthLayer::new(MyAuthenticator).realm("example"));
/// ```
#[must_use]
pub struct AuthLayer<A, R = DefaultRenderer> {
    // Shared with every service the layer makes, so that `layer` is one reference
    // count (axum may call it on every request, for a `Router` not given its state).
    shared: Arc<Shared<A, R>>,
}

pub(crate) struct Shared<A, R> {
    pub(crate) authenticator: Arc<A>,
    pub(crate) renderer: Arc<R>,
    pub(crate) optional: bool,
    pub(crate) events: Events,
    pub(crate) context: AuthContext,
}

impl<A, R> Clone for Shared<A, R> {
    fn clone(&self) -> Self {
        Self {
            authenticator: Arc::clone(&self.authenticator),
            renderer: Arc::clone(&self.renderer),
            optional: self.optional,
            events: self.events.clone(),
            context: self.context.clone(),
        }
    }
}

impl<A> AuthLayer<A> {
    /// A layer that requires credentials accepted by `authenticator`.
    pub fn new(authenticator: A) -> Self {
        Self {
            shared: Arc::new(Shared {
                authenticator: Arc::new(authenticator),
                renderer: Arc::new(DefaultRenderer),
                optional: false,
                events: Events::default(),
                context: AuthContext::new(crate::DEFAULT_REALM),
            }),
        }
    }
}

impl<A, R> AuthLayer<A, R> {
    /// Let requests without any credential through, without a [`Principal`](crate::Principal).
    /// Present but invalid credentials are still refused.
    pub fn optional(mut self) -> Self {
        Arc::make_mut(&mut self.shared).optional = true;
        self
    }

    /// The realm named in `WWW-Authenticate` challenges (default `"api"`).
    pub fn realm(mut self, realm: impl Into<Arc<str>>) -> Self {
        Arc::make_mut(&mut self.shared).context = AuthContext::new(realm);
        self
    }

    /// Where security events go (default: [`TracingSink`](crate::TracingSink)).
    pub fn with_events(mut self, events: Events) -> Self {
        Arc::make_mut(&mut self.shared).events = events;
        self
    }

    /// Replaces how rejections are rendered.
    pub fn with_renderer<R2: RenderRejection>(self, renderer: R2) -> AuthLayer<A, R2> {
        let s = &self.shared;
        AuthLayer {
            shared: Arc::new(Shared {
                authenticator: Arc::clone(&s.authenticator),
                renderer: Arc::new(renderer),
                optional: s.optional,
                events: s.events.clone(),
                context: s.context.clone(),
            }),
        }
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &A {
        &self.shared.authenticator
    }
}

impl<A, R> Clone for AuthLayer<A, R> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<A, R> fmt::Debug for AuthLayer<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("authenticator", &std::any::type_name::<A>())
            .field("optional", &self.shared.optional)
            .field("realm", &self.shared.context.realm())
            .finish()
    }
}

impl<S, A, R> Layer<S> for AuthLayer<A, R> {
    type Service = AuthService<S, A, R>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}
