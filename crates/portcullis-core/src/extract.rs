//! axum extractors for [`Principal`] and [`Claims<C>`], and their [`AuthRejection`].
//!
//! - `Principal`: the authenticated party; `401` when the request has none.
//! - `Option<Principal>`: for routes behind an [`optional`](crate::AuthLayer::optional)
//!   layer that serve everyone but greet the signed-in.
//! - `Claims<C>`: the typed claims the JWT layer produced.
//!
//! Using any of them on a route with no auth layer in front is a server
//! misconfiguration: the extractor answers `500` and logs why, rather than treating
//! the request as anonymous.

use axum_core::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::request::Parts;

use crate::{AuthContext, AuthError, Claims, Principal, error::is_grpc};

/// An extractor's refusal: the [`AuthError`], rendered in the auth layer's realm, as a
/// gRPC status for gRPC requests.
#[derive(Debug, Clone)]
pub struct AuthRejection {
    error: AuthError,
    context: Option<AuthContext>,
    grpc: bool,
}

impl AuthRejection {
    /// A rejection of the request whose head is `parts`.
    pub fn new(error: AuthError, parts: &Parts) -> Self {
        error.trace();
        Self {
            error,
            context: parts.extensions.get::<AuthContext>().cloned(),
            grpc: is_grpc(&parts.headers),
        }
    }

    /// The error.
    pub fn error(&self) -> &AuthError {
        &self.error
    }

    /// The HTTP status.
    pub fn status(&self) -> http::StatusCode {
        self.error.status()
    }

    /// The client-facing description.
    pub fn body_text(&self) -> &'static str {
        self.error.description()
    }

    /// Refusal for a route that needs an auth layer but has none.
    pub fn missing_auth_layer(parts: &Parts) -> Self {
        tracing::error!(
            target: "portcullis::rejection",
            path = parts.uri.path(),
            "no Portcullis auth layer runs in front of this route; add one with route_layer"
        );
        Self::new(
            AuthError::internal("missing_auth_layer")
                .with_description("no authentication layer protects this route"),
            parts,
        )
    }

    /// The usual refusal when a route needs a principal: `500` without an auth layer,
    /// `401` without credentials.
    pub fn unauthenticated(parts: &Parts) -> Self {
        if parts.extensions.get::<AuthContext>().is_none() {
            Self::missing_auth_layer(parts)
        } else {
            Self::new(AuthError::missing_credentials(), parts)
        }
    }
}

impl std::fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for AuthRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let response = if self.grpc {
            self.error.to_grpc_response()
        } else {
            let realm = self
                .context
                .as_ref()
                .map_or(crate::DEFAULT_REALM, AuthContext::realm);
            self.error.to_http_response(realm)
        };
        response.map(axum_core::body::Body::from)
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        self.to_http_response(crate::DEFAULT_REALM)
            .map(axum_core::body::Body::from)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| AuthRejection::unauthenticated(parts))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<Principal>() {
            Some(principal) => Ok(Some(principal.clone())),
            None if parts.extensions.get::<AuthContext>().is_some() => Ok(None),
            None => Err(AuthRejection::missing_auth_layer(parts)),
        }
    }
}

impl<S, C> FromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(claims) = parts.extensions.get::<Claims<C>>() {
            return Ok(claims.clone());
        }
        if parts.extensions.get::<Principal>().is_some() {
            // Authenticated, but not by something that produced `C` (an API key, or a
            // JWT layer configured with another claims type).
            tracing::error!(
                target: "portcullis::rejection",
                claims = std::any::type_name::<C>(),
                "the principal carries no claims of the requested type"
            );
            return Err(AuthRejection::new(
                AuthError::internal("claims_type_mismatch")
                    .with_description("the credential carries no claims of the expected type"),
                parts,
            ));
        }
        Err(AuthRejection::unauthenticated(parts))
    }
}
