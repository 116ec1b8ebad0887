//! The tower guards: [`RequireRoleLayer`] and [`RequireScopeLayer`] → [`Guard`] →
//! [`ResponseFuture`], for tonic services and any tower stack.
//!
//! A guard reads the [`Principal`] that an [`AuthLayer`](portcullis_core::AuthLayer)
//! further out put into the request extensions, and refuses like the extractors do:
//! `500` when no auth layer ran, `401` when there is no principal, `403`
//! `insufficient_scope` when it lacks the roles or scopes. gRPC requests get a
//! trailers-only `grpc-status` (`UNAUTHENTICATED`, `PERMISSION_DENIED`, `INTERNAL`).
//!
//! Put the guard *inside* the auth layer: with tower's `ServiceBuilder` and tonic's
//! `Server::builder().layer(..)`, layers added first are outermost, so add the auth
//! layer first; with axum's `Router::layer` / `route_layer`, the last call is outermost,
//! so call it last.

use std::{
    borrow::Cow,
    fmt,
    marker::PhantomData,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
/// The response future of [`Guard`]: the core layer's, which passes the inner
/// service's response on or answers a refusal; `M` is its [`BodyMode`].
pub use portcullis_core::auth::ResponseFuture;
use portcullis_core::{
    AuthContext, AuthError, AuthEvent, DefaultRenderer, Events, Principal, RenderRejection,
    body::{BodyMode, SameBody, Wrapped},
    extract::Rejection,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    GuardConfigError, Match, RoleHierarchy, RoleSet, ScopeSet, is_valid_name,
    rule::{self, Kind},
};

/// What a guard requires.
struct Rule {
    kind: Kind,
    mode: Match,
    names: Box<[Box<str>]>,
    /// The names joined by spaces, for the challenge's `scope` attribute.
    required: Box<str>,
}

impl Rule {
    fn new<I, N>(kind: Kind, mode: Match, names: I) -> Result<Self, GuardConfigError>
    where
        I: IntoIterator<Item = N>,
        N: Into<Box<str>>,
    {
        let names: Box<[Box<str>]> = names.into_iter().map(Into::into).collect();
        if names.is_empty() {
            return Err(GuardConfigError::empty());
        }
        if let Some(index) = names.iter().position(|n| !is_valid_name(n)) {
            return Err(GuardConfigError::invalid_name(index));
        }
        let required = names.join(" ").into_boxed_str();
        Ok(Self {
            kind,
            mode,
            names,
            required,
        })
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("kind", &self.kind.as_str())
            .field("mode", &self.mode)
            .field("names", &self.names)
            .finish()
    }
}

struct Shared<R> {
    rule: Arc<Rule>,
    hierarchy: Option<RoleHierarchy>,
    renderer: Arc<R>,
    events: Events,
}

impl<R> Clone for Shared<R> {
    fn clone(&self) -> Self {
        Self {
            rule: Arc::clone(&self.rule),
            hierarchy: self.hierarchy.clone(),
            renderer: Arc::clone(&self.renderer),
            events: self.events.clone(),
        }
    }
}

impl<R> Shared<R> {
    fn new(rule: Rule) -> Self
    where
        R: Default,
    {
        Self {
            rule: Arc::new(rule),
            hierarchy: None,
            renderer: Arc::new(R::default()),
            events: Events::default(),
        }
    }

    fn with_renderer<R2>(self, renderer: R2) -> Shared<R2> {
        Shared {
            rule: self.rule,
            hierarchy: self.hierarchy,
            renderer: Arc::new(renderer),
            events: self.events,
        }
    }
}

impl<R> fmt::Debug for Shared<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("kind", &self.rule.kind.as_str())
            .field("mode", &self.rule.mode)
            .field("names", &self.rule.names)
            .field("hierarchy", &self.hierarchy)
            .field("renderer", &std::any::type_name::<R>())
            .finish()
    }
}

/// Why the guard stops a request, before rendering.
enum Denial {
    NoAuthLayer,
    Anonymous,
    Lacking,
}

impl<R: RenderRejection> Shared<R> {
    fn decide<B>(&self, req: &Request<B>) -> Result<(), Denial> {
        let extensions = req.extensions();
        let Some(principal) = extensions.get::<Principal>() else {
            return Err(if extensions.get::<AuthContext>().is_none() {
                Denial::NoAuthLayer
            } else {
                Denial::Anonymous
            });
        };
        let hierarchy = match self.rule.kind {
            Kind::Role => self
                .hierarchy
                .as_ref()
                .or_else(|| RoleHierarchy::from_extensions(extensions)),
            Kind::Scope => None,
        };
        if rule::is_met(
            self.rule.kind,
            self.rule.mode,
            &self.rule.names,
            principal,
            hierarchy,
        ) {
            Ok(())
        } else {
            Err(Denial::Lacking)
        }
    }

    fn reject<B>(&self, req: Request<B>, denial: Denial) -> Response<Bytes> {
        let (parts, _body) = req.into_parts();
        let error = match denial {
            // Logs the misconfiguration at ERROR level.
            Denial::NoAuthLayer => Rejection::missing_auth_layer(&parts).error().clone(),
            Denial::Anonymous => AuthError::missing_credentials(),
            Denial::Lacking => rule::insufficient(
                self.rule.kind,
                Cow::Owned(self.rule.required.clone().into_string()),
            ),
        };
        self.events.emit(&AuthEvent::Rejected {
            error: &error,
            path: parts.uri.path(),
        });
        self.renderer.render(&error, &parts)
    }
}

macro_rules! guard_layer {
    (
        $(#[$doc:meta])*
        $layer:ident, $set:ident, $kind:expr, $what:literal
    ) => {
        $(#[$doc])*
        #[must_use]
        pub struct $layer<R = DefaultRenderer, M = Wrapped> {
            shared: Shared<R>,
            mode: PhantomData<fn() -> M>,
        }

        impl $layer {
            #[doc = concat!("Requires at least one of the ", $what, "s `names`.")]
            ///
            /// # Panics
            ///
            /// When `names` is empty or a name is invalid (see
            /// [`is_valid_name`](crate::is_valid_name)); use
            #[doc = concat!("[`try_any`](", stringify!($layer), "::try_any)")]
            /// for names read from configuration.
            pub fn any<I, N>(names: I) -> Self
            where
                I: IntoIterator<Item = N>,
                N: Into<Box<str>>,
            {
                Self::try_any(names).unwrap_or_else(|e| panic!("{e}"))
            }

            #[doc = concat!("Requires every one of the ", $what, "s `names`.")]
            ///
            /// # Panics
            ///
            /// When `names` is empty or a name is invalid (see
            /// [`is_valid_name`](crate::is_valid_name)); use
            #[doc = concat!("[`try_all`](", stringify!($layer), "::try_all)")]
            /// for names read from configuration.
            pub fn all<I, N>(names: I) -> Self
            where
                I: IntoIterator<Item = N>,
                N: Into<Box<str>>,
            {
                Self::try_all(names).unwrap_or_else(|e| panic!("{e}"))
            }

            #[doc = concat!("Requires at least one of the ", $what, "s `names`.")]
            ///
            /// # Errors
            ///
            /// When `names` is empty or a name is invalid.
            pub fn try_any<I, N>(names: I) -> Result<Self, GuardConfigError>
            where
                I: IntoIterator<Item = N>,
                N: Into<Box<str>>,
            {
                Ok(Self {
                    shared: Shared::new(Rule::new($kind, Match::Any, names)?),
                    mode: PhantomData,
                })
            }

            #[doc = concat!("Requires every one of the ", $what, "s `names`.")]
            ///
            /// # Errors
            ///
            /// When `names` is empty or a name is invalid.
            pub fn try_all<I, N>(names: I) -> Result<Self, GuardConfigError>
            where
                I: IntoIterator<Item = N>,
                N: Into<Box<str>>,
            {
                Ok(Self {
                    shared: Shared::new(Rule::new($kind, Match::All, names)?),
                    mode: PhantomData,
                })
            }

            #[doc = concat!("Requires the typed ", $what, " set `T`: a marker, `AnyOf<(..)>` or `AllOf<(..)>`.")]
            ///
            /// # Panics
            ///
            #[doc = concat!("When a hand-written `", stringify!($set), "` implementation has an invalid name")]
            /// (markers from the macros are checked at compile time).
            pub fn of<T: $set>() -> Self {
                let rule = Rule::new($kind, T::MATCH, T::NAMES.iter().copied())
                    .unwrap_or_else(|e| panic!("{e}"));
                Self {
                    shared: Shared::new(rule),
                    mode: PhantomData,
                }
            }
        }

        impl<R, M> $layer<R, M> {
            /// Replaces how refusals are rendered (default: RFC 6750 challenge and
            /// problem+json, or a gRPC status).
            pub fn with_renderer<R2: RenderRejection>(self, renderer: R2) -> $layer<R2, M> {
                $layer {
                    shared: self.shared.with_renderer(renderer),
                    mode: PhantomData,
                }
            }

            /// Answers in the inner service's own body type ([`SameBody`]; it must
            /// implement `From<Bytes>`, as axum's `Body` does) instead of a
            /// [`ResponseBody`](portcullis_core::body::ResponseBody) around it, which
            /// saves axum boxing every response body again. See
            /// [`portcullis_core::body`].
            pub fn same_body(self) -> $layer<R, SameBody> {
                $layer {
                    shared: self.shared,
                    mode: PhantomData,
                }
            }

            /// Where refusals are reported (default: `tracing`).
            pub fn with_events(mut self, events: Events) -> Self {
                self.shared.events = events;
                self
            }

            #[doc = concat!("Whether any or all of the ", $what, "s are required.")]
            pub fn mode(&self) -> Match {
                self.shared.rule.mode
            }

            #[doc = concat!("The required ", $what, "s.")]
            pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
                self.shared.rule.names.iter().map(|n| &**n)
            }
        }

        impl<R, M> Clone for $layer<R, M> {
            fn clone(&self) -> Self {
                Self {
                    shared: self.shared.clone(),
                    mode: PhantomData,
                }
            }
        }

        impl<R, M> fmt::Debug for $layer<R, M> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($layer)).field(&self.shared).finish()
            }
        }

        impl<S, R, M> Layer<S> for $layer<R, M> {
            type Service = Guard<S, R, M>;

            fn layer(&self, inner: S) -> Self::Service {
                Guard {
                    inner,
                    shared: Arc::new(self.shared.clone()),
                    mode: PhantomData,
                }
            }
        }
    };
}

guard_layer! {
    /// Requires roles of every request's [`Principal`]; applies [`Guard`]. See the
    /// [module docs](self).
    ///
    /// Roles are checked through a [`RoleHierarchy`]: the one given with
    /// [`with_hierarchy`](Self::with_hierarchy), else one found in the request
    /// extensions.
    ///
    /// ```
    /// use portcullis_guard::{roles, AnyOf, RequireRoleLayer, RoleHierarchy};
    ///
    /// roles! { pub Admin = "admin", pub Editor = "editor" }
    ///
    /// let by_name = RequireRoleLayer::any(["admin", "editor"]);
    /// let typed = RequireRoleLayer::of::<AnyOf<(Admin, Editor)>>();
    /// assert!(by_name.names().eq(typed.names()));
    ///
    /// let with_hierarchy = RequireRoleLayer::any(["viewer"])
    ///     .with_hierarchy(RoleHierarchy::new().grant("editor", ["viewer"]));
    /// # let _ = with_hierarchy;
    ///
    /// assert!(RequireRoleLayer::try_all(Vec::<String>::new()).is_err());
    /// ```
    RequireRoleLayer, RoleSet, Kind::Role, "role"
}

guard_layer! {
    /// Requires scopes of every request's [`Principal`]; applies [`Guard`]. See the
    /// [module docs](self).
    ///
    /// ```
    /// use portcullis_guard::{scopes, AllOf, Match, RequireScopeLayer};
    ///
    /// scopes! { pub ReadData = "data:read", pub WriteData = "data:write" }
    ///
    /// let by_name = RequireScopeLayer::all(["data:read", "data:write"]);
    /// let typed = RequireScopeLayer::of::<AllOf<(ReadData, WriteData)>>();
    /// assert!(by_name.names().eq(typed.names()));
    /// assert_eq!(typed.mode(), Match::All);
    ///
    /// assert!(RequireScopeLayer::try_any(["two words"]).is_err());
    /// ```
    RequireScopeLayer, ScopeSet, Kind::Scope, "scope"
}

impl<R, M> RequireRoleLayer<R, M> {
    /// Checks roles through `hierarchy`, whatever the request extensions hold.
    pub fn with_hierarchy(mut self, hierarchy: RoleHierarchy) -> Self {
        self.shared.hierarchy = Some(hierarchy);
        self
    }
}

/// Lets a request through to the inner service only if its [`Principal`] holds the
/// required roles or scopes. Made by [`RequireRoleLayer`] and [`RequireScopeLayer`];
/// see the [module docs](self). `M` is the [`BodyMode`] of its responses.
pub struct Guard<S, R = DefaultRenderer, M = Wrapped> {
    inner: S,
    shared: Arc<Shared<R>>,
    mode: PhantomData<fn() -> M>,
}

impl<S, R, M> Guard<S, R, M> {
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

impl<S: Clone, R, M> Clone for Guard<S, R, M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            mode: PhantomData,
        }
    }
}

impl<S: fmt::Debug, R, M> fmt::Debug for Guard<S, R, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("inner", &self.inner)
            .field("rule", &self.shared.rule)
            .finish()
    }
}

impl<S, R, M, ReqBody, ResBody> Service<Request<ReqBody>> for Guard<S, R, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: RenderRejection,
    M: BodyMode<ResBody>,
{
    type Response = Response<M::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, M>;

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
