//! [`PolicyLayer`]: the table and everything the policy's services share.

use std::{fmt, sync::Arc};

use portcullis_core::{AuthContext, ClientIpResolver, Events};
use tower_layer::Layer;

use super::{Access, Policy, table::Table};
use crate::RoleHierarchy;

/// Authenticates, authorises and rate-limits each call by what its method or route
/// needs; applies [`Policy`]. See the [module docs](super).
///
/// Cloning the layer shares the authenticator, the table and the rate-limit state.
///
/// ```
/// use portcullis_guard::policy::{Access, PolicyLayer};
/// # use portcullis_core::{AuthResult, Authenticator, MaybeReady};
/// # struct MyAuthenticator;
/// # impl Authenticator for MyAuthenticator {
/// #     fn authenticate(&self, _: &http::request::Parts) -> MaybeReady<AuthResult> { MaybeReady::Ready(Ok(None)) }
/// # }
///
/// let policy = PolicyLayer::new(MyAuthenticator)
///     .route("/inventory.Inventory/*", Access::authenticated())
///     .route("/inventory.Inventory/List", Access::anonymous())
///     .route("/inventory.Inventory/Add", Access::scope("inventory:write"))
///     .route("/inventory.Inventory/Purge", Access::role("admin"))
///     .route("/grpc.health.v1.Health/*", Access::open())
///     .realm("inventory");
/// # let _ = policy;
/// ```
#[must_use]
pub struct PolicyLayer<A> {
    // One allocation shared with every service: `layer` is one reference count.
    pub(super) shared: Arc<Shared<A>>,
}

pub(super) struct Shared<A> {
    pub(super) authenticator: Arc<A>,
    pub(super) table: Table,
    pub(super) hierarchy: Option<RoleHierarchy>,
    #[cfg_attr(not(feature = "ratelimit"), allow(dead_code))]
    pub(super) resolver: ClientIpResolver,
    pub(super) events: Events,
    pub(super) context: AuthContext,
}

impl<A> Clone for Shared<A> {
    fn clone(&self) -> Self {
        Self {
            authenticator: Arc::clone(&self.authenticator),
            table: self.table.clone(),
            hierarchy: self.hierarchy.clone(),
            resolver: self.resolver.clone(),
            events: self.events.clone(),
            context: self.context.clone(),
        }
    }
}

impl<A> PolicyLayer<A> {
    /// A policy that authenticates with `authenticator`. Until routes are added, every
    /// call needs [`Access::authenticated`] (see [`fallback`](Self::fallback)).
    pub fn new(authenticator: A) -> Self {
        Self {
            shared: Arc::new(Shared {
                authenticator: Arc::new(authenticator),
                table: Table::new(),
                hierarchy: None,
                resolver: ClientIpResolver::new(),
                events: Events::default(),
                context: AuthContext::new(portcullis_core::DEFAULT_REALM),
            }),
        }
    }

    /// What calls to `pattern` need. A pattern is an exact path (a gRPC method
    /// `/pkg.Service/Method`, or a route `/admin/users`) or a prefix ending in `/*`
    /// (`/pkg.Service/*` for a whole service, `/admin/*`). An exact path wins over a
    /// prefix, and a longer prefix over a shorter one; paths that no pattern covers
    /// need the [`fallback`](Self::fallback). Only the path is matched: not the query
    /// string, not the HTTP method. `/admin/*` covers the paths under `/admin/`, not
    /// `/admin` itself.
    ///
    /// # Security
    ///
    /// Paths are compared as sent, byte for byte, which is how tonic's generated
    /// servers and axum's router route them too: a path spelled otherwise
    /// (`//admin`, `/Admin`, a percent-encoded byte) falls to the fallback. Keep the
    /// fallback at least as strict as the strictest entry it could stand in for.
    ///
    /// # Panics
    ///
    /// When `pattern` does not start with `/`, holds a `*` anywhere but in a final
    /// `/*`, or was given before: a policy table is code, and its mistakes are bugs
    /// to find at start-up.
    pub fn route(mut self, pattern: &str, access: Access) -> Self {
        Arc::make_mut(&mut self.shared)
            .table
            .insert(pattern, access);
        self
    }

    /// What calls that no pattern covers need (default:
    /// [`Access::authenticated`], so a method missing from the table is never open
    /// by mistake).
    pub fn fallback(mut self, access: Access) -> Self {
        Arc::make_mut(&mut self.shared).table.set_fallback(access);
        self
    }

    /// The realm named in `WWW-Authenticate` challenges (default `"api"`).
    pub fn realm(mut self, realm: impl Into<Arc<str>>) -> Self {
        Arc::make_mut(&mut self.shared).context = AuthContext::new(realm);
        self
    }

    /// Checks roles through `hierarchy`, which also goes into the request extensions of
    /// authenticated calls for handlers' own checks. Without one, a hierarchy found in
    /// the request extensions is used.
    pub fn with_hierarchy(mut self, hierarchy: RoleHierarchy) -> Self {
        Arc::make_mut(&mut self.shared).hierarchy = Some(hierarchy);
        self
    }

    /// How the rate limits of anonymous calls find the client IP (default: the socket
    /// peer, no proxy trusted).
    #[cfg(feature = "ratelimit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ratelimit")))]
    pub fn client_ip(mut self, resolver: ClientIpResolver) -> Self {
        Arc::make_mut(&mut self.shared).resolver = resolver;
        self
    }

    /// Where security events go (default: [`TracingSink`](portcullis_core::TracingSink)).
    pub fn with_events(mut self, events: Events) -> Self {
        Arc::make_mut(&mut self.shared).events = events;
        self
    }
}

impl<A> Clone for PolicyLayer<A> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<A> fmt::Debug for PolicyLayer<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("PolicyLayer")
            .field("authenticator", &std::any::type_name::<A>())
            .field("table", &s.table)
            .field("hierarchy", &s.hierarchy)
            .field("realm", &s.context.realm())
            .finish()
    }
}

impl<S, A> Layer<S> for PolicyLayer<A> {
    type Service = Policy<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        Policy {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}
