//! [`RedisRevocation`]: access-token revocation shared by every instance.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use portcullis_core::{
    AuthError, MaybeReady, Revocation, RevocationQuery,
    internal::{unix_micros, unix_secs},
};
use portcullis_tokens::{
    Clock, DEFAULT_CUTOFF_RETENTION, Error as TokenError, RevocationStore, RevokedToken,
    SystemClock,
};
use redis::Script;

use crate::{Error, ErrorKind, FailurePolicy, Redis, client::duration_micros};

/// Raises a subject's cut-off (never lowers it) and keeps the entry until
/// `ARGV[2]` (Unix ms), extending, never shortening, its life.
const SET_CUTOFF: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
end
local keep_until = tonumber(ARGV[2])
local pttl = redis.call('PTTL', KEYS[1])
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if pttl < 0 or now_ms + pttl < keep_until then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 1
";

struct Inner {
    redis: Redis,
    timeout: Duration,
    policy: FailurePolicy,
    retention: Duration,
    clock: Arc<dyn Clock>,
    cutoff: Script,
}

/// Access-token revocation in Redis, with the semantics of
/// [`MemoryRevocation`](portcullis_tokens::MemoryRevocation), shared by every instance:
///
/// - **`jti` denylist**: [`revoke_token`](RevocationStore::revoke_token) refuses one
///   token (by `jti`, and by `iss` when both the entry and the token have one) until
///   its `exp`: the entries `{prefix}rev:ijti:{len(iss)}:{iss}{jti}` (one per issuer,
///   so the same `jti` at two issuers is two tokens) and `{prefix}rev:jti:{jti}` (for
///   checks that know no issuer) expire then.
/// - **Subject cut-off**: [`revoke_subject`](RevocationStore::revoke_subject) refuses
///   every token of the subject issued at or before the cut-off second, at every
///   issuer; [`revoke_issuer_subject`](RevocationStore::revoke_issuer_subject) at one
///   issuer only (a token without `iat` for such a subject is refused too). The
///   entries `{prefix}rev:sub:{subject}` and
///   `{prefix}rev:isub:{len(iss)}:{iss}{subject}` only ever move forward and are kept
///   for the retention (default [`DEFAULT_CUTOFF_RETENTION`]). A check that knows no
///   issuer sees only the cut-offs made for every issuer.
///
/// [`check`](Revocation::check) costs one round trip (`MGET` of the entries) and
/// answers [`MaybeReady::Pending`] (await it: `revocation.check(&query).await`). When Redis fails or times out (default
/// 250 ms) the [`FailurePolicy`] decides: closed by default, so the request gets
/// `503` (`AuthError::unavailable`), never a pass for a token that may be revoked.
///
/// Cloning shares the configuration and the connection.
#[derive(Clone)]
pub struct RedisRevocation {
    inner: Arc<Inner>,
}

impl RedisRevocation {
    /// Revocation on `redis`, failing closed, with the system clock.
    pub fn new(redis: &Redis) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis: redis.clone(),
                timeout: redis.timeout(),
                policy: FailurePolicy::Closed,
                retention: DEFAULT_CUTOFF_RETENTION,
                clock: Arc::new(SystemClock),
                cutoff: Script::new(SET_CUTOFF),
            }),
        }
    }

    fn configure(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        let i = &self.inner;
        let mut inner = Inner {
            redis: i.redis.clone(),
            timeout: i.timeout,
            policy: i.policy,
            retention: i.retention,
            clock: Arc::clone(&i.clock),
            cutoff: Script::new(SET_CUTOFF),
        };
        change(&mut inner);
        self.inner = Arc::new(inner);
        self
    }

    /// Sets the time limit of one call (default: the [`Redis`] handle's, 250 ms).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.configure(|i| i.timeout = timeout)
    }

    /// Sets what a check answers when Redis fails (default [`FailurePolicy::Closed`]).
    ///
    /// # Security
    ///
    /// [`FailurePolicy::Open`] lets revoked tokens through while Redis is down.
    #[must_use]
    pub fn failure_policy(self, policy: FailurePolicy) -> Self {
        self.configure(|i| i.policy = policy)
    }

    /// Sets how long subject cut-offs are kept: longer than the longest access-token
    /// lifetime plus leeway (default [`DEFAULT_CUTOFF_RETENTION`], one day and five
    /// minutes).
    #[must_use]
    pub fn cutoff_retention(self, retention: Duration) -> Self {
        self.configure(|i| i.retention = retention)
    }

    /// Uses `clock` to skip already expired tokens on revocation (tests).
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.configure(|i| i.clock = Arc::new(clock))
    }

    /// The key of a denied `jti`: of any issuer (`rev:jti:<jti>`, whose value may
    /// still name one), or of one issuer.
    fn jti_key(&self, issuer: Option<&str>, jti: &str) -> Vec<u8> {
        self.scoped(b"rev:jti:", b"rev:ijti:", issuer, jti)
    }

    /// The key of a subject's cut-off: at every issuer, or at one.
    fn subject_key(&self, issuer: Option<&str>, subject: &str) -> Vec<u8> {
        self.scoped(b"rev:sub:", b"rev:isub:", issuer, subject)
    }

    /// `<any><name>`, or `<one><issuer length>:<issuer><name>`: the length makes the
    /// (issuer, name) pair unambiguous whatever bytes either holds.
    fn scoped(&self, any: &[u8], one: &[u8], issuer: Option<&str>, name: &str) -> Vec<u8> {
        match issuer {
            None => self.inner.redis.key(&[any, name.as_bytes()]),
            Some(issuer) => {
                let len = format!("{}:", issuer.len());
                let parts = [one, len.as_bytes(), issuer.as_bytes(), name.as_bytes()];
                self.inner.redis.key(&parts)
            }
        }
    }

    fn fetch(&self, query: &RevocationQuery<'_>) -> Fetch {
        let mut keys = vec![self.subject_key(None, query.subject)];
        let scoped = query.issuer.is_some();
        if let Some(issuer) = query.issuer {
            keys.push(self.subject_key(Some(issuer), query.subject));
        }
        if let Some(jti) = query.token_id {
            keys.push(self.jti_key(None, jti));
            if let Some(issuer) = query.issuer {
                keys.push(self.jti_key(Some(issuer), jti));
            }
        }
        Fetch {
            keys,
            scoped,
            issuer: query.issuer.map(str::to_owned),
            issued_at: query.issued_at,
        }
    }

    async fn write(
        &self,
        call: impl std::future::Future<Output = Result<(), redis::RedisError>>,
    ) -> Result<(), TokenError> {
        match self.inner.redis.call(self.inner.timeout, call).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.inner
                    .redis
                    .report("revocation", FailurePolicy::Closed, &e);
                Err(TokenError::store(e))
            }
        }
    }
}

/// What a pending check needs, owned: the keys to read (the subject's cut-offs at
/// every issuer and, when `scoped`, at the token's; then the `jti`'s entries alike).
struct Fetch {
    keys: Vec<Vec<u8>>,
    scoped: bool,
    issuer: Option<String>,
    issued_at: Option<SystemTime>,
}

impl Fetch {
    async fn run(self, inner: Arc<Inner>) -> Result<(), AuthError> {
        let mut conn = inner.redis.conn();
        let mut cmd = redis::cmd("MGET");
        for key in &self.keys {
            cmd.arg(key);
        }
        let reply = inner
            .redis
            .call(inner.timeout, async {
                cmd.query_async::<Vec<Option<String>>>(&mut conn).await
            })
            .await
            .and_then(|values| self.decide(&values));
        match reply {
            Ok(true) => Err(AuthError::revoked()),
            Ok(false) => Ok(()),
            Err(error) => {
                inner.redis.report("revocation", inner.policy, &error);
                match inner.policy {
                    FailurePolicy::Open => Ok(()),
                    FailurePolicy::Closed => Err(AuthError::unavailable("revocation_unavailable")
                        .with_description("the revocation list is temporarily unavailable")
                        .with_source(error)),
                }
            }
        }
    }

    /// Whether the entries fetched revoke the credential.
    fn decide(&self, values: &[Option<String>]) -> Result<bool, Error> {
        let subjects = if self.scoped { 2 } else { 1 };
        let (cutoffs, denied) = values.split_at(subjects.min(values.len()));
        for cutoff in cutoffs.iter().flatten() {
            let cutoff: i64 = cutoff.parse().map_err(|_| Error::new(ErrorKind::Reply))?;
            if self.issued_at.is_none_or(|iat| unix_secs(iat) <= cutoff) {
                return Ok(true);
            }
        }
        // An entry of any issuer may name the issuer it was meant for (`i<iss>`).
        for entry in denied.iter().flatten() {
            let issuer_matches = match (entry.strip_prefix('i'), self.issuer.as_deref()) {
                (Some(denied), Some(presented)) => denied == presented,
                _ => true,
            };
            if issuer_matches {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn unix_millis(t: SystemTime) -> i64 {
    unix_micros(t).div_euclid(1000)
}

impl Revocation for RedisRevocation {
    fn check(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        MaybeReady::pending(self.fetch(query).run(Arc::clone(&self.inner)))
    }
}

impl RevocationStore for RedisRevocation {
    async fn revoke_token(&self, token: RevokedToken<'_>) -> Result<(), TokenError> {
        if token.expires_at <= self.inner.clock.now() {
            // Expired already: the verifier refuses it anyway.
            return Ok(());
        }
        // One key per (issuer, jti): the same `jti` at two issuers is two tokens.
        // The issuer-less key is written too, for checks that know no issuer (they
        // fail closed); its value names the last issuer, for stores written before
        // entries were scoped.
        let value = match token.issuer {
            Some(issuer) => format!("i{issuer}"),
            None => "-".to_owned(),
        };
        let at = unix_millis(token.expires_at);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.jti_key(None, token.token_id))
            .arg(&value)
            .arg("PXAT")
            .arg(at)
            .ignore();
        if token.issuer.is_some() {
            pipe.cmd("SET")
                .arg(self.jti_key(token.issuer, token.token_id))
                .arg(&value)
                .arg("PXAT")
                .arg(at)
                .ignore();
        }
        let mut conn = self.inner.redis.conn();
        self.write(async move { pipe.query_async::<()>(&mut conn).await })
            .await
    }

    async fn revoke_subject(&self, subject: &str, cutoff: SystemTime) -> Result<(), TokenError> {
        self.set_cutoff(None, subject, cutoff).await
    }

    async fn revoke_issuer_subject(
        &self,
        issuer: &str,
        subject: &str,
        cutoff: SystemTime,
    ) -> Result<(), TokenError> {
        self.set_cutoff(Some(issuer), subject, cutoff).await
    }
}

impl RedisRevocation {
    async fn set_cutoff(
        &self,
        issuer: Option<&str>,
        subject: &str,
        cutoff: SystemTime,
    ) -> Result<(), TokenError> {
        let key = self.subject_key(issuer, subject);
        let keep_until = unix_micros(cutoff)
            .saturating_add(duration_micros(self.inner.retention))
            .div_euclid(1000);
        let mut conn = self.inner.redis.conn();
        let mut invocation = self.inner.cutoff.key(key);
        // Not below 0: the script reads a missing cut-off as -1.
        invocation.arg(unix_secs(cutoff).max(0)).arg(keep_until);
        self.write(async move { invocation.invoke_async::<()>(&mut conn).await })
            .await
    }
}

impl fmt::Debug for RedisRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocation")
            .field("redis", &self.inner.redis)
            .field("timeout", &self.inner.timeout)
            .field("policy", &self.inner.policy)
            .field("cutoff_retention", &self.inner.retention)
            .finish()
    }
}
