//! The tower guards: [`RequireRoleLayer`], [`RequireScopeLayer`] and
//! [`RequireRoleOrScopeLayer`] → [`Guard`] → core's
//! [`ResponseFuture`](portcullis_core::auth::ResponseFuture), for tonic services and
//! any tower stack.
//!
//! A guard reads the [`Principal`](portcullis_core::Principal) that an
//! [`AuthLayer`](portcullis_core::AuthLayer) further out put into the request
//! extensions, and refuses like the extractors do: `500` when no auth layer ran, `401`
//! when there is no principal, `403` when it lacks the roles (`insufficient_role`), the
//! scopes (`insufficient_scope`) or, for [`RequireRoleOrScopeLayer`], both. gRPC
//! requests get a trailers-only `grpc-status` (`UNAUTHENTICATED`, `PERMISSION_DENIED`,
//! `INTERNAL`). Every refusal is reported as an
//! [`AuthEvent::Rejected`](portcullis_core::AuthEvent::Rejected) to the layer's
//! [`Events`](portcullis_core::Events) (`tracing` unless set with `with_events`).
//!
//! The guards answer in the inner service's body type: anything that implements
//! [`RejectionBody`](portcullis_core::body::RejectionBody), as axum's and (with the
//! `tonic` feature of `portcullis-core`) tonic's bodies do.
//!
//! Put the guard *inside* the auth layer: with tower's `ServiceBuilder` and tonic's
//! `Server::builder().layer(..)`, layers added first are outermost, so add the auth
//! layer first; with axum's `Router::layer` / `route_layer`, the last call is outermost,
//! so call it last.

/// What every guard layer has: a renderer, an event sink, `Clone`, `Debug`, `Layer`.
macro_rules! guard_layer_common {
    ($layer:ident) => {
        impl<R> $layer<R> {
            /// Replaces how refusals are rendered (default: RFC 6750 challenge and
            /// problem+json, or a gRPC status).
            pub fn with_renderer<R2: portcullis_core::RenderRejection>(
                self,
                renderer: R2,
            ) -> $layer<R2> {
                $layer {
                    shared: std::sync::Arc::new(
                        std::sync::Arc::unwrap_or_clone(self.shared).with_renderer(renderer),
                    ),
                }
            }

            /// Where refusals are reported (default:
            /// [`TracingSink`](portcullis_core::TracingSink)).
            pub fn with_events(mut self, events: portcullis_core::Events) -> Self {
                std::sync::Arc::make_mut(&mut self.shared).events = events;
                self
            }
        }

        impl<R> Clone for $layer<R> {
            fn clone(&self) -> Self {
                Self {
                    shared: std::sync::Arc::clone(&self.shared),
                }
            }
        }

        impl<R> std::fmt::Debug for $layer<R> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($layer))
                    .field(&self.shared)
                    .finish()
            }
        }

        impl<S, R> tower_layer::Layer<S> for $layer<R> {
            type Service = super::Guard<S, R>;

            fn layer(&self, inner: S) -> Self::Service {
                // One reference count: axum may call `layer` on every request.
                super::Guard::new(inner, std::sync::Arc::clone(&self.shared))
            }
        }
    };
}

mod role_or_scope;
mod role_scope;
mod service;
mod shared;

pub use self::{
    role_or_scope::RequireRoleOrScopeLayer,
    role_scope::{RequireRoleLayer, RequireScopeLayer},
    service::Guard,
};
