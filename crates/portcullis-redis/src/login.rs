//! [`RedisLoginThrottle`]: the login throttle's counts in Redis, so several
//! instances of a service share one budget.

use std::{
    collections::hash_map::RandomState,
    fmt,
    hash::{BuildHasher, Hasher},
    sync::{Arc, Mutex},
    time::Duration,
};

use portcullis_core::{MaybeReady, internal::hex};
use portcullis_ratelimit::{
    BackendError, Backoff, LoginBackend,
    login::{Admission, LoginAttempt, LoginBucket, LoginOutcome},
};
use redis::{Script, Value};

use crate::{FailurePolicy, Redis, client::duration_micros};

/// Decides on one attempt and counts it, atomically, on the server's clock (µs).
///
/// `KEYS`: the salt, attempts per IP (a GCRA arrival time), failures per IP, per
/// account and IP, per account (hashes: `f` failures, `s` window start, `l` last
/// failure, `b` blocked until). `ARGV`: the salt this client hashes with, the GCRA
/// interval and tolerance, then free/window/base/max of each backoff.
///
/// Returns `{-1, salt}` when the stored salt differs (the client hashes again),
/// `{0, bucket, wait}` when refused, or `{1, ...}` with the last failure and block
/// before and after counting, per failure key, for a refund to put back.
const BEGIN: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local salt = redis.call('GET', KEYS[1])
if not salt then
  redis.call('SET', KEYS[1], ARGV[1])
  salt = ARGV[1]
end
if salt ~= ARGV[1] then return {-1, salt} end
local function fmt(x) return string.format('%.0f', x) end
local t, tau = tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[2]) or now)
if tat < now then tat = now end
if now < tat - tau then return {0, 1, tat - tau - now} end
tat = tat + t
redis.call('SET', KEYS[2], fmt(tat), 'PX', math.ceil((tat - now) / 1000))
local function policy(i)
  return {free = tonumber(ARGV[i]), window = tonumber(ARGV[i + 1]),
          base = tonumber(ARGV[i + 2]), max = tonumber(ARGV[i + 3])}
end
local function load(key)
  local v = redis.call('HMGET', key, 'f', 's', 'l', 'b')
  return {f = tonumber(v[1]) or 0, s = tonumber(v[2]) or 0,
          l = tonumber(v[3]) or 0, b = tonumber(v[4]) or 0}
end
local function active(c, p) return c.f > 0 and now - c.s < p.window end
local pi, pp, pa = policy(4), policy(8), policy(12)
local ci, cp, ca = load(KEYS[3]), load(KEYS[4]), load(KEYS[5])
if ci.b > now then return {0, 2, ci.b - now} end
if cp.b > now then return {0, 3, cp.b - now} end
if active(cp, pp) then
  local ends = math.min(ca.b, cp.l + pa.max)
  if ends > now then return {0, 4, ends - now} end
end
local undo = {1}
local function count(key, c, p)
  if not active(c, p) then c.f = 0; c.s = now end
  c.f = c.f + 1
  local pl, pb = c.l, c.b
  c.l = now
  if c.f > p.free then
    local d = p.base * 2 ^ math.min(c.f - p.free - 1, 31)
    if d > p.max then d = p.max end
    c.b = now + d
  end
  redis.call('HSET', key, 'f', c.f, 's', fmt(c.s), 'l', fmt(c.l), 'b', fmt(c.b))
  local ends = math.max(c.s + p.window, c.b)
  redis.call('PEXPIRE', key, math.max(1, math.ceil((ends - now) / 1000)))
  table.insert(undo, pl)
  table.insert(undo, c.l)
  table.insert(undo, pb)
  table.insert(undo, c.b)
end
count(KEYS[3], ci, pi)
count(KEYS[4], cp, pp)
count(KEYS[5], ca, pa)
return undo
";

/// Settles an admitted attempt that was not a failure. `KEYS`: failures per IP, per
/// account and IP, per account. `ARGV[1]` is `success` (clear the account-and-IP
/// count) or `refund`; then the four numbers `BEGIN` returned per key. A count that
/// drops to nothing is deleted.
const SETTLE: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local function refund(key, i)
  local v = redis.call('HMGET', key, 'f', 'l', 'b')
  if not v[1] then return end
  local f = tonumber(v[1]) - 1
  local l, b = tonumber(v[2]), tonumber(v[3])
  if b == tonumber(ARGV[i + 3]) then b = tonumber(ARGV[i + 2]) end
  if l == tonumber(ARGV[i + 1]) then l = tonumber(ARGV[i]) end
  if f <= 0 and b <= now then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 'f', math.max(f, 0),
      'l', string.format('%.0f', l), 'b', string.format('%.0f', b))
  end
end
refund(KEYS[1], 2)
if ARGV[1] == 'success' then redis.call('DEL', KEYS[2]) else refund(KEYS[2], 6) end
refund(KEYS[3], 10)
return 1
";

struct Inner {
    redis: Redis,
    namespace: Vec<u8>,
    timeout: Duration,
    policy: FailurePolicy,
    begin: Script,
    settle: Script,
    /// The salt accounts are hashed with: a random candidate until Redis names the
    /// one every instance uses.
    salt: Mutex<String>,
}

impl Clone for Inner {
    fn clone(&self) -> Self {
        Self {
            redis: self.redis.clone(),
            namespace: self.namespace.clone(),
            timeout: self.timeout,
            policy: self.policy,
            begin: self.begin.clone(),
            settle: self.settle.clone(),
            salt: Mutex::new(self.salt()),
        }
    }
}

/// A [`LoginBackend`] on Redis: the counts of
/// [`LoginRateLimitLayer`](portcullis_ratelimit::LoginRateLimitLayer) shared by every
/// instance that uses the same Redis, prefix and name.
///
/// - **Atomic**: one Lua script decides on all four limits and counts the attempt
///   (one round trip); one more settles it when it was not a failure (a failure
///   needs no second trip). Parallel guesses, on one instance or several, are all
///   counted.
/// - **Server time**: the scripts read Redis's clock (`TIME`), so instances whose
///   clocks drift apart still agree.
/// - **Keys die**: every count expires with its window (or its wait, if longer), the
///   attempt quota when it is fresh again; a refunded attempt deletes the counts it
///   created. Only the salt is kept.
/// - **One hash slot**: all keys of one throttle are `{prefix}{login:{name}}:…`, so
///   the scripts' keys share the hash tag `{login:{name}}` (and one node on a
///   cluster).
/// - **Accounts hashed**: accounts appear only as SHA-256 over a random salt that
///   the first instance stores under `{prefix}{login:{name}}:salt` and every other
///   instance adopts (the script refuses a stale salt, and the client hashes again).
/// - **Timeout** per call (default 250 ms), then the [`FailurePolicy`]: closed by
///   default (`503`, and a settle that fails leaves the failure counted), or open
///   (the attempt passes uncounted, a `WARN` is logged).
///
/// ```
/// use axum::{routing::post, Router};
/// use portcullis_ratelimit::LoginRateLimitLayer;
/// use portcullis_redis::{Redis, RedisLoginThrottle};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), portcullis_redis::Error> {
/// async fn login() -> &'static str { "token" }
///
/// let redis = Redis::open("redis://127.0.0.1:6379")?;
/// let throttle = LoginRateLimitLayer::with_backend(RedisLoginThrottle::new(&redis, "login"))
///     .account_fields(["email"]);
/// let app: Router = Router::new().route("/login", post(login).layer(throttle));
/// # Ok(()) }
/// ```
///
/// Cloning shares the configuration and the connection.
#[derive(Clone)]
pub struct RedisLoginThrottle {
    inner: Arc<Inner>,
}

/// What [`RedisLoginThrottle`] needs to settle an attempt.
pub struct RedisLoginTicket {
    keys: Option<[Vec<u8>; 3]>,
    undo: [i64; 12],
}

impl fmt::Debug for RedisLoginTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLoginTicket")
            .field("counted", &self.keys.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisLoginThrottle {
    /// Keeps the counts under `{prefix}{login:{name}}:`. Layers that should share a
    /// budget (the instances of one service) use the same name; other login routes
    /// use their own.
    pub fn new(redis: &Redis, name: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                namespace: redis.key(&[b"{login:", name.as_bytes(), b"}:"]),
                redis: redis.clone(),
                timeout: redis.timeout(),
                policy: FailurePolicy::Closed,
                begin: Script::new(BEGIN),
                settle: Script::new(SETTLE),
                salt: Mutex::new(random_hex()),
            }),
        }
    }

    /// Sets the time limit of one call (default: the [`Redis`] handle's, 250 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.configure(|i| i.timeout = timeout);
        self
    }

    /// Sets what happens when Redis fails (default [`FailurePolicy::Closed`]: `503`).
    /// [`FailurePolicy::Open`] lets every attempt through uncounted while Redis is
    /// down: unlimited guessing for the length of the outage.
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
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    hex(&bytes)
}

fn policy_args(b: &Backoff) -> [i64; 4] {
    [
        i64::from(b.free_failures()),
        duration_micros(b.window()),
        duration_micros(b.first_delay()),
        duration_micros(b.longest_delay()),
    ]
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

fn bucket(code: i64) -> LoginBucket {
    match code {
        1 => LoginBucket::Attempts,
        2 => LoginBucket::IpFailures,
        3 => LoginBucket::AccountIpFailures,
        _ => LoginBucket::AccountFailures,
    }
}

enum Reply {
    Salt(String),
    Refused(LoginBucket, Duration),
    Admitted([i64; 12]),
}

fn parse(reply: &[Value]) -> Option<Reply> {
    let int = |i: usize| match reply.get(i) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    match int(0)? {
        -1 => match reply.get(1) {
            Some(Value::BulkString(s)) => String::from_utf8(s.clone()).ok().map(Reply::Salt),
            _ => None,
        },
        0 => Some(Reply::Refused(bucket(int(1)?), micros(int(2)?))),
        1 => {
            let mut undo = [0; 12];
            for (i, slot) in undo.iter_mut().enumerate() {
                *slot = int(i + 1)?;
            }
            Some(Reply::Admitted(undo))
        }
        _ => None,
    }
}

impl Inner {
    fn salt(&self) -> String {
        self.salt.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn key(&self, kind: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut key = self.namespace.clone();
        key.extend_from_slice(kind);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key.push(b':');
            }
            key.extend_from_slice(part);
        }
        key
    }

    fn fail<T>(&self, error: crate::Error, open: T) -> Result<T, BackendError> {
        self.redis.report("login_throttle", self.policy, &error);
        match self.policy {
            FailurePolicy::Open => Ok(open),
            FailurePolicy::Closed => {
                Err(BackendError::new("redis login throttle unavailable").with_source(error))
            }
        }
    }

    async fn begin(
        self: Arc<Self>,
        attempt: LoginAttempt,
    ) -> Result<Admission<RedisLoginTicket>, BackendError> {
        let limits = *attempt.limits();
        let quota = limits.attempts();
        let t = duration_micros(quota.replenish_interval().max(Duration::from_micros(1)));
        let tau = t.saturating_mul(i64::from(quota.burst_size().get()) - 1);
        let ip = attempt.ip().to_string();
        let backoffs = [
            policy_args(&limits.ip_failures()),
            policy_args(&limits.account_ip_failures()),
            policy_args(&limits.account_failures()),
        ];
        // At most two rounds: the second with the salt Redis named.
        for _ in 0..2 {
            let salt = self.salt();
            let account = hex(&attempt.account_key(salt.as_bytes()));
            let keys = [
                self.key(b"i:", &[ip.as_bytes()]),
                self.key(b"p:", &[account.as_bytes(), ip.as_bytes()]),
                self.key(b"u:", &[account.as_bytes()]),
            ];
            let mut invocation = self.begin.key(self.key(b"salt", &[]));
            invocation.key(self.key(b"a:", &[ip.as_bytes()]));
            for key in &keys {
                invocation.key(key);
            }
            invocation.arg(&salt).arg(t).arg(tau);
            for args in &backoffs {
                invocation.arg(&args[..]);
            }
            let mut conn = self.redis.conn();
            let reply = self
                .redis
                .call(self.timeout, async {
                    invocation.invoke_async::<Vec<Value>>(&mut conn).await
                })
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) => return self.fail(error, Admission::Admitted(uncounted())),
            };
            match parse(&reply) {
                Some(Reply::Admitted(undo)) => {
                    return Ok(Admission::Admitted(RedisLoginTicket {
                        keys: Some(keys),
                        undo,
                    }));
                }
                Some(Reply::Refused(bucket, wait)) => {
                    return Ok(Admission::Refused { bucket, wait });
                }
                Some(Reply::Salt(stored)) => {
                    *self.salt.lock().unwrap_or_else(|p| p.into_inner()) = stored;
                }
                None => break,
            }
        }
        let error = crate::Error::new(crate::ErrorKind::Reply);
        self.fail(error, Admission::Admitted(uncounted()))
    }

    async fn settle(
        self: Arc<Self>,
        keys: [Vec<u8>; 3],
        undo: [i64; 12],
        success: bool,
    ) -> Result<(), BackendError> {
        let mut invocation = self.settle.key(&keys[0]);
        invocation.key(&keys[1]).key(&keys[2]);
        invocation.arg(if success { "success" } else { "refund" });
        invocation.arg(&undo[..]);
        let mut conn = self.redis.conn();
        let reply = self
            .redis
            .call(self.timeout, async {
                invocation.invoke_async::<i64>(&mut conn).await
            })
            .await;
        match reply {
            Ok(_) => Ok(()),
            Err(error) => self.fail(error, ()),
        }
    }
}

fn uncounted() -> RedisLoginTicket {
    RedisLoginTicket {
        keys: None,
        undo: [0; 12],
    }
}

impl LoginBackend for RedisLoginThrottle {
    type Ticket = RedisLoginTicket;

    fn begin(
        &self,
        attempt: &LoginAttempt,
    ) -> MaybeReady<Result<Admission<RedisLoginTicket>, BackendError>> {
        let attempt = attempt.clone();
        MaybeReady::pending(Arc::clone(&self.inner).begin(attempt))
    }

    fn settle(
        &self,
        ticket: RedisLoginTicket,
        outcome: LoginOutcome,
    ) -> MaybeReady<Result<(), BackendError>> {
        let success = match outcome {
            LoginOutcome::Success => true,
            LoginOutcome::NotCounted => false,
            // A failure stays as counted: nothing to send.
            _ => return MaybeReady::Ready(Ok(())),
        };
        let Some(keys) = ticket.keys else {
            return MaybeReady::Ready(Ok(()));
        };
        MaybeReady::pending(Arc::clone(&self.inner).settle(keys, ticket.undo, success))
    }
}

impl fmt::Debug for RedisLoginThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLoginThrottle")
            .field("namespace", &String::from_utf8_lossy(&self.inner.namespace))
            .field("timeout", &self.inner.timeout)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}
