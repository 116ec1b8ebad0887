use std::{
    collections::hash_map::RandomState,
    fmt,
    hash::{BuildHasher, Hasher},
    net::IpAddr,
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use governor::{
    Quota,
    clock::{Clock, DefaultClock, Reference},
};
use http::{HeaderValue, StatusCode, header::CONTENT_TYPE, request::Parts};
use portcullis_core::{ClientIpResolver, Events};
use sha2::{Digest, Sha256};
use tower_layer::Layer;

use super::{
    LoginRateLimit,
    backoff::{Backoff, BackoffStore},
};
use crate::{GovernorBackend, backend::DEFAULT_MAX_KEYS, headers};

type AccountFn = dyn Fn(&Parts, &[u8]) -> Option<String> + Send + Sync;
type FailureFn = dyn Fn(StatusCode) -> bool + Send + Sync;

/// Throttles a login route. See the [module docs](crate::login).
///
/// Cloning the layer shares its state. Configure it fully before use: the setters
/// that change a limit start that limit's state afresh.
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
pub struct LoginRateLimitLayer<C: Clock + Clone = DefaultClock> {
    pub(super) shared: Arc<LoginShared<C>>,
}

pub(crate) struct LoginShared<C: Clock + Clone> {
    pub(super) resolver: ClientIpResolver,
    pub(super) attempts: GovernorBackend<IpAddr, C>,
    pub(super) attempt_quota: Quota,
    pub(super) ip_failures: BackoffStore<IpAddr>,
    pub(super) accounts: BackoffStore<[u8; 32]>,
    pub(super) clock: C,
    pub(super) start: C::Instant,
    pub(super) body_limit: usize,
    pub(super) fields: Arc<[Box<str>]>,
    pub(super) account_fn: Option<Arc<AccountFn>>,
    pub(super) is_failure: Arc<FailureFn>,
    pub(super) events: Events,
    pub(super) salt: [u8; 16],
    pub(super) max_keys: usize,
    pub(super) ip_policy: Backoff,
    pub(super) account_policy: Backoff,
    pub(super) policy_header: HeaderValue,
    pub(super) name: Arc<str>,
}

/// The default body limit: 16 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;

impl LoginRateLimitLayer {
    /// The defaults: 20 attempts per minute per IP; 20 free IP failures and 5 free
    /// account failures per 15 min, then 1 s doubling to 15 min; 16 KiB bodies;
    /// `email` / `username`; 401 and 403 are failures.
    pub fn new() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl Default for LoginRateLimitLayer {
    fn default() -> Self {
        Self::new()
    }
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero constant")
}

fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    for (i, chunk) in salt.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    salt
}

impl<C: Clock + Clone> LoginRateLimitLayer<C> {
    /// The defaults of [`new`](LoginRateLimitLayer::new), on `clock`
    /// (`governor::clock::FakeRelativeClock` in tests).
    pub fn with_clock(clock: C) -> Self {
        let window = Duration::from_secs(15 * 60);
        let attempt_quota = Quota::per_minute(nz(20));
        let ip_policy = Backoff::new(nz(20), window);
        let account_policy = Backoff::new(nz(5), window);
        let name: Arc<str> = Arc::from(headers::sf_string("login"));
        Self {
            shared: Arc::new(LoginShared {
                resolver: ClientIpResolver::new(),
                attempts: GovernorBackend::with_clock(attempt_quota, clock.clone()),
                attempt_quota,
                ip_failures: BackoffStore::new(ip_policy, DEFAULT_MAX_KEYS),
                accounts: BackoffStore::new(account_policy, DEFAULT_MAX_KEYS),
                start: clock.now(),
                clock,
                body_limit: DEFAULT_BODY_LIMIT,
                fields: Arc::from([Box::from("email"), Box::from("username")]),
                account_fn: None,
                is_failure: Arc::new(|s: StatusCode| {
                    s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN
                }),
                events: Events::default(),
                salt: random_salt(),
                max_keys: DEFAULT_MAX_KEYS,
                ip_policy,
                account_policy,
                policy_header: headers::policy_value(
                    &name,
                    attempt_quota.burst_size().get(),
                    attempt_quota.burst_size_replenished_in(),
                ),
                name,
            }),
        }
    }
}

impl<C: Clock + Clone> LoginRateLimitLayer<C> {
    fn edit(mut self, f: impl FnOnce(&mut LoginShared<C>)) -> Self {
        let s = &*self.shared;
        let mut next = LoginShared {
            resolver: s.resolver.clone(),
            attempts: s.attempts.clone(),
            attempt_quota: s.attempt_quota,
            ip_failures: BackoffStore::new(s.ip_policy, s.max_keys),
            accounts: BackoffStore::new(s.account_policy, s.max_keys),
            clock: s.clock.clone(),
            start: s.start,
            body_limit: s.body_limit,
            fields: Arc::clone(&s.fields),
            account_fn: s.account_fn.clone(),
            is_failure: Arc::clone(&s.is_failure),
            events: s.events.clone(),
            salt: s.salt,
            max_keys: s.max_keys,
            ip_policy: s.ip_policy,
            account_policy: s.account_policy,
            policy_header: s.policy_header.clone(),
            name: Arc::clone(&s.name),
        };
        f(&mut next);
        next.ip_failures = BackoffStore::new(next.ip_policy, next.max_keys);
        next.accounts = BackoffStore::new(next.account_policy, next.max_keys);
        next.attempts = GovernorBackend::with_clock(next.attempt_quota, next.clock.clone())
            .with_max_keys(NonZeroU32::new(next.max_keys as u32).unwrap_or(nz(1)));
        next.policy_header = headers::policy_value(
            &next.name,
            next.attempt_quota.burst_size().get(),
            next.attempt_quota.burst_size_replenished_in(),
        );
        self.shared = Arc::new(next);
        self
    }

    /// How the client IP is found (trusted proxies, IPv6 prefix).
    pub fn client_ip(self, resolver: ClientIpResolver) -> Self {
        self.edit(|s| s.resolver = resolver)
    }

    /// Attempts allowed per IP, successful or not (default 20 per minute).
    pub fn attempts_per_ip(self, quota: Quota) -> Self {
        self.edit(|s| s.attempt_quota = quota)
    }

    /// Failures allowed per IP before backoff (default 20 per 15 min, 1 s doubling to
    /// 15 min).
    pub fn ip_failures(self, backoff: Backoff) -> Self {
        self.edit(|s| s.ip_policy = backoff)
    }

    /// Failures allowed per account, from any IP, before backoff (default 5 per 15
    /// min, 1 s doubling to 15 min).
    pub fn account_failures(self, backoff: Backoff) -> Self {
        self.edit(|s| s.account_policy = backoff)
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

    /// The cap on tracked IPs and on tracked accounts, each (default 100,000).
    pub fn max_keys(self, max_keys: NonZeroU32) -> Self {
        self.edit(|s| s.max_keys = max_keys.get() as usize)
    }

    /// Where security events go (default: `tracing`).
    pub fn with_events(self, events: Events) -> Self {
        self.edit(|s| s.events = events)
    }

    /// IPs and accounts currently tracked (for tests and metrics).
    pub fn tracked(&self) -> (usize, usize) {
        (
            self.shared.ip_failures.tracked(),
            self.shared.accounts.tracked(),
        )
    }
}

impl<C: Clock + Clone> LoginShared<C> {
    pub(super) fn now(&self) -> u64 {
        self.clock.now().duration_since(self.start).as_u64()
    }

    /// The account of a request, normalised; `None` when none is found.
    pub(super) fn account(&self, parts: &Parts, body: &[u8]) -> Option<String> {
        let raw = match &self.account_fn {
            Some(f) => f(parts, body),
            None => default_account(parts, body, &self.fields),
        }?;
        let normalised = raw.trim().to_lowercase();
        (!normalised.is_empty()).then_some(normalised)
    }

    /// The salted hash the account is kept and logged under.
    pub(super) fn account_key(&self, account: Option<&str>) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        match account {
            Some(a) => {
                h.update([1]);
                h.update(a.as_bytes());
            }
            None => h.update([0]),
        }
        h.finalize().into()
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

impl<C: Clock + Clone> Clone for LoginRateLimitLayer<C> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C: Clock + Clone> fmt::Debug for LoginRateLimitLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("LoginRateLimitLayer")
            .field("attempts_per_ip", &s.attempt_quota)
            .field("ip_failures", &s.ip_policy)
            .field("account_failures", &s.account_policy)
            .field("body_limit", &s.body_limit)
            .field("fields", &s.fields)
            .field("max_keys", &s.max_keys)
            .finish()
    }
}

impl<S, C: Clock + Clone> Layer<S> for LoginRateLimitLayer<C> {
    type Service = LoginRateLimit<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        LoginRateLimit {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}
