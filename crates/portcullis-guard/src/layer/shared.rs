//! What a guard layer holds and how it decides: the rule, the hierarchy, the renderer
//! and the event sink, shared by every clone.

use std::{fmt, sync::Arc};

use bytes::Bytes;
use http::{Request, Response};
use portcullis_core::{
    AuthContext, AuthError, AuthEvent, AuthRejection, DefaultRenderer, Events, Principal,
    RenderRejection, internal::decided,
};

pub(super) use crate::rule::Rule;
use crate::{
    RoleHierarchy,
    rule::{self, Kind},
};

/// What a guard requires: its rule, or else (role-or-scope guards) a scope rule.
#[derive(Debug)]
pub(super) struct Requirement {
    pub(super) rule: Rule,
    pub(super) or_scope: Option<Rule>,
}

impl Requirement {
    fn is_met(&self, principal: &Principal, hierarchy: Option<&RoleHierarchy>) -> bool {
        self.or_scope
            .as_ref()
            .is_some_and(|scope| scope.is_met(principal, None))
            || self.rule.is_met(principal, hierarchy)
    }

    fn refusal(&self) -> AuthError {
        match &self.or_scope {
            None => rule::insufficient(self.rule.kind, self.rule.joined()),
            Some(scope) => rule::insufficient_role_or_scope(self.rule.joined(), scope.joined()),
        }
    }
}

/// The configuration of a guard layer, shared by its clones and services.
pub(super) struct Shared<R> {
    pub(super) requirement: Arc<Requirement>,
    pub(super) hierarchy: Option<RoleHierarchy>,
    renderer: Arc<R>,
    pub(super) events: Events,
}

impl<R> Clone for Shared<R> {
    fn clone(&self) -> Self {
        Self {
            requirement: Arc::clone(&self.requirement),
            hierarchy: self.hierarchy.clone(),
            renderer: Arc::clone(&self.renderer),
            events: self.events.clone(),
        }
    }
}

impl Shared<DefaultRenderer> {
    pub(super) fn new(rule: Rule, or_scope: Option<Rule>) -> Self {
        Self {
            requirement: Arc::new(Requirement { rule, or_scope }),
            hierarchy: None,
            renderer: Arc::new(DefaultRenderer),
            events: Events::default(),
        }
    }
}

impl<R> Shared<R> {
    pub(super) fn with_renderer<R2>(self, renderer: R2) -> Shared<R2> {
        Shared {
            requirement: self.requirement,
            hierarchy: self.hierarchy,
            renderer: Arc::new(renderer),
            events: self.events,
        }
    }
}

impl<R> fmt::Debug for Shared<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Guard");
        s.field("rule", &self.requirement.rule);
        if let Some(scope) = &self.requirement.or_scope {
            s.field("or", scope);
        }
        s.field("hierarchy", &self.hierarchy)
            .field("renderer", &std::any::type_name::<R>())
            .finish()
    }
}

/// Why the guard stops a request, before rendering.
pub(super) enum Denial {
    NoAuthLayer,
    Anonymous,
    Lacking,
}

impl<R: RenderRejection> Shared<R> {
    pub(super) fn decide<B>(&self, req: &Request<B>) -> Result<(), Denial> {
        let extensions = req.extensions();
        let Some(principal) = extensions.get::<Principal>() else {
            return Err(if extensions.get::<AuthContext>().is_none() {
                Denial::NoAuthLayer
            } else {
                Denial::Anonymous
            });
        };
        let hierarchy = match self.requirement.rule.kind {
            Kind::Role => self
                .hierarchy
                .as_ref()
                .or_else(|| extensions.get::<RoleHierarchy>()),
            Kind::Scope => None,
        };
        if self.requirement.is_met(principal, hierarchy) {
            decided("guard", &tracing::Span::none(), extensions, Ok(()));
            Ok(())
        } else {
            Err(Denial::Lacking)
        }
    }

    pub(super) fn reject<B>(&self, req: Request<B>, denial: Denial) -> Response<Bytes> {
        let (parts, _body) = req.into_parts();
        let error = match denial {
            // Logs the misconfiguration at ERROR level.
            Denial::NoAuthLayer => AuthRejection::missing_auth_layer(&parts).error().clone(),
            Denial::Anonymous => AuthError::missing_credentials(),
            Denial::Lacking => self.requirement.refusal(),
        };
        let span = tracing::Span::none();
        decided("guard", &span, &parts.extensions, Err(&error));
        self.events.emit(&AuthEvent::Rejected {
            error: &error,
            path: parts.uri.path(),
        });
        self.renderer.render(&error, &parts)
    }
}
