//! [`RedisRateLimit`]: a [`RateLimitBackend`] whose state lives in Redis, so several
//! instances of a service enforce one limit.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use http::HeaderValue;
use portcullis_core::MaybeReady;
use portcullis_ratelimit::{BackendError, Decision, Quota, RateLimitBackend};
use redis::Script;

use crate::{FailurePolicy, Redis, client::duration_micros};

/// GCRA, exactly as governor computes it, in microseconds of the server's clock.
///
/// `KEYS[1]` holds the theoretical arrival time (TAT). `ARGV[1]` is the emission
/// interval `t`, `ARGV[2]` the tolerance `tau = t * (burst - 1)`. Returns
/// `{allowed, remaining, next}`: `next` is the time until more quota is available
/// (one unit more than `remaining`; when refused, until the next request fits).
/// The key expires when its TAT passes, which is exactly when its state is fresh again.
const GCRA: &str = r"
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local earliest = tat - tau
if now < earliest then
  return {0, 0, earliest - now}
end
local new = tat + t
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000))
local remaining = math.floor((now + tau + t - new) / t)
return {1, remaining, new - now - tau + remaining * t}
";

/// Turns a rate-limit key into the bytes of its Redis key.
///
/// Implemented for the keys of `portcullis-ratelimit`'s extractors (`IpAddr`,
/// `Box<str>`, `HeaderValue`) and other common key types. Two keys must map to the
/// same bytes exactly when they are equal.
pub trait RedisKey {
    /// Appends the key's bytes to `out`.
    fn write_key(&self, out: &mut Vec<u8>);
}

impl<T: RedisKey + ?Sized> RedisKey for &T {
    fn write_key(&self, out: &mut Vec<u8>) {
        (**self).write_key(out);
    }
}

impl<T: RedisKey + ?Sized> RedisKey for Box<T> {
    fn write_key(&self, out: &mut Vec<u8>) {
        (**self).write_key(out);
    }
}

impl<T: RedisKey + ?Sized> RedisKey for Arc<T> {
    fn write_key(&self, out: &mut Vec<u8>) {
        (**self).write_key(out);
    }
}

impl RedisKey for str {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl RedisKey for String {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl RedisKey for [u8] {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl RedisKey for Vec<u8> {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl RedisKey for HeaderValue {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl RedisKey for IpAddr {
    fn write_key(&self, out: &mut Vec<u8>) {
        // The canonical text form: IPv4 and IPv6 never collide.
        out.extend_from_slice(self.to_string().as_bytes());
    }
}

impl RedisKey for Ipv4Addr {
    fn write_key(&self, out: &mut Vec<u8>) {
        IpAddr::V4(*self).write_key(out);
    }
}

impl RedisKey for Ipv6Addr {
    fn write_key(&self, out: &mut Vec<u8>) {
        IpAddr::V6(*self).write_key(out);
    }
}

macro_rules! integer_keys {
    ($($t:ty),+) => {$(
        impl RedisKey for $t {
            fn write_key(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(self.to_string().as_bytes());
            }
        }
    )+};
}

integer_keys!(u32, u64, i32, i64, usize);

#[derive(Clone)]
struct Inner {
    redis: Redis,
    namespace: Vec<u8>,
    quota: Quota,
    t_us: i64,
    tau_us: i64,
    timeout: Duration,
    policy: FailurePolicy,
    script: Script,
}

/// A [`RateLimitBackend`] on Redis: GCRA (the algorithm of governor and of the local
/// [`GovernorBackend`](portcullis_ratelimit::GovernorBackend)) in one atomic Lua
/// script per check, so every instance that shares the Redis shares the limit.
///
/// - **One round trip** per check: `EVALSHA` of a script loaded once; redis-rs's
///   [`Script`] loads it again when the server answers `NOSCRIPT` (after a restart or
///   `SCRIPT FLUSH`).
/// - **Server time**: the script reads Redis's own clock (`TIME`), so instances whose
///   clocks drift apart still agree. (Passing each client's time would let a skewed
///   instance grant or refuse extra requests.)
/// - **Keys die**: each key (`{prefix}rl:{name}:{key}`) expires with `PX` exactly
///   when its state would be fresh again; nothing needs cleaning up.
/// - **Same answers and headers** as the governor backend: `remaining`, the time until
///   more quota is available, and `Retry-After` when refused.
/// - **Timeout** per check (default 250 ms), then the [`FailurePolicy`]: closed by
///   default (`503`), or open (the request passes, a `WARN` is logged).
///
/// ```
/// use std::num::NonZeroU32;
/// use axum::{routing::get, Router};
/// use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
/// use portcullis_redis::{Redis, RedisRateLimit};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), portcullis_redis::Error> {
/// let redis = Redis::open("redis://127.0.0.1:6379")?;
/// let quota = Quota::per_minute(NonZeroU32::new(60).unwrap());
/// let layer = RateLimitLayer::with_backend(ClientIpKey::new(), RedisRateLimit::new(&redis, "api", quota));
/// let app: Router = Router::new().route("/", get(|| async { "hi" })).layer(layer);
/// # Ok(()) }
/// ```
///
/// Cloning shares the configuration and the connection.
#[derive(Clone)]
pub struct RedisRateLimit {
    inner: Arc<Inner>,
}

impl RedisRateLimit {
    /// Limits each key to `quota`, keeping state under `{prefix}rl:{name}:`. Give each
    /// limit its own `name`: two limits with one name would share (and corrupt) their
    /// counts.
    pub fn new(redis: &Redis, name: &str, quota: Quota) -> Self {
        let t = quota.replenish_interval().max(Duration::from_micros(1));
        let t_us = duration_micros(t);
        let burst = i64::from(quota.burst_size().get());
        Self {
            inner: Arc::new(Inner {
                namespace: redis.key(&[b"rl:", name.as_bytes(), b":"]),
                redis: redis.clone(),
                quota,
                t_us,
                tau_us: t_us.saturating_mul(burst - 1),
                timeout: redis.timeout(),
                policy: FailurePolicy::Closed,
                script: Script::new(GCRA),
            }),
        }
    }

    /// Sets the time limit of one check (default: the [`Redis`] handle's, 250 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.configure(|i| i.timeout = timeout);
        self
    }

    /// Sets what happens when Redis fails (default [`FailurePolicy::Closed`]: `503`).
    #[must_use]
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.configure(|i| i.policy = policy);
        self
    }

    fn configure(&mut self, change: impl FnOnce(&mut Inner)) {
        change(Arc::make_mut(&mut self.inner));
    }

    /// The failure policy.
    pub fn policy(&self) -> FailurePolicy {
        self.inner.policy
    }

    /// Checks `key` (one round trip) and decides.
    ///
    /// # Errors
    ///
    /// When Redis fails and the policy is [`FailurePolicy::Closed`] (with
    /// [`FailurePolicy::Open`], a failure is an allowed decision).
    pub async fn check_key<K: RedisKey + ?Sized>(&self, key: &K) -> Result<Decision, BackendError> {
        let redis_key = self.redis_key(key);
        Self::run(Arc::clone(&self.inner), redis_key).await
    }

    fn redis_key<K: RedisKey + ?Sized>(&self, key: &K) -> Vec<u8> {
        let mut redis_key = Vec::with_capacity(self.inner.namespace.len() + 40);
        redis_key.extend_from_slice(&self.inner.namespace);
        key.write_key(&mut redis_key);
        redis_key
    }

    async fn run(inner: Arc<Inner>, key: Vec<u8>) -> Result<Decision, BackendError> {
        let mut conn = inner.redis.conn();
        let mut invocation = inner.script.key(key);
        invocation.arg(inner.t_us).arg(inner.tau_us);
        let reply = inner
            .redis
            .call(inner.timeout, async {
                invocation.invoke_async::<(i64, i64, i64)>(&mut conn).await
            })
            .await;
        match reply {
            Ok((allowed, remaining, next_us)) => {
                let next = Duration::from_micros(u64::try_from(next_us).unwrap_or(0));
                if allowed == 1 {
                    let remaining = u32::try_from(remaining.max(0)).unwrap_or(u32::MAX);
                    Ok(Decision::allowed(remaining, next))
                } else {
                    Ok(Decision::denied(next))
                }
            }
            Err(error) => {
                inner.redis.report("rate_limit", inner.policy, &error);
                match inner.policy {
                    // Nothing is known about the key: report no remaining quota, so
                    // well-behaved clients slow down rather than speed up.
                    FailurePolicy::Open => {
                        Ok(Decision::allowed(0, inner.quota.replenish_interval()))
                    }
                    FailurePolicy::Closed => {
                        Err(BackendError::new("redis rate limit unavailable").with_source(error))
                    }
                }
            }
        }
    }
}

impl<K: RedisKey + Send + Sync + 'static> RateLimitBackend<K> for RedisRateLimit {
    fn check(&self, key: &K) -> MaybeReady<Result<Decision, BackendError>> {
        let redis_key = self.redis_key(key);
        MaybeReady::pending(Self::run(Arc::clone(&self.inner), redis_key))
    }

    fn quota(&self) -> (NonZeroU32, Duration) {
        let q = self.inner.quota;
        (q.burst_size(), q.burst_size_replenished_in())
    }
}

impl fmt::Debug for RedisRateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimit")
            .field("namespace", &String::from_utf8_lossy(&self.inner.namespace))
            .field("quota", &self.inner.quota)
            .field("timeout", &self.inner.timeout)
            .field("policy", &self.inner.policy)
            .finish()
    }
}
