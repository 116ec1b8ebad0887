use std::{fmt, num::NonZeroU32, sync::Arc};

use governor::{Quota, clock::Clock};
use http::{HeaderValue, StatusCode, header::CONTENT_TYPE, request::Parts};
use portcullis_core::{ClientIpResolver, Events};
use tower_layer::Layer;

use super::{
    Backoff, LoginBackend, LoginLimits, LoginRateLimit, MemoryLoginBackend,
    memory::{Tracked, random_salt},
};
use crate::headers;

type AccountFn = dyn Fn(&Parts, &[u8]) -> Option<String> + Send + Sync;
type FailureFn = dyn Fn(StatusCode) -> bool + Send + Sync;

/// Throttles a login route. See the [module docs](crate::login).
///
/// The counts live in the backend `B`: [`MemoryLoginBackend`] by default, or a shared
/// store through [`with_backend`](Self::with_backend). Cloning the layer shares them.
///
/// ```
/// use axum::{routing::post, Router};
/// use portcullis_ratelimit::LoginRateLimitLayer;
///
/// async fn login() -> &'static str { "token" }
///
/// let app: Router = Router::new().route("/login", post(login).layer(LoginRateLimitLayer::new()));
/// ```
#[must_use]
pub struct LoginRateLimitLayer<B = MemoryLoginBackend> {
    pub(super) shared: Arc<LoginShared<B>>,
}

pub(crate) struct LoginShared<B> {
    pub(super) backend: Arc<B>,
    pub(super) resolver: ClientIpResolver,
    pub(super) limits: LoginLimits,
    pub(super) body_limit: usize,
    pub(super) fields: Arc<[Box<str>]>,
    pub(super) account_fn: Option<Arc<AccountFn>>,
    pub(super) is_failure: Arc<FailureFn>,
    pub(super) events: Events,
    /// Salts the account hash of debug log lines (never stored).
    pub(super) log_salt: [u8; 16],
    pub(super) policy_header: HeaderValue,
    pub(super) name: Arc<str>,
}

/// The default body limit: 16 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;

impl LoginRateLimitLayer {
    /// The defaults, counting in memory: 20 attempts per minute per IP; 100 free
    /// failures a day per IP; 5 free consecutive failures a day per account and IP;
    /// 10 free failures an hour per account, binding only IPs that failed on it; then
    /// 1 s doubling to 15 min. 16 KiB bodies; `email` / `username`; 401 and 403 are
    /// failures.
    pub fn new() -> Self {
        Self::with_backend(MemoryLoginBackend::new())
    }
}

impl Default for LoginRateLimitLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock + Clone> LoginRateLimitLayer<MemoryLoginBackend<C>> {
    /// The defaults of [`new`](LoginRateLimitLayer::new), on `clock`
    /// (`governor::clock::FakeRelativeClock` in tests).
    pub fn with_clock(clock: C) -> Self {
        Self::with_backend(MemoryLoginBackend::with_clock(clock))
    }

    /// The cap on each of the in-memory maps (default 100,000); they start empty.
    pub fn max_keys(self, max_keys: NonZeroU32) -> Self {
        let backend = self.shared.backend.as_ref().clone().with_max_keys(max_keys);
        self.edit(|s| s.backend = Arc::new(backend))
    }

    /// Entries held in memory now, per map (for tests and metrics).
    pub fn tracked(&self) -> Tracked {
        self.shared.backend.tracked()
    }
}

impl<B> LoginRateLimitLayer<B> {
    /// The defaults of [`new`](LoginRateLimitLayer::new), counting in `backend` (for
    /// several instances, `portcullis-redis`'s `RedisLoginThrottle`).
    pub fn with_backend(backend: B) -> Self {
        let limits = LoginLimits::default();
        let name: Arc<str> = Arc::from(headers::sf_string("login"));
        Self {
            shared: Arc::new(LoginShared {
                backend: Arc::new(backend),
                resolver: ClientIpResolver::new(),
                policy_header: policy_header(&name, limits.attempts()),
                limits,
                body_limit: DEFAULT_BODY_LIMIT,
                fields: Arc::from([Box::from("email"), Box::from("username")]),
                account_fn: None,
                is_failure: Arc::new(|s: StatusCode| {
                    s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN
                }),
                events: Events::default(),
                log_salt: random_salt(),
                name,
            }),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.shared.backend
    }

    /// The limits in force.
    pub fn limits(&self) -> &LoginLimits {
        &self.shared.limits
    }

    fn edit(mut self, f: impl FnOnce(&mut LoginShared<B>)) -> Self {
        let s = &*self.shared;
        let mut next = LoginShared {
            backend: Arc::clone(&s.backend),
            resolver: s.resolver.clone(),
            limits: s.limits,
            body_limit: s.body_limit,
            fields: Arc::clone(&s.fields),
            account_fn: s.account_fn.clone(),
            is_failure: Arc::clone(&s.is_failure),
            events: s.events.clone(),
            log_salt: s.log_salt,
            policy_header: s.policy_header.clone(),
            name: Arc::clone(&s.name),
        };
        f(&mut next);
        next.policy_header = policy_header(&next.name, next.limits.attempts());
        self.shared = Arc::new(next);
        self
    }

    /// How the client IP is found (trusted proxies, IPv6 prefix).
    pub fn client_ip(self, resolver: ClientIpResolver) -> Self {
        self.edit(|s| s.resolver = resolver)
    }

    /// Attempts allowed per IP, successful or not (default 20 per minute).
    pub fn attempts_per_ip(self, quota: Quota) -> Self {
        self.edit(|s| s.limits.set_attempts(quota))
    }

    /// Failures allowed per IP, on any account, before backoff (default 100 a day).
    pub fn ip_failures(self, backoff: Backoff) -> Self {
        self.edit(|s| s.limits.set_ip_failures(backoff))
    }

    /// Consecutive failures allowed per account from one IP before backoff (default
    /// 5 a day); a success of the account from that IP clears them.
    pub fn account_ip_failures(self, backoff: Backoff) -> Self {
        self.edit(|s| s.limits.set_account_ip_failures(backoff))
    }

    /// Failures allowed per account, from any IP, before its backoff binds the IPs
    /// that have failed on it (default 10 an hour). An IP without such a failure is
    /// never refused by it; see the [module docs](crate::login).
    pub fn account_failures(self, backoff: Backoff) -> Self {
        self.edit(|s| s.limits.set_account_failures(backoff))
    }

    /// The largest body read to find the account (default 16 KiB); larger bodies get
    /// `413`.
    pub fn body_limit(self, bytes: usize) -> Self {
        self.edit(|s| s.body_limit = bytes)
    }

    /// The JSON / form fields that name the account, first found wins (default
    /// `email`, `username`).
    pub fn account_fields<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        let fields: Arc<[Box<str>]> = fields.into_iter().map(Into::into).collect();
        self.edit(|s| s.fields = fields)
    }

    /// Finds the account with a closure over the request head and body instead. The
    /// result is normalised (trimmed, lowercased) like the default's.
    pub fn account_with<F>(self, f: F) -> Self
    where
        F: Fn(&Parts, &[u8]) -> Option<String> + Send + Sync + 'static,
    {
        let f: Arc<AccountFn> = Arc::new(f);
        self.edit(|s| s.account_fn = Some(f))
    }

    /// Which response statuses are failed logins (default 401 and 403).
    pub fn failure_when<F>(self, f: F) -> Self
    where
        F: Fn(StatusCode) -> bool + Send + Sync + 'static,
    {
        let f: Arc<FailureFn> = Arc::new(f);
        self.edit(|s| s.is_failure = f)
    }

    /// Where security events go (default: `tracing`).
    pub fn with_events(self, events: Events) -> Self {
        self.edit(|s| s.events = events)
    }
}

fn policy_header(name: &str, quota: Quota) -> HeaderValue {
    headers::policy_value(
        name,
        quota.burst_size().get(),
        quota.burst_size_replenished_in(),
    )
}

impl<B> LoginShared<B> {
    /// The account named in a request, as found (the attempt normalises it).
    pub(super) fn account(&self, parts: &Parts, body: &[u8]) -> Option<String> {
        match &self.account_fn {
            Some(f) => f(parts, body),
            None => default_account(parts, body, &self.fields),
        }
    }
}

fn default_account(parts: &Parts, body: &[u8], fields: &[Box<str>]) -> Option<String> {
    let ct = parts.headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let mime = ct.split(';').next()?.trim().to_ascii_lowercase();
    if mime == "application/json" || mime.ends_with("+json") {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let object = value.as_object()?;
        fields
            .iter()
            .find_map(|f| object.get(&**f))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    } else if mime == "application/x-www-form-urlencoded" {
        let field = fields
            .iter()
            .find(|f| form_urlencoded::parse(body).any(|(k, _)| *k == ***f))?;
        let mut values = form_urlencoded::parse(body).filter(|(k, _)| *k == **field);
        let first = values.next()?.1;
        // A repeated field is ambiguous (which one does the handler read?): no account.
        if values.any(|(_, v)| v != first) {
            return None;
        }
        Some(first.into_owned())
    } else {
        None
    }
}

impl<B> Clone for LoginRateLimitLayer<B> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for LoginRateLimitLayer<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("LoginRateLimitLayer")
            .field("backend", &s.backend)
            .field("limits", &s.limits)
            .field("body_limit", &s.body_limit)
            .field("fields", &s.fields)
            .finish_non_exhaustive()
    }
}

impl<S, B: LoginBackend> Layer<S> for LoginRateLimitLayer<B> {
    type Service = LoginRateLimit<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        LoginRateLimit {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_keep_the_backend_and_change_the_policy_field() {
        let layer = LoginRateLimitLayer::new();
        let backend = Arc::clone(&layer.shared.backend);
        let layer = layer
            .attempts_per_ip(Quota::per_minute(NonZeroU32::new(7).unwrap()))
            .body_limit(10);
        assert!(Arc::ptr_eq(&backend, &layer.shared.backend));
        assert_eq!(layer.shared.policy_header, r#""login";q=7;w=60"#);
        assert_eq!(layer.limits().attempts().burst_size().get(), 7);
    }
}
